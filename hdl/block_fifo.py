"""A first-in first-out queue in block RAM, with the timing of Amaranth's ``SyncFIFO``.

:class:`BlockFIFO` has the ports of :class:`amaranth.lib.fifo.SyncFIFO` (``w_data``,
``w_en``, ``w_rdy``, ``r_data``, ``r_en``, ``r_rdy``, ``level``) and the same cycle
behaviour: an entry written in cycle ``t`` is at the head (``r_rdy``, ``r_data``) in cycle
``t + 1``, and the head can be taken in every cycle. Unlike ``SyncFIFO``, whose head is an
asynchronous memory read (LUT RAM on an FPGA), its memory is read synchronously, so that
Yosys maps a deep queue to block RAM (DP16KD on ECP5). Unlike ``SyncFIFOBuffered``, which
adds a cycle between a write to an empty queue and its entry at the head, no cycle is added:
the memory is read one cycle ahead, at the address the head will have in the next cycle
(the next entry when the head is taken, else the head), and an entry written in the cycle
in which it becomes the head comes from a register instead of the memory (which returns
that address's old contents in that cycle).
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
        consume = Signal(range(depth))
        do_write = self.w_en & self.w_rdy
        do_read = self.r_en & self.r_rdy
        ahead = Signal(range(depth))  # the head's address in the next cycle
        m.d.comb += [
            self.w_rdy.eq(self.level != depth),
            self.r_rdy.eq(self.level != 0),
            ahead.eq(Mux(do_read, incr(consume), consume)),
            w_port.addr.eq(produce),
            w_port.data.eq(self.w_data),
            w_port.en.eq(do_write),
            r_port.addr.eq(ahead),
        ]
        m.d.sync += consume.eq(ahead)
        with m.If(do_write):
            m.d.sync += produce.eq(incr(produce))
        with m.If(do_write & ~do_read):
            m.d.sync += self.level.eq(self.level + 1)
        with m.Elif(do_read & ~do_write):
            m.d.sync += self.level.eq(self.level - 1)

        # An entry written where the memory is read in the same cycle (the queue is empty once
        # this cycle's read is done) is the next head: the memory returns the old contents.
        latest = Signal(self.width, reset_less=True)
        written = Signal()
        m.d.sync += written.eq(do_write & (self.level == do_read))
        with m.If(do_write):
            m.d.sync += latest.eq(self.w_data)
        m.d.comb += self.r_data.eq(Mux(written, latest, r_port.data))
        return m
