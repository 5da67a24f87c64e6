"""The accelerator top: controller, the four engines and the on-chip buffers.

``Accelerator(config)`` is the machine :mod:`sim` models, cycle for cycle (``docs/rtl.md``):

::

         imem_<engine>: four instruction read ports       start, done, trace, counters
                          |                                    |
                     Controller (fetch, semaphores, grants) ---+
                          | issue / complete
       +------------------+-------------------+------------------+
       |                  |                   |                  |
    LoadEngine      ComputeEngine        PostEngine         StoreEngine
    ar, r (DRAM)    window, array,       post-processor     w, b (DRAM)
       |            vector unit,              |                  ^
       v            accumulators              v                  |
    input, weight,  (reads input,        output buffer ---------+
    param, table     weight buffers)     (reads accumulators, param and
    buffers                               table buffers)

Ports (names joined by ``_`` in Verilog; none contains ``__``):

- program control, trace and counters: :func:`hdl.controller.control_members` (``start``,
  ``busy``, ``done``, ``error``, ``stalled``, ``cycle``; per engine ``<engine>_base``,
  ``<engine>_count``, the instruction read port ``imem_<engine>_{addr,en,data}`` (synchronous,
  data one cycle after the address, one 512-bit instruction per word),
  ``trace_<engine>_{start,start_index,done,done_index}``,
  ``<engine>_{busy,blocked}_cycles``);
- DRAM: ``ar`` (read requests), ``r`` (read beats), ``w`` (write beats), ``b`` (write
  acknowledgement), with the payloads and timing of :class:`hdl.dram.Dram`, which is what the
  contract's DRAM does (``docs/rtl.md``). ``stalled`` also rises when the DRAM refuses a
  request or the LOAD engine's descriptor queue is full.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from accel.config import AccelConfig
from accel.isa import Engine
from accel.timing import LOAD_QUEUE
from hdl._check import check_config, check_count
from hdl.buffers import InputBuffer, OutputBuffer, ParamBuffer, TableBuffer, WeightBuffer
from hdl.compute import ComputeEngine
from hdl.controller import COUNTER_BITS, Controller, control_members, engine_name
from hdl.dma import LoadEngine, StoreEngine
from hdl.dram import read_beat_layout, read_request_layout, write_beat_layout
from hdl.post import PostEngine

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """The whole accelerator for one :class:`~accel.config.AccelConfig`.

    Parameters
    ----------
    config : AccelConfig
        Every size of the design.
    load_queue : int
        LOAD instructions that may wait for their first data beat (:class:`hdl.dma.LoadEngine`).
    inflight : int
        Granted, uncompleted instructions per engine (:class:`hdl.controller.Controller`).
    counter_bits : int
        Width of ``cycle`` and the per-engine counters (:class:`hdl.controller.Controller`;
        default 32).
    fetch : bool
        The instruction ports are served by a fetch buffer (:class:`hdl.fetch.InstructionFetch`):
        with it the top also has ``fetched_<engine>`` inputs (:class:`hdl.controller.Controller`).
    abort : bool
        With an ``abort`` input: a bus error stops the program (the controller's ``abort``;
        the AXI tops drive it from SLVERR/DECERR responses).

    Raises
    ------
    TypeError, ValueError
        From the blocks, naming the argument.
    """

    def __init__(
        self,
        config: AccelConfig,
        *,
        load_queue: int = LOAD_QUEUE,
        inflight: int = 256,
        counter_bits: int = COUNTER_BITS,
        fetch: bool = False,
        abort: bool = False,
    ):
        self._config = check_config(config)
        # Checked before any block exists: a half-built design would warn as unused.
        check_count(load_queue, "LOAD descriptor queue depth", 1)
        check_count(inflight, "in-flight queue depth", 2)
        check_count(counter_bits, "counter width", 1)
        self._controller = Controller(
            config, inflight=inflight, counter_bits=counter_bits, fetch=fetch, abort=abort
        )
        self._engines = {
            Engine.LOAD: LoadEngine(config, depth=load_queue),
            Engine.COMPUTE: ComputeEngine(config),
            Engine.POST: PostEngine(config),
            Engine.STORE: StoreEngine(config),
        }
        super().__init__(
            {
                **control_members(counter_bits, fetch=fetch, abort=abort),
                "ar": Out(stream.Signature(read_request_layout())),
                "r": In(stream.Signature(read_beat_layout(config), always_ready=True)),
                "w": Out(stream.Signature(write_beat_layout(config))),
                "b": In(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def controller(self) -> Controller:
        return self._controller

    @property
    def engines(self) -> dict[Engine, wiring.Component]:
        return dict(self._engines)

    def elaborate(self, platform) -> Module:
        m = Module()
        config = self._config
        m.submodules.controller = ctrl = self._controller
        for engine, block in self._engines.items():
            m.submodules[engine_name(engine)] = block
        load, compute = self._engines[Engine.LOAD], self._engines[Engine.COMPUTE]
        post, store = self._engines[Engine.POST], self._engines[Engine.STORE]
        m.submodules.input_buffer = ibuf = InputBuffer(config)
        m.submodules.weight_buffer = wbuf = WeightBuffer(config)
        m.submodules.param_buffer = pbuf = ParamBuffer(config)
        m.submodules.output_buffer = obuf = OutputBuffer(config)
        m.submodules.table_buffer = tbuf = TableBuffer(config)

        connect(m, load.input_buf, ibuf.dma)
        connect(m, load.weight_buf, wbuf.dma)
        connect(m, load.param_buf, pbuf.dma)
        connect(m, load.table_buf, tbuf.dma)
        connect(m, compute.input_rd, ibuf.window)
        if config.array.rows == config.array.cols:  # the depthwise mode's row ports
            for t in range(config.array.rows - 1):
                connect(m, compute.tap_rd[t], ibuf.taps[t])
        if config.array.dataflow == "is":
            connect(m, compute.is_rd, ibuf.transpose)
        connect(m, compute.weight_rd, wbuf.loader)
        connect(m, post.acc_rd, compute.post_rd)
        connect(m, post.param_rd, pbuf.post)
        connect(m, post.out_wr, obuf.post)
        connect(m, post.table_rd, tbuf.post)
        connect(m, store.output_buf, obuf.store)

        connect(m, load.ar, flipped(self.ar))
        connect(m, flipped(self.r), load.r)
        connect(m, store.w, flipped(self.w))
        m.d.comb += store.b.eq(self.b)

        for engine, block in self._engines.items():
            e = engine_name(engine)
            issue = getattr(ctrl, f"issue_{e}")
            m.d.comb += [
                block.i.valid.eq(issue.valid),
                block.i.payload.as_value().eq(issue.payload[: len(block.i.payload.as_value())]),
                issue.ready.eq(block.i.ready),
                getattr(ctrl, f"complete_{e}").eq(block.complete),
            ]

        ctrl_ = self._controller
        members = control_members(ctrl_.counter_bits, fetch=ctrl_.fetch, abort=ctrl_.abortable)
        for name, member in members.items():
            ours, theirs = getattr(self, name), getattr(ctrl, name)
            if member.is_signature:
                connect(m, flipped(ours), theirs)
            elif name == "stalled":
                m.d.comb += ours.eq(theirs | load.stalled)
            elif member.flow == In:
                m.d.comb += theirs.eq(ours)
            else:
                m.d.comb += ours.eq(theirs)
        return m
