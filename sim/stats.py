"""What a run reports: cycles per layer and per instruction, utilization, stalls, traffic."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from accel import isa
from accel.isa import Buffer, Compute, ComputeMode, Engine, Load, Post, PostMode, Store
from accel.program import Program
from accel.timing import VECTOR_MIN_PASS
from sim.controller import Schedule
from sim.line_buffer import valid_reads

STALL_CAUSES = ("dram", "dependency", "weights", "fill_drain")


@dataclass
class LayerStats:
    """One layer. ``start``/``end`` span all of its instructions (layers overlap). ``cycles``
    is the layer's share of the compute engine's timeline, from the end of the previous
    layer's last pass to the end of its own (the last layer also takes the final drain):
    these add up to the total. ``stalls`` counts the cycles of that share in which the feed
    slot of the array/vector unit was idle, by cause."""

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
    stalls: dict[str, int]
    dram_read: int
    dram_written: int
    instructions: int


@dataclass
class Result:
    """The outcome of running a program on a backend (the model, Amaranth or Verilator)."""

    backend: str
    outputs: dict[str, np.ndarray]
    total_cycles: int
    layers: list[LayerStats]
    schedule: Schedule
    sram_reads: dict[str, int]
    sram_writes: dict[str, int]
    dram_read_bytes: int
    dram_written_bytes: int
    macs: int
    peak_macs_per_cycle: int
    clock_mhz: float
    stalls: dict[str, int] = field(default_factory=dict)

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
                zip(self.schedule.start[engine], self.schedule.done[engine], strict=True)
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
            "stalls": self.stalls,
            "dram_read_bytes": self.dram_read_bytes,
            "dram_written_bytes": self.dram_written_bytes,
            "sram_reads": self.sram_reads,
            "sram_writes": self.sram_writes,
            "layers": [asdict(layer) for layer in self.layers],
        }


def traffic(program: Program) -> tuple[dict[str, int], dict[str, int], int, int, list[list[int]]]:
    """SRAM word reads/writes per buffer, DRAM bytes read/written, per-layer DRAM bytes."""
    rows = program.config.array.rows
    reads = dict.fromkeys(("in", "w", "p", "acc", "out"), 0)
    writes = dict(reads)
    per_layer = [[0, 0] for _ in program.layers]
    dram_read = dram_written = 0
    names = {Buffer.INPUT: "in", Buffer.WEIGHT: "w", Buffer.PARAM: "p"}
    word_bytes = {Buffer.INPUT: rows, Buffer.WEIGHT: program.config.array.cols}
    word_bytes[Buffer.PARAM] = 12 * program.config.array.cols
    for engine, stream in program.streams.items():
        for instr in stream:
            if isinstance(instr, Load):
                runs = instr.outer_count * instr.inner_count
                words = -(-instr.run_bytes // word_bytes[Buffer(instr.buffer)])
                writes[names[Buffer(instr.buffer)]] += runs * words
                dram_read += runs * instr.run_bytes
                per_layer[instr.layer][0] += runs * instr.run_bytes
            elif isinstance(instr, Store):
                runs = instr.outer_count * instr.inner_count
                reads["out"] += runs
                dram_written += runs * instr.run_bytes
                per_layer[instr.layer][1] += runs * instr.run_bytes
            elif isinstance(instr, Post):
                reads["acc"] += instr.count
                writes["out"] += instr.count
                reads["p"] += int(instr.mode == PostMode.REQUANT)
            elif isinstance(instr, Compute):
                reads["in"] += valid_reads(instr)
                feeds = instr.passes * instr.pixels
                if instr.mode == ComputeMode.ARRAY:
                    reads["w"] += instr.passes * rows
                writes["acc"] += feeds
                reads["acc"] += feeds - (0 if instr.accumulate else instr.pixels)
            else:  # pragma: no cover - every instruction type is handled above
                raise TypeError(engine)
    return reads, writes, dram_read, dram_written, per_layer


def layer_stats(program: Program, sched: Schedule, per_layer_dram: list[list[int]]):
    """Per-layer statistics and total stalls by cause, from the schedule."""
    n = len(program.layers)
    start = [None] * n
    end = [0] * n
    count = [0] * n
    for engine, stream in program.streams.items():
        for i, instr in enumerate(stream):
            layer = instr.layer
            s, d = sched.start[engine][i], sched.done[engine][i]
            start[layer] = s if start[layer] is None else min(start[layer], s)
            end[layer] = max(end[layer], d)
            count[layer] += 1
    stalls = [dict.fromkeys(STALL_CAUSES, 0) for _ in range(n)]
    # The compute engine's feed slot is one timeline shared by all layers: each layer owns it
    # from the end of the previous layer's last pass to the end of its own, so the per-layer
    # cycles add up to the total and utilization never exceeds 1.
    slot_end = [None] * n
    computes = program.streams[Engine.COMPUTE]
    previous_free = 0
    for instr, detail in zip(computes, sched.compute, strict=True):
        stall = stalls[instr.layer]
        gap = detail.first_feed - previous_free
        if gap > 0:
            tokens = detail.token_ready
            latest = max(tokens, key=tokens.get) if tokens else None
            if latest is not None and tokens[latest] >= detail.first_feed - 1:
                cause = "dram" if latest == isa.Sem.L2C else "dependency"
            else:
                cause = "fill_drain"
            stall[cause] += gap
        slot = instr.pixels
        if instr.mode != ComputeMode.ARRAY:
            slot = max(slot, VECTOR_MIN_PASS)
        feeding = detail.last_feed + slot - detail.first_feed
        stall["weights"] += max(0, feeding - instr.passes * slot)
        previous_free = detail.last_feed + slot
        slot_end[instr.layer] = previous_free
    total = sched.total_cycles
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
                start=start[i] if start[i] is not None else previous_end,
                end=end[i],
                cycles=cycles,
                utilization=info.macs / (pes * cycles) if cycles else 0.0,
                stalls=stalls[i],
                dram_read=per_layer_dram[i][0],
                dram_written=per_layer_dram[i][1],
                instructions=count[i],
            )
        )
        previous_end = layer_end
    totals = {cause: sum(s[cause] for s in stalls) for cause in STALL_CAUSES}
    return layers, totals
