"""The vector unit: VMAX, VSUM and VADD, ``min(rows, cols)`` lanes, pipelined.

Per lane ``k < lanes`` (``lanes = min(rows, cols)``), for the input word ``x`` (int8) and the
accumulator row ``acc`` (int32) it replaces, bit-exact to :func:`sim.vector.vector_result`::

    VMAX  term = x                                         new = max(acc, term)
    VSUM  term = x - zero_point                            new = acc + term   (wraps)
    VADD  term = RDBPOT(SRDHM((x - zero_point) << ADD_LEFT_SHIFT, multiplier), shift)
                                                           new = acc + term   (wraps)

and ``new = term`` instead when ``overwrite`` is set (the first pass of an instruction whose
``accumulate`` is off). Lanes ``k >= lanes`` are written as zero. In VADD the compute engine
presents operand a's ``zero_point_a`` / ``multiplier_a`` / ``shift_a`` on the first pass and
operand b's on the second; in VSUM ``zero_point_a`` on every pass.

Arithmetic. ``SRDHM`` and ``RDBPOT`` are the post-processor's gemmlowp primitives
(:mod:`hdl.postproc`, exact for every int32 input). ``(x - zero_point) << 20`` is at most
``255 * 2**20 < 2**28`` in magnitude, so SRDHM never saturates here, and its result is below
``2**28`` too. The instruction's 32-bit multiplier field is read as two's-complement int32
(the model accepts ``[0, 2**31)``, where both readings agree). Its 6-bit shift field is
used as ``min(shift, 31)``: the model accepts ``[0, 31]``; above that gemmlowp's definition
gives 0 for every ``|value| < 2**30``, which is also what 31 gives.

Timing (:data:`accel.timing.VECTOR_LATENCY` = 2). The word is on ``i`` in the cycle ``t`` it is
fed, when the compute engine also issues the accumulator read of its row; the row is on
``acc`` in ``t + 1``; the result is on ``o`` in ``t + 2``, the cycle the accumulator writes it:

====== ==========================================================================
cycle  work (registered at the end of the cycle)
====== ==========================================================================
t      ``term`` before the rounding shift: ``x``, ``x - zero_point`` or SRDHM(...)
t + 1  rounding shift (VADD), combine with ``acc`` (max / add / overwrite)
t + 2  ``o`` (the accumulator's write port)
====== ==========================================================================

Every field travels with its word, so words of different passes and instructions may follow
each other in consecutive cycles.

Ports
-----
i : In(stream.Signature(VectorInput), always ready)
    ``x`` (``rows`` int8 lanes), ``mode`` (:class:`~accel.isa.ComputeMode`, not ARRAY),
    ``overwrite``, ``zero_point`` (int8), ``multiplier`` (int32), ``shift`` (6 bits).
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
from hdl.postproc import _rounding_divide_by_pot, _srdhm

__all__ = ["STAGES", "VectorUnit", "vector_input_layout"]

#: Register stages of the unit: ``i`` in cycle ``t``, ``o`` in ``t + STAGES``.
STAGES = 2

_WIDTH = {name: width for name, width, _ in isa.FIELDS[isa.Compute]}


def vector_input_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of :class:`VectorUnit`'s input: one fed word and how to combine it."""
    rows = check_config(config).array.rows
    return data.StructLayout(
        {
            "x": data.ArrayLayout(signed(config.data.act_bits), rows),
            "mode": ComputeMode,
            "overwrite": 1,
            "zero_point": signed(_WIDTH["zero_point_a"]),
            "multiplier": signed(_WIDTH["multiplier_a"]),
            "shift": unsigned(_WIDTH["shift_a"]),
        }
    )


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
        word = self.i.payload

        # Stage 1: everything that does not need the accumulator row.
        s1_valid = Signal()
        s1 = Signal(
            data.StructLayout(
                {
                    "mode": ComputeMode,
                    "overwrite": 1,
                    "shift": unsigned(5),
                    "term": data.ArrayLayout(signed(bits), self.lanes),
                }
            ),
            reset_less=True,
        )
        shift = Mux(word.shift > 31, 31, word.shift[:5])
        m.d.sync += [
            s1_valid.eq(self.i.valid),
            s1.mode.eq(word.mode),
            s1.overwrite.eq(word.overwrite),
            s1.shift.eq(shift),
        ]
        for lane in range(self.lanes):
            diff = Signal(signed(bits), name=f"diff_{lane}")  # x - zp, sign-extended
            shifted = Signal(signed(bits), name=f"shifted_{lane}")  # (x - zp) << 20
            m.d.comb += [
                diff.eq(word.x[lane] - word.zero_point),
                shifted.eq(diff << numerics.ADD_LEFT_SHIFT),
            ]
            with m.Switch(word.mode):
                with m.Case(ComputeMode.VADD):
                    m.d.sync += s1.term[lane].eq(_srdhm(shifted, word.multiplier, bits))
                with m.Case(ComputeMode.VSUM):
                    m.d.sync += s1.term[lane].eq(diff)
                with m.Default():  # VMAX
                    m.d.sync += s1.term[lane].eq(word.x[lane])

        # Stage 2: the rounding shift and the read-modify-write with the accumulator row.
        s2_valid = Signal()
        s2 = Signal(data.ArrayLayout(signed(bits), cols), reset_less=True)
        m.d.sync += s2_valid.eq(s1_valid)
        for lane in range(cols):
            if lane >= self.lanes:
                m.d.sync += s2[lane].eq(Const(0, signed(bits)))
                continue
            term = Signal(signed(bits), name=f"term_{lane}")
            acc = self.acc[lane]
            m.d.comb += term.eq(
                Mux(
                    s1.mode == ComputeMode.VADD,
                    _rounding_divide_by_pot(s1.term[lane], s1.shift),
                    s1.term[lane],
                )
            )
            combined = Mux(
                s1.mode == ComputeMode.VMAX, Mux(acc > term, acc, term), acc + term
            )  # the add wraps to int32 in the assignment
            m.d.sync += s2[lane].eq(Mux(s1.overwrite, term, combined))

        m.d.comb += [self.o.valid.eq(s2_valid), self.o.payload.eq(s2)]
        return m
