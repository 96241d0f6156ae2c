"""``--help`` at a fixed width: panels, whole option names, no type labels, examples; and value completion.

Each page is rendered through Typer's runner with ``COLUMNS`` set, which fixes the width of the console
that prints it, and is read back as text.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
from rich.cells import cell_len
from typer.testing import CliRunner

from dskd_cli.app import COMMANDS, app
from dskd_cli.options import PANELS, REPORT_FORMATS, TABLE_JSON, TEXT_JSON
from dskd_core.config import RunConfig

runner = CliRunner()
GROUP = typer.main.get_command(app)
assert isinstance(GROUP, typer.core.TyperGroup)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: typer's type column: ``<bool>``, ``<str>``, ``<list[str]>``, ``<float>``, ...
TYPE_LABEL = re.compile(r"<(bool|str|int|float|path|text|integer|list\[[^>]*\])>", re.IGNORECASE)
TRAIN_PANELS = ("Method", "Recipe", "Data & paths", "Execution", "Multi-process", "Output")


def render(*args: str, columns: int = 80) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.stdout)


def names_of(param: Any) -> str:
    """An option's names as the page writes them: ``--stand, --logit-stand``, ``--fast / --no-fast``."""
    names = ", ".join(param.opts)
    return names + (" / " + ", ".join(param.secondary_opts) if param.secondary_opts else "")


def options_of(name: str) -> list[Any]:
    return [p for p in GROUP.commands[name].params if p.param_type_name == "option"]


@pytest.mark.parametrize("columns", [80, 60, 120])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_name_is_whole_and_every_line_fits(command: str, columns: int) -> None:
    text = render(command, columns=columns)
    assert max(cell_len(line) for line in text.splitlines()) <= columns
    for param in options_of(command):
        for name in (*param.opts, *param.secondary_opts):
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{command}: {name} cut or missing"
    assert "-h, --help" in text
    assert not TYPE_LABEL.search(text), TYPE_LABEL.search(text)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_flag_has_no_metavar_and_a_value_has_one(command: str) -> None:
    text = render(command)
    for param in options_of(command):
        names = re.escape(names_of(param))
        if param.is_flag:  # the names, then the help two spaces on, or alone (stacked) before the border
            assert re.search(rf"│ {names}( {{2,}}\S| *│)", text), f"{command}: {names_of(param)}"
        else:
            assert re.search(rf"│ {names} [A-Z][A-Z_=|]*( |$)", text, re.MULTILINE), f"{command}: {names_of(param)}"


def test_the_wider_terminal_gets_the_wider_page() -> None:
    """COLUMNS is the page's width: at 120 the help runs past 80 columns."""
    assert max(len(line) for line in render("train", columns=120).splitlines()) > 80
    assert max(len(line) for line in render("train", columns=80).splitlines()) == 80


def test_train_help_groups_its_options_into_the_panels_in_order() -> None:
    text = render("train")
    titles = re.findall(r"╭─ (.+?) ─", text)
    assert titles == ["Arguments", *TRAIN_PANELS, "Options", "Examples"]
    for param in options_of("train"):  # a new option lands in a panel, not in the leftover "Options"
        assert param.rich_help_panel in TRAIN_PANELS, param.name


def test_sweep_help_puts_every_option_in_a_panel() -> None:
    titles = re.findall(r"╭─ (.+?) ─", render("sweep"))
    assert titles[0] == "Arguments" and titles[-2:] == ["Options", "Examples"]
    assert {"Grid", "Recipe", "Data & paths", "Execution", "Output"} <= set(titles)
    for param in options_of("sweep"):
        assert param.rich_help_panel in PANELS, param.name


def test_a_long_name_is_stacked_above_its_help_not_cut() -> None:
    """At 60 columns --compile / --no-compile is wider than the name column: it has its line to itself."""
    lines = render("train", columns=60).splitlines()
    at = next(i for i, line in enumerate(lines) if "--compile / --no-compile" in line)
    assert lines[at].strip("│ ") == "--compile / --no-compile"
    assert lines[at + 1].startswith("│" + " " * 6) and "torch.compile" in lines[at + 1]


@pytest.mark.parametrize(
    ("command", "example"),
    [
        ("train", "dskd train kd resnet32x4 resnet8x4 --scales 1,2 --stand"),
        ("train", "dskd train --resume runs/digits/resnet20/vanilla/seed0"),
        ("sweep", "dskd sweep kd resnet32x4 resnet8x4 --dry-run"),
        ("eval", "dskd eval -c runs/digits/resnet20/vanilla/seed0"),
        ("report", "dskd report runs/ --paper --format md"),
        ("runs", "dskd runs show runs/digits/resnet20/vanilla/seed0 --events 10"),
    ],
)
def test_the_help_ends_with_examples(command: str, example: str) -> None:
    text = render(command)
    examples = text[text.index("╭─ Examples") :]
    assert example in examples


def test_the_help_states_the_digits_recipe() -> None:
    from dskd_core.data.registry import DIGITS_RECIPE

    recipe = f"{DIGITS_RECIPE['epochs']} of {DIGITS_RECIPE['epoch_passes']} passes on digits"
    for command in ("train", "sweep"):
        assert recipe in " ".join(render(command).replace("│", " ").split()), command


def test_the_methods_are_listed_for_h_and_help() -> None:
    for flag in ("-h", "--help"):
        result = runner.invoke(app, ["train", flag], env={"COLUMNS": "80"})
        assert result.exit_code == 0 and "{methods}" not in result.stdout
        assert "dkd, kd, rld" in " ".join(result.stdout.replace("│", " ").split())


def test_root_help_lists_every_command_at_80_columns_without_torch() -> None:
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from dskd_cli.app import app\n"
        "out = CliRunner().invoke(app, ['--help'], env={'COLUMNS': '80'}).stdout\n"
        "print(out)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    text, imported = done.stdout.rsplit("\n", 2)[0], done.stdout.split()[-1]
    assert imported == "False"
    assert max(cell_len(line) for line in text.splitlines()) <= 80
    assert not TYPE_LABEL.search(text)
    for name in COMMANDS:
        assert re.search(rf"│ {re.escape(name)} ", text), name
    assert "-h, --help" in text and "--version" in text


# --------------------------------------------------------------------------- value completion (runtime)


def complete(command: str, name: str, incomplete: str = "", **params: Any) -> list[str]:
    cmd = GROUP.commands[command]
    param = next(p for p in cmd.params if p.name == name)
    ctx = typer.Context(cmd)
    ctx.params.update(params)
    return [item.value for item in param.shell_complete(ctx, incomplete)]


def literal(key: str) -> list[str]:
    return list(get_args(RunConfig.model_fields[key].annotation))


@pytest.mark.parametrize(
    ("command", "name", "expected"),
    [
        ("train", "sdd_weighting", literal("sdd_weighting")),
        ("train", "precision", literal("precision")),
        ("train", "preset_source", literal("preset_source")),
        ("sweep", "preset_source", literal("preset_source")),
        ("presets", "source", literal("preset_source")),
        ("train", "lr_scaling", literal("lr_scaling")),
        ("eval", "fmt", list(TEXT_JSON)),
        ("runs", "fmt", list(TABLE_JSON)),
        ("sweep", "fmt", list(TABLE_JSON)),
        ("presets", "fmt", list(TABLE_JSON)),
        ("report", "fmt", list(REPORT_FORMATS)),
    ],
)
def test_fixed_choices_complete(command: str, name: str, expected: list[str]) -> None:
    assert complete(command, name) == expected
    assert "bf16" in literal("precision") and literal("sdd_weighting") == ["region", "mean"]


def test_report_metrics_and_run_statuses_complete() -> None:
    from dskd_core.report import METRICS, check_metric
    from dskd_core.runs.listing import RUN_STATUSES

    assert complete("report", "metric") == list(METRICS) == ["best", "last"]
    assert [check_metric(m) for m in complete("report", "metric")] == list(METRICS)
    assert complete("runs", "status") == list(RUN_STATUSES) and "finished" in RUN_STATUSES
    assert complete("runs", "status", "f") == ["finished", "failed"]


def test_run_folders_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runs" / "digits" / "resnet20").mkdir(parents=True)
    (tmp_path / "runs" / "notes.txt").write_text("")
    (tmp_path / "report.md").write_text("")
    monkeypatch.chdir(tmp_path)
    assert complete("train", "method", "r", resume=True) == ["runs/"]
    assert complete("train", "method", "runs/", resume=True) == ["runs/digits/"]
    assert complete("train", "method", "runs/digits/r") == ["runs/digits/resnet20/"]  # a path is a run folder
    assert "kd" in complete("train", "method") and "runs/" not in complete("train", "method")
    assert complete("runs", "run", "runs/d") == ["runs/digits/"]
    assert complete("runs", "target") == ["show", "runs/"]
