# amaranth: UnusedElaboratable=no
"""The whole AXI top (:class:`hdl.axi_top.AxiAccelerator`) against the cycle model with the
instruction fetch, and against the golden model.

The program is in DRAM (:meth:`accel.program.Program.with_instructions`), behind two
:class:`tests.axi_slave.AxiSlave` memories of the config's latency that share one memory
array: one on the data master ``m_axi``, one on the instruction master ``m_axi_insn``. The
testbench programs the stream bases and lengths over AXI4-Lite, starts the program, waits for
``irq`` and reads the cycle and per-engine counters. With the contract's memory every
instruction's start and done (from the trace ports), the cycle counter and the counters equal
``sim.run(..., fetch=top.fetch)``, ``AXI_STALL`` is 0 and ``STATUS.STALLED`` low; with random
pauses on every channel the outputs are still exact, the program takes no fewer cycles, and
``AXI_STALL`` equals the cycles the testbench counts on the buses (a request valid, its
ready low, while ``BUSY``), with ``STATUS.STALLED`` set. Outputs are always the golden
model's.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import sim
from accel import config as cfg
from accel import executor, synthetic
from accel.compiler import compile
from accel.isa import Engine
from accel.timing import Fetch
from hdl.axi_lite import Resp
from hdl.axi_master import data_bytes
from hdl.axi_top import AxiAccelerator
from hdl.controller import engine_name
from hdl.csr import REGISTERS
from tests.axi_slave import AxiSlave
from tests.hdl_support import AxiLiteMaster, simulate
from tests.layers import conv_qnet, conv_reference, random_input, zoo_qnet

OFFSET = {reg.name: reg.offset for reg in REGISTERS}
FIELD = {(reg.name, f.name): f.mask for reg in REGISTERS for f in reg.fields}


async def read_counters(ctx, master) -> dict:
    """The 64-bit counters over AXI4-Lite: ``total`` (CYCLE), ``counters`` (each engine's
    busy and blocked cycles) and ``axi_stall`` (AXI_STALL)."""

    async def read64(name: str) -> int:
        lo, _ = await master.read(ctx, OFFSET[f"{name}_LO"])
        hi, _ = await master.read(ctx, OFFSET[f"{name}_HI"])
        return hi << 32 | lo

    total = await read64("CYCLE")
    counters = {}
    for name in map(engine_name, Engine):
        for kind in ("busy", "blocked"):
            counters[f"{name}_{kind}_cycles"] = await read64(f"{name}_{kind}".upper())
    return {"total": total, "counters": counters, "axi_stall": await read64("AXI_STALL")}


def run_axi_top(program, image, *, fetch=None, pause=0.0, seed=0, max_cycles=100_000):
    """Run ``program`` on :class:`AxiAccelerator`; a dict of the CSR results, the trace (start
    and done cycles per engine, counted from cycle 0) and the memory afterwards."""
    config = program.config
    top = AxiAccelerator(config, fetch=fetch)
    memory, bases = program.with_instructions(image)
    memory = np.pad(memory, (0, -memory.size % 128))  # whole beats of the widest bus
    rng = np.random.default_rng([seed, 14])
    data = AxiSlave(top.m_axi, memory, config.dram.latency, data_bytes(config), rng, pause)
    insn = AxiSlave(top.m_axi_insn, memory, config.dram.latency, top.fetch.width, rng, pause)
    insn.mem = data.mem  # one memory behind both ports
    master = AxiLiteMaster(top.s_axil, random.Random(seed))
    start = top.inner.registers.start
    result = {"start": {e: [] for e in Engine}, "done": {e: [] for e in Engine}, "seen": 0}
    busy = top.inner.registers.busy
    requests = [(data.port.arvalid, data.port.arready), (insn.port.arvalid, insn.port.arready)]
    requests += [(data.port.awvalid, data.port.awready), (data.port.wvalid, data.port.wready)]
    finished = []

    async def control(ctx):
        for engine in Engine:
            e = engine_name(engine).upper()
            count = len(program.streams[engine])
            assert await master.write(ctx, OFFSET[f"{e}_BASE"], bases[engine]) == Resp.OKAY
            assert await master.write(ctx, OFFSET[f"{e}_COUNT"], count) == Resp.OKAY
        enable = FIELD["IRQ_ENABLE", "DONE"] | FIELD["IRQ_ENABLE", "ERROR"]
        assert await master.write(ctx, OFFSET["IRQ_ENABLE"], enable) == Resp.OKAY
        assert await master.write(ctx, OFFSET["CTRL"], FIELD["CTRL", "START"]) == Resp.OKAY
        for _ in range(max_cycles):
            if ctx.get(top.irq):
                break
            await ctx.tick()
        else:
            raise TimeoutError(f"no irq after {max_cycles} cycles")
        result["status"], _ = await master.read(ctx, OFFSET["STATUS"])
        result.update(await read_counters(ctx, master))
        finished.append(True)

    async def memories_and_trace(ctx):
        cycle, program_cycle = 0, None
        while not finished:
            data.drive(ctx, cycle)
            insn.drive(ctx, cycle)
            if ctx.get(busy) and any(ctx.get(v) and not ctx.get(r) for v, r in requests):
                result["seen"] += 1  # back-pressure, as the buses show it
            if program_cycle is not None:
                for engine in Engine:
                    e = engine_name(engine)
                    if ctx.get(getattr(top, f"trace_{e}_start")):
                        result["start"][engine].append(program_cycle)
                    if ctx.get(getattr(top, f"trace_{e}_done")):
                        result["done"][engine].append(program_cycle)
                program_cycle += 1
            if ctx.get(start):
                program_cycle = 0
            data.sample(ctx, cycle)
            insn.sample(ctx, cycle)
            await ctx.tick()
            cycle += 1

    simulate(top, control, memories_and_trace)
    result["dram"] = data.mem[: image.size]
    result["insn_bursts"] = insn.bursts
    return result


def check_against_model(program, image, got, fetch, *, exact: bool):
    model = sim.run(program, image, fetch=fetch)
    assert got["status"] & 0b111 == FIELD["STATUS", "DONE"]  # done, not busy, no error
    np.testing.assert_array_equal(got["dram"], model.dram, strict=True)
    assert got["axi_stall"] == got["seen"]
    assert not got["axi_stall"] or got["status"] & FIELD["STATUS", "STALLED"]
    if exact:
        assert got["axi_stall"] == 0
        assert got["status"] == FIELD["STATUS", "DONE"]  # nor stalled
        for engine in Engine:
            assert got["start"][engine] == list(model.start[engine]), engine.name
            assert got["done"][engine] == list(model.done[engine]), engine.name
        assert got["total"] == model.total_cycles
        counters = {key: value for key, value in model.counters.items() if key != "stalled"}
        assert got["counters"] == counters
    else:
        assert got["total"] >= model.total_cycles
    return model


@pytest.mark.parametrize(
    ("seed", "fetch", "pause"),
    [
        (0, Fetch(), 0.0),
        (1, Fetch(depth=2, width=16), 0.0),  # four beats per instruction, a shallow buffer
        (2, Fetch(depth=1, width=128), 0.0),  # two instructions per beat
        (3, Fetch(depth=4, width=64), 0.3),
    ],
    ids=["default", "depth2-width16", "depth1-width128", "paused"],
)
def test_a_conv_with_fetched_instructions(seed, fetch, pause):
    rng = np.random.default_rng(seed)
    layer = dict(c=8, k=4, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1), activation="relu")
    qnet = conv_qnet(rng, **layer)
    program = compile(qnet, cfg.preset("tiny"))
    x = random_input(rng, qnet)
    image = program.make_image({"input": x})
    got = run_axi_top(program, image, fetch=fetch, pause=pause, seed=seed)
    model = check_against_model(program, image, got, fetch, exact=not pause)
    assert (got["axi_stall"] > 0) == (pause > 0)
    expected = conv_reference(qnet, x)
    np.testing.assert_array_equal(program.read_outputs(got["dram"])["conv"], expected, strict=True)
    # Every instruction came over m_axi_insn, each exactly once.
    words = sorted(addr // 64 for _, addr, _ in got["insn_bursts"])
    assert len(words) == program.instruction_count
    if fetch.width <= 64:
        assert len(set(words)) == len(words)
    assert model.total_cycles > sim.run(program, image).total_cycles  # the fetch is not free


@pytest.mark.slow
def test_tinynet_on_tiny_with_fetched_instructions():
    config = cfg.preset("tiny")
    qnet = zoo_qnet("tinynet")
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    image = program.make_image(inputs)
    fetch = Fetch()
    got = run_axi_top(program, image, fetch=fetch, max_cycles=40_000)
    check_against_model(program, image, got, fetch, exact=True)
    outputs = program.read_outputs(got["dram"])
    for name, want in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(outputs[name], want, strict=True, err_msg=name)


def random_conv_cases(count: int):
    """Random conv layers on ``tiny`` with random fetch parameters, seeded by their index."""
    cases = []
    for seed in range(count):
        rng = np.random.default_rng([seed, 1414])
        kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        layer = dict(
            c=int(rng.integers(1, 10)),
            k=int(rng.integers(1, 10)),
            hw=(int(rng.integers(kernel[0], 7)), int(rng.integers(kernel[1], 7))),
            kernel=kernel,
            stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
            padding=tuple(int(rng.integers(0, 2)) for _ in range(4)),
            activation=str(rng.choice(["relu", "relu6", "none"])),
        )
        if layer["activation"] == "none":
            layer["activation"] = None
        fetch = Fetch(depth=int(rng.choice([1, 2, 4, 8])), width=int(rng.choice([4, 16, 64])))
        cases.append(pytest.param(seed, layer, fetch, id=f"seed{seed}"))
    return cases


@pytest.mark.parametrize(("seed", "layer", "fetch"), random_conv_cases(3))
def test_random_convs_with_fetched_instructions(seed, layer, fetch):
    rng = np.random.default_rng(seed)
    qnet = conv_qnet(rng, **layer)
    program = compile(qnet, cfg.preset("tiny"))
    x = random_input(rng, qnet)
    image = program.make_image({"input": x})
    got = run_axi_top(program, image, fetch=fetch, seed=seed)
    check_against_model(program, image, got, fetch, exact=True)
    expected = conv_reference(qnet, x)
    np.testing.assert_array_equal(program.read_outputs(got["dram"])["conv"], expected, strict=True)
