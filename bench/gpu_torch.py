#!/usr/bin/env python3
"""PyTorch's GPU training speed for GPT-2, the baseline `anvil bench train --device cuda` is compared with
(scripts/gpu-check): the model as PyTorch users run it fast (nanoGPT style: fused QKV, flash attention
through F.scaled_dot_product_attention, tied embeddings, the vocabulary padded to a multiple of 64 as
anvil pads it), torch.compile, bf16 autocast with fp32 weights, fused AdamW. Each step is what anvil's
bench times: zero_grad, forward, backward, global-norm clipping at 1.0, AdamW. After the warm-up steps
(compilation included) it prints the median step as tokens/s and MFU: tokens/s x (6 N + 12 L C T) over
the GPU's dense bf16 peak, N the parameters at the real vocabulary (anvil's anv_model_flops_per_token).
(tools/torch_reference.py is the numerical reference; it builds attention from its matrices, too slow
for a speed baseline.)

Usage: python3 bench/gpu_torch.py [--preset gpt2-124m] [--batch 16] [--seq 1024] [--steps 10] [--warmup 3]
                                  [--device cuda|cpu] [--no-compile]
       python3 bench/gpu_torch.py --print-peak    # the dense bf16 peak in TFLOP/s of this GPU, empty if unknown
The last line is machine-readable: "gpu_torch: tokens_per_s=... mfu=... step_s=... compiled=0|1".
GPU_PEAK_TFLOPS overrides the peak of an unknown (or another) GPU.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_model import PRESETS, num_params  # noqa: E402

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, by a piece of torch.cuda.get_device_name();
# the first match wins, so the specific names come before "H100".
PEAKS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("GH200", 989.0), ("H200", 989.0), ("H100", 989.0),
         ("A100", 312.0), ("L40S", 362.0)]


def gpu_peak_tflops():
    if os.environ.get("GPU_PEAK_TFLOPS"):
        return float(os.environ["GPU_PEAK_TFLOPS"])
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAKS if key in name), None)


def attention(q, k, v):
    """Causal attention (B, nh, T, hs): flash attention where PyTorch has it (2.0 on), else by its matrices
    (Debian's PyTorch 1.13, CPU only)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[2]
    att = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    att = att.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return F.softmax(att, dim=-1) @ v


class Block(nn.Module):
    def __init__(self, C, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = attention(q, k, v)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, Vp = cfg["n_embd"], (cfg["vocab_size"] + 63) // 64 * 64
        self.wte, self.wpe = nn.Embedding(Vp, C), nn.Embedding(cfg["block_size"], C)
        self.h = nn.ModuleList(Block(C, cfg["n_head"]) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(C)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / (2 * cfg["n_layer"]) ** 0.5 if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied LM head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt2-124m", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--print-peak", action="store_true")
    a = ap.parse_args()
    peak = gpu_peak_tflops() if a.device == "cuda" else None
    if a.print_peak:
        print("" if peak is None else f"{peak:g}")
        return
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_torch: no CUDA device visible to PyTorch")
    cfg = PRESETS[a.preset]
    if not 1 <= a.seq <= cfg["block_size"]:
        sys.exit(f"gpu_torch: --seq must be 1..{cfg['block_size']}")
    torch.manual_seed(1)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device(a.device)
    model = GPT(cfg).to(dev)
    decay = [p for p in model.parameters() if p.dim() == 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
        fused = True
    except (TypeError, RuntimeError):  # older PyTorch, or no fused kernel for this device
        opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
        fused = False
    step_model = torch.compile(model) if not a.no_compile and hasattr(torch, "compile") else model
    tokens = torch.randint(0, cfg["vocab_size"], (a.batch * a.seq + 1,), device=dev)
    idx, tgt = tokens[:-1].view(a.batch, a.seq), tokens[1:].view(a.batch, a.seq)

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(a.device, dtype=torch.bfloat16):
            loss = step_model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    times = []
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        try:
            loss = step()
        except Exception as e:  # compilation happens at the first call; without a working compiler: eager
            if s > 0 or step_model is model:
                raise
            print(f"gpu_torch: torch.compile failed ({type(e).__name__}: {e}); timing eager PyTorch", file=sys.stderr)
            step_model = model
            loss = step()
        sync()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(dt)
        print(f"  step {s}{' (warm-up)' if s < a.warmup else ''}: {dt:.4f} s, loss {loss.item():.4f}", file=sys.stderr)
    compiled = step_model is not model
    med = statistics.median(times)
    tok_s = a.batch * a.seq / med
    flops = 6.0 * num_params(cfg) + 12.0 * cfg["n_layer"] * cfg["n_embd"] * a.seq
    mfu = tok_s * flops / (peak * 1e12) if peak else None
    name = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    print(f"pytorch {torch.__version__} on {name}: {a.preset} B={a.batch} T={a.seq} bf16 autocast, "
          f"{'torch.compile' if compiled else 'eager'}, {'fused' if fused else 'unfused'} AdamW: {med:.4f} s/step "
          f"(median of {a.steps} after {a.warmup} warm-up), {tok_s:.0f} tokens/s, {tok_s * flops / 1e12:.1f} TFLOP/s, "
          + (f"MFU {100 * mfu:.1f}% of {peak:g} TFLOP/s" if mfu else "MFU n/a (unknown peak)"))
    print(f"gpu_torch: tokens_per_s={tok_s:.1f} mfu={'' if mfu is None else f'{mfu:.4f}'} step_s={med:.5f} "
          f"compiled={int(compiled)}")


if __name__ == "__main__":
    main()
