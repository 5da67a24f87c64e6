# amaranth: UnusedElaboratable=no
"""Slave errors on the AXI top (:class:`hdl.axi_top.AxiAccelerator`): a SLVERR or DECERR on
the data master's R (a LOAD) or B (a STORE), or on the instruction master's R, is reported
(``STATUS.ERROR``, its ``ERROR_CAUSE`` bit, ``IRQ_STATUS.ERROR`` and ``irq``) and stops the
program: no instruction starts after the cycle of the erroneous response, ``STATUS.BUSY``
falls (no hang) and ``STATUS.DONE`` stays low. A second ``START`` with a memory that answers
``OKAY`` then runs the program from a clean state, bit-exact and cycle-exact to the model.

The memories are :class:`tests.axi_slave.AxiSlave` with a ``faulty`` byte range; the bus
errors are read from the slave's side (RVALID/RRESP, BVALID/BRESP), independently of the RTL.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from accel import config as cfg
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
from tests.layers import conv_qnet, conv_reference, random_input
from tests.test_equivalence_axi_fetch import check_against_model, read_counters

OFFSET = {reg.name: reg.offset for reg in REGISTERS}
FIELD = {(reg.name, f.name): f.mask for reg in REGISTERS for f in reg.fields}
BUSY, DONE, ERROR = (FIELD["STATUS", name] for name in ("BUSY", "DONE", "ERROR"))


def run_with_fault(program, image, *, data_fault=None, insn_fault=None, fault=2, seed=0):
    """Run ``program`` on :class:`AxiAccelerator` twice: first with the slaves answering
    ``fault`` for bursts touching ``data_fault`` (``m_axi``) or ``insn_fault``
    (``m_axi_insn``), then, after that run has stopped, with slaves that answer OKAY."""
    config = program.config
    fetch = Fetch()
    top = AxiAccelerator(config, fetch=fetch)
    memory, bases = program.with_instructions(image)
    memory = np.pad(memory, (0, -memory.size % 128))
    rng = np.random.default_rng([seed, 15])
    data = AxiSlave(top.m_axi, memory, config.dram.latency, data_bytes(config), rng)
    insn = AxiSlave(top.m_axi_insn, memory, config.dram.latency, fetch.width, rng)
    insn.mem = data.mem
    data.faulty, insn.faulty, data.fault, insn.fault = data_fault, insn_fault, fault, fault
    master = AxiLiteMaster(top.s_axil, random.Random(seed))
    start = top.inner.registers.start
    runs = []  # per run: trace, first error cycle, registers
    finished = []

    async def control(ctx):
        for engine in Engine:
            e = engine_name(engine).upper()
            assert await master.write(ctx, OFFSET[f"{e}_BASE"], bases[engine]) == Resp.OKAY
            count = len(program.streams[engine])
            assert await master.write(ctx, OFFSET[f"{e}_COUNT"], count) == Resp.OKAY
        enable = FIELD["IRQ_ENABLE", "DONE"] | FIELD["IRQ_ENABLE", "ERROR"]
        assert await master.write(ctx, OFFSET["IRQ_ENABLE"], enable) == Resp.OKAY
        for attempt in range(2):
            if attempt:
                data.faulty = insn.faulty = None
                clear = FIELD["IRQ_STATUS", "DONE"] | FIELD["IRQ_STATUS", "ERROR"]
                assert await master.write(ctx, OFFSET["IRQ_STATUS"], clear) == Resp.OKAY
                assert not ctx.get(top.irq)
            assert await master.write(ctx, OFFSET["CTRL"], FIELD["CTRL", "START"]) == Resp.OKAY
            for _ in range(50_000):
                if ctx.get(top.irq):
                    break
                await ctx.tick()
            else:
                raise TimeoutError("no irq")
            run = runs[-1]
            run["irq"], _ = await master.read(ctx, OFFSET["IRQ_STATUS"])
            for _ in range(2_000):  # a stopped program's busy falls
                status, _ = await master.read(ctx, OFFSET["STATUS"])
                if not status & BUSY:
                    break
            else:
                raise TimeoutError("STATUS.BUSY stays high after the error")
            run["status"] = status
            run["cause"], _ = await master.read(ctx, OFFSET["ERROR_CAUSE"])
            run.update(await read_counters(ctx, master))
        finished.append(True)

    busy = top.inner.registers.busy
    requests = [(data.port.arvalid, data.port.arready), (insn.port.arvalid, insn.port.arready)]
    requests += [(data.port.awvalid, data.port.awready), (data.port.wvalid, data.port.wready)]

    async def memories_and_trace(ctx):
        cycle, program_cycle = 0, None
        while not finished:
            data.drive(ctx, cycle)
            insn.drive(ctx, cycle)
            if runs and ctx.get(busy) and any(ctx.get(v) and not ctx.get(r) for v, r in requests):
                runs[-1]["seen"] += 1
            if program_cycle is not None:
                run = runs[-1]
                for engine in Engine:
                    e = engine_name(engine)
                    if ctx.get(getattr(top, f"trace_{e}_start")):
                        run["start"][engine].append(program_cycle)
                    if ctx.get(getattr(top, f"trace_{e}_done")):
                        run["done"][engine].append(program_cycle)
                responses = [
                    (data.port.rvalid, data.port.rready, data.port.rresp),
                    (data.port.bvalid, data.port.bready, data.port.bresp),
                    (insn.port.rvalid, insn.port.rready, insn.port.rresp),
                ]
                for valid, ready, resp in responses:
                    if ctx.get(valid) and ctx.get(ready) and ctx.get(resp) >= 2:
                        run["errors"].append(program_cycle)
                program_cycle += 1
            if ctx.get(start):
                program_cycle = 0
                runs.append(
                    {
                        "start": {e: [] for e in Engine},
                        "done": {e: [] for e in Engine},
                        "errors": [],
                        "seen": 0,
                    }
                )
            data.sample(ctx, cycle)
            insn.sample(ctx, cycle)
            await ctx.tick()
            cycle += 1

    simulate(top, control, memories_and_trace)
    for run in runs:
        run["dram"] = data.mem[: image.size]
    return runs


def conv_program(seed: int):
    rng = np.random.default_rng(seed)
    layer = dict(c=8, k=4, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1), activation="relu")
    qnet = conv_qnet(rng, **layer)
    program = compile(qnet, cfg.preset("tiny"))
    x = random_input(rng, qnet)
    return qnet, program, x, program.make_image({"input": x})


def check_stopped(program, run, cause: str) -> None:
    """The first run: reported, stopped after the first erroneous response, not busy."""
    assert run["errors"], "the slave answered no error: the test does not test anything"
    first = run["errors"][0]
    assert run["status"] & (BUSY | DONE | ERROR) == ERROR
    assert run["irq"] & FIELD["IRQ_STATUS", "ERROR"]
    assert not run["irq"] & FIELD["IRQ_STATUS", "DONE"]
    assert run["cause"] == FIELD["ERROR_CAUSE", cause]
    started = sum(len(v) for v in run["start"].values())
    assert started < program.instruction_count  # stopped before the end
    for engine in Engine:
        # No grant after the cycle of the erroneous response; what was granted finished.
        assert all(cycle <= first for cycle in run["start"][engine]), engine.name
        assert len(run["done"][engine]) == len(run["start"][engine]), engine.name
    assert run["total"] > first  # the cycle counter ran until busy fell


def check_rerun(qnet, program, image, x, run) -> None:
    """The second run: from a clean state, exact."""
    check_against_model(program, image, run, Fetch(), exact=True)
    assert run["cause"] == 0
    want = conv_reference(qnet, x)
    np.testing.assert_array_equal(program.read_outputs(run["dram"])["conv"], want, strict=True)


@pytest.mark.parametrize("fault", [2, 3], ids=["SLVERR", "DECERR"])
def test_a_load_read_error_is_reported_and_stops_the_program(fault):
    qnet, program, x, image = conv_program(0)
    where = program.inputs["input"].addr
    first, second = run_with_fault(program, image, data_fault=(where, where + 1), fault=fault)
    check_stopped(program, first, "DATA_READ")
    check_rerun(qnet, program, image, x, second)


def test_a_store_write_error_is_reported_and_stops_the_program():
    qnet, program, x, image = conv_program(1)
    where = program.outputs["conv"].addr
    first, second = run_with_fault(program, image, data_fault=(where, where + 1))
    check_stopped(program, first, "DATA_WRITE")
    check_rerun(qnet, program, image, x, second)


def test_an_instruction_fetch_error_is_reported_and_stops_the_program():
    qnet, program, x, image = conv_program(2)
    _, bases = program.with_instructions(image)
    index = len(program.streams[Engine.COMPUTE]) // 2
    where = 64 * (bases[Engine.COMPUTE] + index)
    first, second = run_with_fault(program, image, insn_fault=(where, where + 64))
    check_stopped(program, first, "FETCH_READ")
    # The instruction fetched with the error is never granted.
    assert len(first["start"][Engine.COMPUTE]) <= index
    check_rerun(qnet, program, image, x, second)
