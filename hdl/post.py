"""The POST engine: accumulator rows through the post-processor into the output buffer.

It runs POST instructions exactly as :func:`accel.timing.post_timing` schedules them, with the
arithmetic of :class:`hdl.postproc.PostProcessor` (bit-exact to
:func:`sim.postproc.postprocess`). For an instruction taken in cycle ``start`` (the handshake
on ``i``; ``i.valid`` is the controller's grant, the instruction's semaphores are held), row
``k < count``:

* cycle ``start + k``: the engine reads accumulator row ``acc_base + k`` (``acc_rd``) and
  parameter word ``param_base`` (``param_rd``, read again for every row); row 0's addresses
  come combinationally from ``i.payload``, the later ones from registers;
* cycle ``start + k + 1``: both words arrive (synchronous ports,
  :data:`hdl.postproc.ACC_READ_LATENCY`) and enter the :class:`~hdl.postproc.PostProcessor`
  with the row's instruction fields (``mode``, ``out_zero_point``, ``act_min``,
  ``act_max``, ``lut``, ``table``, ``prelu``), which were registered beside the read;
* cycle ``start + k + POST_LATENCY``: the output word is written to output buffer word
  ``out_base + k`` (``out_wr``), visible from ``start + k + POST_LATENCY + 1``; with
  ``lut``, the post-processor's last register (the clamped values) addresses the table
  buffer (``table_rd``, an asynchronous read) in this cycle and the bytes are written: a
  table costs no cycle.

So the last word is visible in ``done = start + count + POST_LATENCY``, and ``complete`` is
high in ``done - 1``, the cycle of that write (the convention of :mod:`hdl.dma`: a controller
that increments the ``signal`` semaphores at the end of that cycle makes them visible in
``done``). ``i.ready`` is ``~busy``, a register: high when the engine is idle, which it is
again from the cycle after its last row's read, ``start + count`` = ``next_start``. The next
instruction therefore enters right behind the last row with no bubble; every row carries its
own fields and output address through the pipeline, so rows of two instructions with
different parameters follow each other in consecutive cycles. ``complete`` pulses once per
instruction, in program order, never two in one cycle.

Two instructions back to back, A (``count = 3``) taken in 0, B (``count = 1``) in 3::

    cycle             0     1     2     3     4     5     6     7     8     9     10    11
    i.ready           1     0     0     1     1     1     1     1     1     1     1     1
    i.valid & ready   A                 B
    acc_rd.addr       A0    A1    A2    B0
    param_rd.addr     pA    pA    pA    pB
    PostProcessor.i         A0    A1    A2    B0
    out_wr (write)                                        A0    A1    A2    B0
    complete                                                          A     B
    done                                                                    A     B

Addresses wrap modulo each port's address width (the instruction fields are wider); ``count``
must be >= 1 (the compiler never emits an empty POST; a zero count is undefined here).

Ports
-----
i : In(stream.Signature(POST_LAYOUT))
    The instruction (:data:`hdl.isa.POST_LAYOUT`, bit-identical to :func:`accel.isa.encode`);
    the handshake cycle is its ``start``.
acc_rd : In(ReadPort.Signature(acc_addr_bits, ArrayLayout(signed(32), cols)))
    The accumulator buffer's POST read port (:class:`hdl.compute.ComputeEngine`'s
    ``post_rd``, :class:`hdl.accumulator.AccumulatorBuffer`'s ``post``).
param_rd : In(ReadPort.Signature(param_addr_bits, ArrayLayout(param_lane_layout, cols)))
    The parameter buffer's read port (:class:`hdl.buffers.ParamBuffer`'s ``post``).
out_wr : In(WritePort.Signature(out_addr_bits, ArrayLayout(signed(8), cols)))
    The output buffer's write port (:class:`hdl.buffers.OutputBuffer`'s ``post``).
table_rd : In(hdl.postproc.table_lookup_signature(config))
    The table buffer's lookup port (:class:`hdl.buffers.TableBuffer`'s ``post``), driven by
    the post-processor's last register.
complete : Out(1)
    High in cycle ``done - 1`` of each instruction (its last output buffer write).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out, connect, flipped

from accel import isa, timing
from accel.config import AccelConfig
from accel.isa import PostMode
from hdl._check import check_config
from hdl.accumulator import acc_addr_bits
from hdl.buffers import OutputBuffer, ParamBuffer, buffer_addr_bits
from hdl.isa import POST_LAYOUT
from hdl.postproc import (
    ACC_READ_LATENCY,
    STAGES,
    PostProcessor,
    param_lane_layout,
    table_lookup_signature,
)

__all__ = ["PostEngine"]

_POST = {name: width for name, width, _ in isa.FIELDS[isa.Post]}


def _buffer_addr_bits(config: AccelConfig, cls) -> int:
    """Address width of the :class:`hdl.buffers.SramBuffer` subclass ``cls`` for ``config``."""
    depth, _ = cls.geometry(config)
    return buffer_addr_bits(depth)


class PostEngine(wiring.Component):
    """The POST engine: one accumulator row per cycle, requantised into the output buffer.

    Parameters
    ----------
    config : AccelConfig
        ``config.array.cols`` lanes, ``config.data`` widths, ``config.buffers`` (the
        accumulator, parameter and output buffer depths set the port address widths).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If :data:`accel.timing.POST_LATENCY` is not the accumulator read plus the
        post-processor's stages (the contract changed; the pipeline must be re-cut).
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = check_config(config)
        if timing.POST_LATENCY != ACC_READ_LATENCY + STAGES:
            raise ValueError(
                f"accel.timing.POST_LATENCY = {timing.POST_LATENCY}, but the post engine "
                f"takes {ACC_READ_LATENCY} (accumulator read) + {STAGES} (post-processor) cycles"
            )
        cols = config.array.cols
        d = config.data
        self._acc_addr_bits = acc_addr_bits(config)
        self._param_addr_bits = _buffer_addr_bits(config, ParamBuffer)
        self._out_addr_bits = _buffer_addr_bits(config, OutputBuffer)
        super().__init__(
            {
                "i": In(stream.Signature(POST_LAYOUT)),
                "acc_rd": In(
                    ReadPort.Signature(
                        addr_width=self._acc_addr_bits,
                        shape=data.ArrayLayout(signed(d.acc_bits), cols),
                    )
                ),
                "param_rd": In(
                    ReadPort.Signature(
                        addr_width=self._param_addr_bits,
                        shape=data.ArrayLayout(param_lane_layout, cols),
                    )
                ),
                "out_wr": In(
                    WritePort.Signature(
                        addr_width=self._out_addr_bits,
                        shape=data.ArrayLayout(signed(d.act_bits), cols),
                    )
                ),
                "table_rd": In(table_lookup_signature(config)),
                "complete": Out(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def latency(self) -> int:
        """Cycles from a row's reads to its output buffer write (:data:`accel.timing.POST_LATENCY`;
        the word is visible one cycle later)."""
        return ACC_READ_LATENCY + STAGES

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.postproc = pp = PostProcessor(self._config)

        # --- issue: one row's reads per cycle ------------------------------------------------
        # The fields a row needs after its read travel beside it.
        fields = data.StructLayout(
            {
                "mode": PostMode,
                "out_zero_point": signed(8),
                "act_min": signed(8),
                "act_max": signed(8),
                "lut": 1,
                "table": unsigned(_POST["table"]),
                "prelu": 1,
                "out_addr": unsigned(self._out_addr_bits),
            }
        )
        position = data.StructLayout(
            {
                "acc_addr": unsigned(self._acc_addr_bits),
                "param_addr": unsigned(self._param_addr_bits),
                "left": unsigned(_POST["count"]),  # rows from this one on
                "row": fields,
            }
        )
        busy = Signal()
        state = Signal(position, reset_less=True)
        first = Signal(position)
        cur = Signal(position)
        payload = self.i.payload
        m.d.comb += [
            first.acc_addr.eq(payload.acc_base),
            first.param_addr.eq(payload.param_base),
            first.left.eq(payload.count),
            first.row.mode.eq(payload.mode),
            first.row.out_zero_point.eq(payload.out_zero_point),
            first.row.act_min.eq(payload.act_min),
            first.row.act_max.eq(payload.act_max),
            first.row.lut.eq(payload.lut),
            first.row.table.eq(payload.table),
            first.row.prelu.eq(payload.prelu),
            first.row.out_addr.eq(payload.out_base),
            cur.eq(first),
        ]
        with m.If(busy):
            m.d.comb += cur.eq(state)
        last = cur.left == 1
        issue = busy | self.i.valid
        m.d.comb += [
            self.i.ready.eq(~busy),
            self.acc_rd.addr.eq(cur.acc_addr),
            self.acc_rd.en.eq(issue),
            self.param_rd.addr.eq(cur.param_addr),
            self.param_rd.en.eq(issue),
        ]
        nxt = Signal(position)
        m.d.comb += [
            nxt.eq(cur),
            nxt.acc_addr.eq(cur.acc_addr + 1),
            nxt.left.eq(cur.left - 1),
            nxt.row.out_addr.eq(cur.row.out_addr + 1),
        ]
        with m.If(issue):
            m.d.sync += [state.eq(nxt), busy.eq(~last)]

        # --- read: the words arrive with the row's fields --------------------------------------
        read_valid = Signal()
        read_row = Signal(fields, reset_less=True)
        read_last = Signal(reset_less=True)  # the instruction's last row
        m.d.sync += [read_valid.eq(issue), read_row.eq(cur.row), read_last.eq(last)]
        m.d.comb += [
            pp.i.valid.eq(read_valid),
            pp.i.payload.acc.eq(self.acc_rd.data),
            pp.i.payload.params.eq(self.param_rd.data),
            pp.i.payload.mode.eq(read_row.mode),
            pp.i.payload.out_zero_point.eq(read_row.out_zero_point),
            pp.i.payload.act_min.eq(read_row.act_min),
            pp.i.payload.act_max.eq(read_row.act_max),
            pp.i.payload.lut.eq(read_row.lut),
            pp.i.payload.table.eq(read_row.table),
            pp.i.payload.prelu.eq(read_row.prelu),
        ]
        connect(m, flipped(self.table_rd), pp.table)

        # --- post-processor stages: the output address and last mark in a delay line -----------
        out_addr, row_last = read_row.out_addr, read_last
        for k in range(1, pp.latency + 1):
            addr_d = Signal.like(out_addr, name=f"out_addr_d{k}", reset_less=True)
            last_d = Signal(name=f"last_d{k}", reset_less=True)
            m.d.sync += [addr_d.eq(out_addr), last_d.eq(row_last)]
            out_addr, row_last = addr_d, last_d

        # --- write -------------------------------------------------------------------------------
        m.d.comb += [
            self.out_wr.en.eq(pp.o.valid),
            self.out_wr.addr.eq(out_addr),
            self.out_wr.data.eq(pp.o.payload),
            self.complete.eq(self.out_wr.en & row_last),  # the write strobe of the last row
        ]
        return m
