"""Completion scripts are generated from the app; a stale file under completions/ fails here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_cli.completions import FILENAMES, generate

ROOT = Path(__file__).resolve().parents[1]
#: The ``dskd`` click group, whose commands the scripts describe.
GROUP = typer.main.get_command(app)


@pytest.mark.parametrize("shell", sorted(FILENAMES))
def test_committed_completions_are_current(shell: str) -> None:
    committed = (ROOT / "completions" / FILENAMES[shell]).read_text()
    assert committed == generate(shell, GROUP), (
        f"completions/{FILENAMES[shell]} is stale: run `python scripts/write_completions.py`"
    )


@pytest.mark.parametrize("shell", sorted(FILENAMES))
def test_completions_name_every_command_option_and_model(shell: str) -> None:
    text = generate(shell, GROUP)
    for word in ("train", "eval", "quickstart", "--scales", "--stand", "--kd-weight", "resnet32x4", "digits"):
        assert (word.lstrip("-") if shell == "fish" else word) in text


@pytest.mark.parametrize("shell", sorted(FILENAMES))
def test_completion_scripts_parse(shell: str, tmp_path: Path) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")
    script = tmp_path / FILENAMES[shell]
    script.write_text(generate(shell, GROUP))
    assert subprocess.run([exe, "-n", str(script)], capture_output=True).returncode == 0


def test_bash_completion_offers_models_after_the_method(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = tmp_path / "dskd.bash"
    script.write_text(generate("bash", GROUP))
    probe = f'source {script}; COMP_WORDS=(dskd train kd resnet3); COMP_CWORD=3; _dskd; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run([bash, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["resnet32", "resnet32x4"]


@pytest.mark.parametrize("shell", sorted(FILENAMES))
def test_the_completions_command_prints_the_committed_script(shell: str) -> None:
    result = CliRunner().invoke(app, ["completions", shell])
    assert result.exit_code == 0 and result.output == (ROOT / "completions" / FILENAMES[shell]).read_text()


def _bash_complete(tmp_path: Path, *words: str) -> list[str]:
    """What the generated bash script offers for the last of ``words`` (run in ``tmp_path``)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = tmp_path / "dskd.bash"
    script.write_text(generate("bash", GROUP))
    quoted = " ".join(f"'{w}'" for w in words)
    probe = f'source {script}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _dskd; echo "${{COMPREPLY[@]}}"'
    return subprocess.run([bash, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path).stdout.split()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("dskd", "train", "--sdd-weighting", ""), ["region", "mean"]),
        (("dskd", "train", "--precision", "b"), ["bf16"]),
        (("dskd", "train", "--preset-source", ""), ["dskd", "mdistiller"]),
        (("dskd", "sweep", "--preset-source", "m"), ["mdistiller"]),
        (("dskd", "train", "--lr-scaling", ""), ["none", "linear"]),
        (("dskd", "eval", "--format", ""), ["text", "json"]),
        (("dskd", "report", "--format", ""), ["table", "md", "csv", "json"]),
        (("dskd", "runs", "--format", ""), ["table", "json"]),
        (("dskd", "report", "--metric", ""), ["best", "last"]),
        (("dskd", "runs", "--status", "f"), ["finished", "failed"]),
    ],
)
def test_bash_completion_offers_an_options_choices(tmp_path: Path, words: tuple[str, ...], expected: list[str]) -> None:
    assert _bash_complete(tmp_path, *words) == expected


def test_bash_completion_offers_run_folders(tmp_path: Path) -> None:
    (tmp_path / "runs" / "digits").mkdir(parents=True)
    (tmp_path / "runs.txt").write_text("")
    assert _bash_complete(tmp_path, "dskd", "train", "--resume", "run") == ["runs"]  # folders only
    assert _bash_complete(tmp_path, "dskd", "train", "--resume", "runs/") == ["runs/digits"]
    assert _bash_complete(tmp_path, "dskd", "train", "k") == ["kd", "kdsvd"]  # without --resume: methods
    assert _bash_complete(tmp_path, "dskd", "runs", "show", "runs/d") == ["runs/digits"]
    assert _bash_complete(tmp_path, "dskd", "runs", "s") == ["show"]
    assert _bash_complete(tmp_path, "dskd", "train", "--runs-dir", "r") == ["runs"]


@pytest.mark.parametrize("shell", sorted(FILENAMES))
def test_completions_name_the_choices(shell: str) -> None:
    text = generate(shell, GROUP)
    for words in ("region mean", "auto tf32 fp32 bf16", "dskd mdistiller", "table md csv json", "best last"):
        assert words in text, words
