#!/usr/bin/env bash
# Every distillation method for one epoch on the embedded digits data (resnet20 -> resnet8, the
# teacher itself one epoch from scratch), with and without --scales 1,2 --stand. Prints, per run,
# the test top-1 and the training loss of the epoch's first and last tenth (log.jsonl's
# train_loss_curve). CPU: about 25 minutes on 2 cores (CRD with K = 16384 is the slow one).
# PYTHON=.venv/bin/python [METHODS="kd crd"] bash bench/digits_one_epoch.sh [RUNS_DIR]
set -u
cd "$(dirname "$0")/.."
export DSKD_PROGRESS=0 DSKD_DEVICE=${DSKD_DEVICE:-cpu}
R=${1:-$(mktemp -d)}
PY=${PYTHON:-python3}
dskd() { "$PY" -m dskd_cli "$@"; }
dskd train vanilla resnet20 -d digits --runs-dir "$R" --epochs 1 >/dev/null 2>&1
T=$R/digits/resnet20/vanilla/seed0
echo "teacher resnet20: $("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['best_acc'])" "$T/summary.json")"
for m in ${METHODS:-kd dkd rld at fitnet reviewkd crd nst pkt rkd sp vid kdsvd ofd}; do
  for extra in "" "--scales 1,2 --stand"; do
    name="$m${extra:+-dskd}"
    # shellcheck disable=SC2086
    dskd train "$m" resnet20 resnet8 -d digits --runs-dir "$R" --epochs 1 --teacher-ckpt "$T" --name "$name" $extra \
      >/dev/null 2>&1
    rc=$?
    "$PY" - "$R/digits/resnet20-resnet8/$name/seed0" "$m" "${extra:--}" "$rc" <<'PY'
import json, math, sys
run, method, extra, rc = sys.argv[1:]
try:
    epoch = [json.loads(line) for line in open(run + "/log.jsonl") if '"event": "epoch"' in line][-1]
except (OSError, IndexError):
    print(f"{method:9s} {extra:22s} exit {rc}: no epoch finished")
    sys.exit(0)
curve = epoch["train_loss_curve"]
ok = all(map(math.isfinite, curve)) and curve[-1] < curve[0]
print(f"{method:9s} {extra:22s} exit {rc}  test top-1 {epoch['test_acc']:6.2f}  loss {curve[0]:8.3f} -> {curve[-1]:7.3f}"
      f"  {'finite, decreasing' if ok else 'NOT finite and decreasing'}")
PY
  done
done
