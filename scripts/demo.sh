#!/usr/bin/env bash
# medsyn end to end on the CPU in a few minutes: train a small DCGAN on the built-in CT phantoms,
# sample 64 images from it, write the run's report page and say where everything is (the report's
# path is the last line on stdout).   Usage: bash scripts/demo.sh [OUT_DIR]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-demo-out}"
PY="${MEDSYN_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
medsyn() { "$PY" -m medsyn_cli "$@"; }

# Idle OpenMP threads sleep instead of spinning (the CPU is shared); progress bars only on a terminal.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

STEPS="${DEMO_STEPS:-450}"
RUN="$OUT/run"
FAKE="$OUT/samples"
mkdir -p "$OUT"
start=$(date +%s)

echo "== 1/4 data: 512 built-in CT phantoms (phantom:ct), 64x64" >&2
medsyn data info phantom:ct >&2 || true

echo "== 2/4 train: dcgan, $STEPS steps of 32 images on the CPU (half-width networks to fit the time)" >&2
# --force: re-running the demo starts the run over instead of refusing to touch the old one.
medsyn train dcgan --data phantom:ct --res 64 --out "$RUN" --force \
    --steps "$STEPS" --batch-size 32 --set ngf=32 --set ndf=32 --lr 2e-4 \
    --device cpu --sample-every 150 --checkpoint-every 150 --log-every 25 >/dev/null

echo "== 3/4 sample: 64 images from the trained generator" >&2
medsyn sample "$RUN" --n 64 --out "$FAKE" --seed 0 --force >/dev/null

echo "== 4/4 report: one self-contained HTML page of the run" >&2
report="$(medsyn report "$RUN")"

grid="$(ls "$RUN"/samples/step-*.png | tail -n 1)"
cat <<MSG

medsyn demo finished in $(( $(date +%s) - start )) s
  run directory : $RUN
  sample grid   : $grid
  loss plot     : $RUN/loss.png
  weights       : $RUN/weights.safetensors
  checkpoint    : $RUN/checkpoints/latest.pt
  64 samples    : $FAKE/ (sample_00000.png ... sample_00063.png)
  training log  : $RUN/log.txt, $RUN/stats.jsonl
  report        : $report   (open it in a browser)
Next: medsyn sample $RUN --n 500 --out fake/     (see docs/usage.md)
MSG
echo "$report"
