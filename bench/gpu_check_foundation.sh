#!/usr/bin/env bash
# The foundation's GPU check, one script: CUDA-vs-CPU parity of every model, a digits
# teacher -> DSKD student run through the CLI on CUDA with resume and eval, a lockstep sweep,
# and the engine's throughput baseline. Expects python3 with torch; .whl/ may carry missing packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 DSKD_PROGRESS=0
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
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
echo "== engine throughput baseline"
python3 bench/engine_throughput.py --device cuda
