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


def read_windows(instr: Compute, buffer: np.ndarray) -> np.ndarray:
    """(passes, pixels, rows) int8: the words the window generator feeds, padding included."""
    addr, valid = feed_addresses(instr)
    used = addr[valid]
    if used.size and (used.min() < 0 or used.max() >= buffer.shape[0]):
        raise IndexError(
            f"window read [{used.min()}, {used.max()}] outside the {buffer.shape[0]}-word "
            "input buffer"
        )
    words = buffer[np.where(valid, addr, 0)]
    words[~valid] = instr.pad_value
    return words
