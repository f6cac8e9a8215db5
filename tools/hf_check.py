#!/usr/bin/env python3
"""Checks an `anvil export --format hf` directory with an independent GPT-2 written in plain PyTorch
(Hugging Face's transformers is not packaged for Debian): reads config.json and model.safetensors the
way GPT2LMHeadModel.from_pretrained would (names with or without "transformer.", Conv1D weights
(in, out), tied head), runs the tokens of `anvil logits` JSON and compares the last position's logits.

Usage: /usr/bin/python3 tools/hf_check.py HF_DIR ANVIL_LOGITS.json [--tol 1e-4]
Prints the measured error; exits 1 when max|diff| / max|anvil logit| exceeds the tolerance."""
import json
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
    return x[-1] @ head.T


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    hf, ref_path = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[sys.argv.index("--tol") + 1]) if "--tol" in sys.argv else 1e-4
    cfg = json.load(open(f"{hf}/config.json"))
    assert cfg["architectures"] == ["GPT2LMHeadModel"] and cfg["model_type"] == "gpt2"
    assert cfg["n_positions"] == cfg["n_ctx"]
    w = read_safetensors(f"{hf}/model.safetensors")
    assert w["wte.weight"].shape == (cfg["vocab_size"], cfg["n_embd"]), "wte must have vocab_size rows"
    ref = json.load(open(ref_path))
    torch.set_num_threads(1)
    with torch.no_grad():
        logits = gpt2_logits(cfg, w, torch.tensor(ref["tokens"]))
    anvil = torch.tensor(ref["logits"])
    rel = ((logits - anvil).abs().max() / anvil.abs().max()).item()
    print(f"hf_check: PyTorch GPT-2 from {hf} vs anvil: {len(ref['tokens'])} tokens, vocab {logits.numel()}, "
          f"last-position logits max rel err {rel:.3g} (tol {tol:g}), argmax {logits.argmax().item()} vs "
          f"{anvil.argmax().item()}")
    sys.exit(0 if rel <= tol else 1)


if __name__ == "__main__":
    main()
