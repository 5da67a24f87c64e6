"""The Amaranth-simulator backend: ``run(program, image) -> accel.backend.Result``.

:class:`System` is the testbench world around :class:`hdl.top.Accelerator`: the DRAM model
(:class:`hdl.dram.Dram`, holding the image) and an instruction memory holding the four
streams one after another (``<engine>_base`` is where each begins). :func:`run` drives it in
the Amaranth simulator: ``start`` in cycle -1, then one clock per cycle until ``done``,
recording every instruction's ``start`` and ``done`` from the trace ports, then reads the
counters and the final DRAM (:class:`accel.backend.Backend`'s protocol, as :func:`sim.run`
and :func:`hdl.flow.verilator.run`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.memory import Memory, MemoryData
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from accel import isa
from accel.backend import Result, check_image, make_result
from accel.isa import Engine
from accel.program import Program
from hdl.axi_top import AxiLiteAccelerator
from hdl.controller import COUNTER_BITS, INSTRUCTION_BITS, engine_name
from hdl.dram import Dram
from hdl.top import Accelerator

__all__ = ["ILLEGAL", "System", "instruction_words", "run"]


#: What a backend says when the controller raises ``error``.
ILLEGAL = (
    "the controller flagged an illegal instruction in cycle {cycle} (an opcode outside its "
    "engine's stream, or a semaphore of another engine)"
)


def instruction_words(program: Program) -> tuple[list[int], dict[Engine, tuple[int, int]]]:
    """The instruction memory image (the streams in :class:`Engine` order, one
    ``accel.isa.encode``-d instruction per word) and each stream's ``(base, count)``."""
    words: list[int] = []
    streams = {}
    for engine in Engine:
        stream = program.streams[engine]
        streams[engine] = (len(words), len(stream))
        words.extend(int.from_bytes(isa.encode(instr), "little") for instr in stream)
    return words, streams


class System(Elaboratable):
    """:class:`~hdl.top.Accelerator` + DRAM model + instruction memory, for simulation.

    With ``axi_lite=True`` the top is :class:`hdl.axi_top.AxiLiteAccelerator` instead, and the
    stream bases and lengths are left to the testbench (``streams``: write them to the
    registers); the top's ``s_axil`` and ``irq`` are then the testbench's to drive and watch.
    """

    def __init__(
        self, program: Program, image: np.ndarray, *, axi_lite: bool = False, **accelerator_options
    ) -> None:
        config = program.config
        top = AxiLiteAccelerator if axi_lite else Accelerator
        self.accelerator = top(config, **accelerator_options)
        self.axi_lite = axi_lite
        self.dram = Dram(config, max(1, image.size), init=image.tolist())
        words, self.streams = instruction_words(program)
        self.imem = MemoryData(shape=INSTRUCTION_BITS, depth=max(1, len(words)), init=words)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accelerator = top = self.accelerator
        m.submodules.dram = dram = self.dram
        m.submodules.imem = imem = Memory(data=self.imem)
        connect(m, top.ar, dram.ar)
        connect(m, dram.r, top.r)
        connect(m, top.w, dram.w)
        m.d.comb += top.b.eq(dram.b)
        for engine, (base, count) in self.streams.items():
            e = engine_name(engine)
            port = imem.read_port()
            fetch = getattr(top, f"imem_{e}")
            if not self.axi_lite:
                m.d.comb += [
                    getattr(top, f"{e}_base").eq(base),
                    getattr(top, f"{e}_count").eq(count),
                ]
            m.d.comb += [
                port.addr.eq(fetch.addr),
                port.en.eq(fetch.en),
                fetch.data.eq(port.data),
            ]
        return m


def run(
    program: Program,
    image: np.ndarray,
    *,
    max_cycles: int | None = None,
    vcd: str | Path | None = None,
    **accelerator_options,
) -> Result:
    """Run ``program`` on ``image`` in the Amaranth simulator (about 1000 cycles/s).

    Raises ``TimeoutError`` naming the cycle if ``done`` has not come after ``max_cycles``
    (default ``2**COUNTER_BITS - 1``), and ``RuntimeError`` if the controller flags an
    illegal instruction.
    """
    check_image(program, image)
    limit = (1 << COUNTER_BITS) - 1 if max_cycles is None else max_cycles
    system = System(program, image, **accelerator_options)
    top = system.accelerator
    start = {engine: [] for engine in Engine}
    done = {engine: [] for engine in Engine}
    outcome: dict[str, object] = {}
    trace = [
        (
            engine,
            getattr(top, f"trace_{engine_name(engine)}_start"),
            getattr(top, f"trace_{engine_name(engine)}_done"),
        )
        for engine in Engine
    ]

    async def bench(ctx):
        ctx.set(top.start, 1)
        await ctx.tick()
        ctx.set(top.start, 0)
        for cycle in range(limit + 1):
            for engine, started, finished in trace:
                if ctx.get(started):
                    start[engine].append(cycle)
                if ctx.get(finished):
                    done[engine].append(cycle)
            if ctx.get(top.error):
                raise RuntimeError(ILLEGAL.format(cycle=cycle))
            if ctx.get(top.done):
                outcome["total"] = ctx.get(top.cycle)
                outcome["counters"] = {
                    name: ctx.get(getattr(top, name))
                    for name in (
                        "stalled",
                        *(
                            f"{engine_name(e)}_{kind}_cycles"
                            for e in Engine
                            for kind in ("busy", "blocked")
                        ),
                    )
                }
                outcome["dram"] = np.array(
                    [ctx.get(system.dram.data[k]) for k in range(image.size)], np.uint8
                )
                return
            await ctx.tick()
        raise TimeoutError(f"the RTL was not done after {limit} cycles")

    sim = Simulator(system)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
    return make_result(
        program,
        "amaranth",
        start=start,
        done=done,
        total_cycles=outcome["total"],
        counters=outcome["counters"],
        dram=outcome["dram"],
    )
