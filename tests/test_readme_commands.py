"""Every ``dskd …`` command of the README's shell blocks is one dskd accepts as written.

Each is parsed by the app's own command tree (its options exist, its values convert); every ``train`` and
``sweep`` also runs with ``--dry-run`` (added where the README leaves it out), so everything the run would
refuse before training (the names, the presets, the device, the teacher's checkpoint header, the run folder)
is checked. The teachers are there as ``dskd fetch-teachers`` or a ``--teacher-ckpt`` run folder would leave
them: headers with the architecture and class count, no weights.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.data import get_dataset_spec
from tests.helpers import ROOT, teacher_header

README = (ROOT / "README.md").read_text()
ENV = re.compile(r"[A-Z_]+=\S*")


def split(command: str) -> tuple[dict[str, str], list[str]]:
    """A README command's environment settings and its arguments after ``dskd``."""
    words = shlex.split(command)
    env = [w for w in words if ENV.fullmatch(w)]
    return dict(w.split("=", 1) for w in env), words[len(env) + 1 :]


def readme_commands() -> list[str]:
    """The ``dskd …`` lines of the README's bash blocks, continuation lines joined, comments dropped."""
    out = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", README, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            for part in line.split("#")[0].split("&&"):
                words = shlex.split(part)
                env = [w for w in words if ENV.fullmatch(w)]  # VAR=value before the command
                words = words[len(env) :]
                if words and (words[0] == "dskd" or words[0].endswith("/dskd")):
                    out.append(shlex.join([*env, "dskd", *words[1:]]))
    return out


COMMANDS = readme_commands()


def test_the_readme_has_its_commands() -> None:
    names = {split(c)[1][0] for c in COMMANDS}
    assert {"train", "sweep", "report", "runs", "eval", "fetch-teachers", "presets", "quickstart"} <= names
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("command", COMMANDS)
def test_a_readme_command_parses_as_written(command: str) -> None:
    group = typer.main.get_command(app)
    name, *rest = split(command)[1]
    ctx = group.context_class(group, info_name="dskd")
    sub = group.get_command(ctx, name)
    assert sub is not None, command
    with sub.make_context(name, rest, parent=ctx) as sub_ctx:  # an unknown option or a bad value raises here
        assert sub_ctx.params is not None


@pytest.mark.parametrize("command", [c for c in COMMANDS if split(c)[1][0] in ("train", "sweep")])
def test_a_readme_train_or_sweep_dry_runs(
    command: str, tmp_path: Path, fetched_teachers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env, args = split(command)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dataset = "cifar100"
    for flag in ("-d", "--dataset"):
        if flag in args:
            dataset = args[args.index(flag) + 1]
    if "--teacher-ckpt" in args:
        teacher = tmp_path / args[args.index("--teacher-ckpt") + 1]
        teacher_header(teacher, args[2], get_dataset_spec(dataset).num_classes)  # train|sweep METHOD TEACHER …
    if "--data-dir" in args:  # a dry run does not read the data; the folder need not hold it
        args[args.index("--data-dir") + 1] = str(tmp_path / "data")
    if "--dry-run" not in args:
        args.append("--dry-run")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"{command}\n{result.output}"
    assert not (tmp_path / "runs" / dataset).exists() or not any((tmp_path / "runs" / dataset).rglob("*.json"))
