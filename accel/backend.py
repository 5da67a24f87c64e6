"""What a backend is, and the one result every backend returns.

A *backend* runs a compiled :class:`~accel.program.Program` on its DRAM image
(:meth:`Program.make_image`) and returns a :class:`Result`. Three implement
:class:`Backend`: the cycle model (:func:`sim.run`), the Amaranth simulator
(:func:`hdl.flow.amaranth_sim.run`) and Verilator (:func:`hdl.flow.verilator.run`), so one test
body, one report and one verification run against any of them.

A backend observes the run: the final DRAM (hence the outputs), every instruction's start and
done cycle, the total and the engines' performance counters. Everything else in a
:class:`Result` is derived from those and the program by :func:`make_result`, the same way for
every backend: SRAM and DRAM traffic (a property of the program), and per-layer cycles,
utilization and stalls (from the start/done cycles, the ``signal``/``wait`` pairing of the
semaphores and the compute engine's feed timing of :func:`accel.timing.compute_timing`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from accel import isa, timing, window
from accel.isa import Compute, ComputeMode, Engine, Load, Post, PostMode, Store
from accel.program import Program

__all__ = [
    "STALL_CAUSES",
    "Backend",
    "Feed",
    "LayerStats",
    "Result",
    "check_image",
    "feeds",
    "make_result",
]

#: Why the compute engine's feed slot sat idle: waiting for DRAM data (a LOAD's token), for
#: another engine (any other token), for its weights, or for the pipeline to fill and drain
#: (which also takes the cycles a COMPUTE waited for the AXI top's instruction fetch).
STALL_CAUSES = ("dram", "dependency", "weights", "fill_drain")

#: SRAM buffers, as named in :attr:`Result.sram_reads` / :attr:`Result.sram_writes`.
SRAM_BUFFERS = ("in", "w", "p", "acc", "out", "t")


class Backend(Protocol):
    """``run(program, image) -> Result``: ``image`` is ``program``'s DRAM image."""

    def __call__(self, program: Program, image: np.ndarray, /) -> Result: ...


@dataclass(frozen=True)
class LayerStats:
    """One layer. ``start``/``end`` span all of its instructions (layers overlap). ``cycles``
    is the layer's share of the compute engine's timeline, from the end of the previous
    layer's last pass to the end of its own (the last layer also takes the final drain):
    these add up to the total. ``stalls`` counts the cycles of that share in which the feed
    slot of the array/vector unit was idle, by cause (:data:`STALL_CAUSES`). ``sram_reads``
    and ``sram_writes`` are the layer's SRAM word accesses per buffer (:data:`SRAM_BUFFERS`),
    which add up to the run's."""

    index: int
    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    macs: int
    start: int
    end: int
    cycles: int
    utilization: float
    stalls: Mapping[str, int]
    dram_read: int
    dram_written: int
    instructions: int
    sram_reads: Mapping[str, int]
    sram_writes: Mapping[str, int]


@dataclass(frozen=True)
class Result:
    """What a backend did with a program: observed, then analysed by :func:`make_result`.

    ``start[engine][i]`` / ``done[engine][i]`` are instruction ``i`` of that engine's stream
    (:mod:`accel.timing`'s definitions); ``counters`` the controller's performance counters
    (``<engine>_busy_cycles``, ``<engine>_blocked_cycles``, ``stalled``); ``outputs`` the
    network outputs read from the final ``dram`` (both empty/None for a cycles-only run).
    """

    backend: str
    total_cycles: int
    start: Mapping[Engine, Sequence[int]]
    done: Mapping[Engine, Sequence[int]]
    counters: Mapping[str, int]
    outputs: Mapping[str, np.ndarray]
    dram: np.ndarray | None
    layers: tuple[LayerStats, ...]
    stalls: Mapping[str, int]
    sram_reads: Mapping[str, int]
    sram_writes: Mapping[str, int]
    dram_read_bytes: int
    dram_written_bytes: int
    macs: int
    peak_macs_per_cycle: int
    clock_mhz: float

    @property
    def utilization(self) -> float:
        return (
            self.macs / (self.peak_macs_per_cycle * self.total_cycles) if self.total_cycles else 0.0
        )

    @property
    def seconds(self) -> float:
        return self.total_cycles / (self.clock_mhz * 1e6)

    @property
    def gops(self) -> float:
        return 2 * self.macs / self.seconds / 1e9 if self.total_cycles else 0.0

    def instruction_times(self) -> list[tuple[str, int, int, int]]:
        """(engine, index in its stream, start, done) for every instruction."""
        return [
            (engine.name, i, start, done)
            for engine in Engine
            for i, (start, done) in enumerate(
                zip(self.start[engine], self.done[engine], strict=True)
            )
        ]

    def to_dict(self) -> dict:
        """The JSON document of ``accel simulate --format json`` (``docs/simulate.md``)."""
        return {
            "backend": self.backend,
            "total_cycles": self.total_cycles,
            "macs": self.macs,
            "utilization": self.utilization,
            "seconds": self.seconds,
            "gops": self.gops,
            "inferences_per_second": 1 / self.seconds if self.total_cycles else 0.0,
            "stalls": dict(self.stalls),
            "dram_read_bytes": self.dram_read_bytes,
            "dram_written_bytes": self.dram_written_bytes,
            "sram_reads": dict(self.sram_reads),
            "sram_writes": dict(self.sram_writes),
            "layers": [
                {
                    **asdict(layer),
                    "stalls": dict(layer.stalls),
                    "sram_reads": dict(layer.sram_reads),
                    "sram_writes": dict(layer.sram_writes),
                }
                for layer in self.layers
            ],
        }


def check_image(program: Program, image: np.ndarray | None, *, required: bool = True) -> None:
    """Reject a program the hardware cannot execute (:meth:`Program.validate`) and an image
    that is not its DRAM image: wrong type, size, or constants (weights, parameters) that
    differ from the program's. ``image=None`` passes only when not ``required``."""
    program.validate()
    if image is None:
        if required:
            raise ValueError("an image is needed to run the program (Program.make_image)")
        return
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 1:
        raise TypeError("image must be a 1-D numpy uint8 array (Program.make_image)")
    if image.size != program.dram_bytes:
        raise ValueError(
            f"image has {image.size} bytes but the program's DRAM layout has {program.dram_bytes}"
        )
    size = program.constants.size
    if not np.array_equal(image[:size], program.constants):
        raise ValueError("image constants (weights/parameters) do not match the program's")


def make_result(
    program: Program,
    backend: str,
    *,
    start: Mapping[Engine, Sequence[int]],
    done: Mapping[Engine, Sequence[int]],
    total_cycles: int,
    counters: Mapping[str, int],
    dram: np.ndarray | None = None,
    compute_feeds: Sequence[Feed] | None = None,
) -> Result:
    """The :class:`Result` of a run of ``program`` that a backend observed: ``start`` and
    ``done`` per engine and instruction, the total, the counters and the final DRAM (or
    ``None`` for a cycles-only run); traffic, layers and stalls are derived here.

    ``compute_feeds`` are the compute instructions' :class:`Feed` when the backend has them
    already (the cycle model's fast mode computes them anyway); otherwise :func:`feeds`
    derives them from ``done``, the same numbers (``tests/test_sim_models.py``)."""
    for engine in Engine:
        count = len(program.streams[engine])
        if not len(start[engine]) == len(done[engine]) == count:
            raise ValueError(
                f"{backend}: {len(start[engine])} starts and {len(done[engine])} dones of "
                f"{engine.name} instructions, but the program has {count}"
            )
    per_layer = _traffic(program)
    traffic = Traffic.total(per_layer)
    if compute_feeds is None:
        compute_feeds = feeds(program, done, start[Engine.COMPUTE])
    layers, stalls = _layer_stats(program, start, done, total_cycles, per_layer, compute_feeds)
    return Result(
        backend=backend,
        total_cycles=total_cycles,
        start={e: tuple(start[e]) for e in Engine},
        done={e: tuple(done[e]) for e in Engine},
        counters=dict(counters),
        outputs={} if dram is None else program.read_outputs(dram),
        dram=dram,
        layers=tuple(layers),
        stalls=stalls,
        sram_reads=traffic.sram_reads,
        sram_writes=traffic.sram_writes,
        dram_read_bytes=traffic.dram_read,
        dram_written_bytes=traffic.dram_written,
        macs=sum(layer.macs for layer in program.layers),
        peak_macs_per_cycle=program.config.array.pes,
        clock_mhz=program.config.clock_mhz,
    )


@dataclass
class Traffic:
    """Memory traffic: SRAM words read and written per buffer (:data:`SRAM_BUFFERS`),
    DRAM bytes read and written."""

    sram_reads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SRAM_BUFFERS, 0))
    sram_writes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SRAM_BUFFERS, 0))
    dram_read: int = 0
    dram_written: int = 0

    @classmethod
    def total(cls, parts: Sequence[Traffic]) -> Traffic:
        whole = cls()
        for part in parts:
            for name in SRAM_BUFFERS:
                whole.sram_reads[name] += part.sram_reads[name]
                whole.sram_writes[name] += part.sram_writes[name]
            whole.dram_read += part.dram_read
            whole.dram_written += part.dram_written
        return whole


def _traffic(program: Program) -> list[Traffic]:
    """Each layer's traffic, counted from its instructions' fields."""
    config = program.config
    rows = config.array.rows
    per_layer = [Traffic() for _ in program.layers]
    names = ("in", "w", "p", "t")  # by isa.Buffer
    word = [timing.word_bytes(config, buffer) for buffer in range(len(names))]
    for engine, stream in program.streams.items():
        for instr in stream:
            layer = per_layer[instr.layer]
            reads, writes = layer.sram_reads, layer.sram_writes
            if isinstance(instr, Load):
                runs = instr.outer_count * instr.inner_count
                words = timing.ceil_div(instr.run_bytes, word[instr.buffer])
                writes[names[instr.buffer]] += runs * words
                layer.dram_read += runs * instr.run_bytes
            elif isinstance(instr, Store):
                runs = instr.outer_count * instr.inner_count
                reads["out"] += runs
                # The bytes written: a scatter run's strobed-off bytes are not.
                layer.dram_written += runs * instr.lanes
            elif isinstance(instr, Post):
                reads["acc"] += instr.count
                writes["out"] += instr.count
                reads["p"] += int(instr.mode == PostMode.REQUANT)
                reads["t"] += instr.count * instr.lut
            elif isinstance(instr, Compute):
                reads["in"] += window.valid_reads(instr)
                feeds = instr.passes * instr.pixels * instr.k_tiles
                if instr.os:  # every group reads every weight word; one write per pixel
                    reads["w"] += timing.ceil_div(instr.pixels, rows) * instr.passes * rows
                    feeds = instr.pixels
                elif instr.is_:  # every pixel group streams every weight word
                    reads["w"] += timing.is_tiles(instr, rows) * timing.is_words(instr, rows)
                elif instr.mode == ComputeMode.ARRAY:
                    reads["w"] += instr.passes * rows
                writes["acc"] += feeds
                reads["acc"] += feeds - (0 if instr.accumulate else instr.pixels * instr.k_tiles)
            else:  # pragma: no cover - every instruction type is handled above
                raise TypeError(engine)
    return per_layer


@dataclass(frozen=True)
class Feed:
    """When a compute instruction's passes fed, and when each semaphore it waited on got
    its token (the ``done`` of the matching ``signal``)."""

    first: int
    last: int
    tokens: dict[int, int]


def feeds(
    program: Program, done: Mapping[Engine, Sequence[int]], start: Sequence[int]
) -> list[Feed]:
    """The feed slots of every compute instruction: :func:`accel.timing.compute_timing`
    given the cycle it started (``start``, its grant: no earlier than its tokens, and later
    when the instruction fetch of the AXI top delayed it) and the cycles its tokens arrived.
    The k-th wait on a semaphore takes the token of its k-th signal (each semaphore has one
    producer and one consumer engine, both in order)."""
    signals: dict[int, list[int]] = {int(s): [] for s in isa.Sem}
    for engine, stream in program.streams.items():
        times = done[engine]
        for i, instr in enumerate(stream):
            for s in isa.sems_of(instr.signal):
                signals[s].append(times[i])
    consumed = dict.fromkeys(signals, 0)
    # Waits of COMPUTE only consume its own semaphores (L2C, P2C): count them in order.
    state = timing.ComputeState()
    found = []
    for instr, granted in zip(program.streams[Engine.COMPUTE], start, strict=True):
        tokens = {}
        for s in isa.sems_of(instr.wait):
            tokens[int(s)] = signals[s][consumed[s]]
            consumed[s] += 1
        t = timing.compute_timing(instr, granted, state, program.config)
        state = t.state
        found.append(Feed(t.first_feed, t.last_feed, tokens))
    return found


def _layer_stats(
    program: Program,
    start: Mapping[Engine, Sequence[int]],
    done: Mapping[Engine, Sequence[int]],
    total: int,
    per_layer: list[Traffic],
    compute_feeds: Sequence[Feed],
) -> tuple[list[LayerStats], dict[str, int]]:
    """Per-layer statistics and total stalls by cause."""
    n = len(program.layers)
    first_start = np.full(n, np.iinfo(np.int64).max)
    end_done = np.zeros(n, np.int64)
    count = np.zeros(n, np.int64)
    for engine, stream in program.streams.items():
        layer = np.fromiter((instr.layer for instr in stream), np.int64, len(stream))
        np.minimum.at(first_start, layer, np.asarray(start[engine], np.int64))
        np.maximum.at(end_done, layer, np.asarray(done[engine], np.int64))
        count += np.bincount(layer, minlength=n)
    first = [int(s) if c else None for s, c in zip(first_start, count, strict=True)]
    end = end_done.tolist()
    stalls = [dict.fromkeys(STALL_CAUSES, 0) for _ in range(n)]
    # The compute engine's feed slot is one timeline shared by all layers: each layer owns it
    # from the end of the previous layer's last pass to the end of its own, so the per-layer
    # cycles add up to the total and utilization never exceeds 1.
    slot_end: list[int | None] = [None] * n
    previous_free = 0
    for instr, feed in zip(program.streams[Engine.COMPUTE], compute_feeds, strict=True):
        stall = stalls[instr.layer]
        gap = feed.first - previous_free
        if gap > 0:
            latest = max(feed.tokens, key=feed.tokens.get) if feed.tokens else None
            # A token that arrives in cycle t lets the first word feed in t + COMPUTE_DECODE + 1.
            if latest is not None and feed.tokens[latest] >= feed.first - 1 - timing.COMPUTE_DECODE:
                cause = "dram" if latest == isa.Sem.L2C else "dependency"
            else:
                cause = "fill_drain"
            stall[cause] += gap
        if instr.os:  # one slot of G*S words; the dummy rows of the last group idle
            previous_free = feed.last + 1
            stall["fill_drain"] += previous_free - feed.first - instr.passes * instr.pixels
            slot_end[instr.layer] = previous_free
            continue
        if instr.is_:  # tiles of cols vectors: the dummy columns idle, the transposer stalls
            cols = program.config.array.cols
            tiles, words = timing.is_tiles(instr, cols), timing.is_words(instr, cols)
            previous_free = feed.last + words
            stall["fill_drain"] += tiles * words - instr.passes * instr.pixels * instr.k_tiles
            stall["weights"] += previous_free - feed.first - tiles * words
            slot_end[instr.layer] = previous_free
            continue
        slot = instr.pixels
        if instr.mode != ComputeMode.ARRAY:
            slot = max(slot, timing.VECTOR_MIN_PASS)
        feeding = feed.last + slot - feed.first
        stall["weights"] += max(0, feeding - instr.passes * slot)
        previous_free = feed.last + slot
        slot_end[instr.layer] = previous_free
    owners = [i for i in range(n) if slot_end[i] is not None]
    if owners:
        stalls[owners[-1]]["fill_drain"] += max(0, total - previous_free)
        slot_end[owners[-1]] = total
    layers = []
    previous_end = 0
    pes = program.config.array.pes
    for i, info in enumerate(program.layers):
        layer_end = slot_end[i] if slot_end[i] is not None else previous_end
        cycles = layer_end - previous_end
        layers.append(
            LayerStats(
                index=i,
                name=info.name,
                kind=info.kind,
                in_shape=tuple(info.in_shape),
                out_shape=tuple(info.out_shape),
                macs=info.macs,
                start=first[i] if first[i] is not None else previous_end,
                end=end[i],
                cycles=cycles,
                utilization=info.macs / (pes * cycles) if cycles else 0.0,
                stalls=stalls[i],
                dram_read=per_layer[i].dram_read,
                dram_written=per_layer[i].dram_written,
                sram_reads=per_layer[i].sram_reads,
                sram_writes=per_layer[i].sram_writes,
                instructions=int(count[i]),
            )
        )
        previous_end = layer_end
    totals = {cause: sum(s[cause] for s in stalls) for cause in STALL_CAUSES}
    return layers, totals
