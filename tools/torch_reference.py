#!/usr/bin/python3
"""PyTorch reference for anvil's GPT-2 numerics: writes the golden files the C tests compare against.

Regenerate (plain PyTorch, no transformers library):
    /usr/bin/python3 tools/torch_reference.py tests/golden

Writes, each a safetensors file (8-byte little-endian header length, JSON header
{name: {dtype, shape, data_offsets}}, raw little-endian data; config values in "__metadata__"):
  kernels.safetensors      every kernel's forward and backward on small random inputs
  gpt_v97.safetensors      GPT-2, vocab 97 (padded to 128 inside anvil), T < block_size, ignored targets
  gpt_t8.safetensors       GPT-2, vocab 128, T == block_size
For the models: initial weights (Hugging Face GPT-2 names, Conv1D (in, out) layout), tokens, logits,
loss, every parameter gradient, then 10 AdamW steps with global-norm clipping and warmup + cosine
learning rate: the losses, gradient norms, learning rates and the final weights.

Everything is computed in float64 from the float32 values that are stored, so the files hold the exact
answer (rounded to float32) and the C side's float32 error is what the tests measure.
"""
import json
import math
import os
import struct
import sys

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


def gpt_logits(P, cfg, idx):
    """GPT-2 forward: P maps Hugging Face names to tensors; idx (B, T) -> logits (B, T, V)."""
    B, T = idx.shape
    C = cfg["n_embd"]
    x = P["transformer.wte.weight"][idx] + P["transformer.wpe.weight"][:T]
    for l in range(cfg["n_layer"]):
        ln1w, ln1b, aw, ab, pw, pb, ln2w, ln2b, fw, fb, fpw, fpb = (P[n] for n in layer_names(l))
        h = F.layer_norm(x, (C,), ln1w, ln1b, LN_EPS)
        y, _ = causal_attention(h @ aw + ab, cfg["n_head"])
        x = x + y @ pw + pb
        h = F.layer_norm(x, (C,), ln2w, ln2b, LN_EPS)
        x = x + F.gelu(h @ fw + fb, approximate="tanh") @ fpw + fpb
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

def kernel_goldens(gen):
    out = {}

    def rnd(*shape, scale=1.0):
        return f32(torch.randn(shape, generator=gen, dtype=torch.float64) * scale)

    def grads(y, dy, *xs):
        for x in xs:
            x.grad = None
        y.backward(dy)
        return [x.grad for x in xs]

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


# ---- model goldens ----

def model_golden(cfg, B, T, n_ignored, gen):
    P = {k: f32(v).requires_grad_() for k, v in gpt_init(cfg, gen, torch.float64, random_norms=True).items()}
    V = cfg["vocab_size"]
    idx = torch.randint(0, V, (B, T), generator=gen)
    tgt = torch.randint(0, V, (B, T), generator=gen)
    if n_ignored:
        flat = tgt.view(-1)
        flat[torch.randperm(B * T, generator=gen)[:n_ignored]] = -1
    out = {"inputs": idx, "targets": tgt}
    out.update({"init." + k: v.detach().clone() for k, v in P.items()})

    logits = gpt_logits(P, cfg, idx)
    loss = gpt_loss(logits, tgt)
    loss.backward()
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    out.update({"grad." + k: v.grad.clone() for k, v in P.items()})

    # eps 1e-6 rather than 1e-8: the key part of c_attn.bias has an exactly zero gradient (softmax ignores
    # a shift shared by a row), so float32 gives it pure rounding noise (~1e-12), which AdamW divides by
    # sqrt(v) + eps; with 1e-8 that noise alone moves those biases by up to ~7e-5 of the tensor's scale
    # in 10 steps, too close to the 1e-4 tolerance to say anything about the implementation.
    opt_cfg = dict(steps=10, warmup=3, max_lr=3e-3, min_lr=3e-4, clip=0.5, beta1=0.9, beta2=0.95, eps=1e-6,
                   weight_decay=0.1)
    decay = [p for p in P.values() if p.dim() == 2]
    no_decay = [p for p in P.values() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": opt_cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=opt_cfg["max_lr"], betas=(opt_cfg["beta1"], opt_cfg["beta2"]), eps=opt_cfg["eps"])
    losses, norms, lrs = [], [], []
    for step in range(opt_cfg["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = gpt_loss(gpt_logits(P, cfg, idx), tgt)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(P.values()), opt_cfg["clip"])))
        lr = cosine_lr(step, opt_cfg["warmup"], opt_cfg["steps"], opt_cfg["max_lr"], opt_cfg["min_lr"])
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(float(loss))
        lrs.append(lr)
    out["losses"] = torch.tensor(losses, dtype=torch.float64)
    out["grad_norms"] = torch.tensor(norms, dtype=torch.float64)
    out["lrs"] = torch.tensor(lrs, dtype=torch.float64)
    out.update({"final." + k: v.detach().clone() for k, v in P.items()})
    meta = dict(cfg, B=B, T=T, **opt_cfg)
    print(f"  loss {float(out['loss']):.6f}, losses {losses[0]:.5f} .. {losses[-1]:.5f}, "
          f"grad norms {norms[0]:.4f} .. {norms[-1]:.4f}")
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


if __name__ == "__main__":
    main()
