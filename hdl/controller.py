"""The controller: instruction fetch, counting semaphores and grants for the four engines.

The RTL of :mod:`sim.controller`. Each engine (:class:`accel.isa.Engine`) has its own
instruction stream, ``count`` instructions from word ``base`` of an instruction memory that
the controller reads through a synchronous read port (``imem_<engine>``: one 64-byte
instruction per word, data one cycle after the address). The controller presents the
stream's next instruction on ``issue_<engine>`` (an :mod:`amaranth.lib.stream` whose payload
is the instruction's :func:`accel.isa.encode` bits); ``valid`` is the grant: the instruction
is fetched, every semaphore of its ``wait`` mask is non-zero, and the engine's in-flight
queue has room. The handshake cycle is the instruction's ``start``: the ``wait`` semaphores
are decremented at its end. Each engine raises ``complete_<engine>`` in cycle ``done - 1`` of
its instructions, in order; the controller then increments the semaphores of that
instruction's ``signal`` mask (kept in a small in-flight queue since its grant), so they are
non-zero from ``done`` on and a waiting instruction may start in the very cycle ``done``, as
:mod:`accel.timing` requires. A grant and a completion of the same semaphore in one cycle
leave it unchanged.

Fetch never delays an engine: in the cycle of a grant the read address is already the next
index (``base + index + 1``), so the following instruction is on ``issue`` one cycle later,
and no engine takes instructions faster than one per cycle (every ``next_start`` of
:mod:`accel.timing` is at least ``start + 1``).

With a fetch buffer (``fetch``, the AXI top) the instruction on ``issue`` is *held*: a
register loaded from the read port, with its ``wait`` and ``signal`` masks and its legality
decoded beside it, so that the grant and the engine start from flip-flops, not from the
buffer's read. The port then runs one instruction ahead of the held one (in the cycle of a
grant it shows the next instruction, which the grant loads, and the address is already
``base + index + 2``), so a held stream is as fast as the plain one, and an instruction is
held from the cycle after the buffer has it: granted two cycles after its last beat at the
earliest (:mod:`accel.timing`, INSTRUCTION FETCH). Without it the grant decodes the read
port's data (the raw top's instruction memory is outside, its data an input).

Program control. ``start`` (one cycle, the cycle before cycle 0) resets the fetch indices,
completion counts and counters; ``busy`` is high from cycle 0 until ``done``, which is high
for one cycle: the first cycle in which every engine has completed ``count`` instructions,
so the cycle counter ``cycle`` then equals the program's ``max(done)``, the model's total,
and keeps it until the next ``start``.

Trace and counters (for verification and performance analysis), per engine:

- ``trace_<engine>_start`` is high in each instruction's ``start`` cycle, with its index in
  the stream on ``trace_<engine>_start_index``; ``trace_<engine>_done`` in each ``done``
  cycle, with ``trace_<engine>_done_index``.
- ``<engine>_busy_cycles``: cycles with at least one instruction between its ``start`` and
  ``done`` (the length of the union of ``[start, done)``).
- ``<engine>_blocked_cycles``: cycles in which the engine could take its next instruction
  and the instruction is fetched, but one of its ``wait`` semaphores is zero.

Errors (sticky, until ``start``): ``error`` when an instruction's opcode does not belong to
its engine's stream, or it waits on a semaphore that another engine consumes or signals one
another engine produces (:data:`accel.isa.SEMAPHORES`); its stream then stops. ``stalled``
when a grant waited for room in an in-flight queue (the contract assumes unbounded queues).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory, ReadPort
from amaranth.lib.wiring import In, Out

from accel import isa
from accel.config import AccelConfig
from accel.isa import Engine
from hdl._check import check_config, check_count

__all__ = [
    "COUNTER_BITS",
    "INDEX_BITS",
    "INSTRUCTION_BITS",
    "Controller",
    "engine_name",
]

#: One instruction memory word.
INSTRUCTION_BITS = 8 * isa.INSTRUCTION_BYTES
#: Width of instruction indices, bases and counts.
INDEX_BITS = 32
#: Default width of the cycle and performance counters (``counter_bits`` of the controller).
COUNTER_BITS = 32

_HEADER = data.StructLayout({name: unsigned(width) for name, width, _ in isa.FIELDS[isa.Load][:4]})
_SEMS = len(isa.Sem)
_OPCODE = {cls.engine: cls.opcode for cls in isa.FIELDS}


def engine_name(engine: Engine) -> str:
    """The lower-case name used in port names (``load``, ``compute``, ``post``, ``store``)."""
    return engine.name.lower()


def _mask(engines_of_sem: int, engine: Engine) -> int:
    """Semaphores whose producer (``engines_of_sem = 0``) or consumer (1) is ``engine``."""
    return isa.mask(*(s for s, pair in isa.SEMAPHORES.items() if pair[engines_of_sem] == engine))


def _decode(word, engine: Engine):
    """An instruction word's legality in ``engine``'s stream and its ``wait`` and ``signal``
    masks."""
    header = data.View(_HEADER, word[: _HEADER.size])
    legal = (
        (header.opcode == _OPCODE[engine])
        & ((header.wait & ~_mask(1, engine)) == 0)
        & ((header.signal & ~_mask(0, engine)) == 0)
    )
    return legal, header.wait[:_SEMS], header.signal[:_SEMS]


def control_members(
    counter_bits: int = COUNTER_BITS, *, fetch: bool = False, abort: bool = False
) -> dict[str, wiring.Member]:
    """The program-control, trace and counter ports (shared with :class:`hdl.top.Accelerator`);
    ``cycle`` and the ``<engine>_{busy,blocked}_cycles`` counters are ``counter_bits`` wide.
    With ``fetch``, also ``fetched_<engine>`` and ``fetched_next_<engine>`` (``In(1)``): the
    instruction memory holds the engine's oldest instruction not granted yet, and the one
    after it too (:class:`hdl.fetch.InstructionFetch`). With ``abort``, also
    ``abort`` (``In(1)``): a bus error; the program stops (:class:`Controller`)."""
    members: dict[str, wiring.Member] = {
        "start": In(1),
        "busy": Out(1),
        "done": Out(1),
        "error": Out(1),
        "stalled": Out(1),
        "cycle": Out(counter_bits),
    }
    if abort:
        members["abort"] = In(1)
    for engine in Engine:
        e = engine_name(engine)
        members |= {
            f"{e}_base": In(INDEX_BITS),
            f"{e}_count": In(INDEX_BITS),
            f"imem_{e}": In(ReadPort.Signature(addr_width=INDEX_BITS, shape=INSTRUCTION_BITS)),
            f"trace_{e}_start": Out(1),
            f"trace_{e}_start_index": Out(INDEX_BITS),
            f"trace_{e}_done": Out(1),
            f"trace_{e}_done_index": Out(INDEX_BITS),
            f"{e}_busy_cycles": Out(counter_bits),
            f"{e}_blocked_cycles": Out(counter_bits),
        }
        if fetch:
            members[f"fetched_{e}"] = In(1)
            members[f"fetched_next_{e}"] = In(1)
    return members


class Controller(wiring.Component):
    """Fetch, semaphores and grants; see the module docstring for the contract.

    Parameters
    ----------
    config : AccelConfig
        Recorded for the generated design (the controller has no size parameter of its own).
    inflight : int
        Granted, not yet completed instructions one engine may have (default 256; a full
        queue delays grants and sets ``stalled``).
    counter_bits : int
        Width of the counters (:func:`control_members`).
    fetch : bool
        The instruction memory is a fetch buffer: an instruction is granted only while
        ``fetched_<engine>`` is high (default ``False``: every instruction is there).
    abort : bool
        With an ``abort`` input (default ``False``: none): ``abort`` high in a cycle of the
        program (a slave answered SLVERR or DECERR) stops every grant from the next cycle on;
        the instructions already granted complete, and ``busy`` falls in the cycle after
        the last of them (``done`` does not rise unless every stream had completed).

    Ports
    -----
    The members of :func:`control_members`, plus per engine ``issue_<engine>``
    (``Out(stream.Signature(INSTRUCTION_BITS))``, to the engine's ``i``) and
    ``complete_<engine>`` (``In(1)``, from the engine's ``complete``).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig` or ``inflight`` not an int.
    ValueError
        If ``inflight`` < 2 or ``counter_bits`` < 1.
    """

    def __init__(
        self,
        config: AccelConfig,
        *,
        inflight: int = 256,
        counter_bits: int = COUNTER_BITS,
        fetch: bool = False,
        abort: bool = False,
    ) -> None:
        self._config = check_config(config)
        self._inflight = check_count(inflight, "in-flight queue depth", 2)
        self._counter_bits = check_count(counter_bits, "counter width", 1)
        self._fetch = bool(fetch)
        self._abort = bool(abort)
        members = control_members(counter_bits, fetch=self._fetch, abort=self._abort)
        for engine in Engine:
            e = engine_name(engine)
            members[f"issue_{e}"] = Out(stream.Signature(INSTRUCTION_BITS))
            members[f"complete_{e}"] = In(1)
        super().__init__(members)

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def inflight(self) -> int:
        return self._inflight

    @property
    def counter_bits(self) -> int:
        return self._counter_bits

    @property
    def fetch(self) -> bool:
        return self._fetch

    @property
    def abortable(self) -> bool:
        """Whether the controller has the ``abort`` input."""
        return self._abort

    def elaborate(self, platform) -> Module:
        m = Module()
        running = Signal()
        with m.If(self.start):
            m.d.sync += [running.eq(1), self.cycle.eq(0), self.error.eq(0), self.stalled.eq(0)]
        with m.Elif(running & ~self.done):
            m.d.sync += self.cycle.eq(self.cycle + 1)  # holds the total after `done`

        halted = None  # a bus error: no grant from the next cycle on
        if self._abort:
            halted = Signal()
            with m.If(self.start):
                m.d.sync += halted.eq(0)
            with m.Elif(running & self.abort):
                m.d.sync += halted.eq(1)
        sems = [Signal(isa.SEMAPHORE_BITS, name=f"sem_{s.name.lower()}") for s in isa.Sem]
        # `sem != 0` of each, kept in a register beside it: no wide compare in the grant.
        nonzero = [Signal(name=f"{sem.name}_nonzero") for sem in sems]
        increments = [[] for _ in sems]
        decrements = [[] for _ in sems]
        finished = []
        drained = []
        for engine in Engine:
            inc, dec, all_done, idle = self._engine(m, engine, running, nonzero, halted)
            for s in range(_SEMS):
                increments[s].append(inc[s])
                decrements[s].append(dec[s])
            finished.append(all_done)
            drained.append(idle)

        for s, (sem, flag) in enumerate(zip(sems, nonzero, strict=True)):
            # One producer and one consumer per semaphore (checked per instruction above:
            # no other engine's grant or completion ever carries it). The grant arrives late
            # in the cycle (an engine's `ready`), so it only selects among `sem + 1` and
            # `sem - 1`, computed from the register.
            producer, consumer = isa.SEMAPHORES[isa.Sem(s)]
            up, down = increments[s][producer], decrements[s][consumer]
            with m.If(self.start):
                m.d.sync += [sem.eq(0), flag.eq(0)]
            with m.Elif(up & ~down):
                m.d.sync += [sem.eq(sem + 1), flag.eq(~sem.all())]
            with m.Elif(down & ~up):
                m.d.sync += [sem.eq(sem - 1), flag.eq(sem != 1)]
        program_done = running
        for f in finished:
            program_done = program_done & f
        m.d.comb += [self.busy.eq(running), self.done.eq(program_done)]
        stop = program_done
        if halted is not None:
            quiet = halted
            for idle in drained:
                quiet = quiet & idle
            stop = stop | quiet
        with m.If(stop & ~self.start):
            m.d.sync += running.eq(0)
        return m

    def _held(self, m: Module, engine: Engine, index, fire, here, after):
        """The held instruction of a fetched stream (module docstring): its payload, legality,
        ``wait`` and ``signal`` masks (registers), and whether it is there. Sets the read
        addresses ``here`` and ``after`` (without and with a grant)."""
        e = engine_name(engine)
        imem = getattr(self, f"imem_{e}")
        base = getattr(self, f"{e}_base")
        fetched_here = getattr(self, f"fetched_{e}")  # `index` is in the buffer
        fetched_after = getattr(self, f"fetched_next_{e}")  # so is `index + 1`
        loaded = Signal(name=f"{e}_loaded")  # `held` holds instruction `index`
        held = Signal(INSTRUCTION_BITS, name=f"{e}_held")
        legal = Signal(name=f"{e}_held_legal")
        wait = Signal(_SEMS, name=f"{e}_held_wait")
        signal = Signal(_SEMS, name=f"{e}_held_signal")
        # The port shows `index` while nothing is held, `index + 1` while it is.
        m.d.comb += [
            here.eq(base + index + (loaded | fetched_here)),
            after.eq(base + index + 1 + fetched_after),
        ]
        decoded = _decode(imem.data, engine)
        with m.If(~loaded | fire):
            m.d.sync += [held.eq(imem.data), Cat(legal, wait, signal).eq(Cat(*decoded))]
        with m.If(self.start):
            m.d.sync += loaded.eq(0)
        with m.Elif(fire):
            m.d.sync += loaded.eq(fetched_after)
        with m.Elif(~loaded):
            m.d.sync += loaded.eq(fetched_here)
        return held, legal, wait, signal, loaded

    def _engine(self, m: Module, engine: Engine, running: Signal, nonzero: list[Signal], halted):
        """Fetch, grant, in-flight queue and counters of one engine; ``nonzero``: each
        semaphore's ``!= 0`` flag."""
        e = engine_name(engine)
        imem = getattr(self, f"imem_{e}")
        issue = getattr(self, f"issue_{e}")
        complete = getattr(self, f"complete_{e}")
        base = getattr(self, f"{e}_base")
        count = getattr(self, f"{e}_count")

        index = Signal(INDEX_BITS, name=f"{e}_index")  # of the instruction on `issue`
        completed = Signal(INDEX_BITS, name=f"{e}_completed")
        fire = Signal(name=f"{e}_fire")
        m.d.comb += fire.eq(issue.valid & issue.ready)
        # The grant (`fire`, late in the cycle) only selects the next address.
        here = Signal.like(imem.addr, name=f"{e}_addr_here")
        after = Signal.like(imem.addr, name=f"{e}_addr_after")
        if self._fetch:
            payload, legal, wait, signal, present = self._held(m, engine, index, fire, here, after)
        else:
            m.d.comb += [here.eq(base + index), after.eq(base + index + 1)]
            payload, present = imem.data, None
            legal, wait, signal = _decode(imem.data, engine)
        m.d.comb += [imem.addr.eq(Mux(self.start, base, Mux(fire, after, here))), imem.en.eq(1)]
        # `index < count`, kept in a register so that no 32-bit compare sits in the grant.
        more = Signal(name=f"{e}_more")
        fetched = running & more
        if present is not None:
            fetched = fetched & present
        tokens = 1
        for s in range(_SEMS):
            tokens = tokens & (~wait[s] | nonzero[s])

        # In-flight queue of signal masks, oldest first; a completion in the cycle of the
        # grant of an otherwise empty queue takes the mask being granted (bypass). The
        # fetched instruction's mask is written into the free slot at `tail` in every cycle
        # with room, so the write enable depends on registers only (not on the grant); only
        # a grant (`fire`) advances `tail` past it.
        depth = self._inflight
        m.submodules[f"{e}_inflight"] = queue = Memory(shape=_SEMS, depth=depth, init=[])
        write = queue.write_port()
        read = queue.read_port(domain="comb")
        head = Signal(range(depth), name=f"{e}_head")
        tail = Signal(range(depth), name=f"{e}_tail")
        level = Signal(range(depth + 1), name=f"{e}_level")
        room = level < depth
        grant = fetched & legal & tokens & room
        if halted is not None:
            grant = grant & ~halted
        m.d.comb += [
            issue.valid.eq(grant),
            issue.payload.eq(payload),
            write.addr.eq(tail),
            write.data.eq(signal),
            write.en.eq(room),
            read.addr.eq(head),
        ]
        signalled = Mux(level == 0, signal, read.data)
        with m.If(self.start):
            m.d.sync += [index.eq(0), completed.eq(0), head.eq(0), tail.eq(0), level.eq(0)]
            m.d.sync += more.eq(count != 0)
        with m.Else():
            with m.If(fire):
                m.d.sync += [index.eq(index + 1), tail.eq(Mux(tail == depth - 1, 0, tail + 1))]
                m.d.sync += more.eq(index + 1 < count)
            with m.If(complete):
                m.d.sync += [
                    completed.eq(completed + 1),
                    head.eq(Mux(head == depth - 1, 0, head + 1)),
                ]
            with m.If(fire & ~complete):  # the grant selects; no adder after it
                m.d.sync += level.eq(level + 1)
            with m.Elif(complete & ~fire):
                m.d.sync += level.eq(level - 1)
            with m.If(fetched & ~legal):
                m.d.sync += self.error.eq(1)
            with m.If(fetched & legal & tokens & ~room):
                m.d.sync += self.stalled.eq(1)

        # Trace: start in the grant cycle, done the cycle after `complete`.
        done_pulse = getattr(self, f"trace_{e}_done")
        done_index = getattr(self, f"trace_{e}_done_index")
        m.d.comb += [
            getattr(self, f"trace_{e}_start").eq(fire),
            getattr(self, f"trace_{e}_start_index").eq(index),
        ]
        m.d.sync += [done_pulse.eq(complete & ~self.start), done_index.eq(completed)]

        busy_cycles = getattr(self, f"{e}_busy_cycles")
        blocked_cycles = getattr(self, f"{e}_blocked_cycles")
        with m.If(self.start):
            m.d.sync += [busy_cycles.eq(0), blocked_cycles.eq(0)]
        with m.Else():
            with m.If(fire | (level != 0)):
                m.d.sync += busy_cycles.eq(busy_cycles + 1)
            with m.If(fetched & legal & ~tokens & issue.ready):
                m.d.sync += blocked_cycles.eq(blocked_cycles + 1)

        inc = [complete & signalled[s] for s in range(_SEMS)]
        dec = [fire & wait[s] for s in range(_SEMS)]
        return inc, dec, completed == count, level == 0
