# Sourced by the GPU check scripts: run from the repository root, dskd importable, the GPU named.
# dskd's other dependencies (and pytest) come from .whl/ when that folder exists (offline
# machines), else from `pip install -e '.[test]'`. Needs python3 with torch.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONUNBUFFERED=1 DSKD_PROGRESS=0
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  python3 -m pip install -q -e '.[test]'
  export PYTHONPATH="$PWD"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
