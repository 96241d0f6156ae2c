"""MLKD and MLKD_NOAUG: the loss terms against fixed values and an independent numpy version, the methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dskd_core.losses import median_threshold, mlkd_terms

TERMS = ("ce", "kd", "cc", "bc")


def golden_inputs(b: int, k: int = 10) -> tuple[torch.Tensor, ...]:
    """The inputs behind the fixed values below (float64): smooth, deterministic, a teacher that is often right."""
    rows = torch.arange(b, dtype=torch.float64)[:, None]
    cols = torch.arange(k, dtype=torch.float64)[None, :]
    t_weak = 4 * torch.sin(1.3 * rows + 0.7 * cols) + 3 * (cols == rows % k).double()
    t_strong = 4 * torch.sin(1.1 * rows + 0.9 * cols + 0.5)
    s_weak = 2 * torch.cos(0.9 * rows + 1.7 * cols)
    s_strong = 2 * torch.cos(0.6 * rows + 1.3 * cols + 0.2)
    target = (3 * torch.arange(b)) % k
    return s_weak, t_weak, s_strong, t_strong, target


# (two views, B, T0, kd_weight, stand) -> (ce, kd, cc, bc): the DSKD reference functions run in float64.
GOLDEN = [
    ((True, 8, 4.0, 0.9, False), (0.4590197890, 29.1643800066, 0.0479056867, 0.0463086116)),
    ((True, 8, 2.0, 9.0, True), (0.4590197890, 56.5899083044, 0.7595034864, 0.7464662470)),
    ((True, 7, 4.0, 0.9, False), (0.4545236984, 31.3070040625, 0.0363942741, 0.0358176952)),
    ((False, 8, 4.0, 0.9, False), (0.1636849963, 10.5960620366, 0.0479056867, 0.0463086116)),
    ((False, 8, 2.0, 9.0, True), (0.1636849963, 19.2026628015, 0.7595034864, 0.7464662470)),
    ((False, 7, 4.0, 0.9, False), (0.1372818692, 12.1412269613, 0.0363942741, 0.0358176952)),
]


@pytest.mark.parametrize(("case", "expected"), GOLDEN)
def test_mlkd_terms_equal_the_reference_values(case: tuple[bool, int, float, float, bool], expected: tuple) -> None:
    two_views, b, temperature, kd_weight, stand = case
    s_weak, t_weak, s_strong, t_strong, target = golden_inputs(b)
    strong = {"s_strong": s_strong, "t_strong": t_strong} if two_views else {}
    terms = mlkd_terms(
        s_weak, t_weak, target, temperature=temperature, kd_weight=kd_weight, ce_weight=0.1, stand=stand, **strong
    )
    assert list(terms) == list(TERMS)
    for name, value in zip(TERMS, expected, strict=True):
        assert float(terms[name]) == pytest.approx(value, rel=1e-9, abs=1e-10), name


def _np_softmax(x: np.ndarray, t: float) -> np.ndarray:
    e = np.exp(x / t - (x / t).max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _np_stand(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(1, keepdims=True)) / (x.std(1, ddof=1, keepdims=True) + 1e-7)


def numpy_mlkd(s_w, t_w, y, s_s=None, t_s=None, *, t0, w, c, stand, per_sample=False) -> dict[str, float]:
    """MLKD written again from its definition, in numpy float64 (np.percentile for the medians)."""
    temps = (t0, 3.0, 5.0, 2.0, 6.0)

    def kd_rows(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
        if stand:
            a, b = _np_stand(a), _np_stand(b)
        p, log_q = _np_softmax(b, t), np.log(_np_softmax(a, t))
        return t * t * (p * (np.log(p) - log_q)).sum(1)

    def ce(a: np.ndarray) -> float:
        return float(-np.log(_np_softmax(a, 1.0))[np.arange(len(y)), y].mean())

    probs = _np_softmax(t_w, 1.0)
    conf = probs.max(1)
    mask = conf <= np.percentile(conf, 50)
    sums = probs.sum(0)
    cmask = sums <= np.percentile(sums, 50)
    kd_w = cc = bc = 0.0
    for t in temps:
        p, q = _np_softmax(s_w, t), _np_softmax(t_w, t)
        cc_rows = ((q.T @ q - p.T @ p) ** 2).sum(1) / s_w.shape[1]
        bc_rows = ((q @ q.T - p @ p.T) ** 2).sum(1) / s_w.shape[0]
        if per_sample:
            kd_w += (kd_rows(s_w, t_w, t) * mask).mean()
            cc += (cc_rows * cmask).sum()
            bc += (bc_rows * mask).sum()
        else:
            kd_w += kd_rows(s_w, t_w, t).mean() * mask.mean()
            cc += cc_rows.sum() * cmask.mean()
            bc += bc_rows.sum() * mask.mean()
    kd_total = w * kd_w
    ce_total = ce(s_w)
    if s_s is not None:
        strong = sum(kd_rows(s_s, t_s, t).mean() for t in temps[:3])
        kd_total += w * (strong + kd_rows(s_w, t_w, 2.0).mean() + kd_rows(s_w, t_w, 6.0).mean())
        ce_total += ce(s_s)
    return {"ce": c * ce_total, "kd": kd_total, "cc": w * cc, "bc": w * bc}


@pytest.mark.parametrize("two_views", [True, False])
@pytest.mark.parametrize("stand", [True, False])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("b", [6, 9, 64])
def test_mlkd_terms_equal_an_independent_numpy_version(two_views: bool, stand: bool, per_sample: bool, b: int) -> None:
    gen = torch.Generator().manual_seed(b + 10 * stand + 100 * two_views)
    k = 100
    logits = [torch.randn(b, k, generator=gen, dtype=torch.float64) * scale for scale in (2.0, 5.0, 2.0, 5.0)]
    s_w, t_w, s_s, t_s = logits
    target = torch.randint(0, k, (b,), generator=gen)
    strong = {"s_strong": s_s, "t_strong": t_s} if two_views else {}
    form = "per_sample" if per_sample else "factor"
    got = mlkd_terms(
        s_w, t_w, target, temperature=2.0, kd_weight=9.0, ce_weight=0.1, stand=stand, mask_form=form, **strong
    )
    arrays = [x.numpy() for x in logits]
    want = numpy_mlkd(
        arrays[0],
        arrays[1],
        target.numpy(),
        *(arrays[2:] if two_views else []),
        t0=2.0,
        w=9.0,
        c=0.1,
        stand=stand,
        per_sample=per_sample,
    )
    for name in TERMS:
        assert float(got[name]) == pytest.approx(want[name], rel=1e-10), name


def test_a_saturated_teacher_keeps_more_than_half_the_batch() -> None:
    """Teacher maxima that round to exactly 1.0 tie at the median: the kept fraction is counted, not assumed ½."""
    b, k = 8, 10
    t_weak = torch.zeros(b, k)
    t_weak[:5, 0] = 40.0  # softmax max is exactly 1.0 in float32
    t_weak[5:, 1] = torch.tensor([2.0, 0.1, 0.2])
    s_weak = torch.randn(b, k, generator=torch.Generator().manual_seed(0))
    target = torch.zeros(b, dtype=torch.long)
    conf = torch.softmax(t_weak, -1).max(-1).values
    assert (conf == 1.0).sum() == 5
    terms = mlkd_terms(s_weak, t_weak, target, temperature=4.0, kd_weight=1.0, ce_weight=0.0, stand=False)
    unmasked = sum(
        float(
            torch.nn.functional.kl_div(
                torch.log_softmax(s_weak / t, -1), torch.softmax(t_weak / t, -1), reduction="none"
            )
            .sum(-1)
            .mean()
        )
        * t
        * t
        for t in (4.0, 3.0, 5.0, 2.0, 6.0)
    )
    assert float(terms["kd"]) == pytest.approx(unmasked, rel=1e-5)  # every sample kept: factor 1


@pytest.mark.parametrize("n", [1, 2, 7, 8, 64, 100])
def test_median_threshold_is_numpys_default_percentile(n: int) -> None:
    values = torch.rand(n, generator=torch.Generator().manual_seed(n))
    values[: n // 3] = values[0]  # ties
    assert float(median_threshold(values)) == pytest.approx(float(np.percentile(values.numpy(), 50)), abs=0)


def test_mlkd_terms_read_nothing_back_to_the_host() -> None:
    """On meta tensors any host read (``.item()``, a Python ``if`` on a tensor) raises: the terms need none."""
    b, k = 8, 100
    meta = [torch.empty(b, k, device="meta") for _ in range(4)]
    target = torch.empty(b, dtype=torch.long, device="meta")
    for form in ("factor", "per_sample"):
        terms = mlkd_terms(
            meta[0],
            meta[1],
            target,
            s_strong=meta[2],
            t_strong=meta[3],
            temperature=2.0,
            kd_weight=9.0,
            ce_weight=0.1,
            stand=True,
            mask_form=form,
        )
        assert all(v.shape == () for v in terms.values())


def test_mlkd_terms_refuse_half_a_strong_view_and_an_unknown_mask_form() -> None:
    s_w, t_w, s_s, _, y = golden_inputs(8)
    with pytest.raises(ValueError, match="both s_strong and t_strong"):
        mlkd_terms(s_w, t_w, y, s_strong=s_s, temperature=4.0, kd_weight=0.9, ce_weight=0.1, stand=False)
    with pytest.raises(ValueError, match="mask_form"):
        mlkd_terms(s_w, t_w, y, temperature=4.0, kd_weight=0.9, ce_weight=0.1, stand=False, mask_form="rows")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The methods


def _distiller(method: str, **flags: object):  # type: ignore[no-untyped-def]
    from dskd_core.methods import get_method
    from dskd_core.models import create_model
    from dskd_core.resolve import resolve_run_config

    cfg = resolve_run_config(method=method, teacher="resnet8", student="resnet8", dataset="synthetic", flags=flags)
    torch.manual_seed(0)
    return get_method(method)(create_model("resnet8"), create_model("resnet8"), cfg)


def _batch(b: int = 6) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(b, 3, 32, 32, generator=gen),
        "image_strong": torch.randn(b, 3, 32, 32, generator=gen),
        "target": torch.randint(0, 100, (b,), generator=gen),
    }


@pytest.mark.parametrize("stand", [False, True])
def test_the_mlkd_methods_are_mlkd_terms_of_their_views(stand: bool) -> None:
    batch = _batch()
    for method, views in (("mlkd", ("image", "image_strong")), ("mlkd_noaug", ("image",))):
        distiller = _distiller(method, stand=stand)
        assert distiller.strong_view is (method == "mlkd")
        distiller.train()
        logits, terms = distiller(batch)
        assert list(terms) == ["loss_ce", "loss_kd", "loss_cc", "loss_bc"]
        s = [distiller.student(batch[v])[0] for v in views]
        t = [distiller.teacher(batch[v])[0] for v in views]
        assert torch.equal(logits, s[0])  # predictions (train accuracy) on the weak view
        cfg = distiller.cfg
        expected = mlkd_terms(
            s[0],
            t[0],
            batch["target"],
            s_strong=s[1] if len(s) > 1 else None,
            t_strong=t[1] if len(t) > 1 else None,
            temperature=cfg.temperature,
            kd_weight=cfg.kd_weight,
            ce_weight=cfg.ce_weight,
            stand=stand,
        )
        for name in TERMS:
            assert torch.allclose(terms[f"loss_{name}"], expected[name], rtol=1e-5), (method, name)
        assert distiller.term_weights(1) == {}  # no warm-up
        sum(terms.values()).backward()
        assert all(p.grad is None for p in distiller.teacher.parameters())
        assert any(p.grad is not None for p in distiller.student.parameters())


def test_mlkd_stand_semantics_are_dskds() -> None:
    plain, stand = _distiller("mlkd").cfg, _distiller("mlkd", stand=True).cfg
    assert (plain.temperature, plain.kd_weight, plain.ce_weight) == (4.0, 0.9, 0.1)
    assert (stand.temperature, stand.kd_weight, stand.ce_weight, stand.stand) == (2.0, 9.0, 0.1, True)
    from dskd_core.resolve import resolve_run_config

    flags = {"stand": True, "base_temp": 3.0}
    custom = resolve_run_config(method="mlkd", teacher="resnet8", student="resnet8", flags=flags, stand_kd_weight=5.0)
    assert (custom.temperature, custom.kd_weight, custom.ce_weight) == (3.0, 5.0, 0.1)


def test_mlkd_scales_lift_only_the_kd_terms_over_the_regions() -> None:
    """--scales: KD over the SDD regions of each view; CE, CC, BC and the masks stay on the global logits."""
    batch = _batch()
    plain, sdd = _distiller("mlkd", stand=True), _distiller("mlkd", stand=True, scales=[1, 2])
    assert sdd.cfg.variant == "mlkd+sdd[1,2]+ls"
    sdd.load_state_dict(plain.state_dict())
    plain.eval(), sdd.eval()  # the same BatchNorm statistics for both forwards
    _, a = plain(batch)
    _, b = sdd(batch)
    for name in ("loss_ce", "loss_cc", "loss_bc"):
        assert torch.allclose(a[name], b[name]), name
    assert not torch.allclose(a["loss_kd"], b["loss_kd"])
    # The KD term equals mlkd_terms with the SDD lift of kd as its kd_value.
    from dskd_core.losses import kd, standardized
    from dskd_core.sdd import multiscale_logits, sdd_loss

    views = {}
    for name, key in (("weak", "image"), ("strong", "image_strong")):
        s, s_f = sdd.student(batch[key])
        t, t_f = sdd.teacher(batch[key])
        cls_s, cls_t = sdd.student.get_classifier(), sdd.teacher.get_classifier()
        regions = multiscale_logits(s_f["final_map"], cls_s, [1, 2]), multiscale_logits(t_f["final_map"], cls_t, [1, 2])
        views[name] = (s, t, *regions)

    def kd_value(view: str, temperature: float) -> torch.Tensor:
        loss = standardized(lambda s, t, y: kd(s, t, temperature))
        return sdd_loss(loss, views[view][2], views[view][3], batch["target"], weighting="region")

    want = mlkd_terms(
        views["weak"][0],
        views["weak"][1],
        batch["target"],
        s_strong=views["strong"][0],
        t_strong=views["strong"][1],
        temperature=2.0,
        kd_weight=9.0,
        ce_weight=0.1,
        stand=True,
        kd_value=kd_value,
    )
    assert torch.allclose(b["loss_kd"], want["kd"], rtol=1e-5)


def test_mlkd_per_sample_masks_are_a_named_option() -> None:
    from dskd_core.errors import UsageError
    from dskd_core.resolve import resolve_run_config

    def resolve(method: str, **overrides: object):  # type: ignore[no-untyped-def]
        return resolve_run_config(method=method, teacher="resnet8", student="resnet8", overrides=overrides)

    assert resolve("mlkd").params.mask_form == "factor"
    assert resolve("mlkd", mask_form="per_sample").params.mask_form == "per_sample"
    with pytest.raises(UsageError, match="mask_form"):
        resolve("mlkd", mask_form="rows")
    with pytest.raises(UsageError, match="mask_form"):
        resolve("kd", mask_form="per_sample")
    with pytest.raises(UsageError, match="drop --scales, or drop --set mask_form=per_sample"):
        resolve_run_config(
            method="mlkd",
            teacher="resnet8",
            student="resnet8",
            flags={"scales": [1, 2]},
            overrides={"mask_form": "per_sample"},
        )


def test_aug_on_a_two_view_method_is_refused_with_the_fix() -> None:
    from dskd_core.errors import UsageError
    from dskd_core.resolve import resolve_run_config

    with pytest.raises(UsageError, match="drop --aug, or train mlkd_noaug with --aug"):
        resolve_run_config(method="mlkd", teacher="resnet8", student="resnet8", flags={"aug": True})
    assert resolve_run_config(method="mlkd_noaug", teacher="resnet8", student="resnet8", flags={"aug": True}).aug
    with pytest.raises(UsageError, match="crd trains without --aug"):
        resolve_run_config(method="crd", teacher="resnet8", student="resnet8", flags={"aug": True})
    with pytest.raises(UsageError, match="drop --set warmup=5"):
        resolve_run_config(method="mlkd", teacher="resnet8", student="resnet8", overrides={"warmup": 5})


# ---------------------------------------------------------------------------------------------
# Training: both paths, resume, lockstep


def _weights(run_dir):  # type: ignore[no-untyped-def]
    from dskd_core.checkpoint import load_tensors

    return load_tensors(run_dir / "checkpoints" / "student_last.safetensors")[0]


def _config(teacher_run, method: str, epochs: int, **flags: object):  # type: ignore[no-untyped-def]
    from dskd_core.resolve import resolve_run_config

    return resolve_run_config(
        method=method,
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags={"teacher_ckpt": str(teacher_run), "epochs": epochs, "deterministic": True, **flags},
    )


@pytest.mark.parametrize(("method", "flags"), [("mlkd", {"stand": True, "scales": [1, 2]}), ("kd", {"aug": True})])
def test_a_resumed_run_continues_the_same_augmentation_draws(teacher_run, tmp_path, method, flags) -> None:  # type: ignore[no-untyped-def]
    from dskd_core.train.engine import fit
    from tests.helpers import make_settings

    straight = fit(_config(teacher_run, method, 2, **flags), make_settings(tmp_path / "straight"))
    resumed_settings = make_settings(tmp_path / "resumed")
    fit(_config(teacher_run, method, 1, **flags), resumed_settings)
    resumed = fit(_config(teacher_run, method, 2, **flags), resumed_settings, resume=True)
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.summary["best_acc"] == straight.summary["best_acc"]


def test_mlkd_trains_on_the_fast_path_as_on_the_reference_one(teacher_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The two-view batch goes through the fast step unchanged (fp32, eager on the CPU)."""
    from dskd_core.train.engine import fit
    from tests.helpers import make_settings

    ref = fit(_config(teacher_run, "mlkd", 1, fast=False), make_settings(tmp_path / "ref"))
    fast_cfg = _config(teacher_run, "mlkd", 1, fast=True, precision="fp32", compile=False)
    fast = fit(fast_cfg, make_settings(tmp_path / "fast"))
    a, b = _weights(ref.run_dir), _weights(fast.run_dir)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-4, rtol=1e-4) for k in a)


def test_mlkd_runs_in_lockstep_as_separately(teacher_run, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A lockstep group of two-view runs shares the teacher's output for both views and equals separate runs."""
    from dskd_core.train.engine import fit
    from dskd_core.train.lockstep import fit_lockstep, stream_key
    from tests.helpers import make_settings

    def cfgs():  # type: ignore[no-untyped-def]
        return [_config(teacher_run, "mlkd", 1, fast=False), _config(teacher_run, "mlkd", 1, fast=False, stand=True)]

    assert stream_key(cfgs()[0]) != stream_key(_config(teacher_run, "mlkd_noaug", 1, fast=False))
    from dskd_core.train import lockstep

    sizes: list[int] = []
    real_init = lockstep.SharedTeacher.__init__

    def counting_init(self, teacher):  # type: ignore[no-untyped-def]
        real_init(self, teacher)
        teacher.register_forward_hook(lambda module, args, out: sizes.append(len(args[0])))

    monkeypatch.setattr(lockstep.SharedTeacher, "__init__", counting_init)
    together = fit_lockstep(cfgs(), make_settings(tmp_path / "lockstep"))
    # synthetic: 256 training images = 4 steps of 64, two views each, once for the whole group (the test
    # split's 128 images are evaluated in batches of 64 as well: 2 more calls).
    assert len(sizes) == 4 * 2 + 2
    for cfg, result in zip(cfgs(), together.results, strict=True):
        assert not isinstance(result, Exception)
        separate = fit(cfg, make_settings(tmp_path / "separate"))
        a, b = _weights(result.run_dir), _weights(separate.run_dir)
        assert all(torch.equal(a[k], b[k]) for k in a), cfg.variant


def test_digits_gives_mlkd_a_recipe_that_trains_in_one_epoch_and_flags_still_win() -> None:
    """digits: LR 0.01 (0.05 blows MLKD's logits up), with --stand a gradient clip at 1; elsewhere the reference's."""
    from dskd_core.resolve import resolve_run_config

    def resolve(dataset: str = "digits", **flags: object):  # type: ignore[no-untyped-def]
        return resolve_run_config(method="mlkd", teacher="resnet32", student="resnet8", dataset=dataset, flags=flags)

    assert (resolve().lr, resolve().clip_grad) == (0.01, None)
    assert (resolve(stand=True).lr, resolve(stand=True).clip_grad) == (0.01, 1.0)
    assert resolve(stand=True, clip_grad=3.0).clip_grad == 3.0 and resolve(lr=0.05).lr == 0.05
    assert (resolve("cifar100", stand=True).lr, resolve("cifar100", stand=True).clip_grad) == (0.05, None)
    kd = resolve_run_config(method="kd", teacher="resnet32", student="resnet8", dataset="digits", flags={"stand": True})
    assert (kd.lr, kd.clip_grad) == (0.05, None)


def test_a_run_whose_aug_was_torchvisions_is_not_resumed_with_dskds(teacher_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """dskd 0.1's --aug was torchvision's RandAugment; its config.json has no aug_form, so a resume is refused."""
    import json

    from dskd_core.errors import DskdError
    from dskd_core.train.engine import fit
    from tests.helpers import make_settings

    settings = make_settings(tmp_path)
    cfg = _config(teacher_run, "kd", 1, aug=True)
    assert cfg.aug_form == "dskd" and _config(teacher_run, "kd", 1).aug_form is None
    run_dir = fit(cfg, settings).run_dir
    saved = json.loads((run_dir / "config.json").read_text())
    del saved["aug_form"]  # as 0.1 wrote it
    (run_dir / "config.json").write_text(json.dumps(saved))
    with pytest.raises(DskdError, match="aug_form"):
        fit(_config(teacher_run, "kd", 2, aug=True), settings, resume=True)
