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
_WALKS: dict[tuple, tuple[np.ndarray, np.ndarray | None, int, int]] = {}


def read_windows(instr: Compute, buffer: np.ndarray) -> np.ndarray:
    """(passes, pixels, rows) int8: the words the window generator feeds, padding included."""
    offsets, padding, lowest, highest = _walk(instr)
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


def _walk(instr: Compute) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """The walk relative to ``in_base``: the offsets read (a padding position reads the
    lowest valid offset, then is overwritten), the padding mask (``None`` if there is
    none), and the lowest and highest valid offsets (``highest < lowest`` if none)."""
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
        walk = _WALKS[key] = (offsets, padding, lowest, highest)
    return walk
