"""AXI4 master for the DMA: the DRAM requests and beats of :mod:`hdl.dma` as AXI4 bursts.

:class:`Signature` is an AXI4 port as the master sees it (``Out`` = driven by the master), in
AMBA names without the channel separator (``awvalid``, ``awlen``, ``wstrb``, ``rlast``, ...):
a member ``m_axi`` becomes the Verilog ports ``m_axi_awvalid`` ... ``m_axi_rlast``, which
cocotbext-axi's ``AxiBus.from_prefix(dut, "m_axi")`` and Vivado's interface inference take
as they are. The data bus is ``8 * config.dram.bandwidth`` bits wide (a power of two from 8
to 1024), addresses are 32 bits, IDs 1 bit (``awid`` = ``arid`` = 0; ``bid`` and ``rid`` are
not looked at: one ID, so responses come in order); ``*lock``, ``*cache``, ``*prot``,
``*qos`` are left out (their defaults: normal non-cacheable non-secure data accesses).

:class:`AxiMaster` presents :class:`hdl.dram.Dram`'s ports to the DMA engines (``ar``, ``r``,
``w``, ``b``; same payloads, same timing) and turns them into AXI4 transactions (AMBA AXI4,
ARM IHI 0022, A3 and A4): INCR bursts of full-width beats (``*size`` = log2 of the bus
bytes) from the bus block that holds a run's first byte, split so that a burst never crosses
a 4 KiB boundary and has at most 256 beats. Every channel has full valid/ready handshakes in
both directions, with any slave latency and any back-pressure; the bursts of one direction
are in order (one ID).

Read. A request (``addr``, ``bytes``, ``word``) is taken on ``ar`` (``ready`` while both of
its queues have room) and goes out on AR in the same cycle when nothing waits (an AR the
slave does not take waits in a FIFO, valid and unchanged). Its R beats (blocks of
``bandwidth`` bytes) go through a small FIFO (``rready`` while it has room; the FIFO head,
or the incoming beat when it is empty, is used in the cycle it arrives) into a *realigner*
that cuts them into :class:`~hdl.dram.Dram`'s beats: at most ``bandwidth`` bytes, never
across a word. The realigner holds the previous block and sends one beat per cycle from the
held block and the next one; a request whose first beat straddles two blocks costs one
cycle in which the realigner only takes the first block. With a slave that answers a burst
``latency`` cycles after its AR handshake at one beat per cycle and never holds ``arready``
low, beat cycles are those of :class:`~hdl.dram.Dram` (:func:`accel.timing.load_run_beats`).

Write. The STORE engine sends one beat per bus block (:func:`accel.timing.store_run_beats`):
beat ``k`` of a run carries the run's bytes ``[k*bandwidth, (k+1)*bandwidth)`` at ``a +
k*bandwidth``. Each beat becomes one W beat in the same cycle: its bytes shifted to their
lanes (``a % bandwidth`` up), the lanes below them taken from the run's beat before, WSTRB
set for exactly the bytes written. A run's first beat also issues its AW (a FIFO as for
AR); WLAST ends every burst. W beats the slave does not take wait in a FIFO; when a queue is
full ``w.ready`` falls and the engine waits. One B per burst; the B of the burst holding the
instruction's last beat is ``b``. With a slave that takes every AW and W at once and answers
``latency`` cycles after a burst's last W beat, ``b`` comes when :class:`~hdl.dram.Dram`'s
does.

Errors. ``read_error`` is high in the cycle of an R handshake whose ``RRESP`` is SLVERR or
DECERR, ``write_error`` in the cycle of a B handshake whose ``BRESP`` is; the beats of an
erroneous read still reach the LOAD engine and an erroneous burst's B still counts, so the
engines finish the instructions they hold (the AXI top stops the program and reports the
error, :class:`hdl.axi_top.AxiAccelerator`). ``EXOKAY`` is not an error.

Back-pressure. ``stall`` is high in a cycle in which AR, AW or W is valid and its ready low:
the slave departs from the contract's (which never lowers a ready). The AXI top counts
these cycles (``AXI_STALL``, :mod:`hdl.csr`).

``latency`` must be >= 1: an AXI4 response follows its request's handshake.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from accel.config import AccelConfig
from hdl._check import check_config, check_count
from hdl.block_fifo import BlockFIFO
from hdl.dram import (
    ADDR_BITS,
    BYTES_BITS,
    read_beat_layout,
    read_request_layout,
    write_beat_layout,
)

__all__ = ["ADDR_WIDTH", "AxiMaster", "ReadSignature", "Signature", "check_axi", "data_bytes"]

#: AXI4 address width (the DMA's byte addresses).
ADDR_WIDTH = ADDR_BITS
#: AXI4 ID width: one ID, 0.
ID_WIDTH = 1
#: Beats a burst may have (AXI4 INCR) and the boundary it may not cross.
MAX_BURST = 256
BOUNDARY = 4096


def data_bytes(config: AccelConfig) -> int:
    """The AXI data bus width in bytes: ``config.dram.bandwidth``, which must be a power of
    two (an AXI4 data bus is 8, 16, ... 1024 bits)."""
    bandwidth = check_config(config).dram.bandwidth
    if bandwidth & (bandwidth - 1):
        raise ValueError(
            f"dram.bandwidth = {bandwidth} is not a power of two: an AXI4 data bus is "
            "1, 2, 4, ... 128 bytes wide"
        )
    if bandwidth > 128:
        raise ValueError(f"dram.bandwidth = {bandwidth} exceeds the widest AXI4 bus, 128 bytes")
    return bandwidth


def check_axi(config: AccelConfig) -> int:
    """The AXI data bus bytes of ``config`` (:func:`data_bytes`), after checking that
    ``dram.latency`` >= 1; ``ValueError`` naming the setting otherwise. Call it before
    building a top, so that a refused config leaves no half-built design behind."""
    size = data_bytes(config)
    if config.dram.latency < 1:
        raise ValueError(
            "dram.latency = 0 cannot be met over AXI4: a response follows its request's "
            "handshake (latency >= 1)"
        )
    return size


class Signature(wiring.Signature):
    """An AXI4 port of ``ADDR_WIDTH`` address bits and ``8 * data_bytes`` data bits, master's
    view."""

    def __init__(self, data_bytes: int):
        self._data_bytes = check_count(data_bytes, "AXI4 data bytes", 1)
        width = 8 * data_bytes
        address = {
            "id": Out(ID_WIDTH),
            "addr": Out(ADDR_WIDTH),
            "len": Out(8),
            "size": Out(3),
            "burst": Out(2),
        }
        super().__init__(
            {
                "awvalid": Out(1),
                "awready": In(1),
                **{f"aw{k}": v for k, v in address.items()},
                "wvalid": Out(1),
                "wready": In(1),
                "wdata": Out(width),
                "wstrb": Out(data_bytes),
                "wlast": Out(1),
                "bid": In(ID_WIDTH),
                "bvalid": In(1),
                "bready": Out(1),
                "bresp": In(2),
                "arvalid": Out(1),
                "arready": In(1),
                **{f"ar{k}": v for k, v in address.items()},
                "rid": In(ID_WIDTH),
                "rvalid": In(1),
                "rready": Out(1),
                "rdata": In(width),
                "rresp": In(2),
                "rlast": In(1),
            }
        )

    @property
    def data_bytes(self) -> int:
        return self._data_bytes

    def __eq__(self, other):
        return isinstance(other, Signature) and other.data_bytes == self.data_bytes

    def __hash__(self):
        return hash((Signature, self._data_bytes))

    def __repr__(self):
        return f"axi_master.Signature({self._data_bytes})"


class ReadSignature(wiring.Signature):
    """The read half of :class:`Signature` (AR and R only): a read-only AXI4 master port of
    ``8 * data_bytes`` data bits, as :class:`hdl.fetch.InstructionFetch` has."""

    def __init__(self, data_bytes: int):
        full = Signature(data_bytes).members
        self._data_bytes = data_bytes
        super().__init__({n: m for n, m in full.items() if n.startswith(("ar", "r"))})

    @property
    def data_bytes(self) -> int:
        return self._data_bytes

    def __eq__(self, other):
        return isinstance(other, ReadSignature) and other.data_bytes == self.data_bytes

    def __hash__(self):
        return hash((ReadSignature, self._data_bytes))

    def __repr__(self):
        return f"axi_master.ReadSignature({self._data_bytes})"


def _align(addr, shift: int):
    """``addr`` rounded down to a multiple of ``2**shift`` (its bus block)."""
    return Cat(Const(0, shift), addr[shift:ADDR_BITS]) if shift else addr[:ADDR_BITS]


def _cursor_layout(size: int) -> data.StructLayout:
    """The realigner's position in a request: its next beat starts at ``addr``, ``left``
    bytes of the request and ``word_left`` of the current ``word``-byte word are left; the
    beat's ``count`` bytes, whether they ``cross`` into the next bus block of ``size`` bytes,
    and whether the beat is the request's ``last`` and its word's (``word_last``)."""
    return data.StructLayout(
        {
            "addr": unsigned(ADDR_BITS),
            "left": unsigned(BYTES_BITS),
            "word_left": unsigned(BYTES_BITS),
            "word": unsigned(BYTES_BITS),
            "word_size": range(size + 1),  # min(word, size): a whole word's first beat
            "count": range(size + 1),
            "crosses": 1,
            "last": 1,
            "word_last": 1,
        }
    )


def _cut(cursor, *, addr, left, word, word_size, word_left, count, size: int) -> list:
    """Assignments of a position to ``cursor``: the given fields (``count``, the next beat's
    bytes, is ``min(word_left, size)``, passed in so that the caller can compute it the
    shortest way) and the next beat's flags."""
    shift = (size - 1).bit_length()
    lane = addr[:shift] if shift else Const(0, 1)
    return [
        cursor.addr.eq(addr),
        cursor.left.eq(left),
        cursor.word.eq(word),
        cursor.word_size.eq(word_size),
        cursor.word_left.eq(word_left),
        cursor.count.eq(count),
        cursor.crosses.eq(lane + count > size),
        cursor.last.eq(left == count),
        cursor.word_last.eq(word_left <= size),
    ]


#: A transfer for :class:`_Bursts`: ``beats`` bus blocks from the block at ``addr``.
_TRANSFER = data.StructLayout({"addr": unsigned(ADDR_BITS), "beats": unsigned(BYTES_BITS + 1)})


class _Bursts(wiring.Component):
    """One address channel: transfers in, INCR bursts out (4 KiB rule, <= 256 beats).

    A transfer taken when nothing waits is offered in the same cycle; one the channel does
    not take waits in a FIFO of ``depth`` (``i.ready`` while it has room).
    """

    def __init__(self, data_bytes: int, depth: int):
        self._bytes = data_bytes
        self._depth = depth
        super().__init__(
            {
                "i": In(stream.Signature(_TRANSFER)),
                "valid": Out(1),
                "ready": In(1),
                "addr": Out(ADDR_WIDTH),
                "len": Out(8),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        shift = (self._bytes - 1).bit_length()
        m.submodules.queue = queue = BlockFIFO(width=_TRANSFER.size, depth=self._depth)
        busy = Signal()  # a transfer's later bursts are left
        cursor = Signal(_TRANSFER, reset_less=True)
        source = Signal(_TRANSFER)
        cur = Signal(_TRANSFER)
        bypass = ~busy & ~queue.r_rdy
        m.d.comb += [
            source.eq(Mux(queue.r_rdy, queue.r_data, self.i.payload)),
            cur.eq(Mux(busy, cursor, source)),
            self.valid.eq(busy | queue.r_rdy | self.i.valid),
            self.i.ready.eq(queue.w_rdy),
        ]
        to_boundary = Signal(range(BOUNDARY + 1))  # bytes; whole blocks (addr is aligned)
        m.d.comb += to_boundary.eq(BOUNDARY - cur.addr[:12])
        room = Signal(range(MAX_BURST + 1))  # beats allowed: the boundary and the maximum
        length = Signal(range(MAX_BURST + 1))
        blocks = to_boundary >> shift
        m.d.comb += [
            room.eq(Mux(blocks < MAX_BURST, blocks, MAX_BURST)),
            length.eq(Mux(cur.beats < room, cur.beats, room)),
        ]
        m.d.comb += [self.addr.eq(cur.addr), self.len.eq(length - 1)]
        handshake = self.valid & self.ready
        rest = cur.beats - length
        with m.If(handshake):
            m.d.sync += [
                busy.eq(rest != 0),
                cursor.addr.eq(cur.addr + (length << shift)),
                cursor.beats.eq(rest),
            ]
        m.d.comb += [
            queue.r_en.eq(handshake & ~busy & queue.r_rdy),
            queue.w_data.eq(self.i.payload),
            queue.w_en.eq(self.i.valid & self.i.ready & ~(bypass & handshake)),
        ]
        return m


class AxiMaster(wiring.Component):
    """The DMA's DRAM ports over AXI4 (see the module docstring).

    Parameters
    ----------
    config : AccelConfig
        ``config.dram.bandwidth`` (the bus width, a power of two <= 128) and
        ``config.dram.latency`` (>= 1).
    depth : int, optional
        Read requests accepted and not yet sent to the LOAD engine, and AR, AW and B entries
        that may wait (default ``latency + 2048``; the test DRAM, :class:`hdl.dram.Dram`,
        queues ``latency + 8192``: a program with more requests in flight waits here, beyond
        the contract, and sets ``stalled``). These four
        queues are :class:`hdl.block_fifo.BlockFIFO` queues (block RAM, ``SyncFIFO`` timing); the
        R and W queues (8 entries) are ``SyncFIFO`` queues (LUT RAM).

    Ports
    -----
    ar : In(stream.Signature(read_request_layout()))
    r : Out(stream.Signature(read_beat_layout(config), always_ready=True))
    w : In(stream.Signature(write_beat_layout(config)))
    b : Out(1)
        :class:`hdl.dram.Dram`'s ports, as the DMA engines see them.
    axi : Out(Signature(config.dram.bandwidth))
        The AXI4 master port.
    read_error, write_error : Out(1)
        An R (B) handshake with ``RRESP`` (``BRESP``) SLVERR or DECERR, in its cycle.
    stall : Out(1)
        AR, AW or W valid and not ready, in that cycle.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`, or ``depth`` not an int.
    ValueError
        If the bandwidth is not a power of two or above 128, the latency is 0, or ``depth``
        < 1.
    """

    def __init__(self, config: AccelConfig, *, depth: int | None = None):
        self._config = check_config(config)
        self._bytes = check_axi(config)
        self._depth = check_count(
            config.dram.latency + 2048 if depth is None else depth, "AXI queue depth", 1
        )
        super().__init__(
            {
                "ar": In(stream.Signature(read_request_layout())),
                "r": Out(stream.Signature(read_beat_layout(config), always_ready=True)),
                "w": In(stream.Signature(write_beat_layout(config))),
                "b": Out(1),
                "axi": Out(Signature(self._bytes)),
                "read_error": Out(1),
                "write_error": Out(1),
                "stall": Out(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform) -> Module:
        m = Module()
        size = self._bytes
        shift = (size - 1).bit_length()
        axi = self.axi
        m.d.comb += [
            axi.arsize.eq(shift),
            axi.awsize.eq(shift),
            axi.arburst.eq(1),  # INCR
            axi.awburst.eq(1),
        ]
        self._read(m, size, shift)
        self._write(m, size, shift)
        # RESP[1] set: SLVERR (0b10) or DECERR (0b11); OKAY and EXOKAY are not errors.
        m.d.comb += [
            self.read_error.eq(axi.rvalid & axi.rready & axi.rresp[1]),
            self.write_error.eq(axi.bvalid & axi.bready & axi.bresp[1]),
            self.stall.eq(
                (axi.arvalid & ~axi.arready)
                | (axi.awvalid & ~axi.awready)
                | (axi.wvalid & ~axi.wready)
            ),
        ]
        return m

    def _read(self, m: Module, size: int, shift: int) -> None:
        axi = self.axi
        m.submodules.ar_bursts = bursts = _Bursts(size, self._depth)
        # The realigner's queue holds each request as the walk's position at its first beat.
        m.submodules.requests = requests = BlockFIFO(
            width=_cursor_layout(size).size, depth=self._depth
        )
        m.submodules.r_fifo = blocks = fifo.SyncFIFO(width=8 * size, depth=8)

        # --- requests: to AR and to the realigner's queue at once ----------------------------
        req = self.ar.payload
        offset = req.addr[:shift] if shift else Const(0, 1)
        first = Signal(_cursor_layout(size))
        word_size = Mux(req.word < size, req.word, size)
        m.d.comb += requests.w_data.eq(first)
        m.d.comb += [
            self.ar.ready.eq(bursts.i.ready & requests.w_rdy),
            bursts.i.valid.eq(self.ar.valid & requests.w_rdy),
            bursts.i.payload.addr.eq(_align(req.addr, shift)),
            bursts.i.payload.beats.eq((offset + req.bytes + size - 1) >> shift),
            requests.w_en.eq(self.ar.valid & self.ar.ready),
            *_cut(
                first,
                addr=req.addr,
                left=req.bytes,
                word=req.word,
                word_size=word_size,
                word_left=Mux(req.word < req.bytes, req.word, req.bytes),
                count=Mux(word_size < req.bytes, word_size, req.bytes),
                size=size,
            ),
            axi.arvalid.eq(bursts.valid),
            axi.araddr.eq(bursts.addr),
            axi.arlen.eq(bursts.len),
            bursts.ready.eq(axi.arready),
        ]

        # --- R: the FIFO head, or the arriving block when the FIFO is empty ----------------------
        block = Signal(8 * size)
        block_valid = Signal()
        pop = Signal()
        m.d.comb += [
            axi.rready.eq(blocks.w_rdy),
            blocks.w_data.eq(axi.rdata),
            block.eq(Mux(blocks.r_rdy, blocks.r_data, axi.rdata)),
            block_valid.eq(blocks.r_rdy | axi.rvalid),
            blocks.r_en.eq(pop & blocks.r_rdy),
            blocks.w_en.eq(axi.rvalid & blocks.w_rdy & ~(pop & ~blocks.r_rdy)),
        ]

        # --- the realigner: Dram's beat walk over (held block, next block) -------------------
        # The walk's position (`cursor`) carries its next beat's fields (`count`, `crosses`,
        # `last`, `word_last`), computed a cycle ahead: for a request's first beat when it is
        # queued, for the later beats when the beat before is sent. A beat's cut is then a
        # choice between two registers (the queue's head, the cursor), no arithmetic.
        busy = Signal()
        hold = Signal()  # `held` is the block of cur.addr (else the next block is)
        held = Signal(8 * size, reset_less=True)
        cursor = Signal(_cursor_layout(size), reset_less=True)
        cur = Signal(_cursor_layout(size))
        m.d.comb += cur.eq(Mux(busy, cursor, requests.r_data))
        count, crosses, last = cur.count, cur.crosses, cur.last
        lane = cur.addr[:shift] if shift else Const(0, 1)
        need_block = ~hold | crosses
        step = (busy | requests.r_rdy) & (~need_block | block_valid)
        emit = step & (hold | ~crosses)  # hold 0 and crossing: take the first block only
        m.d.comb += pop.eq(step & need_block)
        window = Mux(hold, Cat(held, block), Cat(block, block))
        shifted = (window >> (lane << 3))[: 8 * size]
        m.d.comb += [
            self.r.valid.eq(emit),
            self.r.payload.count.eq(count),
            self.r.payload.word_last.eq(cur.word_last),
            self.r.payload.last.eq(last),
        ]
        for k in range(size):
            m.d.comb += self.r.payload.data[k].eq(Mux(k < count, shifted[8 * k : 8 * k + 8], 0))
        # The next beat's count, min(word_left', size), without word_left' on its path: a new
        # word's is min(word, size, left'), the current word's min(word_left - count, size).
        left = cur.left - count
        in_word = cur.word_left - count
        nxt = Signal(_cursor_layout(size))
        m.d.comb += _cut(
            nxt,
            addr=cur.addr + count,
            left=left,
            word=cur.word,
            word_size=cur.word_size,
            word_left=Mux(cur.word_last, Mux(cur.word < left, cur.word, left), in_word),
            count=Mux(
                cur.word_last,
                Mux(left < cur.word_size, left, cur.word_size),
                Mux(in_word < size, in_word, size),
            ),
            size=size,
        )
        m.d.comb += requests.r_en.eq(step & ~busy)
        with m.If(pop):
            m.d.sync += held.eq(block)
        with m.If(emit):
            # The next beat starts in the block just taken unless this one ended on its end.
            m.d.sync += [
                cursor.eq(nxt),
                busy.eq(~last),
                hold.eq(~last & (crosses | (lane + count < size))),
            ]
        with m.Elif(step):
            m.d.sync += [cursor.eq(cur), busy.eq(1), hold.eq(1)]

    def _write(self, m: Module, size: int, shift: int) -> None:
        axi = self.axi
        m.submodules.aw_bursts = bursts = _Bursts(size, self._depth)
        beat_layout = data.StructLayout(
            {"data": unsigned(8 * size), "strb": unsigned(size), "last": 1, "end": 1}
        )
        m.submodules.w_fifo = pending = fifo.SyncFIFO(width=beat_layout.size, depth=8)
        m.submodules.b_fifo = flags = BlockFIFO(width=1, depth=self._depth)

        beat = self.w.payload
        lane = beat.addr[:shift] if shift else Const(0, 1)
        block_addr = _align(beat.addr, shift)
        room = pending.w_rdy & flags.w_rdy & bursts.i.ready
        take = self.w.valid & room
        m.d.comb += [
            self.w.ready.eq(room),
            bursts.i.valid.eq(self.w.valid & beat.first & pending.w_rdy & flags.w_rdy),
            bursts.i.payload.addr.eq(block_addr),
            bursts.i.payload.beats.eq((lane + beat.run_bytes + size - 1) >> shift),
            axi.awvalid.eq(bursts.valid),
            axi.awaddr.eq(bursts.addr),
            axi.awlen.eq(bursts.len),
            bursts.ready.eq(axi.awready),
        ]

        # Lanes below `lane` come from the run's previous beat (its top bytes).
        prev_data = Signal(8 * size, reset_less=True)
        prev_en = Signal(size, reset_less=True)
        low_data = Mux(beat.first, 0, prev_data)
        low_en = Mux(beat.first, 0, prev_en)
        back = Signal(range(size + 1))  # shift Cat(previous, current) right by this many bytes
        m.d.comb += back.eq(size - lane)
        out = Signal(beat_layout)
        m.d.comb += [
            out.data.eq((Cat(low_data, beat.data.as_value()) >> (back << 3))[: 8 * size]),
            out.strb.eq((Cat(low_en, beat.en) >> back)[:size]),
        ]
        # WLAST: the run's last block, a 4 KiB boundary, or a burst's 256th beat.
        run_end = Signal(ADDR_BITS, reset_less=True)  # the run's last block
        this_end = Signal(ADDR_BITS)
        m.d.comb += this_end.eq(
            Mux(beat.first, _align(beat.addr + beat.run_bytes - 1, shift), run_end)
        )
        in_burst = Signal(range(MAX_BURST), reset_less=True)  # beats of the burst so far
        position = Mux(beat.first, 0, in_burst)
        boundary = ((block_addr + size) & (BOUNDARY - 1)) == 0
        m.d.comb += [
            out.last.eq((block_addr == this_end) | boundary | (position == MAX_BURST - 1)),
            out.end.eq(beat.last),
        ]
        with m.If(take):
            m.d.sync += [
                prev_data.eq(beat.data.as_value()),
                prev_en.eq(beat.en),
                run_end.eq(this_end),
                in_burst.eq(Mux(out.last, 0, position + 1)),
            ]

        # W: the FIFO head, or the beat being made when the FIFO is empty.
        head = beat_layout(pending.r_data)
        send = Signal(beat_layout)
        m.d.comb += [
            send.eq(Mux(pending.r_rdy, head, out)),
            axi.wvalid.eq(pending.r_rdy | take),
            axi.wdata.eq(send.data),
            axi.wstrb.eq(send.strb),
            axi.wlast.eq(send.last),
            pending.r_en.eq(pending.r_rdy & axi.wready),
            pending.w_data.eq(out),
            pending.w_en.eq(take & ~(~pending.r_rdy & axi.wready)),
        ]
        # B: one per burst, in order; the burst with the instruction's last beat is `b`.
        m.d.comb += [
            flags.w_en.eq(take & out.last),
            flags.w_data.eq(out.end),
            axi.bready.eq(1),
            flags.r_en.eq(axi.bvalid),
            self.b.eq(axi.bvalid & flags.r_rdy & flags.r_data[0]),
        ]
