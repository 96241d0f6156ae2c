"""``dskd report`` on run folders and legacy logs the tests write: known accuracies → known tables."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_cli.render.report import curve_series
from dskd_core.report import (
    Hints,
    build_report,
    discover,
    group_curves,
    paper_grids,
    parse_variant,
    parse_worklog,
    parse_yacs_dump,
    variant_name,
)
from dskd_core.report.curves import epoch_losses
from dskd_core.resolve import resolve_run_config

runner = CliRunner()


# --------------------------------------------------------------------------- writers


def _curve(best: float, last: float, epochs: int) -> list[float]:
    """``epochs`` test accuracies whose max is ``best`` and whose final value is ``last``."""
    assert last <= best and epochs >= 2
    return [best - 20.0 + i * 0.01 for i in range(epochs - 2)] + [best, last]


def write_dskd_run(
    root: Path,
    *,
    best: float,
    last: float | None = None,
    method: str = "kd",
    teacher: str | None = "resnet32x4",
    student: str = "resnet8x4",
    dataset: str = "cifar100",
    scales: tuple[int, ...] = (1,),
    stand: bool = False,
    seed: int = 0,
    epochs: int = 4,
    done: int | None = None,
    status: str = "finished",
    lr: float = 0.05,
    folder: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A run folder as the engine writes it: config.json (plus ``extra`` keys), log.jsonl, summary.json."""
    variant = variant_name(method, scales, stand)
    pair = f"{teacher}-{student}" if teacher else student
    run = root / dataset / pair / (folder or variant) / f"seed{seed}"
    (run / "checkpoints").mkdir(parents=True)
    curve = _curve(best, best if last is None else last, epochs)[: epochs if done is None else done]
    config = {"method": method, "student": student, "teacher": teacher, "dataset": dataset, "seed": seed}
    config |= {"epochs": epochs, "lr": lr, "scales": list(scales), "stand": stand, "teacher_ckpt": None}
    config["sdd_weighting"] = "mean" if method == "dkd" else "region"  # the method's own, as the engine records it
    config |= extra or {}
    (run / "config.json").write_text(json.dumps(config))
    events: list[dict[str, Any]] = [{"event": "start", "epoch": 0, "epochs": epochs}]
    events += [
        {"event": "epoch", "epoch": i + 1, "test_acc": acc, "test_acc_top5": 99.0} for i, acc in enumerate(curve)
    ]
    if status == "finished":
        events.append({"event": "end", "best_acc": max(curve), "last_acc": curve[-1]})
    (run / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    summary = {
        "status": status,
        "method": method,
        "variant": variant,
        "teacher": teacher,
        "student": student,
        "dataset": dataset,
        "seed": seed,
        "epochs": epochs,
        "epochs_done": len(curve),
        "best_acc": max(curve) if curve else 0.0,
        "best_epoch": curve.index(max(curve)) + 1 if curve else 0,
        "last_acc": curve[-1] if curve else None,
    }
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def worklog_text(accs: list[float], finished: bool = True, newline: str = "\n") -> str:
    """mdistiller's worklog.txt: dashed epoch blocks, then ``best_acc<TAB>X`` without a newline."""
    lines = []
    for epoch, acc in enumerate(accs, start=1):
        lines += ["-" * 25, f"epoch: {epoch}", "lr: 0.050000", "train_acc: 50.00", "train_loss: 3.21"]
        lines += [f"test_acc: {acc:.2f}", "test_acc_top5: 90.00", "test_loss: 1.23", "-" * 25]
    text = newline.join(lines) + newline
    return text + (f"best_acc\t{max(accs):.2f}" if finished else "")


def write_worklog(folder: Path, *, best: float, last: float | None = None, finished: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "worklog.txt"
    path.write_text(worklog_text(_curve(best, best if last is None else last, 4), finished))
    return path


def write_lskd_log(root: Path, name: str, *, best: float, last: float | None = None) -> Path:
    """The logit-standardization repo's ``logs/KD/kd,TEACHER,STUDENT,T,W.txt`` (same worklog format)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(worklog_text(_curve(best, best if last is None else last, 4)))
    return path


DSKD_LAYOUT = Path("output/cifar100_baselines/res32x4,res8x4/sdd_kd/stand/sdd,[1,2]/2025-06-13 10:00:00")
MDISTILLER_LAYOUT = Path("output/cifar100_baselines/kd,res32x4,res8x4")


def _invoke(*args: str) -> Any:
    return runner.invoke(app, ["report", *args])


def _stderr(result: Any) -> str:  # Click < 8.2 mixes stderr into output
    try:
        return str(result.stderr)
    except ValueError:
        return str(result.output)


def _group(doc: dict[str, Any], variant: str, teacher: str = "resnet32x4", student: str = "resnet8x4") -> Any:
    return next(g for g in doc["groups"] if (g["variant"], g["teacher"], g["student"]) == (variant, teacher, student))


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """dskd runs and both legacy formats for resnet32x4→resnet8x4, with known accuracies.

    kd:              dskd seeds 0, 1: best 70, 72 (last 69, 71) and mdistiller worklog best 74 → n 3
    kd+sdd[1,2]+ls:  dskd seeds 0, 1: best 76, 78 and a DSKD-layout worklog best 77 → n 3, mean 77, std 1
    kd+ls:           the LSKD log best 76.66
    """
    root = tmp_path / "mixed"
    write_dskd_run(root / "runs", best=70.0, last=69.0, seed=0)
    write_dskd_run(root / "runs", best=72.0, last=71.0, seed=1)
    write_dskd_run(root / "runs", best=76.0, seed=0, scales=(1, 2), stand=True)
    write_dskd_run(root / "runs", best=78.0, seed=1, scales=(1, 2), stand=True)
    write_worklog(root / "legacy" / DSKD_LAYOUT, best=77.0)
    write_worklog(root / "legacy" / MDISTILLER_LAYOUT, best=74.0, last=73.0)
    write_lskd_log(root / "legacy" / "logs" / "KD", "kd,resnet32x4,resnet8x4,2,9.txt", best=76.66, last=76.28)
    (root / "legacy" / "notes.txt").write_text("not a log\n")
    return root


# --------------------------------------------------------------------------- parsing and discovery


def test_parse_worklog_handles_crlf_resumed_blocks_and_the_best_line() -> None:
    text = worklog_text([10.0, 20.0, 15.0], newline="\r\n")
    log = parse_worklog(text)
    assert log.test_acc == [10.0, 20.0, 15.0] and log.best_acc == 20.0
    resumed = worklog_text([10.0, 20.0], finished=False) + worklog_text([10.0, 30.0, 25.0], finished=False)[60:]
    assert parse_worklog(resumed).best_acc is None
    assert parse_worklog("best_acc    76.66").best_acc == 76.66
    twice = worklog_text([10.0, 11.0], finished=False) + worklog_text([12.0, 13.0])
    assert parse_worklog(twice).test_acc == [12.0, 13.0]  # the last block of an epoch wins


def test_parse_yacs_dump_flattens_sections() -> None:
    text = "DATASET:\n  TEST:\n    BATCH_SIZE: 64\n  TYPE: imagenet\nSOLVER:\n  EPOCHS: 100\n  TYPE: SGD\n"
    assert parse_yacs_dump(text) == {
        "DATASET.TEST.BATCH_SIZE": "64",
        "DATASET.TYPE": "imagenet",
        "SOLVER.EPOCHS": "100",
        "SOLVER.TYPE": "SGD",
    }


def test_discovery_reads_dskd_runs_and_both_legacy_formats(mixed: Path) -> None:
    found = discover([mixed])
    keys = sorted((r.source, r.dataset, r.teacher, r.student, r.method, r.variant) for r in found.records)
    assert keys == [
        ("dskd", "cifar100", "resnet32x4", "resnet8x4", "kd", "kd"),
        ("dskd", "cifar100", "resnet32x4", "resnet8x4", "kd", "kd"),
        ("dskd", "cifar100", "resnet32x4", "resnet8x4", "kd", "kd+sdd[1,2]+ls"),
        ("dskd", "cifar100", "resnet32x4", "resnet8x4", "kd", "kd+sdd[1,2]+ls"),
        ("lskd", "cifar100", "resnet32x4", "resnet8x4", "kd", "kd+ls"),
        ("mdistiller", "cifar100", "resnet32x4", "resnet8x4", "kd", "kd"),
        ("mdistiller", "cifar100", "resnet32x4", "resnet8x4", "kd", "kd+sdd[1,2]+ls"),
    ]
    assert not found.skipped
    lskd = next(r for r in found.records if r.source == "lskd")
    assert (lskd.best_acc, lskd.last_acc, lskd.epochs, lskd.status) == (76.66, 76.28, 4, "finished")
    # A run folder given directly, or one of its files, is the same run.
    run = next(r for r in found.records if r.source == "dskd")
    assert [r.path for r in discover([Path(run.path) / "summary.json"]).records] == [run.path]


def test_dskd_dkd_tags_and_config_txt_name_the_run(tmp_path: Path) -> None:
    dkd = tmp_path / "output/cifar100_baselines/wrn_40_2,wrn_16_2/sdd_dkd/stand/2.0,9.0,72.0,sdd,[1,2,4]/t0"
    write_worklog(dkd, best=76.0)
    named = tmp_path / "elsewhere" / "my-run"
    write_worklog(named, best=70.0, finished=False)
    (named / "config.txt").write_text(
        "DATASET:\n  TYPE: imagenet\nDISTILLER:\n  STUDENT: ResNet18_sdd\n  TEACHER: ResNet34_sdd\n"
        "  TYPE: SDD_KD\nEXPERIMENT:\n  LOGIT_STAND: true\n  TAG: sdd_kd,res34,res18,stand,sdd,[1,2]\n"
        "SOLVER:\n  EPOCHS: 100\n"
    )
    records = {r.variant: r for r in discover([tmp_path]).records}
    assert set(records) == {"dkd+sdd[1,2,4]+ls", "kd+sdd[1,2]+ls"}
    assert (records["dkd+sdd[1,2,4]+ls"].teacher, records["dkd+sdd[1,2,4]+ls"].student) == ("wrn_40_2", "wrn_16_2")
    imagenet = records["kd+sdd[1,2]+ls"]
    assert (imagenet.dataset, imagenet.teacher, imagenet.student, imagenet.epochs) == (
        "imagenet",
        "ResNet34",
        "ResNet18",
        100,
    )
    assert not imagenet.complete  # 4 of 100 epochs, no best_acc line


def test_a_bare_summary_is_completed_from_the_folder_names(tmp_path: Path) -> None:
    run = tmp_path / "cifar100" / "vgg13-vgg8" / "dkd+sdd[1,2]+ls" / "seed3"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(
        json.dumps({"status": "finished", "epochs": 240, "epochs_done": 240, "best_acc": 75.17})
    )
    (record,) = discover([tmp_path]).records
    assert (record.dataset, record.teacher, record.student, record.method, record.variant, record.seed) == (
        "cifar100",
        "vgg13",
        "vgg8",
        "dkd",
        "dkd+sdd[1,2]+ls",
        3,
    )
    assert record.complete and record.best_acc == 75.17


def test_a_real_engine_run_is_reported(teacher_run: Path) -> None:
    summary = json.loads((teacher_run / "summary.json").read_text())
    report = build_report([teacher_run])
    (group,) = report.groups
    assert (group.dataset, group.teacher, group.student, group.variant) == ("synthetic", None, "resnet8", "vanilla")
    assert group.n == 1 and group.ok and group.best.mean == summary["best_acc"]


# --------------------------------------------------------------------------- statistics and the JSON document


def test_n_mean_and_sample_std_are_exact(mixed: Path) -> None:
    report = build_report([mixed / "runs"])
    kd = next(g for g in report.groups if g.variant == "kd")
    assert kd.n == 2 and kd.seeds == [0, 1] and kd.epochs == 4
    assert kd.best.mean == pytest.approx(71.0) and kd.best.std == pytest.approx(math.sqrt(2), abs=1e-9)
    assert kd.best.std == pytest.approx(1.41421, abs=1e-5)
    assert kd.last.mean == pytest.approx(70.0) and kd.last.std == pytest.approx(1.41421, abs=1e-5)
    # Across sources: 76, 78 (dskd) and 77 (DSKD worklog) → mean 77, sample std 1.
    ours = next(g for g in build_report([mixed]).groups if g.variant == "kd+sdd[1,2]+ls")
    assert (ours.n, ours.best.mean, ours.best.std) == (3, pytest.approx(77.0), pytest.approx(1.0))
    assert ours.ok and ours.notes == ["sources: dskd, mdistiller"]


def test_json_through_the_cli(mixed: Path) -> None:
    result = _invoke(str(mixed), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["metric"] == "best" and doc["skipped"] == []
    kd = _group(doc, "kd")
    assert (kd["dataset"], kd["method"], kd["n"], kd["epochs"], kd["ok"]) == ("cifar100", "kd", 3, 4, True)
    assert kd["best"]["mean"] == pytest.approx(72.0) and kd["best"]["std"] == pytest.approx(2.0)  # 70, 72, 74
    assert kd["last"]["mean"] == pytest.approx(71.0) and kd["last"]["std"] == pytest.approx(2.0)  # 69, 71, 73
    assert (kd["mean"], kd["std"]) == (kd["best"]["mean"], kd["best"]["std"])
    assert {r["source"] for r in kd["runs"]} == {"dskd", "mdistiller"} and all(r["used"] for r in kd["runs"])
    lskd = _group(doc, "kd+ls")
    assert (lskd["n"], lskd["best"]["mean"], lskd["best"]["std"]) == (1, 76.66, None)
    ours = _group(doc, "kd+sdd[1,2]+ls")
    assert (ours["n"], ours["best"]["mean"], ours["best"]["std"]) == (3, pytest.approx(77.0), pytest.approx(1.0))
    delta = next(d for d in doc["deltas"] if d["variant"] == "kd+sdd[1,2]+ls")
    assert delta["dskd"] and delta["base_variant"] == "kd" and delta["diff"] == pytest.approx(5.0)
    last = json.loads(_invoke(str(mixed / "runs"), "--format", "json", "--metric", "last").stdout)
    assert _group(last, "kd")["mean"] == pytest.approx(70.0)


def test_csv_is_parseable(mixed: Path) -> None:
    result = _invoke(str(mixed), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {r["variant"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(rows) == {"kd", "kd+ls", "kd+sdd[1,2]+ls"}
    assert float(rows["kd"]["best_mean"]) == pytest.approx(72.0) and float(rows["kd"]["best_std"]) == 2.0
    assert rows["kd+ls"]["best_std"] == "" and rows["kd"]["ok"] == "true"
    assert rows["kd+sdd[1,2]+ls"]["delta_vs"] == "kd" and float(rows["kd+sdd[1,2]+ls"]["delta"]) == 5.0


#: The header of ``--format csv``'s group rows (a ``summary.csv``): scripts read these names, so they stay.
SUMMARY_CSV_COLUMNS = (
    "dataset,teacher,student,method,variant,n,seeds,epochs,epoch_passes,best_mean,best_std,last_mean,last_std,"
    "delta_vs,delta,delta_paired_n,delta_paired_mean,delta_paired_std,delta_ok,delta_config,delta_flags,ok,flags,"
    "delta_ci95_low,delta_ci95_high,delta_noise"
)


def test_the_csv_columns_are_stable_and_documented(mixed: Path) -> None:
    result = _invoke(str(mixed), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == SUMMARY_CSV_COLUMNS
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Reports: `dskd report`") : readme.index("## Listing runs: `dskd runs`")]
    table = section[section.index("| column | holds |") :].split("\n\n")[0]
    documented = [name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split(" | ")[0])]
    assert documented == SUMMARY_CSV_COLUMNS.split(",")


def test_table_and_md_views_show_mean_and_std(mixed: Path) -> None:
    table = _invoke(str(mixed / "runs"))
    assert table.exit_code == 0, table.output
    assert "71.00 ± 1.41" in table.stdout and "kd+sdd[1,2]+ls" in table.stdout
    md = _invoke(str(mixed / "runs"), "--format", "md").stdout
    row = next(line for line in md.splitlines() if "| kd |" in line)
    assert "71.00 ± 1.41" in row and "70.00 ± 1.41" in row


# --------------------------------------------------------------------------- flags


def test_incomplete_runs_are_excluded_and_flagged(tmp_path: Path) -> None:
    write_dskd_run(tmp_path, best=70.0, seed=0)
    write_dskd_run(tmp_path, best=72.0, seed=1)
    write_dskd_run(tmp_path, best=99.0, seed=2, status="running", done=2)
    write_dskd_run(tmp_path, best=98.0, seed=3, status="failed", done=3)
    write_worklog(tmp_path / MDISTILLER_LAYOUT, best=97.0, finished=False)
    doc = json.loads(_invoke(str(tmp_path), "--format", "json").stdout)
    kd = _group(doc, "kd")
    assert kd["n"] == 2 and kd["seeds"] == [0, 1] and kd["best"]["mean"] == pytest.approx(71.0)
    assert not kd["ok"] and kd["flags"] == ["incomplete: 3 runs excluded"]
    reasons = sorted(e["reason"] for e in kd["excluded"])
    assert reasons[0].startswith("failed after 3/4") and reasons[1].startswith("no closing best_acc line")
    assert reasons[2].startswith("running after 2/4")
    md = _invoke(str(tmp_path), "--format", "md").stdout
    assert "incomplete: 3 runs excluded" in md and "seed 2 not averaged, running after 2/4 epochs" in md


def test_inconsistent_groups_are_flagged(tmp_path: Path) -> None:
    write_dskd_run(tmp_path / "a", best=70.0, seed=0)
    write_dskd_run(tmp_path / "a", best=72.0, seed=1, epochs=6)
    write_dskd_run(tmp_path / "a", best=73.0, seed=2, lr=0.1)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the same seeds again
    doc = json.loads(_invoke(str(tmp_path), "--format", "json").stdout)
    kd = _group(doc, "kd")
    assert not kd["ok"] and kd["epochs"] is None
    assert kd["flags"] == [
        "inconsistent: mixed epochs 4, 6",
        "inconsistent: mixed configs (lr differ)",
        "inconsistent: seed 0 appears 2 times",
        "inconsistent: seed 1 appears 2 times",
        "inconsistent: seed 2 appears 2 times",
    ]
    paper = _invoke(str(tmp_path), "--paper", "--format", "md").stdout
    assert " !" in paper and "! kd resnet32x4→resnet8x4: inconsistent: mixed epochs 4, 6" in paper


def test_logs_of_unknown_runs_are_not_pooled_unless_hints_name_them(tmp_path: Path) -> None:
    write_worklog(tmp_path / "a", best=70.0)
    write_worklog(tmp_path / "b", best=72.0)
    report = build_report([tmp_path])
    assert [g.n for g in report.groups] == [1, 1] and not any(g.ok for g in report.groups)
    assert "unknown metadata" in report.groups[0].flags[0]
    hints = Hints(dataset="cifar100", teacher="resnet32x4", student="resnet8x4", method="kd")
    (group,) = build_report([tmp_path], hints=hints).groups
    assert (group.variant, group.n, group.best.mean, group.ok) == ("kd", 2, pytest.approx(71.0), True)


# --------------------------------------------------------------------------- paired Δ


def test_paired_delta_uses_matching_seeds(tmp_path: Path) -> None:
    for seed, (base, ours) in enumerate([(70.0, 72.0), (71.0, 74.0), (75.0, 76.0)]):
        write_dskd_run(tmp_path, best=base, seed=seed)
        write_dskd_run(tmp_path, best=ours, seed=seed, scales=(1, 2), stand=True)
    report = build_report([tmp_path])
    (delta,) = report.deltas
    assert delta.dskd and delta.diff == pytest.approx(2.0)
    assert delta.paired_seeds == [0, 1, 2]
    assert delta.paired.mean == pytest.approx(2.0) and delta.paired.std == pytest.approx(1.0)  # diffs 2, 3, 1
    shutil.rmtree(tmp_path / "cifar100/resnet32x4-resnet8x4/kd+sdd[1,2]+ls/seed2")
    (delta,) = build_report([tmp_path]).deltas
    assert delta.diff == pytest.approx(73.0 - 72.0)  # difference of the means over all seeds
    assert delta.paired_seeds == [0, 1] and delta.paired.mean == pytest.approx(2.5)  # diffs 2, 3
    assert delta.paired.std == pytest.approx(math.sqrt(0.5))
    table = _invoke(str(tmp_path)).stdout
    assert "+1.00; paired +2.50 ± 0.71 (n=2; 95% CI -3.85 to +8.85, within noise) vs kd" in " ".join(table.split())


def test_a_delta_says_whether_its_paired_interval_holds_zero(tmp_path: Path) -> None:
    """The 95% Student-t interval of the per-seed differences: mean ± t(n−1)·sd/√n; within noise when it holds 0."""
    for seed, (base, ours) in enumerate([(70.0, 72.0), (71.0, 73.5), (75.0, 76.5)]):  # diffs 2, 2.5, 1.5
        write_dskd_run(tmp_path / "clear", best=base, seed=seed)
        write_dskd_run(tmp_path / "clear", best=ours, seed=seed, scales=(1, 2), stand=True)
    for seed, (base, ours) in enumerate([(70.0, 73.0), (71.0, 70.0), (75.0, 76.0)]):  # diffs 3, -1, 1
        write_dskd_run(tmp_path / "noisy", best=base, seed=seed)
        write_dskd_run(tmp_path / "noisy", best=ours, seed=seed, scales=(1, 2), stand=True)
    (clear,) = build_report([tmp_path / "clear"]).deltas
    half = 4.303 * 0.5 / math.sqrt(3)  # t(0.975, 2 df) · sd / √n
    assert clear.ci95 == pytest.approx((2.0 - half, 2.0 + half)) and clear.noise == "beyond"
    (noisy,) = build_report([tmp_path / "noisy"]).deltas
    assert noisy.ci95 is not None and noisy.ci95[0] < 0 < noisy.ci95[1] and noisy.noise == "within"
    paired = json.loads(_invoke(str(tmp_path / "clear"), "--format", "json").stdout)["deltas"][0]["paired"]
    assert paired["noise"] == "beyond" and paired["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    one = tmp_path / "one"
    write_dskd_run(one, best=70.0, seed=0)
    write_dskd_run(one, best=72.0, seed=0, scales=(1, 2), stand=True)
    (single,) = build_report([one]).deltas
    assert single.ci95 is None and single.noise is None  # one seed: no interval, no verdict


def test_a_distillation_is_compared_with_its_student_trained_from_scratch(tmp_path: Path) -> None:
    """kd vs vanilla of the same student and dataset: the distillation's own keys (method, teacher, its weights
    and temperature) do not flag it; a different recipe (lr) does; DSKD is still compared with kd."""
    for seed, (scratch, kd, ours) in enumerate([(60.0, 65.0, 66.0), (61.0, 67.0, 67.0)]):
        write_dskd_run(tmp_path / "same", best=scratch, seed=seed, method="vanilla", teacher=None, student="resnet8x4")
        write_dskd_run(tmp_path / "same", best=kd, seed=seed)
        write_dskd_run(tmp_path / "same", best=ours, seed=seed, scales=(1, 2), stand=True)
    report = build_report([tmp_path / "same"])
    by_variant = {d.other.variant: d for d in report.deltas}
    assert set(by_variant) == {"kd", OURS}
    kd = by_variant["kd"]
    assert kd.vs_scratch and kd.base.method == "vanilla" and kd.paired.mean == pytest.approx(5.5)
    assert (kd.config, kd.differing, kd.ok) == ("consistent", [], True)
    assert by_variant[OURS].base.variant == "kd" and not by_variant[OURS].vs_scratch
    table = " ".join(_invoke(str(tmp_path / "same")).stdout.split())
    assert "vs resnet8x4 from scratch" in table and "vs kd" in table
    for seed in (0, 1):
        write_dskd_run(
            tmp_path / "lr", best=60.0, seed=seed, method="vanilla", teacher=None, student="resnet8x4", lr=0.1
        )
        write_dskd_run(tmp_path / "lr", best=65.0, seed=seed, lr=0.05)
    (other,) = build_report([tmp_path / "lr"]).deltas
    assert other.vs_scratch and (other.config, other.differing, other.ok) == ("inconsistent", ["lr"], False)


# --------------------------------------------------------------------------- the README grids


@pytest.fixture
def grid_runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for seed, (kd, ours, ours124) in enumerate([(73.0, 77.0, 99.0), (74.0, 78.0, 99.0)]):
        write_dskd_run(runs, best=kd, seed=seed)
        write_dskd_run(runs, best=ours, seed=seed, scales=(1, 2), stand=True)
        write_dskd_run(runs, best=ours124, seed=seed, scales=(1, 2, 4), stand=True)  # not the preset's scales
        write_dskd_run(runs, best=ours - 1, seed=seed, scales=(1, 2))  # SDD alone: in no grid row
    write_dskd_run(runs, best=76.0, method="dkd", teacher="vgg13", student="vgg8")
    write_dskd_run(runs, best=74.9, method="dkd", teacher="vgg13", student="vgg8", scales=(1, 2), stand=True)
    write_dskd_run(runs, best=69.0, method="rld", teacher="vgg13", student="vgg8")
    write_dskd_run(runs, best=70.0, teacher="resnet32x4", student="ShuffleV2", scales=(1, 2, 4), stand=True)
    write_dskd_run(runs, best=90.0, teacher="resnet32x4", student="resnet8x4", dataset="digits")
    return runs


def _md_rows(md: str) -> dict[str, list[list[str]]]:
    rows: dict[str, list[list[str]]] = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| Teacher"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], []).append(cells[1:])
    return rows


def test_paper_md_grid(grid_runs: Path) -> None:
    result = _invoke(str(grid_runs), "--paper", "--format", "md")
    assert result.exit_code == 0, result.output
    md = result.stdout
    assert "ResNet32x4<br>ResNet8x4 | VGG13<br>VGG8 | WRN-40-2<br>WRN-40-1" in md
    assert "ResNet32x4<br>ShuffleNet-V2 | ResNet32x4<br>WRN-16-2" in md
    rows = _md_rows(md)
    homo_kd, hetero_kd = rows["KD"]
    homo_ours, hetero_ours = rows["KD + DSKD"]
    assert homo_kd[0] == "73.50 ± 0.71 (n=2)" and homo_kd[1:] == ["—"] * 6
    assert homo_ours[0] == "**77.50** ± 0.71 (n=2)"  # [1,2] is the preset's choice; [1,2,4] (99) is not shown
    assert rows["DKD"][0][1] == "**76.00** (n=1)" and rows["DKD + DSKD"][0][1] == "74.90 (n=1)"
    assert rows["RLD"][0][1] == "69.00 (n=1)" and rows["RLD + DSKD"][0][1] == "—"
    assert hetero_kd == ["—"] * 7 and hetero_ours[0] == "**70.00** (n=1)" and hetero_ours[1:] == ["—"] * 6
    assert rows["Δ KD"][0][0] == "+4.00 ± 0.00 (paired, n=2)" and rows["Δ DKD"][0][1] == "-1.10 (paired, n=1)"
    assert "KD + DSKD, ResNet32x4/ResNet8x4: kd+sdd[1,2]+ls (the preset's scales; also found kd+sdd[1,2,4]+ls)" in md
    assert "90.00" not in md  # digits runs are not CIFAR-100


def test_paper_json_and_csv(grid_runs: Path) -> None:
    doc = json.loads(_invoke(str(grid_runs), "--paper", "--format", "json").stdout)
    homo, hetero = doc["tables"]
    assert (homo["name"], hetero["name"]) == ("homogeneous", "heterogeneous")
    assert [c["label"] for c in homo["columns"]][:2] == ["ResNet32x4/ResNet8x4", "VGG13/VGG8"]
    assert [r["label"] for r in homo["rows"]] == ["KD", "KD + DSKD", "DKD", "DKD + DSKD", "RLD", "RLD + DSKD"]
    cell = homo["rows"][1]["cells"][0]
    assert (cell["variant"], cell["n"], cell["mean"], cell["best_in_column"]) == ("kd+sdd[1,2]+ls", 2, 77.5, True)
    assert homo["rows"][0]["cells"][1] is None
    rows = list(csv.DictReader(io.StringIO(_invoke(str(grid_runs), "--paper", "--format", "csv").stdout)))
    assert len(rows) == 2 * 6 * 7
    first = rows[0]
    assert (first["table"], first["row"], first["teacher"], first["mean"]) == (
        "homogeneous",
        "KD",
        "resnet32x4",
        "73.5",
    )


def test_paper_table_view_and_an_empty_grid(grid_runs: Path, tmp_path: Path) -> None:
    result = _invoke(str(grid_runs), "--paper")
    assert result.exit_code == 0 and "KD + DSKD" in result.stdout and "77.50 ± 0.71 (n=2)" in result.stdout
    write_dskd_run(tmp_path / "other", best=60.0, dataset="digits", teacher="resnet20", student="resnet8")
    empty = _invoke(str(tmp_path / "other"), "--paper", "--format", "md")
    assert empty.exit_code == 0 and "every cell is —" in _stderr(empty)
    assert paper_grids(build_report([tmp_path / "other"])).empty


# --------------------------------------------------------------------------- bad input and curves


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ([], "no runs found under"),
        (["--format", "xml"], "invalid --format 'xml'"),
        (["--metric", "top5"], "invalid --metric 'top5'"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(tmp_path: Path, extra: list[str], fragment: str) -> None:
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "README.txt").write_text("no runs here\n")
    result = _invoke(str(tmp_path / "nothing"), *extra)
    err = _stderr(result).strip()
    assert result.exit_code == 2, result.output
    assert fragment in err and len(err.splitlines()) == 1 and "Traceback" not in result.output


def test_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path / "missing"))
    assert result.exit_code == 2 and "not found" in _stderr(result)


def test_curves_without_matplotlib_name_the_extra(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    result = _invoke(str(mixed), "--curves", str(mixed / "c.png"))
    assert result.exit_code == 2 and "pip install -e '.[plot]'" in _stderr(result)  # a usage error: exit 2


def test_curves_are_drawn(mixed: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "plots" / "curves.png"
    result = _invoke(str(mixed), "--curves", str(target), "--format", "json")
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote 3 curves" in _stderr(result)


def _add_loss_curves(run: Path, curves: list[list[float] | float]) -> None:
    """Give the epoch lines of ``run``'s log a ``train_loss_curve`` (a list) or only a ``train_loss`` (a number)."""
    log = run / "log.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    epochs = iter(curves)
    for event in events:
        if event["event"] == "epoch":
            points = next(epochs)
            event |= {"train_loss_curve": points} if isinstance(points, list) else {"train_loss": points}
    log.write_text("".join(json.dumps(e) + "\n" for e in events))


def test_a_one_epoch_run_draws_its_loss_curve_and_a_marker(teacher_run: Path) -> None:
    """The digits recipe's one epoch gives one test top-1: the loss per tenth of the epoch is the curve."""
    (epoch,) = [
        e for e in map(json.loads, (teacher_run / "log.jsonl").read_text().splitlines()) if e["event"] == "epoch"
    ]
    points = epoch["train_loss_curve"]
    assert len(points) > 1
    (curve,) = group_curves(build_report([teacher_run]))
    assert (curve.epochs, curve.mean, curve.n) == ([1], [epoch["test_acc"]], 1)
    assert curve.loss == pytest.approx(points)
    assert curve.loss_epochs == pytest.approx([(k + 0.5) / len(points) for k in range(len(points))])
    top1, loss = curve_series([curve])
    assert (top1.panel, top1.x, top1.y, top1.marker) == ("top1", [1.0], curve.mean, "o")  # a lone point: a marker
    assert (loss.panel, loss.x, loss.y, loss.marker) == ("loss", curve.loss_epochs, curve.loss, None)
    assert top1.label == loss.label == "vanilla resnet8 (synthetic, n=1)"


def test_loss_curves_are_the_mean_of_the_runs_on_a_fractional_epoch_axis(mixed: Path) -> None:
    """Two kd seeds of 4 epochs: point k of p at epoch − 1 + (k + ½)/p, the mean over seeds; a log line with
    only ``train_loss`` is one point mid-epoch; worklogs log no loss curve."""
    kd = sorted((mixed / "runs/cifar100/resnet32x4-resnet8x4/kd").iterdir())
    _add_loss_curves(kd[0], [[4.0, 3.0], [2.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    _add_loss_curves(kd[1], [[6.0, 5.0], [4.0, 3.0], [1.0, 1.0], [1.0, 1.0]])
    ours = sorted((mixed / "runs/cifar100/resnet32x4-resnet8x4/kd+sdd[1,2]+ls").iterdir())
    for run in ours:
        _add_loss_curves(run, [3.0, 2.0, 1.5, 1.0])
    curves = {c.label.split()[0]: c for c in group_curves(build_report([mixed / "runs"]))}
    assert curves["kd"].loss_epochs == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75]
    assert curves["kd"].loss == [5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0]
    assert curves[OURS].loss_epochs == [0.5, 1.5, 2.5, 3.5] and curves[OURS].loss == [3.0, 2.0, 1.5, 1.0]
    assert all(s.marker is None for s in curve_series(list(curves.values())))  # 4 epochs: lines
    legacy = {c.label.split()[0]: c for c in group_curves(build_report([mixed / "legacy"]))}
    assert legacy["kd"].loss == [] and [s.panel for s in curve_series([legacy["kd"]])] == ["top1"]


def test_epoch_losses_skip_odd_lines_and_stop_at_a_gap() -> None:
    events: list[dict[str, Any]] = [
        {"event": "start", "epoch": 0},
        {"event": "epoch", "epoch": 1, "train_loss_curve": [3.0, 2.0]},
        {"event": "epoch", "epoch": 1, "train_loss_curve": [2.5, 1.5]},  # a resumed epoch: the last line wins
        {"event": "epoch", "epoch": 2, "train_loss_curve": "cut by a kill"},
        {"event": "epoch", "epoch": 2, "train_loss": 1.0},
        {"event": "epoch", "epoch": 4, "train_loss": 0.5},  # after a gap: not placed on the axis
    ]
    assert epoch_losses(events) == [[2.5, 1.5], [1.0]]


def test_a_one_epoch_run_is_drawn(teacher_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="--curves needs the optional plot extra (pip install -e '.[plot]')")
    target = tmp_path / "one-epoch.png"
    result = _invoke(str(teacher_run), "--curves", str(target), "--format", "json")
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote 1 curve to" in _stderr(result)


@pytest.mark.parametrize(
    ("method", "scales", "stand"),
    [
        ("kd", [1], False),
        ("kd", [1, 2], True),
        ("dkd", [1, 2, 4], False),
        ("crd", [1], False),
        ("crd", [1, 2], True),
        ("at", [1], True),
    ],
)
def test_variant_names_match_the_run_config_and_parse_back(method: str, scales: list[int], stand: bool) -> None:
    """Feature methods name the KD term that SDD/LS add (``crd+kd+sdd[1,2]+ls``), as run folders do."""
    pair = {"teacher": "resnet32x4", "student": "resnet8x4"}
    cfg = resolve_run_config(method=method, dataset="cifar100", flags={"scales": scales, "stand": stand}, **pair)
    assert variant_name(method, scales, stand) == cfg.variant
    assert parse_variant(cfg.variant) == (method, scales, stand)


# --------------------------------------------------------------------------- Δ only between matching configs

OURS = "kd+sdd[1,2]+ls"


def _resolved(method: str, **flags: Any) -> dict[str, Any]:
    """The config.json `dskd train` would write (presets, --stand rewrites and all)."""
    cfg = resolve_run_config(method=method, teacher="resnet32x4", student="resnet8x4", flags=flags or None)
    return cfg.model_dump(mode="json")


def _pair_runs(root: Path, base: dict[str, Any], ours: dict[str, Any], method: str = "kd") -> None:
    """Two seeds of METHOD (config ``base``) and of METHOD + SDD[1,2] + LS (config ``ours``)."""
    for seed, (b, o) in enumerate([(70.0, 73.0), (71.0, 75.0)]):
        write_dskd_run(root, best=b, seed=seed, method=method, extra={**base, "seed": seed})
        write_dskd_run(root, best=o, seed=seed, method=method, scales=(1, 2), stand=True, extra={**ours, "seed": seed})


def test_a_delta_between_different_epoch_passes_is_flagged(tmp_path: Path) -> None:
    _pair_runs(tmp_path, {"epoch_passes": 1}, {"epoch_passes": 8})
    (delta,) = build_report([tmp_path]).deltas
    assert (delta.config, delta.differing, delta.ok) == ("inconsistent", ["epoch_passes"], False)
    assert delta.base.ok and delta.other.ok  # each group is consistent in itself
    assert delta.diff == pytest.approx(3.5)  # shown, but flagged
    doc = json.loads(_invoke(str(tmp_path), "--format", "json").stdout)
    (d,) = doc["deltas"]
    assert (d["ok"], d["config"], d["differing"]) == (False, "inconsistent", ["epoch_passes"])
    assert d["flags"] == ["inconsistent: kd and kd+sdd[1,2]+ls differ in epoch_passes (1 vs 8)"]
    assert (_group(doc, "kd")["epoch_passes"], _group(doc, OURS)["epoch_passes"]) == (1, 8)
    assert _group(doc, OURS)["runs"][0]["epoch_passes"] == 8
    table = _invoke(str(tmp_path)).stdout
    assert "vs kd !" in table and "Δ inconsistent: kd and kd+sdd[1,2]+ls differ in epoch_passes (1 vs 8)" in table
    assert "4×1" in table and "4×8" in table
    md = _invoke(str(tmp_path), "--format", "md").stdout
    row = next(line for line in md.splitlines() if f"| {OURS} |" in line)
    assert "| 4×8 |" in row and "vs kd ! |" in row and "epoch_passes (1 vs 8)" in row
    rows = {r["variant"]: r for r in csv.DictReader(io.StringIO(_invoke(str(tmp_path), "--format", "csv").stdout))}
    assert (rows[OURS]["epoch_passes"], rows[OURS]["delta_ok"], rows[OURS]["delta_config"]) == (
        "8",
        "false",
        "inconsistent",
    )
    assert rows[OURS]["ok"] == "true" and "epoch_passes" in rows[OURS]["delta_flags"]
    # --paper: the + DSKD cell and the Δ cell carry the !, the note below names the key.
    paper = _md_rows(_invoke(str(tmp_path), "--paper", "--format", "md").stdout)
    assert paper["KD"][0][0] == "70.50 ± 0.71 (n=2)" and paper["KD + DSKD"][0][0].endswith(" !")
    assert paper["Δ KD"][0][0] == "+3.50 ± 0.71 (paired, n=2) !"
    grid = json.loads(_invoke(str(tmp_path), "--paper", "--format", "json").stdout)["tables"][0]
    ours_cell = grid["rows"][1]["cells"][0]
    assert not ours_cell["ok"] and "epoch_passes (1 vs 8)" in ours_cell["flags"][0]
    assert grid["rows"][0]["cells"][0]["ok"] and not grid["deltas"][0]["cells"][0]["ok"]
    text = _invoke(str(tmp_path), "--paper", "--format", "md").stdout
    assert "! kd+sdd[1,2]+ls resnet32x4→resnet8x4: inconsistent: kd and kd+sdd[1,2]+ls differ in epoch_passes" in text


def test_the_variants_own_keys_do_not_flag_a_delta(tmp_path: Path) -> None:
    """kd vs kd+sdd[1,2]+ls as `dskd train` writes them: T, kd_weight (and DKD's α, β) rewritten by --stand."""
    for method in ("kd", "dkd"):
        base, ours = _resolved(method), _resolved(method, scales=[1, 2], stand=True)
        assert {k for k in base if base[k] != ours[k]} >= {"temperature", "scales", "stand"}
        ours |= {"sdd_weighting": "mean", "sdd_complementary": 3.0, "base_temp": 3.0}
        ours |= {"deterministic": True, "name": "mine", "teacher_ckpt": "teachers/../teachers/t.safetensors"}
        _pair_runs(tmp_path / method, base, ours, method=method)
        (delta,) = build_report([tmp_path / method]).deltas
        assert (delta.config, delta.differing, delta.flags, delta.ok) == ("consistent", [], [], True), method
    doc = json.loads(_invoke(str(tmp_path), "--format", "json").stdout)
    assert [(d["method"], d["ok"], d["config"]) for d in doc["deltas"]] == [
        ("dkd", True, "consistent"),
        ("kd", True, "consistent"),
    ]
    assert "vs kd !" not in _invoke(str(tmp_path)).stdout and "vs dkd !" not in _invoke(str(tmp_path)).stdout


def test_stand_keys_count_when_stand_is_the_same(tmp_path: Path) -> None:
    """kd vs kd+sdd[1,2] (no --stand): a different temperature is a different recipe, not the variant's own key."""
    for seed in (0, 1):
        write_dskd_run(tmp_path, best=70.0 + seed, seed=seed, extra={"temperature": 4.0})
        write_dskd_run(tmp_path, best=72.0 + seed, seed=seed, scales=(1, 2), extra={"temperature": 2.0})
    (delta,) = build_report([tmp_path]).deltas
    assert (delta.config, delta.differing) == ("inconsistent", ["temperature"])
    assert delta.flags == ["inconsistent: kd and kd+sdd[1,2] differ in temperature (4.0 vs 2.0)"]


def test_a_different_lr_or_epoch_count_flags_a_delta(tmp_path: Path) -> None:
    for seed in (0, 1):
        write_dskd_run(tmp_path / "lr", best=70.0, seed=seed, lr=0.05)
        write_dskd_run(tmp_path / "lr", best=72.0, seed=seed, scales=(1, 2), stand=True, lr=0.1)
        write_dskd_run(tmp_path / "ep", best=70.0, seed=seed, epochs=4)
        write_dskd_run(tmp_path / "ep", best=72.0, seed=seed, scales=(1, 2), stand=True, epochs=6)
    (lr,) = build_report([tmp_path / "lr"]).deltas
    assert (lr.ok, lr.differing) == (False, ["lr"]) and "lr (0.05 vs 0.1)" in lr.flags[0]
    (ep,) = build_report([tmp_path / "ep"]).deltas
    assert (ep.ok, ep.differing) == (False, ["epochs"]) and "epochs (4 vs 6)" in ep.flags[0]
    doc = json.loads(_invoke(str(tmp_path / "lr"), "--format", "json").stdout)
    assert doc["deltas"][0]["ok"] is False and doc["deltas"][0]["differing"] == ["lr"]


def test_a_delta_with_legacy_logs_says_config_unknown(mixed: Path) -> None:
    """mdistiller worklogs record no config: neither flagged nor silently passed."""
    (delta,) = [d for d in build_report([mixed]).deltas if d.other.variant == OURS]
    assert (delta.config, delta.ok, delta.flags) == ("unknown", True, [])
    assert delta.notes == ["config unknown for mdistiller logs: only the epochs and keys they record compared"]
    (dskd_only,) = [d for d in build_report([mixed / "runs"]).deltas if d.other.variant == OURS]
    assert dskd_only.config == "consistent" and not dskd_only.notes
    table = _invoke(str(mixed)).stdout
    assert "vs kd ?" in table and "Δ config unknown for mdistiller logs" in table
    assert "4×1" in table  # worklogs: one pass per epoch, like dskd's default
    md = _invoke(str(mixed), "--paper", "--format", "md").stdout
    assert _md_rows(md)["Δ KD"][0][0].endswith(" ?") and "? Δ KD ResNet32x4/ResNet8x4: config unknown" in md


# --------------------------------------------------------------------------- unreadable runs


def test_unreadable_runs_are_excluded_with_their_reason_and_exit_1(tmp_path: Path) -> None:
    write_dskd_run(tmp_path, best=70.0, seed=0)
    (write_dskd_run(tmp_path, best=99.0, seed=1) / "summary.json").write_text('{"status": "finis')
    (write_dskd_run(tmp_path, best=98.0, seed=2) / "config.json").write_text("[1, 2]")
    broken = write_dskd_run(tmp_path, best=97.0, seed=3)
    (broken / "summary.json").unlink()
    (broken / "summary.json").mkdir()  # a file that cannot be read (root reads any mode)
    stray = tmp_path / "elsewhere" / "run"
    stray.mkdir(parents=True)
    (stray / "summary.json").write_text("not json")  # nothing says which run this is
    write_dskd_run(tmp_path, best=96.0, seed=4, status="running", done=2)  # incomplete, not corrupt

    result = _invoke(str(tmp_path), "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)  # the report is still printed
    kd = _group(doc, "kd")
    assert kd["n"] == 1 and kd["best"]["mean"] == pytest.approx(70.0)
    assert kd["flags"] == ["incomplete: 1 run excluded", "unreadable: 3 runs excluded"]
    reasons = {Path(e["path"]).name: e["reason"] for e in kd["excluded"]}
    assert reasons["seed1"].startswith("unreadable: summary.json is not valid JSON")
    assert reasons["seed2"] == "unreadable: config.json holds an array, not a JSON object"
    assert reasons["seed3"].startswith("unreadable: summary.json cannot be read (")
    assert reasons["seed4"].startswith("running after 2/4")
    unreadable = {Path(u["path"]).name: u["reason"] for u in doc["unreadable"]}
    assert set(unreadable) == {"seed1", "seed2", "seed3", "run"}
    assert unreadable["run"].startswith("summary.json is not valid JSON")
    err = _stderr(result)
    assert "excluded" in err and "4 runs excluded as unreadable" in err and "Traceback" not in result.output
    assert err.strip().splitlines()[-1].startswith("error: 4 runs excluded as unreadable")

    table = _invoke(str(tmp_path))
    assert table.exit_code == 1
    assert "seed 1 not averaged, unreadable: summary.json is not valid JSON" in table.stdout
    assert "run: not reported, unreadable: summary.json is not valid JSON" in table.stdout
    paper = _invoke(str(tmp_path), "--paper", "--format", "md")
    assert paper.exit_code == 1 and "unreadable: 3 runs excluded" in paper.stdout

    # Incomplete runs alone keep exit code 0.
    for name in ("seed1", "seed2", "seed3"):
        shutil.rmtree(tmp_path / "cifar100/resnet32x4-resnet8x4/kd" / name)
    shutil.rmtree(stray)
    clean = _invoke(str(tmp_path), "--format", "json")
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["unreadable"] == []


def test_only_unreadable_runs_is_still_a_report_with_exit_1(tmp_path: Path) -> None:
    stray = tmp_path / "run"
    stray.mkdir()
    (stray / "summary.json").write_text("null")
    result = _invoke(str(tmp_path), "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["groups"] == [] and doc["unreadable"] == [
        {"path": str(stray), "reason": "summary.json holds null, not a JSON object"}
    ]


def test_report_help_names_the_exit_code() -> None:
    help_text = " ".join(runner.invoke(app, ["report", "--help"]).output.split())
    assert "Exit code 1 when a run's summary.json or config.json cannot be read" in help_text


# --------------------------------------------------------------------------- a run folder given directly


def test_a_run_folder_given_directly_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_dskd_run(tmp_path / "runs", best=70.0, seed=0)
    write_dskd_run(tmp_path / "runs", best=72.0, seed=1)
    result = _invoke(str(run), "--format", "json")
    assert result.exit_code == 0, result.output
    (group,) = json.loads(result.stdout)["groups"]
    assert (group["variant"], group["n"], group["seeds"], group["best"]["mean"]) == ("kd", 1, [0], 70.0)
    # A bare summary.json, the folder given as "." from inside it: the folder names say the rest.
    bare = tmp_path / "runs/cifar100/vgg13-vgg8/dkd+sdd[1,2]+ls/seed3"
    bare.mkdir(parents=True)
    (bare / "summary.json").write_text(json.dumps({"status": "finished", "epochs": 240, "best_acc": 75.17}))
    monkeypatch.chdir(bare)
    here = _invoke(".", "--format", "json")
    assert here.exit_code == 0, here.output
    (group,) = json.loads(here.stdout)["groups"]
    assert (group["teacher"], group["student"], group["variant"], group["seeds"]) == (
        "vgg13",
        "vgg8",
        "dkd+sdd[1,2]+ls",
        [3],
    )
    # The variant folder walks its seeds.
    variant = _invoke(str(run.parent), "--format", "json")
    assert json.loads(variant.stdout)["groups"][0]["seeds"] == [0, 1]


def test_a_per_region_sd_dkd_run_is_named_so_and_is_not_the_papers_dkd_row(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_dskd_run(runs, best=76.0, method="dkd", teacher="vgg13", student="vgg8")
    # Trained before the reduction was part of the name: its folder and summary say dkd+sdd[1,2]+ls.
    write_dskd_run(
        runs,
        best=80.0,
        method="dkd",
        teacher="vgg13",
        student="vgg8",
        scales=(1, 2),
        stand=True,
        extra={"sdd_weighting": "region"},
    )
    result = _invoke(str(runs), "--format", "json")
    assert result.exit_code == 0, result.output
    variants = {g["variant"] for g in json.loads(result.stdout)["groups"]}
    assert variants == {"dkd", "dkd+sdd[1,2]+region+ls"}
    paper = _invoke(str(runs), "--paper", "--format", "md")
    assert paper.exit_code == 0 and "80.00" not in paper.stdout  # DSKD's DKD row is the mean reduction only


def test_a_beta_from_another_config_file_is_flagged_across_stand(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    common = {"method": "rld", "teacher": "vgg13", "student": "vgg8"}
    write_dskd_run(runs, best=70.0, **common, extra={"alpha": 1.0, "beta": 2.0})
    # --stand: alpha and beta x 9, so beta/alpha 0.5 against 2.0: another beta, not the variant's own.
    write_dskd_run(runs, best=71.0, **common, scales=(1, 2), stand=True, extra={"alpha": 9.0, "beta": 4.5})
    write_dskd_run(runs, best=72.0, **common, stand=True, extra={"alpha": 9.0, "beta": 18.0})  # same ratio
    result = _invoke(str(runs), "--format", "json")
    deltas = {d["variant"]: d for d in json.loads(result.stdout)["deltas"]}
    assert deltas["rld+sdd[1,2]+ls"]["ok"] is False and "beta/alpha" in deltas["rld+sdd[1,2]+ls"]["differing"]
    assert deltas["rld+ls"]["ok"] is True


def test_t_quantiles_match_students_table() -> None:
    from dskd_core.report.stats import t_975

    for df, t in ((1, 12.706), (2, 4.303), (9, 2.262), (30, 2.042), (40, 2.021), (60, 2.000), (120, 1.980)):
        assert t_975(df) == pytest.approx(t, abs=6e-4), df
    with pytest.raises(ValueError):
        t_975(0)
