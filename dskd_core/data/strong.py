"""The strong view of DSKD's ``--aug``: FixMatch-style RandAugment followed by Cutout, batched.

The reference (``mdistiller/dataset/cifar100.py``) builds its strong view per PIL image, after
the random crop and the horizontal flip and before ``ToTensor``/``Normalize``:

1. two ops are picked uniformly *with replacement* from the 14 below and applied in the order
   drawn;
2. each gets its own magnitude ``v = lo + (hi - lo) * u``, ``u ~ U[0, 1)`` (no sign flip);
3. a Cutout always follows, with ``v_c = 0.5 * u``: a square of side ``v_c * W`` (the width for
   both axes), filled with RGB ``(125, 123, 114)``, whose centre is ``np.random.uniform(W)``,
   i.e. uniform on ``(1, W]`` (numpy reads the lone argument as the *low* bound, high 1.0).

==  ============  ==============  =====================================================
#   op            range [lo, hi)  effect, as Pillow computes it
==  ============  ==============  =====================================================
0   autocontrast  (unused)        per channel, stretch [min, max] to [0, 255]
1   brightness    [0.05, 0.95)    blend with black
2   color         [0.05, 0.95)    blend with the greyscale image
3   contrast      [0.05, 0.95)    blend with the mean grey
4   equalize      (unused)        per-channel histogram equalisation
5   identity      (unused)        nothing
6   posterize     [4, 8)          keep ``max(1, int(v))`` high bits
7   rotate        [-30, 30)       degrees counter-clockwise about the centre, nearest
8   sharpness     [0.05, 0.95)    blend with the 3x3 SMOOTH-filtered image
9   shear_x       [-0.3, 0.3)     affine ``(1, v, 0, 0, 1, 0)``, nearest
10  shear_y       [-0.3, 0.3)     affine ``(1, 0, 0, v, 1, 0)``, nearest
11  solarize      [0, 256)        invert the pixels ``>= v``
12  translate_x   [-0.3, 0.3)     shift by ``v * W`` pixels (affine, nearest)
13  translate_y   [-0.3, 0.3)     shift by ``v * H`` pixels (affine, nearest)
==  ============  ==============  =====================================================

Geometric ops fill with black. Here the same distribution is applied to a whole uint8 batch
``(N, 3, H, W)`` at once, on whatever device the batch lives: every random choice is drawn on
the CPU from a :class:`torch.Generator` (:func:`draw_strong`), images are grouped by op from
those CPU draws (so nothing is read back from the device), and each op runs vectorised over
its group. Every op reproduces Pillow's arithmetic: the pixel ops bit for bit (float32
blends with truncation, Pillow's integer greyscale, its float32 3x3 filter, its LUTs), the
affine ops through the same 16.16 fixed-point (rotate, shear) or sequentially accumulated
float64 (translate) source coordinates Pillow's nearest-neighbour transform uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

#: Number of ops RandAugment picks from.
NUM_OPS = 14

#: The ops, in the index order of :attr:`StrongDraws.ops`.
OP_NAMES: tuple[str, ...] = (
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

#: ``(lo, hi)`` of each op's magnitude (``(0, 1)`` where the op takes none).
OP_RANGES: tuple[tuple[float, float], ...] = (
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

#: RGB fill of the Cutout square.
CUTOUT_FILL = (125, 123, 114)

#: Ops applied per image before the Cutout.
_OPS_PER_IMAGE = 2
_IDENTITY = OP_NAMES.index("identity")
#: Pillow's 16.16 fixed point of its nearest-neighbour affine transform.
_FIX_ONE = 65536.0
_DEG_TO_RAD = math.pi / 180.0


@dataclass(frozen=True)
class StrongDraws:
    """Random choices for N images, on the CPU.

    ``ops``: (N, 2) int64 op indices in ``[0, NUM_OPS)``, applied left to right;
    ``magnitude``: (N, 2) float64, already mapped into each op's ``[lo, hi)``;
    ``cutout``: (N, 3) float64, ``v_c`` in ``[0, 0.5)`` then the centre's ``u_x, u_y`` in ``[0, 1)``.
    """

    ops: Tensor
    magnitude: Tensor
    cutout: Tensor

    def __post_init__(self) -> None:
        n = self.ops.shape[0] if self.ops.dim() == 2 else -1
        expected = (
            (self.ops, (n, _OPS_PER_IMAGE), torch.int64, "ops"),
            (self.magnitude, (n, _OPS_PER_IMAGE), torch.float64, "magnitude"),
            (self.cutout, (n, 3), torch.float64, "cutout"),
        )
        for tensor, shape, dtype, name in expected:
            if tuple(tensor.shape) != shape or tensor.dtype != dtype:
                raise ValueError(
                    f"StrongDraws.{name} must be {dtype} of shape {shape} (N from ops), "
                    f"got {tensor.dtype} {tuple(tensor.shape)}"
                )
            if tensor.device.type != "cpu":
                raise ValueError(f"StrongDraws.{name} must be on the CPU, got {tensor.device}")
        if n > 0 and (int(self.ops.min()) < 0 or int(self.ops.max()) >= NUM_OPS):
            raise ValueError(f"StrongDraws.ops must lie in [0, {NUM_OPS})")

    def __len__(self) -> int:
        """The number of images N."""
        return int(self.ops.shape[0])

    def __getitem__(self, index: slice | Tensor) -> StrongDraws:
        """The draws of the rows ``index`` selects (a slice, or an index or boolean tensor)."""
        if isinstance(index, Tensor):
            index = index.to("cpu").reshape(-1) if index.dim() == 0 else index.to("cpu")
        elif not isinstance(index, slice):
            raise TypeError(f"StrongDraws rows are selected by a slice or a tensor, got {type(index).__name__}")
        return StrongDraws(self.ops[index], self.magnitude[index], self.cutout[index])

    def pack(self) -> Tensor:
        """One (N, 7) float64 tensor (ops, magnitudes, cutout), e.g. to leave a DataLoader worker."""
        return torch.cat([self.ops.to(torch.float64), self.magnitude, self.cutout], dim=1)

    @staticmethod
    def unpack(packed: Tensor) -> StrongDraws:
        """The draws :meth:`pack` made ``packed`` from."""
        if packed.dim() != 2 or packed.shape[1] != 7 or packed.dtype != torch.float64:
            raise ValueError(f"packed strong draws are float64 (N, 7), got {packed.dtype} {tuple(packed.shape)}")
        packed = packed.to("cpu")
        ops = packed[:, :2]
        if not bool((ops == ops.round()).all()):
            raise ValueError("packed strong draws: the op columns are not integers")
        return StrongDraws(ops.to(torch.int64), packed[:, 2:4].clone(), packed[:, 4:7].clone())


def draw_strong(n: int, generator: torch.Generator) -> StrongDraws:
    """The random choices of ``n`` images from ``generator``, returned on the CPU.

    In this fixed order: ``ops = randint(0, 14, (n, 2))``, then ``u = rand((n, 2))`` (float64) for
    the magnitudes ``lo + (hi - lo) * u``, then ``rand((n, 3))`` (float64) for the Cutout, whose
    first column is halved into ``v_c``. dskd's loaders pass CPU generators; a generator on an
    accelerator draws there and the draws are copied to the CPU (one synchronisation).
    """
    if n < 0:
        raise ValueError(f"the number of images must be non-negative, got {n}")
    where = generator.device
    ops = torch.randint(0, NUM_OPS, (n, _OPS_PER_IMAGE), generator=generator, device=where).cpu()
    u = torch.rand((n, _OPS_PER_IMAGE), generator=generator, dtype=torch.float64, device=where).cpu()
    cut = torch.rand((n, 3), generator=generator, dtype=torch.float64, device=where).cpu()
    lo = torch.tensor([r[0] for r in OP_RANGES], dtype=torch.float64)
    span = torch.tensor([float(r[1] - r[0]) for r in OP_RANGES], dtype=torch.float64)
    magnitude = lo[ops] + span[ops] * u
    cut[:, 0] = cut[:, 0] * 0.5
    return StrongDraws(ops, magnitude, cut)


def _to(values: Tensor, device: torch.device) -> Tensor:
    """A CPU tensor on ``device`` without stalling the host: on CUDA a pinned copy sent asynchronously
    (a copy from pageable memory waits for the stream to drain, which would empty the queue of steps)."""
    if device.type == "cuda" and values.device.type == "cpu":
        return values.pin_memory().to(device, non_blocking=True)
    return values.to(device)


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise ValueError(f"images must be a tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"images must have at least one pixel, got shape {tuple(images.shape)}")


def _real(device: torch.device) -> torch.dtype:
    """float64, but float32 on "mps", which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _per_image(values: Tensor) -> Tensor:
    """(n,) -> (n, 1, 1, 1), to broadcast over (n, 3, H, W)."""
    return values.reshape(-1, 1, 1, 1)


def _grey(images: Tensor) -> Tensor:
    """Pillow's RGB -> L: ``(19595 R + 38470 G + 7471 B + 0x8000) >> 16``, int32 (n, 1, H, W)."""
    rgb = images.to(torch.int32)
    weighted = rgb[:, 0:1] * 19595 + rgb[:, 1:2] * 38470 + rgb[:, 2:3] * 7471 + 0x8000
    return weighted >> 16


def _blend(degenerate: Tensor, images: Tensor, alpha: Tensor) -> Tensor:
    """Pillow's ``Image.blend(degenerate, images, alpha)``, in float32 as its C does.

    ``(uint8)(in1 + alpha * (in2 - in1))``: product, then sum, then truncation (and, for a
    factor outside [0, 1], Pillow's clipping to [0, 255]).
    """
    alpha32 = _per_image(_to(alpha.to(torch.float32), images.device))
    base = degenerate.to(torch.float32)
    out = base + alpha32 * (images.to(torch.float32) - base)
    return out.clamp(0.0, 255.0).trunc().to(torch.uint8)


def _apply_lut(images: Tensor, lut: Tensor) -> Tensor:
    """Per image and channel lookup: ``lut`` (n, 3, 256) integer values in [0, 255]."""
    n, c, h, w = images.shape
    flat = images.reshape(n, c, h * w).to(torch.int64)
    return lut.to(torch.uint8).gather(2, flat).reshape(n, c, h, w)


def _histogram(images: Tensor) -> Tensor:
    """(n, 3, 256) int64 counts of each value per image and channel."""
    n, c, h, w = images.shape
    planes = torch.arange(n * c, dtype=torch.int64, device=images.device).reshape(n * c, 1) * 256
    flat = images.reshape(n * c, h * w).to(torch.int64) + planes
    return torch.bincount(flat.reshape(-1), minlength=n * c * 256).reshape(n, c, 256)


def _autocontrast(images: Tensor) -> Tensor:
    """``ImageOps.autocontrast`` (cutoff 0): float64 ``lut[i] = int(i * scale + offset)``, clipped."""
    real = _real(images.device)
    lo = images.amin(dim=(2, 3)).to(real)[..., None]
    hi = images.amax(dim=(2, 3)).to(real)[..., None]
    stretch = hi > lo
    span = torch.where(stretch, hi - lo, torch.ones_like(hi))
    scale = torch.full_like(span, 255.0) / span  # a true division: ``255.0 / tensor`` multiplies by a reciprocal
    offset = -lo * scale
    levels = torch.arange(256, dtype=real, device=images.device)
    stretched = (levels * scale + offset).trunc().clamp(0, 255)
    return _apply_lut(images, torch.where(stretch, stretched, levels))


def _brightness(images: Tensor, magnitude: Tensor) -> Tensor:
    """``ImageEnhance.Brightness(img).enhance(v)``: blend with black."""
    return _blend(torch.zeros((), dtype=torch.uint8, device=images.device), images, magnitude)


def _color(images: Tensor, magnitude: Tensor) -> Tensor:
    """``ImageEnhance.Color(img).enhance(v)``: blend with the greyscale image."""
    return _blend(_grey(images), images, magnitude)


def _contrast(images: Tensor, magnitude: Tensor) -> Tensor:
    """``ImageEnhance.Contrast(img).enhance(v)``: blend with ``int(mean grey + 0.5)``."""
    real = _real(images.device)
    total = _grey(images).sum(dim=(1, 2, 3), dtype=torch.int64).to(real)
    mean = (total / torch.full_like(total, images.shape[2] * images.shape[3]) + 0.5).floor()
    return _blend(_per_image(mean), images, magnitude)


def _equalize(images: Tensor) -> Tensor:
    """``ImageOps.equalize``: ``lut[i] = (step // 2 + sum_{j<i} h[j]) // step``, clipped to 255.

    ``step = (count - h[last non-empty bin]) // 255``; a channel with fewer than two distinct
    values, or a zero step, is left as it is.
    """
    hist = _histogram(images)
    levels = torch.arange(256, dtype=torch.int64, device=images.device)
    present = hist > 0
    last = torch.where(present, levels, -1).amax(dim=2, keepdim=True)
    last_count = hist.gather(2, last.clamp(min=0))
    total = images.shape[2] * images.shape[3]
    step = (total - last_count) // 255
    active = (present.sum(dim=2, keepdim=True) >= 2) & (step > 0)
    step = torch.where(active, step, torch.ones_like(step))
    below = hist.cumsum(dim=2) - hist
    equalized = ((step // 2 + below) // step).clamp(max=255)
    return _apply_lut(images, torch.where(active, equalized, levels))


def _posterize(images: Tensor, magnitude: Tensor) -> Tensor:
    """``ImageOps.posterize(img, max(1, int(v)))``: keep the high bits (8 and more: unchanged)."""
    bits = magnitude.trunc().clamp(1, 8).to(torch.int64)
    shift = 8 - bits
    mask = (255 >> shift) << shift
    return images & _per_image(_to(mask.to(torch.uint8), images.device))


def _solarize(images: Tensor, magnitude: Tensor) -> Tensor:
    """``ImageOps.solarize(img, v)``: ``i if i < v else 255 - i``, i.e. invert from ``ceil(v)`` up."""
    threshold = _to(magnitude.ceil().clamp(-1, 257).to(torch.int16), images.device)
    keep = images.to(torch.int16) < _per_image(threshold)
    return torch.where(keep, images, 255 - images)


def _sharpness(images: Tensor, magnitude: Tensor) -> Tensor:
    """``ImageEnhance.Sharpness(img).enhance(v)``: blend with ``img.filter(ImageFilter.SMOOTH)``.

    Pillow's 3x3 filter in float32: 0.5 (its rounding offset), plus the row below, the row and
    the row above, each ``left * k + centre * k + right * k`` with ``k = float32(w / 13)``; then
    clipped and truncated. The outermost rows and columns stay as they are.
    """
    _, _, h, w = images.shape
    smooth = images.clone()
    if h >= 3 and w >= 3:
        weights = torch.tensor([1.0, 5.0], dtype=torch.float32) / torch.tensor(13.0, dtype=torch.float32)
        side, centre = _to(weights, images.device).unbind()
        pixels = images.to(torch.float32)

        def row(rows: slice, middle: Tensor) -> Tensor:
            band = pixels[:, :, rows]
            return (band[..., : w - 2] * side + band[..., 1 : w - 1] * middle) + band[..., 2:] * side

        total = 0.5 + row(slice(2, h), side)
        total = total + row(slice(1, h - 1), centre)
        total = total + row(slice(0, h - 2), side)
        smooth[:, :, 1 : h - 1, 1 : w - 1] = total.clamp(0.0, 255.0).trunc().to(torch.uint8)
    return _blend(smooth, images, magnitude)


def _sample(images: Tensor, xin: Tensor, yin: Tensor) -> Tensor:
    """Nearest-neighbour read of source pixels (n, H, W) int64 coordinates; outside reads black."""
    n, c, h, w = images.shape
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    flat = torch.where(inside, yin * w + xin, h * w).reshape(n, 1, h * w).expand(n, c, h * w)
    padded = torch.cat([images.reshape(n, c, h * w), images.new_zeros(n, c, 1)], dim=2)  # h * w: black
    return padded.gather(2, flat).reshape(n, c, h, w)


def _affine_fixed(images: Tensor, matrix: Tensor) -> Tensor:
    """Pillow's nearest affine transform with a shear/rotation term: its 16.16 fixed-point path.

    ``matrix`` (n, 6) is Pillow's inverse affine ``(a, b, c, d, e, f)``: the output pixel (x, y)
    reads the source at ``(a (x + .5) + b (y + .5) + c, d (x + .5) + e (y + .5) + f)``. Pillow
    rounds a, b, d, e and the pixel-centre offsets to 1/65536 (``floor(v * 65536 + 0.5)``), then
    steps exactly in integers and takes ``>> 16`` (a floor); it does so whenever the corner
    coordinates stay within 32768, i.e. for any image below ~20000 pixels a side. (Its other path,
    for ``b == d == 0``, is the identity or a 180 degree turn here, where both agree.)
    """
    a, b, c, d, e, f = matrix.unbind(1)

    def fix(value: Tensor) -> Tensor:
        return _to((value * _FIX_ONE + 0.5).floor().to(torch.int64), images.device)

    step_xx, step_xy, step_yx, step_yy = fix(a), fix(b), fix(d), fix(e)
    start_x = fix(c + a * 0.5 + b * 0.5)
    start_y = fix(f + d * 0.5 + e * 0.5)
    _, _, h, w = images.shape
    xs = torch.arange(w, dtype=torch.int64, device=images.device).reshape(1, 1, w)
    ys = torch.arange(h, dtype=torch.int64, device=images.device).reshape(1, h, 1)

    def source(start: Tensor, per_x: Tensor, per_y: Tensor) -> Tensor:
        return (start.reshape(-1, 1, 1) + ys * per_y.reshape(-1, 1, 1) + xs * per_x.reshape(-1, 1, 1)) >> 16

    return _sample(images, source(start_x, step_xx, step_xy), source(start_y, step_yx, step_yy))


def _accumulate(start: Tensor, step: float, count: int) -> Tensor:
    """``start, start + step, (start + step) + step, ...``: (n, count), rounded after each add as C does."""
    values = [start]
    for _ in range(count - 1):
        values.append(values[-1] + step)
    return torch.stack(values, dim=1)


def _translate(images: Tensor, shift: Tensor, axis: int) -> Tensor:
    """Pillow's nearest transform of ``(1, 0, tx, 0, 1, ty)`` (its scaling path), ``axis`` 0 for x.

    The source coordinate starts at ``t + 0.5`` and is stepped by ``+= 1.0`` in float64 per
    column (row); a negative one reads outside, any other is truncated.
    """
    n, _, h, w = images.shape
    length = w if axis == 0 else h
    coords = _accumulate(shift + 0.5, 1.0, length)
    inside = (coords >= 0) & (coords < length)
    moved = _to(torch.where(inside, coords.floor(), torch.full_like(coords, -1.0)).to(torch.int64), images.device)
    if axis == 0:
        xin = moved[:, None, :].expand(n, h, w)
        yin = torch.arange(h, dtype=torch.int64, device=images.device)[:, None].expand(n, h, w)
    else:
        xin = torch.arange(w, dtype=torch.int64, device=images.device).expand(n, h, w)
        yin = moved[:, :, None].expand(n, h, w)
    return _sample(images, xin, yin)


def _round15(value: Tensor) -> Tensor:
    """Python's ``round(v, 15)`` for |v| <= 1, to within one unit in the 15th decimal."""
    return torch.round(value * 1e15) / torch.full_like(value, 1e15)


def _rotation_matrix(degrees: Tensor, width: int, height: int) -> Tensor:
    """Pillow's ``rotate`` matrix: the inverse affine about ``(W / 2, H / 2)``, as its Python builds it."""
    turned = torch.fmod(degrees, 360.0)
    turned = torch.where(turned < 0, turned + 360.0, turned)  # Python's float %
    angle = -(turned * _DEG_TO_RAD)
    cos, sin = _round15(torch.cos(angle)), _round15(torch.sin(angle))
    cx, cy = width / 2, height / 2
    c = cos * -cx + sin * -cy + 0.0 + cx
    f = -sin * -cx + cos * -cy + 0.0 + cy
    return torch.stack([cos, sin, c, -sin, cos, f], dim=1)


def _rotate(images: Tensor, magnitude: Tensor) -> Tensor:
    """``img.rotate(v)``: counter-clockwise by v degrees about the centre, nearest, black fill."""
    return _affine_fixed(images, _rotation_matrix(magnitude, images.shape[3], images.shape[2]))


def _shear(images: Tensor, magnitude: Tensor, axis: int) -> Tensor:
    """``img.transform(size, AFFINE, (1, v, 0, 0, 1, 0))`` (x) or ``(1, 0, 0, v, 1, 0)`` (y)."""
    one, zero = torch.ones_like(magnitude), torch.zeros_like(magnitude)
    if axis == 0:
        rows = [one, magnitude, zero, zero, one, zero]
    else:
        rows = [one, zero, zero, magnitude, one, zero]
    return _affine_fixed(images, torch.stack(rows, dim=1))


def apply_op(images: Tensor, op: int, magnitude: Tensor) -> Tensor:
    """Op ``op`` (an index into :data:`OP_NAMES`) on uint8 ``images`` (n, 3, H, W); uint8 out.

    ``magnitude`` (n,) is each image's v, already in the op's range (ignored by the ops that
    take none). It may live on any device: the per-image parameters (blend factors, affine
    matrices, ...) are computed where it lives and moved to the images' device, so CPU
    magnitudes give the same result on every device. The input is not modified.
    """
    _check_images(images)
    if not 0 <= op < NUM_OPS:
        raise ValueError(f"op must lie in [0, {NUM_OPS}), got {op}")
    if magnitude.dim() != 1 or magnitude.shape[0] != images.shape[0]:
        raise ValueError(f"magnitude must be ({images.shape[0]},), got {tuple(magnitude.shape)}")
    magnitude = magnitude.to(_real(magnitude.device))
    name = OP_NAMES[op]
    if name == "autocontrast":
        return _autocontrast(images)
    if name == "brightness":
        return _brightness(images, magnitude)
    if name == "color":
        return _color(images, magnitude)
    if name == "contrast":
        return _contrast(images, magnitude)
    if name == "equalize":
        return _equalize(images)
    if name == "posterize":
        return _posterize(images, magnitude)
    if name == "rotate":
        return _rotate(images, magnitude)
    if name == "sharpness":
        return _sharpness(images, magnitude)
    if name in ("shear_x", "shear_y"):
        return _shear(images, magnitude, 0 if name == "shear_x" else 1)
    if name == "solarize":
        return _solarize(images, magnitude)
    if name in ("translate_x", "translate_y"):
        size = images.shape[3] if name == "translate_x" else images.shape[2]
        return _translate(images, magnitude * size, 0 if name == "translate_x" else 1)
    return images.clone()  # identity


def cutout(images: Tensor, params: Tensor) -> Tensor:
    """The reference's Cutout on uint8 ``images`` (n, 3, H, W); ``params`` (n, 3) as :attr:`StrongDraws.cutout`.

    With ``s = v_c * W``, centre ``cx = W + (1 - W) u_x``, ``cy = H + (1 - H) u_y``:
    ``x0 = int(max(0, cx - s / 2))``, ``x1 = min(W, x0 + s)`` (y likewise, with the same s), and
    ``ImageDraw.rectangle((x0, y0, x1, y1))`` fills columns ``x0 .. int(x1)`` and rows
    ``y0 .. int(y1)`` inclusive, clipped to the image, with :data:`CUTOUT_FILL`. ``v_c <= 0``
    leaves the image as it is. The input is not modified.
    """
    _check_images(images)
    if params.dim() != 2 or params.shape != (images.shape[0], 3):
        raise ValueError(f"cutout params must be ({images.shape[0]}, 3), got {tuple(params.shape)}")
    _, _, h, w = images.shape
    params = params.to(_real(params.device))
    v, ux, uy = params.unbind(1)
    side = v * w
    cx = w + (1.0 - w) * ux
    cy = h + (1.0 - h) * uy
    x0 = (cx - side / 2.0).clamp(min=0).trunc()
    y0 = (cy - side / 2.0).clamp(min=0).trunc()
    x1 = torch.minimum(x0 + side, torch.full_like(side, w)).trunc()
    y1 = torch.minimum(y0 + side, torch.full_like(side, h)).trunc()
    active = v > 0

    def bounds(value: Tensor) -> Tensor:
        return _to(value.to(torch.int64), images.device).reshape(-1, 1, 1)

    first_x, last_x, first_y, last_y = bounds(x0), bounds(x1), bounds(y0), bounds(y1)
    cols = torch.arange(w, device=images.device).reshape(1, 1, w)
    rows = torch.arange(h, device=images.device).reshape(1, h, 1)
    inside = (cols >= first_x) & (cols <= last_x) & (rows >= first_y) & (rows <= last_y)
    inside = inside & _to(active, images.device).reshape(-1, 1, 1)
    fill = torch.tensor(CUTOUT_FILL, dtype=torch.uint8, device=images.device).reshape(1, 3, 1, 1)
    return torch.where(inside[:, None], fill, images)


def apply_strong(images: Tensor, draws: StrongDraws) -> Tensor:
    """RandAugment (the two ops of each image, in order) then Cutout, as ``draws`` say.

    ``images`` uint8 (N, 3, H, W) on any device; ``draws`` N rows, on the CPU. Images are grouped
    by op from the CPU draws, so nothing is read back from the device. The input is not modified.
    """
    _check_images(images)
    if len(draws) != images.shape[0]:
        raise ValueError(f"{len(draws)} strong draws for {images.shape[0]} images")
    out = images.clone(memory_format=torch.contiguous_format)
    for slot in range(_OPS_PER_IMAGE):
        ops = draws.ops[:, slot]
        order = torch.argsort(ops, stable=True)
        counts = torch.bincount(ops, minlength=NUM_OPS).tolist()
        order_device = _to(order, images.device)
        start = 0
        for op, count in enumerate(counts):
            rows, rows_device = order[start : start + count], order_device[start : start + count]
            start += count
            if count == 0 or op == _IDENTITY:
                continue
            group = out.index_select(0, rows_device)
            out.index_copy_(0, rows_device, apply_op(group, op, draws.magnitude[rows, slot]))
    return cutout(out, draws.cutout)


def strong_augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """DSKD's strong view of a uint8 batch (N, 3, H, W): uint8 out, on the same device.

    ``apply_strong(images, draw_strong(len(images), generator))``.
    """
    _check_images(images)
    return apply_strong(images, draw_strong(images.shape[0], generator))
