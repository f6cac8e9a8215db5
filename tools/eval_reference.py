#!/usr/bin/python3
"""Plain PyTorch scorer for `anvil eval --task`, written apart from anvil's C code: it builds each task's
examples from the file itself, encodes them with its own byte-level BPE (from tokenizer.json), runs the
model of a Hugging Face directory (tools/hf_check.py's forward, full sequences, no KV cache, float64)
and writes what `anvil eval --out` writes, one JSON object per example or document.

    /usr/bin/python3 tools/eval_reference.py score HF_DIR TASK FILE [--stride S] > EXPECTED.jsonl
    /usr/bin/python3 tools/eval_reference.py generate DIR

`score` reads HF_DIR/config.json, model.safetensors and tokenizer.json (what `anvil export --format hf`
writes). `generate` regenerates the committed test set in DIR (tests/golden/eval): a small byte-level
BPE tokenizer trained here on the task texts, a GPT-2 and a Llama model with seeded random weights (block
of 64 positions, so long contexts are truncated and long texts take several windows), the task files in
every format anvil reads, and each model's expected output for each task. Needs python3-torch,
python3-numpy and python3-regex (scripts/install-deps.sh reference).

The rules, as anvil/eval.h states them: the context is [end-of-text] + its tokens; each choice is scored as
" " + choice; when context and the longest continuation exceed the block, the context keeps its newest
block + 1 - longest tokens; acc_norm divides by the continuation's bytes; HellaSwag's context and endings
are preprocessed as lm-evaluation-harness does; text documents are scored in windows of the block moving by
the stride, each token once, with the context its window gives."""
import gzip
import json
import math
import os
import re
import struct
import sys

import regex
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_check import load_model  # noqa: E402

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_chars():
    """GPT-2's printable stand-in for each byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    extra = 0
    out = {}
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


class Bpe:
    def __init__(self, tokenizer_json):
        t = json.load(open(tokenizer_json))
        self.vocab = t["model"]["vocab"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in t["model"]["merges"]]
        self.rank = {m: i for i, m in enumerate(merges)}
        self.eot = next(a["id"] for a in t["added_tokens"] if a["content"] == "<|endoftext|>")
        self.chars = byte_chars()
        self.pattern = regex.compile(GPT2_PATTERN)

    def word(self, piece):
        parts = [self.chars[b] for b in piece.encode("utf-8")]
        while len(parts) > 1:
            pairs = [(self.rank.get((parts[i], parts[i + 1]), math.inf), i) for i in range(len(parts) - 1)]
            best = min(pairs)[0]
            if best == math.inf:
                break
            a, b = next((parts[i], parts[i + 1]) for r, i in pairs if r == best)
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return [self.vocab[p] for p in parts]

    def encode(self, text):
        return [i for piece in self.pattern.findall(text) for i in self.word(piece)]


# ---- tasks: each example as (line, context, continuations, answer) ----

def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def json_lines(path):
    for n, line in enumerate(read_text(path).split("\n"), 1):
        if line.strip():
            yield n, json.loads(line)


def harness_preprocess(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag(path):
    text = read_text(path)
    if not text.lstrip().startswith("{"):  # llama.cpp: context, answer, 4 endings
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for i in range(0, len(lines), 6):
            yield i + 1, lines[i], [" " + e for e in lines[i + 2:i + 6]], int(lines[i + 1])
        return
    for n, d in json_lines(path):
        if all(k in d for k in ("activity_label", "ctx_a", "ctx_b")):
            ctx = harness_preprocess(d["activity_label"] + ": " + d["ctx_a"] + " " + d["ctx_b"].capitalize())
            endings = [harness_preprocess(e) for e in d["endings"]]
        else:
            ctx, endings = d["ctx"], d["endings"]
        yield n, ctx, [" " + e for e in endings], int(d["label"])


def multiple_choice(path):
    for n, d in json_lines(path):
        yield n, d["context"], [" " + c for c in d["choices"]], d["answer"]


def lambada(path):
    for n, d in json_lines(path):
        context, word = d["text"].rsplit(" ", 1)
        yield n, context, [" " + word], 0


def documents(path):
    if path.endswith(".jsonl") or path.endswith(".jsonl.gz"):
        for n, d in json_lines(path):
            yield n, d["text"].replace("\r\n", "\n").replace("\r", "\n")
    else:
        yield 1, read_text(path).replace("\r\n", "\n").replace("\r", "\n")


# ---- scoring ----

def log_softmax_rows(logits):
    return logits - logits.logsumexp(-1, keepdim=True)


def score_choices(model, bpe, examples):
    name, forward, cfg, w = model
    T = cfg.get("n_positions", cfg.get("max_position_embeddings"))
    for line, context, conts, answer in examples:
        ctx = [bpe.eot] + bpe.encode(context)
        toks = [bpe.encode(c) for c in conts]
        keep = min(len(ctx), T + 1 - max(len(t) for t in toks))
        cut, ctx = len(ctx) - keep, ctx[len(ctx) - keep:]
        logprobs, greedy = [], []
        for t in toks:
            ids = ctx + t[:-1]
            lp = log_softmax_rows(forward(cfg, w, torch.tensor(ids)))[keep - 1:]
            logprobs.append(sum(lp[i, t[i]].item() for i in range(len(t))))
            greedy.append(all(lp[i].argmax().item() == t[i] for i in range(len(t))))
        nbytes = [len(c.encode("utf-8")) for c in conts]
        best = lambda v: max(range(len(v)), key=lambda i: (v[i], -i))
        yield {"line": line, "context_tokens": keep, "context_cut": cut, "answer": answer, "logprobs": logprobs,
               "tokens": [len(t) for t in toks], "bytes": nbytes, "greedy": greedy, "pred": best(logprobs),
               "pred_norm": best([l / b for l, b in zip(logprobs, nbytes)]),
               "pred_token_mean": best([l / len(t) for l, t in zip(logprobs, toks)])}


def score_text(model, bpe, docs, stride):
    name, forward, cfg, w = model
    T = cfg.get("n_positions", cfg.get("max_position_embeddings"))
    stride = stride or max(T // 2, 1)
    for line, text in docs:
        ids = [bpe.eot] + bpe.encode(text)
        nll, done, start = 0.0, 1, 0
        while done < len(ids):  # the window starting at `start` scores targets [done, end)
            end = min(start + T + 1, len(ids))
            lp = log_softmax_rows(forward(cfg, w, torch.tensor(ids[start:end - 1])))
            nll -= sum(lp[p - 1 - start, ids[p]].item() for p in range(done, end))
            done, start = end, start + stride
        yield {"line": line, "tokens": len(ids) - 1, "bytes": len(text.encode("utf-8")), "nll": nll}


def prompt_logprobs(model, bpe, text, top=5):
    """What `anvil serve` answers to echo + logprobs: each token of [end-of-text] + text with its
    log-probability (null for the first) and the top most likely tokens (their text) at its position."""
    name, forward, cfg, w = model
    ids = [bpe.eot] + bpe.encode(text)
    with torch.no_grad():
        lp = log_softmax_rows(forward(cfg, w, torch.tensor(ids)))
    inverse = {v: k for k, v in bpe.vocab.items()}
    to_byte = {c: b for b, c in bpe.chars.items()}

    def text_of(i):  # OpenAI's "bytes:\\xNN" for a token that is not whole UTF-8 characters
        raw = bytes(to_byte[c] for c in inverse[i])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)

    rows = [None] + [sorted(range(lp.shape[1]), key=lambda v: (-lp[p - 1, v].item(), v))[:top] for p in range(1, len(ids))]
    return {"prompt": text, "ids": ids, "tokens": [text_of(i) for i in ids[1:]],
            "token_logprobs": [None] + [lp[p - 1, ids[p]].item() for p in range(1, len(ids))],
            "top_logprobs": [None] + [{text_of(v): lp[p - 1, v].item() for v in rows[p]} for p in range(1, len(ids))]}


TASKS = {"hellaswag": hellaswag, "mc": multiple_choice, "lambada": lambada}


def score(hf_dir, task, path, stride=0):
    model = load_model(hf_dir)
    model[3].update({k: v.double() for k, v in model[3].items()})
    bpe = Bpe(os.path.join(hf_dir, "tokenizer.json"))
    with torch.no_grad():
        if task == "text":
            return list(score_text(model, bpe, documents(path), stride))
        return list(score_choices(model, bpe, TASKS[task](path)))


# ---- the committed test set ----

TEXTS = [
    "The harbour was quiet in the early morning, and the boats rocked slowly against the stone wall.",
    "She counted the coins twice, then put them back in the tin box under the bed.",
    "Rain fell on the roof all night; by dawn the river had risen over the road.",
    "He said he'd read the letter, but the envelope was still sealed when we found it.",
    "In 1851 the ship left port with 31 men, 4 boats and enough bread for 2 years.",
    "The teacher wrote three words on the board: patience, practice and courage.",
]

HELLASWAG_JSONL = [
    {"activity_label": "Sailing", "ctx_a": "A man stands on the deck of a small boat.", "ctx_b": "he PULLS the rope",
     "ctx": "unused", "endings": ["and the sail fills with wind.", "and eats a [strange] chair.",
                                  "[title] quickly. The sail rises.", "  then  sleeps on the oars.  "],
     "label": "0"},
    {"activity_label": "Cooking", "ctx_a": "A woman puts bread in the oven.", "ctx_b": "she",
     "ctx": "unused", "endings": ["waits for it to bake.", "paints the oven blue.", "reads the bread a story.",
                                  "throws the oven into the river."], "label": 0},
    {"activity_label": "Running a marathon", "ctx_a": "[header] How to train [title] Start slowly.",
     "ctx_b": "run three times a week", "ctx": "unused",
     "endings": ["and add a longer run on the weekend.", "and never drink water.", "on the ceiling.",
                 "while counting the coins in the tin box under the bed twice."], "label": "0"},
    {"ctx": "The children ran to the beach and", "endings": ["built a castle of sand.", "flew to the moon.",
                                                             "read the newspaper in French.", "sank."],
     "label": 0},
]

HELLASWAG_TXT = [
    ("Fishing: A man casts a line from the pier. He", 1,
     ["sells the pier.", "waits for a fish to bite.", "swims to the boat.", "sings to the gulls."]),
    ("Baking: The baker mixes flour and water. She", 0,
     ["kneads the dough.", "drives a bus.", "paints a fence.", "counts the stars."]),
    ("Rowing: Four people sit in a long boat. They", 2,
     ["sleep on the water.", "eat the oars.", "pull the oars together.", "read letters aloud."]),
]

MC = [
    {"context": "Question: What falls from clouds? Answer:", "choices": ["rain", "bread", "coins"], "answer": 0},
    {"context": "The river had risen over the", "choices": ["road", "sky", "teacher", "number 4"], "answer": 0},
    {"context": "She put the coins back in the", "choices": ["tin box", "river"], "answer": 0},
    {"context": " ".join(TEXTS), "choices": ["The end.", "A long, long story about boats and bread and rain."],
     "answer": 1},
    {"context": "Three words on the board:", "choices": ["patience, practice and courage", "x", "2 years"],
     "answer": 0},
]

LAMBADA = [{"text": t.rstrip(".")} for t in TEXTS] + [{"text": " ".join(TEXTS[:4])}]


def train_bpe(text, merges):
    chars = byte_chars()
    words = {}
    for piece in regex.findall(GPT2_PATTERN, text):
        key = tuple(chars[b] for b in piece.encode("utf-8"))
        words[key] = words.get(key, 0) + 1
    out = []
    for _ in range(merges):
        counts = {}
        for w, c in words.items():
            for p in zip(w, w[1:]):
                counts[p] = counts.get(p, 0) + c
        if not counts:
            break
        pair = max(counts, key=lambda p: (counts[p], p))
        out.append(pair)
        joined = {}
        for w, c in words.items():
            merged, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == pair:
                    merged.append(w[i] + w[i + 1])
                    i += 2
                else:
                    merged.append(w[i])
                    i += 1
            joined[tuple(merged)] = joined.get(tuple(merged), 0) + c
        words = joined
    vocab = {chars[b]: b for b in range(256)}
    for a, b in out:
        vocab[a + b] = len(vocab)
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": len(vocab), "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in out]},
    }


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, t in tensors.items():
        data = t.float().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def random_model(arch, vocab, gen):
    C, L, T = 32, 2, 64

    def rnd(*shape, std=0.2):
        return torch.randn(*shape, generator=gen) * std

    if arch == "gpt2":
        cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": L, "n_head": 4, "n_embd": C,
               "n_inner": 4 * C, "vocab_size": vocab, "n_positions": T, "n_ctx": T, "activation_function": "gelu_new",
               "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True}
        w = {"wte.weight": rnd(vocab, C, std=0.5), "wpe.weight": rnd(T, C), "ln_f.weight": 1 + rnd(C, std=0.1),
             "ln_f.bias": rnd(C, std=0.1)}
        for i in range(L):
            p = f"h.{i}."
            w.update({p + "ln_1.weight": 1 + rnd(C, std=0.1), p + "ln_1.bias": rnd(C, std=0.1),
                      p + "attn.c_attn.weight": rnd(C, 3 * C), p + "attn.c_attn.bias": rnd(3 * C, std=0.05),
                      p + "attn.c_proj.weight": rnd(C, C), p + "attn.c_proj.bias": rnd(C, std=0.05),
                      p + "ln_2.weight": 1 + rnd(C, std=0.1), p + "ln_2.bias": rnd(C, std=0.1),
                      p + "mlp.c_fc.weight": rnd(C, 4 * C), p + "mlp.c_fc.bias": rnd(4 * C, std=0.05),
                      p + "mlp.c_proj.weight": rnd(4 * C, C), p + "mlp.c_proj.bias": rnd(C, std=0.05)})
        return cfg, w
    F_ = 64
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": C, "intermediate_size": F_,
           "num_hidden_layers": L, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": vocab,
           "max_position_embeddings": T, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
           "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False}
    w = {"model.embed_tokens.weight": rnd(vocab, C, std=0.5), "model.norm.weight": 1 + rnd(C, std=0.1),
         "lm_head.weight": rnd(vocab, C, std=0.5)}
    for i in range(L):
        p = f"model.layers.{i}."
        w.update({p + "input_layernorm.weight": 1 + rnd(C, std=0.1),
                  p + "self_attn.q_proj.weight": rnd(C, C), p + "self_attn.k_proj.weight": rnd(C // 2, C),
                  p + "self_attn.v_proj.weight": rnd(C // 2, C), p + "self_attn.o_proj.weight": rnd(C, C),
                  p + "post_attention_layernorm.weight": 1 + rnd(C, std=0.1),
                  p + "mlp.gate_proj.weight": rnd(F_, C), p + "mlp.up_proj.weight": rnd(F_, C),
                  p + "mlp.down_proj.weight": rnd(C, F_)})
    return cfg, w


def write_lines(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def generate(out):
    os.makedirs(out, exist_ok=True)
    write_lines(f"{out}/hellaswag.jsonl", HELLASWAG_JSONL)
    with open(f"{out}/hellaswag.txt", "w") as f:
        for ctx, answer, endings in HELLASWAG_TXT:
            f.write("\n".join([ctx, str(answer)] + endings) + "\n")
    write_lines(f"{out}/mc.jsonl", MC)
    write_lines(f"{out}/lambada.jsonl", LAMBADA)
    docs = [" ".join(TEXTS * 3), TEXTS[1], "\n\n".join(TEXTS[::-1])]
    write_lines(f"{out}/text.jsonl", [{"text": d} for d in docs])
    with open(f"{out}/text.txt", "w") as f:
        f.write(" ".join(TEXTS * 4) + "\n")
    corpus = "\n".join(TEXTS) + json.dumps([HELLASWAG_JSONL, HELLASWAG_TXT, MC])
    tokenizer = train_bpe(corpus, 200)
    vocab = len(tokenizer["model"]["vocab"]) + 1
    gen = torch.Generator().manual_seed(1234)
    runs = [("hellaswag", "hellaswag.jsonl", 0), ("hellaswag", "hellaswag.txt", 0), ("mc", "mc.jsonl", 0),
            ("lambada", "lambada.jsonl", 0), ("text", "text.jsonl", 0), ("text", "text.txt", 0),
            ("text", "text.txt", 24)]
    for arch in ("gpt2", "llama"):
        d = f"{out}/{arch}"
        os.makedirs(d, exist_ok=True)
        cfg, w = random_model(arch, vocab, gen)
        json.dump(cfg, open(f"{d}/config.json", "w"), indent=2)
        write_safetensors(f"{d}/model.safetensors", w)
        json.dump(tokenizer, open(f"{d}/tokenizer.json", "w"), ensure_ascii=False)
        model = load_model(d)
        model[3].update({k: v.double() for k, v in model[3].items()})
        with open(f"{out}/{arch}.logprobs.expected", "w") as f:
            json.dump(prompt_logprobs(model, Bpe(f"{d}/tokenizer.json"), TEXTS[4]), f)
        for task, name, stride in runs:
            suffix = f".stride{stride}" if stride else ""
            write_lines(f"{out}/{arch}.{name}{suffix}.expected", score(d, task, f"{out}/{name}", stride))
            print(f"{out}/{arch}.{name}{suffix}.expected")


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "generate":
        generate(args[1])
    elif len(args) in (4, 6) and args[0] == "score":
        stride = int(args[5]) if len(args) == 6 and args[4] == "--stride" else 0
        for row in score(args[1], args[2], args[3], stride):
            print(json.dumps(row))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
