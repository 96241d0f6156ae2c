"""The SDD scales a run may ask for (a leaf without torch, so the run schema can check them)."""

from __future__ import annotations

from collections.abc import Iterable

from dskd_core.errors import UsageError

#: The cells per side of the SDD grids: 1×1 (global), 2×2 and 4×4.
ALLOWED_SCALES = (1, 2, 4)


def validate_scales(scales: Iterable[int]) -> tuple[int, ...]:
    """Return the scales sorted and de-duplicated; refuse anything outside {1, 2, 4} or without 1."""
    values = tuple(sorted(set(int(s) for s in scales)))
    if not values or any(s not in ALLOWED_SCALES for s in values) or 1 not in values:
        raise UsageError(f"invalid scales {list(values)}: use a subset of 1,2,4 that contains 1, e.g. --scales 1,2")
    return values
