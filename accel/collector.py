"""Python's cycle collector, paused while a program's worth of objects is made.

Compiling, reading a program and running the cycle model allocate up to millions of objects
(instructions, per-instruction times and arrays) that make no reference cycles and that
reference counting frees. Each full pass of the collector walks every live object, the
program's instructions included, and such passes trigger again and again while the objects
are made: about three quarters of a large program's compile time, a tenth or more of a large
run's (ResNet-50 on ``edge``, collector on against off: 2.2-2.5 -> 1.95 s of simulation), more
than half of decoding its program (0.42 -> 0.16 s), for no garbage.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["paused"]


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block; restored after (if it was on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
