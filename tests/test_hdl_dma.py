# amaranth: UnusedElaboratable=no
"""hdl.dma, hdl.dram, hdl.buffers: the parts tested on their own (the buffers' ports and
geometry, construction and its checks, Verilog). The DMA engines' runs against accel.timing,
the model's schedulers and sim.dma share one bench: tests/test_equivalence_dma.py."""

from __future__ import annotations

import functools
import re

import pytest
from amaranth.hdl import Elaboratable, Module

from accel.config import AccelConfig
from accel.isa import Buffer
from hdl.buffers import (
    InputBuffer,
    OutputBuffer,
    ParamBuffer,
    TableBuffer,
    WeightBuffer,
    load_targets,
)
from hdl.dma import LoadEngine, StoreEngine
from hdl.dram import REQUEST_QUEUE, Dram
from hdl.flow.generate import verilog
from tests.hdl_support import (
    assert_lints_clean,
    simulate,
    small_config,
    verilog_in_fresh_processes,
)


def make_config(rows: int, cols: int, bandwidth: int, latency: int) -> AccelConfig:
    """A ``rows x cols`` array, 48 input, 40 weight, 8 accumulator, 32 output and 8 parameter
    words, and the DRAM's ``bandwidth`` and ``latency``."""
    return small_config(
        rows, cols, input_words=48, weight_words=40, acc_rows=8, output_words=32,
        param_words=8, bandwidth=bandwidth, latency=latency,
        name=f"dma{rows}x{cols}b{bandwidth}l{latency}",
    )  # fmt: skip


# --- buffers -----------------------------------------------------------------------------------


class BufferBench(Elaboratable):
    def __init__(self, config) -> None:
        self.buffers = {
            "in": InputBuffer(config),
            "w": WeightBuffer(config),
            "p": ParamBuffer(config),
            "out": OutputBuffer(config),
            "t": TableBuffer(config),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        for name, buffer in self.buffers.items():
            m.submodules[name] = buffer
        return m


PATTERN = int.from_bytes(bytes(range(1, 25)), "little")


def test_buffer_ports_write_bytes_and_read_one_cycle_later():
    """Byte-enable DMA writes; synchronous reads see a write from the next cycle on (not in
    its own cycle); the output buffer's STORE port reads asynchronously."""
    config = make_config(3, 2, 4, 1)
    bench_dut = BufferBench(config)
    b = bench_dut.buffers
    readers = {"in": b["in"].window, "w": b["w"].loader, "p": b["p"].post}

    async def bench(ctx):
        for name, reader in readers.items():
            buffer = b[name]
            width = buffer.word_bytes
            # Two words, the second written in two halves with byte enables.
            full = (1 << (8 * width)) - 1
            ctx.set(buffer.dma.addr, 5)
            ctx.set(buffer.dma.data, PATTERN & full)
            ctx.set(buffer.dma.en, (1 << width) - 1)
            ctx.set(reader.addr, 5)
            ctx.set(reader.en, 1)
            await ctx.tick()
            assert ctx.get(reader.data.as_value()) == 0  # read in the write's cycle: old word
            ctx.set(buffer.dma.addr, 6)
            ctx.set(buffer.dma.data, full)
            ctx.set(buffer.dma.en, 0b10)
            await ctx.tick()
            assert ctx.get(reader.data.as_value()) == PATTERN & full
            ctx.set(buffer.dma.en, 0)
            ctx.set(reader.addr, 6)
            await ctx.tick()
            assert ctx.get(reader.data.as_value()) == 0xFF00  # only byte 1 was enabled
            ctx.set(reader.en, 0)  # the data register holds
            ctx.set(reader.addr, 5)
            await ctx.tick()
            assert ctx.get(reader.data.as_value()) == 0xFF00
        # Parameter lanes are hdl.postproc's layout: bias, multiplier, shift, little-endian.
        ctx.set(b["p"].dma.addr, 1)
        ctx.set(b["p"].dma.data, (7 << 64) | (123 << 32) | ((-5) & 0xFFFFFFFF))
        ctx.set(b["p"].dma.en, (1 << 24) - 1)
        ctx.set(b["p"].post.addr, 1)
        ctx.set(b["p"].post.en, 1)
        await ctx.tick()
        ctx.set(b["p"].dma.en, 0)
        await ctx.tick()
        lane = ctx.get(b["p"].post.data)[0]
        assert (lane.bias, lane.multiplier, lane.shift) == (-5, 123, 7)
        # Output buffer: whole-word POST writes, asynchronous STORE reads.
        out = b["out"]
        ctx.set(out.post.addr, 9)
        ctx.set(out.post.data, [-1, 2])
        ctx.set(out.post.en, 1)
        ctx.set(out.store.addr, 9)
        assert list(ctx.get(out.store.data)) == [0, 0]
        await ctx.tick()
        ctx.set(out.post.en, 0)
        assert list(ctx.get(out.store.data)) == [-1, 2]
        assert ctx.get(out.data[9]) == 0x02FF

    simulate(bench_dut, bench)


def test_table_buffer_returns_each_lane_its_own_byte_in_the_same_cycle():
    """The table buffer: 16-byte DMA words with byte enables; every lane reads the byte at its
    own byte address (word ``a // 16``, byte ``a % 16``) in the cycle of the address (an
    asynchronous read), not seeing a write of that cycle, seeing it from the next."""
    config = make_config(3, 2, 4, 1)
    bench_dut = BufferBench(config)
    t = bench_dut.buffers["t"]

    async def bench(ctx):
        word = int.from_bytes(bytes(range(100, 116)), "little")
        ctx.set(t.dma.addr, 17)  # bytes 272..287: slot 1, entries 16..31
        ctx.set(t.dma.data, word)
        ctx.set(t.dma.en, 0xFFFF)
        ctx.set(t.post.addr, [272, 287])
        assert list(ctx.get(t.post.data)) == [0, 0]  # addressed with the write: old bytes
        await ctx.tick()
        ctx.set(t.dma.en, 0)
        assert list(ctx.get(t.post.data)) == [100, 115]  # the same addresses, a cycle later
        ctx.set(t.post.addr, [287, 275])
        assert list(ctx.get(t.post.data)) == [115, 103]
        ctx.set(t.post.addr, [16, 0])  # slot 0, never written
        assert list(ctx.get(t.post.data)) == [0, 0]
        await ctx.tick()
        ctx.set(t.dma.addr, 1)
        ctx.set(t.dma.data, 0x80 << 8)  # byte 1 only: -128
        ctx.set(t.dma.en, 0b10)
        ctx.set(t.post.addr, [17, 273])
        assert list(ctx.get(t.post.data)) == [0, 101]
        await ctx.tick()
        ctx.set(t.dma.en, 0)
        assert list(ctx.get(t.post.data)) == [-128, 101]

    simulate(bench_dut, bench)


def test_buffer_geometry_follows_the_config():
    config = make_config(3, 2, 4, 1)
    assert [InputBuffer(config).depth, InputBuffer(config).word_bytes] == [48, 3]
    assert [WeightBuffer(config).depth, WeightBuffer(config).word_bytes] == [40, 2]
    assert [ParamBuffer(config).depth, ParamBuffer(config).word_bytes] == [8, 24]
    assert [OutputBuffer(config).depth, OutputBuffer(config).word_bytes] == [32, 2]
    assert InputBuffer(config).addr_bits == 6
    assert load_targets(config) == {
        Buffer.INPUT: (48, 3),
        Buffer.WEIGHT: (40, 2),
        Buffer.PARAM: (8, 24),
        Buffer.TABLE: (32, 16),
    }
    assert [TableBuffer(config).depth, TableBuffer(config).word_bytes] == [32, 16]


# --- arguments -----------------------------------------------------------------------------------


def test_constructors_reject_bad_arguments():
    config = make_config(2, 2, 2, 1)
    for cls in (LoadEngine, StoreEngine, InputBuffer, OutputBuffer):
        with pytest.raises(TypeError, match=r"config must be an AccelConfig, not 'tiny'"):
            cls("tiny")
    with pytest.raises(TypeError, match=r"config must be an AccelConfig, not None"):
        Dram(None, 16)
    with pytest.raises(TypeError, match=r"DRAM size must be an int, not 1\.5"):
        Dram(config, 1.5)
    with pytest.raises(ValueError, match=r"DRAM size must be >= 1 byte, not 0"):
        Dram(config, 0)
    with pytest.raises(ValueError, match=r"DRAM init has 5 bytes, the DRAM holds 4"):
        Dram(config, 4, init=[0] * 5)
    with pytest.raises(ValueError, match=r"DRAM init byte 1 = 256 is not a byte"):
        Dram(config, 4, init=[0, 256])
    with pytest.raises(ValueError, match=r"DRAM request queue depth must be >= 1, not 0"):
        Dram(config, 4, depth=0)
    with pytest.raises(TypeError, match=r"DRAM request queue depth must be an int, not True"):
        Dram(config, 4, depth=True)
    with pytest.raises(ValueError, match=r"LOAD descriptor queue depth must be >= 1, not 0"):
        LoadEngine(config, depth=0)
    with pytest.raises(TypeError, match=r"LOAD descriptor queue depth must be an int, not '4'"):
        LoadEngine(config, depth="4")
    with pytest.raises(ValueError, match=r"InputBuffer init has 49 words, the buffer holds 48"):
        InputBuffer(make_config(2, 2, 2, 1), init=[0] * 49)
    with pytest.raises(ValueError, match=r"OutputBuffer init word 0 = 65536 does not fit 2 bytes"):
        OutputBuffer(config, init=[1 << 16])
    assert Dram(config, 8).depth == 1 + REQUEST_QUEUE == 1 + 8192  # latency + the queue
    assert LoadEngine(config).depth == 128


# --- Verilog -------------------------------------------------------------------------------------

LINT_CONFIG = make_config(3, 4, 3, 2)
VERILOG_BLOCKS = {
    "load": lambda: LoadEngine(LINT_CONFIG),
    "store": lambda: StoreEngine(LINT_CONFIG),
    "load_wide": lambda: LoadEngine(LINT_CONFIG.replace(dram={"bandwidth": 64})),
    "store_wide": lambda: StoreEngine(LINT_CONFIG.replace(dram={"bandwidth": 16})),
    "dram": lambda: Dram(LINT_CONFIG, 64, init=range(64)),
    "dram_l0": lambda: Dram(LINT_CONFIG.replace(dram={"latency": 0}), 64),
    "dram_l1": lambda: Dram(LINT_CONFIG.replace(dram={"latency": 1, "bandwidth": 1}), 64),
    "buffers": lambda: BufferBench(LINT_CONFIG).buffers["p"],
}


@functools.cache
def converted(block: str) -> str:
    return verilog(VERILOG_BLOCKS[block](), block)


@pytest.mark.parametrize("block", ["load", "store", "dram"])
def test_verilog_is_deterministic(block):
    first = verilog(VERILOG_BLOCKS[block](), block)
    assert first == converted(block)
    assert f"module {block}(" in first and f"digest {LINT_CONFIG.digest}" in first


def test_verilog_ports_are_single_underscore_paths():
    text = converted("load")
    names = {n.strip() for n in re.search(r"module load\((.*?)\);", text, re.S).group(1).split(",")}
    assert {"i_valid", "i_ready", "i_payload", "ar_payload", "r_payload", "complete"} <= names
    assert {"input_buf_en", "weight_buf_addr", "param_buf_data", "table_buf_en"} <= names
    assert "r_ready" not in names  # always ready
    assert not any("__" in name for name in names)


@pytest.mark.parametrize("block", sorted(VERILOG_BLOCKS))
def test_verilator_lint_passes(block, tmp_path):
    assert_lints_clean(converted(block), block, tmp_path)


def test_verilog_is_the_same_in_another_process_with_another_hash_seed():
    script = "from tests.test_hdl_dma import converted\nprint(converted('load'), end='')\n"
    texts = verilog_in_fresh_processes(script, ("3", "4"))
    assert texts[0] == texts[1] == converted("load")
