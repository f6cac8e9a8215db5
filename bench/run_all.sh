#!/usr/bin/env bash
# Every benchmark against its peer, one after another (each prints its own table with ratios).
# Run on an otherwise idle machine: the figures are medians, but two cores shared with other work
# still skew them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "== training step speed: anvil vs PyTorch (fp32)"
"$here/vs_pytorch.sh"
echo; echo "== generation speed: anvil vs llama.cpp (node-llama-cpp) on GPT-2 124M"
"$here/vs_llamacpp.sh"
echo; echo "== evaluation speed: anvil eval --task hellaswag vs the same scoring in PyTorch"
"$here/eval_vs_pytorch.sh"
echo; echo "== anvil serve under load: 1, 4, 16 concurrent clients"
"$here/serve_load.sh"
echo; echo "== GPT-2 encoding speed: anvil vs tiktoken and gpt-tokenizer"
"$here/encode_vs_peers.sh"
echo; echo "== BPE training: anvil vs sentencepiece spm_train"
"$here/train_vs_spm.sh"
if [ -x "$here/mpi_scaling.sh" ]; then
  echo; echo "== data-parallel scaling: 1 process x 2 threads vs 2 MPI ranks x 1 thread"
  "$here/mpi_scaling.sh"
fi
