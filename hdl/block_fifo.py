"""A first-in first-out queue in block RAM, with the timing of Amaranth's ``SyncFIFO``.

:class:`BlockFIFO` has the ports of :class:`amaranth.lib.fifo.SyncFIFO` (``w_data``,
``w_en``, ``w_rdy``, ``r_data``, ``r_en``, ``r_rdy``, ``level``) and the same cycle
behaviour: an entry written in cycle ``t`` is at the head (``r_rdy``, ``r_data``) in cycle
``t + 1``, and the head can be taken in every cycle. Unlike ``SyncFIFO``, whose head is an
asynchronous memory read (LUT RAM on an FPGA), its memory is read synchronously, so that
Yosys maps a deep queue to block RAM (DP16KD on ECP5). Unlike ``SyncFIFOBuffered``, which
adds a cycle between a write to an empty queue and its entry at the head, no cycle is added.

How: the head is a register (``r_data`` comes from flip-flops, not from the memory's
output), and the memory is read one cycle ahead at the entry that will follow the head in
the next cycle, so that when the head is taken its successor is at the memory's output. An
entry written in the cycle in which it becomes the head goes straight into the head
register; one written where the memory is read in that cycle (it becomes the successor)
comes from a second register in the next cycle, since the memory then returns the old
contents.
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.lib.memory import Memory

from hdl._check import check_count

__all__ = ["BlockFIFO"]


class BlockFIFO(Elaboratable):
    """A synchronous FIFO of ``depth`` entries of ``width`` bits, read synchronously from
    its memory (see the module docstring).

    Ports
    -----
    w_data, w_en, w_rdy : Signal
        Write side: the entry is written in a cycle with ``w_en`` and ``w_rdy`` (not full).
    r_data, r_en, r_rdy : Signal
        Read side: ``r_data`` is the head while ``r_rdy`` (not empty); ``r_en`` with
        ``r_rdy`` takes it.
    level : Signal
        Entries held.

    Raises
    ------
    TypeError, ValueError
        If ``width`` is not an int >= 0 or ``depth`` not an int >= 1.
    """

    def __init__(self, *, width: int, depth: int):
        self.width = check_count(width, "FIFO width", 0)
        self.depth = check_count(depth, "FIFO depth", 1)
        self.w_data = Signal(width)
        self.w_en = Signal()
        self.w_rdy = Signal()
        self.r_data = Signal(width)
        self.r_en = Signal()
        self.r_rdy = Signal()
        self.level = Signal(range(depth + 1))

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self.depth
        m.submodules.storage = storage = Memory(shape=self.width, depth=depth, init=[])
        w_port = storage.write_port()
        r_port = storage.read_port(domain="sync")

        def incr(pointer):
            return Mux(pointer == depth - 1, 0, pointer + 1)

        produce = Signal(range(depth))
        consume = Signal(range(depth))  # the head's address
        after = Signal(range(depth), init=1 % depth)  # the address that follows it
        do_write = self.w_en & self.w_rdy
        do_read = self.r_en & self.r_rdy
        kept = Signal(range(depth + 1))  # entries left once this cycle's read is done
        m.d.comb += [
            self.w_rdy.eq(self.level != depth),
            self.r_rdy.eq(self.level != 0),
            kept.eq(self.level - do_read),
            w_port.addr.eq(produce),
            w_port.data.eq(self.w_data),
            w_port.en.eq(do_write),
            # The entry after the next cycle's head.
            r_port.addr.eq(Mux(do_read, incr(after), after)),
        ]
        with m.If(do_read):
            m.d.sync += [consume.eq(after), after.eq(incr(after))]
        with m.If(do_write):
            m.d.sync += produce.eq(incr(produce))
        with m.If(do_write & ~do_read):
            m.d.sync += self.level.eq(self.level + 1)
        with m.Elif(do_read & ~do_write):
            m.d.sync += self.level.eq(self.level - 1)

        # The head's successor: the memory's output, or the entry written where the memory
        # was read (the memory returned that address's old contents).
        latest = Signal(self.width, reset_less=True)
        written = Signal()
        successor = Signal(self.width)
        m.d.sync += written.eq(do_write & (kept == 1))
        with m.If(do_write):
            m.d.sync += latest.eq(self.w_data)
        m.d.comb += successor.eq(Mux(written, latest, r_port.data))

        head = Signal(self.width, reset_less=True)
        with m.If(do_write & (kept == 0)):
            m.d.sync += head.eq(self.w_data)
        with m.Elif(do_read):
            m.d.sync += head.eq(successor)
        m.d.comb += self.r_data.eq(head)
        return m
