"""A run's schedule as a Chrome/Perfetto trace (``accel simulate --trace PATH``).

:func:`trace_events` turns the per-instruction start/done cycles of a
:class:`~accel.backend.Result` into the Trace Event Format that https://ui.perfetto.dev and
``chrome://tracing`` open: one complete event (``"ph": "X"``) per instruction, with
``ts`` = start and ``dur`` = done - start, converted from cycles to microseconds at the
config clock (``cycles / clock_mhz``). The exact cycles are kept in ``args``.

Tracks
------
Each engine (LOAD, COMPUTE, POST, STORE) is one process in the trace. The engines are
pipelined: an instruction may start before the previous one on the same engine is done (a
DMA issues its next requests while the last data is still in flight, the array starts the
next tile while the previous one drains). The trace format needs the events of one thread to
nest, so overlapping instructions are laid out on extra *lanes* (threads) of their engine's
process: lane 0 is named after the engine, lane ``k`` ``"<ENGINE> overlap k"``. Every
instruction goes to the lowest lane that is free when it starts.

A fifth process, ``layers``, has one event per layer spanning the layer's share of the
compute engine's timeline (the ``cycles`` column of ``accel simulate``; these shares do not
overlap and add up to the total) and a counter track of each layer's MAC utilization.

This module reads a ``Result`` and a ``Program``; it never imports the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accel.backend import Result
from accel.isa import Buffer, Compute, ComputeMode, Engine, Load, Post, PostMode, Store
from accel.program import Program

__all__ = ["instruction_kind", "trace_events", "write_trace"]

#: Process id of the ``layers`` process (engines are ``int(engine) + 1``).
LAYERS_PID = len(Engine) + 1


def instruction_kind(instr) -> str:
    """A short kind: ``Load.input``, ``Compute.array``, ``Post.requant``, ``Store``..."""
    if isinstance(instr, Load):
        return f"Load.{Buffer(instr.buffer).name.lower()}"
    if isinstance(instr, Compute):
        return f"Compute.{ComputeMode(instr.mode).name.lower()}"
    if isinstance(instr, Post):
        return f"Post.{PostMode(instr.mode).name.lower()}"
    if isinstance(instr, Store):
        return "Store"
    raise TypeError(f"not an instruction: {instr!r}")


def _details(instr) -> dict[str, int]:
    if isinstance(instr, Load | Store):
        return {"dram_bytes": instr.outer_count * instr.inner_count * instr.run_bytes}
    if isinstance(instr, Compute):
        return {"passes": instr.passes, "pixels": instr.pixels}
    return {"rows": instr.count}


def _lanes(starts: list[int], dones: list[int]) -> list[int]:
    """The lowest free lane of each interval (greedy; optimal because starts are sorted)."""
    lane_end: list[int] = []
    lanes = []
    for start, done in zip(starts, dones, strict=True):
        for lane, end in enumerate(lane_end):
            if end <= start:
                lane_end[lane] = done
                lanes.append(lane)
                break
        else:
            lane_end.append(done)
            lanes.append(len(lane_end) - 1)
    return lanes


def _metadata(kind: str, pid: int, tid: int | None, value: Any) -> dict:
    event = {"ph": "M", "name": kind, "pid": pid, "args": {}}
    if tid is not None:
        event["tid"] = tid
    key = "name" if kind.endswith("_name") else "sort_index"
    event["args"][key] = value
    return event


def trace_events(result: Result, program: Program) -> dict:
    """The trace of ``result`` (a run of ``program``) as a Trace Event Format document.

    Raises
    ------
    ValueError
        If the schedule does not have one start and done cycle per instruction of
        ``program`` (the result is of another program).
    """
    clock = float(result.clock_mhz)
    if not clock > 0:
        raise ValueError(f"result.clock_mhz must be > 0, not {result.clock_mhz!r}")
    names = [layer.name for layer in program.layers]
    meta: list[dict] = []
    events: list[tuple[int, int, int, dict]] = []  # (start cycle, pid, order, event)
    for engine in Engine:
        stream = program.streams[engine]
        starts, dones = list(result.start[engine]), list(result.done[engine])
        if not len(starts) == len(dones) == len(stream):
            raise ValueError(
                f"the schedule has {len(starts)} {engine.name} instructions but the program "
                f"has {len(stream)}: the result is not a run of this program"
            )
        pid = int(engine) + 1
        lanes = _lanes(starts, dones)
        meta.append(_metadata("process_name", pid, None, engine.name))
        meta.append(_metadata("process_sort_index", pid, None, pid))
        for lane in range(max(lanes, default=0) + 1):
            label = engine.name if lane == 0 else f"{engine.name} overlap {lane}"
            meta.append(_metadata("thread_name", pid, lane, label))
            meta.append(_metadata("thread_sort_index", pid, lane, lane))
        for i, (instr, start, done, lane) in enumerate(
            zip(stream, starts, dones, lanes, strict=True)
        ):
            kind = instruction_kind(instr)
            layer = names[instr.layer] if 0 <= instr.layer < len(names) else str(instr.layer)
            args = {
                "engine": engine.name,
                "index": i,
                "layer": layer,
                "layer_index": instr.layer,
                "start_cycle": start,
                "done_cycle": done,
                **_details(instr),
            }
            event = {
                "name": f"{kind} {layer}",
                "cat": "instruction",
                "ph": "X",
                "pid": pid,
                "tid": lane,
                "ts": start / clock,
                "dur": (done - start) / clock,
                "args": args,
            }
            events.append((start, pid, i, event))
    meta.append(_metadata("process_name", LAYERS_PID, None, "layers"))
    meta.append(_metadata("process_sort_index", LAYERS_PID, None, LAYERS_PID))
    meta.append(_metadata("thread_name", LAYERS_PID, 0, "compute share"))
    share_start = 0
    for layer in result.layers:
        util = round(100 * layer.utilization, 3)
        events.append(
            (
                share_start,
                LAYERS_PID,
                layer.index,
                {
                    "name": "MAC utilization %",
                    "cat": "counter",
                    "ph": "C",
                    "pid": LAYERS_PID,
                    "ts": share_start / clock,
                    "args": {"util": util},
                },
            )
        )
        if layer.cycles:
            events.append(
                (
                    share_start,
                    LAYERS_PID,
                    layer.index,
                    {
                        "name": layer.name,
                        "cat": "layer",
                        "ph": "X",
                        "pid": LAYERS_PID,
                        "tid": 0,
                        "ts": share_start / clock,
                        "dur": layer.cycles / clock,
                        "args": {
                            "kind": layer.kind,
                            "index": layer.index,
                            "cycles": layer.cycles,
                            "macs": layer.macs,
                            "utilization_percent": util,
                            "stalls": dict(layer.stalls),
                        },
                    },
                )
            )
        share_start += layer.cycles
    events.sort(key=lambda item: item[:3])
    return {
        "traceEvents": meta + [event for *_, event in events],
        "displayTimeUnit": "ns",
        "otherData": {
            "network": program.network,
            "config": program.config.name,
            "clock_mhz": clock,
            "total_cycles": result.total_cycles,
            "time_unit": "ts and dur are microseconds: cycles / clock_mhz",
        },
    }


def write_trace(path: str | Path, result: Result, program: Program) -> Path:
    """Write :func:`trace_events` as JSON to ``path`` (parent directories are created)."""
    path = Path(path)
    doc = trace_events(result, program)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as file:
        json.dump(doc, file, separators=(",", ":"))
    return path
