"""DRAM: a byte array behind independent read and write channels.

Each channel moves ``config.dram.bandwidth`` bytes per beat, one beat per cycle, and answers
``config.dram.latency`` cycles after a request; a run never shares a beat with another run
and a beat never spans two SRAM words (:func:`accel.timing.run_beats`); the memory is a bus
of ``bandwidth``-byte blocks, so an unaligned run may cost a cycle more
(:func:`accel.timing.load_run_beats`, :func:`accel.timing.store_run_beats`). Loads and stores use
separate channels and never slow each other down. The RTL testbench's DRAM model has the
same two parameters and the same behaviour.
"""

from __future__ import annotations

import numpy as np


class Dram:
    """The DRAM contents plus traffic counters."""

    def __init__(self, image: np.ndarray) -> None:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 1:
            raise TypeError("the DRAM image must be a 1-D numpy uint8 array")
        self.data = image.copy()
        self.bytes_read = 0
        self.bytes_written = 0

    def read_runs(
        self, addr: int, outer: int, outer_stride: int, inner: int, inner_stride: int, run: int
    ) -> np.ndarray:
        """(outer, inner, run) bytes of a strided read."""
        self._check(addr, outer, outer_stride, inner, inner_stride, run)
        view = np.lib.stride_tricks.as_strided(
            self.data[addr:], shape=(outer, inner, run), strides=(outer_stride, inner_stride, 1)
        )
        self.bytes_read += outer * inner * run
        return view.copy()

    def write_runs(
        self, addr: int, outer_stride: int, inner_stride: int, runs: np.ndarray, step: int = 1
    ) -> None:
        """Write (outer, inner, n) bytes with the given strides, byte ``k`` of a run to its
        address ``+ k*step`` (``step`` > 1: a scatter; the bytes between are left as they
        are, as byte strobes leave them)."""
        outer, inner, n = runs.shape
        span = (n - 1) * step + 1
        self._check(addr, outer, outer_stride, inner, inner_stride, span)
        disjoint = inner_stride >= span and outer_stride >= (inner - 1) * inner_stride + span
        if disjoint or outer * inner == 1:
            view = np.lib.stride_tricks.as_strided(
                self.data[addr:], shape=runs.shape, strides=(outer_stride, inner_stride, step)
            )
            view[...] = runs
        else:  # overlapping runs: later runs win, in program order, as in the hardware
            for i in range(outer):
                for j in range(inner):
                    start = addr + i * outer_stride + j * inner_stride
                    self.data[start : start + span : step] = runs[i, j]
        self.bytes_written += runs.size

    def _check(self, addr, outer, outer_stride, inner, inner_stride, run) -> None:
        last = addr + (outer - 1) * outer_stride + (inner - 1) * inner_stride + run
        if addr < 0 or last > self.data.size:
            raise IndexError(
                f"DRAM access [{addr}, {last}) outside the {self.data.size}-byte image"
            )
