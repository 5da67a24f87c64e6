"""Control and status registers: the register map and the register file behind AXI4-Lite.

:data:`REGISTERS` is the register map, the one source of truth: :class:`ControlRegisters`
decodes addresses from it, and :mod:`hdl.flow.package` renders it as Markdown and as a C
header. Every register is 32 bits at a word-aligned byte offset; ``access`` is one of

- ``RO``: read only; a write is ignored (answered ``OKAY``);
- ``RW``: read and write; only the bits of its fields (all 32 if it has none) are stored,
  the others read 0; each byte is written only where ``WSTRB`` is set;
- ``WO``: a command: a write acts, a read returns 0;
- ``W1C``: sticky status bits, set by the hardware, cleared by writing 1 (where ``WSTRB``
  is set); a set and a clear in the same cycle leave the bit set.

An address outside the map is answered ``SLVERR`` (read data 0, a write has no effect);
``awaddr[1:0]``/``araddr[1:0]`` are ignored (accesses are to whole words). The map's
contract, register by register, is in the ``meaning`` of each entry (``docs/rtl.md`` quotes
the rendered table):

- ``CTRL.START`` starts the program described by the ``<ENGINE>_BASE`` / ``<ENGINE>_COUNT``
  registers (the controller's ``start`` is high in the cycle after the write's access, which
  is cycle -1 of the program); it is ignored while ``STATUS.BUSY`` (or while a start is
  pending). ``<ENGINE>_BASE`` / ``_COUNT`` are read by the controller every cycle: write
  them before ``START`` and leave them until ``DONE``.
- ``STATUS.DONE`` is high from the controller's ``done`` until the next start.
- ``ERROR_CAUSE`` says which error ``STATUS.ERROR`` stands for: the controller's ``error`` (an
  illegal instruction) or a bus error, a SLVERR/DECERR response on the data master's R or B
  channel or on the instruction fetch's R channel (the ``*_error`` inputs, one cycle each);
  the bus bits are sticky until the next start. ``STATUS.ERROR`` is their OR.
- ``IRQ_STATUS.DONE`` is set by the controller's ``done``, ``IRQ_STATUS.ERROR`` when
  ``STATUS.ERROR`` rises; ``irq`` is high while any bit of ``IRQ_STATUS & IRQ_ENABLE`` is.
- ``AXI_STALL`` counts the cycles, while ``busy``, in which an AXI4 master of the core offers
  a request the slave does not take (``axi_stall``: AR/AW/W valid, ready low), a departure
  from the contract's slave, which never lowers a ready; ``STATUS.STALLED`` rises with its
  first count, beside the controller's ``stalled`` (queues full, the DRAM refusing a
  request). A slave slower than the contract's latency, or pausing R or B, is not counted
  (it cannot be told from latency); it shows in ``CYCLE`` against the model.
- 64-bit counters (``CYCLE``, the per-engine busy and blocked counters, which stop at
  ``done``, and ``AXI_STALL``) are two words. Reading a ``_LO`` word returns the low 32
  bits and latches the high 32 bits of the same counter value into one snapshot register;
  every ``_HI`` word reads that snapshot. So a reader gets a consistent 64-bit value by
  reading ``X_LO`` and then ``X_HI`` with no other ``_LO`` read in between (one master, or
  a lock).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from accel import isa
from accel.isa import Engine
from hdl import axi_lite
from hdl._check import check_count
from hdl.controller import control_members, engine_name

__all__ = [
    "ADDR_WIDTH",
    "BUS_ERRORS",
    "COUNTER_BITS",
    "ID",
    "MAP_VERSION",
    "REGISTERS",
    "Access",
    "ControlRegisters",
    "Field",
    "Register",
    "core_members",
]

#: Default AXI4-Lite address width: a 4 KiB window.
ADDR_WIDTH = 12
#: Width of the controller's counters behind the registers (``_LO`` and ``_HI`` words).
COUNTER_BITS = 64
#: Value of the ``ID`` register: ASCII "ACCL".
ID = 0x4143434C
#: Version of the register map (``VERSION.MAP``), bumped when a register moves or changes.
MAP_VERSION = 2


class Access(enum.Enum):
    """How a register responds to reads and writes (module docstring)."""

    RO = "RO"
    RW = "RW"
    WO = "WO"
    W1C = "W1C"


@dataclass(frozen=True)
class Field:
    """Bits ``[lsb, lsb + width)`` of a register."""

    name: str
    lsb: int
    width: int
    meaning: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """One 32-bit register: ``name``, byte ``offset``, ``access``, value after reset,
    ``meaning``, and its ``fields`` (none: the whole word is one value)."""

    name: str
    offset: int
    access: Access
    reset: int
    meaning: str
    fields: tuple[Field, ...] = ()

    @property
    def mask(self) -> int:
        """The bits that exist (the fields' bits, or all 32)."""
        if not self.fields:
            return (1 << axi_lite.DATA_WIDTH) - 1
        result = 0
        for field in self.fields:
            result |= field.mask
        return result


_EVENTS = (
    Field("DONE", 0, 1, "the program reached done"),
    Field("ERROR", 1, 1, "STATUS.ERROR rose (an illegal instruction or a bus error)"),
)

#: The bus errors behind ``ERROR_CAUSE``: (field, port of ControlRegisters, meaning).
BUS_ERRORS = (
    ("DATA_READ", "data_read_error", "the data master m_axi got RRESP SLVERR or DECERR (a LOAD)"),
    (
        "DATA_WRITE",
        "data_write_error",
        "the data master m_axi got BRESP SLVERR or DECERR (a STORE)",
    ),
    (
        "FETCH_READ",
        "fetch_error",
        "the instruction master m_axi_insn got RRESP SLVERR or DECERR",
    ),
)


def _counters() -> list[tuple[str, str, str]]:
    """``(register stem, controller port, meaning)`` of each 64-bit counter."""
    result = [
        (
            "CYCLE",
            "cycle",
            "cycle counter: 0 in cycle 0, the program's total cycles from DONE on",
        )
    ]
    for engine in Engine:
        e = engine_name(engine)
        result += [
            (
                f"{e.upper()}_BUSY",
                f"{e}_busy_cycles",
                f"cycles with at least one {e} instruction between its start and done",
            ),
            (
                f"{e.upper()}_BLOCKED",
                f"{e}_blocked_cycles",
                f"cycles the next {e} instruction was fetched and its engine free, but one of "
                "its wait semaphores was zero",
            ),
        ]
    result.append(("AXI_STALL", _AXI_STALL, _AXI_STALL_MEANING))
    return result


#: The counter that ControlRegisters keeps itself (from its ``axi_stall`` input).
_AXI_STALL = "axi_stall_cycles"
_AXI_STALL_MEANING = (
    "AXI back-pressure: cycles of the program (while BUSY) in which a request channel of an "
    "AXI4 master of the core (AR, AW or W of m_axi, AR of m_axi_insn) was valid and its "
    "slave not ready"
)


def _register_map() -> tuple[Register, ...]:
    regs = [
        Register("ID", 0x00, Access.RO, ID, 'identifies the core: ASCII "ACCL"'),
        Register(
            "VERSION",
            0x04,
            Access.RO,
            (MAP_VERSION << 16) | isa.ISA_VERSION,
            "versions of the instruction encoding and of this register map",
            (
                Field("ISA", 0, 16, "accel.isa.ISA_VERSION, the encoding the core fetches"),
                Field("MAP", 16, 16, "version of this register map"),
            ),
        ),
        Register(
            "CTRL",
            0x08,
            Access.WO,
            0,
            "commands",
            (Field("START", 0, 1, "write 1: start the program (ignored while BUSY)"),),
        ),
        Register(
            "STATUS",
            0x0C,
            Access.RO,
            0,
            "state of the program",
            (
                Field("BUSY", 0, 1, "from cycle 0 of the program through its done cycle"),
                Field("DONE", 1, 1, "the program has finished (cleared by START)"),
                Field(
                    "ERROR",
                    2,
                    1,
                    "an error, ERROR_CAUSE says which: an illegal instruction (its stream "
                    "stops and the program never finishes, until START) or a bus error (no "
                    "instruction is granted any more; BUSY falls once those granted are done)",
                ),
                Field(
                    "STALLED",
                    3,
                    1,
                    "a queue was full, the DRAM refused a request, or an AXI slave held a "
                    "ready low (AXI_STALL not 0): cycles may exceed the model's (docs/rtl.md)",
                ),
            ),
        ),
        Register("IRQ_ENABLE", 0x10, Access.RW, 0, "interrupt sources that drive irq", _EVENTS),
        Register(
            "IRQ_STATUS",
            0x14,
            Access.W1C,
            0,
            "interrupt events since last cleared (write 1 to clear)",
            _EVENTS,
        ),
        Register(
            "ERROR_CAUSE",
            0x18,
            Access.RO,
            0,
            "what STATUS.ERROR stands for (cleared by START)",
            (
                Field(
                    "ILLEGAL",
                    0,
                    1,
                    "an instruction's opcode is not its engine's, or it uses another "
                    "engine's semaphore",
                ),
                *(
                    Field(name, 1 + k, 1, meaning)
                    for k, (name, _, meaning) in enumerate(BUS_ERRORS)
                ),
            ),
        ),
    ]
    offset = 0x20
    for engine in Engine:
        e = engine_name(engine)
        regs += [
            Register(
                f"{e.upper()}_BASE",
                offset,
                Access.RW,
                0,
                f"first instruction of the {e} stream, in 64-byte words (the AXI top: its "
                "DRAM byte address / 64)",
            ),
            Register(
                f"{e.upper()}_COUNT",
                offset + 4,
                Access.RW,
                0,
                f"number of instructions of the {e} stream",
            ),
        ]
        offset += 8
    offset = 0x40
    for stem, _, meaning in _counters():
        regs += [
            Register(f"{stem}_LO", offset, Access.RO, 0, f"{meaning}: bits 31..0"),
            Register(
                f"{stem}_HI",
                offset + 4,
                Access.RO,
                0,
                f"{meaning}: bits 63..32, latched by the last _LO read",
            ),
        ]
        offset += 8
    return tuple(regs)


#: The register map (module docstring), in offset order.
REGISTERS: tuple[Register, ...] = _register_map()


def core_members() -> dict[str, wiring.Member]:
    """The controller-facing ports of :class:`ControlRegisters`: the program-control and
    counter members of :func:`hdl.controller.control_members` (64-bit counters), flipped;
    everything but the instruction fetch and the trace."""
    return {
        name: member.flip()
        for name, member in control_members(COUNTER_BITS).items()
        if not name.startswith(("imem_", "trace_"))
    }


class ControlRegisters(wiring.Component):
    """The registers of :data:`REGISTERS` behind an AXI4-Lite slave (module docstring).

    Parameters
    ----------
    addr_width : int
        AXI4-Lite address bits (default :data:`ADDR_WIDTH`); the map must fit.

    Ports
    -----
    bus : ``In(hdl.axi_lite.Signature(addr_width))``
        The AXI4-Lite slave port.
    irq : ``Out(1)``
        High while ``IRQ_STATUS & IRQ_ENABLE`` is not zero.
    data_read_error, data_write_error, fetch_error : ``In(1)``
        Bus errors (:data:`BUS_ERRORS`), high for one cycle each; 0 where there is no such
        master.
    axi_stall : ``In(1)``
        High in a cycle in which an AXI4 master's AR, AW or W is valid and not ready
        (counted in ``AXI_STALL`` while ``busy``; 0 where there is no such master).
    The members of :func:`core_members`, to be connected to the controller's: ``start``
    (out), ``busy``, ``done``, ``error``, ``stalled``, ``cycle`` (in), ``<engine>_base``,
    ``<engine>_count`` (out), ``<engine>_busy_cycles``, ``<engine>_blocked_cycles`` (in).

    Raises
    ------
    TypeError, ValueError
        If ``addr_width`` is not an int, or too narrow for the map, or wider than 32.
    """

    def __init__(self, addr_width: int = ADDR_WIDTH):
        check_count(addr_width, "AXI4-Lite address width", 2)
        needed = (REGISTERS[-1].offset + 3).bit_length()
        if not needed <= addr_width <= 32:
            raise ValueError(
                f"AXI4-Lite address width must be in [{needed}, 32] for the register map, "
                f"not {addr_width}"
            )
        self._addr_width = addr_width
        super().__init__(
            {
                "bus": In(axi_lite.Signature(addr_width)),
                "irq": Out(1),
                **{port: In(1) for _, port, _ in BUS_ERRORS},
                "axi_stall": In(1),
                **core_members(),
            }
        )

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.slave = slave = axi_lite.Slave(self._addr_width)
        connect(m, flipped(self.bus), slave.bus)
        write, read = slave.write, slave.read
        by_name = {reg.name: reg for reg in REGISTERS}

        # Storage of the RW and W1C registers, and the per-register read values.
        stored = {
            reg.name: Signal(reg.mask.bit_length(), name=reg.name.lower(), init=reg.reset)
            for reg in REGISTERS
            if reg.access in (Access.RW, Access.W1C)
        }
        done_seen = Signal()
        error_seen = Signal()
        snapshot = Signal(32)
        bus_errors = Signal(len(BUS_ERRORS))  # sticky until START
        axi_stall_cycles = Signal(COUNTER_BITS)
        axi_stalled = Signal()  # AXI_STALL is not 0
        cause = Cat(self.error, bus_errors)
        error = cause.any()
        values = {
            "ID": Const(ID, 32),
            "VERSION": Const(by_name["VERSION"].reset, 32),
            "CTRL": Const(0, 32),
            "STATUS": Cat(self.busy, done_seen, error, self.stalled | axi_stalled),
            "ERROR_CAUSE": cause,
            **stored,
        }
        counters = {
            stem: axi_stall_cycles if port == _AXI_STALL else getattr(self, port)
            for stem, port, _ in _counters()
        }
        for stem, counter in counters.items():
            values[f"{stem}_LO"] = counter[:32]
            values[f"{stem}_HI"] = snapshot
        if values.keys() != by_name.keys():  # pragma: no cover - a map edited without its RTL
            raise AssertionError(
                f"registers without hardware: {sorted(by_name.keys() - values.keys())}, "
                f"hardware without registers: {sorted(values.keys() - by_name.keys())}"
            )
        for engine in Engine:
            e = engine_name(engine)
            for kind in ("base", "count"):
                m.d.comb += getattr(self, f"{e}_{kind}").eq(stored[f"{e.upper()}_{kind.upper()}"])

        # Address decode: one hit per register (an AND-OR read mux, no case statement).
        def hits(addr) -> dict[str, Signal]:
            word = addr[2:]
            return {reg.name: word == (reg.offset >> 2) for reg in REGISTERS}

        # Read: the value of the addressed register, or SLVERR and 0.
        read_hit = hits(read.addr)
        read_data = 0
        for reg in REGISTERS:
            read_data = read_data | Mux(read_hit[reg.name], values[reg.name] & reg.mask, 0)
        m.d.comb += [read.data.eq(read_data), read.error.eq(~Cat(*read_hit.values()).any())]
        for stem, counter in counters.items():
            with m.If(read.en & read_hit[f"{stem}_LO"]):
                m.d.sync += snapshot.eq(counter[32:])

        # Write: byte enables, then what each access kind does with the bits.
        write_hit = hits(write.addr)
        m.d.comb += write.error.eq(~Cat(*write_hit.values()).any())
        bytes_ = Cat(write.strb[k].replicate(8) for k in range(len(write.strb)))
        start = Signal()
        clear = {}
        for reg in REGISTERS:
            if reg.access not in (Access.RW, Access.W1C):
                continue
            bits = Signal(32, name=f"{reg.name.lower()}_bits")
            m.d.comb += bits.eq(Mux(write.en & write_hit[reg.name], bytes_ & reg.mask, 0))
            if reg.access == Access.RW:
                old = stored[reg.name]
                m.d.sync += old.eq((old & ~bits) | (write.data & bits))
            else:
                clear[reg.name] = write.data & bits
        start_bit = next(f for f in by_name["CTRL"].fields if f.name == "START").mask
        ctrl_bits = Signal(32)
        m.d.comb += [
            ctrl_bits.eq(write.data & Mux(write.en & write_hit["CTRL"], bytes_, 0)),
            start.eq((ctrl_bits & start_bit).any() & ~self.busy & ~self.start),
        ]

        # The start pulse (cycle -1), the sticky DONE, the interrupt events and irq.
        m.d.sync += self.start.eq(start)
        with m.If(self.start):
            m.d.sync += [
                done_seen.eq(0),
                bus_errors.eq(0),
                axi_stall_cycles.eq(0),
                axi_stalled.eq(0),
            ]
        with m.Else():
            with m.If(self.busy & self.axi_stall):
                m.d.sync += [axi_stall_cycles.eq(axi_stall_cycles + 1), axi_stalled.eq(1)]
            with m.If(self.done):
                m.d.sync += done_seen.eq(1)
            new = Cat(*(getattr(self, port) for _, port, _ in BUS_ERRORS))
            m.d.sync += bus_errors.eq(bus_errors | new)
        m.d.sync += error_seen.eq(error)
        events = Cat(self.done, error & ~error_seen)
        status = stored["IRQ_STATUS"]
        m.d.sync += status.eq((status & ~clear["IRQ_STATUS"]) | events)
        m.d.comb += self.irq.eq((status & stored["IRQ_ENABLE"]).any())
        return m
