"""The accelerator with an AXI4-Lite control port: :class:`hdl.top.Accelerator` behind
:class:`hdl.csr.ControlRegisters`.

``AxiLiteAccelerator(config)`` is the same machine, cycle for cycle, as
:class:`hdl.top.Accelerator` (which it contains, with 64-bit counters): program control,
the stream bases and lengths and the counters are registers of :data:`hdl.csr.REGISTERS` on
the AXI4-Lite slave ``s_axil`` (Verilog ports ``s_axil_awvalid`` ... ``s_axil_rresp``), and
``irq`` signals done or error. The instruction fetch (``imem_<engine>``), the trace
(``trace_<engine>_*``) and the DRAM ports (``ar``, ``r``, ``w``, ``b``) are the inner top's,
unchanged.

With ``fetch`` (an :class:`accel.timing.Fetch`) the instruction ports are served by
:class:`hdl.fetch.InstructionFetch` instead, which reads the streams from DRAM over the
read-only AXI4 master ``m_axi_insn``; the top then has no ``imem_<engine>`` ports, and its
timing is the model's with that ``fetch`` (``sim.run(..., fetch=top.fetch)``).

Bus errors. A SLVERR or DECERR response (the fetch's R; with ``bus_errors`` the inputs
``data_read_error`` and ``data_write_error``, which :class:`AxiAccelerator` drives from its
data master) sets its bit of ``ERROR_CAUSE`` and ``STATUS.ERROR`` (and ``IRQ_STATUS.ERROR``,
so ``irq`` if enabled), and stops the program: the controller's ``abort`` grants no
instruction from the next cycle on, the instructions already granted finish (a slave answers
every burst, erroneous or not), and ``STATUS.BUSY`` falls once they have and no fetch burst
is outstanding (``DONE`` stays low). A new ``START`` then runs a program from a clean state.

``AxiAccelerator(config)`` is that top, with the fetch (``fetch=Fetch()`` by default), and
with :class:`hdl.axi_master.AxiMaster` on its DRAM ports: the data traffic on the AXI4
master ``m_axi`` (Verilog ``m_axi_awvalid`` ... ``m_axi_rlast``), cycle for cycle the same
machine with slaves that answer as :class:`hdl.dram.Dram` does (``docs/integration.md``).
Its ports are ``s_axil``, ``m_axi``, ``m_axi_insn``, ``irq`` and the trace.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from accel.config import AccelConfig
from accel.isa import Engine
from accel.timing import LOAD_QUEUE, Fetch
from hdl import axi_lite, axi_master
from hdl._check import check_count
from hdl.controller import engine_name
from hdl.csr import ADDR_WIDTH, COUNTER_BITS, ControlRegisters, core_members
from hdl.fetch import InstructionFetch
from hdl.top import Accelerator

__all__ = ["AxiAccelerator", "AxiLiteAccelerator"]


class AxiLiteAccelerator(wiring.Component):
    """:class:`~hdl.top.Accelerator` controlled through AXI4-Lite registers.

    Parameters
    ----------
    config : AccelConfig
        Every size of the design.
    addr_width : int
        AXI4-Lite address bits (:class:`hdl.csr.ControlRegisters`; default 12).
    load_queue, inflight : int
        As for :class:`~hdl.top.Accelerator`.
    fetch : accel.timing.Fetch, optional
        Fetch the instructions from DRAM (:class:`hdl.fetch.InstructionFetch`) instead of
        reading them through ``imem_<engine>`` (default ``None``).
    bus_errors : bool
        With the inputs ``data_read_error``, ``data_write_error`` and ``data_stall`` (default
        ``False``): the data master's errors and back-pressure (:class:`AxiAccelerator`).

    Ports
    -----
    ``s_axil`` (``In(hdl.axi_lite.Signature(addr_width))``), ``irq`` (``Out(1)``), and every
    port of the inner :class:`~hdl.top.Accelerator` that :func:`hdl.csr.core_members` does not
    name: ``imem_<engine>``, ``trace_<engine>_*``, ``ar``, ``r``, ``w``, ``b``. With
    ``fetch``: ``m_axi_insn`` (``Out(hdl.axi_master.ReadSignature(fetch.width))``) in place
    of ``imem_<engine>``. With ``bus_errors``: ``data_read_error``, ``data_write_error``,
    ``data_stall`` (``In(1)``).

    Raises
    ------
    TypeError, ValueError
        From :class:`~hdl.top.Accelerator` and :class:`~hdl.csr.ControlRegisters`.
    """

    def __init__(
        self,
        config: AccelConfig,
        *,
        addr_width: int = ADDR_WIDTH,
        load_queue: int = LOAD_QUEUE,
        inflight: int = 256,
        fetch: Fetch | None = None,
        bus_errors: bool = False,
    ):
        self._registers = ControlRegisters(addr_width)
        self._fetch_unit = None if fetch is None else InstructionFetch(config, fetch)
        self._bus_errors = bool(bus_errors)
        self._core = Accelerator(
            config,
            load_queue=load_queue,
            inflight=inflight,
            counter_bits=COUNTER_BITS,
            fetch=fetch is not None,
            abort=fetch is not None or self._bus_errors,
        )
        members = {"s_axil": In(axi_lite.Signature(addr_width)), "irq": Out(1)}
        if self._bus_errors:
            members |= {port: In(1) for port in _DATA_SIDEBAND}
        hidden = (*core_members(), "abort")
        if fetch is not None:
            members["m_axi_insn"] = Out(self._fetch_unit.axi.signature)
            hidden += tuple(n for n in self._core.signature.members if n.startswith(_FETCHED))
        super().__init__({**members, **_passed_members(self._core.signature, hidden)})

    @property
    def config(self) -> AccelConfig:
        return self._core.config

    @property
    def core(self) -> Accelerator:
        """The inner :class:`~hdl.top.Accelerator`."""
        return self._core

    @property
    def registers(self) -> ControlRegisters:
        return self._registers

    @property
    def fetch(self) -> Fetch | None:
        """The instruction fetch's contract (``None``: the ``imem_<engine>`` ports)."""
        return None if self._fetch_unit is None else self._fetch_unit.fetch

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.registers = regs = self._registers
        if self._fetch_unit is not None:
            m.submodules.fetch = unit = self._fetch_unit
            connect(m, unit.axi, flipped(self.m_axi_insn))
            m.d.comb += [unit.start.eq(regs.start), unit.busy.eq(core.busy)]
            for engine in Engine:
                e = engine_name(engine)
                connect(m, getattr(unit, f"imem_{e}"), getattr(core, f"imem_{e}"))
                m.d.comb += [
                    getattr(unit, f"{e}_base").eq(getattr(regs, f"{e}_base")),
                    getattr(unit, f"{e}_count").eq(getattr(regs, f"{e}_count")),
                    getattr(core, f"fetched_{e}").eq(getattr(unit, f"fetched_{e}")),
                    getattr(core, f"fetched_next_{e}").eq(getattr(unit, f"fetched_next_{e}")),
                    getattr(unit, f"fire_{e}").eq(getattr(core, f"trace_{e}_start")),
                ]
        connect(m, flipped(self.s_axil), regs.bus)
        m.d.comb += self.irq.eq(regs.irq)
        for name, member in core_members().items():
            # ControlRegisters' members are the core's, flipped.
            if member.flow == Out:
                m.d.comb += getattr(core, name).eq(getattr(regs, name))
            elif name != "busy":
                m.d.comb += getattr(regs, name).eq(getattr(core, name))
        errors, stalls = [], []
        if self._bus_errors:
            for port in _DATA_ERRORS:
                m.d.comb += getattr(regs, port).eq(getattr(self, port))
                errors.append(getattr(self, port))
            stalls.append(self.data_stall)
        if self._fetch_unit is not None:
            m.d.comb += regs.fetch_error.eq(unit.error)
            errors.append(unit.error)
            stalls.append(unit.stall)
            # Busy until a stopped program's fetch bursts are answered too (in a program that
            # finishes, every burst is answered before done: the same cycles).
            m.d.comb += regs.busy.eq(core.busy | ~unit.idle)
        else:
            m.d.comb += regs.busy.eq(core.busy)
        if errors:
            m.d.comb += core.abort.eq(Cat(*errors).any())
        if stalls:
            m.d.comb += regs.axi_stall.eq(Cat(*stalls).any())
        _pass_through(m, self, core, exclude=("s_axil", "irq", "m_axi_insn", *_DATA_SIDEBAND))
        return m


#: The data master's inputs of :class:`AxiLiteAccelerator` (``bus_errors``): its errors and
#: its back-pressure.
_DATA_ERRORS = ("data_read_error", "data_write_error")
_DATA_SIDEBAND = (*_DATA_ERRORS, "data_stall")

#: The ports of the inner top that the fetch serves.
_FETCHED = ("imem_", "fetched_")


#: The inner top's DRAM ports, which :class:`AxiAccelerator` puts behind its AXI4 master.
_DRAM_PORTS = ("ar", "r", "w", "b")


class AxiAccelerator(wiring.Component):
    """:class:`AxiLiteAccelerator` with its DRAM traffic on an AXI4 master.

    Parameters
    ----------
    config : AccelConfig
        Every size of the design; ``dram.bandwidth`` (the AXI data bus bytes) must be a power
        of two <= 128 and ``dram.latency`` >= 1 (:class:`hdl.axi_master.AxiMaster`).
    addr_width, load_queue, inflight : int
        As for :class:`AxiLiteAccelerator`.
    fetch : accel.timing.Fetch
        The instruction fetch (default ``Fetch()``: 8 instructions per engine, a 512-bit
        ``m_axi_insn``).
    master_depth : int, optional
        The queue depth of :class:`~hdl.axi_master.AxiMaster` (default: its own,
        ``latency + 2048``, deep enough for the contract's unbounded queues; its deep FIFOs
        are block RAM, :class:`hdl.block_fifo.BlockFIFO`).

    Ports
    -----
    ``s_axil`` (AXI4-Lite slave), ``m_axi`` (``Out(hdl.axi_master.Signature(bandwidth))``),
    ``m_axi_insn`` (``Out(hdl.axi_master.ReadSignature(fetch.width))``), ``irq`` and
    ``trace_<engine>_*`` (as :class:`~hdl.top.Accelerator`).

    Raises
    ------
    TypeError, ValueError
        From :class:`AxiLiteAccelerator` and :class:`~hdl.axi_master.AxiMaster`.
    """

    def __init__(
        self,
        config: AccelConfig,
        *,
        addr_width: int = ADDR_WIDTH,
        load_queue: int = LOAD_QUEUE,
        inflight: int = 256,
        fetch: Fetch | None = None,
        master_depth: int | None = None,
    ):
        if master_depth is not None:  # before any block is built: a failed one warns unused
            check_count(master_depth, "AXI queue depth", 1)
        self._master = axi_master.AxiMaster(config, depth=master_depth)
        self._inner = AxiLiteAccelerator(
            config,
            addr_width=addr_width,
            load_queue=load_queue,
            inflight=inflight,
            fetch=Fetch() if fetch is None else fetch,
            bus_errors=True,
        )
        passed = _passed_members(self._inner.signature, (*_DRAM_PORTS, *_DATA_SIDEBAND))
        super().__init__({**passed, "m_axi": Out(self._master.axi.signature)})

    @property
    def config(self) -> AccelConfig:
        return self._inner.config

    @property
    def fetch(self) -> Fetch:
        """The instruction fetch's contract: the model's ``fetch`` for this top."""
        return self._inner.fetch

    @property
    def inner(self) -> AxiLiteAccelerator:
        """The :class:`AxiLiteAccelerator` behind the master."""
        return self._inner

    @property
    def master(self) -> axi_master.AxiMaster:
        return self._master

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.top = inner = self._inner
        m.submodules.axi_master = master = self._master
        connect(m, inner.ar, master.ar)
        connect(m, master.r, inner.r)
        connect(m, inner.w, master.w)
        m.d.comb += [
            inner.b.eq(master.b),
            inner.data_read_error.eq(master.read_error),
            inner.data_write_error.eq(master.write_error),
            inner.data_stall.eq(master.stall),
        ]
        connect(m, master.axi, flipped(self.m_axi))
        _pass_through(m, self, inner, exclude=("m_axi",))
        return m


def _passed_members(signature, exclude) -> dict:
    """The members of ``signature`` a wrapper passes through: all but ``exclude``."""
    return {name: member for name, member in signature.members.items() if name not in exclude}


def _pass_through(m: Module, outer, inner, *, exclude) -> None:
    """Wire every port of ``outer`` except ``exclude`` to ``inner``'s port of that name."""
    for name, member in _passed_members(outer.signature, exclude).items():
        ours, theirs = getattr(outer, name), getattr(inner, name)
        if member.is_signature:
            connect(m, flipped(ours), theirs)
        elif member.flow == In:
            m.d.comb += theirs.eq(ours)
        else:
            m.d.comb += ours.eq(theirs)
