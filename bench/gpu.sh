#!/usr/bin/env bash
# The GPU bench in one call (about 8 minutes on one GPU): every model's training images/s and MFU,
# sampling, FID features and a 240x240x155 volume translated, as one JSON object on stdout.
#   bash bench/gpu.sh                       # on the GPU
#   bash bench/gpu.sh --smoke               # a quick CPU check that everything runs
#   bash bench/gpu.sh --peak-tflops 989     # MFU against the data-sheet peak instead of a measured one
#   bash bench/gpu.sh --compile             # each network torch.compiled (the compiler's time is in warmup_seconds)
#   bash bench/gpu.sh --amp off             # float32 throughout (default: --amp auto, bf16 autocast as medsyn train)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [[ " $* " == *" --smoke "* ]]; then
    exec "$PY" bench/bench_gpu.py --device cpu --amp auto "$@"
fi
exec "$PY" bench/bench_gpu.py --amp auto "$@"   # a later --amp on|off wins
