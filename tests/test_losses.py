"""The loss algebra: standardize, kd, multiscale_logits, region_weights, sdd_loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dskd_core.losses import kd, standardize, standardized
from dskd_core.sdd import flatten_regions, multiscale_logits, num_regions, region_weights, sdd_loss

pytestmark = pytest.mark.usefixtures("float64")  # algebraic identities are checked in float64


def _kd_fn(t: float):
    return lambda s, te, y: kd(s, te, t)


def test_standardize_is_unbiased_zscore_with_eps_outside_sqrt() -> None:
    z = torch.randn(4, 10) * 3 + 1
    k = z.shape[-1]
    mean = z.sum(-1, keepdim=True) / k
    std = ((z - mean) ** 2).sum(-1, keepdim=True).div(k - 1).sqrt()
    torch.testing.assert_close(standardize(z), (z - mean) / (std + 1e-7))
    assert torch.allclose(standardize(z).mean(-1), torch.zeros(4), atol=1e-12)


def test_standardize_is_shift_and_scale_invariant() -> None:
    z = torch.randn(3, 7)
    torch.testing.assert_close(standardize(2.5 * z + 4.0), standardize(z), rtol=1e-6, atol=1e-6)


def test_kd_per_sample_matches_the_classic_batchmean_formula() -> None:
    s, t, temp = torch.randn(8, 100), torch.randn(8, 100), 4.0
    p_t = F.softmax(t / temp, -1)
    manual = (p_t * (p_t.log() - F.log_softmax(s / temp, -1))).sum(-1) * temp**2
    torch.testing.assert_close(kd(s, t, temp), manual)
    classic = F.kl_div(F.log_softmax(s / temp, -1), p_t, reduction="batchmean") * temp**2
    torch.testing.assert_close(kd(s, t, temp).mean(), classic)
    assert kd(s, t, temp).shape == (8,)


def test_kd_is_zero_for_identical_logits_and_positive_otherwise() -> None:
    s = torch.randn(5, 10)
    assert torch.allclose(kd(s, s, 2.0), torch.zeros(5), atol=1e-12)
    assert (kd(s, torch.randn(5, 10), 2.0) > 0).all()


def _reference_style_regions(final_map: torch.Tensor, fc: nn.Linear, scales: list[int]) -> torch.Tensor:
    """Re-derivation in the reference's shape conventions: pool, cat to B×C×N, classify N·B rows."""
    b, c = final_map.shape[:2]
    p4 = F.adaptive_avg_pool2d(final_map, (4, 4))
    parts = {
        4: p4.view(b, c, 16),
        2: F.adaptive_avg_pool2d(p4, (2, 2)).view(b, c, 4),
        1: F.adaptive_avg_pool2d(p4, (1, 1)).view(b, c, 1),
    }
    x = torch.cat([parts[s] for s in scales], dim=2)  # B×C×N
    n = x.shape[2]
    rows = x.permute(2, 0, 1).reshape(n * b, c)
    return fc(rows).view(n, b, -1).permute(1, 0, 2)  # B×N×K


@pytest.mark.parametrize("scales", [[1], [1, 2], [1, 4], [1, 2, 4]])
@pytest.mark.parametrize("side", [8, 4, 2, 7])
def test_multiscale_logits_layout(scales: list[int], side: int) -> None:
    fc = nn.Linear(6, 5)
    fmap = torch.randn(3, 6, side, side)
    out = multiscale_logits(fmap, fc, scales)
    assert out.shape == (3, num_regions(scales), 5)
    torch.testing.assert_close(out, _reference_style_regions(fmap, fc, scales))
    if side in (8, 4, 2):  # the global cell is the model's own GAP logits on these maps
        torch.testing.assert_close(out[:, 0], fc(fmap.mean((2, 3))))


def test_multiscale_logits_cell_order_is_row_major() -> None:
    fc = nn.Linear(1, 1, bias=False)
    fc.weight.data.fill_(1.0)
    fmap = torch.arange(64, dtype=torch.float64).view(1, 1, 8, 8)
    out = multiscale_logits(fmap, fc, (1, 2))[0, :, 0]
    top_left = fmap[0, 0, :4, :4].mean()
    top_right = fmap[0, 0, :4, 4:].mean()
    bottom_left = fmap[0, 0, 4:, :4].mean()
    assert out[1] == top_left and out[2] == top_right and out[3] == bottom_left


def test_multiscale_logits_sorts_scales_and_refuses_bad_ones() -> None:
    fc, fmap = nn.Linear(4, 3), torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(multiscale_logits(fmap, fc, (2, 1)), multiscale_logits(fmap, fc, (1, 2)))
    for bad in ([2], [1, 3], [], [1, 8]):
        with pytest.raises(ValueError, match="subset of 1,2,4"):
            multiscale_logits(fmap, fc, bad)


def test_region_weights_follow_teacher_correctness_against_the_label() -> None:
    k = 4
    target = torch.tensor([0, 1])

    def onehot(cls: int) -> torch.Tensor:
        return F.one_hot(torch.tensor(cls), k).double()

    # sample 0: global right; regions: right, wrong, wrong  -> 1, 1, 2, 2
    # sample 1: global wrong (says 2); regions: wrong as 3, right -> 1, 1, 2  (wrong-vs-wrong is consistent)
    t = torch.stack(
        [
            torch.stack([onehot(0), onehot(0), onehot(2), onehot(3)]),
            torch.stack([onehot(2), onehot(3), onehot(1), onehot(2)]),
        ]
    )
    w = region_weights(t, target, complementary=2.0)
    assert w.tolist() == [[1, 1, 2, 2], [1, 1, 2, 1]]
    assert region_weights(t, target, complementary=5.0)[0, 2] == 5.0


def test_sdd_loss_with_one_region_and_unit_weights_is_the_plain_loss() -> None:
    s, t, y = torch.randn(6, 10), torch.randn(6, 10), torch.randint(0, 10, (6,))
    fn = _kd_fn(4.0)
    for weighting in ("region", "mean"):
        got = sdd_loss(fn, s[:, None], t[:, None], y, weighting=weighting)  # type: ignore[arg-type]
        torch.testing.assert_close(got, fn(s, t, y).mean())


def test_sdd_loss_with_complementary_one_is_the_mean_over_all_regions() -> None:
    s, t, y = torch.randn(4, 5, 10), torch.randn(4, 5, 10), torch.randint(0, 10, (4,))
    fn = _kd_fn(2.0)
    got = sdd_loss(fn, s, t, y, complementary=1.0)
    torch.testing.assert_close(got, torch.stack([fn(s[:, n], t[:, n], y) for n in range(5)]).mean())


def _reference_style_sdd(s, t, y, temp, weighting, stand):
    """The reference reduction: region-major rows, labels tiled with repeat, weights from teacher argmax."""
    b, n, k = s.shape
    sr = s.permute(1, 0, 2).reshape(n * b, k)
    tr = t.permute(1, 0, 2).reshape(n * b, k)
    if stand:
        sr, tr = standardize(sr), standardize(tr)
    yr = y.repeat(n)
    loss = F.kl_div(F.log_softmax(sr / temp, 1), F.softmax(tr / temp, 1), reduction="none").sum(1) * temp**2
    ok = tr.argmax(1) == yr
    glob = ok[:b].repeat(n)
    w = torch.ones(n * b, dtype=s.dtype)
    w[(glob != ok)] = 2.0
    if weighting == "region":
        return (w * loss).sum() / (n * b)
    return loss.mean() * w.mean()


@pytest.mark.parametrize("n", [5, 21])
@pytest.mark.parametrize("weighting", ["region", "mean"])
@pytest.mark.parametrize("stand", [False, True])
def test_sdd_loss_matches_a_reference_style_derivation(n: int, weighting: str, stand: bool) -> None:
    gen = torch.Generator().manual_seed(n)
    b, k = 16, 10
    y = torch.randint(0, k, (b,), generator=gen)
    t = torch.randn(b, n, k, generator=gen) * 3
    t[:, :, :] += F.one_hot(y, k)[:, None] * 2.5  # teacher often right, sometimes wrong
    s = torch.randn(b, n, k, generator=gen)
    fn = _kd_fn(4.0)
    got = sdd_loss(standardized(fn) if stand else fn, s, t, y, weighting=weighting)  # type: ignore[arg-type]
    want = _reference_style_sdd(s, t, y, 4.0, weighting, stand)
    torch.testing.assert_close(got, want)
    assert 0 < (region_weights(t, y) == 2).float().mean() < 1  # both weights occur


def test_standardizing_commutes_with_flattening_regions() -> None:
    x = torch.randn(3, 5, 7)
    torch.testing.assert_close(flatten_regions(standardize(x)), standardize(flatten_regions(x)))


def test_gradients_flow_to_the_student_only() -> None:
    s = torch.randn(2, 5, 10, requires_grad=True)
    t = torch.randn(2, 5, 10, requires_grad=True)
    y = torch.tensor([1, 2])
    sdd_loss(_kd_fn(4.0), s, t.detach(), y).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and t.grad is None
    assert math.isfinite(float(s.grad.abs().sum()))
