"""The cycle model as a backend: ``run(program, image) -> Result``.

The same protocol is implemented by the RTL backends, so one test body runs on all of them.
"""

from __future__ import annotations

from typing import TextIO

import numpy as np

from accel.config import AccelConfig
from accel.isa import Compute, ComputeMode, Engine, Load, Post, Store
from accel.program import Program
from sim import array, dma, line_buffer, postproc, vector
from sim.buffers import Buffers
from sim.controller import Schedule, schedule
from sim.dram import Dram
from sim.stats import Result, layer_stats, traffic
from sim.trace import trace_schedule

MODES = ("fast", "trace")


def check_program(program: Program, image: np.ndarray | None, config: AccelConfig | None) -> None:
    """Reject a mismatched image or config before anything runs."""
    if config is not None and config != program.config:
        raise ValueError(
            f"program was compiled for config {program.config.name!r} "
            f"({program.config.digest}), not {config.name!r} ({config.digest})"
        )
    program.validate()
    if image is None:
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


def execute(program: Program, sched: Schedule, image: np.ndarray) -> np.ndarray:
    """Apply every instruction's effect in start order (the semaphores make it equivalent)."""
    config = program.config
    rows = config.array.rows
    dram = Dram(image)
    buffers = Buffers(config)
    events = sorted(
        (sched.start[engine][i], int(engine), i)
        for engine in Engine
        for i in range(len(program.streams[engine]))
    )
    lanes = min(rows, config.array.cols)
    for _, engine, i in events:
        instr = program.streams[Engine(engine)][i]
        if isinstance(instr, Load):
            dma.execute_load(instr, dram, buffers)
        elif isinstance(instr, Store):
            dma.execute_store(instr, dram, buffers)
        elif isinstance(instr, Post):
            buffers.check("acc", instr.acc_base, instr.count)
            buffers.check("out", instr.out_base, instr.count)
            acc = buffers.acc[instr.acc_base : instr.acc_base + instr.count]
            params = buffers.param[instr.param_base]
            buffers.out[instr.out_base : instr.out_base + instr.count] = postproc.postprocess(
                instr, acc, params
            )
        elif isinstance(instr, Compute):
            buffers.check("acc", instr.acc_base, instr.pixels)
            target = buffers.acc[instr.acc_base : instr.acc_base + instr.pixels]
            windows = line_buffer.read_windows(instr, buffers.input)
            if instr.mode == ComputeMode.ARRAY:
                tiles = array.weight_tiles(instr, buffers.weight, rows)
                sums = array.array_sums(windows, tiles)
                if instr.accumulate:
                    sums += target
                target[...] = sums.astype(np.int32)  # int32 accumulators wrap
            else:
                result = vector.vector_result(instr, windows[..., :lanes], target[:, :lanes])
                target[:, :lanes] = result.astype(np.int32)
                target[:, lanes:] = 0
    return dram.data


def run(
    program: Program,
    image: np.ndarray | None = None,
    *,
    config: AccelConfig | None = None,
    mode: str = "fast",
    compute_outputs: bool = True,
    trace_dump: TextIO | None = None,
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
    compute_outputs:
        ``False`` skips the data path and returns cycles and traffic only.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    check_program(program, image, config)
    if compute_outputs and image is None:
        raise ValueError("an image is needed to compute outputs (or pass compute_outputs=False)")
    if mode == "fast":
        sched = schedule(program.streams, program.config)
    else:
        sched = trace_schedule(program.streams, program.config, dump=trace_dump)
    outputs = {}
    if compute_outputs:
        final = execute(program, sched, image)
        outputs = program.read_outputs(final)
    reads, writes, dram_read, dram_written, per_layer = traffic(program)
    layers, stalls = layer_stats(program, sched, per_layer)
    return Result(
        backend=f"model-{mode}",
        outputs=outputs,
        total_cycles=sched.total_cycles,
        layers=layers,
        schedule=sched,
        sram_reads=reads,
        sram_writes=writes,
        dram_read_bytes=dram_read,
        dram_written_bytes=dram_written,
        macs=sum(layer.macs for layer in program.layers),
        peak_macs_per_cycle=program.config.array.pes,
        clock_mhz=program.config.clock_mhz,
        stalls=stalls,
    )
