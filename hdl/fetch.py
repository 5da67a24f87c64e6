"""The instruction fetch of the AXI top: the four streams read from DRAM over AXI4.

The RTL of :mod:`sim.fetch`; the contract is :mod:`accel.timing` (INSTRUCTION FETCH).
:class:`InstructionFetch` reads each engine's stream, ``count`` instructions of 64 bytes from
byte address ``64 * base``, over a read-only AXI4 master ``axi``
(:class:`hdl.axi_master.ReadSignature`, ``fetch.width`` data bytes; one INCR burst of
``B = ceil(64 / width)`` beats per instruction, which never crosses 4 KiB) into a buffer of
``fetch.depth`` instructions per engine, and serves the controller's instruction read port
``imem_<engine>`` from that buffer (synchronous, data one cycle after the address, as the
instruction memory of the raw top). ``fetched_<engine>`` tells the controller that its oldest
instruction not granted yet is in the buffer, ``fetched_next_<engine>`` that the one after it
is too.

AR. The channel is time-multiplexed: counted from cycle 0 (``start`` is the cycle before),
engine ``e`` owns the cycles ``c`` with ``c % (4 * B) == e * B``. In its cycle the engine
sends an AR if its stream has an instruction left and its buffer an entry that is not
requested (an entry is freed by ``fire_<engine>``, the grant of the instruction in it, and
seen free from the next cycle). An AR the slave does not take stays valid and unchanged until
it does (later slots pass unused meanwhile). Bursts are in order (one ID), so the engine of
each R beat is the head of a queue of the engines of the outstanding ARs.

R. ``rready`` is always high: every outstanding burst has its entry. Beat ``j`` of a burst is
written into the ``j``-th ``width``-byte lane of the entry (a bus wider than an instruction
carries it in the lanes of its address); the entry counts as fetched from the cycle after its
last beat. The read port is transparent for the write, so the controller may read the entry
in the very cycle of that beat; it holds the entry's instruction in a register from the cycle
after (:class:`hdl.controller.Controller`). With a slave that answers ``latency`` cycles after
the AR handshake at one beat per cycle and never lowers ``arready``, an instruction requested
in cycle ``c`` may be granted from ``c + latency + B + 1``: :func:`accel.timing.fetch_available`.

``error`` is high in the cycle of an R beat whose ``RRESP`` is SLVERR or DECERR (the beat is
still written: the controller's ``abort`` keeps the instruction from being granted).
``idle`` is high while no burst is outstanding and no AR waits: a program stopped by an error
is over when the fetch is idle too. ``RID``/``RLAST`` are not looked at (the beats of a burst
are counted).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.memory import Memory, ReadPort
from amaranth.lib.wiring import In, Out

from accel import isa
from accel.config import AccelConfig
from accel.isa import Engine
from accel.timing import Fetch
from hdl._check import check_config
from hdl.axi_master import ReadSignature, check_axi
from hdl.controller import INDEX_BITS, INSTRUCTION_BITS, engine_name

__all__ = ["InstructionFetch"]

_ADDR_BITS = 32
_LINE = (isa.INSTRUCTION_BYTES - 1).bit_length()  # log2 of the instruction bytes


class InstructionFetch(wiring.Component):
    """The instruction fetch (module docstring).

    Parameters
    ----------
    config : AccelConfig
        ``dram.latency`` must be >= 1 (:func:`hdl.axi_master.check_axi`).
    fetch : accel.timing.Fetch
        ``depth`` (instructions buffered per engine) and ``width`` (data bytes of ``axi``).

    Ports
    -----
    axi : Out(hdl.axi_master.ReadSignature(fetch.width))
        The read-only AXI4 master.
    start : In(1)
        The controller's ``start``: empties the buffers and restarts the slots.
    busy : In(1)
        The controller's ``busy``: the fetch sends ARs only while it is high.
    <engine>_base, <engine>_count : In(32)
        The streams, as the controller's.
    imem_<engine> : Out(ReadPort.Signature(addr_width=32, shape=512))
        The controller's instruction read port; the entry is ``addr - base`` modulo ``depth``.
    fetched_<engine>, fetched_next_<engine> : Out(1)
        The engine's oldest instruction not granted yet is in the buffer; so is the one after
        it (from a register).
    fire_<engine> : In(1)
        The grant of the engine's next instruction (``trace_<engine>_start``).
    error : Out(1)
        An R beat with ``RRESP`` SLVERR or DECERR, in its cycle.
    idle : Out(1)
        No AR waits and no burst is outstanding.
    stall : Out(1)
        AR valid and not ready (the slave's back-pressure), in that cycle.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig` or ``fetch`` not a
        :class:`~accel.timing.Fetch`.
    ValueError
        If ``dram.latency`` is 0.
    """

    def __init__(self, config: AccelConfig, fetch: Fetch) -> None:
        self._config = check_config(config)
        if not isinstance(fetch, Fetch):
            raise TypeError(f"fetch must be an accel.timing.Fetch, not {fetch!r}")
        check_axi(config)
        self._fetch = fetch
        members = {
            "axi": Out(ReadSignature(fetch.width)),
            "start": In(1),
            "busy": In(1),
            "error": Out(1),
            "idle": Out(1),
            "stall": Out(1),
        }
        for engine in Engine:
            e = engine_name(engine)
            members |= {
                f"{e}_base": In(INDEX_BITS),
                f"{e}_count": In(INDEX_BITS),
                f"imem_{e}": Out(ReadPort.Signature(addr_width=INDEX_BITS, shape=INSTRUCTION_BITS)),
                f"fetched_{e}": Out(1),
                f"fetched_next_{e}": Out(1),
                f"fire_{e}": In(1),
            }
        super().__init__(members)

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def fetch(self) -> Fetch:
        return self._fetch

    def elaborate(self, platform) -> Module:
        m = Module()
        fetch = self._fetch
        depth, width, beats = fetch.depth, fetch.width, fetch.beats()
        engines = len(Engine)
        period = engines * beats
        axi = self.axi
        entry_bits = (depth - 1).bit_length()
        lanes = max(1, width // isa.INSTRUCTION_BYTES)  # instructions per beat
        lane_bits = (lanes - 1).bit_length()

        # --- the slot counter: cycle 0 is slot 0 ---------------------------------------------
        slot = Signal(range(period))
        with m.If(self.start):
            m.d.sync += slot.eq(0)
        with m.Else():
            m.d.sync += slot.eq(Mux(slot == period - 1, 0, slot + 1))

        # --- the outstanding bursts: engine and lane, in AR order ----------------------------
        fields = {"engine": range(engines)}
        if lanes > 1:
            fields["lane"] = range(lanes)
        tag = data.StructLayout(fields)
        m.submodules.outstanding = outstanding = fifo.SyncFIFO(
            width=tag.size, depth=engines * depth
        )
        head = tag(outstanding.r_data)
        # The beat of the head burst (no zero-width wire for one-beat bursts: it lints clean).
        beat = Signal(range(beats)) if beats > 1 else Const(0, 1)
        r_take = axi.rvalid & outstanding.r_rdy
        r_last = r_take & (beat == beats - 1)
        m.d.comb += [
            axi.rready.eq(1),
            outstanding.r_en.eq(r_last),
            self.error.eq(r_take & axi.rresp[1]),  # SLVERR or DECERR
        ]
        if beats > 1:
            with m.If(self.start):
                m.d.sync += beat.eq(0)
            with m.Elif(r_take):
                m.d.sync += beat.eq(Mux(r_last, 0, beat + 1))

        # --- AR: the slot's owner, or the request the slave has not taken yet ----------------
        pending = Signal()
        held_addr = Signal(_ADDR_BITS)
        held_tag = Signal(tag)
        new = Signal()
        new_addr = Signal(_ADDR_BITS)
        new_tag = Signal(tag)
        size = (width - 1).bit_length()
        m.d.comb += [
            axi.arvalid.eq(pending | new),
            axi.araddr.eq(Mux(pending, held_addr, new_addr)),
            axi.arlen.eq(beats - 1),
            axi.arsize.eq(size),
            axi.arburst.eq(1),  # INCR
            axi.arid.eq(0),
        ]
        ar_take = axi.arvalid & axi.arready
        m.d.comb += self.stall.eq(axi.arvalid & ~axi.arready)
        ar_tag = Signal(tag)
        m.d.comb += [
            ar_tag.eq(Mux(pending, held_tag, new_tag)),
            outstanding.w_data.eq(ar_tag),
            outstanding.w_en.eq(ar_take),
        ]
        m.d.comb += self.idle.eq(~pending & ~outstanding.r_rdy)
        with m.If(self.start):
            m.d.sync += pending.eq(0)
        with m.Elif(new & ~axi.arready):
            m.d.sync += [pending.eq(1), held_addr.eq(new_addr), held_tag.eq(new_tag)]
        with m.Elif(ar_take):
            m.d.sync += pending.eq(0)

        for engine in Engine:
            e = engine_name(engine)
            i = int(engine)
            base = getattr(self, f"{e}_base")
            count = getattr(self, f"{e}_count")
            port = getattr(self, f"imem_{e}")
            fire = getattr(self, f"fire_{e}")

            requested = Signal(INDEX_BITS, name=f"{e}_requested")
            reserved = Signal(range(depth + 1), name=f"{e}_reserved")  # requested, not granted
            level = Signal(range(depth + 1), name=f"{e}_level")  # fetched, not granted
            written = Signal(max(1, entry_bits), name=f"{e}_written")  # next entry to fill
            want = Signal(name=f"{e}_want")
            m.d.comb += want.eq(self.busy & (requested < count) & (reserved < depth))
            byte_addr = Signal(_ADDR_BITS, name=f"{e}_addr")
            m.d.comb += byte_addr.eq((base + requested) << _LINE)
            with m.If(~pending & (slot == i * beats) & want):
                m.d.comb += [
                    new.eq(1),
                    new_addr.eq(Cat(Const(0, size), byte_addr[size:]) if width > 64 else byte_addr),
                    new_tag.engine.eq(i),
                ]
                if lanes > 1:
                    m.d.comb += new_tag.lane.eq(byte_addr[_LINE : _LINE + lane_bits])
            mine = ar_tag.engine == i
            granted = fire  # only ever with fetched_<e> high
            with m.If(self.start):
                m.d.sync += [requested.eq(0), reserved.eq(0), level.eq(0), written.eq(0)]
            with m.Else():
                with m.If(ar_take & mine):
                    m.d.sync += requested.eq(requested + 1)
                m.d.sync += reserved.eq(reserved + (ar_take & mine) - granted)
                arrived = r_last & (head.engine == i)
                m.d.sync += level.eq(level + arrived - granted)
                with m.If(arrived):
                    m.d.sync += written.eq(written + 1)

            # The buffer: entry k % depth holds instruction k; beat j fills lane j.
            memory = Memory(shape=INSTRUCTION_BITS, depth=depth, init=[])
            m.submodules[f"{e}_buffer"] = memory
            granularity = 8 * width if beats > 1 else None
            write = memory.write_port(granularity=granularity)
            read = memory.read_port(transparent_for=(write,))
            ours = axi.rvalid & outstanding.r_rdy & (head.engine == i)
            if lanes > 1:
                payload = axi.rdata.word_select(head.lane, INSTRUCTION_BITS)
            else:
                payload = Cat(*([axi.rdata] * beats))
            m.d.comb += [
                write.addr.eq(written[:entry_bits]),
                write.data.eq(payload),
                read.addr.eq((port.addr[:entry_bits] - base[:entry_bits])[:entry_bits]),
                read.en.eq(port.en),
                port.data.eq(read.data),
                getattr(self, f"fetched_{e}").eq(level != 0),
                getattr(self, f"fetched_next_{e}").eq(level > 1),
            ]
            if beats > 1:
                m.d.comb += write.en.eq(Mux(ours, Const(1, beats) << beat, 0))
            else:
                m.d.comb += write.en.eq(ours)
        return m
