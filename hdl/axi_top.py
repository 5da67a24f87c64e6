"""The accelerator with an AXI4-Lite control port: :class:`hdl.top.Accelerator` behind
:class:`hdl.csr.ControlRegisters`.

``AxiLiteAccelerator(config)`` is the same machine, cycle for cycle, as
:class:`hdl.top.Accelerator` (which it contains, with 64-bit counters): program control,
the stream bases and lengths and the counters are registers of :data:`hdl.csr.REGISTERS` on
the AXI4-Lite slave ``s_axil`` (Verilog ports ``s_axil_awvalid`` ... ``s_axil_rresp``), and
``irq`` signals done or error. The instruction fetch (``imem_<engine>``), the trace
(``trace_<engine>_*``) and the DRAM ports (``ar``, ``r``, ``w``, ``b``) are the inner top's,
unchanged (an AXI4 master for the memory traffic is a later step).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from accel.config import AccelConfig
from hdl import axi_lite
from hdl.csr import ADDR_WIDTH, COUNTER_BITS, ControlRegisters, core_members
from hdl.top import Accelerator

__all__ = ["AxiLiteAccelerator"]


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

    Ports
    -----
    ``s_axil`` (``In(hdl.axi_lite.Signature(addr_width))``), ``irq`` (``Out(1)``), and every
    port of the inner :class:`~hdl.top.Accelerator` that :func:`hdl.csr.core_members` does not
    name: ``imem_<engine>``, ``trace_<engine>_*``, ``ar``, ``r``, ``w``, ``b``.

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
        load_queue: int = 128,
        inflight: int = 256,
    ):
        self._registers = ControlRegisters(addr_width)
        self._core = Accelerator(
            config, load_queue=load_queue, inflight=inflight, counter_bits=COUNTER_BITS
        )
        controlled = core_members()
        passed = {
            name: member
            for name, member in self._core.signature.members.items()
            if name not in controlled
        }
        super().__init__({"s_axil": In(axi_lite.Signature(addr_width)), "irq": Out(1), **passed})

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

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.registers = regs = self._registers
        connect(m, flipped(self.s_axil), regs.bus)
        m.d.comb += self.irq.eq(regs.irq)
        for name, member in core_members().items():
            # ControlRegisters' members are the core's, flipped.
            if member.flow == Out:
                m.d.comb += getattr(core, name).eq(getattr(regs, name))
            else:
                m.d.comb += getattr(regs, name).eq(getattr(core, name))
        for name, member in self.signature.members.items():
            if name in ("s_axil", "irq"):
                continue
            ours, theirs = getattr(self, name), getattr(core, name)
            if member.is_signature:
                connect(m, flipped(ours), theirs)
            elif member.flow == In:
                m.d.comb += theirs.eq(ours)
            else:
                m.d.comb += ours.eq(theirs)
        return m
