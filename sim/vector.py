"""The vector unit (VMAX, VSUM and VADD modes of the compute engine).

``min(rows, cols)`` lanes, one input word per cycle, reading and writing the accumulator row
of the pixel (read in the feed cycle, written ``VECTOR_LATENCY`` cycles later):

- VMAX: ``acc = max(acc, x)`` (the first pass overwrites unless ``accumulate``); padding
  reads as ``pad_value`` (-128, so it never wins).
- VSUM: ``acc += x - zero_point_a``; padding reads as the zero point, so it adds 0.
- VADD: two passes, operand a at ``in_base`` then operand b at ``in_base_b``;
  ``acc += MultiplyByQuantizedMultiplier((x - zp) << 20, multiplier, shift)`` with the
  operand's zero point, multiplier and shift (gemmlowp/TFLite ADD). With ``mul`` (VMUL):
  ``acc = (x_a - zero_point_a) * (x_b - zero_point_b)`` (exact, below ``2**16``); the first
  pass writes ``x_a - za``, the second multiplies it by ``x_b - zb``, so ``accumulate`` must
  be 0. ``broadcast_b`` only changes which words the window generator reads.

Lanes past ``min(rows, cols)`` are written as zero.
"""

from __future__ import annotations

import functools

import numpy as np

from accel import numerics
from accel.isa import Compute, ComputeMode


def vector_result(instr: Compute, windows: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """(pixels, lanes) int64: the accumulator rows after the instruction."""
    if instr.mode == ComputeMode.VADD and not instr.mul:
        bytes_ = windows.astype(np.uint8)  # (2, pixels, lanes): operand a, then b
        a = _add_table(instr.zero_point_a, instr.multiplier_a, instr.shift_a)
        b = _add_table(instr.zero_point_b, instr.multiplier_b, instr.shift_b)
        result = a[bytes_[0]] + b[bytes_[1]]
        return result + previous if instr.accumulate else result
    x = windows.astype(np.int64)  # (passes, pixels, lanes)
    if instr.mode == ComputeMode.VMAX:
        result = x.max(axis=0)
        return np.maximum(result, previous) if instr.accumulate else result
    if instr.mode == ComputeMode.VSUM:
        result = (x - instr.zero_point_a).sum(axis=0)
    elif instr.mode == ComputeMode.VADD:  # with mul: VMUL
        if instr.accumulate:
            raise ValueError(f"layer {instr.layer}: VMUL (VADD with mul) cannot accumulate")
        return (x[0] - instr.zero_point_a) * (x[1] - instr.zero_point_b)
    else:
        raise ValueError(f"not a vector mode: {instr.mode}")
    return result + previous if instr.accumulate else result


#: Every int8 value, indexed by its byte (``value & 0xFF``).
_INT8_BY_BYTE = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int64)


@functools.lru_cache(maxsize=1024)
def _add_table(zero_point: int, multiplier: int, shift: int) -> np.ndarray:
    """VADD's rescaling of one operand, ``MultiplyByQuantizedMultiplier((x - zero_point) <<
    20, multiplier, shift)``, for every int8 ``x``, indexed by ``x``'s byte: an operand is a
    byte, so a table lookup gives exactly the value the arithmetic does."""
    shifted = (_INT8_BY_BYTE - zero_point) << numerics.ADD_LEFT_SHIFT
    table = numerics.rdbpot_unchecked(
        numerics.srdhm_unchecked(shifted, np.int64(multiplier)), np.int64(shift)
    )
    table.flags.writeable = False
    return table
