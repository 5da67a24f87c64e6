"""A program started only through AXI4-Lite (:class:`hdl.axi_top.AxiLiteAccelerator`) against
the cycle model and the golden model.

The testbench writes the stream bases and lengths, enables the interrupts and writes
``CTRL.START``, all through :class:`tests.hdl_support.AxiLiteMaster` with random timing; it
then waits for ``irq``, reads ``STATUS``, the cycle counter and the per-engine counters as
LO/HI pairs, and clears the interrupt. The cycle counter must equal the model's total, the
counters the model's, and the outputs the golden model's, bit for bit.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import sim
from accel import config as cfg
from accel.compiler import compile
from accel.isa import Engine
from hdl.axi_lite import Resp
from hdl.controller import engine_name
from hdl.csr import REGISTERS
from hdl.flow.amaranth_sim import System
from tests.hdl_support import AxiLiteMaster, simulate
from tests.layers import conv_qnet, conv_reference, random_input

OFFSET = {reg.name: reg.offset for reg in REGISTERS}
FIELD = {(reg.name, f.name): f.mask for reg in REGISTERS for f in reg.fields}


def run_over_axi_lite(program, image, seed: int, max_cycles: int):
    """Run ``program`` on the AXI4-Lite top; ``(cycle counter, counters, STATUS, DRAM)``."""
    system = System(program, image, axi_lite=True)
    top = system.accelerator
    master = AxiLiteMaster(top.s_axil, random.Random(seed))
    result = {}

    async def read64(ctx, stem):
        lo, resp_lo = await master.read(ctx, OFFSET[f"{stem}_LO"])
        hi, resp_hi = await master.read(ctx, OFFSET[f"{stem}_HI"])
        assert resp_lo == resp_hi == Resp.OKAY
        return hi << 32 | lo

    async def bench(ctx):
        for engine, (base, count) in system.streams.items():
            e = engine_name(engine).upper()
            assert await master.write(ctx, OFFSET[f"{e}_BASE"], base) == Resp.OKAY
            assert await master.write(ctx, OFFSET[f"{e}_COUNT"], count) == Resp.OKAY
        enable = FIELD["IRQ_ENABLE", "DONE"] | FIELD["IRQ_ENABLE", "ERROR"]
        assert await master.write(ctx, OFFSET["IRQ_ENABLE"], enable) == Resp.OKAY
        assert not ctx.get(top.irq)
        assert await master.write(ctx, OFFSET["CTRL"], FIELD["CTRL", "START"]) == Resp.OKAY
        for _ in range(max_cycles):
            if ctx.get(top.irq):
                break
            await ctx.tick()
        else:
            raise TimeoutError(f"no irq after {max_cycles} cycles")
        result["status"], _ = await master.read(ctx, OFFSET["STATUS"])
        result["irq_status"], _ = await master.read(ctx, OFFSET["IRQ_STATUS"])
        result["total"] = await read64(ctx, "CYCLE")
        result["counters"] = {
            f"{name}_{kind}_cycles": await read64(ctx, f"{name.upper()}_{kind.upper()}")
            for name in map(engine_name, Engine)
            for kind in ("busy", "blocked")
        }
        assert await master.write(ctx, OFFSET["IRQ_STATUS"], result["irq_status"]) == Resp.OKAY
        assert not ctx.get(top.irq)
        result["dram"] = np.array(
            [ctx.get(system.dram.data[k]) for k in range(image.size)], np.uint8
        )

    simulate(system, bench)
    return result


@pytest.mark.parametrize("seed", [0, 1])
def test_a_conv_started_over_axi_lite_is_bit_and_cycle_exact(seed):
    rng = np.random.default_rng(seed)
    layer = dict(c=8, k=4, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1), activation="relu")
    qnet = conv_qnet(rng, **layer)
    program = compile(qnet, cfg.preset("tiny"))
    x = random_input(rng, qnet)
    image = program.make_image({"input": x})
    model = sim.run(program, image)
    got = run_over_axi_lite(program, image, seed, 4 * model.total_cycles + 100)

    assert got["status"] == FIELD["STATUS", "DONE"]  # not busy, no error, not stalled
    assert got["irq_status"] == FIELD["IRQ_STATUS", "DONE"]
    assert got["total"] == model.total_cycles
    counters = {key: value for key, value in model.counters.items() if key != "stalled"}
    assert got["counters"] == counters
    expected = conv_reference(qnet, x)
    np.testing.assert_array_equal(model.outputs["conv"], expected, strict=True)
    np.testing.assert_array_equal(program.read_outputs(got["dram"])["conv"], expected, strict=True)
