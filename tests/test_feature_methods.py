"""Feature distillers: losses against hand values and re-derivations, the zoo grid, CRD's data, fit round trips."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.checkpoint import load_tensors
from dskd_core.data import BatchLoader, LoaderOptions, TensorDataset, get_dataset_spec, load_dataset
from dskd_core.data.contrast import ContrastSampler
from dskd_core.errors import UsageError
from dskd_core.methods import Distiller, get_method, list_methods
from dskd_core.methods.at import at_loss
from dskd_core.methods.crd import crd_memory, ensure_crd_fits, nce_loss
from dskd_core.methods.feature import FeatureDistiller, probe_features
from dskd_core.methods.fitnet import regressor_conv
from dskd_core.methods.kdsvd import kdsvd_loss, top_singular
from dskd_core.methods.nst import nst_loss
from dskd_core.methods.ofd import ofd_margin, partial_l2
from dskd_core.methods.pkt import pkt_loss
from dskd_core.methods.reviewkd import hcl_loss
from dskd_core.methods.rkd import rkd_loss
from dskd_core.methods.sp import sp_loss
from dskd_core.methods.vid import vid_loss
from dskd_core.models import ZooModel, create_model
from dskd_core.presets import load_presets
from dskd_core.resolve import resolve_run_config
from dskd_core.train import fit
from tests.helpers import make_settings

FEATURE_METHODS = sorted(m for m in list_methods() if issubclass(get_method(m), FeatureDistiller))
CLASSIC = {"at", "fitnet", "reviewkd", "crd", "nst", "pkt", "rkd", "sp", "vid", "kdsvd", "ofd"}
SMALL_K = {"crd_nce_k": 32}  # CRD's K for synthetic data (256 samples)


def test_the_classic_set_is_registered_as_feature_methods() -> None:
    assert set(FEATURE_METHODS) >= CLASSIC
    assert all(get_method(m).needs_teacher and get_method(m).enhanced_by == "kd" for m in FEATURE_METHODS)


# Losses on small inputs, checked by hand or against an independent re-derivation.


def test_at_hand_value() -> None:
    ones = torch.ones(1, 2, 2, 2)  # attention [1, 1, 1, 1] / 2
    peak = torch.zeros(1, 1, 2, 2)
    peak[0, 0, 0, 0] = 2.0  # attention [1, 0, 0, 0]
    assert at_loss([ones], [peak], 2.0).item() == pytest.approx(0.25)  # mean of .25, .25, .25, .25
    # a 4×4 student map is pooled to the teacher's 2×2 first; stages add up
    assert at_loss([torch.ones(1, 3, 4, 4), ones], [peak, peak], 2.0).item() == pytest.approx(0.5)


def test_fitnet_regressor_connects_sizes_like_upstream() -> None:
    assert tuple(regressor_conv((1, 8, 16, 16), (1, 4, 8, 8))(torch.zeros(1, 8, 16, 16)).shape) == (1, 4, 8, 8)
    assert isinstance(regressor_conv((1, 8, 8, 8), (1, 4, 16, 16)), torch.nn.ConvTranspose2d)
    assert regressor_conv((1, 8, 8, 8), (1, 4, 6, 6)).kernel_size == (3, 3)
    with pytest.raises(ValueError, match="4×4 student map"):
        regressor_conv((1, 8, 4, 4), (1, 4, 16, 16))


def test_fitnet_loss_is_the_mse_of_the_regressed_hint() -> None:
    cfg = resolve_run_config(method="fitnet", teacher="resnet8", student="resnet8", dataset="synthetic")
    distiller = get_method("fitnet")(create_model("resnet8"), create_model("resnet8"), cfg).eval()
    f_s, f_t = torch.randn(2, 32, 16, 16), torch.randn(2, 32, 16, 16)
    feats = [torch.zeros(1)] * 2
    conv, bn = distiller.regressor.conv, distiller.regressor.bn
    expected = ((torch.relu(bn(conv(f_s))) - f_t) ** 2).sum() / f_t.numel()
    got = distiller.feature_loss({"feats": [*feats, f_s]}, {"feats": [*feats, f_t]}, {})  # type: ignore[typeddict-item]
    torch.testing.assert_close(got, expected)


def _checkerboard(size: int) -> torch.Tensor:
    i = torch.arange(size)
    return ((i[:, None] + i[None, :]) % 2 * 2 - 1).float().view(1, 1, size, size)  # ±1, every pooled cell 0


def test_hcl_hand_values() -> None:
    # 8×8: MSE 1 on the map, 0 after pooling to 4, 2, 1: 1 / (1 + 1/2 + 1/4 + 1/8)
    assert hcl_loss([torch.zeros(1, 1, 8, 8)], [_checkerboard(8)]).item() == pytest.approx(1 / 1.875)
    # 2×2: only the 1×1 pooling is below the map size: 1 / (1 + 1/2); 1×1: the plain MSE
    assert hcl_loss([torch.zeros(1, 1, 2, 2)], [_checkerboard(2)]).item() == pytest.approx(1 / 1.5)
    two = hcl_loss(
        [torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 2, 2)], [torch.full((1, 1, 1, 1), 3.0), _checkerboard(2)]
    )
    assert two.item() == pytest.approx(9 + 1 / 1.5)


def test_nce_hand_value() -> None:
    # K = 2 negatives, N = 4: noise K/N = 0.5; every score 0.5 gives −3 log(0.5 / 1)
    assert nce_loss(torch.full((1, 3), 0.5), num_data=4).item() == pytest.approx(3 * math.log(2), rel=1e-6)


def test_crd_scores_normaliser_and_bank_update_follow_the_definition() -> None:
    torch.manual_seed(0)
    cfg = resolve_run_config(
        method="crd", teacher="resnet8", student="resnet8", dataset="synthetic", overrides={"crd_nce_k": 5}
    )
    crd = get_method("crd")(create_model("resnet8"), create_model("resnet8"), cfg)
    labels = torch.arange(12) % 3
    crd.bind_data(TensorDataset(torch.zeros(12, 3, 32, 32, dtype=torch.uint8), labels))
    bank_s, bank_t = crd.memory_s.clone(), crd.memory_t.clone()
    f_s, f_t = torch.randn(4, 64), torch.randn(4, 64)
    index = torch.tensor([0, 4, 5, 9])
    contrast = torch.cat([index[:, None], torch.randint(0, 12, (4, 5))], 1)
    got = crd.feature_loss({"pooled_feat": f_s}, {"pooled_feat": f_t}, {"index": index, "contrast_index": contrast})  # type: ignore[typeddict-item]

    def side(bank: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        e = anchor / anchor.norm(dim=1, keepdim=True)
        scores = torch.stack([torch.exp(bank[row] @ e[b] / 0.07) for b, row in enumerate(contrast)])
        return scores / (scores.mean() * 12)  # Z fixed at the first batch

    e_s, e_t = crd.embed_s.linear(f_s), crd.embed_t.linear(f_t)
    expected = nce_loss(side(bank_t, e_s), 12) + nce_loss(side(bank_s, e_t), 12)
    torch.testing.assert_close(got, expected)
    unit_s = e_s / e_s.norm(dim=1, keepdim=True)
    moved = 0.5 * bank_s[index] + 0.5 * unit_s
    torch.testing.assert_close(crd.memory_s[index], moved / moved.norm(dim=1, keepdim=True))
    untouched = torch.tensor([i for i in range(12) if i not in index.tolist()])
    assert torch.equal(crd.memory_t[untouched], bank_t[untouched])
    assert crd.z_norm.gt(0).all()
    bound = 1 / math.sqrt(128 / 3)
    assert bank_s.abs().max() <= bound


def test_nst_hand_values() -> None:
    s = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    t = torch.tensor([0.0, 3.0]).view(1, 1, 1, 2)
    assert nst_loss([s], [t]).item() == pytest.approx(2.0)  # k(t,t) + k(s,s) − 2 k(s,t) = 1 + 1 − 0
    x = torch.randn(2, 3, 4, 4)
    assert nst_loss([x], [x.clone()]).item() == pytest.approx(0.0, abs=1e-6)


def test_pkt_hand_value() -> None:
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # probabilities [[2/3, 1/3], [1/3, 2/3]]
    teacher = torch.tensor([[1.0, 0.0], [2.0, 0.0]])  # probabilities all 1/2
    assert pkt_loss(student, teacher).item() == pytest.approx(math.log(1.125) / 4, rel=1e-5)


@pytest.mark.parametrize("method", ["pkt", "sp"])
def test_pkt_and_sp_rescale_a_short_last_batch_only(method: str) -> None:
    cfg = resolve_run_config(method=method, teacher="resnet8", student="resnet8", flags={"batch_size": 8})
    distiller = get_method(method)(_model("resnet8", "student"), _model("resnet8", "teacher"), cfg)
    fn = pkt_loss if method == "pkt" else sp_loss
    for b in (8, 3):
        s, t = torch.randn(b, 64), torch.randn(b, 64)
        feats = {"pooled_feat": s, "feats": [s]}, {"pooled_feat": t, "feats": [t]}
        got = distiller.feature_loss(*feats, {})  # type: ignore[arg-type]
        torch.testing.assert_close(got, fn(s, t) * b / 8)  # full batches: upstream's value exactly


@pytest.mark.parametrize("method", ["pkt", "sp"])
def test_mdistiller_form_leaves_a_short_last_batch_as_upstream_computes_it(method: str) -> None:
    flags = {"batch_size": 8}
    cfg = resolve_run_config(
        method=method, teacher="resnet8", student="resnet8", flags=flags, overrides={"feature_form": "mdistiller"}
    )
    distiller = get_method(method)(_model("resnet8", "student"), _model("resnet8", "teacher"), cfg)
    fn = pkt_loss if method == "pkt" else sp_loss
    s, t = torch.randn(3, 64), torch.randn(3, 64)
    got = distiller.feature_loss({"pooled_feat": s, "feats": [s]}, {"pooled_feat": t, "feats": [t]}, {})  # type: ignore[arg-type]
    torch.testing.assert_close(got, fn(s, t))


def test_mdistiller_form_keeps_vid_variances_out_of_training() -> None:
    for form, trained in (("dskd", True), ("mdistiller", False)):
        cfg = resolve_run_config(
            method="vid", teacher="resnet8", student="resnet8", dataset="synthetic", overrides={"feature_form": form}
        )
        vid = get_method("vid")(create_model("resnet8"), create_model("resnet8"), cfg)
        params = {id(p) for p in vid.trainable_parameters()}
        assert all((id(p) in params) is trained for p in vid.log_scales)
        assert all(id(p) in params for p in vid.regressors.parameters())
    with pytest.raises(UsageError, match="feature_form applies to vid, pkt and sp"):
        resolve_run_config(method="kd", teacher="resnet8", student="resnet8", overrides={"feature_form": "mdistiller"})


def _rkd_reference(s: np.ndarray, t: np.ndarray, wd: float, wa: float) -> float:
    def smooth_l1(a: np.ndarray, b: np.ndarray) -> float:
        d = np.abs(a - b)
        return float(np.mean(np.where(d < 1, 0.5 * d**2, d - 0.5)))

    def distances(e: np.ndarray) -> np.ndarray:
        d = np.array([[np.linalg.norm(a - b) for b in e] for a in e])
        return d / d[d > 0].mean()

    def angles(e: np.ndarray) -> np.ndarray:
        out = []
        for i in range(len(e)):
            for j in range(len(e)):
                for k in range(len(e)):
                    u, v = e[j] - e[i], e[k] - e[i]
                    nu, nv = max(np.linalg.norm(u), 1e-12), max(np.linalg.norm(v), 1e-12)
                    out.append(u @ v / (nu * nv))
        return np.array(out)

    return wd * smooth_l1(distances(s), distances(t)) + wa * smooth_l1(angles(s), angles(t))


def test_rkd_matches_a_loop_re_derivation() -> None:
    gen = torch.Generator().manual_seed(3)
    s, t = torch.randn(5, 4, generator=gen, dtype=torch.float64), torch.randn(5, 6, generator=gen, dtype=torch.float64)
    got = rkd_loss(s, t, 25.0, 50.0).item()
    assert got == pytest.approx(_rkd_reference(s.numpy(), t.numpy(), 25.0, 50.0), rel=1e-6)
    assert rkd_loss(3 * t, t, 25.0, 50.0).item() == pytest.approx(0.0, abs=1e-6)  # scale invariant


def test_sp_hand_value() -> None:
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # G = I
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # G rows normalised to 1/√2
    assert sp_loss(student, teacher).item() == pytest.approx(1 - 1 / math.sqrt(2), rel=1e-6)


def test_vid_hand_values_and_initial_variance() -> None:
    cfg = resolve_run_config(method="vid", teacher="resnet8", student="resnet8", dataset="synthetic")
    vid = get_method("vid")(create_model("resnet8"), create_model("resnet8"), cfg)
    log_scale = vid.log_scales[0]
    torch.testing.assert_close(F.softplus(log_scale) + 1e-5, torch.full_like(log_scale, 5.0))
    target = torch.randn(2, 16, 4, 4)
    assert vid_loss(target, target, log_scale).item() == pytest.approx(0.5 * math.log(5), rel=1e-5)
    assert vid_loss(target + 1, target, log_scale).item() == pytest.approx(0.5 * (1 / 5 + math.log(5)), rel=1e-5)


def _kdsvd_reference(s_feats: list[torch.Tensor], t_feats: list[torch.Tensor], k: int) -> float:
    """Upstream's steps, one sample at a time in numpy: (C·H, W) matrices, signs aligned, RBF of consecutive stages.

    The SVD itself is torch's batched fp32 one (as in the loss), so the arbitrary signs of singular vectors agree.
    """

    def svd(f: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        _, sv, vh = torch.linalg.svd(f.reshape(f.shape[0], -1, f.shape[-1]).float(), full_matrices=False)
        return sv.numpy(), vh.numpy()

    total, prev = 0.0, None
    for f_s, f_t in zip(s_feats, t_feats, strict=False):
        stage = []
        for (sv_t, vh_t), (_, vh_s) in zip(zip(*svd(f_t), strict=True), zip(*svd(f_s), strict=True), strict=True):
            v_t, v_s = vh_t[:k].T, vh_s[: k + 3].T
            sv = sv_t[:k] / np.linalg.norm(sv_t[:k])
            cos = v_s.T @ v_t
            pick = np.where(np.abs(cos) == np.abs(cos).max(axis=0, keepdims=True), np.sign(cos), 0.0)
            stage.append((v_s @ pick * sv, v_t * sv))
        if prev is not None:
            for (vs, vt), (ps, pt) in zip(stage, prev, strict=True):
                s_rbf = np.exp(-((vs[:, None, :] - ps[None, :, :]) ** 2) / 8)
                t_rbf = np.exp(-((vt[:, None, :] - pt[None, :, :]) ** 2) / 8)
                total += float(((s_rbf - t_rbf) ** 2).sum())
        prev = stage
    return total / len(s_feats[0])


def test_kdsvd_matches_a_per_sample_re_derivation_and_has_finite_gradients_on_rank_deficient_maps() -> None:
    gen = torch.Generator().manual_seed(0)
    s = [torch.randn(2, 3, 6, 6, generator=gen, dtype=torch.float64), torch.randn(2, 4, 3, 3, generator=gen).double()]
    t = [torch.randn(2, 5, 6, 6, generator=gen, dtype=torch.float64), torch.randn(2, 2, 3, 3, generator=gen).double()]
    got = kdsvd_loss(s, t, 1).item()
    assert got == pytest.approx(_kdsvd_reference(s, t, 1), rel=1e-4)
    # duplicate columns tie discarded singular values (torch's SVD backward turns them into NaN)
    cols = torch.randn(2, 4, 8, 5, generator=gen)
    maps = torch.cat([cols, cols[..., :1].expand(2, 4, 8, 3)], dim=-1).requires_grad_(True)  # (2, 4, 8, 8), rank 5
    s_top, v_top = top_singular(maps, 4)
    (s_top.sum() + v_top.sum()).backward()
    assert maps.grad is not None and torch.isfinite(maps.grad).all()


def test_kdsvd_singular_vector_gradient_passes_gradcheck() -> None:
    from dskd_core.methods.kdsvd import _TopRightSingular

    x = torch.randn(2, 7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)

    def top(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, v = _TopRightSingular.apply(m, 3)
        return s, v * v[:, :1].sign()  # a fixed sign convention, so finite differences are comparable

    assert torch.autograd.gradcheck(top, (x,))


def test_ofd_margin_and_partial_l2_hand_values() -> None:
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.0, 10.0]))
    margin = ofd_margin(bn)
    # E[x | x < 0] of N(0, 1) is −2/√(2π); N(10, 1) has P(x < 0) < 0.001, so −3σ
    torch.testing.assert_close(margin, torch.tensor([-2 / math.sqrt(2 * math.pi), -3.0]))
    target = torch.tensor([2.0, -2.0, -2.0, -0.5]).view(1, 4, 1, 1)
    source = torch.tensor([1.0, 0.0, -3.0, 0.0]).view(1, 4, 1, 1)
    # t > 0: (s − t)² = 1; t ≤ m < s: (s − m)² = 1; s ≤ m: 0; m < t ≤ 0 < s: (s − t)² = .25
    assert partial_l2(source, target, torch.tensor(-1.0)).item() == pytest.approx(2.25)


@pytest.mark.parametrize("name", ["resnet8", "ResNet18", "wrn_16_1", "vgg8", "MobileNetV2", "ShuffleV1", "ShuffleV2"])
def test_bn_before_relu_lines_up_with_the_preact_stages(name: str) -> None:
    model = _model(name, "teacher")
    if name.startswith("Shuffle"):
        with pytest.raises(NotImplementedError):
            model.get_bn_before_relu()
        return
    preacts = probe_features(model)["preact_feats"][1:]
    assert [bn.num_features for bn in model.get_bn_before_relu()] == [f.shape[1] for f in preacts]


# Every feature method × a representative set of pairs (each family as student and teacher).

PAIRS = [  # (teacher, student): a cycle through the zoo's families
    ("ResNet18", "resnet8"),
    ("resnet8", "ShuffleV2"),
    ("ShuffleV2", "ShuffleV1"),
    ("ShuffleV1", "MobileNetV2"),
    ("MobileNetV2", "vgg8"),
    ("vgg8", "wrn_16_1"),
    ("wrn_16_1", "ResNet18"),
]


@cache
def _model(name: str, role: str) -> ZooModel:
    """One model per (name, role), reused across methods (a step changes weights, not shapes)."""
    torch.manual_seed(0)
    return create_model(name, num_classes=100)


@cache
def _synthetic() -> TensorDataset:
    return load_dataset("synthetic", Path("unused"))[0]


def _step(distiller: Distiller, batch_size: int = 4) -> dict[str, torch.Tensor]:
    """Bind the data, draw one batch with the method's extras, take one SGD step; the terms."""
    train = _synthetic()
    distiller.bind_data(train)
    loader = BatchLoader(
        train,
        get_dataset_spec("synthetic"),
        batch_size,
        LoaderOptions(train=True, device=torch.device("cpu"), extras=distiller.batch_extras()),
    )
    batch = next(iter(loader))
    assert distiller.batch_keys <= set(batch)
    distiller.train()
    params = list(distiller.trainable_parameters())
    optimizer = torch.optim.SGD(params, lr=0.01)
    _, terms = distiller(batch, 1)
    optimizer.zero_grad()
    torch.stack(list(terms.values())).sum().backward()
    optimizer.step()
    return terms


@pytest.mark.parametrize(("teacher", "student"), PAIRS, ids=lambda name: name)
@pytest.mark.parametrize("method", FEATURE_METHODS)
def test_every_feature_method_builds_and_steps_on_every_pair_or_refuses_at_construction(
    method: str, teacher: str, student: str
) -> None:
    cfg = resolve_run_config(
        method=method,
        teacher=teacher,
        student=student,
        dataset="synthetic",
        flags={"batch_size": 4},
        overrides=SMALL_K if method == "crd" else None,
    )
    s_model, t_model = _model(student, "student"), _model(teacher, "teacher")
    try:
        distiller = get_method(method)(s_model, t_model, cfg)
    except UsageError as err:
        assert "\n" not in str(err) and method in str(err)
        return
    terms = _step(distiller)
    assert set(terms) == {"loss_ce", "loss_feat"} and all(torch.isfinite(v) for v in terms.values())
    trainable = {id(p) for p in distiller.trainable_parameters()}
    assert not any(id(p) in trainable for p in t_model.parameters())
    extras = [n for n, _ in distiller.named_parameters() if not n.startswith(("student.", "teacher."))]
    assert all(k.split(".")[0] not in ("student", "teacher") for k in distiller.extra_state_dict())
    assert set(extras) <= set(distiller.extra_state_dict())


EXPECTED_REFUSALS = [
    ("fitnet", "vgg8", "resnet8", {"hint_layer": 4}, "no hint layer 4"),
    ("kdsvd", "vgg8", "wrn_16_1", {}, "stage widths"),
    ("ofd", "ShuffleV1", "resnet8", {}, "ShuffleV1"),
]


@pytest.mark.parametrize(("method", "teacher", "student", "overrides", "fragment"), EXPECTED_REFUSALS)
def test_a_pair_a_method_cannot_serve_fails_at_construction_naming_the_problem(
    method: str, teacher: str, student: str, overrides: dict, fragment: str
) -> None:
    cfg = resolve_run_config(method=method, teacher=teacher, student=student, dataset="synthetic", overrides=overrides)
    with pytest.raises(UsageError, match=fragment) as err:
        get_method(method)(_model(student, "student"), _model(teacher, "teacher"), cfg)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("method", FEATURE_METHODS)
def test_scales_and_stand_add_a_kd_term_and_name_the_run(method: str) -> None:
    flags = {"scales": [1, 2], "stand": True}
    cfg = resolve_run_config(
        method=method,
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags=flags,
        overrides=SMALL_K if method == "crd" else None,
    )
    assert cfg.variant == f"{method}+kd+sdd[1,2]+ls" and (cfg.kd_weight, cfg.temperature) == (9.0, 2.0)
    terms = _step(get_method(method)(_model("resnet8", "student"), _model("resnet8", "teacher"), cfg))
    assert set(terms) == {"loss_ce", "loss_feat", "loss_kd"} and terms["loss_kd"] > 0


def test_variant_names_of_feature_methods_and_logit_methods() -> None:
    def variant(method: str, **flags: object) -> str:
        return resolve_run_config(method=method, teacher="resnet32x4", student="resnet8x4", flags=flags).variant

    assert variant("crd") == "crd"
    assert variant("crd", scales=[1, 2, 4], stand=True) == "crd+kd+sdd[1,2,4]+ls"
    assert variant("at", scales=[1, 2]) == "at+kd+sdd[1,2]"
    assert variant("fitnet", stand=True) == "fitnet+kd+ls"
    assert variant("kd", scales=[1, 2], stand=True) == "kd+sdd[1,2]+ls"  # logit methods unchanged
    assert variant("dkd", stand=True) == "dkd+ls"


# Config, presets and warm-ups

SPEC_DEFAULTS = {  # mdistiller/engine/cfg.py
    "at": {"feat_weight": 1000.0, "at_p": 2.0, "ce_weight": 1.0},
    "fitnet": {"feat_weight": 100.0, "hint_layer": 2, "ce_weight": 1.0},
    "reviewkd": {"feat_weight": 1.0, "warmup": 20, "ce_weight": 1.0},
    "crd": {
        "feat_weight": 0.8,
        "crd_feat_dim": 128,
        "crd_nce_k": 16384,
        "crd_momentum": 0.5,
        "crd_temperature": 0.07,
        "crd_mode": "exact",
        "ce_weight": 1.0,
    },
    "nst": {"feat_weight": 50.0},
    "pkt": {"feat_weight": 30000.0},
    "rkd": {"feat_weight": 1.0, "rkd_distance_weight": 25.0, "rkd_angle_weight": 50.0},
    "sp": {"feat_weight": 3000.0},
    "vid": {"feat_weight": 1.0, "vid_init_var": 5.0},
    "kdsvd": {"feat_weight": 1.0, "kdsvd_k": 1},
    "ofd": {"feat_weight": 0.001},
}


@pytest.mark.parametrize("method", sorted(SPEC_DEFAULTS))
def test_defaults_and_presets_follow_the_spec(method: str) -> None:
    other = resolve_run_config(method=method, teacher="wrn_40_2", student="wrn_16_2").model_dump()
    assert {k: other[k] for k in SPEC_DEFAULTS[method]} == SPEC_DEFAULTS[method]
    preset = resolve_run_config(method=method, teacher="resnet32x4", student="resnet8x4")
    assert preset.feat_weight == (5.0 if method == "reviewkd" else SPEC_DEFAULTS[method]["feat_weight"])
    assert (preset.lr, preset.batch_size, preset.scales, preset.stand) == (0.05, 64, [1], False)


def test_feature_presets_cover_the_upstream_configs_and_keep_the_logit_ones() -> None:
    presets = load_presets()
    feature = {(p.method, p.teacher, p.student) for p in presets if p.method in CLASSIC}
    assert feature == {(m, "resnet32x4", "resnet8x4") for m in CLASSIC}
    logit = ("kd", "dkd", "rld", "mlkd", "mlkd_noaug")
    assert len([p for p in presets if p.method in logit and p.dataset == "cifar100"]) == 70


def test_method_parameters_apply_only_to_their_methods() -> None:
    with pytest.raises(UsageError, match="hint_layer does not apply to method 'at'"):
        resolve_run_config(method="at", teacher="resnet8", student="resnet8", overrides={"hint_layer": 3})
    with pytest.raises(UsageError, match="crd_nce_k"):
        resolve_run_config(method="kd", teacher="resnet8", student="resnet8", overrides={"crd_nce_k": 10})
    with pytest.raises(UsageError, match=r"invalid crd_mode.*--set crd_mode=exact"):
        resolve_run_config(method="crd", teacher="resnet8", student="resnet8", overrides={"crd_mode": "loose"})


def test_reviewkd_warmup_ramps_the_feature_term_only() -> None:
    cfg = resolve_run_config(method="reviewkd", teacher="resnet8", student="resnet8", flags={"stand": True})
    distiller = get_method("reviewkd")(_model("resnet8", "student"), _model("resnet8", "teacher"), cfg)
    assert distiller.term_weights(1) == {"loss_feat": pytest.approx(1 / 20)}
    assert distiller.term_weights(40) == {"loss_feat": 1.0}
    at = resolve_run_config(method="at", teacher="resnet8", student="resnet8")
    assert get_method("at")(_model("resnet8", "student"), _model("resnet8", "teacher"), at).term_weights(1) == {}


@pytest.mark.usefixtures("fetched_teachers")  # a dry run checks the teacher file
def test_dry_run_of_a_feature_method_with_sdd_and_stand() -> None:
    result = CliRunner().invoke(
        app, ["train", "crd", "resnet32x4", "resnet8x4", "--scales", "1,2,4", "--stand", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.stdout)
    assert (cfg["feat_weight"], cfg["kd_weight"], cfg["temperature"], cfg["scales"]) == (0.8, 9.0, 2.0, [1, 2, 4])


# CRD's data: contrast indices and the memory-bank estimate


def test_contrast_sampler_exact_relax_and_replacement() -> None:
    labels = torch.arange(40) % 4  # 10 per class: a negative pool of 30
    index = torch.tensor([0, 5, 22, 39])
    gen = torch.Generator().manual_seed(0)
    rows = ContrastSampler(labels, 30, "exact")(index, gen)
    assert rows.shape == (4, 31) and torch.equal(rows[:, 0], index)
    for row, i in zip(rows, index, strict=True):
        negatives = row[1:]
        assert (labels[negatives] != labels[i]).all() and len(set(negatives.tolist())) == 30  # the whole pool, once
    more = ContrastSampler(labels, 50, "exact")(index, gen)  # K > pool: with replacement
    assert more.shape == (4, 51) and (labels[more[:, 1:]] != labels[index][:, None]).all()
    relax = ContrastSampler(labels, 3, "relax")(index, gen)
    assert torch.equal(labels[relax[:, 0]], labels[index])
    again = ContrastSampler(labels, 30, "exact")(index, torch.Generator().manual_seed(0))
    assert torch.equal(again, rows)  # a function of the loader's generator


def test_loader_yields_contrast_indices_only_when_a_method_asks() -> None:
    train, spec = _synthetic(), get_dataset_spec("synthetic")
    plain = next(iter(BatchLoader(train, spec, 8, LoaderOptions(train=True, device=torch.device("cpu")))))
    assert set(plain) == {"image", "target", "index"}
    extras = {"contrast_index": ContrastSampler(train.labels, 16)}
    batch = next(
        iter(BatchLoader(train, spec, 8, LoaderOptions(train=True, device=torch.device("cpu"), extras=extras)))
    )
    assert batch["contrast_index"].shape == (8, 17) and torch.equal(batch["contrast_index"][:, 0], batch["index"])


def test_crd_memory_estimate_and_refusal_on_an_oversized_dataset() -> None:
    need = crd_memory(50_000, feat_dim=128, nce_k=16384, batch_size=64)
    assert need.banks == 2 * 50_000 * 128 * 4
    assert need.per_step >= 2 * 64 * 16385 * 128 * 4  # the gathered bank rows of both sides
    cfg = resolve_run_config(method="crd", teacher="resnet8", student="resnet8", dataset="synthetic")
    huge = 4_000_000_000  # rows; nothing is allocated to ask
    with pytest.raises(UsageError, match=r"crd_nce_k=.*smaller dataset") as err:
        ensure_crd_fits(huge, cfg, torch.device("cpu"))
    assert "\n" not in str(err.value) and "4,000,000,000 samples" in str(err.value)
    assert ensure_crd_fits(50_000, cfg, torch.device("cpu"), available=64 * 1024**3).total == need.total
    # bind_data refuses before allocating anything: a dataset of views over one image
    distiller = get_method("crd")(_model("resnet8", "student"), _model("resnet8", "teacher"), cfg)
    oversized = TensorDataset(
        torch.zeros(1, 3, 32, 32, dtype=torch.uint8).expand(huge, 3, 32, 32),
        torch.zeros(1, dtype=torch.long).expand(huge),
    )
    with pytest.raises(UsageError, match="crd_nce_k"):
        distiller.bind_data(oversized)


def test_crd_refuses_several_processes() -> None:
    """Each process would update only its own samples' bank rows: refused rather than silently wrong."""
    cfg = resolve_run_config(
        method="crd", teacher="resnet8", student="resnet8", dataset="synthetic", flags={"world_size": 2}
    )
    distiller = get_method("crd")(_model("resnet8", "student"), _model("resnet8", "teacher"), cfg)
    data = TensorDataset(torch.zeros(8, 3, 32, 32, dtype=torch.uint8), torch.zeros(8, dtype=torch.long))
    with pytest.raises(UsageError, match="train crd with one process"):
        distiller.bind_data(data)


def test_crd_refusal_comes_before_the_run_folder_is_written(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dskd_core.methods.crd.available_memory", lambda device: 1024)
    cfg = resolve_run_config(
        method="crd",
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags={"epochs": 1, "teacher_ckpt": str(teacher_run)},
    )
    settings = make_settings(tmp_path)
    with pytest.raises(UsageError, match="crd_nce_k"):
        fit(cfg, settings)
    assert not cfg.run_dir(settings.runs_dir).exists()


# Full runs: extra modules in the train state (not in the student file), resume, the start note


def _crd_cfg(teacher_run: Path, epochs: int):  # type: ignore[no-untyped-def]
    return resolve_run_config(
        method="crd",
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags={"epochs": epochs, "teacher_ckpt": str(teacher_run), "deterministic": True},
        overrides=SMALL_K,
    )


def test_crd_trains_saves_its_banks_in_the_train_state_and_resumes_exactly(teacher_run: Path, tmp_path: Path) -> None:
    events: list[dict] = []
    straight = fit(_crd_cfg(teacher_run, 2), make_settings(tmp_path / "a"), observer=events.append)
    start = next(e for e in events if e["event"] == "start")
    assert any("memory banks 2 × 256 × 128" in note for note in start["notes"])
    split = make_settings(tmp_path / "b")
    fit(_crd_cfg(teacher_run, 1), split)
    resumed = fit(_crd_cfg(teacher_run, 2), split, resume=True)
    a, _ = load_tensors(straight.run_dir / "checkpoints" / "train_state.safetensors")
    b, _ = load_tensors(resumed.run_dir / "checkpoints" / "train_state.safetensors")
    for key in ("extra.memory_s", "extra.memory_t", "extra.z_norm", "extra.embed_s.linear.weight", "student.fc.weight"):
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    student, _ = load_tensors(resumed.run_dir / "checkpoints" / "student_last.safetensors")
    assert set(student) == set(create_model("resnet8").state_dict())
    assert resumed.summary["epochs_done"] == 2 and math.isfinite(resumed.summary["last_acc"])


def test_reviewkd_with_sdd_and_stand_trains_and_logs_both_terms(teacher_run: Path, tmp_path: Path) -> None:
    cfg = resolve_run_config(
        method="reviewkd",
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags={"epochs": 1, "teacher_ckpt": str(teacher_run), "scales": [1, 2], "stand": True},
    )
    result = fit(cfg, make_settings(tmp_path))
    assert result.run_dir.parent.name == "reviewkd+kd+sdd[1,2]+ls"
    events = [json.loads(x) for x in (result.run_dir / "log.jsonl").read_text().splitlines()]
    epoch = next(e for e in events if e["event"] == "epoch")
    assert epoch["loss_feat"] > 0 and epoch["loss_kd"] > 0 and math.isfinite(epoch["train_loss"])
    state, _ = load_tensors(result.run_dir / "checkpoints" / "train_state.safetensors")
    assert any(k.startswith("extra.abfs.") for k in state)
    student, _ = load_tensors(result.run_dir / "checkpoints" / "student_last.safetensors")
    assert not any(k.startswith("abfs.") for k in student)


def test_crd_caps_its_default_negatives_to_a_small_datasets_pool_and_says_so() -> None:
    from dskd_core.data import TensorDataset
    from dskd_core.methods import get_method
    from dskd_core.models import create_model
    from dskd_core.resolve import resolve_run_config

    labels = torch.arange(300) % 10  # 30 per class: every sample's other-class pool is 270
    train = TensorDataset(torch.zeros(300, 3, 32, 32, dtype=torch.uint8), labels)

    def bound(**overrides: object):  # type: ignore[no-untyped-def]
        cfg = resolve_run_config(method="crd", teacher="resnet8", student="resnet8", overrides=overrides)
        distiller = get_method("crd")(create_model("resnet8", 10), create_model("resnet8", 10), cfg)
        distiller.bind_data(train)
        return distiller

    capped = bound()
    assert (capped.nce_k, capped.params.crd_nce_k) == (270, 16384)
    assert capped.batch_extras()["contrast_index"](torch.arange(4), torch.Generator()).shape == (4, 271)
    assert any("drawing 270 per sample" in note and "--set crd_nce_k=N" in note for note in capped.describe())
    chosen = bound(crd_nce_k=500)  # asked for explicitly: kept (drawn with replacement from the pool)
    assert chosen.nce_k == 500 and not any("drawing" in note for note in chosen.describe())
    assert bound(crd_nce_k=64).nce_k == 64
