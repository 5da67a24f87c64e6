# amaranth: UnusedElaboratable=no
# (Only the parts built in ComputeEngine.__init__ are created in this file: they are used
# exactly when the engine is, and an unused engine still warns where it was created.)
"""The compute engine: front end, weight loader, window generator, feeder, array or vector
unit, accumulator buffer.

It runs COMPUTE instructions exactly as :mod:`accel.timing` schedules them (and as
:mod:`sim.trace` steps them), with the arithmetic of :mod:`sim.array` / :mod:`sim.vector`.
The parts, each the mirror of the trace model's, are components that
:class:`ComputeEngine` joins with :func:`~amaranth.lib.wiring.connect`; each states its
ports and its timing contract:

Instruction register
    The grant (``start``, the handshake on ``i``) lands in a register; the front end takes
    the instruction from it (``take``) no earlier than the next cycle
    (:data:`accel.timing.COMPUTE_DECODE`), and the register accepts the next grant in the
    cycle it hands one on. Nothing combinational runs from the controller's grant into the
    engine.
Front end (:class:`hdl.front_end.FrontEnd`)
    Holds one instruction: takes the next one (``take``) when it is empty or releases the
    one it holds in that very cycle, an ARRAY instruction at ``max(wl[last] + rows,
    f[last])``, a vector instruction at ``f[last] + max(T, VECTOR_MIN_PASS) - 1``.
Weight loader (:class:`hdl.weight_loader.WeightLoader`)
    Loads one array row per cycle for the front end's instruction, pass after pass: pass
    ``j``'s rows at ``w_base + j*rows + i`` are due in cycles ``wl[j] + i``, with ``wl[0] =
    take`` and ``wl[j] = max(wl[j-1] + rows, f[j-1])``; each is read from the weight buffer
    one cycle before (registered) and reaches the array's shadow registers one cycle after.
Window generator (:class:`hdl.window.WindowGenerator`)
    Gets each instruction from the front end (in the cycle it is taken if it is idle, else
    at the previous instruction's last word) and offers one input-buffer address per word.
Feeder (:class:`hdl.feeder.Feeder`)
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
    array these travel in a delay line (here) tapped at ``rows + c`` for column ``c``.

Timing (all :mod:`accel.timing`, ARRAY mode, for an instruction taken in ``take`` =
``max(start + COMPUTE_DECODE, front_free)``)::

    wl[0] = take                            weight_rd reads row i of pass j in wl[j] + i - 1
    f[j]  = first feed of pass j            input_rd reads its word in the cycle before
    column c of the word fed in t           exits the array in t + rows + c, RMW read there,
                                            written in t + rows + c + ACC_LATENCY
    done  = f[last] + T - 1 + rows + cols - 1 + ACC_LATENCY + 1

Vector modes: the word fed in ``t`` reads its row in ``t`` and writes it in ``t +
VECTOR_LATENCY``; ``done = f[last] + T - 1 + VECTOR_LATENCY + 1``.

Output-stationary (an ``os`` instruction on an ``array.dataflow == "os"`` machine, the OS
section of :mod:`accel.timing`): the window generator walks groups, passes and array rows;
the feeder takes one word per cycle from ``F - 1`` on and reads each step's weight word
(``w_base + s``) in the same cycle (the weight port is muxed to it); the words and weights
go to :attr:`hdl.array.SystolicArray.os_i`, whose exits ``os_o[c]`` carry their own
accumulator rows; ``done = F + G*S - 1 + 2*rows + cols + ACC_LATENCY + 1``. The front end
releases it after its last word, the loader loads nothing for it, and the feeder counts it
as a unit of its own (a switch waits for ``done``).

Input-stationary (an ``is_`` instruction on an ``array.dataflow == "is"`` machine, the IS
section of :mod:`accel.timing`): :class:`hdl.is_stream.InputStationary` takes it from the
front end in its ``take`` cycle and reads its tiles through its own input buffer port
(``is_rd``) into the transposer, loads their rows into the array's shadow registers (the
``w`` port, muxed with the weight loader's) and streams the weight words into the array's
input (muxed with the feeder's; the weight port is muxed to it as to the OS feed, the loader
told by ``blocked``); the column sums go through the rotation to the banks their channels
name. The feeder keeps the unit rule for it (a switch waits for ``done``), the front end
releases it at ``max(wl[last] + R, f[last])``; ``done = f[last] + L + Cc + R - 2 +
ACC_LATENCY + 1`` (``L = k_tiles * Cc`` words per tile). The weight-stationary datapath (the
depthwise mode, ``is_ = 0``) stays.

``done`` pulses in exactly that cycle, the first in which the instruction's last accumulator
write is visible (``complete`` one cycle earlier: it is the accumulator buffer's write strobe
of that write, :attr:`hdl.accumulator.AccumulatorBuffer.complete`, not a delay line beside
the data path); ``start`` pulses in the cycle an instruction is granted (it enters the
instruction register). Instructions of the
same unit follow each other with no bubble, so several may be in flight; their ``done`` pulses
come in instruction order, never two in one cycle.

Ports
-----
i : In(stream.Signature(COMPUTE_LAYOUT))
    The instruction (:data:`hdl.isa.COMPUTE_LAYOUT`, bit-identical to
    :func:`accel.isa.encode`). ``valid``: the controller grants it (its semaphores are
    acquired in the cycle it is taken); ``ready``: the instruction register takes it this
    cycle if valid (it is empty, or the front end takes its instruction now).
start, complete, done : Out(1)
    One-cycle pulses, one per instruction, in program order: the instruction is granted
    (``start``); its last accumulator write (``complete``, cycle ``done - 1``, the convention
    of :mod:`hdl.dma`'s ``complete``: a controller that increments the ``signal`` semaphores
    at the end of that cycle makes them visible in ``done``); its effects are visible
    (``done``).
input_rd : In(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), rows)))
    The input buffer's synchronous read port (data one cycle after the address).
is_rd : In(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), rows)))
    Input-stationary machines only: the input buffer's read port of the IS reader.
tap_rd : In(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), rows))).array(rows - 1)
    Square arrays only (the depthwise mode): one more input-buffer read port per array row
    1 .. rows-1, each row's own tap word (:mod:`hdl.feeder`).
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
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out, connect, flipped

from accel import timing
from accel.config import AccelConfig
from hdl._check import check_config
from hdl.accumulator import AccumulatorBuffer, acc_addr_bits
from hdl.array import SystolicArray
from hdl.feeder import INPUT_READ_LATENCY, Feeder, done_latency, meta_layout
from hdl.front_end import FrontEnd
from hdl.is_stream import InputStationary
from hdl.isa import COMPUTE_LAYOUT
from hdl.vector import VectorUnit
from hdl.weight_loader import WeightLoader, weight_addr_bits
from hdl.window import WindowGenerator, addr_bits, decode, decoded_layout

__all__ = ["INPUT_READ_LATENCY", "ComputeEngine", "weight_addr_bits"]


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
        extra = {}
        if config.array.dataflow == "is":  # the input-stationary reader's own port
            extra["is_rd"] = In(
                ReadPort.Signature(
                    addr_width=addr_bits(config),
                    shape=data.ArrayLayout(signed(d.act_bits), rows),
                )
            )
        if rows == cols:  # the depthwise mode: a read port per array row 1 .. rows-1
            extra["tap_rd"] = In(
                ReadPort.Signature(
                    addr_width=addr_bits(config),
                    shape=data.ArrayLayout(signed(d.act_bits), rows),
                )
            ).array(rows - 1)
        super().__init__(
            {
                **extra,
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
        return done_latency(self._config, vector=False)

    @property
    def vector_latency(self) -> int:
        """``done`` minus the last feed cycle in vector modes."""
        return done_latency(self._config, vector=True)

    def elaborate(self, platform) -> Module:
        m = Module()
        config = self._config
        rows, cols = config.array.rows, config.array.cols
        m.submodules.front_end = front_end = FrontEnd(config)
        m.submodules.loader = loader = WeightLoader(config)
        m.submodules.window = wg = self._window
        m.submodules.feeder = feeder = Feeder(config)
        m.submodules.array = array = self._array
        m.submodules.vector = vec = self._vector
        m.submodules.accumulator = acc = self._accumulator

        # The instruction register (accel.timing.COMPUTE_DECODE = 2): the grant lands here
        # (cycle start); in start + 1 the window generator's steps and loop bounds are
        # computed from it into `decoded` (hdl.window.decode: the products stride * tile_w
        # and dil * tile_w, the VADD operand step, count - 1); from start + 2 the front end
        # may take it. So no path runs from the controller's semaphores into the engine, and
        # no multiplier sits before the first address. The register takes the next grant in
        # the cycle it hands one on.
        assert timing.COMPUTE_DECODE == 2
        registered = Signal(COMPUTE_LAYOUT, reset_less=True)
        registered_valid = Signal()
        decoded = Signal(decoded_layout(config), reset_less=True)
        aged = Signal()  # `decoded` is the registered instruction's (held a cycle already)
        take = front_end.i.valid & front_end.i.ready
        m.d.comb += [
            self.i.ready.eq(~registered_valid | take),
            front_end.i.valid.eq(registered_valid & aged),
            front_end.i.payload.eq(decoded),
            self.start.eq(self.i.valid & self.i.ready),
        ]
        m.d.sync += [
            decoded.eq(decode(m, registered, config)),
            aged.eq(registered_valid & ~take),
        ]
        with m.If(self.start):
            m.d.sync += [registered.eq(self.i.payload), registered_valid.eq(1), aged.eq(0)]
        with m.Elif(take):
            m.d.sync += registered_valid.eq(0)

        # The front end hands its instruction to the window generator, the weight loader and
        # the feeder, and hears back from the loader and the feeder when to release it.
        connect(m, front_end.window, wg.i)
        connect(m, front_end.load, loader.i)
        connect(m, front_end.feed, feeder.instr)
        connect(m, feeder.taken, front_end.taken)
        m.d.comb += front_end.slot_free.eq(feeder.slot_free)

        # Weights: buffer -> loader -> the array's shadow registers; the loader offers each
        # pass to the feeder from the cycle its row 0 is read.
        os = config.array.dataflow == "os"
        is_ = config.array.dataflow == "is"
        if is_:
            m.submodules.input_stationary = ist = InputStationary(config)
            connect(m, front_end.is_instr, ist.i)
            connect(m, flipped(self.is_rd), ist.rd)
            m.d.comb += [
                front_end.is_loaded.eq(ist.loaded),
                front_end.is_streamed.eq(ist.streamed),
                ist.free.eq(feeder.is_free),
                feeder.is_start.eq(ist.tile_start),
                feeder.is_last.eq(ist.last_word),
                feeder.is_busy.eq(ist.streaming),
            ]
        if os:
            # The output-stationary feed reads one weight word per step, in the cycle it
            # takes the step's input word; the loader never needs the port then, except to
            # read ahead in the last one (it is told, `blocked`).
            m.d.comb += [
                self.weight_rd.en.eq(loader.weight_rd.en),
                self.weight_rd.addr.eq(
                    Mux(
                        feeder.os_weight_rd.valid,
                        feeder.os_weight_rd.payload,
                        loader.weight_rd.addr,
                    )
                ),
                loader.weight_rd.data.eq(self.weight_rd.data),
                feeder.os_weight.eq(self.weight_rd.data),
                array.os_i.valid.eq(feeder.os.valid),
                array.os_i.payload.eq(feeder.os.payload),
            ]
            m.d.sync += loader.blocked.eq(feeder.os_weight_rd.valid)
        elif is_:
            # The input-stationary stream reads one weight word per cycle of its tiles; the
            # loader, told (`blocked`), begins a pass a cycle after the stream's last read.
            m.d.comb += [
                self.weight_rd.en.eq(loader.weight_rd.en),
                self.weight_rd.addr.eq(
                    Mux(ist.weight_rd.valid, ist.weight_rd.payload, loader.weight_rd.addr)
                ),
                loader.weight_rd.data.eq(self.weight_rd.data),
                ist.weight.eq(self.weight_rd.data),
            ]
            m.d.sync += loader.blocked.eq(ist.weight_rd.valid)
        else:
            connect(m, flipped(self.weight_rd), loader.weight_rd)
        if is_:  # the shadow registers take the loader's rows or the transposer's
            m.d.comb += [
                array.w.valid.eq(loader.w.valid | ist.w.valid),
                array.w.payload.eq(Mux(ist.w.valid, ist.w.payload, loader.w.payload)),
            ]
        else:
            connect(m, loader.w, array.w)
        m.d.comb += loader.next_w_base.eq(registered.w_base)
        connect(m, loader.weights, feeder.weights)

        # Words: window generator -> feeder (input buffer read) -> array or vector unit.
        connect(m, wg.o, feeder.word)
        m.d.comb += wg.held_ready.eq(feeder.walked_ready)
        connect(m, flipped(self.input_rd), feeder.input_rd)
        if rows == cols:
            for t in range(rows - 1):
                connect(m, flipped(self.tap_rd[t]), feeder.tap_rd[t])
            m.d.comb += array.dwx.eq(feeder.dwx)
        if is_:  # the array's input: the feeder's words or the streamed weight words
            m.d.comb += [
                array.i.valid.eq(feeder.array.valid | ist.x.valid),
                array.i.payload.eq(Mux(ist.x.valid, ist.x.payload, feeder.array.payload)),
            ]
        else:
            connect(m, feeder.array, array.i)
        connect(m, feeder.vector, vec.i)
        connect(m, feeder.acc_rd, acc.v_rd)
        m.d.comb += vec.acc.eq(acc.v_acc)
        connect(m, vec.o, acc.v_wr)
        connect(m, flipped(self.post_rd), acc.post)

        # ---- array exits -> accumulator ---------------------------------------------------
        # The word's row, overwrite bit and last mark travel beside it; column c exits
        # `rows + c` cycles after the feed.
        meta = [feeder.meta]
        for k in range(1, rows + cols):
            reg = Signal(meta_layout(config), name=f"meta_d{k}", reset_less=True)
            m.d.sync += reg.eq(meta[-1])
            meta.append(reg)
        for c in range(cols):
            tap = meta[rows + c]
            m.d.comb += [
                acc.a[c].valid.eq(array.o[c].valid),
                acc.a[c].payload.addr.eq(tap.acc_row),
                acc.a[c].payload.overwrite.eq(tap.overwrite),
                acc.a[c].payload.sum.eq(array.o[c].payload),
                acc.a[c].payload.last.eq(tap.last),
            ]
            if is_:  # an input-stationary exit: the rotation's bank c (the units never meet)
                m.d.comb += [
                    ist.sums[c].eq(array.o[c].payload),
                    acc.a[c].valid.eq(array.o[c].valid & ~ist.col_busy[c]),
                ]
                with m.If(ist.a[c].valid):
                    m.d.comb += [acc.a[c].valid.eq(1), acc.a[c].payload.eq(ist.a[c].payload)]
            if os:  # an output-stationary exit carries its own row (the units never meet)
                exit_ = array.os_o[c]
                with m.If(exit_.valid):
                    m.d.comb += [
                        acc.a[c].valid.eq(1),
                        acc.a[c].payload.addr.eq(exit_.payload.acc_row),
                        acc.a[c].payload.overwrite.eq(exit_.payload.overwrite),
                        acc.a[c].payload.sum.eq(exit_.payload.sum),
                        acc.a[c].payload.last.eq(exit_.payload.last),
                    ]

        # ---- complete, done ---------------------------------------------------------------
        # The accumulator's write strobe of the instruction's last result (`complete`): the
        # last column's write of the last word (ARRAY) or the vector unit's write of it, each
        # carrying the word's last mark. It is visible one cycle later (`done`).
        if is_:  # an input-stationary instruction's final exit may be a dummy column's
            m.d.comb += acc.a_end.eq(ist.end)
        m.d.comb += self.complete.eq(acc.complete)
        m.d.sync += self.done.eq(self.complete)
        return m
