"""Several processes on CPU (Gloo over loopback): `dskd train --nproc 2` and `torchrun`, single writer,
2 processes × batch B equal to 1 process × batch 2B, reduced accuracies, resume, sharded loaders.

Each launch starts real processes (several seconds each on two cores), so there are three: one
`torchrun` subprocess, and two `--nproc 2` launches from this process (through Typer's runner; the
processes they start write to this process's file descriptors, read with ``capfd``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.checkpoint import load_tensors
from dskd_core.config import Settings
from dskd_core.data import LoaderOptions, get_dataset_spec, load_dataset, make_loader
from dskd_core.data.shard import Shard, shard_order
from dskd_core.models import create_model
from dskd_core.resolve import resolve_run_config
from dskd_core.train import fit
from tests.helpers import ROOT, save_random_teacher, subprocess_env, write_imagefolder

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dskd_cli"]


@pytest.fixture
def launcher_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the processes of an in-process `--nproc` launch inherit: one thread each, in-process decoding."""
    for key, value in subprocess_env().items():
        if key.startswith(("DSKD_", "OMP_", "PYTHONPATH")):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("DSKD_WORKERS", "0")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def _nproc(*args: str) -> None:
    result = CliRunner().invoke(app, [*args, "--nproc", "2"])
    assert result.exit_code == 0, result.output


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def _eval(model: str, checkpoint: Path, dataset: str, data_dir: Path) -> dict:
    args = ["eval", "-m", model, "-c", str(checkpoint), "-d", dataset, "--data-dir", str(data_dir), "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_two_processes_with_batch_b_match_one_process_with_batch_2b(
    tmp_path: Path, launcher_env: None, capfd: pytest.CaptureFixture[str]
) -> None:
    """`--nproc 2 --sync-bn`, ResNet34 → ResNet18 with SDD [1,2] + LS on a tiny ImageFolder, one step.

    The epoch's 4 images are one step: two ranks × 2 images, or one process × 4. With --sync-bn the
    BatchNorm statistics cover the same 4 images, DDP averages the two ranks' gradients (each the
    mean over its 2 images), and each image's crop is a function of (seed, epoch, index), so the
    update is the same one up to float32 rounding. Without --sync-bn the per-rank BatchNorm
    statistics would differ (a different update, by design), hence the flag here.
    """
    data = write_imagefolder(tmp_path / "data", {"a": 2, "b": 2}, {"a": 3, "b": 2})
    teacher = save_random_teacher(tmp_path / "r34.safetensors", "ResNet34", 2)
    args = ["kd", "ResNet34", "ResNet18", "-d", "imagenet", "--scales", "1,2", "--stand", "--image-size", "32"]
    args += ["--epochs", "1", "--lr", "0.1", "--teacher-ckpt", str(teacher), "--data-dir", str(data)]
    capfd.readouterr()
    _nproc("train", *args, "--batch-size", "2", "--sync-bn", "--runs-dir", str(tmp_path / "ddp"))
    done = capfd.readouterr()
    run = tmp_path / "ddp" / "imagenet" / "ResNet34-ResNet18" / "kd+sdd[1,2]+ls" / "seed0"

    # One writer: every event once, the train state committed once, one summary line, one start line.
    events = _events(run)
    assert [e["event"] for e in events] == ["start", "epoch", "end"]
    assert {k: events[0][k] for k in ("world_size", "backend", "global_batch_size")} == {
        "world_size": 2,
        "backend": "gloo",
        "global_batch_size": 4,
    }
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "student_best.safetensors",
        "student_last.safetensors",
        "train_state.safetensors",
    ]
    assert done.out.count("kd+sdd[1,2]+ls ResNet34→ResNet18 on imagenet") == 1
    assert done.err.count("starting →") == 1 and done.err.count("using the imagenet preset") == 1
    config = json.loads((run / "config.json").read_text())
    assert (config["world_size"], config["sync_bn"], config["lr_scaling"]) == (2, True, "none")

    # The same run in one process with twice the batch.
    cfg = resolve_run_config(
        method="kd",
        teacher="ResNet34",
        student="ResNet18",
        dataset="imagenet",
        flags={
            "scales": [1, 2],
            "stand": True,
            "image_size": 32,
            "epochs": 1,
            "lr": 0.1,
            "batch_size": 4,
            "teacher_ckpt": str(teacher),
        },
    )
    single = fit(cfg, Settings(runs_dir=tmp_path / "one", data_dir=data, device="cpu", workers=0))
    torch.manual_seed(0)  # the student's initialisation (seed 0)
    start = create_model("ResNet18", 2, zoo="imagenet").state_dict()
    one, _ = load_tensors(single.run_dir / "checkpoints" / "student_last.safetensors")
    two, _ = load_tensors(run / "checkpoints" / "student_last.safetensors")
    for key in one:
        if key.endswith("num_batches_tracked"):
            assert one[key] == two[key] == 1
            continue
        update_one, update_two = one[key].double() - start[key].double(), two[key].double() - start[key].double()
        scale = update_one.abs().max().item()
        # float32 through BatchNorm over 2 images per rank (1×1 maps in stage 4): agree to 2 % of the update.
        assert (update_one - update_two).abs().max().item() <= 0.02 * scale + 1e-7, key
    assert max((one[k].double() - start[k].double()).abs().max().item() for k in one) > 0.01  # it did train

    # Accuracies summed over ranks equal one process's: the teacher's at the start, the student's after.
    assert events[0]["teacher_acc"] == _events(single.run_dir)[0]["teacher_acc"]
    measured = _eval("ResNet18", run / "checkpoints" / "student_last.safetensors", "imagenet", data)
    assert measured["samples"] == 5 and measured["top1"] == events[1]["test_acc"]


def test_torchrun_trains_cifar_style_data_and_resumes_under_ddp(tmp_path: Path, launcher_env: None) -> None:
    """`torchrun --nproc_per_node=2 -m dskd_cli train …` on the in-memory synthetic set, then `--resume RUN_DIR`."""
    cmd = [*TORCHRUN, "train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--runs-dir", "runs"]
    # torchrun's own parser takes a --log after the script for its --log-dir: trackers come by DSKD_LOG there
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    env = {**subprocess_env(), **({"DSKD_LOG": "tensorboard"} if tensorboard else {})}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    run = tmp_path / "runs" / "synthetic" / "resnet8" / "vanilla" / "seed0"
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    measured = _eval("resnet8", run / "checkpoints" / "student_last.safetensors", "synthetic", tmp_path)
    assert measured["samples"] == 128 and measured["top1"] == _events(run)[1]["test_acc"]

    single = CliRunner().invoke(app, ["train", "--resume", str(run), "--epochs", "2"])
    assert single.exit_code == 2 and "set up for 2 processes but 1 were launched" in single.output

    _nproc("train", "--resume", str(run), "--epochs", "2", *(["--log", "tensorboard"] if tensorboard else []))
    events = _events(run)
    assert [e["event"] for e in events] == ["start", "epoch", "end", "resume", "epoch", "end"]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["epochs_done"]) == ("finished", 2)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "student_best.safetensors",
        "student_last.safetensors",
        "train_state.prev.safetensors",  # two commits (epochs 1 and 2), one writer
        "train_state.safetensors",
    ]
    if tensorboard:  # rank 0 alone logs: one event file per launch, each epoch once
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
        acc = EventAccumulator(str(run / "tensorboard"))
        acc.Reload()
        steps = events[0]["steps_per_epoch"]
        assert [e.step for e in acc.Scalars("test/acc_top1")] == [steps, 2 * steps]


@pytest.mark.parametrize("world", [2, 3])
def test_in_memory_loader_shards_an_epoch_like_distributed_sampler(world: int) -> None:
    train, test = load_dataset("synthetic", Path("unused"))
    spec, cpu = get_dataset_spec("synthetic"), torch.device("cpu")

    def indices(data, shard: Shard, training: bool) -> list[list[int]]:  # type: ignore[no-untyped-def]
        loader = make_loader(data, spec, 16, LoaderOptions(train=training, device=cpu, seed=5, shard=shard))
        loader.set_epoch(2)
        return [b["index"].tolist() for b in loader]

    whole = [i for batch in indices(train, Shard(), True) for i in batch]
    shares = [indices(train, Shard(r, world, world), True) for r in range(world)]
    flat = [[i for batch in share for i in batch] for share in shares]
    assert len({len(f) for f in flat}) == 1 and len({len(s) for s in shares}) == 1  # equal steps per rank
    order = torch.tensor(whole)
    for rank, share in enumerate(flat):
        assert share == shard_order(order, rank, world, pad=True).tolist()
    assert sorted({i for f in flat for i in f}) == sorted(whole)
    evaluated = [i for r in range(world) for batch in indices(test, Shard(r, world, world), False) for i in batch]
    assert sorted(evaluated) == list(range(len(test)))  # evaluation shards: every sample exactly once
