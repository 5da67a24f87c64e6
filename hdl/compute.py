# amaranth: UnusedElaboratable=no
# (Only the parts built in ComputeEngine.__init__ are created in this file: they are used
# exactly when the engine is, and an unused engine still warns where it was created.)
"""The compute engine: front end, weight loader, window generator, feeder, array or vector
unit, accumulator buffer.

It runs COMPUTE instructions exactly as :mod:`accel.timing` schedules them (and as
:mod:`sim.trace` steps them), with the arithmetic of :mod:`sim.array` / :mod:`sim.vector`.
The parts, each the mirror of the trace model's:

Front end
    Holds one instruction. It takes the next one (``i.valid & i.ready``, the instruction's
    ``start``; ``i.valid`` is the controller's grant, semaphores acquired) when it is empty or
    releases the one it holds in that very cycle: an ARRAY instruction once its last weight
    load is complete and its last pass has begun feeding (``max(wl[last] + rows, f[last])``),
    a vector instruction in the last cycle of its last pass's feed slot (``f[last] +
    max(T, VECTOR_MIN_PASS) - 1``). ``i.ready`` depends on registers only.
Weight loader (:class:`hdl.weight_loader.WeightLoader`)
    Reads the weight buffer one array row per cycle (``weight_rd``), for the front end's
    instruction, pass after pass: pass ``j``'s rows at ``w_base + j*rows + i`` in cycles
    ``wl[j] + i``; a pass begins when the loader is idle and the previous pass has begun
    feeding (``wl[j] = max(wl[j-1] + rows, f[j-1])``), the first one in the cycle its
    instruction is taken (``wl[0] = start``). The row reaches the array's shadow registers
    one cycle later (:data:`hdl.array.WEIGHT_READ_LATENCY`).
Window generator (:class:`hdl.window.WindowGenerator`)
    Gets each instruction from the front end (in the cycle it is taken if it is idle, else
    at the previous instruction's last word) and offers one input-buffer address per word.
Feeder
    In cycle ``D`` it takes the word on offer, to be fed in ``D + 1``: the input buffer
    (``input_rd``) is read in ``D``, the word (or ``pad_value`` in every lane) is on the array
    or the vector unit in ``D + 1``. Within a pass it takes a word every cycle; the first word
    of a pass waits until the pass may start: its weights have begun loading (``f >= wl +
    1``), its feed slot is free (``VECTOR_MIN_PASS`` after a vector pass; back-to-back words
    give ``f[j-1] + T`` by themselves), and, if the previous instruction used the other unit,
    that instruction is done (the units share the accumulator write port).
Array, vector unit, accumulator (:mod:`hdl.array`, :mod:`hdl.vector`, :mod:`hdl.accumulator`)
    Every fed word carries its accumulator row (``acc_base`` + pixel), whether it overwrites
    (first pass, ``accumulate`` off) and whether it is its instruction's last; through the
    array these travel in a delay line tapped at ``rows + c`` for column ``c``.

Timing (all :mod:`accel.timing`, ARRAY mode, for an instruction taken in ``start``)::

    wl[0] = start                           weight_rd reads row i of pass j in wl[j] + i
    f[j]  = first feed of pass j            input_rd reads its word in the cycle before
    column c of the word fed in t           exits the array in t + rows + c, RMW read there,
                                            written in t + rows + c + ACC_LATENCY
    done  = f[last] + T - 1 + rows + cols - 1 + ACC_LATENCY + 1

Vector modes: the word fed in ``t`` reads its row in ``t`` and writes it in ``t +
VECTOR_LATENCY``; ``done = f[last] + T - 1 + VECTOR_LATENCY + 1``.

``done`` pulses in exactly that cycle, the first in which the instruction's last accumulator
write is visible (``complete`` one cycle earlier, with the write); ``start`` pulses in the
cycle an instruction is taken. Instructions of the
same unit follow each other with no bubble, so several may be in flight; their ``done`` pulses
come in instruction order, never two in one cycle.

Ports
-----
i : In(stream.Signature(COMPUTE_LAYOUT))
    The instruction (:data:`hdl.isa.COMPUTE_LAYOUT`, bit-identical to
    :func:`accel.isa.encode`). ``valid``: the controller grants it (its semaphores are
    acquired in the cycle it is taken); ``ready``: the engine takes it this cycle if valid.
start, complete, done : Out(1)
    One-cycle pulses, one per instruction, in program order: the instruction is taken
    (``start``); its last accumulator write (``complete``, cycle ``done - 1``, the convention
    of :mod:`hdl.dma`'s ``complete``: a controller that increments the ``signal`` semaphores
    at the end of that cycle makes them visible in ``done``); its effects are visible
    (``done``).
input_rd : In(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), rows)))
    The input buffer's synchronous read port (data one cycle after the address).
weight_rd : In(ReadPort.Signature(weight_addr_bits, ArrayLayout(signed(8), cols)))
    The weight buffer's synchronous read port.
post_rd : Out(ReadPort.Signature(acc_addr_bits, ArrayLayout(signed(32), cols)))
    The accumulator buffer's POST read port.

Counts (``ct_count``, kernel sizes, ``out_h``, ``out_w``) must be >= 1, as for the window
generator; addresses wrap modulo each buffer's address width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out, connect, flipped

from accel import isa, timing
from accel.config import AccelConfig
from accel.isa import ComputeMode
from hdl._check import check_config
from hdl.accumulator import AccumulatorBuffer, acc_addr_bits
from hdl.array import SystolicArray
from hdl.isa import COMPUTE_LAYOUT
from hdl.vector import VectorUnit
from hdl.weight_loader import WeightLoader, weight_addr_bits
from hdl.window import WindowGenerator, addr_bits

__all__ = ["INPUT_READ_LATENCY", "ComputeEngine", "weight_addr_bits"]

#: Cycles from the input buffer read address to its data: the window generator issues the
#: address of the word fed in cycle ``f`` in cycle ``f - 1``.
INPUT_READ_LATENCY = 1

_WIDTH = {name: width for name, width, _ in isa.FIELDS[isa.Compute]}


def _feed_fields_layout(config: AccelConfig) -> data.StructLayout:
    """What the feeder needs of the instruction whose words it takes."""
    return data.StructLayout(
        {
            "mode": ComputeMode,
            "accumulate": 1,
            "acc_base": unsigned(acc_addr_bits(config)),
            "pad_value": signed(_WIDTH["pad_value"]),
            "zero_point_a": signed(_WIDTH["zero_point_a"]),
            "zero_point_b": signed(_WIDTH["zero_point_b"]),
            "multiplier_a": signed(_WIDTH["multiplier_a"]),
            "shift_a": unsigned(_WIDTH["shift_a"]),
            "multiplier_b": signed(_WIDTH["multiplier_b"]),
            "shift_b": unsigned(_WIDTH["shift_b"]),
            "parity": 1,  # tells the front end's instruction from the one before it
        }
    )


def _fed_layout(config: AccelConfig) -> data.StructLayout:
    """A word between the feeder's decision (cycle D) and its feed (D + 1), without ``x``."""
    return data.StructLayout(
        {
            "vector": 1,
            "pad": 1,
            "switch": 1,  # first word of a pass
            "last": 1,  # last word of its instruction
            "acc_row": unsigned(acc_addr_bits(config)),
            "overwrite": 1,
            "pad_value": signed(_WIDTH["pad_value"]),
            "mode": ComputeMode,
            "zero_point": signed(_WIDTH["zero_point_a"]),
            "multiplier": signed(_WIDTH["multiplier_a"]),
            "shift": unsigned(_WIDTH["shift_a"]),
        }
    )


def _meta_layout(config: AccelConfig) -> data.StructLayout:
    """What travels beside a word through the array."""
    return data.StructLayout(
        {"acc_row": unsigned(acc_addr_bits(config)), "overwrite": 1, "last": 1}
    )


class ComputeEngine(wiring.Component):
    """The COMPUTE engine, cycle-exact to :func:`accel.timing.compute_timing`.

    Parameters
    ----------
    config : AccelConfig
        Array size, data widths, and the input, weight and accumulator buffer sizes.
    acc_init : array_like of int, shape (depth, cols), optional
        Initial accumulator contents (see :class:`~hdl.accumulator.AccumulatorBuffer`).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If ``acc_init`` is malformed, or a pipeline constant of :mod:`accel.timing` no longer
        matches the blocks (see :class:`~hdl.accumulator.AccumulatorBuffer`,
        :class:`~hdl.vector.VectorUnit`).
    """

    def __init__(
        self, config: AccelConfig, *, acc_init: Sequence | np.ndarray | None = None
    ) -> None:
        self._config = check_config(config)
        rows, cols = config.array.rows, config.array.cols
        d = config.data
        self._window = WindowGenerator(config)
        self._array = SystolicArray(config)
        self._vector = VectorUnit(config)
        self._accumulator = AccumulatorBuffer(config, init=acc_init)
        super().__init__(
            {
                "i": In(stream.Signature(COMPUTE_LAYOUT)),
                "start": Out(1),
                "complete": Out(1),
                "done": Out(1),
                "input_rd": In(
                    ReadPort.Signature(
                        addr_width=addr_bits(config),
                        shape=data.ArrayLayout(signed(d.act_bits), rows),
                    )
                ),
                "weight_rd": In(
                    ReadPort.Signature(
                        addr_width=weight_addr_bits(config),
                        shape=data.ArrayLayout(signed(d.weight_bits), cols),
                    )
                ),
                "post_rd": Out(
                    ReadPort.Signature(
                        addr_width=acc_addr_bits(config),
                        shape=data.ArrayLayout(signed(d.acc_bits), cols),
                    )
                ),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def window(self) -> WindowGenerator:
        return self._window

    @property
    def array(self) -> SystolicArray:
        return self._array

    @property
    def vector(self) -> VectorUnit:
        return self._vector

    @property
    def accumulator(self) -> AccumulatorBuffer:
        return self._accumulator

    @property
    def array_latency(self) -> int:
        """``done`` minus the last feed cycle in ARRAY mode."""
        a = self._config.array
        return a.rows + a.cols - 1 + timing.ACC_LATENCY + 1

    @property
    def vector_latency(self) -> int:
        """``done`` minus the last feed cycle in vector modes."""
        return timing.VECTOR_LATENCY + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        config = self._config
        rows, cols = config.array.rows, config.array.cols
        m.submodules.window = wg = self._window
        m.submodules.array = array = self._array
        m.submodules.vector = vec = self._vector
        m.submodules.accumulator = acc = self._accumulator
        m.submodules.loader = loader = WeightLoader(config)

        # ---- front end --------------------------------------------------------------------
        held = Signal(COMPUTE_LAYOUT, reset_less=True)
        held_valid = Signal()
        parity = Signal()  # toggles per instruction taken
        given = Signal()  # `held` went to the window generator in an earlier cycle
        last_pass_fed = Signal()  # the held instruction's last pass has begun feeding
        last_word_fed = Signal()  # ... and its last word has been fed
        gap = Signal(range(max(timing.VECTOR_MIN_PASS, 2)))  # vector feed slot still busy
        drain = Signal(range(max(self.array_latency, self.vector_latency) + 1))
        last_vector = Signal()  # the unit of the last pass fed

        held_vector = held.mode != ComputeMode.ARRAY
        release = held_valid & Mux(
            held_vector,
            last_word_fed & (gap == 0),
            loader.i.loaded & last_pass_fed,
        )
        m.d.comb += self.i.ready.eq(~held_valid | release)
        take = Signal()
        m.d.comb += [take.eq(self.i.valid & self.i.ready), self.start.eq(take)]
        front = Signal(COMPUTE_LAYOUT)  # the front end's instruction in this cycle
        m.d.comb += front.eq(Mux(take, self.i.payload, held))
        front_parity = parity ^ take

        # ---- window generator hand-over ---------------------------------------------------
        m.d.comb += [
            wg.i.valid.eq(take | (held_valid & ~given)),
            wg.i.payload.eq(front),
        ]
        wg_accept = wg.i.valid & wg.i.ready
        # Which instruction the word on offer belongs to: the one the window generator is
        # walking (`inflight`), or, when it is idle, the one it accepts now.
        inflight = Signal()
        feed_fields = Signal(_feed_fields_layout(config), reset_less=True)
        incoming = Signal(_feed_fields_layout(config))
        for name in _feed_fields_layout(config).members:
            if name != "parity":
                m.d.comb += getattr(incoming, name).eq(getattr(front, name))
        m.d.comb += incoming.parity.eq(front_parity)
        fields = Signal(_feed_fields_layout(config))
        m.d.comb += fields.eq(Mux(inflight, feed_fields, incoming))
        with m.If(wg_accept):
            m.d.sync += feed_fields.eq(incoming)

        # ---- weight loader ----------------------------------------------------------------
        m.d.comb += [
            loader.i.take.eq(take),
            loader.i.array.eq(
                Mux(take, self.i.payload.mode == ComputeMode.ARRAY, held_valid & ~held_vector)
            ),
            loader.i.instr.eq(front),
        ]
        connect(m, flipped(self.weight_rd), loader.weight_rd)
        connect(m, loader.w, array.w)

        # ---- feeder: cycle D, decide ------------------------------------------------------
        word = wg.o.payload
        word_vector = fields.mode != ComputeMode.ARRAY
        unit_free = (word_vector == last_vector) | (drain == 0)
        pass_may_start = Mux(word_vector, gap == 0, loader.weights.valid) & unit_free
        m.d.comb += wg.o.ready.eq(~word.pass_start | pass_may_start)
        took = Signal()  # a word is taken: it is fed in the next cycle
        m.d.comb += took.eq(wg.o.valid & wg.o.ready)
        word_last = word.pass_end & word.last_pass
        word_is_front = fields.parity == front_parity
        pass_begins = took & word.pass_start

        with m.If(took & word_last):
            m.d.sync += drain.eq(Mux(word_vector, self.vector_latency - 1, self.array_latency - 1))
        with m.Elif(drain != 0):
            m.d.sync += drain.eq(drain - 1)
        with m.If(pass_begins):
            m.d.sync += [
                last_vector.eq(word_vector),
                gap.eq(Mux(word_vector, timing.VECTOR_MIN_PASS - 1, 0)),
            ]
        with m.Elif(gap != 0):
            m.d.sync += gap.eq(gap - 1)
        m.d.comb += loader.weights.ready.eq(pass_begins & ~word_vector)

        # Front end bookkeeping.
        m.d.sync += [
            last_pass_fed.eq(
                (last_pass_fed & ~take) | (pass_begins & word.last_pass & word_is_front)
            ),
            last_word_fed.eq((last_word_fed & ~take) | (took & word_last & word_is_front)),
        ]
        with m.If(take):
            m.d.sync += [held.eq(self.i.payload), held_valid.eq(1), parity.eq(~parity)]
        with m.Elif(release):
            m.d.sync += held_valid.eq(0)
        with m.If(take):
            m.d.sync += given.eq(wg_accept)
        with m.Elif(wg_accept):
            m.d.sync += given.eq(1)
        ends = took & word_last  # the walked instruction's last word leaves the generator
        m.d.sync += inflight.eq(Mux(inflight, ~ends | wg_accept, wg_accept & ~ends))

        # The word's accumulator row and operands.
        acc_row = Signal(acc_addr_bits(config), reset_less=True)  # row of the last word taken
        row_now = Mux(word.pass_start, fields.acc_base, acc_row + 1)
        with m.If(took):
            m.d.sync += acc_row.eq(row_now)
        operand_b = (fields.mode == ComputeMode.VADD) & ~word.first_pass
        fed = Signal(_fed_layout(config), reset_less=True)
        fed_valid = Signal()
        m.d.sync += [
            fed_valid.eq(took),
            fed.vector.eq(word_vector),
            fed.pad.eq(word.pad),
            fed.switch.eq(word.pass_start),
            fed.last.eq(word_last),
            fed.acc_row.eq(row_now),
            fed.overwrite.eq(word.first_pass & ~fields.accumulate),
            fed.pad_value.eq(fields.pad_value),
            fed.mode.eq(fields.mode),
            fed.zero_point.eq(Mux(operand_b, fields.zero_point_b, fields.zero_point_a)),
            fed.multiplier.eq(Mux(operand_b, fields.multiplier_b, fields.multiplier_a)),
            fed.shift.eq(Mux(operand_b, fields.shift_b, fields.shift_a)),
        ]
        # Padding is produced, not read.
        assert INPUT_READ_LATENCY == 1
        m.d.comb += [
            self.input_rd.en.eq(took & ~word.pad),
            self.input_rd.addr.eq(word.addr),
        ]

        # ---- feeder: cycle D + 1, feed ----------------------------------------------------
        x = Signal(data.ArrayLayout(signed(config.data.act_bits), rows))
        for lane in range(rows):
            m.d.comb += x[lane].eq(Mux(fed.pad, fed.pad_value, self.input_rd.data[lane]))
        m.d.comb += [
            array.i.valid.eq(fed_valid & ~fed.vector),
            array.i.payload.x.eq(x),
            array.i.payload.switch.eq(fed.switch),
            vec.i.valid.eq(fed_valid & fed.vector),
            vec.i.payload.x.eq(x),
            vec.i.payload.mode.eq(fed.mode),
            vec.i.payload.overwrite.eq(fed.overwrite),
            vec.i.payload.zero_point.eq(fed.zero_point),
            vec.i.payload.multiplier.eq(fed.multiplier),
            vec.i.payload.shift.eq(fed.shift),
            acc.v_rd.valid.eq(fed_valid & fed.vector),
            acc.v_rd.payload.addr.eq(fed.acc_row),
            vec.acc.eq(acc.v_acc),
            acc.v_wr.valid.eq(vec.o.valid),
            acc.v_wr.payload.eq(vec.o.payload),
        ]

        # ---- array exits -> accumulator ---------------------------------------------------
        # The word's row, overwrite bit and last mark travel beside it; column c exits
        # `rows + c` cycles after the feed.
        meta = [Signal(_meta_layout(config), name="meta_d0")]
        m.d.comb += [
            meta[0].acc_row.eq(fed.acc_row),
            meta[0].overwrite.eq(fed.overwrite),
            meta[0].last.eq(fed.last),
        ]
        for k in range(1, rows + cols):
            reg = Signal(_meta_layout(config), name=f"meta_d{k}", reset_less=True)
            m.d.sync += reg.eq(meta[-1])
            meta.append(reg)
        for c in range(cols):
            tap = meta[rows + c]
            m.d.comb += [
                acc.a[c].valid.eq(array.o[c].valid),
                acc.a[c].payload.addr.eq(tap.acc_row),
                acc.a[c].payload.overwrite.eq(tap.overwrite),
                acc.a[c].payload.sum.eq(array.o[c].payload),
            ]
        connect(m, flipped(self.post_rd), acc.post)

        # ---- complete, done ---------------------------------------------------------------
        # The instruction's last accumulator write (`complete`): ARRAY, ACC_LATENCY after the
        # last column of the last word exits; vector, VECTOR_LATENCY after the last feed. It
        # is visible one cycle later (`done`).
        def delayed(value, cycles: int, name: str):
            for k in range(cycles):
                reg = Signal(name=f"{name}_d{k + 1}")
                m.d.sync += reg.eq(value)
                value = reg
            return value

        array_complete = delayed(
            array.o[cols - 1].valid & meta[rows + cols - 1].last,
            timing.ACC_LATENCY,
            "array_complete",
        )
        vector_complete = delayed(
            fed_valid & fed.vector & fed.last, timing.VECTOR_LATENCY, "vector_complete"
        )
        m.d.comb += self.complete.eq(array_complete | vector_complete)
        m.d.sync += self.done.eq(self.complete)
        return m
