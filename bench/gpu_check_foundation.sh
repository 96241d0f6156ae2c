#!/usr/bin/env bash
# The foundation's GPU check, one script: CUDA-vs-CPU parity of every model, a digits
# teacher -> DSKD student run through the CLI on CUDA with resume and eval, a lockstep sweep,
# and the engine's throughput baseline. Expects python3 with torch; bench/gpu_env.sh brings the rest.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
echo "== model parity (CUDA vs CPU)"
python3 bench/cuda_parity.py
runs=$(mktemp -d)
echo "== digits on CUDA: teacher, DSKD student (2 epochs, then resumed to 3), eval"
python3 -m dskd_cli train vanilla resnet20 -d digits --device cuda --runs-dir "$runs" --epochs 3
python3 -m dskd_cli train kd resnet20 resnet8 -d digits --device cuda --runs-dir "$runs" --epochs 2 --scales 1,2 --stand \
  --teacher-ckpt "$runs/digits/resnet20/vanilla/seed0"
python3 -m dskd_cli train kd resnet20 resnet8 -d digits --device cuda --runs-dir "$runs" --epochs 3 --scales 1,2 --stand \
  --teacher-ckpt "$runs/digits/resnet20/vanilla/seed0" --resume
python3 -m dskd_cli eval -m resnet8 -c "$runs/digits/resnet20-resnet8/kd+sdd[1,2]+ls/seed0" -d digits --device cuda
grep best_acc "$runs/digits/resnet20-resnet8/kd+sdd[1,2]+ls/seed0/summary.json"
echo "== lockstep sweep on CUDA: 4 variants share one teacher forward per batch"
python3 -m dskd_cli sweep kd resnet20 resnet8 -d digits --seeds 0 --scales-grid "1;1,2" --stand both --epochs 2 \
  --device cuda --runs-dir "$runs" --teacher-ckpt "$runs/digits/resnet20/vanilla/seed0"
echo "== engine throughput baseline (fp32, eager; bench/engine_throughput.py became bench/throughput.py)"
python3 bench/throughput.py --device cuda --precision fp32 --no-compile
