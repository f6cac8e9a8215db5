#!/usr/bin/python3
"""PyTorch reference for anvil's numerics (GPT-2 and Llama): writes the golden files the C tests compare against.

Regenerate (plain PyTorch, no transformers library):
    /usr/bin/python3 tools/torch_reference.py tests/golden

Writes, each a safetensors file (8-byte little-endian header length, JSON header
{name: {dtype, shape, data_offsets}}, raw little-endian data; config values in "__metadata__"):
  kernels.safetensors        every GPT-2 kernel's forward and backward on small random inputs
  gpt_v97.safetensors        GPT-2, vocab 97 (padded to 128 inside anvil), T < block_size, ignored targets
  gpt_t8.safetensors         GPT-2, vocab 128, T == block_size
  kernels_llama.safetensors  the Llama kernels, forward and backward: RMSNorm, RoPE on a fused qkv, the
                             Llama 3 scaled RoPE frequencies, SwiGLU, grouped-query and multi-query attention
  llama_v97.safetensors      Llama, vocab 97, 4 query / 2 key-value heads, untied head, T < block_size,
                             ignored targets
  llama_t8.safetensors       Llama, vocab 128, 4 query heads / 1 key-value head, tied head, Llama 3 RoPE
                             scaling, T == block_size
  lora_gpt.safetensors       LoRA adapters on every GPT-2 target (c_attn, both c_proj, c_fc) of a frozen base
  lora_llama.safetensors     LoRA adapters on Llama's k, v, o, gate and down projections (so that k's and v's
                             columns follow a q without one, and gate is half of gate | up), untied head
For the models: initial weights (Hugging Face names: GPT-2 with Conv1D (in, out) weights, Llama with
nn.Linear (out, in) weights), tokens, logits, loss, every parameter gradient, then 10 AdamW steps with
global-norm clipping and warmup + cosine learning rate: the losses, gradient norms, learning rates and the
final weights. The Llama files also hold the float32 RoPE inverse frequencies (inv_freq) and every config
value in their metadata.

Everything is computed in float64 from the float32 values that are stored, so the files hold the exact
answer (rounded to float32) and the C side's float32 error is what the tests measure. The Llama model is
also computed a second way (explicit loops over rows and heads, RoPE as a complex rotation) and the two
must agree to 1e-10 before anything is written.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

LN_EPS = 1e-5


# ---- the model (shared with bench/torch_model.py) ----

def layer_names(l):
    p = f"transformer.h.{l}."
    return [p + s for s in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                            "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                            "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")]


def param_shapes(cfg):
    """Hugging Face GPT-2 names and shapes, in anvil's block order."""
    C, V = cfg["n_embd"], cfg["vocab_size"]
    shapes = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (cfg["block_size"], C)}
    for l in range(cfg["n_layer"]):
        for name, shape in zip(layer_names(l), [(C,), (C,), (C, 3 * C), (3 * C,), (C, C), (C,), (C,), (C,),
                                                (C, 4 * C), (4 * C,), (4 * C, C), (C,)]):
            shapes[name] = shape
    shapes["transformer.ln_f.weight"] = (C,)
    shapes["transformer.ln_f.bias"] = (C,)
    return shapes


def causal_attention(qkv, n_head):
    """qkv (B, T, 3C) -> (out (B, T, C), lse (B, NH, T))."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    hs = C // n_head
    q, k, v = qkv.split(C, dim=2)
    q, k, v = (x.view(B, T, n_head, hs).transpose(1, 2) for x in (q, k, v))
    att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=qkv.device))
    att = att.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(att, dim=-1)
    y = F.softmax(att, dim=-1) @ v
    return y.transpose(1, 2).reshape(B, T, C), lse


def no_adapter(layer, module, x, y):
    return y


def gpt_logits(P, cfg, idx, adapt=no_adapter):
    """GPT-2 forward: P maps Hugging Face names to tensors; idx (B, T) -> logits (B, T, V). adapt(layer,
    module, x, y) may change the output y of each linear layer from its input x (LoRA with dropout)."""
    B, T = idx.shape
    C = cfg["n_embd"]
    x = P["transformer.wte.weight"][idx] + P["transformer.wpe.weight"][:T]
    for l in range(cfg["n_layer"]):
        ln1w, ln1b, aw, ab, pw, pb, ln2w, ln2b, fw, fb, fpw, fpb = (P[n] for n in layer_names(l))
        h = F.layer_norm(x, (C,), ln1w, ln1b, LN_EPS)
        y, _ = causal_attention(adapt(l, "attn.c_attn", h, h @ aw + ab), cfg["n_head"])
        x = x + adapt(l, "attn.c_proj", y, y @ pw + pb)
        h = F.layer_norm(x, (C,), ln2w, ln2b, LN_EPS)
        a = F.gelu(adapt(l, "mlp.c_fc", h, h @ fw + fb), approximate="tanh")
        x = x + adapt(l, "mlp.c_proj", a, a @ fpw + fpb)
    x = F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], LN_EPS)
    return x @ P["transformer.wte.weight"].t()


def gpt_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)


def gpt_init(cfg, gen, dtype, random_norms=False):
    """GPT-2 init: N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 L)); LayerNorm 1 / 0, biases 0.
    random_norms perturbs LayerNorm parameters and biases too, so that tests see every term."""
    P = {}
    for name, shape in param_shapes(cfg).items():
        if len(shape) == 2:
            std = 0.02 / math.sqrt(2 * cfg["n_layer"]) if name.endswith("c_proj.weight") else 0.02
            t = torch.randn(shape, generator=gen, dtype=torch.float64) * std
        elif random_norms:
            t = torch.randn(shape, generator=gen, dtype=torch.float64) * (0.1 if name.endswith("ln_1.weight") or
                                                                       name.endswith("ln_2.weight") or
                                                                       name.endswith("ln_f.weight") else 0.02)
            if "ln_" in name and name.endswith(".weight"):
                t += 1.0
        elif "ln_" in name and name.endswith(".weight"):
            t = torch.ones(shape, dtype=torch.float64)
        else:
            t = torch.zeros(shape, dtype=torch.float64)
        P[name] = t.to(dtype)
    return P


def cosine_lr(step, warmup, total, max_lr, min_lr):
    """optim.h's cosine schedule."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / (total - warmup)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


# ---- the Llama model (Hugging Face's LlamaForCausalLM, shared with bench/torch_model.py) ----
#
# cfg keys: arch ("llama"), n_layer, n_head, n_kv_head, n_embd, n_ff, vocab_size, block_size, norm_eps,
# rope_theta, tie_embeddings (0/1), rope_scaling ("none" or "llama3"), rope_factor, rope_low_freq_factor,
# rope_high_freq_factor, rope_original_max_position_embeddings.

def llama_layer_names(l):
    p = f"model.layers.{l}."
    return [p + s for s in ("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                            "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                            "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")]


def llama_param_shapes(cfg):
    """Hugging Face Llama names and shapes (nn.Linear (out, in) layout), in anvil's block order."""
    C, V, Fh = cfg["n_embd"], cfg["vocab_size"], cfg["n_ff"]
    KV = cfg["n_kv_head"] * (C // cfg["n_head"])
    shapes = {"model.embed_tokens.weight": (V, C)}
    for l in range(cfg["n_layer"]):
        for name, shape in zip(llama_layer_names(l), [(C,), (C, C), (KV, C), (KV, C), (C, C), (C,),
                                                      (Fh, C), (Fh, C), (C, Fh)]):
            shapes[name] = shape
    shapes["model.norm.weight"] = (C,)
    if not cfg["tie_embeddings"]:
        shapes["lm_head.weight"] = (V, C)
    return shapes


def rope_inv_freq(hs, theta, llama3=None):
    """RoPE inverse frequencies (hs/2) in float32, as Hugging Face computes them. llama3, when given, is a dict
    of factor, low_freq_factor, high_freq_factor, original_max_position_embeddings (rope_type "llama3"): the
    high frequencies are kept, the low ones divided by factor, and those in between interpolated."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.int64).float() / hs))
    if llama3 is None:
        return inv_freq
    factor, lo, hi = llama3["factor"], llama3["low_freq_factor"], llama3["high_freq_factor"]
    orig = llama3["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    smooth = (orig / wavelen - lo) / (hi - lo)
    mid = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    out = torch.where(wavelen > orig / lo, inv_freq / factor, inv_freq)
    return torch.where((wavelen >= orig / hi) & (wavelen <= orig / lo), mid, out)


def rope_bands(hs, theta, llama3):
    """Which Llama 3 band each frequency falls into: "keep" (high), "interpolate" or "divide" (low)."""
    wavelen = 2 * math.pi / rope_inv_freq(hs, theta)
    orig = llama3["original_max_position_embeddings"]
    return ["keep" if w < orig / llama3["high_freq_factor"] else
            "divide" if w > orig / llama3["low_freq_factor"] else "interpolate" for w in wavelen.tolist()]


def llama3_params(cfg):
    if cfg["rope_scaling"] == "none":
        return None
    assert cfg["rope_scaling"] == "llama3", cfg["rope_scaling"]
    return dict(factor=cfg["rope_factor"], low_freq_factor=cfg["rope_low_freq_factor"],
                high_freq_factor=cfg["rope_high_freq_factor"],
                original_max_position_embeddings=cfg["rope_original_max_position_embeddings"])


def llama_inv_freq(cfg):
    return rope_inv_freq(cfg["n_embd"] // cfg["n_head"], cfg["rope_theta"], llama3_params(cfg))


def rope_cos_sin(inv_freq, pos, dtype):
    """cos and sin (len(pos), hs/2) of the angles pos * inv_freq. The angle is the float32 product, as
    Hugging Face forms it (a float32 matmul of inv_freq and the positions); cos and sin are taken in dtype."""
    ang = (pos.to(torch.float64)[:, None] * inv_freq.to(torch.float64)[None, :]).float().to(dtype)
    return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):
    """rotate_half RoPE over the last axis (hs) of x; cos and sin broadcast against x's (..., hs/2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def gqa_attend(q, k, v):
    """Causal attention with grouped-query heads: q (B, NH, T, hs), k and v (B, NKV, T, hs); query head h
    reads key/value head h // (NH // NKV). -> (y (B, NH, T, hs), lse (B, NH, T))."""
    T, hs = q.shape[2], q.shape[3]
    rep = q.shape[1] // k.shape[1]
    if rep > 1:
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=q.device))
    att = att.masked_fill(~mask, float("-inf"))
    return F.softmax(att, dim=-1) @ v, torch.logsumexp(att, dim=-1)


def gqa_attention(qkv, n_head, n_kv_head):
    """qkv (B, T, (NH + 2 NKV) hs) = q | k | v per row -> (out (B, T, NH hs), lse (B, NH, T))."""
    B, T, W = qkv.shape
    hs = W // (n_head + 2 * n_kv_head)
    q, k, v = qkv.split([n_head * hs, n_kv_head * hs, n_kv_head * hs], dim=2)
    q = q.view(B, T, n_head, hs).transpose(1, 2)
    k, v = (x.view(B, T, n_kv_head, hs).transpose(1, 2) for x in (k, v))
    y, lse = gqa_attend(q, k, v)
    return y.transpose(1, 2).reshape(B, T, n_head * hs), lse


def llama_logits(P, cfg, idx, adapt=no_adapter):
    """Llama forward: P maps Hugging Face names to tensors; idx (B, T) -> logits (B, T, V); adapt as in
    gpt_logits."""
    B, T = idx.shape
    C, NH, NKV, eps = cfg["n_embd"], cfg["n_head"], cfg["n_kv_head"], cfg["norm_eps"]
    hs = C // NH
    wte = P["model.embed_tokens.weight"]
    x = wte[idx]
    cos, sin = rope_cos_sin(llama_inv_freq(cfg), torch.arange(T), x.dtype)
    cos, sin = cos.to(x.device)[:, None, :], sin.to(x.device)[:, None, :]  # (T, 1, hs/2): every head
    for l in range(cfg["n_layer"]):
        ln1, wq, wk, wv, wo, ln2, wg, wu, wd = (P[n] for n in llama_layer_names(l))
        h = rms_norm(x, ln1, eps)
        q = apply_rope(adapt(l, "self_attn.q_proj", h, F.linear(h, wq)).view(B, T, NH, hs), cos, sin).transpose(1, 2)
        k = apply_rope(adapt(l, "self_attn.k_proj", h, F.linear(h, wk)).view(B, T, NKV, hs), cos, sin).transpose(1, 2)
        v = adapt(l, "self_attn.v_proj", h, F.linear(h, wv)).view(B, T, NKV, hs).transpose(1, 2)
        y, _ = gqa_attend(q, k, v)
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + adapt(l, "self_attn.o_proj", y, F.linear(y, wo))
        h = rms_norm(x, ln2, eps)
        a = F.silu(adapt(l, "mlp.gate_proj", h, F.linear(h, wg))) * adapt(l, "mlp.up_proj", h, F.linear(h, wu))
        x = x + adapt(l, "mlp.down_proj", a, F.linear(a, wd))
    x = rms_norm(x, P["model.norm.weight"], eps)
    return F.linear(x, wte if cfg["tie_embeddings"] else P["lm_head.weight"])


def llama_init(cfg, gen, dtype, random_norms=False):
    """Llama init: weights N(0, 0.02), o_proj and down_proj N(0, 0.02 / sqrt(2 L)), RMSNorm weights 1.
    random_norms draws the RMSNorm weights as 1 + N(0, 0.1), so that tests see every term."""
    P = {}
    for name, shape in llama_param_shapes(cfg).items():
        if len(shape) == 2:
            proj = name.endswith("o_proj.weight") or name.endswith("down_proj.weight")
            std = 0.02 / math.sqrt(2 * cfg["n_layer"]) if proj else 0.02
            t = torch.randn(shape, generator=gen, dtype=torch.float64) * std
        elif random_norms:
            t = 1.0 + torch.randn(shape, generator=gen, dtype=torch.float64) * 0.1
        else:
            t = torch.ones(shape, dtype=torch.float64)
        P[name] = t.to(dtype)
    return P


# ---- a second Llama, for the self-check: loops over rows and heads, RoPE as a complex rotation ----

def attention_loops(qkv, n_head, n_kv_head):
    """gqa_attention one (batch, head, query row) at a time, softmax over the visible keys only."""
    B, T, W = qkv.shape
    hs = W // (n_head + 2 * n_kv_head)
    group = n_head // n_kv_head
    out, lse = [], []
    for b in range(B):
        rows, row_lse = [], []
        for t in range(T):
            heads, head_lse = [], []
            for h in range(n_head):
                g = h // group
                q = qkv[b, t, h * hs:(h + 1) * hs]
                ko, vo = (n_head + g) * hs, (n_head + n_kv_head + g) * hs
                scores = torch.stack([torch.dot(q, qkv[b, s, ko:ko + hs]) for s in range(t + 1)]) / math.sqrt(hs)
                m = scores.max().detach()
                e = torch.exp(scores - m)
                heads.append(sum(e[s] * qkv[b, s, vo:vo + hs] for s in range(t + 1)) / e.sum())
                head_lse.append(m + torch.log(e.sum()))
            rows.append(torch.cat(heads))
            row_lse.append(torch.stack(head_lse))
        out.append(torch.stack(rows))
        lse.append(torch.stack(row_lse).t())
    return torch.stack(out), torch.stack(lse)


def rope_loops(x, pos, inv_freq):
    """x (hs) at position pos: pairs (x[i], x[i + hs/2]) as complex numbers times e^(i a)."""
    half = x.shape[0] // 2
    ang = f32(float(pos) * inv_freq.to(torch.float64))
    z = torch.complex(x[:half], x[half:]) * torch.polar(torch.ones_like(ang), ang)
    return torch.cat([z.real, z.imag])


def llama_logits_loops(P, cfg, idx):
    B, T = idx.shape
    C, NH, NKV, eps = cfg["n_embd"], cfg["n_head"], cfg["n_kv_head"], cfg["norm_eps"]
    hs = C // NH
    inv_freq = llama_inv_freq(cfg)

    def norm(x, w):
        return w * (x / torch.sqrt(torch.dot(x, x) / C + eps))

    def silu(x):
        return x * torch.sigmoid(x)

    wte = P["model.embed_tokens.weight"]
    x = [[wte[int(idx[b, t])] for t in range(T)] for b in range(B)]
    for l in range(cfg["n_layer"]):
        ln1, wq, wk, wv, wo, ln2, wg, wu, wd = (P[n] for n in llama_layer_names(l))
        for b in range(B):
            qkv = []
            for t in range(T):
                h = norm(x[b][t], ln1)
                q = [rope_loops(wq[i * hs:(i + 1) * hs] @ h, t, inv_freq) for i in range(NH)]
                k = [rope_loops(wk[i * hs:(i + 1) * hs] @ h, t, inv_freq) for i in range(NKV)]
                qkv.append(torch.cat(q + k + [wv @ h]))
            y, _ = attention_loops(torch.stack(qkv)[None], NH, NKV)
            for t in range(T):
                r = x[b][t] + wo @ y[0, t]
                h = norm(r, ln2)
                x[b][t] = r + wd @ (silu(wg @ h) * (wu @ h))
    head = wte if cfg["tie_embeddings"] else P["lm_head.weight"]
    return torch.stack([torch.stack([head @ norm(r, P["model.norm.weight"]) for r in row]) for row in x])


# ---- safetensors writer ----

def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.dtype == torch.int32 or t.dtype == torch.int64:
            dtype, data = "I32", t.to(torch.int32).numpy().astype("<i4").tobytes()
        else:
            dtype, data = "F32", t.to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)
    print(f"{path}: {len(tensors)} tensors, {8 + len(h) + off} bytes")


def f32(t):
    """The float32 value that is stored, as float64 for the computation."""
    return t.to(torch.float32).to(torch.float64)


# ---- kernel goldens ----

def random_f32(gen):
    """rnd(*shape, scale=1.0): N(0, scale^2) values as stored in float32, drawn from gen."""
    def rnd(*shape, scale=1.0):
        return f32(torch.randn(shape, generator=gen, dtype=torch.float64) * scale)
    return rnd


def grads(y, dy, *xs):
    """The gradients of y (against dy) with respect to xs."""
    for x in xs:
        x.grad = None
    y.backward(dy)
    return [x.grad for x in xs]


def kernel_goldens(gen):
    out = {}

    rnd = random_f32(gen)

    # embedding: B=2, T=5, V=11, C=6, repeated tokens
    tok = torch.tensor([[1, 3, 3, 10, 0], [3, 7, 1, 1, 2]], dtype=torch.int64)
    wte, wpe = rnd(11, 6).requires_grad_(), rnd(5, 6).requires_grad_()
    y = wte[tok] + wpe[:5]
    dy = rnd(2, 5, 6)
    dwte, dwpe = grads(y, dy, wte, wpe)
    out.update({"emb.tokens": tok, "emb.wte": wte, "emb.wpe": wpe, "emb.out": y, "emb.dout": dy,
                "emb.dwte": dwte, "emb.dwpe": dwpe})

    # layernorm: N=9, C=40, inputs with an offset and scale
    x = (rnd(9, 40, scale=2.0) + 0.5).requires_grad_()
    w, b = (rnd(40, scale=0.3) + 1).requires_grad_(), rnd(40, scale=0.1).requires_grad_()
    y = F.layer_norm(x, (40,), w, b, LN_EPS)
    mean = x.detach().mean(-1)
    rstd = 1.0 / torch.sqrt(x.detach().var(-1, unbiased=False) + LN_EPS)
    dy = rnd(9, 40)
    dx, dw, db = grads(y, dy, x, w, b)
    out.update({"ln.inp": x, "ln.w": w, "ln.b": b, "ln.out": y, "ln.mean": mean, "ln.rstd": rstd, "ln.dout": dy,
                "ln.dinp": dx, "ln.dw": dw, "ln.db": db})

    # matmul (Conv1D): N=33, C=260, OC=72 (C crosses the built-in GEMM's 256 K-slice)
    x, w, b = rnd(33, 260).requires_grad_(), rnd(260, 72, scale=0.1).requires_grad_(), rnd(72).requires_grad_()
    y = x @ w + b
    dy = rnd(33, 72)
    dx, dw, db = grads(y, dy, x, w, b)
    out.update({"mm.inp": x, "mm.w": w, "mm.bias": b, "mm.out": y, "mm.dout": dy, "mm.dinp": dx, "mm.dw": dw,
                "mm.dbias": db})

    # tied LM head: N=10, C=24, OC=64 (weight stored (OC, C))
    x, w = rnd(10, 24).requires_grad_(), rnd(64, 24, scale=0.1).requires_grad_()
    y = x @ w.t()
    dy = rnd(10, 64)
    dx, dw = grads(y, dy, x, w)
    out.update({"mmnt.inp": x, "mmnt.w": w, "mmnt.out": y, "mmnt.dout": dy, "mmnt.dinp": dx, "mmnt.dw": dw})

    # attention: B=2, T=7, C=12, NH=3
    qkv = rnd(2, 7, 36).requires_grad_()
    y, lse = causal_attention(qkv, 3)
    dy = rnd(2, 7, 12)
    (dqkv,) = grads(y, dy, qkv)
    out.update({"att.qkv": qkv, "att.out": y, "att.lse": lse, "att.dout": dy, "att.dqkv": dqkv})

    # gelu (tanh): 1000 values over [-8, 8] plus random ones
    x = torch.cat([f32(torch.linspace(-8, 8, 1000, dtype=torch.float64)), rnd(200, scale=3.0)]).requires_grad_()
    y = F.gelu(x, approximate="tanh")
    dy = rnd(1200)
    (dx,) = grads(y, dy, x)
    out.update({"gelu.inp": x, "gelu.out": y, "gelu.dout": dy, "gelu.dinp": dx})

    # residual
    a, b = rnd(50).requires_grad_(), rnd(50).requires_grad_()
    y = a + b
    dy = rnd(50)
    da, db = grads(y, dy, a, b)
    out.update({"res.a": a, "res.b": b, "res.out": y, "res.dout": dy, "res.da": da, "res.db": db})

    # softmax + cross-entropy: N=6, V=70 padded to Vp=128 with large garbage in the padding columns
    V, Vp = 70, 128
    logits = rnd(6, Vp, scale=3.0)
    logits[:, V:] = 50.0
    tgt = torch.tensor([5, -1, 69, 0, 33, -1], dtype=torch.int64)
    real = logits[:, :V].clone().requires_grad_()
    loss = F.cross_entropy(real, tgt, ignore_index=-1)  # mean over the 4 rows with a target
    loss.backward()
    dlogits = torch.zeros(6, Vp, dtype=torch.float64)
    dlogits[:, :V] = real.grad
    out.update({"ce.logits": logits, "ce.targets": tgt, "ce.lse": torch.logsumexp(logits[:, :V], -1),
                "ce.loss": loss.reshape(1), "ce.dlogits": dlogits})
    return out


def llama_kernel_goldens(gen):
    out, meta = {}, {}

    rnd = random_f32(gen)

    # rmsnorm: N=9, C=40, inputs with an offset and scale
    eps = 1e-5
    x = (rnd(9, 40, scale=2.0) + 0.5).requires_grad_()
    w = (rnd(40, scale=0.3) + 1).requires_grad_()
    y = rms_norm(x, w, eps)
    rstd = torch.rsqrt(x.detach().pow(2).mean(-1) + eps)
    dy = rnd(9, 40)
    dx, dw = grads(y, dy, x, w)
    out.update({"rms.inp": x, "rms.w": w, "rms.out": y, "rms.rstd": rstd, "rms.dout": dy, "rms.dinp": dx,
                "rms.dw": dw})
    meta["rms_eps"] = eps

    # rope on the q and k heads of a fused qkv: B=2, T=5, NH=4, NKV=2, hs=8, rows at positions 3..7
    B, T, NH, NKV, hs, pos, theta = 2, 5, 4, 2, 8, 3, 10000.0
    inv_freq = rope_inv_freq(hs, theta)
    cos, sin = rope_cos_sin(inv_freq, torch.arange(pos, pos + T), torch.float64)
    cos, sin = cos[:, None, :], sin[:, None, :]
    qkv = rnd(B, T, (NH + 2 * NKV) * hs).requires_grad_()
    q, k, v = qkv.split([NH * hs, NKV * hs, NKV * hs], dim=2)
    q = apply_rope(q.view(B, T, NH, hs), cos, sin).reshape(B, T, NH * hs)
    k = apply_rope(k.view(B, T, NKV, hs), cos, sin).reshape(B, T, NKV * hs)
    y = torch.cat([q, k, v], dim=2)
    dy = rnd(B, T, (NH + 2 * NKV) * hs)
    (dqkv,) = grads(y, dy, qkv)
    out.update({"rope.inv_freq": inv_freq, "rope.qkv": qkv, "rope.out": y, "rope.dout": dy, "rope.dqkv": dqkv})
    meta.update(rope_pos=pos, rope_theta=theta, rope_n_head=NH, rope_n_kv_head=NKV, rope_head_size=hs)
    check = torch.stack([torch.stack([torch.cat([rope_loops(qkv[b, t, i * hs:(i + 1) * hs], pos + t, inv_freq)
                                                 for i in range(NH + NKV)]) for t in range(T)]) for b in range(B)])
    err = float((check - y[..., :(NH + NKV) * hs]).abs().max())
    print(f"  self-check rope (pos {pos}): rotate_half against complex rotation, max |diff| {err:.1e}")
    assert err < 1e-10

    # Llama 3 scaled frequencies: hs=16, theta 500000, factor 8, low 1, high 4, original context 64
    l3 = dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=64)
    hs, theta = 16, 500000.0
    inv3 = rope_inv_freq(hs, theta, l3)
    bands = rope_bands(hs, theta, l3)
    assert len(set(bands)) == 3, bands
    out["rope3.inv_freq"] = inv3
    meta.update(rope3_head_size=hs, rope3_theta=theta, rope3_factor=l3["factor"],
                rope3_low_freq_factor=l3["low_freq_factor"], rope3_high_freq_factor=l3["high_freq_factor"],
                rope3_original_max_position_embeddings=l3["original_max_position_embeddings"])
    print(f"  rope3 (hs {hs}, theta {theta:g}, factor {l3['factor']:g}, low {l3['low_freq_factor']:g}, "
          f"high {l3['high_freq_factor']:g}, original {l3['original_max_position_embeddings']}): {' '.join(bands)}")
    check_llama3(hs, theta, l3, inv3)

    # swiglu: N=7, F=33, rows of gate | up
    x = rnd(7, 66, scale=2.0).requires_grad_()
    y = F.silu(x[:, :33]) * x[:, 33:]
    dy = rnd(7, 33)
    (dx,) = grads(y, dy, x)
    out.update({"swiglu.inp": x, "swiglu.out": y, "swiglu.dout": dy, "swiglu.dinp": dx})

    # grouped-query attention (B=2, T=7, NH=4, NKV=2, hs=4) and multi-query (B=1, T=6, NH=3, NKV=1, hs=5)
    for key, (B, T, NH, NKV, hs) in (("gqa", (2, 7, 4, 2, 4)), ("mqa", (1, 6, 3, 1, 5))):
        qkv = rnd(B, T, (NH + 2 * NKV) * hs).requires_grad_()
        y, lse = gqa_attention(qkv, NH, NKV)
        dy = rnd(B, T, NH * hs)
        (dqkv,) = grads(y, dy, qkv)
        out.update({key + ".qkv": qkv, key + ".out": y, key + ".lse": lse, key + ".dout": dy, key + ".dqkv": dqkv})
        meta.update({key + "_n_head": NH, key + "_n_kv_head": NKV, key + "_head_size": hs})
        qkv2 = qkv.detach().clone().requires_grad_()
        y2, lse2 = attention_loops(qkv2, NH, NKV)
        (dqkv2,) = grads(y2, dy, qkv2)
        errs = [float((a - b).abs().max()) for a, b in ((y, y2), (lse, lse2), (dqkv, dqkv2))]
        print(f"  self-check {key} (NH {NH}, NKV {NKV}): against per-head loops, max |diff| out {errs[0]:.1e}, "
              f"lse {errs[1]:.1e}, dqkv {errs[2]:.1e}")
        assert max(errs) < 1e-10
    return out, meta


def check_llama3(hs, theta, l3, inv_freq):
    """The float32 Llama 3 frequencies against the band rules evaluated in float64, one frequency at a time."""
    worst = 0.0
    for i in range(hs // 2):
        f = 1.0 / theta ** (2 * i / hs)
        wavelen = 2 * math.pi / f
        orig = l3["original_max_position_embeddings"]
        if wavelen < orig / l3["high_freq_factor"]:
            want = f
        elif wavelen > orig / l3["low_freq_factor"]:
            want = f / l3["factor"]
        else:
            s = (orig / wavelen - l3["low_freq_factor"]) / (l3["high_freq_factor"] - l3["low_freq_factor"])
            want = (1 - s) * f / l3["factor"] + s * f
        worst = max(worst, abs(float(inv_freq[i]) - want) / want)
    print(f"  self-check llama3 inv_freq: float32 against float64 band rules, max relative diff {worst:.1e}")
    assert worst < 1e-6


# ---- model goldens ----

def train_steps(out, opt, opt_cfg, params, loss_fn):
    """opt_cfg["steps"] AdamW steps with global-norm clipping and warmup + cosine; their losses, gradient norms
    and learning rates go into out ("losses", "grad_norms", "lrs")."""
    losses, norms, lrs = [], [], []
    for step in range(opt_cfg["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, opt_cfg["clip"])))
        lr = cosine_lr(step, opt_cfg["warmup"], opt_cfg["steps"], opt_cfg["max_lr"], opt_cfg["min_lr"])
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(float(loss))
        lrs.append(lr)
    out["losses"] = torch.tensor(losses, dtype=torch.float64)
    out["grad_norms"] = torch.tensor(norms, dtype=torch.float64)
    out["lrs"] = torch.tensor(lrs, dtype=torch.float64)
    return losses, norms


def model_golden(cfg, B, T, n_ignored, gen, init=gpt_init, forward=gpt_logits):
    P = {k: f32(v).requires_grad_() for k, v in init(cfg, gen, torch.float64, random_norms=True).items()}
    V = cfg["vocab_size"]
    idx = torch.randint(0, V, (B, T), generator=gen)
    tgt = torch.randint(0, V, (B, T), generator=gen)
    if n_ignored:
        flat = tgt.view(-1)
        flat[torch.randperm(B * T, generator=gen)[:n_ignored]] = -1
    out = {"inputs": idx, "targets": tgt}
    out.update({"init." + k: v.detach().clone() for k, v in P.items()})

    logits = forward(P, cfg, idx)
    loss = gpt_loss(logits, tgt)
    loss.backward()
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    out.update({"grad." + k: v.grad.clone() for k, v in P.items()})

    # eps 1e-6 rather than 1e-8: in GPT-2, the key part of c_attn.bias has an exactly zero gradient
    # (softmax ignores a shift shared by a row), so float32 gives it pure rounding noise (~1e-12), which
    # AdamW divides by sqrt(v) + eps; with 1e-8 that noise alone moves those biases by up to ~7e-5 of the
    # tensor's scale in 10 steps, too close to the 1e-4 tolerance to say anything about the implementation.
    opt_cfg = dict(steps=10, warmup=3, max_lr=3e-3, min_lr=3e-4, clip=0.5, beta1=0.9, beta2=0.95, eps=1e-6,
                   weight_decay=0.1)
    decay = [p for p in P.values() if p.dim() == 2]
    no_decay = [p for p in P.values() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": opt_cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=opt_cfg["max_lr"], betas=(opt_cfg["beta1"], opt_cfg["beta2"]), eps=opt_cfg["eps"])
    losses, norms = train_steps(out, opt, opt_cfg, list(P.values()), lambda: gpt_loss(forward(P, cfg, idx), tgt))
    out.update({"final." + k: v.detach().clone() for k, v in P.items()})
    meta = dict(cfg, B=B, T=T, **opt_cfg)
    print(f"  loss {float(out['loss']):.6f}, losses {losses[0]:.5f} .. {losses[-1]:.5f}, "
          f"grad norms {norms[0]:.4f} .. {norms[-1]:.4f}")
    return out, meta


def check_llama_model(name, cfg, t):
    """The golden file's logits, loss and gradients against llama_logits_loops from the same weights."""
    P = {k[len("init."):]: v.detach().clone().requires_grad_() for k, v in t.items() if k.startswith("init.")}
    logits = llama_logits_loops(P, cfg, t["inputs"])
    loss = gpt_loss(logits, t["targets"])
    loss.backward()
    e_logits = float((logits - t["logits"]).abs().max())
    e_loss = abs(float(loss) - float(t["loss"]))
    e_grad = max(float((P[k].grad - t["grad." + k]).abs().max()) for k in P)
    print(f"  self-check {name}: against per-row, per-head loops, max |diff| logits {e_logits:.1e}, "
          f"loss {e_loss:.1e}, gradients {e_grad:.1e}")
    assert max(e_logits, e_loss, e_grad) < 1e-10


def llama_cfg(n_layer, n_head, n_kv_head, n_embd, n_ff, vocab_size, block_size, norm_eps, rope_theta,
              tie_embeddings, llama3=None):
    cfg = dict(arch="llama", n_layer=n_layer, n_head=n_head, n_kv_head=n_kv_head, n_embd=n_embd, n_ff=n_ff,
               vocab_size=vocab_size, block_size=block_size, norm_eps=norm_eps, rope_theta=rope_theta,
               tie_embeddings=int(tie_embeddings), rope_scaling="llama3" if llama3 else "none")
    # without scaling, the neutral values (factor 1 leaves every frequency as it is)
    l3 = llama3 or dict(factor=1.0, low_freq_factor=1.0, high_freq_factor=4.0,
                        original_max_position_embeddings=block_size)
    cfg.update(rope_factor=l3["factor"], rope_low_freq_factor=l3["low_freq_factor"],
               rope_high_freq_factor=l3["high_freq_factor"],
               rope_original_max_position_embeddings=l3["original_max_position_embeddings"])
    return cfg


def llama_model_golden(name, cfg, B, T, n_ignored, gen):
    t, meta = model_golden(cfg, B=B, T=T, n_ignored=n_ignored, gen=gen, init=llama_init, forward=llama_logits)
    t["inv_freq"] = llama_inv_freq(cfg)
    if cfg["rope_scaling"] == "llama3":
        bands = rope_bands(cfg["n_embd"] // cfg["n_head"], cfg["rope_theta"], llama3_params(cfg))
        print(f"  {name} llama3 bands: {' '.join(bands)}")
        assert len(set(bands)) > 1, bands
    check_llama_model(name, cfg, t)
    return t, meta


# ---- LoRA goldens ----
#
# An adapter adds scale * B A x to a linear layer's output W x (A (r, in), B (out, r), scale = alpha / r),
# which is the layer with the weight W + scale * B A (nn.Linear) or W + scale * (B A)^T (GPT-2's Conv1D,
# stored (in, out)): the forward is the model's own forward with those weights, and autograd gives the
# gradients of A and B through them. B starts random here (not zero, as in training) so that every
# gradient is non-trivial.

LORA_TARGETS = {"c_attn": ("attn.c_attn",), "c_proj": ("attn.c_proj", "mlp.c_proj"), "c_fc": ("mlp.c_fc",),
                "q": ("self_attn.q_proj",), "k": ("self_attn.k_proj",), "v": ("self_attn.v_proj",),
                "o": ("self_attn.o_proj",), "gate": ("mlp.gate_proj",), "up": ("mlp.up_proj",),
                "down": ("mlp.down_proj",)}


MASK64 = (1 << 64) - 1


def dropout_keep(seed, n, p):
    """anvil's dropout mask (src/kernels/dropout_mask.h): element i of n is kept when 24 bits of SplitMix64's
    output for seed + (i + 1) * golden are at least p * 2^24 (p as a float32)."""
    i = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return torch.from_numpy((z >> np.uint64(40)) >= np.uint64(int(float(np.float32(p)) * 16777216.0)))


def lora_dropout_loss(base, L, cfg, idx, tgt, forward, adapted, conv1d, scale, p, seed):
    """The loss with LoRA dropout: every adapter reads its own dropped copy of its layer's input, the mask of
    adapter j of layer l drawn from seed ^ (64 l + j + 1) * 0xD1B54A32D192ED03 (anvil's anv_lora_adapter_seed)."""
    where = {}
    for n in adapted:
        parts = n.split(".")
        layer = int(parts[2] if parts[1] in ("h", "layers") else parts[1])
        where[(layer, ".".join(parts[-3:-1]))] = (sum(1 for k in where if k[0] == layer), n)
    keep_scale = np.float32(1) / (np.float32(1) - np.float32(p))

    def adapt(l, module, x, y):
        if (l, module) not in where:
            return y
        j, n = where[(l, module)]
        stem = "base_model.model." + n[:-len(".weight")]
        xs = x.reshape(-1, x.shape[-1])
        ad_seed = (seed ^ ((64 * l + j + 1) * 0xD1B54A32D192ED03)) & MASK64
        keep = dropout_keep(ad_seed, xs.numel(), p).reshape(xs.shape)
        xd = torch.where(keep, xs * float(keep_scale), torch.zeros_like(xs))
        delta = scale * (xd @ L[stem + ".lora_A.weight"].t() @ L[stem + ".lora_B.weight"].t())
        return y + delta.reshape(y.shape)

    return gpt_loss(forward(base, cfg, idx, adapt), tgt)


def lora_golden(cfg, B, T, rank, alpha, targets, gen, init, forward, dropout=0.25, dropout_seed=0x5EED1234ABCD):
    base = {k: f32(v) for k, v in init(cfg, gen, torch.float64, random_norms=True).items()}
    V = cfg["vocab_size"]
    idx = torch.randint(0, V, (B, T), generator=gen)
    tgt = torch.randint(0, V, (B, T), generator=gen)
    tgt.view(-1)[torch.randperm(B * T, generator=gen)[:3]] = -1
    conv1d = "arch" not in cfg
    modules = [m for t in targets.split(",") for m in LORA_TARGETS[t]]
    # the adapted weights in the base's (table) order, which is also the adapters' order
    adapted = [n for n in base if n.endswith(".weight") and any(n.endswith(m + ".weight") for m in modules)]
    scale = alpha / rank
    L = {}
    for n in adapted:
        w = base[n]
        fan_in, fan_out = (w.shape[0], w.shape[1]) if conv1d else (w.shape[1], w.shape[0])
        stem = "base_model.model." + n[:-len(".weight")]
        L[stem + ".lora_A.weight"] = f32(torch.randn(rank, fan_in, generator=gen, dtype=torch.float64) / rank)
        L[stem + ".lora_B.weight"] = f32(torch.randn(fan_out, rank, generator=gen, dtype=torch.float64) * 0.05)
    L = {k: v.requires_grad_() for k, v in L.items()}

    def effective():
        P = dict(base)
        for n in adapted:
            stem = "base_model.model." + n[:-len(".weight")]
            delta = scale * (L[stem + ".lora_B.weight"] @ L[stem + ".lora_A.weight"])
            P[n] = base[n] + (delta.t() if conv1d else delta)
        return P

    out = {"inputs": idx, "targets": tgt}
    out.update({"base." + k: v.clone() for k, v in base.items()})
    out.update({"init." + k: v.detach().clone() for k, v in L.items()})
    logits = forward(effective(), cfg, idx)
    loss = gpt_loss(logits, tgt)
    loss.backward()
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    out.update({"grad." + k: v.grad.clone() for k, v in L.items()})

    for v in L.values():
        v.grad = None
    loss = lora_dropout_loss(base, L, cfg, idx, tgt, forward, adapted, conv1d, scale, dropout, dropout_seed)
    loss.backward()
    out["dropout.loss"] = loss.detach().reshape(1)
    out.update({"dropout.grad." + k: v.grad.clone() for k, v in L.items()})

    opt_cfg = dict(steps=10, warmup=3, max_lr=3e-3, min_lr=3e-4, clip=0.5, beta1=0.9, beta2=0.95, eps=1e-8,
                   weight_decay=0.1)
    opt = torch.optim.AdamW(list(L.values()), lr=opt_cfg["max_lr"], betas=(opt_cfg["beta1"], opt_cfg["beta2"]),
                            eps=opt_cfg["eps"], weight_decay=opt_cfg["weight_decay"])
    losses, norms = train_steps(out, opt, opt_cfg, list(L.values()),
                                lambda: gpt_loss(forward(effective(), cfg, idx), tgt))
    out.update({"final." + k: v.detach().clone() for k, v in L.items()})
    meta = dict(cfg, B=B, T=T, lora_rank=rank, lora_alpha=alpha, lora_targets=targets, lora_dropout=dropout,
                dropout_seed=dropout_seed, **opt_cfg)
    print(f"  LoRA {targets}: {len(L)} adapter tensors, loss {float(out['loss']):.6f} "
          f"(dropout {dropout}: {float(out['dropout.loss']):.6f}), "
          f"losses {losses[0]:.5f} .. {losses[-1]:.5f}")
    return out, meta


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: torch_reference.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    write_safetensors(os.path.join(outdir, "kernels.safetensors"), kernel_goldens(gen), {"V": 70, "Vp": 128})
    cfg = dict(n_layer=2, n_head=4, n_embd=32, vocab_size=97, block_size=16)
    t, meta = model_golden(cfg, B=2, T=12, n_ignored=5, gen=gen)
    write_safetensors(os.path.join(outdir, "gpt_v97.safetensors"), t, meta)
    cfg = dict(n_layer=2, n_head=3, n_embd=24, vocab_size=128, block_size=8)
    t, meta = model_golden(cfg, B=3, T=8, n_ignored=0, gen=gen)
    write_safetensors(os.path.join(outdir, "gpt_t8.safetensors"), t, meta)

    gen = torch.Generator().manual_seed(5678)
    t, meta = llama_kernel_goldens(gen)
    write_safetensors(os.path.join(outdir, "kernels_llama.safetensors"), t, meta)
    cfg = llama_cfg(n_layer=2, n_head=4, n_kv_head=2, n_embd=32, n_ff=48, vocab_size=97, block_size=16,
                    norm_eps=1e-5, rope_theta=10000.0, tie_embeddings=False)
    t, meta = llama_model_golden("llama_v97", cfg, B=2, T=12, n_ignored=5, gen=gen)
    write_safetensors(os.path.join(outdir, "llama_v97.safetensors"), t, meta)
    cfg = llama_cfg(n_layer=2, n_head=4, n_kv_head=1, n_embd=32, n_ff=40, vocab_size=128, block_size=8,
                    norm_eps=1e-6, rope_theta=500000.0, tie_embeddings=True,
                    llama3=dict(factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                original_max_position_embeddings=8))
    t, meta = llama_model_golden("llama_t8", cfg, B=3, T=8, n_ignored=0, gen=gen)
    write_safetensors(os.path.join(outdir, "llama_t8.safetensors"), t, meta)

    gen = torch.Generator().manual_seed(9012)
    cfg = dict(n_layer=2, n_head=4, n_embd=32, vocab_size=97, block_size=16)
    t, meta = lora_golden(cfg, B=2, T=12, rank=4, alpha=8.0, targets="c_attn,c_proj,c_fc", gen=gen, init=gpt_init,
                          forward=gpt_logits)
    write_safetensors(os.path.join(outdir, "lora_gpt.safetensors"), t, meta)
    cfg = llama_cfg(n_layer=2, n_head=4, n_kv_head=2, n_embd=32, n_ff=48, vocab_size=97, block_size=16,
                    norm_eps=1e-5, rope_theta=10000.0, tie_embeddings=False)
    t, meta = lora_golden(cfg, B=2, T=12, rank=3, alpha=6.0, targets="k,v,o,gate,down", gen=gen, init=llama_init,
                          forward=llama_logits)
    write_safetensors(os.path.join(outdir, "lora_llama.safetensors"), t, meta)


if __name__ == "__main__":
    main()
