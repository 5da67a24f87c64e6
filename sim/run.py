"""The cycle model as a backend: ``run(program, image) -> accel.backend.Result``.

The same protocol (:class:`accel.backend.Backend`) is implemented by the RTL backends, so one
test body runs on all of them.
"""

from __future__ import annotations

from typing import TextIO

import numpy as np
from threadpoolctl import threadpool_limits

from accel import collector
from accel.backend import Result, check_image, make_result
from accel.config import AccelConfig
from accel.isa import Engine
from accel.program import Program
from accel.timing import Fetch
from sim import compute, dma, postproc
from sim.buffers import Buffers
from sim.controller import Schedule, engine_counters, schedule
from sim.dram import Dram
from sim.trace import trace_schedule

__all__ = ["MODES", "run"]

MODES = ("fast", "trace")


def execute(program: Program, sched: Schedule, image: np.ndarray) -> np.ndarray:
    """Apply every instruction's effect in start order (the semaphores make it equivalent)."""
    config = program.config
    dram = Dram(image)
    buffers = Buffers(config)
    order, position = start_order(program, sched)
    products = compute.ArrayProducts(program, position)
    # The products are many and small: one BLAS thread each is several times faster than
    # two that synchronise per product.
    with threadpool_limits(1, "blas"):
        _apply(program, order, dram, buffers, products)
    return dram.data


def start_order(
    program: Program, sched: Schedule
) -> tuple[list[tuple[Engine, int]], dict[Engine, list[int]]]:
    """Every instruction as ``(engine, index)``, by start cycle, then engine, then index; and
    each instruction's place in that order (``position[engine][index]``)."""
    counts = [len(program.streams[engine]) for engine in Engine]
    engines = np.repeat(np.arange(len(counts)), counts)
    indices = np.concatenate([np.arange(n) for n in counts])
    starts = np.concatenate([np.asarray(sched.start[engine], np.int64) for engine in Engine])
    ranked = np.lexsort((indices, engines, starts))
    places = np.empty_like(ranked)
    places[ranked] = np.arange(ranked.size)
    bounds = np.cumsum([0, *counts])
    position = {e: places[bounds[e] : bounds[e + 1]].tolist() for e in Engine}
    names = list(Engine)
    order = list(
        zip(map(names.__getitem__, engines[ranked].tolist()), indices[ranked].tolist(), strict=True)
    )
    return order, position


def _apply(
    program: Program,
    order: list[tuple[Engine, int]],
    dram: Dram,
    buffers: Buffers,
    products: compute.ArrayProducts,
) -> None:
    """Every instruction's effect on ``dram`` and ``buffers``, in ``order``."""
    config = program.config
    streams = program.streams
    loads, computes = streams[Engine.LOAD], streams[Engine.COMPUTE]
    posts, stores = streams[Engine.POST], streams[Engine.STORE]
    for engine, i in order:
        if engine == Engine.LOAD:
            dma.execute_load(loads[i], dram, buffers)
        elif engine == Engine.COMPUTE:
            compute.execute(computes[i], buffers, config, products, i)
        elif engine == Engine.POST:
            postproc.execute(posts[i], buffers)
        else:
            dma.execute_store(stores[i], dram, buffers)


def run(
    program: Program,
    image: np.ndarray | None = None,
    *,
    config: AccelConfig | None = None,
    mode: str = "fast",
    compute_outputs: bool = True,
    trace_dump: TextIO | None = None,
    fetch: Fetch | None = None,
) -> Result:
    """Run ``program`` on the cycle model.

    Parameters
    ----------
    program, image:
        The compiled program and its DRAM image (:meth:`Program.make_image`). ``image`` may be
        omitted only with ``compute_outputs=False``.
    config:
        If given, must equal the config the program was compiled for.
    mode:
        ``"fast"`` (closed-form timing per instruction plus an event simulation of the
        engines) or ``"trace"`` (stepped cycle by cycle; ``trace_dump`` receives one line per
        cycle). Both give identical cycle counts.
    fetch:
        The instruction fetch from DRAM of the AXI top (:class:`accel.timing.Fetch`, as
        ``hdl.axi_top.AxiAccelerator(...).fetch``); ``None`` (default) for the tops that read
        an instruction memory.
    compute_outputs:
        ``False`` skips the data path and returns cycles and traffic only (no outputs, no
        final DRAM).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if config is not None and config != program.config:
        raise ValueError(
            f"program was compiled for config {program.config.name!r} "
            f"({program.config.digest}), not {config.name!r} ({config.digest})"
        )
    if compute_outputs and image is None:
        raise ValueError("an image is needed to compute outputs (or pass compute_outputs=False)")
    check_image(program, image, required=False)
    with collector.paused():
        if mode == "fast":
            sched = schedule(program.streams, program.config, fetch)
        else:
            sched = trace_schedule(program.streams, program.config, dump=trace_dump, fetch=fetch)
        return make_result(
            program,
            f"model-{mode}",
            start=sched.start,
            done=sched.done,
            total_cycles=sched.total_cycles,
            counters={"stalled": 0, **engine_counters(sched)},
            dram=execute(program, sched, image) if compute_outputs else None,
            compute_feeds=sched.feeds,
        )
