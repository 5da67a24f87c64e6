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

import mmap

import numpy as np


class Dram:
    """The DRAM contents plus traffic counters."""

    def __init__(self, image: np.ndarray) -> None:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 1:
            raise TypeError("the DRAM image must be a 1-D numpy uint8 array")
        self.data = _base_pages(image.size)
        self.data[...] = image
        self.bytes_read = 0
        self.bytes_written = 0

    def read_runs(
        self, addr: int, outer: int, outer_stride: int, inner: int, inner_stride: int, run: int
    ) -> np.ndarray:
        """(outer, inner, run) bytes of a strided read: a read-only view of the DRAM, valid
        until the next write (the caller copies it into a buffer at once)."""
        self._check(addr, outer, outer_stride, inner, inner_stride, run)
        self.bytes_read += outer * inner * run
        view = np.ndarray(
            (outer, inner, run),
            np.uint8,
            self.data,
            addr,
            (outer_stride, inner_stride, 1),
        )
        view.flags.writeable = False
        return view

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
            view = np.ndarray(
                runs.shape, np.uint8, self.data, addr, (outer_stride, inner_stride, step)
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


def _base_pages(size: int) -> np.ndarray:
    """A zeroed uint8 array of ``size`` bytes in an anonymous mapping of its own.

    Not ``numpy.empty``: numpy advises transparent huge pages for large arrays, and faulting
    those in stalls here (a 33 MB ResNet-50 image: 0.4-0.8 s, against 0.04 s in base pages,
    measured on this project's 2-core machine), longer than the whole data path of a small
    network.
    """
    if size == 0:
        return np.zeros(0, np.uint8)
    return np.frombuffer(mmap.mmap(-1, size), np.uint8)
