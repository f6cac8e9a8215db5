#!/usr/bin/python3
"""PyTorch counterpart of `anvil bench train`: times whole training steps (zero_grad, forward,
backward, clip, AdamW) of the same GPT-2 or Llama (tools/torch_reference.py's definitions, the equations
of Hugging Face's GPT2LMHeadModel and LlamaForCausalLM with eager attention) on 2 threads, in fp32
or with bf16 autocast (torch.autocast("cpu", dtype=torch.bfloat16): bf16 matmuls, fp32 weights and
optimizer state).

Usage: /usr/bin/python3 bench/torch_model.py [--preset gpt2-124m] [--batch 4] [--seq 64] [--threads 2]
                                             [--steps 5] [--warmup 2] [--precision fp32|bf16]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_reference import gpt_init, gpt_logits, gpt_loss, llama_cfg, llama_init, llama_logits  # noqa: E402

PRESETS = {
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, vocab_size=50257, block_size=256),
    "small": dict(n_layer=6, n_head=6, n_embd=384, vocab_size=50257, block_size=512),
    "gpt2-124m": dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, block_size=1024),
    "gpt2-350m": dict(n_layer=24, n_head=16, n_embd=1024, vocab_size=50257, block_size=1024),
    # anvil's Llama presets (src/model/config.c)
    "llama-tiny": llama_cfg(4, 4, 2, 128, 384, 50257, 256, 1e-5, 10000.0, True),
    "llama-small": llama_cfg(6, 6, 2, 384, 1024, 50257, 512, 1e-5, 10000.0, True),
    "smollm2-135m": llama_cfg(30, 9, 3, 576, 1536, 49152, 2048, 1e-5, 100000.0, True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt2-124m", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = PRESETS[a.preset]
    gen = torch.Generator().manual_seed(1)
    llama = cfg.get("arch") == "llama"
    init, forward = (llama_init, llama_logits) if llama else (gpt_init, gpt_logits)
    P = {k: v.requires_grad_() for k, v in init(cfg, gen, torch.float32).items()}
    tokens = torch.randint(0, cfg["vocab_size"], (a.batch * a.seq + 1,), generator=gen)
    idx, tgt = tokens[:-1].view(a.batch, a.seq), tokens[1:].view(a.batch, a.seq)
    opt = torch.optim.AdamW([{"params": [p for p in P.values() if p.dim() == 2], "weight_decay": 0.1},
                             {"params": [p for p in P.values() if p.dim() == 1], "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = gpt_loss(forward(P, cfg, idx), tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(dt)
        print(f"  step {s}: {dt:.3f} s, loss {loss.item():.4f}", file=sys.stderr)
    med = statistics.median(times)
    tok = a.batch * a.seq / med
    n_params = sum(p.numel() for p in P.values())  # a tied head is the embedding, counted once
    flops = 6.0 * n_params + 12.0 * cfg["n_layer"] * cfg["n_embd"] * a.seq
    print(f"pytorch {a.preset} {a.precision} B={a.batch} T={a.seq} threads={torch.get_num_threads()}: {med:.3f} s/step "
          f"(median of {a.steps}), {tok:.1f} tokens/s, {tok * flops / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
