#!/usr/bin/env bash
# The fast path's GPU check, one script. First the throughput table (TF32 — the default, the
# reference's precision — and bf16 side by side, KD and DSKD, then MLKD in TF32: the reference loop, eager,
# torch.compile's per-call CUDA graphs, the whole-step CUDA graph; the TF32 rows add about 90 s) and
# the CPU equivalence tests run on CUDA (compiled and graphed steps vs the reference step; GPU
# crop/flip vs torchvision): about 4.5 minutes on an H200 (estimated from parts timed on
# 2026-11-26: DSKD's throughput rows 90 s, KD's taken as the same, the tests 82 s), plus the MLKD rows
# and the strong augmentation's CUDA test added on 2026-12-04, not yet timed on a GPU (the MLKD stage
# has a 300 s limit of its own).
# Then, unless GPU_CHECK_QUICK=1, whole `dskd train` epochs on CIFAR-100-sized data and a digits
# run on each path with the same seeds (about 3 minutes more). The tables are printed again last.
# Needs python3 with torch; bench/gpu_env.sh brings the rest.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
out=${OUT:-$(mktemp -d)}

echo "== throughput"
timeout 420 python3 bench/throughput.py --device cuda --precision tf32 --precision bf16 --only kd --only dskd --json "$out/throughput.json" | tee "$out/throughput.txt" || echo "throughput FAILED"

echo "== MLKD throughput (two views, four passes a step; the default TF32)"
timeout 300 python3 bench/throughput.py --device cuda --precision tf32 --only mlkd --only mlkd+ls --json "$out/throughput_mlkd.json" | tee "$out/throughput_mlkd.txt" || echo "MLKD throughput FAILED"

echo "== equivalence tests on CUDA (tests/test_fast.py; the strong augmentation, CUDA vs CPU)"
timeout 240 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_fast.py tests/test_strong_augment.py 2>&1 | tail -15 || echo "equivalence tests FAILED"

if [ "${GPU_CHECK_QUICK:-0}" != 1 ]; then
echo "== whole dskd train epochs (DSKD resnet32x4 -> resnet8x4, CIFAR-100-sized random data)"
timeout 200 python3 bench/epoch_time.py --epochs 5 --device cuda | tee "$out/epoch_time.txt" || echo "epoch_time FAILED"

echo "== digits, same seeds: reference path vs fast path (default precision TF32, compiled, CUDA graphs)"
runs=$(mktemp -d)
for seed in 0 1; do
  for path in --no-fast --fast; do
    python3 -m dskd_cli train vanilla resnet20 -d digits --device cuda --runs-dir "$runs" --seed $seed $path \
      --name "teacher$path" >/dev/null || echo "digits run seed $seed $path FAILED"
  done
done
python3 - "$runs" <<'PY' | tee "$out/digits_paths.txt" || true
import json, statistics, sys
from pathlib import Path
for path in ("--no-fast", "--fast"):
    accs = [json.loads((Path(sys.argv[1]) / f"digits/resnet20/teacher{path}/seed{s}/summary.json").read_text())["best_acc"] for s in range(2)]
    print(f"digits resnet20 1 epoch {path:9s} top-1 {statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f}  {accs}")
PY
fi

echo "== summary"
sed -n '/^| method/,$p' "$out/throughput.txt"
sed -n '/^| method/,$p' "$out/throughput_mlkd.txt" 2>/dev/null || true
cat "$out/digits_paths.txt" "$out/epoch_time.txt" 2>/dev/null || true
