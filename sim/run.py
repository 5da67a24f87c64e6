"""The cycle model as a backend: ``run(program, image) -> accel.backend.Result``.

The same protocol (:class:`accel.backend.Backend`) is implemented by the RTL backends, so one
test body runs on all of them.
"""

from __future__ import annotations

from typing import TextIO

import numpy as np
from threadpoolctl import threadpool_limits

from accel.backend import Result, check_image, make_result
from accel.config import AccelConfig
from accel.isa import Compute, Engine, Load, Post, Store
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
    order = [
        (Engine(engine), i)
        for _, engine, i in sorted(
            (sched.start[engine][i], int(engine), i)
            for engine in Engine
            for i in range(len(program.streams[engine]))
        )
    ]
    products = compute.ArrayProducts(program, order)
    # The products are many and small: one BLAS thread each is several times faster than
    # two that synchronise per product.
    with threadpool_limits(1, "blas"):
        _apply(program, order, dram, buffers, products)
    return dram.data


def _apply(
    program: Program,
    order: list[tuple[Engine, int]],
    dram: Dram,
    buffers: Buffers,
    products: compute.ArrayProducts,
) -> None:
    """Every instruction's effect on ``dram`` and ``buffers``, in ``order``."""
    config = program.config
    for engine, i in order:
        instr = program.streams[engine][i]
        if isinstance(instr, Load):
            dma.execute_load(instr, dram, buffers)
        elif isinstance(instr, Store):
            dma.execute_store(instr, dram, buffers)
        elif isinstance(instr, Post):
            postproc.execute(instr, buffers)
        elif isinstance(instr, Compute):
            compute.execute(instr, buffers, config, products, i)


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
