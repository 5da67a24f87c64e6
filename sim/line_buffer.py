"""The input buffer and its window generator (hardware im2col).

The input buffer holds one word per pixel and channel tile (``rows`` int8 lanes). For a
COMPUTE instruction the window generator walks passes (channel tile ``ct``, kernel row ``r``,
kernel column ``s``; ``s`` fastest) and, within a pass, output pixels (``p``, ``q``; ``q``
fastest). For each it issues one read per cycle at::

    in_base + ct*ct_stride + (p*stride_h + r*dil_h)*tile_w + q*stride_w + s*dil_w

or, when the image position ``(origin_h + p*stride_h + r*dil_h, origin_w + q*stride_w +
s*dil_w)`` lies outside the ``image_h`` x ``image_w`` input, produces ``pad_value`` in every
lane without reading (zero padding costs no DRAM traffic and no buffer space for the real
zero point of the layer). Stride and dilation are only address arithmetic. The word reaches
the array (or the vector unit) in the cycle after the address is issued.
"""

from __future__ import annotations

import functools

import numpy as np

from accel.isa import Compute, ComputeMode


def window_addresses(instr: Compute) -> tuple[np.ndarray, np.ndarray]:
    """(passes, pixels) word addresses and validity mask, in feed order."""
    offsets, valid = _window_offsets(*instr.window_geometry())
    return instr.in_base + offsets, valid


@functools.lru_cache(maxsize=4096)
def _window_offsets(
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
) -> tuple[np.ndarray, np.ndarray]:
    """Addresses relative to ``in_base``; tiles of a layer share them (hence the cache)."""
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
    valid = (origin_h + h >= 0) & (origin_h + h < image_h)
    valid = valid & (origin_w + w >= 0) & (origin_w + w < image_w)
    offsets, valid = np.broadcast_arrays(offsets, valid)
    passes = offsets.shape[0] * offsets.shape[1] * offsets.shape[2]
    offsets = offsets.reshape(passes, out_h * out_w).copy()
    valid = valid.reshape(passes, out_h * out_w).copy()
    offsets.flags.writeable = False
    valid.flags.writeable = False
    return offsets, valid


def read_windows(instr: Compute, buffer: np.ndarray) -> np.ndarray:
    """(passes, pixels, rows) int8: the words the window generator feeds, padding included."""
    addr, valid = window_addresses(instr)
    used = addr[valid]
    if used.size and (used.min() < 0 or used.max() >= buffer.shape[0]):
        raise IndexError(
            f"window read [{used.min()}, {used.max()}] outside the {buffer.shape[0]}-word "
            "input buffer"
        )
    words = buffer[np.where(valid, addr, 0)]
    words[~valid] = instr.pad_value
    return words


def _in_bounds(origin: int, count: int, stride: int, offset: int, size: int) -> int:
    """How many of ``origin + i*stride + offset`` (i < count) lie in [0, size)."""
    first = max(0, -(-(-origin - offset) // stride))  # smallest i with position >= 0
    last = min(count - 1, (size - 1 - origin - offset) // stride)  # largest i < size
    return max(0, last - first + 1)


def valid_reads(instr: Compute) -> int:
    """Words the window generator actually reads (padding is generated, not read)."""
    if instr.mode == ComputeMode.VADD:
        rows = _in_bounds(instr.origin_h, instr.out_h, instr.stride_h, 0, instr.image_h)
        cols = _in_bounds(instr.origin_w, instr.out_w, instr.stride_w, 0, instr.image_w)
        return 2 * rows * cols
    rows = sum(
        _in_bounds(instr.origin_h, instr.out_h, instr.stride_h, r * instr.dil_h, instr.image_h)
        for r in range(instr.kernel_h)
    )
    cols = sum(
        _in_bounds(instr.origin_w, instr.out_w, instr.stride_w, s * instr.dil_w, instr.image_w)
        for s in range(instr.kernel_w)
    )
    return instr.ct_count * rows * cols
