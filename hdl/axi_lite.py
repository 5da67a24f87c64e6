"""AXI4-Lite: the bus signature, the response codes, and a slave that turns transactions into
register accesses.

:class:`Signature` is an AXI4-Lite port as the *master* sees it (``Out`` = driven by the
master); a slave has ``In(Signature(...))``. Its members are the AMBA names in lower case
without the channel separator (``awvalid``, ``awaddr``, ``wstrb``, ``bresp``, ...), so a
member ``s_axil`` of a top becomes the Verilog ports ``s_axil_awvalid`` ... ``s_axil_rresp``,
the names FuseSoC, Vivado's interface inference and cocotbext-axi expect.

:class:`Slave` implements the protocol (AMBA AXI4, ARM IHI 0022, section B1) for one
outstanding transaction per direction, and presents each transaction to a register file as
a one-cycle access:

- **Write.** ``awready`` is high while no address is held, ``wready`` while no data is held;
  the AW and W handshakes are independent (either may come first, or both in one cycle). In
  the first cycle that holds both and has no response pending, ``write.en`` is high for one
  cycle with ``write.addr`` (the byte address as received), ``write.data`` and
  ``write.strb``; the register file answers ``write.error`` combinationally in that cycle.
  ``bvalid`` rises in the next cycle with ``bresp`` ``SLVERR`` if ``write.error`` was high,
  else ``OKAY``, and stays until ``bready``. The next AW and W may be taken while the
  response waits.
- **Read.** ``arready`` is high while no read response is pending. In the AR handshake
  cycle ``read.en`` is high with ``read.addr`` (``araddr``); the register file answers
  ``read.data`` and ``read.error`` combinationally, and may act on the read (a read side
  effect happens exactly once per transaction). ``rvalid`` rises in the next cycle with that
  data and ``rresp`` (``SLVERR`` on error, with the data the register file gave), and stays,
  data unchanged, until ``rready``.

No ready depends combinationally on a valid, so any master behaviour (valid before or after
ready, valids held over several cycles, ``bready``/``rready`` low for any time) is accepted.
``awprot``/``arprot`` are accepted and ignored.
"""

from __future__ import annotations

import enum

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl._check import check_count

__all__ = ["DATA_WIDTH", "Resp", "Signature", "Slave"]

#: AXI4-Lite data width supported here (bits).
DATA_WIDTH = 32


class Resp(enum.IntEnum):
    """``BRESP`` / ``RRESP`` codes."""

    OKAY = 0
    EXOKAY = 1  # not used by AXI4-Lite
    SLVERR = 2
    DECERR = 3


class Signature(wiring.Signature):
    """An AXI4-Lite port of ``addr_width`` address bits and 32 data bits, master's view.

    Raises
    ------
    TypeError, ValueError
        If ``addr_width`` is not an int in ``[2, 64]``.
    """

    def __init__(self, addr_width: int):
        check_count(addr_width, "AXI4-Lite address width", 2)
        if addr_width > 64:
            raise ValueError(f"AXI4-Lite address width must be <= 64, not {addr_width}")
        self._addr_width = addr_width
        strb = DATA_WIDTH // 8
        super().__init__(
            {
                "awvalid": Out(1),
                "awready": In(1),
                "awaddr": Out(addr_width),
                "awprot": Out(3),
                "wvalid": Out(1),
                "wready": In(1),
                "wdata": Out(DATA_WIDTH),
                "wstrb": Out(strb),
                "bvalid": In(1),
                "bready": Out(1),
                "bresp": In(2),
                "arvalid": Out(1),
                "arready": In(1),
                "araddr": Out(addr_width),
                "arprot": Out(3),
                "rvalid": In(1),
                "rready": Out(1),
                "rdata": In(DATA_WIDTH),
                "rresp": In(2),
            }
        )

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def __eq__(self, other):
        return isinstance(other, Signature) and other.addr_width == self.addr_width

    def __hash__(self):
        return hash((Signature, self._addr_width))

    def __repr__(self):
        return f"axi_lite.Signature({self._addr_width})"


def write_access_signature(addr_width: int) -> wiring.Signature:
    """The one-cycle write access :class:`Slave` presents (its ``write`` member)."""
    return wiring.Signature(
        {
            "en": Out(1),
            "addr": Out(addr_width),
            "data": Out(DATA_WIDTH),
            "strb": Out(DATA_WIDTH // 8),
            "error": In(1),
        }
    )


def read_access_signature(addr_width: int) -> wiring.Signature:
    """The one-cycle read access :class:`Slave` presents (its ``read`` member)."""
    return wiring.Signature(
        {"en": Out(1), "addr": Out(addr_width), "data": In(DATA_WIDTH), "error": In(1)}
    )


class Slave(wiring.Component):
    """The AXI4-Lite protocol in front of a register file (module docstring).

    Parameters
    ----------
    addr_width : int
        Address bits of the bus (``awaddr``, ``araddr``) and of the accesses.

    Ports
    -----
    bus : ``In(Signature(addr_width))``
        The AXI4-Lite slave port.
    write : ``Out(write_access_signature(addr_width))``
        ``en``, ``addr``, ``data``, ``strb`` out, ``error`` in (same cycle).
    read : ``Out(read_access_signature(addr_width))``
        ``en``, ``addr`` out, ``data``, ``error`` in (same cycle).
    """

    def __init__(self, addr_width: int):
        super().__init__(
            {
                "bus": In(Signature(addr_width)),
                "write": Out(write_access_signature(addr_width)),
                "read": Out(read_access_signature(addr_width)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        bus, write, read = self.bus, self.write, self.read

        # Write: hold the address and the data, each taken on its own handshake.
        aw_full = Signal()
        w_full = Signal()
        m.d.comb += [bus.awready.eq(~aw_full), bus.wready.eq(~w_full)]
        with m.If(bus.awvalid & ~aw_full):
            m.d.sync += [aw_full.eq(1), write.addr.eq(bus.awaddr)]
        with m.If(bus.wvalid & ~w_full):
            m.d.sync += [w_full.eq(1), write.data.eq(bus.wdata), write.strb.eq(bus.wstrb)]
        m.d.comb += write.en.eq(aw_full & w_full & ~bus.bvalid)
        with m.If(write.en):
            m.d.sync += [
                aw_full.eq(0),
                w_full.eq(0),
                bus.bvalid.eq(1),
                bus.bresp.eq(Mux(write.error, Resp.SLVERR, Resp.OKAY)),
            ]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)

        # Read: the access happens in the AR handshake cycle; the response waits for rready.
        m.d.comb += [
            bus.arready.eq(~bus.rvalid),
            read.en.eq(bus.arvalid & ~bus.rvalid),
            read.addr.eq(bus.araddr),
        ]
        with m.If(read.en):
            m.d.sync += [
                bus.rvalid.eq(1),
                bus.rdata.eq(read.data),
                bus.rresp.eq(Mux(read.error, Resp.SLVERR, Resp.OKAY)),
            ]
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        return m
