"""``config.json`` files written before method parameters moved into per-method ``Params`` stay readable.

``tests/data/config_0.1_*.json`` are ``dskd train … --dry-run`` outputs of dskd 0.1 at commit
4cf4c12 (every method's parameters flat, None where they did not apply): they load into the
same run config today's resolution gives, and today's ``config.json`` stays one flat level.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dskd_core.config import EXECUTION_KEYS, RunConfig, config_differences
from dskd_core.errors import UsageError
from dskd_core.methods import get_method
from dskd_core.resolve import load_run_config, resolve_run_config

DATA = Path(__file__).parent / "data"
CASES = {
    "kd": {"flags": {"scales": [1, 2], "stand": True}},
    "dkd": {},
    "crd": {"overrides": {"crd_nce_k": 4096}},
}


@pytest.mark.parametrize("method", sorted(CASES))
def test_a_config_json_of_dskd_0_1_loads_as_today_resolves_it(method: str, tmp_path: Path) -> None:
    shutil.copy(DATA / f"config_0.1_{method}.json", tmp_path / "config.json")
    old = load_run_config(tmp_path)
    new = resolve_run_config(method=method, teacher="resnet32x4", student="resnet8x4", **CASES[method])
    recorded = set(EXECUTION_KEYS)  # the dry run records the effective values of this CPU
    assert old.model_dump(exclude=recorded) == new.model_dump(exclude=recorded)
    assert isinstance(old.params, get_method(method).Params)
    saved = json.loads((DATA / f"config_0.1_{method}.json").read_text())
    assert config_differences(saved, new.model_dump(mode="json")) == []
    # every value the old file held for this method is what the typed params hold now
    assert {k: saved[k] for k in old.params.model_dump()} == old.params.model_dump()


def test_the_parameters_stay_flat_in_config_json() -> None:
    cfg = resolve_run_config(method="crd", teacher="resnet32x4", student="resnet8x4", overrides={"crd_nce_k": 64})
    dumped = json.loads(cfg.to_json())
    assert "params" not in dumped and dumped["crd_nce_k"] == 64 and dumped["feat_weight"] == 0.8
    assert "alpha" not in dumped  # another method's parameter is not written
    assert RunConfig(**dumped) == cfg and cfg.crd_nce_k == 64 and cfg.params.crd_nce_k == 64


def test_an_old_file_with_another_methods_value_is_refused_with_the_key(tmp_path: Path) -> None:
    saved = json.loads((DATA / "config_0.1_kd.json").read_text())
    saved["crd_nce_k"] = 5
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(UsageError, match="crd_nce_k does not apply to method 'kd'"):
        load_run_config(tmp_path)


def test_an_old_file_with_a_dkd_key_on_kd_still_loads(tmp_path: Path) -> None:
    """dskd 0.1 accepted --set alpha/beta/alpha_temperature on every method and ignored them where the
    method has none; such a run's config.json stays readable (the key changed nothing), and the
    request itself is now refused with the key named."""
    saved = json.loads((DATA / "config_0.1_kd.json").read_text())
    saved.update(alpha=2.0, beta=3.0)
    (tmp_path / "config.json").write_text(json.dumps(saved))
    cfg = load_run_config(tmp_path)
    assert cfg.method == "kd" and "alpha" not in cfg.model_dump() and cfg.kd_weight == saved["kd_weight"]
    with pytest.raises(UsageError, match="alpha does not apply to method 'kd'"):
        resolve_run_config(method="kd", teacher="resnet32x4", student="resnet8x4", overrides={"alpha": 2.0})
