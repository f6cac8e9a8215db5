#!/usr/bin/python3
"""The PyTorch peer of `anvil eval --task hellaswag` for bench/eval_vs_pytorch.sh: the same examples and
tokens (tools/eval_reference.py's task reader and BPE), scored the way lm-evaluation-harness scores with a
Hugging Face model: each example's choices as one right-padded batch of context + continuation through a
plain float32 GPT-2 (causal attention, Debian's torch 1.13 has no fused kernel), log-softmax, the continuation's sum. Only the
scoring is timed. Prints one JSON line: examples, seconds, examples_per_s, acc, acc_norm.

    /usr/bin/python3 bench/eval_torch.py HF_DIR FILE THREADS"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from eval_reference import Bpe, hellaswag  # noqa: E402
from hf_check import load_model  # noqa: E402


def gpt2_batch(cfg, w, ids):  # ids (B, T) -> logits (B, T, V)
    C, H, L, eps = cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["layer_norm_epsilon"]
    B, T = ids.shape
    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(L):
        p = f"h.{i}."
        h = F.layer_norm(x, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = (h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2) / (C // H) ** 0.5).masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        h = F.gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"], eps)
    return x @ w["wte.weight"].T


def main():
    hf, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    name, forward, cfg, w = load_model(hf)
    bpe = Bpe(os.path.join(hf, "tokenizer.json"))
    examples = []
    for line, context, conts, answer in hellaswag(path):
        ctx = [bpe.eot] + bpe.encode(context)
        examples.append((ctx, [bpe.encode(c) for c in conts], [len(c.encode()) for c in conts], answer))
    right = [0, 0]
    t0 = time.perf_counter()
    with torch.no_grad():
        for ctx, conts, nbytes, answer in examples:
            seqs = [ctx + c[:-1] for c in conts]
            T = max(len(s) for s in seqs)
            ids = torch.tensor([s + [0] * (T - len(s)) for s in seqs])
            lp = gpt2_batch(cfg, w, ids).log_softmax(-1)
            scores = [sum(lp[b, len(ctx) - 1 + i, t].item() for i, t in enumerate(c)) for b, c in enumerate(conts)]
            right[0] += max(range(len(scores)), key=lambda i: scores[i]) == answer
            right[1] += max(range(len(scores)), key=lambda i: scores[i] / nbytes[i]) == answer
    s = time.perf_counter() - t0
    n = len(examples)
    print(json.dumps({"examples": n, "seconds": s, "examples_per_s": n / s, "acc": right[0] / n, "acc_norm": right[1] / n}))


if __name__ == "__main__":
    main()
