#!/usr/bin/python3
"""Compares `anvil eval --task ... --out` with tools/eval_reference.py's expected output, line by line:
every field equal (lines, token and byte counts, greedy flags, the three predictions) except the
log-probabilities, which must agree within the tolerance (a text document's nll per token).

    /usr/bin/python3 tools/eval_compare.py EXPECTED.jsonl ANVIL.jsonl [--tol 1e-4]

Prints the largest difference; exits 1 on any mismatch."""
import json
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    tol = float(sys.argv[sys.argv.index("--tol") + 1]) if "--tol" in sys.argv else 1e-4
    want = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    got = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    if len(want) != len(got):
        sys.exit(f"eval_compare: {len(got)} lines in {sys.argv[2]}, {len(want)} expected")
    worst, bad = 0.0, []
    for w, g in zip(want, got):
        if set(w) != set(g):
            bad.append(f"line {w['line']}: fields {sorted(g)} instead of {sorted(w)}")
            continue
        for key in w:
            if key == "logprobs":
                diff = max(abs(a - b) for a, b in zip(w[key], g[key]))
            elif key == "nll":
                diff = abs(w[key] - g[key]) / max(w["tokens"], 1)
            elif w[key] != g[key]:
                bad.append(f"line {w['line']}: {key} {g[key]} instead of {w[key]}")
                continue
            else:
                continue
            worst = max(worst, diff)
            if not diff <= tol:
                bad.append(f"line {w['line']}: {key} differs by {diff:.3g} (tol {tol:g})")
    print(f"eval_compare: {sys.argv[2]}: {len(got)} lines, max log-probability difference {worst:.3g} (tol {tol:g})"
          + ("" if not bad else "; " + "; ".join(bad[:5])))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
