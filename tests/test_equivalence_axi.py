# amaranth: UnusedElaboratable=no
"""hdl.axi_master: the DMA over AXI4 is bit-exact to sim.dma and cycle-exact to accel.timing.

The system of tests/test_equivalence_dma.py (both DMA engines, the five buffers) with
:class:`hdl.axi_master.AxiMaster` and an AXI4 slave in place of :class:`hdl.dram.Dram`. The
slave (:class:`AxiSlave`, a Python model in the testbench, independent of the RTL) answers a
read burst ``latency`` cycles after its AR handshake, one beat per cycle in order, and a
write burst ``latency`` cycles after its last W beat; it checks the AXI4 rules the master
must keep (INCR, full-width beats, aligned addresses, no burst across 4 KiB, at most 256
beats, WLAST on the last beat, WSTRB only on bytes inside DRAM, a valid held with its payload
until its handshake).

Without back-pressure every instruction's start and done, every engine-side request and
beat must be those of the contract, as with hdl.dram.Dram. With random back-pressure and
pauses on all five channels (ready low, valid late) the contents must still be exact and no
instruction may finish earlier than the contract says.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.wiring import connect

from accel.config import AccelConfig
from accel.isa import Buffer, Engine, Load, Store
from hdl.axi_master import AxiMaster, data_bytes
from hdl.buffers import InputBuffer, OutputBuffer, ParamBuffer, TableBuffer, WeightBuffer
from hdl.dma import LoadEngine, StoreEngine
from tests.axi_slave import AxiSlave
from tests.hdl_support import raw, simulate, small_config
from tests.test_equivalence_dma import (
    BUFFERS,
    CORNERS,
    Run,
    check_completes,
    contract,
    make_config,
    model_contents,
    random_contents,
    random_load,
    random_store,
    read_buffers,
    to_words,
)


class AxiDmaSystem(Elaboratable):
    """LOAD and STORE engines + buffers + :class:`AxiMaster` (the slave is the testbench)."""

    def __init__(self, config, init, *, load_depth=16) -> None:
        self.master = AxiMaster(config)
        self.load = LoadEngine(config, depth=load_depth)
        self.store = StoreEngine(config)
        self.buffers = {
            "in": InputBuffer(config, init=to_words(init["in"])),
            "w": WeightBuffer(config, init=to_words(init["w"])),
            "p": ParamBuffer(config, init=to_words(init["p"])),
            "out": OutputBuffer(config, init=to_words(init["out"])),
            "t": TableBuffer(config, init=to_words(init["t"])),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.master = self.master
        m.submodules.load = self.load
        m.submodules.store = self.store
        for name, buffer in self.buffers.items():
            m.submodules[f"buf_{name}"] = buffer
        connect(m, self.load.ar, self.master.ar)
        connect(m, self.master.r, self.load.r)
        connect(m, self.load.input_buf, self.buffers["in"].dma)
        connect(m, self.load.weight_buf, self.buffers["w"].dma)
        connect(m, self.load.param_buf, self.buffers["p"].dma)
        connect(m, self.load.table_buf, self.buffers["t"].dma)
        connect(m, self.store.output_buf, self.buffers["out"].store)
        connect(m, self.store.w, self.master.w)
        m.d.comb += self.store.b.eq(self.master.b)
        return m


def run_axi_system(config, streams, image, init, cycles, *, pause=0.0, seed=0) -> Run:
    dut = AxiDmaSystem(config, init)
    blocks = {Engine.LOAD: dut.load, Engine.STORE: dut.store}
    slave = AxiSlave(
        dut.master.axi,
        image,
        config.dram.latency,
        data_bytes(config),
        np.random.default_rng([seed, 14]),
        pause,
    )
    run = Run()
    load_ports = {
        Buffer.INPUT: dut.load.input_buf,
        Buffer.WEIGHT: dut.load.weight_buf,
        Buffer.PARAM: dut.load.param_buf,
        Buffer.TABLE: dut.load.table_buf,
    }

    async def bench(ctx):
        taken = dict.fromkeys(blocks, 0)
        cycle = 0
        while cycle < cycles or len(run.done[Engine.LOAD]) + len(run.done[Engine.STORE]) < sum(
            len(streams[e]) for e in blocks
        ):
            assert cycle < 50 * cycles, "no progress"
            for engine, block in blocks.items():
                k = taken[engine]
                present = k < len(streams[engine])
                ctx.set(block.i.valid, present)
                ctx.set(block.i.payload.as_value(), raw(streams[engine][k]) if present else 0)
            slave.drive(ctx, cycle)
            for engine, block in blocks.items():
                if ctx.get(block.i.valid) and ctx.get(block.i.ready):
                    run.start[engine].append(cycle)
                    taken[engine] += 1
                if ctx.get(block.complete):
                    run.done[engine].append(cycle + 1)
            for buffer, port in load_ports.items():
                if ctx.get(port.en):
                    run.buffer_writes[cycle] = (buffer, ctx.get(port.addr))
            if ctx.get(dut.master.b):
                run.acks.append(cycle)
            if ctx.get(dut.master.ar.valid) and ctx.get(dut.master.ar.ready):
                run.requests.append(cycle)
            if ctx.get(dut.master.r.valid):
                run.read_beats.append(cycle)
            if ctx.get(dut.store.w.valid) and ctx.get(dut.store.w.ready):
                run.write_beats.append(cycle)
            slave.sample(ctx, cycle)
            await ctx.tick()
            cycle += 1
        run.stalled = bool(ctx.get(dut.load.stalled))
        run.contents = await read_buffers(ctx, dut.buffers)
        run.contents["dram"] = slave.mem
        run.bursts = slave.bursts

    simulate(dut, bench)
    return run


def check_axi(config, loads, stores, seed, *, pause=0.0) -> Run:
    rng = np.random.default_rng(seed)
    image, init = random_contents(rng, config)
    streams = {Engine.LOAD: loads, Engine.COMPUTE: [], Engine.POST: [], Engine.STORE: stores}
    want, requests, beats, writes = contract(config, streams)
    horizon = max(d for v in want.values() for _, d in v) + 4
    run = run_axi_system(config, streams, image, init, horizon, pause=pause, seed=seed)
    for engine in (Engine.LOAD, Engine.STORE):
        got = list(zip(run.start[engine], run.done[engine], strict=True))
        assert len(got) == len(want[engine])
        if pause:
            assert all(d >= w for (_, d), (_, w) in zip(got, want[engine], strict=True))
        else:
            assert got == want[engine], engine
    if not pause:
        check_completes(config, loads, run)
        assert not run.stalled
        assert run.requests == requests
        assert run.read_beats == beats
        assert run.write_beats == writes
    expected = model_contents(config, loads, stores, image, init)
    for name in ("dram", *BUFFERS):
        np.testing.assert_array_equal(run.contents[name], expected[name], strict=True, err_msg=name)
    return run


def random_axi_case(seed: int) -> tuple[AccelConfig, list, list]:
    rng = np.random.default_rng([seed, 14])
    rows, cols = (int(v) for v in rng.integers(2, 5, 2))
    config = make_config(rows, cols, int(rng.choice([1, 2, 4, 8])), int(rng.integers(1, 11)))
    loads = [random_load(rng, config) for _ in range(int(rng.integers(1, 6)))]
    stores = [random_store(rng, config) for _ in range(int(rng.integers(1, 6)))]
    return config, loads, stores


@pytest.mark.parametrize("seed", range(12))
def test_axi_dma_is_bit_and_cycle_exact(seed):
    check_axi(*random_axi_case(seed), seed)


def banked_axi_case(seed: int) -> tuple[AccelConfig, list, list]:
    """Two weight banks: beats of up to two weight words (``tests/test_equivalence_dma.py``)."""
    rng = np.random.default_rng([seed, 15])
    rows, cols = 2 * int(rng.integers(1, 3)), int(rng.integers(2, 5))
    bandwidth = int(rng.choice([2, 4, 8]))
    config = make_config(rows, cols, bandwidth, int(rng.integers(1, 11)))
    config = config.replace(buffers={"weight_banks": 2})
    loads = [random_load(rng, config, buffer=Buffer.WEIGHT) for _ in range(int(rng.integers(2, 6)))]
    stores = [random_store(rng, config) for _ in range(int(rng.integers(1, 3)))]
    return config, loads, stores


@pytest.mark.parametrize("seed", range(6))
def test_axi_dma_into_a_banked_weight_buffer_is_bit_and_cycle_exact(seed):
    check_axi(*banked_axi_case(seed), seed)


@pytest.mark.parametrize("seed", range(8))
def test_axi_dma_under_random_back_pressure_is_bit_exact(seed):
    run = check_axi(*random_axi_case(seed), seed, pause=0.4)
    assert run.done  # the run finished (check_axi compared every instruction)


AXI_CORNERS = sorted(
    name
    for name, ((_, _, bandwidth, latency), _, _) in CORNERS.items()
    if latency >= 1 and not bandwidth & (bandwidth - 1)
)


@pytest.mark.parametrize("name", AXI_CORNERS)
def test_axi_dma_corner_cases_are_bit_and_cycle_exact(name):
    (rows, cols, bandwidth, latency), loads, stores = CORNERS[name]
    check_axi(make_config(rows, cols, bandwidth, latency), loads, stores, 0)


def test_bursts_split_at_4k_and_256_beats():
    """A 600-byte LOAD run across a 4 KiB boundary on a 1-byte bus (bursts of 256, 44, 256,
    44 beats) and a STORE run across another: the slave model asserts both rules on every
    burst, the contract's cycles hold and the bytes land."""
    config = small_config(
        2, 2, input_words=48, weight_words=40, acc_rows=8, output_words=32, param_words=32,
        bandwidth=1, latency=3, name="axi4k",
    )  # fmt: skip
    size = 3 * 4096
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size, dtype=np.uint8)
    load = Load(
        buffer=Buffer.PARAM, dram_addr=8192 - 300, sram_addr=0, outer_count=1, outer_stride=0,
        sram_outer_stride=0, inner_count=1, inner_stride=0, run_bytes=600,
    )  # fmt: skip
    store = Store(
        out_base=0, dram_addr=4095, outer_count=1, outer_stride=0, inner_count=1,
        inner_stride=0, run_bytes=2,
    )  # fmt: skip
    _, init = random_contents(rng, config)
    streams = {Engine.LOAD: [load], Engine.COMPUTE: [], Engine.POST: [], Engine.STORE: [store]}
    want, *_ = contract(config, streams)
    run = run_axi_system(config, streams, image, init, max(d for v in want.values() for _, d in v))
    for engine in (Engine.LOAD, Engine.STORE):
        assert list(zip(run.start[engine], run.done[engine], strict=True)) == want[engine]
    assert run.bursts == [
        ("ar", 8192 - 300, 256),
        ("aw", 4095, 1),
        ("ar", 8192 - 44, 44),
        ("aw", 4096, 1),
        ("ar", 8192, 256),
        ("ar", 8192 + 256, 44),
    ]
    words = run.contents["p"].reshape(-1)[:600]
    np.testing.assert_array_equal(words, image[8192 - 300 : 8192 + 300])
    np.testing.assert_array_equal(run.contents["dram"][4095:4097], run.contents["out"][0, :2])


def test_rejects_what_axi4_cannot_carry():
    with pytest.raises(ValueError, match="not a power of two"):
        AxiMaster(make_config(2, 2, 3, 4))
    with pytest.raises(ValueError, match="latency >= 1"):
        AxiMaster(make_config(2, 2, 4, 0))


def test_the_axi_top_passes_its_master_queue_depth():
    """``AxiAccelerator(master_depth=...)`` sizes the master's queues (a place and route that
    fits, docs/synthesis.md); the default is the master's own, deep enough for the contract."""
    from amaranth.hdl import Fragment

    from accel.config import preset
    from hdl.axi_top import AxiAccelerator

    tiny = preset("tiny")
    for depth, expected in ((None, tiny.dram.latency + 2048), (64, 64)):
        top = AxiAccelerator(tiny) if depth is None else AxiAccelerator(tiny, master_depth=depth)
        assert top.master.depth == expected
        # Elaborated, so that the blocks it builds in its constructor are used (an unused
        # one warns when it is collected, in whatever test runs then).
        Fragment.get(top, None)
    with pytest.raises(ValueError, match="AXI queue depth"):
        AxiAccelerator(tiny, master_depth=0)
