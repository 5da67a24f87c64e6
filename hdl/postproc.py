"""The post-processor: one accumulator row per cycle -> one int8 output word.

REQUANT, per lane (``docs/numerics.md``, :func:`accel.numerics.requantize`,
:func:`sim.postproc.postprocess`)::

    total = wrap32(acc + bias)                       # the int32 adder wraps
    high  = SRDHM(total, multiplier)                 # saturates only INT32_MIN * INT32_MIN
    y     = RoundingDivideByPOT(high, shift)         # ties away from zero
    out   = clamp(y + out_zero_point, act_min, act_max)   # 34-bit add: never wraps

With ``prelu`` (REQUANT) a lane whose ``total`` is negative takes ``multiplier = (shift >>
10) << 10`` and ``shift = shift[9:5]`` of its parameter word instead (the negative side of a
PRelu, :func:`accel.numerics.pack_prelu_shift`): stage 1 registers the sign beside ``total``
and the whole parameter word, and a 2:1 select in front of stage 2's multipliers picks the
side, so no select sits behind the bias add's carry chain.

PASS: ``out = clamp(acc, act_min, act_max)``. The clamp is ``min(max(v, act_min), act_max)``,
``numpy.clip``'s order. With ``lut`` (either mode) the clamped value ``v`` is then replaced by
entry ``v + 128`` of table slot ``table`` (:class:`accel.isa.Post`).

Two identities make both roundings a single add and an arithmetic shift (checked bit for bit
against :mod:`accel.numerics` by the tests):

* gemmlowp's ``trunc((ab + nudge) / 2**31)`` with ``nudge = 2**30`` or ``1 - 2**30`` equals
  ``(ab + 2**30) >> 31`` (floor) for every ``ab``: for ``ab < 0`` the truncation toward zero
  adds ``2**31 - 1`` before flooring, which turns the nudge into ``2**30``.
* ``RoundingDivideByPOT(x, e)`` equals ``(x + (2**e >> 1) - (x < 0 and e > 0)) >> e``; with
  the zero point, ``RDBPOT(x, e) + zp = (x + (zp << e | (2**e >> 1) - (x < 0 and e > 0)))
  >> e``, the nudge an OR of registered values (:func:`_zero_point_nudges`).

Pipeline. Six register stages, ``PostProcessor.latency`` = ``POST_LATENCY -
ACC_READ_LATENCY``: a row presented on ``i`` in cycle ``t`` is on ``o`` in cycle ``t + 6``.
The first stage of :data:`accel.timing.POST_LATENCY` is the accumulator buffer's synchronous
read: the post engine issues row ``k``'s address in cycle ``start + k``, the row reaches ``i``
in ``start + k + 1`` and the output buffer's write port in ``start + k + POST_LATENCY``, so the
last write is visible in ``done = start + count + POST_LATENCY``.

====== =================================================================================
stage  work (registered at the end of the cycle)
====== =================================================================================
1      ``total = acc + bias`` (REQUANT) or ``acc`` (PASS); whether a PRelu lane is negative
2      the side's multiplier and shift (PRelu), the four 18x18 partial products of ``total *
       multiplier`` (PASS: ``* 2**31``)
3      their middle sum ``t = lh + hl + (ll >> 16) + 2**14``
4      ``high = 2 * hh + (t >> 15)`` = ``SRDHM(total, multiplier)``; beside it the two
       zero-point nudges, from registers
5      ``(high + nudge) >> shift`` = ``RDBPOT(high, shift) + out_zero_point`` (REQUANT) or
       ``high`` (PASS)
6      ``clamp(v)``: the compares with both bounds side by side (:func:`_clamp`)
(o)    with ``lut``: the table byte, read asynchronously from the stage-6 register
====== =================================================================================

Every field of the row travels with it, so rows of different instructions (different
parameters, mode, clamp) may follow each other in consecutive cycles.

Ports
-----
i : In(stream.Signature(PostRow), always ready)
    ``acc`` (``cols`` int32), ``params`` (the parameter word: per lane int32 ``bias``,
    ``multiplier``, ``shift``; bit-identical to the parameter buffer word, only ``shift[4:0]``
    is used, and with ``prelu`` its bits 5..31), and the POST instruction's ``mode``,
    ``out_zero_point``, ``act_min``, ``act_max``, ``lut``, ``table``, ``prelu``.
table : In(table_lookup_signature(config))
    The table buffer's lookup port (:class:`hdl.buffers.TableBuffer`'s ``post``): a byte
    address per lane from the stage-6 register, the bytes in the same cycle.
o : Out(stream.Signature(ArrayLayout(signed(8), cols)), always ready)
    The output word.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from accel import isa, timing
from accel.config import PARAM_LANE_BYTES, AccelConfig
from accel.isa import PostMode
from hdl._check import check_config

__all__ = [
    "ACC_READ_LATENCY",
    "PostProcessor",
    "param_lane_layout",
    "post_row_layout",
    "table_addr_bits",
    "table_lookup_signature",
]

#: Cycles from an accumulator buffer read address to its data (a synchronous SRAM port).
ACC_READ_LATENCY = 1
#: Register stages of the post-processor itself.
STAGES = 6
#: Width of the POST instruction's ``table`` field.
_TABLE_FIELD_BITS = {name: width for name, width, _ in isa.FIELDS[isa.Post]}["table"]

#: One lane of a parameter word, as the parameter buffer holds it (12 bytes, little-endian).
param_lane_layout = data.StructLayout(
    {"bias": signed(32), "multiplier": signed(32), "shift": signed(32)}
)
assert param_lane_layout.size == 8 * PARAM_LANE_BYTES


def table_addr_bits(config: AccelConfig) -> int:
    """Width of a byte address of the table buffer (``table_words * TABLE_WORD_BYTES`` bytes)."""
    return ceil_log2(config.table_words * isa.TABLE_WORD_BYTES)


def table_lookup_signature(config: AccelConfig) -> wiring.Signature:
    """The table buffer's lookup port, from the buffer's side: ``addr`` (a byte address per
    lane) and ``data`` (that byte, int8, per lane) in the same cycle ``t`` (an asynchronous
    read); a LOAD write of cycle ``t`` is not seen (it lands at the end of the cycle)."""
    cols = check_config(config).array.cols
    return wiring.Signature(
        {
            "addr": In(data.ArrayLayout(unsigned(table_addr_bits(config)), cols)),
            "data": Out(data.ArrayLayout(signed(8), cols)),
        }
    )


def post_row_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of :class:`PostProcessor`'s input: one accumulator row and how to process it."""
    cols = check_config(config).array.cols
    return data.StructLayout(
        {
            "acc": data.ArrayLayout(signed(config.data.acc_bits), cols),
            "params": data.ArrayLayout(param_lane_layout, cols),
            "mode": PostMode,
            "out_zero_point": signed(8),
            "act_min": signed(8),
            "act_max": signed(8),
            "lut": 1,
            "table": unsigned(_TABLE_FIELD_BITS),
            "prelu": 1,
        }
    )


def _srdhm(a, b, bits: int):
    """gemmlowp SaturatingRoundingDoublingHighMul of two ``bits``-bit signed values."""
    most_negative = -(1 << (bits - 1))
    high = (a * b + (1 << (bits - 2))) >> (bits - 1)
    return Mux((a == most_negative) & (b == most_negative), (1 << (bits - 1)) - 1, high[:bits])


def _rounding_nudges(exponent):
    """``half = 2**e >> 1`` and ``half - (e != 0)``: the nudges of a non-negative and a
    negative ``x`` in ``RDBPOT(x, e) = (x + nudge) >> e``, as compares of ``e`` with constants
    (no adder): bit ``e - 1``, and bits ``0 .. e - 2`` (``e <= 31``)."""
    half = Cat(*(exponent == j + 1 for j in range(31)))
    below = Cat(*(exponent > j + 1 for j in range(30)))
    return half, below


def _zero_point_nudges(zero_point, exponent):
    """``(zp << e) | half`` and ``(zp << e) | (half - (e != 0))``, ``half = 2**e >> 1``: the
    nudges of a non-negative and a negative ``x`` in ``RDBPOT(x, e) + zp = (x + nudge) >> e``.

    ``RDBPOT(x, e) = (x + half - (x < 0 and e > 0)) >> e`` and ``(y >> e) + zp = (y + zp *
    2**e) >> e`` (floor division by ``2**e``); ``half`` and ``half - 1`` have no bit at or
    above ``e`` and ``zp * 2**e`` none below it, so each sum is an OR: no adder, only
    compares of ``e`` with constants and a shift of the 8-bit ``zp``.
    """
    half, below = _rounding_nudges(exponent)
    high = zero_point.as_signed() << exponent  # signed, 8 + 31 bits
    return high | half, high | below


def _clamp(value, low, high):
    """``min(max(value, low), high)`` (``numpy.clip``'s order) for int8 ``low``, ``high``.

    The two compares of the whole ``value`` with the bounds run side by side (two carry
    chains in parallel, not one behind the other): below ``low`` gives ``low``, or ``high``
    if the bounds are inverted (``low > high``), above ``high`` gives ``high``, else
    ``value`` is between two int8 bounds and its low byte is the result.
    """
    return Mux(
        value < low,
        Mux(low > high, high, low),
        Mux(value > high, high, value[:8].as_signed()),
    )


class PostProcessor(wiring.Component):
    """Bias, gemmlowp requantisation, zero point and clamp, ``cols`` lanes, pipelined.

    Parameters
    ----------
    config : AccelConfig
        ``config.array.cols`` lanes; ``config.data`` widths (int32 accumulators, int8 out).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If :data:`accel.timing.POST_LATENCY` leaves other than :data:`STAGES` stages after the
        accumulator read (the contract changed; the pipeline must be re-cut).
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = check_config(config)
        stages = timing.POST_LATENCY - ACC_READ_LATENCY
        if stages != STAGES:
            raise ValueError(
                f"accel.timing.POST_LATENCY = {timing.POST_LATENCY} leaves {stages} stages after "
                f"the {ACC_READ_LATENCY}-cycle accumulator read; the post-processor has {STAGES}"
            )
        cols = config.array.cols
        super().__init__(
            {
                "i": In(stream.Signature(post_row_layout(config), always_ready=True)),
                "table": In(table_lookup_signature(config)),
                "o": Out(
                    stream.Signature(
                        data.ArrayLayout(signed(config.data.act_bits), cols), always_ready=True
                    )
                ),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def latency(self) -> int:
        """Cycles from a row on ``i`` to its word on ``o``."""
        return STAGES

    def elaborate(self, platform) -> Module:
        m = Module()
        cols = self._config.array.cols
        bits = self._config.data.acc_bits
        assert bits == 32  # the partial products below split int32 operands in halves
        row = self.i.payload

        # Each stage register holds what the later stages still need; the instruction fields
        # (requant, zero point, clamp) ride along every stage. Only the valid bits (control)
        # have a reset.
        common = {
            "requant": 1,
            "out_zero_point": signed(8),
            "act_min": signed(8),
            "act_max": signed(8),
            "lut": 1,
            "table": unsigned(_TABLE_FIELD_BITS),
        }

        def stage(name: str, lanes: dict) -> Signal:
            return Signal(
                data.StructLayout(
                    {**common, "lane": data.ArrayLayout(data.StructLayout(lanes), cols)}
                ),
                name=name,
                reset_less=True,
            )

        s1 = stage(
            "s1",
            {
                "total": signed(bits),
                "negative": 1,  # a PRelu lane's total is negative: the negative side
                "multiplier": signed(bits),
                "shift": signed(bits),  # the parameter word's, both sides' fields
            },
        )
        s2 = stage(
            "s2",
            {
                "ll": unsigned(32),  # aL * bL
                "lh": signed(34),  # aL * bH
                "hl": signed(33),  # aH * bL
                "hh": signed(33),  # aH * bH
                "saturate": 1,
                "shift": unsigned(5),
            },
        )
        s3 = stage("s3", {"hh": signed(33), "t": signed(36), "saturate": 1, "shift": unsigned(5)})
        s4 = stage(
            "s4",
            {
                "high": signed(bits),
                "shift": unsigned(5),
                "nudge": signed(39),
                "nudge_neg": signed(39),
            },
        )
        s5 = stage("s5", {"value": signed(bits + 2)})
        s6 = Signal(self.o.payload.shape(), name="s6", reset_less=True)
        s6_lut = Signal(name="s6_lut", reset_less=True)
        s6_table = Signal(unsigned(_TABLE_FIELD_BITS), name="s6_table", reset_less=True)
        m.d.sync += [s6_lut.eq(s5.lut), s6_table.eq(s5.table)]
        valid = [Signal(name=f"s{k}_valid") for k in range(1, STAGES + 1)]
        m.d.sync += [
            valid[0].eq(self.i.valid),
            *(valid[k].eq(valid[k - 1]) for k in range(1, STAGES)),
        ]

        requant = row.mode == PostMode.REQUANT
        m.d.sync += [
            s1.requant.eq(requant),
            s1.out_zero_point.eq(row.out_zero_point),
            s1.act_min.eq(row.act_min),
            s1.act_max.eq(row.act_max),
            s1.lut.eq(row.lut),
            s1.table.eq(row.table),
        ]
        for prev, nxt in ((s1, s2), (s2, s3), (s3, s4), (s4, s5)):
            m.d.sync += [getattr(nxt, name).eq(getattr(prev, name)) for name in common]
        most_negative = -(1 << (bits - 1))
        for lane in range(cols):
            param = row.params[lane]
            # Stage 1: the bias add wraps to int32. Its sign is registered, not used: the
            # accumulator's block RAM output and the carry chain fill the cycle.
            total = Signal(signed(bits), name=f"total_{lane}")
            m.d.comb += total.eq(Mux(requant, row.acc[lane] + param.bias, row.acc[lane]))
            m.d.sync += [
                s1.lane[lane].total.eq(total),
                s1.lane[lane].negative.eq(requant & row.prelu & total[bits - 1]),
                s1.lane[lane].multiplier.eq(param.multiplier),
                s1.lane[lane].shift.eq(param.shift),
            ]
            # Stage 2: a PRelu's negative lanes take the negative-side multiplier (bits
            # 10..31, low bits 0) and shift (bits 5..9); then the four partial products of
            # total * multiplier, each an 18x18 DSP multiply: a = aH * 2**16 + aL, b = bH *
            # 2**16 + bL with aL, bL unsigned. PASS multiplies by 2**31 (bH = 2**15, bL = 0),
            # for which the rounding below returns ``total`` itself.
            p1 = s1.lane[lane]
            a = p1.total
            b = Signal(signed(bits), name=f"multiplier_{lane}")
            m.d.comb += b.eq(Mux(p1.negative, Cat(Const(0, 10), p1.shift[10:32]), p1.multiplier))
            a_low, a_high = a[:16], a[16:].as_signed()
            b_low = Mux(s1.requant, b[:16], 0)
            b_high = Signal(signed(17), name=f"b_high_{lane}")
            m.d.comb += b_high.eq(Mux(s1.requant, b[16:].as_signed(), 1 << 15))
            m.d.sync += [
                s2.lane[lane].ll.eq(a_low * b_low),
                s2.lane[lane].lh.eq(a_low * b_high),
                s2.lane[lane].hl.eq(a_high * b_low),
                s2.lane[lane].hh.eq(a_high * b_high),
                s2.lane[lane].saturate.eq(s1.requant & (a == most_negative) & (b == most_negative)),
                s2.lane[lane].shift.eq(Mux(p1.negative, p1.shift[5:10], p1.shift[:5])),
            ]
            # Stage 3: SRDHM = floor((ab + 2**30) / 2**31) with ab = hh * 2**32 + (lh + hl) *
            # 2**16 + ll. The low 16 bits of ``ll + 2**30`` cannot carry past 2**16 once the
            # rest is a multiple of 2**16, so t = lh + hl + (ll >> 16) + 2**14 carries it all.
            p2 = s2.lane[lane]
            m.d.sync += [
                s3.lane[lane].t.eq(p2.lh + p2.hl + (p2.ll >> 16) + (1 << 14)),
                s3.lane[lane].hh.eq(p2.hh),
                s3.lane[lane].saturate.eq(p2.saturate),
                s3.lane[lane].shift.eq(p2.shift),
            ]
            # Stage 4: floor((hh * 2**16 + t) / 2**15) = 2 * hh + (t >> 15); only
            # INT32_MIN * INT32_MIN leaves int32 (gemmlowp saturates it). Beside it, from
            # registers only, the two nudges of stage 5 (``_zero_point_nudges``).
            p3 = s3.lane[lane]
            high = (p3.hh * 2 + (p3.t >> 15))[:bits]
            nudge, nudge_neg = _zero_point_nudges(s3.out_zero_point, p3.shift)
            m.d.sync += [
                s4.lane[lane].high.eq(Mux(p3.saturate, (1 << (bits - 1)) - 1, high)),
                s4.lane[lane].shift.eq(p3.shift),
                s4.lane[lane].nudge.eq(nudge),
                s4.lane[lane].nudge_neg.eq(nudge_neg),
            ]
            # Stage 5: the rounding shift and the zero point in one add and one shift,
            # RDBPOT(x, e) + zp = (x + nudge) >> e (REQUANT); PASS passes ``high`` through.
            p4 = s4.lane[lane]
            x = p4.high
            shifted = (x + Mux(x[bits - 1], p4.nudge_neg, p4.nudge)) >> p4.shift
            m.d.sync += s5.lane[lane].value.eq(Mux(s4.requant, shifted[: bits + 2].as_signed(), x))
            # Stage 6: the clamp, both compares side by side (``_clamp``).
            clamped = _clamp(s5.lane[lane].value, s5.act_min, s5.act_max)
            m.d.sync += s6[lane].eq(clamped)

        # The table lookup after the stage-6 register: byte table * 256 + v + 128 (v is an
        # int8; + 128 flips its sign bit), read asynchronously in the cycle ``o`` shows s6, so
        # no carry chain of stage 6 sits in front of the table RAM. After the last register
        # there is logic on the way to the output buffer's write port: the table RAM read,
        # its byte select and this 2:1 mux per lane (the price of a table at no cycle).
        output = Signal.like(s6, name="output")
        for lane in range(cols):
            m.d.comb += [
                self.table.addr[lane].eq(Cat(s6[lane][:7], ~s6[lane][7], s6_table)),
                output[lane].eq(Mux(s6_lut, self.table.data[lane], s6[lane])),
            ]
        m.d.comb += [self.o.valid.eq(valid[-1]), self.o.payload.eq(output)]
        return m
