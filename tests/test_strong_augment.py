"""The batched strong view (``dskd_core.data.strong``) against Pillow, the reference's own library.

The reference applies RandAugment (two ops with replacement from 14, uniform magnitudes) and a
Cutout per PIL image; the helpers below do exactly that with the Pillow calls it makes, so each
op, the Cutout and the whole pipeline are compared pixel by pixel, and the output distribution
of :func:`strong_augment` is compared with the reference driven by ``random``/numpy draws.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from dskd_core.data.strong import (
    CUTOUT_FILL,
    NUM_OPS,
    OP_NAMES,
    OP_RANGES,
    StrongDraws,
    apply_op,
    apply_strong,
    cutout,
    draw_strong,
    strong_augment,
)

U8 = npt.NDArray[np.uint8]

GEOMETRIC_OPS = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
PIXEL_OPS = tuple(name for name in OP_NAMES if name not in GEOMETRIC_OPS)  # the other nine: bit-exact
SIZES = ((32, 32), (40, 24), (64, 64))  # (H, W)


# ----------------------------------------------------------------------------- the PIL reference


def pil_op(img: Image.Image, name: str, v: float) -> Image.Image:
    """One RandAugment op as the reference calls Pillow."""
    w, h = img.size
    ops: dict[str, Callable[[], Image.Image]] = {
        "autocontrast": lambda: ImageOps.autocontrast(img),
        "brightness": lambda: ImageEnhance.Brightness(img).enhance(v),
        "color": lambda: ImageEnhance.Color(img).enhance(v),
        "contrast": lambda: ImageEnhance.Contrast(img).enhance(v),
        "equalize": lambda: ImageOps.equalize(img),
        "identity": lambda: img,
        "posterize": lambda: ImageOps.posterize(img, max(1, int(v))),
        "rotate": lambda: img.rotate(v),
        "sharpness": lambda: ImageEnhance.Sharpness(img).enhance(v),
        "shear_x": lambda: img.transform(img.size, Image.Transform.AFFINE, (1, v, 0, 0, 1, 0)),
        "shear_y": lambda: img.transform(img.size, Image.Transform.AFFINE, (1, 0, 0, v, 1, 0)),
        "solarize": lambda: ImageOps.solarize(img, v),  # type: ignore[arg-type]  # the reference passes a float
        "translate_x": lambda: img.transform(img.size, Image.Transform.AFFINE, (1, 0, v * w, 0, 1, 0)),
        "translate_y": lambda: img.transform(img.size, Image.Transform.AFFINE, (1, 0, 0, 0, 1, v * h)),
    }
    return ops[name]()


def pil_cutout(img: Image.Image, v: float, cx: float, cy: float) -> Image.Image:
    """The reference's Cutout with the centre already drawn (``np.random.uniform(W)``, ``(H)``)."""
    if v <= 0.0:
        return img
    side = v * img.size[0]
    w, h = img.size
    x0 = int(max(0, cx - side / 2.0))
    y0 = int(max(0, cy - side / 2.0))
    x1 = min(w, x0 + side)
    y1 = min(h, y0 + side)
    img = img.copy()
    ImageDraw.Draw(img).rectangle((x0, y0, x1, y1), CUTOUT_FILL)
    return img


def pil_strong(img: Image.Image, ops: list[int], mags: list[float], cut: list[float]) -> Image.Image:
    """The reference pipeline fed with given draws (``cut`` = v_c, u_x, u_y as StrongDraws holds them)."""
    for op, v in zip(ops, mags, strict=True):
        img = pil_op(img, OP_NAMES[op], v)
    w, h = img.size
    return pil_cutout(img, cut[0], w + (1.0 - w) * cut[1], h + (1.0 - h) * cut[2])


def pil_reference(img: Image.Image, rnd: random.Random, nrng: np.random.RandomState) -> Image.Image:
    """The reference's own sampling: ``random.choices`` k=2, ``random.random()`` magnitudes, numpy centre."""
    for op in rnd.choices(range(NUM_OPS), k=2):
        lo, hi = OP_RANGES[op]
        img = pil_op(img, OP_NAMES[op], lo + float(hi - lo) * rnd.random())
    v = rnd.random() * 0.5
    if v <= 0.0:
        return img
    w, h = img.size
    return pil_cutout(img, v, float(nrng.uniform(w)), float(nrng.uniform(h)))


def pil_batch(images: torch.Tensor, fn: Callable[[Image.Image, int], Image.Image]) -> torch.Tensor:
    """``fn(PIL image, index)`` over a uint8 (N, 3, H, W) batch, back as a tensor."""
    arrays = images.permute(0, 2, 3, 1).numpy()
    out = [np.asarray(fn(Image.fromarray(a), i)) for i, a in enumerate(arrays)]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2) if out else torch.empty_like(images)


# ------------------------------------------------------------------------------------ the images


def natural_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """uint8 (n, 3, h, w): smooth gradients + noise, low contrast, constant and uniform noise, in turn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out: list[U8] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            slope = rng.uniform(-6, 6, (2, 3))
            base = rng.uniform(40, 215, 3) + xx[..., None] * slope[0] + yy[..., None] * slope[1]
            img = base + rng.normal(0, 8, (h, w, 3))
        elif kind == 1:
            low = rng.integers(0, 240)
            img = rng.integers(low, low + rng.integers(2, 16), (h, w, 3))
        elif kind == 2:
            img = np.broadcast_to(rng.integers(0, 256, 3), (h, w, 3))
        else:
            img = rng.integers(0, 256, (h, w, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def magnitudes(op: int, n: int, seed: int) -> torch.Tensor:
    """n magnitudes of ``op``: both ends of its range, then uniform ones."""
    lo, hi = OP_RANGES[op]
    rnd = random.Random(seed)
    values = [lo, math.nextafter(hi, lo), (lo + hi) / 2] + [lo + (hi - lo) * rnd.random() for _ in range(n)]
    return torch.tensor(values[:n], dtype=torch.float64)


def mismatch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) fraction of pixels (any channel) that differ."""
    return (a != b).any(dim=1).flatten(1).double().mean(dim=1)


# ------------------------------------------------------------------------------------- the ops


def test_constants() -> None:
    assert NUM_OPS == len(OP_NAMES) == len(OP_RANGES) == 14
    assert OP_NAMES[0] == "autocontrast" and OP_NAMES[5] == "identity" and OP_NAMES[-1] == "translate_y"
    assert OP_RANGES[OP_NAMES.index("rotate")] == (-30.0, 30.0)
    assert OP_RANGES[OP_NAMES.index("posterize")] == (4.0, 8.0)
    assert OP_RANGES[OP_NAMES.index("solarize")] == (0.0, 256.0)
    assert all(lo < hi for lo, hi in OP_RANGES)
    assert CUTOUT_FILL == (125, 123, 114)


@pytest.mark.parametrize("name", PIXEL_OPS)
@pytest.mark.parametrize("size", SIZES)
def test_pixel_op_is_bit_exact_with_pillow(name: str, size: tuple[int, int]) -> None:
    op = OP_NAMES.index(name)
    images = natural_images(24, *size, seed=op)
    before = images.clone()
    mags = magnitudes(op, len(images), seed=100 + op)
    got = apply_op(images, op, mags)
    expected = pil_batch(images, lambda img, i: pil_op(img, name, float(mags[i])))
    assert got.dtype == torch.uint8 and got.shape == images.shape
    assert torch.equal(images, before)
    assert torch.equal(got, expected), f"{name}: {int((got != expected).sum())} values differ"


@pytest.mark.parametrize(
    ("name", "value"), [("equalize", 0.0), ("autocontrast", 0.0), ("posterize", 4.999), ("solarize", 128.0)]
)
def test_pixel_ops_follow_pillow_corner_cases(name: str, value: float) -> None:
    # Pillow's equalize steps by (count - last bin) // 255 and clips its LUT at 255; autocontrast
    # truncates a float64 scale, posterize takes int(v) bits, solarize compares with a float.
    images = natural_images(8, 16, 16, seed=7)
    images[0, :, :8] = 0  # two-valued channels: equalize's last bin lands on 255 exactly
    images[0, :, 8:] = 200
    images[1, 0] = 17  # one constant channel next to varying ones
    mags = torch.full((len(images),), value, dtype=torch.float64)
    expected = pil_batch(images, lambda img, i: pil_op(img, name, value))
    assert torch.equal(apply_op(images, OP_NAMES.index(name), mags), expected)


@pytest.mark.parametrize("name", GEOMETRIC_OPS)
@pytest.mark.parametrize("size", SIZES)
def test_geometric_op_matches_pillow(name: str, size: tuple[int, int]) -> None:
    op = OP_NAMES.index(name)
    images = natural_images(32, *size, seed=op)
    mags = magnitudes(op, len(images), seed=200 + op)
    mags[3] = 0.0  # no motion at all
    got = apply_op(images, op, mags)
    expected = pil_batch(images, lambda img, i: pil_op(img, name, float(mags[i])))
    rates = mismatch(got, expected)
    # Pillow's own fixed-point / accumulated source coordinates are reproduced: every pixel is exact.
    assert float(rates.max()) == 0.0, f"{name}: worst image {float(rates.max()):.4f}"


def test_geometric_ops_move_pixels_the_right_way() -> None:
    # A single bright pixel: rotate turns it counter-clockwise, translate_x by +v*W reads from the right.
    images = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    images[0, :, 8, 24] = 255  # right of the centre, above it
    rotated = apply_op(images, OP_NAMES.index("rotate"), torch.tensor([90.0 - 1e-9], dtype=torch.float64))
    y, x = (rotated[0, 0] == 255).nonzero()[0].tolist()
    assert x < 16 and y < 16  # counter-clockwise: to the upper left
    shifted = apply_op(images, OP_NAMES.index("translate_x"), torch.tensor([0.25], dtype=torch.float64))
    assert (shifted[0, 0] == 255).nonzero()[0].tolist() == [8, 16]


# ----------------------------------------------------------------------------------- the Cutout


@pytest.mark.parametrize("size", ((32, 32), (40, 24), (24, 40), (7, 5)))
def test_cutout_matches_pillow_rectangle(size: tuple[int, int]) -> None:
    images = natural_images(120, *size, seed=size[0] * size[1])
    params = torch.rand(120, 3, generator=torch.Generator().manual_seed(size[1]), dtype=torch.float64)
    params[:, 0] *= 0.5
    params[:4, 1:] = torch.tensor([[0.0, 0.0], [1 - 1e-12, 1 - 1e-12], [0.0, 1 - 1e-12], [0.5, 0.5]])
    params[4, 0] = 0.0  # v_c == 0: untouched
    rows = params.tolist()
    got = cutout(images, params)
    expected = pil_batch(images, lambda img, i: pil_strong(img, [], [], rows[i]))
    assert torch.equal(got, expected)
    assert torch.equal(got[4], images[4])


def test_cutout_patch_size_and_clipping() -> None:
    images = torch.zeros(3, 3, 32, 32, dtype=torch.uint8)
    # Centred (u = 0.5 puts the centre at 16.5): unclipped, (floor(s) + 1)^2 pixels for s = 0.3 * 32.
    # u = 0: centre at (32, 32), clipped at the bottom right; u -> 1: centre near 1, at the top left.
    params = torch.tensor([[0.3, 0.5, 0.5], [0.3, 0.0, 0.0], [0.3, 1 - 1e-12, 1 - 1e-12]], dtype=torch.float64)
    out = cutout(images, params)
    fill = torch.tensor(CUTOUT_FILL, dtype=torch.uint8).reshape(3, 1, 1)
    painted = (out == fill).all(dim=1)
    side = 0.3 * 32
    assert int(painted[0].sum()) == (math.floor(side) + 1) ** 2
    rows, cols = painted[1].nonzero().unbind(1)
    assert int(rows.max()) == int(cols.max()) == 31 and int(rows.min()) == int(cols.min()) == int(32 - side / 2)
    rows, cols = painted[2].nonzero().unbind(1)
    assert int(rows.min()) == int(cols.min()) == 0
    assert int(rows.max()) == int(cols.max()) == math.floor(side)  # x0 = 0, x1 = s: columns 0 .. floor(s)
    untouched = ~painted
    assert bool((out.permute(1, 0, 2, 3)[:, untouched] == 0).all())


def test_cutout_centre_lies_in_one_to_w() -> None:
    # numpy's uniform(W) draws from (1, W]: a tiny patch almost never covers column or row 0.
    n, w = 7000, 8
    gen = torch.Generator().manual_seed(11)
    params = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    params[:, 0] = 1e-5  # s = 8e-5: one pixel, at (int(cy - s/2), int(cx - s/2))
    out = cutout(torch.zeros(n, 3, w, w, dtype=torch.uint8), params)
    painted = (out == torch.tensor(CUTOUT_FILL, dtype=torch.uint8).reshape(3, 1, 1)).all(dim=1)
    assert bool((painted.flatten(1).sum(dim=1) == 1).all())
    per_column = painted.sum(dim=(0, 1)).double()
    assert float(per_column[0]) <= 2  # only when cx < 1 + s/2: probability s / 2 / (W - 1), ~6e-6
    expected = n / (w - 1)
    assert float((per_column[1:] - expected).abs().max()) <= 4 * math.sqrt(expected)
    assert float(painted.sum(dim=(0, 2))[0]) <= 2


# --------------------------------------------------------------------------------- the pipeline


@pytest.mark.parametrize("size", ((32, 32), (40, 24)))
def test_apply_strong_matches_pillow_pipeline(size: tuple[int, int]) -> None:
    n = 240 if size == (32, 32) else 80
    images = natural_images(n, *size, seed=size[1])
    draws = draw_strong(n, torch.Generator().manual_seed(5))
    got = apply_strong(images, draws)
    expected = pil_batch(
        images,
        lambda img, i: pil_strong(img, draws.ops[i].tolist(), draws.magnitude[i].tolist(), draws.cutout[i].tolist()),
    )
    rates = mismatch(got, expected)
    assert float(rates.max()) == 0.0
    assert len({int(op) for op in draws.ops.flatten()}) == NUM_OPS  # every op took part


def test_strong_augment_distribution_matches_reference() -> None:
    n = 2000
    images = natural_images(n, 32, 32, seed=1)
    ours = strong_augment(images, torch.Generator().manual_seed(2024))
    rnd, nrng = random.Random(2024), np.random.RandomState(2024)
    theirs = pil_batch(images, lambda img, i: pil_reference(img, rnd, nrng))
    fill = torch.tensor(CUTOUT_FILL, dtype=torch.uint8).reshape(1, 3, 1, 1)

    def stats(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "mean": batch.double().mean(dim=(1, 2, 3)),
            "black": (batch == 0).all(dim=1).double().mean(dim=(1, 2)),
            "grey": (batch == fill).all(dim=1).double().mean(dim=(1, 2)),
        }

    def z_score(a: torch.Tensor, b: torch.Tensor) -> float:
        # Independent draws on the same images: the variance of the difference is at most this.
        se = math.sqrt(float(a.var()) / len(a) + float(b.var()) / len(b))
        return abs(float(a.mean() - b.mean())) / se

    ours_stats, theirs_stats = stats(ours), stats(theirs)
    for key in ours_stats:
        assert z_score(ours_stats[key], theirs_stats[key]) <= 4.0, key
    # The check has power: the images as they came in (no ops, no Cutout) are far outside the bound.
    plain = stats(images)
    assert all(z_score(plain[key], theirs_stats[key]) > 10.0 for key in ("black", "grey"))


# -------------------------------------------------------------------------------------- the draws


def test_draws_are_deterministic_and_in_a_fixed_order() -> None:
    images = natural_images(64, 32, 32, seed=9)
    a = strong_augment(images, torch.Generator().manual_seed(17))
    b = strong_augment(images, torch.Generator().manual_seed(17))
    c = strong_augment(images, torch.Generator().manual_seed(18))
    assert torch.equal(a, b) and not torch.equal(a, c)
    gen = torch.Generator().manual_seed(17)
    ops = torch.randint(0, NUM_OPS, (64, 2), generator=gen)
    u = torch.rand((64, 2), generator=gen, dtype=torch.float64)
    cut = torch.rand((64, 3), generator=gen, dtype=torch.float64)
    draws = draw_strong(64, torch.Generator().manual_seed(17))
    lo = torch.tensor([r[0] for r in OP_RANGES], dtype=torch.float64)[ops]
    hi = torch.tensor([r[1] for r in OP_RANGES], dtype=torch.float64)[ops]
    assert torch.equal(draws.ops, ops)
    assert torch.equal(draws.magnitude, lo + (hi - lo) * u)
    assert torch.equal(draws.cutout[:, 0], cut[:, 0] * 0.5) and torch.equal(draws.cutout[:, 1:], cut[:, 1:])
    assert torch.equal(apply_strong(images, draws), a)


def test_draw_strong_is_uniform_with_replacement() -> None:
    n = 28000
    draws = draw_strong(n, torch.Generator().manual_seed(0))
    counts = torch.bincount(draws.ops.flatten(), minlength=NUM_OPS).double()
    expected = 2 * n / NUM_OPS
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 <= (NUM_OPS - 1) + 6 * math.sqrt(2 * (NUM_OPS - 1))  # mean + 6 sd of chi-square(13)
    same = float((draws.ops[:, 0] == draws.ops[:, 1]).double().mean())
    p = 1 / NUM_OPS
    assert abs(same - p) <= 4 * math.sqrt(p * (1 - p) / n)
    lo = torch.tensor([r[0] for r in OP_RANGES], dtype=torch.float64)[draws.ops]
    hi = torch.tensor([r[1] for r in OP_RANGES], dtype=torch.float64)[draws.ops]
    assert bool(((draws.magnitude >= lo) & (draws.magnitude < hi)).all())
    assert float(draws.cutout[:, 0].min()) >= 0.0 and float(draws.cutout[:, 0].max()) < 0.5
    assert abs(float(draws.cutout[:, 0].mean()) - 0.25) <= 4 * 0.5 / math.sqrt(12 * n)
    assert float(draws.cutout[:, 1:].min()) >= 0.0 and float(draws.cutout[:, 1:].max()) < 1.0


def test_strong_draws_container() -> None:
    draws = draw_strong(10, torch.Generator().manual_seed(1))
    assert len(draws) == 10
    head, tail = draws[:4], draws[4:]
    assert len(head) == 4 and len(tail) == 6 and torch.equal(torch.cat([head.ops, tail.ops]), draws.ops)
    picked = draws[torch.tensor([7, 2])]
    assert torch.equal(picked.magnitude, draws.magnitude[[7, 2]])
    assert len(draws[torch.arange(10) % 2 == 0]) == 5
    assert len(draws[torch.tensor(3)]) == 1
    packed = draws.pack()
    assert packed.shape == (10, 7) and packed.dtype == torch.float64
    back = StrongDraws.unpack(packed)
    assert torch.equal(back.ops, draws.ops)
    assert torch.equal(back.magnitude, draws.magnitude) and torch.equal(back.cutout, draws.cutout)
    with pytest.raises(ValueError):
        StrongDraws.unpack(packed[:, :6])
    with pytest.raises(ValueError):
        StrongDraws(draws.ops.float(), draws.magnitude, draws.cutout)
    with pytest.raises(ValueError):
        StrongDraws(draws.ops[:3], draws.magnitude, draws.cutout)
    with pytest.raises(ValueError):
        StrongDraws(draws.ops + NUM_OPS, draws.magnitude, draws.cutout)


# ------------------------------------------------------------------------------------ the inputs


def test_apply_strong_leaves_its_input_and_handles_layouts_and_sizes() -> None:
    images = natural_images(16, 36, 36, seed=4)
    draws = draw_strong(16, torch.Generator().manual_seed(8))
    before = images.clone()
    expected = apply_strong(images, draws)
    assert torch.equal(images, before)
    channels_last = images.contiguous(memory_format=torch.channels_last)
    assert torch.equal(apply_strong(channels_last, draws), expected)
    strided = torch.zeros(16, 3, 72, 36, dtype=torch.uint8)
    strided[:, :, ::2] = images
    view = strided[:, :, ::2]
    assert not view.is_contiguous()
    assert torch.equal(apply_strong(view, draws), expected)
    assert torch.equal(strided[:, :, ::2], images)
    one = apply_strong(images[:1], draws[:1])
    assert torch.equal(one, expected[:1])
    empty = strong_augment(images[:0], torch.Generator().manual_seed(0))
    assert empty.shape == (0, 3, 36, 36) and empty.dtype == torch.uint8


def test_deterministic_kernels_are_enough() -> None:
    images = natural_images(32, 16, 16, seed=2)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        out = strong_augment(images, torch.Generator().manual_seed(0))
    finally:
        torch.use_deterministic_algorithms(before)
    assert torch.equal(out, strong_augment(images, torch.Generator().manual_seed(0)))


def test_invalid_inputs_raise_value_error() -> None:
    gen = torch.Generator().manual_seed(0)
    good = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    for bad in (good.float(), good[0], good[:, :1], torch.zeros(2, 4, 8, 8, dtype=torch.uint8)):
        with pytest.raises(ValueError):
            strong_augment(bad, gen)
    with pytest.raises(ValueError):
        apply_strong(good, draw_strong(3, gen))
    with pytest.raises(ValueError):
        apply_op(good, NUM_OPS, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError):
        apply_op(good, 1, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError):
        cutout(good, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError):
        draw_strong(-1, gen)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    images = natural_images(256, 32, 32, seed=6)
    draws = draw_strong(256, torch.Generator().manual_seed(6))
    on_gpu = apply_strong(images.cuda(), draws)
    assert on_gpu.device.type == "cuda"
    assert torch.equal(on_gpu.cpu(), apply_strong(images, draws))
    for op in range(NUM_OPS):
        mags = magnitudes(op, 64, seed=op)
        assert torch.equal(apply_op(images[:64].cuda(), op, mags).cpu(), apply_op(images[:64], op, mags)), OP_NAMES[op]
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # no op of the pipeline lacks a deterministic CUDA kernel
    try:
        strict = strong_augment(images.cuda(), torch.Generator().manual_seed(1)).cpu()
    finally:
        torch.use_deterministic_algorithms(before)
    assert torch.equal(strict, strong_augment(images, torch.Generator().manual_seed(1)))


def test_the_op_table_is_the_references() -> None:
    """The 14 ops of DSKD's augment_list, in its order, with their [lo, hi) ranges."""
    from dskd_core.data.strong import OP_RANGES

    assert OP_NAMES == (
        "autocontrast",
        "brightness",
        "color",
        "contrast",
        "equalize",
        "identity",
        "posterize",
        "rotate",
        "sharpness",
        "shear_x",
        "shear_y",
        "solarize",
        "translate_x",
        "translate_y",
    )
    assert OP_RANGES == (
        (0.0, 1.0),
        (0.05, 0.95),
        (0.05, 0.95),
        (0.05, 0.95),
        (0.0, 1.0),
        (0.0, 1.0),
        (4.0, 8.0),
        (-30.0, 30.0),
        (0.05, 0.95),
        (-0.3, 0.3),
        (-0.3, 0.3),
        (0.0, 256.0),
        (-0.3, 0.3),
        (-0.3, 0.3),
    )
