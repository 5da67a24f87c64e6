"""The weight-stationary systolic array (ARRAY mode of the compute engine).

``rows`` x ``cols`` int8 x int8 -> int32 PEs. Array row ``i`` holds reduction element ``i``
of the current pass (lane ``i`` of the input word), column ``c`` holds output channel ``c``.
Every PE has an active and a shadow weight register: the weight loader writes the shadow
registers of the next pass one array row per cycle while the current pass streams, and a
row switches to its shadow weights when the first vector of the next pass reaches it, so
consecutive passes follow each other with no fill or drain bubble. Timing, with its skew
table, is in :mod:`accel.timing`.

Pass ``k`` of a COMPUTE instruction uses the weight tile at weight-buffer words ``w_base +
k*rows .. w_base + k*rows + rows - 1`` (word ``i`` = array row ``i``).

Input-stationary (``Compute.is_``): the same sums, the weight words transposed
(:func:`weight_tiles`); its mapping and timing are in :mod:`accel.timing`.

Depthwise mode (``Compute.depthwise``): array row ``t`` is kernel tap ``t`` and column ``c``
channel ``c``; each row is fed a word of its own (its tap's), lane ``c`` to PE ``(t, c)``
(:func:`depthwise_sums`).
"""

from __future__ import annotations

import numpy as np

from accel.isa import Compute


def depthwise_sums(instr: Compute, windows: np.ndarray, tile: np.ndarray) -> np.ndarray:
    """(pixels, cols) int64: a depthwise instruction's sums, exactly. ``windows`` is (taps,
    pixels, lanes), the words its rows read (:func:`sim.window.read_windows`); ``tile``
    its one (rows, cols) weight tile. PE (t, c) multiplies lane ``c`` of row ``t``'s word
    by ``tile[t, c]``; rows past the taps are fed ``pad_value``."""
    taps = windows.shape[0]
    sums = np.einsum("tpc,tc->pc", windows.astype(np.int64), tile[:taps].astype(np.int64))
    return sums + instr.pad_value * tile[taps:].astype(np.int64).sum(axis=0)


def weight_tiles(instr: Compute, weights: np.ndarray, rows: int) -> np.ndarray:
    """(passes * rows, k_tiles * cols) int8: the stacked weight tiles of every pass (row
    ``i`` of a tile = reduction lane ``i``, column ``n`` = output channel ``n``).

    Input-stationary (``is_``) the words hold the transposed tiles, as the IS array streams
    them: word ``w_base + k*L + n`` (``L = k_tiles * rows``) is output channel ``n``'s
    weights of pass ``k``, lane ``i`` = reduction lane ``i`` (the array is square)."""
    words = instr.weight_words(rows)
    if instr.w_base < 0 or instr.w_base + words > weights.shape[0]:
        raise IndexError(
            f"weight read [{instr.w_base}, {instr.w_base + words}) outside the "
            f"{weights.shape[0]}-word weight buffer"
        )
    tiles = weights[instr.w_base : instr.w_base + words]
    if instr.is_:
        span = words // instr.passes
        tiles = tiles.reshape(instr.passes, span, rows).transpose(0, 2, 1)
        tiles = tiles.reshape(instr.passes * rows, span)
    return tiles


def array_sums(windows: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """(pixels, cols) int64: sum over passes of window @ weight tile, exactly.

    ``windows`` is (passes, pixels, rows).
    """
    return multiply(lhs(windows), tiles)


def lhs(windows: np.ndarray) -> np.ndarray:
    """(pixels, passes * rows) int8: the fed words of every pass side by side."""
    passes, pixels, rows = windows.shape
    return windows.transpose(1, 0, 2).reshape(pixels, passes * rows)


#: Most products one sum may hold for float32 to be exact (see :func:`multiply`).
FLOAT32_TERMS = 2**24 // 2**14


def multiply(lhs: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """(pixels, n) int64: int8 ``lhs`` (pixels, k) times int8 ``tiles`` (k, n), exactly.

    The product runs in BLAS, in float32 when ``k <= FLOAT32_TERMS`` and float64 above: an
    int8 x int8 product has magnitude at most ``2**14``, so every partial sum BLAS forms, in
    any order, is an integer of magnitude at most ``k * 2**14``, exact in float32 up to
    ``2**24`` and in float64 up to ``2**53`` (``k`` below ``2**39``: far more than the
    ISA's passes times rows).
    """
    dtype = np.float32 if lhs.shape[1] <= FLOAT32_TERMS else np.float64
    return (lhs.astype(dtype) @ tiles.astype(dtype)).astype(np.int64)
