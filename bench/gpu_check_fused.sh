#!/usr/bin/env bash
# The fused-lockstep GPU check (#17), for a session that is lent a GPU. Two stages, each under the
# device tool's 10 minutes a command: `bash bench/gpu_check_fused.sh bench`, then `... sweep`
# (no argument: both, one after the other).
#  bench: bench/throughput.py --students 2,4,6 on the DSKD README's 6-variant grid of resnet32x4 -> resnet8x4
#         (TF32, compiled, whole-step CUDA graph): one fast run of each variant alone, K sequential fast runs,
#         K fused; student-img/s, the ratio, peak memory per K, the grid's minutes, the largest K that gains.
#         Then the fused tests that run on CUDA (tests/test_fused.py -m gpu: the compiled whole-step graph).
#  sweep: a real `dskd sweep` of the 6 variants on digits on CUDA, fused (the default; the sweep prints its
#         measured student-img/s and ratio), then with --no-fuse; both tables and wall times.
# Not yet run on a GPU: the limits below are estimates (six compilations of one run, three of a group).
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
out=${OUT:-$(mktemp -d)}
stage=${1:-all}

if [ "$stage" = bench ] || [ "$stage" = all ]; then
  echo "== fused vs separate fast runs (bench/throughput.py --students)"
  timeout 420 python3 bench/throughput.py --device cuda --students 2,4,6 --json "$out/fused.json" \
    | tee "$out/fused.txt" || echo "fused throughput FAILED"
  echo "== fused tests on CUDA"
  timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_fused.py 2>&1 | tail -8 \
    || echo "fused tests FAILED"
  sed -n '/^| K/,$p' "$out/fused.txt" 2>/dev/null || true
fi

if [ "$stage" = sweep ] || [ "$stage" = all ]; then
  echo "== dskd sweep on digits: fused (the default) and --no-fuse"
  runs=$(mktemp -d)
  timeout 150 python3 -m dskd_cli train vanilla resnet20 -d digits --device cuda --runs-dir "$runs" >/dev/null \
    || echo "digits teacher FAILED"
  for fuse in --fuse --no-fuse; do
    start=$(date +%s)
    timeout 210 python3 -m dskd_cli sweep kd resnet20 resnet8 -d digits --seeds 0 --device cuda $fuse \
      --runs-dir "$runs/$fuse" --teacher-ckpt "$runs/digits/resnet20/vanilla/seed0" 2>&1 | tail -12 \
      | tee "$out/sweep$fuse.txt" || echo "sweep $fuse FAILED"
    echo "sweep $fuse: $(( $(date +%s) - start )) s wall" | tee -a "$out/sweep$fuse.txt"
  done
  grep -h "fused:\|wall" "$out"/sweep*.txt 2>/dev/null || true
fi
