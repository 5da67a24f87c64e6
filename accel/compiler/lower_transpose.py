"""Lowering of a transposed convolution onto the systolic array, without inserted zeros.

A transposed convolution with stride ``(sh, sw)`` scatters input pixel ``(h, v)`` through
tap ``(r, s)`` to output pixel ``(h*sh - top + r*dh, v*sw - left + s*dw)``. The output rows
``o`` of one *phase* ``o % sh == ph`` are reached only by the taps ``r`` with ``(ph + top -
r*dh) % sh == 0``; for output row ``o = ph + i*sh`` such a tap reads input row ``h = (ph +
top - r*dh) / sh + i``. So each of the ``sh * sw`` phases is an ordinary stride-1
convolution of the input with a sub-kernel (those taps, flipped, dilation ``dh /
gcd(dh, sh)``) and a padding that may be negative (the window starts inside the image),
whose ``ceil((Ho - ph) / sh) x ceil((Wo - pw) / sw)`` results are stored at every
``sh``-th row and ``sw``-th column of the output (STORE strides,
:class:`~accel.compiler.emit.Phase`): no multiplication by an inserted zero. The input zero
point is folded into each phase's bias with its own sub-kernel, padding reads the zero
point, so every phase's accumulators equal ``conv_transpose2d(x - zp, w) + bias`` at its
pixels exactly (:func:`accel.numerics.qconv_transpose2d`).

A phase no tap reaches (kernel smaller than the stride on an axis: ``(R - 1)*dh + 1 <
sh`` can leave one) holds only the bias; it runs as a 1x1 convolution with zero weights,
the one place where zeros are multiplied, on those pixels only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accel import graph as g
from accel.compiler.emit import Emitter, Phase
from accel.compiler.lower_conv import lower_conv
from accel.compiler.tiling import Window
from accel.program import TensorLayout
from accel.quantized import ConvQuant


@dataclass(frozen=True)
class AxisPhase:
    """One phase of one axis: output positions ``start + i*stride`` for ``i < count``."""

    start: int
    count: int
    taps: tuple[int, ...]  # kernel positions that reach it, increasing (empty: none)
    dilation: int  # of the sub-kernel
    pad: int  # padding before the input of its stride-1 convolution (< 0: a crop)
    pad_end: int  # padding after it (< 0: the last rows are not read)


def axis_phases(
    size: int, out: int, kernel: int, stride: int, pad_begin: int, dilation: int
) -> list[AxisPhase]:
    """The phases of one axis of a transposed convolution with ``size`` inputs and ``out``
    outputs, those with at least one output position."""
    phases = []
    for start in range(min(stride, out)):
        count = len(range(start, out, stride))
        taps = tuple(r for r in range(kernel) if (start + pad_begin - r * dilation) % stride == 0)
        if not taps:
            phases.append(AxisPhase(start, count, (), 1, 0, count - size))
            continue
        sub_dilation = dilation // math.gcd(dilation, stride)
        # Output i of the phase reads input (start + pad_begin - taps[-1]*dilation) / stride + i
        # first (the flipped sub-kernel's first tap).
        pad = -((start + pad_begin - taps[-1] * dilation) // stride)
        pad_end = (count - 1) - pad + (len(taps) - 1) * sub_dilation - (size - 1)
        phases.append(AxisPhase(start, count, taps, sub_dilation, pad, pad_end))
    return phases


def lower_conv_transpose(
    em: Emitter,
    node: str,
    op: g.ConvTranspose2d,
    cq: ConvQuant,
    xs: list[TensorLayout],
    ys: list[TensorLayout],
) -> dict:
    """Lower a transposed convolution of ``xs[i]`` into ``ys[i]`` (every image of a batch)
    as one stride-1 convolution per output phase (module docstring); returns the layer's
    mapping."""
    x, y = xs[0], ys[0]
    weight = op.output_channel_major(cq.weight)  # (K, C/groups, R, S), not flipped
    k, cg = weight.shape[:2]
    rows = axis_phases(
        x.height, y.height, op.kernel[0], op.stride[0], op.padding[0], op.dilation[0]
    )
    cols = axis_phases(x.width, y.width, op.kernel[1], op.stride[1], op.padding[2], op.dilation[1])
    mappings = []
    empty = 0
    for ph in rows:
        for pw in cols:
            phase = Phase(ph.start, pw.start, op.stride)
            if ph.taps and pw.taps:
                sub = weight[:, :, list(ph.taps[::-1])][:, :, :, list(pw.taps[::-1])]
                window = Window(
                    (len(ph.taps), len(pw.taps)),
                    (1, 1),
                    (ph.dilation, pw.dilation),
                    (ph.pad, ph.pad_end, pw.pad, pw.pad_end),
                )
            else:  # no tap reaches these pixels: the bias alone
                empty += 1
                sub = np.zeros((k, cg, 1, 1), dtype=np.int8)
                window = Window()
            mappings.append(
                lower_conv(
                    em,
                    node,
                    xs,
                    ys,
                    np.ascontiguousarray(sub),
                    window,
                    op.groups,
                    cq,
                    phase=phase,
                    out_hw=(ph.count, pw.count),
                )
            )
    first = mappings[0]
    dataflow = {"dataflow": first["dataflow"]} if "dataflow" in first else {}
    return {
        "unit": "array",
        **dataflow,
        "phases": len(mappings),
        "bias-only phases": empty,
        "tile": first["tile"],
        "tiles": sum(m["tiles"] for m in mappings),
        "k_tiles": first["k_tiles"],
        "c_tiles": first["c_tiles"],
        "weights": "resident" if all(m["weights"] == "resident" for m in mappings) else "streamed",
        "channel_chunk": min(m["channel_chunk"] for m in mappings),
    }
