"""The window generator (hardware im2col): the words a COMPUTE instruction feeds.

It walks :func:`accel.window.feed_addresses` (the ISA's window walk) over the input buffer,
one word per cycle, and produces ``pad_value`` in every lane where the walk leaves the image.
The word reaches the array (or the vector unit) in the cycle after its address is issued.
RTL: :mod:`hdl.window`.
"""

from __future__ import annotations

import numpy as np

from accel.isa import Compute
from accel.window import feed_addresses

#: Window geometry (:meth:`Compute.window_geometry`) -> :func:`_walk`; a layer's tiles share one.
_WALKS: dict[tuple, tuple] = {}


def read_windows(instr: Compute, buffer: np.ndarray) -> np.ndarray:
    """(passes, pixels, rows) int8: the words the window generator feeds, padding included."""
    return _read(instr, buffer, 0)


def read_pixel_words(instr: Compute, buffer: np.ndarray) -> np.ndarray:
    """(pixels, passes, rows) int8: :func:`read_windows` pixel by pixel (the rows of the
    array's im2col matrix), gathered in that order rather than transposed."""
    return _read(instr, buffer, 1)


def _read(instr: Compute, buffer: np.ndarray, pixel_major: int) -> np.ndarray:
    walk = _walk(instr)
    offsets, padding = walk[2 * pixel_major : 2 * pixel_major + 2]
    lowest, highest = walk[4:]
    base = instr.in_base
    if highest < lowest:  # all padding
        return np.full((*offsets.shape, buffer.shape[1]), instr.pad_value, buffer.dtype)
    if base + lowest < 0 or base + highest >= buffer.shape[0]:
        raise IndexError(
            f"window read [{base + lowest}, {base + highest}] outside the "
            f"{buffer.shape[0]}-word input buffer"
        )
    words = buffer[offsets + base]
    if padding is not None:
        words[padding] = instr.pad_value
    return words


def _walk(instr: Compute) -> tuple:
    """The walk relative to ``in_base``: the offsets read (a padding position reads the
    lowest valid offset, then is overwritten) and the padding mask (``None`` if there is
    none), in feed order and transposed to pixel-major order; then the lowest and highest
    valid offsets (``highest < lowest`` if none)."""
    key = instr.window_geometry()
    walk = _WALKS.get(key)
    if walk is None:
        if len(_WALKS) > 4096:
            _WALKS.clear()
        addr, valid = feed_addresses(instr)
        offsets = addr - instr.in_base
        used = offsets[valid]
        lowest, highest = (int(used.min()), int(used.max())) if used.size else (0, -1)
        offsets = np.where(valid, offsets, lowest)
        padding = None if valid.all() else ~valid
        walk = _WALKS[key] = (
            offsets,
            padding,
            np.ascontiguousarray(offsets.T),
            None if padding is None else np.ascontiguousarray(padding.T),
            lowest,
            highest,
        )
    return walk
