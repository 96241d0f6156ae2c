"""Wall time of whole ``dskd train`` epochs on CIFAR-100-sized data, projected to 240 epochs.

bench/throughput.py times the step alone; this runs the real ``fit`` — data, training,
evaluation of the 10,000 test images, the train-state commit and the student files every
epoch — on random CIFAR-100-format files (50,000 train / 10,000 test, written here because
the real set cannot be downloaded offline) with a randomly initialised resnet32x4 teacher, and
times each epoch's wall clock (from one epoch's files written to the next's), split into
training, evaluation and the rest with the log's ``train_time_s``/``eval_time_s``. Random data makes no accuracy claim;
the time per epoch does not depend on the pixel values.

    python bench/epoch_time.py --epochs 4                   # DSKD: kd + sdd[1,2,4] + ls, fast path
    python bench/epoch_time.py --epochs 2 --no-fast          # the reference path, for comparison
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dskd_core.checkpoint import save_student
from dskd_core.config import Settings
from dskd_core.data.testing import write_fake_cifar100
from dskd_core.models import create_model
from dskd_core.resolve import resolve_run_config
from dskd_core.train import fit

EPOCHS = 240


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fast", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--train-images", type=int, default=50_000)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="dskd-epoch-time-"))
    write_fake_cifar100(root / "data" / "cifar-100-python", args.train_images, 10_000, protocol=4)
    teacher = root / "resnet32x4_random.safetensors"
    torch.manual_seed(0)
    save_student(teacher, create_model("resnet32x4"), arch="resnet32x4", num_classes=100, extra={})
    settings = Settings(
        data_dir=root / "data", runs_dir=root / "runs", teachers_dir=root / "t", device=args.device, progress=False
    )
    cfg = resolve_run_config(
        method="kd",
        teacher="resnet32x4",
        student="resnet8x4",
        dataset="cifar100",
        flags={"epochs": args.epochs, "scales": [1, 2, 4], "stand": True, "teacher_ckpt": str(teacher)},
        overrides={"fast": args.fast},
    )
    marks: list[float] = []  # wall clock at the start event and after each epoch's files are written

    def observe(event: dict[str, object]) -> None:
        if event["event"] in ("start", "epoch"):
            marks.append(time.perf_counter())

    result = fit(cfg, settings, allow_weak_teacher=True, observer=observe)
    log = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    start = next(e for e in log if e["event"] == "start")
    epochs = [e for e in log if e["event"] == "epoch"]
    times = [b - a for a, b in itertools.pairwise(marks)]
    saved = json.loads((result.run_dir / "config.json").read_text())
    print(f"device {start['device']}, torch {torch.__version__}, fast={saved['fast']} precision={saved['precision']}")
    print(f"compile={saved['compile']}, {start['train_samples']} train images, {start['steps_per_epoch']} steps/epoch")
    for note in (e for e in log if e["event"] == "note"):
        print(f"note: {note['message']}")
    for i, (t, e) in enumerate(zip(times, epochs, strict=True), start=1):
        rest = t - e["train_time_s"] - e["eval_time_s"]
        print(f"  epoch {i}: {t:.2f} s (train {e['train_time_s']:.2f}, eval {e['eval_time_s']:.2f}, files {rest:.2f})")
    steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
    scale = 50_000 / args.train_images
    total = (times[0] + (EPOCHS - 1) * steady) * scale
    print(f"projected {EPOCHS} epochs (first incl. compile + {EPOCHS - 1} x median of the rest): {total / 60:.1f} min")


if __name__ == "__main__":
    main()
