#!/usr/bin/env python3
"""Checks an `anvil export --format hf` directory with an independent model written in plain PyTorch
(Hugging Face's transformers is not packaged for Debian): reads config.json and model.safetensors the
way from_pretrained would, runs the tokens of `anvil logits` JSON and compares the last position's
logits. GPT2LMHeadModel: names with or without "transformer.", Conv1D weights (in, out), tied head.
LlamaForCausalLM: nn.Linear weights (out, in), RMSNorm, RoPE on rotate_half pairs (x[i], x[i + hs/2])
with Llama 3 rope_scaling, grouped-query attention, SwiGLU, tied or untied head.

Usage: /usr/bin/python3 tools/hf_check.py HF_DIR ANVIL_LOGITS.json [--tol 1e-4]
Prints the measured error; exits 1 when max|diff| / max|anvil logit| exceeds the tolerance."""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    dtypes = {"F32": np.float32, "F16": np.float16}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    if header.get("__metadata__", {}).get("format") != "pt":
        sys.exit(f"{path}: __metadata__.format is not 'pt' (transformers refuses the file)")
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
        out[name.removeprefix("transformer.")] = torch.from_numpy(arr.astype(np.float32))
    return out


def gpt2_logits(cfg, w, ids):
    C, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    eps = cfg["layer_norm_epsilon"]
    assert cfg["activation_function"] == "gelu_new" and cfg.get("tie_word_embeddings", True)
    T = len(ids)
    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(L):
        p = f"h.{i}."
        h = F.layer_norm(x, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: x @ W, W (in, out)
        q, k, v = (t.view(T, H, C // H).transpose(0, 1) for t in qkv.split(C, dim=1))
        att = (q @ k.transpose(1, 2)) / (C // H) ** 0.5
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        h = F.gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"], eps)
    head = w.get("lm_head.weight", w["wte.weight"])
    return x @ head.T


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_inv_freq(cfg, hs):
    """transformers' default and llama3 RoPE inverse frequencies (hs / 2 of them), in float32."""
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hs, 2, dtype=torch.int64).float() / hs))
    s = cfg.get("rope_scaling")
    if s is None:
        return inv
    assert s.get("rope_type", s.get("type")) == "llama3", s
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old = s["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    between = ~(wavelen < old / high) & ~(wavelen > old / low)
    return torch.where(between, (1 - smooth) * scaled / factor + smooth * scaled, scaled)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def llama_logits(cfg, w, ids):
    C, H, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    KV = cfg.get("num_key_value_heads", H)
    hs, eps, T = C // H, cfg["rms_norm_eps"], len(ids)
    angles = torch.outer(torch.arange(T, dtype=torch.float32), rope_inv_freq(cfg, hs))
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()  # (T, hs)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    x = w["model.embed_tokens.weight"][ids]
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q, k, v = ((h @ w[p + f"self_attn.{n}_proj.weight"].T).view(T, -1, hs).transpose(0, 1) for n in "qkv")
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)  # kv head j serves H/KV heads
        att = (q @ k.transpose(1, 2)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + (att @ v).transpose(0, 1).reshape(T, C) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (F.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    return x @ w["lm_head.weight"].T


def load_model(hf):
    """(name, forward, cfg, weights) of a Hugging Face directory; forward(cfg, w, ids) gives (T, vocab) logits."""
    cfg = json.load(open(f"{hf}/config.json"))
    w = read_safetensors(f"{hf}/model.safetensors")
    if cfg["model_type"] == "gpt2":
        assert cfg["architectures"] == ["GPT2LMHeadModel"]
        assert cfg["n_positions"] == cfg["n_ctx"]
        assert w["wte.weight"].shape == (cfg["vocab_size"], cfg["n_embd"]), "wte must have vocab_size rows"
        return "GPT-2", gpt2_logits, cfg, w
    assert cfg["model_type"] == "llama" and cfg["architectures"] == ["LlamaForCausalLM"], cfg["model_type"]
    assert cfg["hidden_act"] == "silu" and not cfg.get("attention_bias") and not cfg.get("mlp_bias")
    assert w["model.embed_tokens.weight"].shape == (cfg["vocab_size"], cfg["hidden_size"])
    tied = cfg.get("tie_word_embeddings", True)
    assert ("lm_head.weight" in w) != tied, "lm_head.weight must be there exactly when the head is untied"
    if tied:
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    return "Llama", llama_logits, cfg, w


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    hf, ref_path = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[sys.argv.index("--tol") + 1]) if "--tol" in sys.argv else 1e-4
    name, forward, cfg, w = load_model(hf)
    ref = json.load(open(ref_path))
    torch.set_num_threads(1)
    with torch.no_grad():
        logits = forward(cfg, w, torch.tensor(ref["tokens"]))[-1]
    anvil = torch.tensor(ref["logits"])
    rel = ((logits - anvil).abs().max() / anvil.abs().max()).item()
    print(f"hf_check: PyTorch {name} from {hf} vs anvil: {len(ref['tokens'])} tokens, vocab {logits.numel()}, "
          f"last-position logits max rel err {rel:.3g} (tol {tol:g}), argmax {logits.argmax().item()} vs "
          f"{anvil.argmax().item()}")
    sys.exit(0 if rel <= tol else 1)


if __name__ == "__main__":
    main()
