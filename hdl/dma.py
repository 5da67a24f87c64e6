"""DMA engines: LOAD (DRAM -> input/weight/param/table buffer) and STORE (output buffer -> DRAM).

Bit-exact to :func:`sim.dma.execute_load` / :func:`sim.dma.execute_store` and cycle-exact to
:func:`accel.timing.load_timing` / :func:`accel.timing.store_timing`, with a DRAM that answers
as :class:`hdl.dram.Dram` does. Both engines take an instruction on ``i`` (payload: the
instruction's binary encoding as :func:`hdl.isa.instruction_layout` lays it out); ``i.valid``
is the controller's grant (the instruction's semaphores are held), and the handshake cycle is
the instruction's ``start``. ``complete`` is high for one cycle per instruction, in program
order, in cycle ``done - 1`` (the cycle of its last write, or of its write acknowledgement):
the controller increments the ``signal`` semaphores at the end of that cycle, so they are
visible in ``done``. Counts and ``run_bytes`` must be >= 1 (the compiler never emits an empty
transfer).

LOAD. Run ``(o, j)`` (``o < outer_count``, ``j < inner_count``, ``j`` fastest) is one read
request for ``run_bytes`` bytes from ``dram_addr + o*outer_stride + j*inner_stride``, with
``word`` = the destination's unit (:func:`accel.timing.load_unit_bytes`: its word, or two
words of a weight buffer with two banks, whose port is two words wide; so the DRAM never lets
a beat span two units; a unit cut short by the run writes its second word only if the run
reaches into it, and then steps the buffer address by two). The
issue side sends one request per cycle from ``start`` (the first one combinationally from
``i.payload``) and takes the next instruction in ``start + runs``. The return side walks the
beats in order: word ``w`` of run ``(o, j)`` goes to buffer word ``sram_addr +
o*sram_outer_stride + j*ceil(run_bytes/word) + w``; a beat is written straight into the buffer
at its place in the word with byte enables (no assembly register), and the last beat of a
word also writes zeros over the rest of the word. The last beat of the instruction is its last
write: ``done = last beat + 1``, which with the DRAM's one-beat-per-cycle, in-order channel is
``max(start + latency, previous done) + beats``. The walk of the oldest unfinished LOAD is
held "primed" in a register ahead of its first beat: it is loaded from the head of a
descriptor FIFO in the cycle the previous walk ends, or in any cycle without a beat, so a beat
meets registers only. Priming a LOAD takes the cycle after its ``start``, so with ``latency``
>= 2 the DRAM must answer no sooner than 2 cycles after a request (:class:`hdl.dram.Dram`
answers after ``latency``); with ``latency`` 0 or 1 a beat that finds no walk primed takes it
combinationally from the FIFO head, or, FIFO empty, from the instruction taken in that very
cycle. The LOADs behind the primed one wait in the FIFO (``depth`` entries); when it is full
the engine stops taking instructions, as the contract's LOAD queue rule says for ``depth`` =
:data:`accel.timing.LOAD_QUEUE` (the tops' default). When the DRAM's request queue is full
(``ar.ready`` low) it stops issuing: that, and a full FIFO of another depth, are beyond
:mod:`accel.timing` and set the sticky ``stalled`` flag.

bandwidth 2, latency 1, input buffer of 4-byte words, one LOAD of 2 runs of 5 bytes from DRAM
addresses 0 and 6 (an odd address would straddle two bus blocks: one cycle more)::

    cycle        0      1        2        3           4       5        6
    i            start
    ar           run 0  run 1
    r                   r0[0:2]  r0[2:4]  r0[4:5]     r1[0:2] r1[2:4]  r1[4:5]
    buffer              w0 b0-1  w0 b2-3  w1 b0, 0s   w2 b0-1 w2 b2-3  w3 b0, 0s
    complete                                                           1     (done = 7)

STORE. Run ``r = o*inner_count + j`` sends the first ``run_bytes`` (<= ``cols``) bytes of
output word ``out_base + r`` to ``a = dram_addr + o*outer_stride + j*inner_stride`` as
``ceil((a % bandwidth + run_bytes)/bandwidth)`` beats (one per bus block the run touches;
beat ``k`` carries bytes ``[k*bandwidth, (k+1)*bandwidth)`` of the run at ``a +
k*bandwidth``, an unaligned run's last beat none), one per cycle from ``start`` (the word
is read from the output buffer's asynchronous port in the same cycle); the last beat of
the instruction asks for an acknowledgement, which the DRAM gives ``latency`` cycles later.
The next instruction is taken in ``start + beats``; ``done = start + beats + latency``.
Each beat also carries ``first`` (a run's first beat) and the run's ``run_bytes``.

A scatter STORE (``lane_stride`` = ``s`` > 1) has the beats of a contiguous run of
``run_bytes`` bytes; only its data and byte enables differ: byte ``q`` of the run carries lane
``q / s`` where ``s`` divides ``q``, and no byte between. The engine keeps, per beat, the
first lane ``t`` in it and that lane's byte ``r`` in the beat: lane ``t + u`` goes to byte ``r
+ u*s`` while that is below ``bandwidth``, and the next beat starts at lane ``t + n`` (``n``
such lanes), byte ``r + n*s - bandwidth``. The bus bridge, its WSTRB and the DRAM model take
the byte enables as they are. No multiply sits in a beat's cycle: an instruction's first
beat (``t = r = 0``) decides from ``s`` alone (lane ``u`` is at byte ``k`` iff ``u*s = k``,
compares with constants), and the multiples ``u*s`` and ``n*s - bandwidth`` that later
beats add to ``r`` are registered when the instruction is taken (the clock's critical path
before, ``docs/synthesis.md``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from accel import isa
from accel.config import AccelConfig
from accel.isa import Buffer
from accel.timing import LOAD_QUEUE, load_unit_bytes
from hdl._check import check_config, check_count
from hdl.buffers import async_read_signature, dma_write_signature, load_targets
from hdl.dram import read_beat_layout, read_request_layout, write_beat_layout
from hdl.isa import instruction_layout

__all__ = ["LOAD_LAYOUT", "STORE_LAYOUT", "LoadEngine", "StoreEngine"]

#: A decoded LOAD instruction.
LOAD_LAYOUT = instruction_layout(isa.Load)
#: A decoded STORE instruction.
STORE_LAYOUT = instruction_layout(isa.Store)

_LOAD = {name: width for name, width, _ in isa.FIELDS[isa.Load]}
_STORE = {name: width for name, width, _ in isa.FIELDS[isa.Store]}


def _fields(widths: dict[str, int], names: str) -> data.StructLayout:
    return data.StructLayout({name: unsigned(widths[name]) for name in names.split()})


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _times(value, factor: int):
    """``value * factor`` for a constant ``factor`` >= 0, as shifts and adds (no multiplier)."""
    terms = [value << bit for bit in range(factor.bit_length()) if factor >> bit & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0)


#: What the LOAD issue side keeps of its instruction.
_ISSUE = _fields(_LOAD, "buffer outer_count outer_stride inner_count inner_stride run_bytes")
#: What the LOAD return side needs (a descriptor FIFO entry).
_RETURN = _fields(_LOAD, "buffer sram_addr outer_count sram_outer_stride inner_count")
#: What the STORE engine keeps of its instruction.
_STORE_HELD = _fields(
    _STORE, "outer_count outer_stride inner_count inner_stride run_bytes lane_stride"
)

_BUFFER_PORTS = {
    Buffer.INPUT: "input_buf",
    Buffer.WEIGHT: "weight_buf",
    Buffer.PARAM: "param_buf",
    Buffer.TABLE: "table_buf",
}


def _next_run(m: Module, nxt, pos, instr, inner_last, run: str, targets: list[str]) -> None:
    """Drive into ``nxt`` the run after the one at ``pos`` of a DMA walk: run ``j + 1``,
    ``inner_stride`` past field ``run`` of ``pos``, unless ``inner_last``; else run 0 of row
    ``o + 1``, ``outer_stride`` past ``row_addr``. The fields ``targets`` of ``nxt`` take the
    new run's address."""
    with m.If(~inner_last):
        addr = getattr(pos, run) + instr.inner_stride
        m.d.comb += [nxt.j.eq(pos.j + 1), *(getattr(nxt, name).eq(addr) for name in targets)]
    with m.Else():
        row_addr = pos.row_addr + instr.outer_stride
        m.d.comb += [nxt.j.eq(0), nxt.o.eq(pos.o + 1), nxt.row_addr.eq(row_addr)]
        m.d.comb += [getattr(nxt, name).eq(row_addr) for name in targets]


class LoadEngine(wiring.Component):
    """The LOAD half of the DMA: strided DRAM runs into buffer words.

    Parameters
    ----------
    config : AccelConfig
        Word sizes and depths of the four buffers, ``config.dram.bandwidth``.
    depth : int
        LOAD instructions that may wait for their first data beat (default 128; ResNet-18 and
        MobileNetV2 at 224x224 on the ``edge`` preset need 32 and 64).

    Ports
    -----
    i : In(stream.Signature(LOAD_LAYOUT))
        The instruction; ``valid`` is the controller's grant, the handshake is ``start``.
    ar : Out(stream.Signature(read_request_layout()))
        Read requests, one per run.
    r : In(stream.Signature(read_beat_layout(config), always_ready=True))
        Read data, in request order.
    input_buf, weight_buf, param_buf, table_buf : In(dma_write_signature(depth, word_bytes))
        Byte-enable write ports of :class:`hdl.buffers.InputBuffer`, ``WeightBuffer``,
        ``ParamBuffer``, ``TableBuffer`` (their ``dma`` ports).
    complete : Out(1)
        High in cycle ``done - 1`` of each instruction (its last buffer write).
    stalled : Out(1)
        Sticky (until reset): the engine once waited beyond the contract (``ar.ready`` low,
        or a full descriptor FIFO whose ``depth`` is not :data:`accel.timing.LOAD_QUEUE`);
        from then on its cycles may be later than accel.timing's.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig` or ``depth`` not an int.
    ValueError
        If ``depth`` < 1.
    """

    def __init__(self, config: AccelConfig, *, depth: int = LOAD_QUEUE) -> None:
        self._config = check_config(config)
        self._depth = check_count(depth, "LOAD descriptor queue depth", 1)
        self._targets = load_targets(config)
        super().__init__(
            {
                "i": In(stream.Signature(LOAD_LAYOUT)),
                "ar": Out(stream.Signature(read_request_layout())),
                "r": In(stream.Signature(read_beat_layout(config), always_ready=True)),
                **{
                    _BUFFER_PORTS[buffer]: In(
                        dma_write_signature(words, load_unit_bytes(config, buffer))
                    )
                    for buffer, (words, _) in self._targets.items()
                },
                "complete": Out(1),
                "stalled": Out(1),
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
        bandwidth = self._config.dram.bandwidth
        # A request's beats are cut at its buffer's units (a word, or a banked weight
        # buffer's two): `words` are the units, the walk writes one per unit.
        words = {buffer: load_unit_bytes(self._config, buffer) for buffer in self._targets}
        m.submodules.queue = queue = fifo.SyncFIFO(width=_RETURN.size, depth=self._depth)

        # --- issue side: one request per run per cycle -----------------------------------
        busy = Signal()
        held = Signal(_ISSUE, reset_less=True)
        position = data.StructLayout(
            {
                "o": unsigned(_LOAD["outer_count"]),
                "j": unsigned(_LOAD["inner_count"]),
                "addr": unsigned(_LOAD["dram_addr"]),  # of run (o, j)
                "row_addr": unsigned(_LOAD["dram_addr"]),  # of run (o, 0)
            }
        )
        state = Signal(position, reset_less=True)
        taken = Signal(_ISSUE)  # what `held` keeps of the instruction on `i`
        ins = Signal(_ISSUE)
        cur = Signal(position)
        first = Signal(position)
        payload = self.i.payload
        m.d.comb += [
            first.addr.eq(payload.dram_addr),
            first.row_addr.eq(payload.dram_addr),
            taken.eq(Cat(*(payload[name] for name in _ISSUE.members))),
            ins.eq(Mux(busy, held, taken)),
            cur.eq(Mux(busy, state, first)),
        ]

        # The run after this one, for a run of the held instruction (from `state` and
        # `held`) and for the first run of the one on `i` (from `first` and `taken`) side by
        # side: `busy` only selects, no carry chain follows it.
        def step(pos, instr, name: str):
            inner_last = pos.j == instr.inner_count - 1
            last_run = inner_last & (pos.o == instr.outer_count - 1)
            nxt = Signal(position, name=name)
            m.d.comb += nxt.eq(pos)
            _next_run(m, nxt, pos, instr, inner_last, "addr", ["addr"])
            return last_run, nxt.as_value()

        held_last, held_nxt = step(state, held, "next_of_held")
        first_last, first_nxt = step(first, taken, "next_of_first")
        last_run, nxt = Mux(busy, held_last, first_last), Mux(busy, held_nxt, first_nxt)
        word = Signal(range(max(words.values()) + 1))
        with m.Switch(ins.buffer):
            for buffer, size in words.items():
                with m.Case(buffer):
                    m.d.comb += word.eq(size)
        m.d.comb += [
            self.ar.valid.eq(busy | (self.i.valid & queue.w_rdy)),
            self.ar.payload.addr.eq(cur.addr),
            self.ar.payload.bytes.eq(ins.run_bytes),
            self.ar.payload.word.eq(word),
            self.i.ready.eq(~busy & queue.w_rdy & self.ar.ready),
        ]
        issue = self.ar.valid & self.ar.ready
        take = self.i.valid & self.i.ready
        # The contract's descriptor queue is LOAD_QUEUE deep and its DRAM never refuses a
        # request: waiting for the DRAM, or for a queue of another depth, departs from it.
        beyond = self.ar.valid & ~self.ar.ready
        if self._depth != LOAD_QUEUE:
            beyond = beyond | (self.i.valid & ~busy & ~queue.w_rdy)
        with m.If(beyond):
            m.d.sync += self.stalled.eq(1)
        with m.If(issue):
            m.d.sync += [state.eq(nxt), busy.eq(~last_run)]
        with m.If(take):
            m.d.sync += held.eq(taken)

        # --- return side: beats into buffer words ------------------------------------------
        slots = max(_ceil_div(w, bandwidth) for w in words.values())
        walk = data.StructLayout(
            {
                "desc": _RETURN,
                "inner_last": unsigned(_LOAD["inner_count"]),  # inner_count - 1
                "outer_last": unsigned(_LOAD["outer_count"]),  # outer_count - 1
                # j == inner_last and o == outer_last, kept with the counts: the walk's end
                # then meets no compare (the path from a beat to the FIFO's level was one).
                "j_last": 1,
                "o_last": 1,
                "o": unsigned(_LOAD["outer_count"]),
                "j": unsigned(_LOAD["inner_count"]),
                "addr": unsigned(_LOAD["sram_addr"]),  # buffer word being written
                "row": unsigned(_LOAD["sram_addr"]),  # first word of run (o, 0)
                "slot": range(max(2, slots)),  # beat of the word: bytes [slot*bandwidth, ...)
            }
        )

        def fresh_walk(bits, name: str) -> Signal:
            desc = data.View(_RETURN, bits)
            walk_ = Signal(walk, name=name)
            m.d.comb += [
                walk_.desc.eq(desc),
                walk_.inner_last.eq(desc.inner_count - 1),
                walk_.outer_last.eq(desc.outer_count - 1),
                walk_.j_last.eq(desc.inner_count == 1),  # j = 0 == inner_count - 1
                walk_.o_last.eq(desc.outer_count == 1),
                walk_.addr.eq(desc.sram_addr),
                walk_.row.eq(desc.sram_addr),
            ]
            return walk_

        # Priming (see the module docstring) keeps the FIFO's asynchronous read and the
        # count arithmetic off the path from a beat to the buffers and to `complete` (the
        # controller's semaphores): with latency >= 2 a beat meets registers only. The
        # combinational fallback for latency 0 and 1 exists only in those configurations.
        early = self._config.dram.latency < 2
        primed = Signal()
        held_walk = Signal(walk, reset_less=True)
        head = fresh_walk(queue.r_data, "head")
        at = Signal(walk)
        beat = self.r.payload
        bypass = Signal()  # latency 0, FIFO empty: the beat's LOAD is the one taken now
        if early:
            taken = Cat(*(payload[name] for name in _RETURN.members))
            direct = fresh_walk(Mux(queue.r_rdy, queue.r_data, taken), "direct")
            m.d.comb += [
                at.eq(Mux(primed, held_walk, direct)),
                bypass.eq(self.r.valid & ~primed & ~queue.r_rdy),
            ]
        else:
            m.d.comb += at.eq(held_walk)
        m.d.comb += [
            queue.w_en.eq(take & ~bypass),
            queue.w_data.eq(Cat(*(payload[name] for name in _RETURN.members))),
        ]

        # Byte b of a word is lane b % bandwidth of beat slot b // bandwidth. The beat's slot
        # gets the beat's bytes (lanes past `count` as zero); on a word's last beat every later
        # slot gets zeros: the bytes past run_bytes.
        in_slot = [at.slot == s for s in range(slots)]
        after_slot = [Const(0)] + [at.slot < s for s in range(1, slots)]
        lane_ok = [k < beat.count for k in range(bandwidth)]
        # A banked weight unit's second word exists when the unit's bytes reach into it;
        # only then are its bytes past the run zeroed (else they are the next word's).
        banked = self._config.buffers.weight_banks > 1
        if banked:
            weight_word = self._targets[Buffer.WEIGHT][1]
            second = Signal()
            m.d.comb += second.eq(_times(at.slot, bandwidth) + beat.count > weight_word)
        for buffer, port_name in _BUFFER_PORTS.items():
            port = getattr(self, port_name)
            selected = self.r.valid & (at.desc.buffer == buffer)
            enables, values = [], []
            for b in range(words[buffer]):
                s, k = divmod(b, bandwidth)
                zeroed = in_slot[s] | (beat.word_last & after_slot[s])
                if banked and buffer == Buffer.WEIGHT and b >= weight_word:
                    zeroed = (in_slot[s] & lane_ok[k]) | (zeroed & second)
                enables.append(selected & zeroed)
                values.append(Mux(in_slot[s] & lane_ok[k], beat.data[k], 0))
            m.d.comb += [
                port.addr.eq(at.addr),
                port.en.eq(Cat(*enables)),
                port.data.eq(Cat(*values)),
            ]

        inner_done = at.j_last
        end = beat.last & inner_done & at.o_last
        after = Signal(walk)
        m.d.comb += after.eq(at)
        step = 1
        if banked:  # a banked weight unit: one word, or two when its bytes reach the second
            step = Mux((at.desc.buffer == Buffer.WEIGHT) & second, 2, 1)
        with m.If(beat.word_last):
            m.d.comb += [after.slot.eq(0), after.addr.eq(at.addr + step)]
        with m.Else():
            m.d.comb += after.slot.eq(at.slot + 1)
        with m.If(beat.last):
            with m.If(~inner_done):
                j = (at.j + 1)[: len(at.j)]
                m.d.comb += [after.j.eq(j), after.j_last.eq(j == at.inner_last)]
            with m.Else():
                row = at.row + at.desc.sram_outer_stride
                o = (at.o + 1)[: len(at.o)]
                m.d.comb += [
                    after.j.eq(0),
                    after.j_last.eq(at.inner_last == 0),
                    after.o.eq(o),
                    after.o_last.eq(o == at.outer_last),
                    after.row.eq(row),
                    after.addr.eq(row),
                ]
        # Priming: after a walk's last beat, the next waiting LOAD's walk from the FIFO head;
        # with the return side idle, the FIFO head as soon as it is there.
        m.d.comb += queue.r_en.eq(0)
        with m.If(primed):  # noqa: SIM117 (the Elif chain below belongs to this If)
            with m.If(self.r.valid):
                with m.If(~end):
                    m.d.sync += held_walk.eq(after)
                with m.Elif(queue.r_rdy):
                    m.d.sync += held_walk.eq(head)
                    m.d.comb += queue.r_en.eq(1)
                with m.Else():
                    m.d.sync += primed.eq(0)
        if early:
            with m.Elif(self.r.valid):  # a beat before its walk is primed (latency < 2)
                m.d.comb += queue.r_en.eq(queue.r_rdy)
                with m.If(~end):
                    m.d.sync += [held_walk.eq(after), primed.eq(1)]
        with m.Elif(queue.r_rdy):
            m.d.sync += [held_walk.eq(head), primed.eq(1)]
            m.d.comb += queue.r_en.eq(1)
        m.d.comb += self.complete.eq(self.r.valid & end)
        return m


class StoreEngine(wiring.Component):
    """The STORE half of the DMA: output buffer words to strided DRAM runs.

    Parameters
    ----------
    config : AccelConfig
        ``config.array.cols`` (output word), ``config.buffers.output_bytes``,
        ``config.dram.bandwidth``.

    Ports
    -----
    i : In(stream.Signature(STORE_LAYOUT))
        The instruction; ``valid`` is the controller's grant, the handshake is ``start``.
    output_buf : In(async_read_signature(depth, ArrayLayout(signed(8), cols)))
        The output buffer's ``store`` port (asynchronous read).
    w : Out(stream.Signature(write_beat_layout(config)))
        Write beats; ``last`` on the instruction's last beat. While ``w.ready`` is low the
        engine holds its beat (and takes no instruction): a wait beyond the contract.
    b : In(1)
        Write acknowledgement: the DRAM's ``b``.
    complete : Out(1)
        High in cycle ``done - 1`` of each instruction (its acknowledgement).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = check_config(config)
        cols = config.array.cols
        self._out_depth = config.output_words
        super().__init__(
            {
                "i": In(stream.Signature(STORE_LAYOUT)),
                "output_buf": In(
                    async_read_signature(self._out_depth, data.ArrayLayout(signed(8), cols))
                ),
                "w": Out(stream.Signature(write_beat_layout(config))),
                "b": In(1),
                "complete": Out(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        bandwidth = self._config.dram.bandwidth
        cols = self._config.array.cols
        groups = _ceil_div(cols, bandwidth)  # data beats of a full word (one more may follow)
        busy = Signal()
        held = Signal(_STORE_HELD, reset_less=True)
        position = data.StructLayout(
            {
                "o": unsigned(_STORE["outer_count"]),
                "j": unsigned(_STORE["inner_count"]),
                "k": range(groups + 1),  # beat of the run
                "left": unsigned(_STORE["run_bytes"]),  # bytes of the run from this beat on
                "addr": unsigned(_STORE["dram_addr"]),  # of this beat
                "run_addr": unsigned(_STORE["dram_addr"]),  # of run (o, j)
                "row_addr": unsigned(_STORE["dram_addr"]),  # of run (o, 0)
                "word": unsigned(_STORE["out_base"]),  # output buffer word of the run
                # scatter (lane_stride > 1): the first lane in this beat and its byte
                "t": range(cols + 1),
                "r": unsigned(_STORE["lane_stride"]),
            }
        )
        state = Signal(position, reset_less=True)
        payload = self.i.payload
        taken = Signal(_STORE_HELD)  # what `held` keeps of the instruction on `i`
        ins = Signal(_STORE_HELD)
        first = Signal(position)
        cur = Signal(position)
        m.d.comb += [
            first.left.eq(payload.run_bytes),
            first.addr.eq(payload.dram_addr),
            first.run_addr.eq(payload.dram_addr),
            first.row_addr.eq(payload.dram_addr),
            first.word.eq(payload.out_base),
            taken.eq(Cat(*(payload[name] for name in _STORE_HELD.members))),
            ins.eq(Mux(busy, held, taken)),
            cur.eq(Mux(busy, state, first)),
        ]

        # The beat: bytes [k*bandwidth, (k+1)*bandwidth) of the word, those below `left`.
        m.d.comb += self.output_buf.addr.eq(cur.word)
        pad = Const(0, 8 * ((groups + 1) * bandwidth - cols))
        padded = Cat(self.output_buf.data.as_value(), pad)

        # The walk's flags and next position are computed for a beat of the held instruction
        # (from `state` and `held`) and for the first beat of the one on `i` (from `first`
        # and `taken`) side by side; `busy` only selects, no carry chain follows it. A held
        # beat's flags are registers (`state_end`, `state_j_last`, `state_o_last`: the run
        # ends, j and o are the last), written with `state` from the beat before, so no
        # compare sits between `state` or `held` and the selects they drive.
        def flags_after(pos, instr, flags, o_last):
            """(j, o) are the last of their counts at the beat after the one at ``pos``:
            unchanged within a run; run ``j + 1`` is the last if ``j + 2 == inner_count``,
            run 0 of row ``o + 1`` if ``inner_count == 1`` (modulo the fields' widths)."""
            end, inner_last, _ = flags
            j_last = Mux(
                inner_last,
                instr.inner_count == 1,
                (pos.j + 2)[: len(pos.j)] == instr.inner_count,
            )
            o_last_after = Mux(inner_last, (pos.o + 2)[: len(pos.o)] == instr.outer_count, o_last)
            return Mux(end, j_last, inner_last), Mux(end, o_last_after, o_last)

        def block_room(run_bytes):
            """``(fits, limit)`` of a run of ``run_bytes``, for :func:`ends_in_block`."""
            limit = Signal(range(bandwidth + 1))
            m.d.comb += limit.eq(bandwidth - run_bytes)  # its low bits: used when it fits
            return run_bytes <= bandwidth, limit

        def ends_in_block(addr, room):
            """A run from ``addr`` whose ``block_room`` is ``room`` ends on the beat at
            ``addr``: one beat per bus block, so the run ends on the beat whose block holds its
            last byte (an unaligned run's extra last beat has no byte enabled)."""
            fits, limit = room
            return fits & ((addr % bandwidth) <= limit)

        def end_after(pos, instr, flags, room):
            """Whether the run ends on the beat after the one at `pos` (`step`'s): within
            the run `addr` moves a block on (`addr % bandwidth` stays) and `left` drops by
            `bandwidth` (or to 0); a new run starts at its address with `run_bytes`, whose
            `block_room` is `room`."""
            end, inner_last, _ = flags
            within = (pos.addr % bandwidth) + pos.left <= 2 * bandwidth
            start = Mux(
                inner_last,
                pos.row_addr + instr.outer_stride,
                pos.run_addr + instr.inner_stride,
            )
            return Mux(end, ends_in_block(start, room), within)

        state_end = Signal(reset_less=True)
        state_j_last = Signal(reset_less=True)
        state_o_last = Signal(reset_less=True)
        held_flags = (state_end, state_j_last, state_end & state_j_last & state_o_last)
        # The held instruction's `block_room` is registered with it: no adder of `run_bytes`
        # sits between a beat's flags and the next one's.
        taken_room = block_room(taken.run_bytes)
        held_fits = Signal(reset_less=True)
        held_limit = Signal(range(bandwidth + 1), reset_less=True)
        # The first beat: j = o = 0 is the last if the count is 1.
        first_end, first_j_last = ends_in_block(first.addr, taken_room), taken.inner_count == 1
        first_o_last = taken.outer_count == 1
        first_flags = (first_end, first_j_last, first_end & first_j_last & first_o_last)
        last = Mux(busy, held_flags[2], first_flags[2])

        # Scatter: lane t + u at byte r + u*s of the beat (module docstring). No multiply sits
        # between the instruction (or `busy`) and the beat: the first beat of an instruction
        # (t = r = 0) decides from s alone by comparisons with constants, a later beat adds r
        # to the multiples u*s and u*s - bandwidth kept in registers since the take.
        scatter = ins.lane_stride > 1
        s = payload.lane_stride
        # u*s saturated to the width of r (a byte at or past that is past the beat too), and
        # n*s - bandwidth modulo it (used only when the sum with r is a byte of the next beat).
        top = (1 << len(state.r)) - 1
        mult = [Signal.like(state.r, name=f"mult{u}", reset_less=True) for u in range(bandwidth)]
        less = [
            Signal.like(state.r, name=f"less{n}", reset_less=True) for n in range(bandwidth + 1)
        ]
        with m.If(self.i.valid & self.i.ready):
            for u in range(1, bandwidth):
                product = _times(s, u)
                m.d.sync += mult[u].eq(Mux(product > top, top, product))
            m.d.sync += [less[n].eq(_times(s, n) - bandwidth) for n in range(bandwidth + 1)]
        # A later beat: lane state.t + u at byte place[u] = state.r + u*s.
        place = [state.r] + [state.r + mult[u] for u in range(1, bandwidth)]
        shifted = Cat(self.output_buf.data.as_value(), Const(0, 8 * bandwidth)).bit_select(
            state.t * 8, 8 * bandwidth
        )
        later_hits = [place[u] < bandwidth for u in range(bandwidth)]  # a prefix of ones
        later_chosen = [[place[u] == k for u in range(bandwidth)] for k in range(bandwidth)]
        later_r = Signal.like(cur.r)
        # The first beat: lane u at byte u*s, so u*s < bandwidth <=> s <= (bandwidth-1) // u.
        first_hits = [Const(1)] + [s <= (bandwidth - 1) // u for u in range(1, bandwidth)]
        first_chosen = [
            [Const(k == 0)] + [Const(0) if k % u else s == k // u for u in range(1, bandwidth)]
            for k in range(bandwidth)
        ]
        first_r = Signal.like(cur.r)
        later_count = Signal(range(bandwidth + 1))  # lanes in this beat
        first_count = Signal(range(bandwidth + 1))
        m.d.comb += [later_count.eq(sum(later_hits)), first_count.eq(sum(first_hits))]
        with m.Switch(later_count):
            for n in range(bandwidth):
                with m.Case(n):
                    m.d.comb += later_r.eq(state.r + less[n])
            with m.Default():  # count = bandwidth
                m.d.comb += later_r.eq(state.r + less[bandwidth])
        # First beat, 2 <= s < bandwidth: ceil(bandwidth/s) lanes; s >= bandwidth: one lane.
        with m.Switch(s):
            for stride in range(2, bandwidth):
                with m.Case(stride):
                    m.d.comb += first_r.eq(-(-bandwidth // stride) * stride - bandwidth)
            with m.Default():
                m.d.comb += first_r.eq(s - bandwidth)
        lanes = self.output_buf.data.as_value()  # unsigned bytes
        scatter_data, scatter_en = [], []
        for k in range(bandwidth):
            later = 0
            first_byte = 0
            for u in range(bandwidth):
                later = later | Mux(later_chosen[k][u], shifted.word_select(u, 8), 0)
                if u < cols:
                    first_byte = first_byte | Mux(first_chosen[k][u], lanes.word_select(u, 8), 0)
            scatter_data.append(Mux(busy, later, first_byte))
            chosen = Mux(busy, Cat(*later_chosen[k]).any(), Cat(*first_chosen[k]).any())
            scatter_en.append((k < cur.left) & chosen)

        m.d.comb += [
            self.w.valid.eq(busy | self.i.valid),
            self.w.payload.addr.eq(cur.addr),
            self.w.payload.data.eq(
                Mux(scatter, Cat(*scatter_data), padded.word_select(cur.k, 8 * bandwidth))
            ),
            self.w.payload.en.eq(
                Mux(scatter, Cat(*scatter_en), Cat(*(k < cur.left for k in range(bandwidth))))
            ),
            self.w.payload.last.eq(last),
            self.w.payload.first.eq(cur.k == 0),
            self.w.payload.run_bytes.eq(ins.run_bytes),
            self.i.ready.eq(~busy & self.w.ready),
            self.complete.eq(self.b),
        ]

        def step(pos, instr, flags, count, after_r, name: str) -> Signal:
            """The position after the beat at ``pos`` of ``instr``."""
            run_end, inner_last, _ = flags
            nxt = Signal(position, name=name)
            m.d.comb += nxt.eq(pos)
            with m.If(~run_end):
                m.d.comb += [
                    nxt.k.eq(pos.k + 1),
                    nxt.left.eq(Mux(pos.left > bandwidth, pos.left - bandwidth, 0)),
                    nxt.addr.eq(pos.addr + bandwidth),
                    nxt.t.eq(pos.t + count),
                    nxt.r.eq(after_r),
                ]
            with m.Else():
                m.d.comb += [
                    nxt.k.eq(0),
                    nxt.left.eq(instr.run_bytes),
                    nxt.word.eq(pos.word + 1),
                    nxt.t.eq(0),
                    nxt.r.eq(0),
                ]
                _next_run(m, nxt, pos, instr, inner_last, "run_addr", ["run_addr", "addr"])
            return nxt

        nxt = Mux(
            busy,
            step(state, held, held_flags, later_count, later_r, "next_of_held").as_value(),
            step(first, taken, first_flags, first_count, first_r, "next_of_first").as_value(),
        )
        end = Mux(
            busy,
            end_after(state, held, held_flags, (held_fits, held_limit)),
            end_after(first, taken, first_flags, taken_room),
        )
        held_after = flags_after(state, held, held_flags, state_o_last)
        first_after = flags_after(first, taken, first_flags, first_o_last)
        with m.If(self.w.valid & self.w.ready):
            m.d.sync += [
                state.eq(nxt),
                state_end.eq(end),
                state_j_last.eq(Mux(busy, held_after[0], first_after[0])),
                state_o_last.eq(Mux(busy, held_after[1], first_after[1])),
                busy.eq(~last),
            ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(taken), held_fits.eq(taken_room[0]), held_limit.eq(taken_room[1])]
        return m
