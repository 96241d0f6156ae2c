"""The run folder's records write and read today's JSON, and the variant grammar inverts itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dskd_core.runs.records import (
    EndEvent,
    EpochEvent,
    FailureEvent,
    NoteEvent,
    StartEvent,
    Summary,
    event_from_json,
)
from dskd_core.runs.store import RunDir, read_json, read_jsonl
from dskd_core.variants import parse_variant, variant_name

EPOCH = {
    "event": "epoch",
    "epoch": 2,
    "lr": 0.05,
    "loss_ce": 1.5,
    "loss_kd": 0.25,
    "train_loss": 1.75,
    "train_acc": 40.0,
    "test_acc": 38.5,
    "test_acc_top5": 70.0,
    "test_loss": 2.0,
    "best_acc": 38.5,
    "epoch_time_s": 1.0,
    "train_loss_curve": [1.8, 1.7],
    "train_time_s": 0.8,
    "eval_time_s": 0.2,
}
START = {
    "event": "resume",
    "epoch": 1,
    "run_dir": "runs/x",
    "device": "cpu",
    "train_samples": 10,
    "test_samples": 5,
    "steps_per_epoch": 2,
    "epochs": 3,
    "world_size": 2,
    "backend": "gloo",
    "global_batch_size": 128,
    "teacher_acc": 70.0,
    "notes": ["a note"],
}


@pytest.mark.parametrize(
    "line",
    [
        EPOCH,
        START,
        {
            "event": "start",
            "epoch": 0,
            "run_dir": "r",
            "device": "cuda",
            "train_samples": 1,
            "test_samples": 1,
            "steps_per_epoch": 1,
            "epochs": 1,
            "cuda_graphs": "whole step",
        },
        {"event": "end", "best_acc": 1.0, "best_epoch": 1, "last_acc": 0.5, "wall_time_s": 2.0},
        {"event": "interrupted", "epoch": 1, "error": "KeyboardInterrupt"},
        {"event": "note", "epoch": 1, "message": "m"},
        {"event": "note", "message": "m"},
        {"event": "fallback", "reason": "r"},
        {"event": "step", "epoch": 1, "step": 2, "steps": 3, "loss": None},
    ],
)
def test_events_round_trip_with_their_keys_in_order(line: dict[str, object]) -> None:
    record = event_from_json(line)
    assert list(record.to_json().items()) == list(line.items())


def test_records_name_their_kinds() -> None:
    assert isinstance(event_from_json(EPOCH), EpochEvent) and event_from_json(EPOCH).terms == {
        "loss_ce": 1.5,
        "loss_kd": 0.25,
    }
    assert isinstance(event_from_json(START), StartEvent) and event_from_json(START).resumed
    assert FailureEvent(False, 0, "x").to_json()["event"] == "failed"
    assert NoteEvent("m").to_json() == {"event": "note", "message": "m"}
    with pytest.raises(ValueError, match="unknown event"):
        event_from_json({"event": "nope"})


def test_summary_round_trips_and_the_end_event_follows_it(tmp_path: Path) -> None:
    data = {
        "status": "failed", "method": "kd", "variant": "kd+ls", "name": "kd+ls", "teacher": "resnet56",
        "student": "resnet20", "dataset": "cifar100", "seed": 1, "epochs": 240, "epochs_done": 3,
        "best_acc": 40.0, "best_epoch": 2, "last_acc": 39.0, "last_acc_top5": 70.0, "wall_time_s": 12.5,
        "device": "cpu", "dskd_version": "0.1.0", "torch_version": "2.0", "python_version": "3.11.0",
        "error": "boom",
    }  # fmt: skip
    summary = Summary.from_json(data)
    assert list(summary.to_json().items()) == list(data.items())
    assert "error" not in Summary.from_json({**data, "error": None}).to_json()
    assert EndEvent.from_summary(summary).to_json() == {
        "event": "end", "best_acc": 40.0, "best_epoch": 2, "last_acc": 39.0, "wall_time_s": 12.5
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(summary.dumps())
    (tmp_path / "log.jsonl").write_text(json.dumps(EPOCH) + "\n{cut\n5\n")
    run = RunDir(tmp_path)
    assert run.summary() == summary and not run.exists()  # no config.json
    assert [type(e) for e in run.events()] == [EpochEvent] and run.curve() == ([38.5], False)
    assert read_jsonl(tmp_path / "missing.jsonl") == [] and read_json(tmp_path / "log.jsonl") == {}


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (("kd", [1], "region", False), {}, "kd"),
        (("kd", [1], "region", True), {}, "kd+ls"),
        (("kd", [1, 2], "region", True), {}, "kd+sdd[1,2]+ls"),
        (("kd", [1, 2], "mean", False), {}, "kd+sdd[1,2]+mean"),
        (("dkd", [1, 2], "region", True), {"own_weighting": "mean"}, "dkd+sdd[1,2]+region+ls"),
        (("crd", [1], "region", False), {"enhanced_by": "kd"}, "crd"),
        (("crd", [1, 2, 4], None, True), {"enhanced_by": "kd"}, "crd+kd+sdd[1,2,4]+ls"),
    ],
)
def test_variant_names_parse_back(args: tuple, kwargs: dict, name: str) -> None:
    assert variant_name(*args, **kwargs) == name
    parsed = parse_variant(name)
    assert parsed is not None and parsed.method == args[0] and list(parsed.scales) == args[1]
    assert parsed.stand == args[3]
    assert parsed.added == (kwargs.get("enhanced_by") if parsed.sdd or parsed.stand else None)
    assert parse_variant("not a variant!") is None
