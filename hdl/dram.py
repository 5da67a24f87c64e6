"""DRAM model: a byte array behind independent read and write channels.

The RTL counterpart of :mod:`sim.dram`, and the testbench's outside world: it runs in the
Amaranth simulator and, being plain synthesizable Amaranth, in Verilator. Two parameters from
``config.dram``: ``bandwidth`` (bytes per beat, one beat per cycle per channel) and
``latency`` (cycles).

Read channel. A request (:func:`read_request_layout`: ``addr``, ``bytes``, ``word``) is
accepted on ``ar`` in cycle ``t`` when ``ar.ready`` (at most one per cycle). Its data comes
back on ``r`` in request order, one beat per cycle, the first beat no earlier than cycle
``t + latency`` (in cycle ``t`` itself when ``latency`` is 0: a combinational path from
``ar`` to ``r``). The request's bytes are cut into *words* of ``word`` bytes from ``addr``
(the last one shorter), and each word into beats of ``bandwidth`` bytes (the last one
shorter): a beat never spans two words, which is :func:`accel.timing.run_beats`'s count. A
beat (:func:`read_beat_layout`) carries ``count`` bytes in lanes ``0 .. count-1`` (the other
lanes are zero), ``word_last`` on the last beat of a word and ``last`` on the last beat of
the request. ``r`` is always ready: the DRAM never waits. The memory behaves as a bus of
``bandwidth``-byte blocks aligned to multiples of ``bandwidth`` (what
:class:`hdl.axi_master.AxiMaster` makes of an AXI4 slave): a request whose first beat
straddles two blocks (``addr % bandwidth + count > bandwidth``) starts with one cycle
without a beat (:func:`accel.timing.load_run_beats`). ``bytes`` and ``word`` must be
>= 1 (an empty request is undefined).

bandwidth 3, latency 2, requests A (5 bytes, word 4) in cycle 0 and B (2 bytes) in cycle 1::

    cycle       0     1     2         3             4
    ar          A     B
    r                       A[0:3]    A[3:4] wl     A[4:5] wl,last   (B's first beat in 5)

A request waits in a delay line of ``latency`` stages, then in a FIFO until the beat
generator reaches it. At most ``depth`` requests may be accepted and not yet started (in the
delay line or the FIFO); beyond that ``ar.ready`` falls, which delays the requester and
breaks :mod:`accel.timing`'s LOAD formulas (they assume an unbounded queue). ``depth``
defaults to ``latency +`` :data:`REQUEST_QUEUE`; :attr:`Dram.outstanding` says how many are
waiting, and the
LOAD engine's ``stalled`` flag records that it ever had to wait.

Write channel. A beat (:func:`write_beat_layout`: ``addr``, ``data``, per-byte ``en``,
``last``) presented on ``w`` in cycle ``t`` writes the enabled bytes ``addr + k`` at the end
of the cycle (visible from ``t + 1``); ``w`` is always ready. A beat with ``last`` set is
acknowledged on ``b`` in cycle ``t + latency`` (in cycle ``t`` when ``latency`` is 0), so a
writer that counts its instruction done in the cycle after the acknowledgement gets
``accel.timing``'s ``done = last beat + 1 + latency``.

The two channels never slow each other down. A read sees the writes of earlier cycles.
Addresses wrap modulo ``2**ceil_log2(size)``; reads beyond ``size`` are undefined.
"""

from __future__ import annotations

from collections.abc import Iterable

from amaranth.hdl import Cat, MemoryData, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from accel import isa
from accel.config import AccelConfig
from hdl._check import check_config

#: Read requests the DRAM model queues beyond its latency's by default. The contract's DRAM
#: never refuses a request; this one refuses (``ar.ready`` low) past ``latency +
#: REQUEST_QUEUE`` waiting, which the LOAD engine's ``stalled`` flag records. ResNet-18 and
#: MobileNetV2 at 224 on ``edge`` need 1,092 and 284; U-Net at 64 on an 8x8 ``edge`` machine
#: (input loads of 40 one-pixel runs queued behind a long COMPUTE) and ResNet-50 at 64 on an
#: 8x8 input-stationary one (while weight loads were a request per word) needed more than
#: ``latency + 2048``, the depth before.
REQUEST_QUEUE = 8192

__all__ = ["Dram", "read_beat_layout", "read_request_layout", "write_beat_layout"]

_LOAD = {name: width for name, width, _ in isa.FIELDS[isa.Load]}
#: Width of a DRAM byte address and of a request's byte count (the ISA's fields).
ADDR_BITS = _LOAD["dram_addr"]
BYTES_BITS = _LOAD["run_bytes"]


def read_request_layout() -> data.StructLayout:
    """A read request: ``bytes`` bytes from ``addr``, beats cut at every ``word`` bytes."""
    return data.StructLayout(
        {"addr": unsigned(ADDR_BITS), "bytes": unsigned(BYTES_BITS), "word": unsigned(BYTES_BITS)}
    )


def read_beat_layout(config: AccelConfig) -> data.StructLayout:
    """A read data beat: ``count`` bytes in the low lanes of ``data``."""
    bandwidth = check_config(config).dram.bandwidth
    return data.StructLayout(
        {
            "data": data.ArrayLayout(unsigned(8), bandwidth),
            "count": range(bandwidth + 1),
            "word_last": 1,
            "last": 1,
        }
    )


def write_beat_layout(config: AccelConfig) -> data.StructLayout:
    """A write data beat: byte ``k`` of ``data`` goes to ``addr + k`` if ``en[k]``; ``last``
    on the instruction's last beat, ``first`` on a run's first beat, ``run_bytes`` the run's
    length (for a bus bridge that announces a burst before its data)."""
    bandwidth = check_config(config).dram.bandwidth
    return data.StructLayout(
        {
            "addr": unsigned(ADDR_BITS),
            "data": data.ArrayLayout(unsigned(8), bandwidth),
            "en": unsigned(bandwidth),
            "last": 1,
            "first": 1,
            "run_bytes": unsigned(BYTES_BITS),
        }
    )


class Dram(wiring.Component):
    """Byte-addressed memory with a latency-``latency`` read and write channel.

    Parameters
    ----------
    config : AccelConfig
        ``config.dram.bandwidth`` and ``config.dram.latency``.
    size : int
        Bytes of memory (>= 1).
    init : iterable of int, optional
        Initial bytes from address 0 (the DRAM image); the rest are zero.
    depth : int, optional
        Read requests that may wait (accepted, first beat not yet sent); default ``latency +``
        :data:`REQUEST_QUEUE`.

    Ports
    -----
    ar : In(stream.Signature(read_request_layout()))
        Read requests.
    r : Out(stream.Signature(read_beat_layout(config), always_ready=True))
        Read data.
    w : In(stream.Signature(write_beat_layout(config)))
        Write data; ``w.ready`` is always high.
    b : Out(1)
        Write acknowledgement: high for one cycle per ``w`` beat with ``last``.

    Attributes
    ----------
    outstanding : Signal(range(depth + 1))
        Read requests accepted and not yet started (a register, for testbenches).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`, or ``size``/``depth`` not
        an int.
    ValueError
        If ``size`` or ``depth`` is < 1, or ``init`` is longer than ``size`` or holds a value
        that is not a byte.
    """

    def __init__(
        self,
        config: AccelConfig,
        size: int,
        *,
        init: Iterable[int] = (),
        depth: int | None = None,
    ) -> None:
        self._config = check_config(config)
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"DRAM size must be an int, not {size!r}")
        if size < 1:
            raise ValueError(f"DRAM size must be >= 1 byte, not {size}")
        if depth is None:
            depth = config.dram.latency + REQUEST_QUEUE
        if isinstance(depth, bool) or not isinstance(depth, int):
            raise TypeError(f"DRAM request queue depth must be an int, not {depth!r}")
        if depth < 1:
            raise ValueError(f"DRAM request queue depth must be >= 1, not {depth}")
        image = [int(v) for v in init]
        if len(image) > size:
            raise ValueError(f"DRAM init has {len(image)} bytes, the DRAM holds {size}")
        for k, v in enumerate(image):
            if not 0 <= v < 256:
                raise ValueError(f"DRAM init byte {k} = {v} is not a byte")
        self._size = size
        self._depth = depth
        self._data = MemoryData(shape=unsigned(8), depth=size, init=image)
        super().__init__(
            {
                "ar": In(stream.Signature(read_request_layout())),
                "r": Out(stream.Signature(read_beat_layout(config), always_ready=True)),
                "w": In(stream.Signature(write_beat_layout(config))),
                "b": Out(1),
            }
        )
        self.outstanding = Signal(range(depth + 1))

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def size(self) -> int:
        return self._size

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def data(self) -> MemoryData:
        """The contents, one byte per row."""
        return self._data

    def elaborate(self, platform) -> Module:
        m = Module()
        bandwidth = self._config.dram.bandwidth
        latency = self._config.dram.latency
        m.submodules.memory = memory = Memory(data=self._data)

        # --- write channel ---------------------------------------------------------------
        beat = self.w.payload
        m.d.comb += self.w.ready.eq(1)
        for k in range(bandwidth):
            port = memory.write_port()
            m.d.comb += [
                port.addr.eq(beat.addr + k),
                port.data.eq(beat.data[k]),
                port.en.eq(self.w.valid & beat.en[k]),
            ]
        acknowledge = self.w.valid & beat.last
        if latency == 0:
            m.d.comb += self.b.eq(acknowledge)
        else:
            line = Signal(latency)
            m.d.sync += line.eq(Cat(acknowledge, line[:-1]))
            m.d.comb += self.b.eq(line[-1])

        # --- read channel: delay line, FIFO, beat generator --------------------------------
        request = read_request_layout()
        accept = self.ar.valid & self.ar.ready
        arrive_valid = Signal()  # a request whose latency has elapsed, this cycle
        arrive = Signal(request, reset_less=True)
        if latency == 0:
            m.d.comb += [arrive_valid.eq(accept), arrive.eq(self.ar.payload)]
        elif latency == 1:
            m.d.sync += [arrive_valid.eq(accept), arrive.eq(self.ar.payload)]
        else:
            # Request payloads in a circular RAM read and written at the same index: what is
            # read was written `latency` cycles ago. Valid bits in a resettable shift register.
            delay = Memory(shape=request, depth=latency, init=[])
            m.submodules.delay = delay
            index = Signal(range(latency))
            valid = Signal(latency)
            push = delay.write_port()
            pop = delay.read_port(domain="comb")
            m.d.comb += [
                push.addr.eq(index),
                push.data.eq(self.ar.payload),
                push.en.eq(1),
                pop.addr.eq(index),
                arrive_valid.eq(valid[-1]),
                arrive.eq(pop.data),
            ]
            m.d.sync += [
                index.eq(Mux(index == latency - 1, 0, index + 1)),
                valid.eq(Cat(accept, valid[:-1])),
            ]

        m.submodules.queue = queue = fifo.SyncFIFO(width=request.size, depth=self._depth)
        head = request(queue.r_data)

        # The beat generator: `cursor` is the request being sent; a new one starts (from the
        # FIFO head, or straight from the delay line when the FIFO is empty) when idle.
        cursor_layout = data.StructLayout(
            {
                "addr": unsigned(ADDR_BITS),
                "left": unsigned(BYTES_BITS),  # bytes of the request not yet sent
                "word_left": unsigned(BYTES_BITS),  # bytes of the current word not yet sent
                "word": unsigned(BYTES_BITS),
            }
        )
        busy = Signal()
        cursor = Signal(cursor_layout, reset_less=True)
        source = Signal(request)
        fresh = Signal(cursor_layout)
        cur = Signal(cursor_layout)
        start = ~busy & (queue.r_rdy | arrive_valid)
        gap = Signal()  # a fresh request whose first beat straddles two bus blocks
        m.d.comb += [
            source.eq(Mux(queue.r_rdy, head, arrive)),
            fresh.addr.eq(source.addr),
            fresh.left.eq(source.bytes),
            fresh.word_left.eq(Mux(source.word < source.bytes, source.word, source.bytes)),
            fresh.word.eq(source.word),
            cur.eq(Mux(busy, cursor, fresh)),
        ]
        count = Mux(cur.word_left < bandwidth, cur.word_left, bandwidth)
        word_last = cur.word_left <= bandwidth
        m.d.comb += [
            gap.eq(start & ((cur.addr % bandwidth) + count > bandwidth)),
            self.r.valid.eq(busy | (start & ~gap)),
            self.r.payload.count.eq(count),
            self.r.payload.word_last.eq(word_last),
            self.r.payload.last.eq(cur.left == count),
        ]
        for k in range(bandwidth):
            port = memory.read_port(domain="comb")
            m.d.comb += [
                port.addr.eq(cur.addr + k),
                self.r.payload.data[k].eq(Mux(k < count, port.data, 0)),
            ]
        left = cur.left - count
        nxt = Signal(cursor_layout)
        m.d.comb += [
            nxt.addr.eq(cur.addr + count),
            nxt.left.eq(left),
            nxt.word.eq(cur.word),
            nxt.word_left.eq(
                Mux(word_last, Mux(cur.word < left, cur.word, left), cur.word_left - count)
            ),
        ]
        with m.If(self.r.valid):
            m.d.sync += [cursor.eq(nxt), busy.eq(cur.left != count)]
        with m.Elif(gap):
            m.d.sync += [cursor.eq(cur), busy.eq(1)]

        # FIFO: pop the head when it starts; push an arriving request unless it starts at once.
        bypass = start & ~queue.r_rdy
        m.d.comb += [
            queue.r_en.eq(start & queue.r_rdy),
            queue.w_en.eq(arrive_valid & ~bypass),
            queue.w_data.eq(arrive),
        ]

        # Outstanding requests: accepted and not yet started.
        m.d.comb += self.ar.ready.eq(self.outstanding < self._depth)
        m.d.sync += self.outstanding.eq(self.outstanding + accept - start)
        return m
