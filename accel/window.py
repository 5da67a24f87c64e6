"""The window walk of a COMPUTE instruction: which input-buffer words it reads, in what order.

This is the ISA's definition of hardware im2col, which the window generator of the cycle
model (:mod:`sim.window`) and of the RTL (:mod:`hdl.window`) both implement. The input buffer
holds one word per pixel and channel tile (``rows`` int8 lanes). A COMPUTE instruction walks
passes (channel tile ``ct``, kernel row ``r``, kernel column ``s``; ``s`` fastest) and, within
a pass, output pixels (``p``, ``q``; ``q`` fastest). For each it reads, one word per cycle::

    in_base + ct*ct_stride + (p*stride_h + r*dil_h)*tile_w + q*stride_w + s*dil_w

or, when the image position ``(origin_h + p*stride_h + r*dil_h, origin_w + q*stride_w +
s*dil_w)`` lies outside the ``image_h`` x ``image_w`` input, produces ``pad_value`` in every
lane without reading (zero padding costs no DRAM traffic and no buffer space for the real
zero point of the layer). Stride and dilation are only address arithmetic. VADD walks two
operands (``in_base`` and ``in_base_b``) of one pass each; with ``broadcast_b`` operand b's
pass reads ``in_base_b`` for every pixel (its validity is operand a's).

A depthwise instruction (``depthwise``; :class:`accel.isa.Compute`) has one pass whose
every pixel reads one word per kernel tap, one tap per array row: its walk is the walk of a
``taps_h`` x ``taps_w`` kernel (:meth:`accel.isa.Compute.window_geometry`), the taps in place of
the passes (``feed_addresses`` then returns one row per tap, the pixels of each row fed in
the same cycles).

Three views of the same walk: :func:`feed_addresses` (every address in feed order, with its
validity), :func:`distinct_words` (the set of words read, for buffer occupancy) and
:func:`valid_reads` (how many reads, for SRAM traffic).
"""

from __future__ import annotations

import functools

import numpy as np

from accel.isa import Compute

__all__ = ["distinct_words", "feed_addresses", "valid_reads"]


def feed_addresses(instr: Compute) -> tuple[np.ndarray, np.ndarray]:
    """(passes, pixels) word addresses and validity mask, in feed order; for a depthwise
    instruction (taps, pixels)."""
    offsets, valid = _feed_offsets(*instr.window_geometry())
    return instr.in_base + offsets, valid


def distinct_words(instr: Compute) -> np.ndarray:
    """The sorted distinct input words the instruction reads."""
    return instr.in_base + _distinct_offsets(*instr.window_geometry())


def valid_reads(instr: Compute) -> int:
    """Words the window walk actually reads (padding is generated, not read)."""
    return _valid_reads(*instr.window_geometry())


@functools.lru_cache(maxsize=4096)
def _valid_reads(
    vadd, b_offset, ct_count, ct_stride, tile_w, out_h, out_w, origin_h, origin_w, image_h,
    image_w, stride_h, stride_w, dil_h, dil_w, kernel_h, kernel_w, broadcast_b,
) -> int:  # fmt: skip
    if vadd:
        rows = _in_bounds(origin_h, out_h, stride_h, 0, image_h)
        cols = _in_bounds(origin_w, out_w, stride_w, 0, image_w)
        return 2 * rows * cols  # a broadcast b word is read once per valid pixel
    rows = sum(_in_bounds(origin_h, out_h, stride_h, r * dil_h, image_h) for r in range(kernel_h))
    cols = sum(_in_bounds(origin_w, out_w, stride_w, s * dil_w, image_w) for s in range(kernel_w))
    return ct_count * rows * cols


# The tiles of a layer share their geometry (Compute.window_geometry), hence the caches.


@functools.lru_cache(maxsize=4096)
def _feed_offsets(
    vadd,
    b_offset,
    ct_count,
    ct_stride,
    tile_w,
    out_h,
    out_w,
    origin_h,
    origin_w,
    image_h,
    image_w,
    stride_h,
    stride_w,
    dil_h,
    dil_w,
    kernel_h,
    kernel_w,
    broadcast_b,
) -> tuple[np.ndarray, np.ndarray]:
    """Addresses relative to ``in_base`` in feed order, and their validity."""
    if vadd:
        bases = np.array([0, b_offset]).reshape(2, 1, 1, 1, 1)
        r = np.zeros((1, 1, 1, 1, 1), dtype=np.int64)
        s = r
    else:
        bases = np.arange(ct_count).reshape(-1, 1, 1, 1, 1) * ct_stride
        r = np.arange(kernel_h).reshape(1, -1, 1, 1, 1)
        s = np.arange(kernel_w).reshape(1, 1, -1, 1, 1)
    p = np.arange(out_h).reshape(1, 1, 1, -1, 1)
    q = np.arange(out_w).reshape(1, 1, 1, 1, -1)
    h = p * stride_h + r * dil_h
    w = q * stride_w + s * dil_w
    offsets = bases + h * tile_w + w
    if broadcast_b:
        offsets = np.concatenate([offsets[:1], np.broadcast_to(bases[1:], offsets[1:].shape)])
    valid = (origin_h + h >= 0) & (origin_h + h < image_h)
    valid = valid & (origin_w + w >= 0) & (origin_w + w < image_w)
    offsets, valid = np.broadcast_arrays(offsets, valid)
    passes = offsets.shape[0] * offsets.shape[1] * offsets.shape[2]
    offsets = offsets.reshape(passes, out_h * out_w).copy()
    valid = valid.reshape(passes, out_h * out_w).copy()
    offsets.flags.writeable = False
    valid.flags.writeable = False
    return offsets, valid


@functools.lru_cache(maxsize=4096)
def _distinct_offsets(
    vadd: bool,
    b_offset: int,
    ct_count: int,
    ct_stride: int,
    tile_w: int,
    out_h: int,
    out_w: int,
    origin_h: int,
    origin_w: int,
    image_h: int,
    image_w: int,
    stride_h: int,
    stride_w: int,
    dil_h: int,
    dil_w: int,
    kernel_h: int,
    kernel_w: int,
    broadcast_b: bool,
) -> np.ndarray:
    """Distinct words relative to ``in_base``. Validity is separable in rows and columns, so
    the set is the sum of the valid row offsets, column offsets and channel-tile bases (no
    walk over every pixel of every pass)."""
    if vadd:
        bases = np.array([0, b_offset], dtype=np.int64)
        kernel_h = kernel_w = 1
    else:
        bases = np.arange(ct_count, dtype=np.int64) * ct_stride

    def valid(count: int, stride: int, kernel: int, dil: int, origin: int, size: int):
        offsets = np.add.outer(np.arange(count) * stride, np.arange(kernel) * dil).ravel()
        return np.unique(offsets[(origin + offsets >= 0) & (origin + offsets < size)])

    h = valid(out_h, stride_h, kernel_h, dil_h, origin_h, image_h)
    w = valid(out_w, stride_w, kernel_w, dil_w, origin_w, image_w)
    if broadcast_b:  # operand a's window, and operand b's one word if any pixel is valid
        a = (h[:, None] * tile_w + w[None, :]).ravel()
        words = np.unique(np.concatenate([a, [b_offset] if a.size else []]).astype(np.int64))
    else:
        words = bases[:, None, None] + h[None, :, None] * tile_w + w[None, None, :]
        words = np.unique(words.ravel())
    words.flags.writeable = False
    return words


def _in_bounds(origin: int, count: int, stride: int, offset: int, size: int) -> int:
    """How many of ``origin + i*stride + offset`` (i < count) lie in [0, size)."""
    first = max(0, -(-(-origin - offset) // stride))  # smallest i with position >= 0
    last = min(count - 1, (size - 1 - origin - offset) // stride)  # largest i < size
    return max(0, last - first + 1)
