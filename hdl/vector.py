"""The vector unit: VMAX, VSUM, VADD and VMUL, ``min(rows, cols)`` lanes, pipelined.

Per lane ``k < lanes`` (``lanes = min(rows, cols)``), for the input word ``x`` (int8) and the
accumulator row ``acc`` (int32) it replaces, bit-exact to :func:`sim.vector.vector_result`::

    VMAX  term = x                                         new = max(acc, term)
    VSUM  term = x - zero_point                            new = acc + term   (wraps)
    VADD  term = RDBPOT(SRDHM((x - zero_point) << ADD_LEFT_SHIFT, multiplier), shift)
                                                           new = acc + term   (wraps)
    VMUL  term = x - zero_point                            new = acc[8:0] * term
    (VADD with ``mul``)

and ``new = term`` instead when ``overwrite`` is set (the first pass of an instruction whose
``accumulate`` is off). Lanes ``k >= lanes`` are written as zero. In VADD the compute engine
presents operand a's ``zero_point_a`` / ``multiplier_a`` / ``shift_a`` on the first pass and
operand b's on the second; in VSUM ``zero_point_a`` on every pass. VMUL's first pass
overwrites (its ``accumulate`` is 0), so the row its second pass reads holds ``x_a - za``,
which fits the 9-bit signed low bits the product takes: one 9x9 multiplier per lane, the
result exact (``|new| <= 255**2``).

Arithmetic. ``SRDHM`` and ``RDBPOT`` are the post-processor's gemmlowp primitives
(:mod:`hdl.postproc`, exact for every int32 input). ``(x - zero_point) << 20`` is at most
``255 * 2**20 < 2**28`` in magnitude, so SRDHM never saturates here, and its result is below
``2**28`` too. The instruction's 32-bit multiplier field is read as two's-complement int32
(the model accepts ``[0, 2**31)``, where both readings agree). Its 6-bit shift field is
used as ``min(shift, 31)``: the model accepts ``[0, 31]``; above that gemmlowp's definition
gives 0 for every ``|value| < 2**30``, which is also what 31 gives.

Timing (:data:`accel.timing.VECTOR_LATENCY` = 5). The word is on ``i`` in the cycle ``t`` it is
fed, when the compute engine also issues the accumulator read of its row; the row is on
``acc`` in ``t + 1`` and waits in registers beside its word; the result is on ``o`` in ``t + 5``,
the cycle the accumulator writes it:

====== ==========================================================================
cycle  work (registered at the end of the cycle)
====== ==========================================================================
t      ``x - zero_point`` (VSUM, VADD, VMUL) or ``x`` (VMAX)
t + 1  VADD: the two 18x18 partial products of ``(x - zero_point) * multiplier``
t + 2  VADD: their sum, rounded: SRDHM(...); the rounding shift's two nudges
t + 3  VADD: the rounding shift, one add and one shift
t + 4  combine with ``acc`` (max / add / VMUL's 9x9 product / overwrite)
t + 5  ``o`` (the accumulator's write port)
====== ==========================================================================

Every field travels with its word, so words of different passes and instructions may follow
each other in consecutive cycles.

Ports
-----
i : In(stream.Signature(VectorInput), always ready)
    ``x`` (``rows`` int8 lanes), ``mode`` (:class:`~accel.isa.ComputeMode`, not ARRAY),
    ``overwrite``, ``mul`` (VADD: the product), ``zero_point`` (int8), ``multiplier`` (int32),
    ``shift`` (6 bits).
acc : In(ArrayLayout(signed(32), cols))
    The accumulator row of the word on ``i`` one cycle earlier.
o : Out(stream.Signature(ArrayLayout(signed(32), cols)), always ready)
    The new accumulator row.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accel import isa, numerics, timing
from accel.config import AccelConfig
from accel.isa import ComputeMode
from hdl._check import check_config
from hdl.postproc import _rounding_nudges

__all__ = ["STAGES", "VectorUnit", "vector_input_layout"]

#: Register stages of the unit: ``i`` in cycle ``t``, ``o`` in ``t + STAGES``.
STAGES = 5

_WIDTH = {name: width for name, width, _ in isa.FIELDS[isa.Compute]}
#: SRDHM(v << ADD_LEFT_SHIFT, M) = floor((v * M + 2**(_DROP - 1)) / 2**_DROP).
_DROP = 31 - numerics.ADD_LEFT_SHIFT
assert 0 < _DROP <= 16


def vector_input_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of :class:`VectorUnit`'s input: one fed word and how to combine it."""
    rows = check_config(config).array.rows
    return data.StructLayout(
        {
            "x": data.ArrayLayout(signed(config.data.act_bits), rows),
            "mode": ComputeMode,
            "overwrite": 1,
            "mul": 1,
            "zero_point": signed(_WIDTH["zero_point_a"]),
            "multiplier": signed(_WIDTH["multiplier_a"]),
            "shift": unsigned(_WIDTH["shift_a"]),
        }
    )


def _scaled(stage) -> object:
    """The stage's word is a VADD term (scaled by its multiplier), not VMUL's plain one."""
    return (stage.mode == ComputeMode.VADD) & ~stage.mul


class VectorUnit(wiring.Component):
    """Max / zero-point-corrected sum / gemmlowp add of one word into one accumulator row.

    Parameters
    ----------
    config : AccelConfig
        ``min(config.array.rows, config.array.cols)`` lanes, ``cols`` accumulator lanes.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If :data:`accel.timing.VECTOR_LATENCY` is not :data:`STAGES` (the contract changed;
        the pipeline must be re-cut).
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = check_config(config)
        if timing.VECTOR_LATENCY != STAGES:
            raise ValueError(
                f"accel.timing.VECTOR_LATENCY = {timing.VECTOR_LATENCY}, but the vector unit "
                f"has {STAGES} stages"
            )
        cols = config.array.cols
        acc = data.ArrayLayout(signed(config.data.acc_bits), cols)
        super().__init__(
            {
                "i": In(stream.Signature(vector_input_layout(config), always_ready=True)),
                "acc": In(acc),
                "o": Out(stream.Signature(acc, always_ready=True)),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def lanes(self) -> int:
        """``min(rows, cols)``: the lanes that compute; the others are written as zero."""
        return min(self._config.array.rows, self._config.array.cols)

    @property
    def latency(self) -> int:
        """Cycles from a word on ``i`` to its result on ``o`` (``VECTOR_LATENCY``)."""
        return STAGES

    def elaborate(self, platform) -> Module:
        m = Module()
        bits = self._config.data.acc_bits
        cols = self._config.array.cols
        lanes = self.lanes
        word = self.i.payload
        diff_bits = self._config.data.act_bits + 1
        diff_shape = signed(diff_bits)  # x - zp, or x (VMAX)

        def stage(name: str, fields: dict, per_lane: dict) -> Signal:
            layout = {"mode": ComputeMode, "overwrite": 1, "mul": 1, **fields}
            layout["lane"] = data.ArrayLayout(data.StructLayout(per_lane), lanes)
            return Signal(data.StructLayout(layout), name=name, reset_less=True)

        valid = [Signal(name=f"s{k}_valid") for k in range(1, STAGES + 1)]
        m.d.sync += [
            valid[0].eq(self.i.valid),
            *(valid[k].eq(valid[k - 1]) for k in range(1, STAGES)),
        ]
        s1 = stage("s1", {"shift": unsigned(5), "multiplier": signed(32)}, {"x": diff_shape})
        s2 = stage(
            "s2", {"shift": unsigned(5)}, {"x": diff_shape, "low": signed(27), "high": signed(26)}
        )
        # Stage 3 also holds the rounding shift's two nudges (``_rounding_nudges``), so stage
        # 4 is one add and one shift.
        s3 = stage(
            "s3",
            {"shift": unsigned(5), "half": unsigned(31), "below": unsigned(30)},
            {"term": signed(bits)},
        )
        s4 = stage("s4", {}, {"term": signed(bits)})
        s5 = Signal(data.ArrayLayout(signed(bits), cols), name="s5", reset_less=True)
        # The accumulator row arrives in t + 1 and waits beside its word for stage 5.
        acc = [self.acc]
        for k in (2, 3, 4):
            reg = Signal.like(self.acc, name=f"acc_d{k}", reset_less=True)
            m.d.sync += reg.eq(acc[-1])
            acc.append(reg)
        for prev, nxt in ((s1, s2), (s2, s3), (s3, s4)):
            m.d.sync += [
                nxt.mode.eq(prev.mode),
                nxt.overwrite.eq(prev.overwrite),
                nxt.mul.eq(prev.mul),
            ]
        for prev, nxt in ((s1, s2), (s2, s3)):
            m.d.sync += nxt.shift.eq(prev.shift)
        half, below = _rounding_nudges(s2.shift)
        m.d.sync += [s3.half.eq(half), s3.below.eq(below)]

        # Stage 1 (cycle t): x - zero_point (VSUM, VADD) or x (VMAX).
        m.d.sync += [
            s1.mode.eq(word.mode),
            s1.overwrite.eq(word.overwrite),
            s1.mul.eq(word.mul & (word.mode == ComputeMode.VADD)),  # VMUL is VADD with mul
            s1.shift.eq(Mux(word.shift > 31, 31, word.shift[:5])),
            s1.multiplier.eq(word.multiplier),
        ]
        for lane in range(lanes):
            m.d.sync += s1.lane[lane].x.eq(
                Mux(word.mode == ComputeMode.VMAX, word.x[lane], word.x[lane] - word.zero_point)
            )
        # Stage 2 (t + 1): SRDHM((x - zp) << 20, M) = floor(((x - zp) * M + 2**10) / 2**11)
        # (the shifted operand is far from INT32_MIN: no saturation); the product as two
        # 18x18 partial products, M = high * 2**16 + low with low unsigned.
        m_low, m_high = s1.multiplier[:16], s1.multiplier[16:].as_signed()
        for lane in range(lanes):
            x = s1.lane[lane].x
            m.d.sync += [
                s2.lane[lane].x.eq(x),
                s2.lane[lane].low.eq(x * m_low),
                s2.lane[lane].high.eq(x * m_high),
            ]
        # Stage 3 (t + 2): floor((high * 2**16 + low + 2**10) / 2**11) = high * 2**5 +
        # floor((low + 2**10) / 2**11), since high * 2**16 is a multiple of 2**11.
        for lane in range(lanes):
            p = s2.lane[lane]
            srdhm = (p.high << (16 - _DROP)) + ((p.low + (1 << (_DROP - 1))) >> _DROP)
            m.d.sync += s3.lane[lane].term.eq(Mux(_scaled(s2), srdhm, p.x))
        # Stage 4 (t + 3): the rounding shift (VADD), RDBPOT(term, e) = (term + nudge) >> e.
        for lane in range(lanes):
            term = s3.lane[lane].term
            nudge = Mux(term[bits - 1], s3.below, s3.half)
            m.d.sync += s4.lane[lane].term.eq(Mux(_scaled(s3), (term + nudge) >> s3.shift, term))
        # Stage 5 (t + 4): combine with the accumulator row (max / add / product / overwrite).
        for lane in range(cols):
            if lane >= lanes:
                m.d.sync += s5[lane].eq(Const(0, signed(bits)))
                continue
            term = s4.lane[lane].term
            old = acc[-1][lane]
            product = old[:diff_bits].as_signed() * term[:diff_bits].as_signed()
            combined = Mux(
                s4.mode == ComputeMode.VMAX,
                Mux(old > term, old, term),
                Mux(s4.mul, product, old + term),
            )  # the add wraps to int32 in the assignment
            m.d.sync += s5[lane].eq(Mux(s4.overwrite, term, combined))

        m.d.comb += [self.o.valid.eq(valid[-1]), self.o.payload.eq(s5)]
        return m
