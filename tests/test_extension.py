"""A new method is its own file plus its registration: the run schema, ``--set``, ``--dry-run``,
``train --help``, the completions and the config errors pick it up with nothing else edited.

The method is registered in a child process, so this session's registries stay as shipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import subprocess_env

TOY = textwrap.dedent(
    '''
    import json, sys
    from pydantic import Field
    from typer.testing import CliRunner

    from dskd_core.config import MethodParams
    from dskd_core.losses import kd
    from dskd_core.methods import register_method
    from dskd_core.methods.logit import LogitDistiller


    @register_method
    class Toy(LogitDistiller):
        """Toy — KD times a factor (a test's method)."""

        class Params(MethodParams):
            toy_scale: float = Field(2.0, gt=0)

        name = "toy"
        params: Params
        defaults = {"ce_weight": 1.0, "kd_weight": 1.0, "temperature": 4.0}

        def per_sample(self):
            scale, t = self.params.toy_scale, self.cfg.temperature
            return lambda s, te, y: scale * kd(s, te, t)


    from dskd_cli.app import app
    from dskd_cli.completions import generate
    from typer.main import get_command

    runner = CliRunner()
    def run(*args):
        result = runner.invoke(app, list(args))
        return {"code": result.exit_code, "out": result.stdout, "err": result.stderr}
    base = ["train", "toy", "resnet8", "resnet8", "-d", "synthetic", "--dry-run"]
    print(json.dumps({
        "dry": run(*base, "--set", "toy_scale=3"),
        "default": run(*base),
        "bad": run(*base, "--set", "toy_scale=-1"),
        "other": run("train", "kd", "resnet8", "resnet8", "-d", "synthetic", "--dry-run", "--set", "toy_scale=3"),
        "help": run("train", "--help"),
        "bash": generate("bash", get_command(app)),
    }))
    '''
)


@pytest.mark.usefixtures("fetched_teachers")  # a dry run checks the teacher file
def test_a_registered_method_with_params_needs_nothing_else(tmp_path: Path) -> None:
    env = {**subprocess_env(), "DSKD_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", TOY], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["dry"]["code"] == 0, out["dry"]
    dry = json.loads(out["dry"]["out"][out["dry"]["out"].index("{") :])
    assert dry["method"] == "toy" and dry["toy_scale"] == 3.0 and "params" not in dry
    default = json.loads(out["default"]["out"][out["default"]["out"].index("{") :])
    assert default["toy_scale"] == 2.0 and default["ce_weight"] == 1.0
    assert out["bad"]["code"] == 2 and "toy_scale" in out["bad"]["err"] and "Traceback" not in out["bad"]["err"]
    assert out["other"]["code"] == 2 and "toy_scale does not apply to method 'kd'" in out["other"]["err"]
    assert "toy" in out["help"]["out"]
    assert "toy" in out["bash"]
