# amaranth: UnusedElaboratable=no
"""hdl.compute, hdl.accumulator: the parts of the compute engine tested on their own (the
accumulator buffer against a Python model of its ports, construction and its checks, Verilog).
The engine's runs against accel.timing, sim.trace and the model's data path share one bench:
tests/test_equivalence_compute.py."""

from __future__ import annotations

import re

import numpy as np
import pytest

from accel import timing
from accel.config import AccelConfig
from hdl.accumulator import AccumulatorBuffer, acc_depth
from hdl.compute import ComputeEngine, weight_addr_bits
from hdl.flow.generate import ports, verilog
from hdl.vector import VectorUnit
from hdl.window import addr_bits
from tests.hdl_support import (
    assert_lints_clean,
    simulate,
    small_config,
    verilog_in_fresh_processes,
)
from tests.references import INT32_MAX, INT32_MIN, wrap32

INPUT_WORDS, WEIGHT_WORDS, ACC_ROWS = 64, 64, 32


def make_config(rows: int, cols: int) -> AccelConfig:
    """A ``rows x cols`` array with 64 input and weight words and 32 accumulator rows."""
    return small_config(
        rows, cols, input_words=INPUT_WORDS, weight_words=WEIGHT_WORDS, acc_rows=ACC_ROWS
    )


# --- the accumulator buffer alone -----------------------------------------------------------


def test_accumulator_rmw_and_post_port_against_a_model():
    """Blocks of array RMWs (every column independently) and of vector-unit RMWs, with the POST
    port reading a random row every cycle. Model: a write of cycle W is seen by RMW reads of
    cycle W (transparent) and by POST reads from W + 1 on."""
    config = make_config(3, 4)
    cols, depth = config.array.cols, acc_depth(config)
    rng = np.random.default_rng(11)
    init = rng.integers(INT32_MIN, INT32_MAX + 1, (depth, cols))
    dut = AccumulatorBuffer(config, init=init)
    mem = init.astype(np.int64).copy()
    hot = rng.integers(0, depth, 3)  # a few rows, so that reads meet writes
    blocks = [("array", 12), ("idle", 2), ("vector", 9), ("idle", 2)] * 4
    plan = [kind for kind, n in blocks for _ in range(n)]
    writes: dict[int, list[tuple[int | None, int, object]]] = {}  # cycle -> (col, row, value)
    checked = {"v_acc": 0, "post": 0, "same_cycle": 0}

    async def bench(ctx):
        expect_v_acc = expect_post = None
        for cycle, kind in enumerate([*plan, "idle", "idle", "idle"]):
            if expect_v_acc is not None:
                assert [int(v) for v in ctx.get(dut.v_acc)] == expect_v_acc
                checked["v_acc"] += 1
            if expect_post is not None:
                assert [int(v) for v in ctx.get(dut.post.data)] == expect_post
                checked["post"] += 1
            post_row = int(rng.integers(depth))
            expect_post = [int(v) for v in mem[post_row]]  # before this cycle's writes
            now = writes.pop(cycle, [])
            for col, row, value in now:
                if col is None:
                    mem[row] = value
                else:
                    mem[row, col] = value
            ctx.set(dut.post.addr, post_row)
            ctx.set(dut.post.en, 1)
            expect_v_acc = None
            for c in range(cols):
                valid = kind == "array" and rng.random() < 0.7
                row = int(rng.choice(hot)) if rng.random() < 0.6 else int(rng.integers(depth))
                over = int(rng.integers(2))
                total = int(rng.integers(INT32_MIN, INT32_MAX + 1))
                ctx.set(dut.a[c].valid, valid)
                ctx.set(dut.a[c].payload, {"addr": row, "overwrite": over, "sum": total})
                if valid:
                    checked["same_cycle"] += any(w[0] == c and w[1] == row for w in now)
                    new = total if over else wrap32(int(mem[row, c]) + total)
                    writes.setdefault(cycle + timing.ACC_LATENCY, []).append((c, row, new))
            v_valid = kind == "vector" and rng.random() < 0.7
            v_row = int(rng.choice(hot)) if rng.random() < 0.6 else int(rng.integers(depth))
            ctx.set(dut.v_rd.valid, v_valid)
            ctx.set(dut.v_rd.payload.addr, v_row)
            if v_valid:
                expect_v_acc = [int(v) for v in mem[v_row]]
                new_row = rng.integers(INT32_MIN, INT32_MAX + 1, cols)
                writes.setdefault(cycle + timing.VECTOR_LATENCY, []).append((None, v_row, new_row))
            # The vector unit's result for the read of VECTOR_LATENCY cycles ago.
            due = [w for w in now if w[0] is None]
            ctx.set(dut.v_wr.valid, bool(due))
            ctx.set(dut.v_wr.payload, [int(v) for v in due[0][2]] if due else [7] * cols)
            await ctx.tick()
        for row in range(depth):
            assert [ctx.get(dut.banks[c][row]) for c in range(cols)] == [int(v) for v in mem[row]]

    simulate(dut, bench)
    assert checked["v_acc"] > 10 and checked["post"] > 100 and checked["same_cycle"] > 0


def test_accumulator_rejects_bad_arguments(monkeypatch):
    config = make_config(2, 2)
    depth = acc_depth(config)
    assert AccumulatorBuffer(config).depth == depth == ACC_ROWS
    with pytest.raises(TypeError, match=r"config must be an AccelConfig, not None"):
        AccumulatorBuffer(None)
    with pytest.raises(ValueError, match=re.escape(f"init must have shape ({depth}, 2), not (2,)")):
        AccumulatorBuffer(config, init=[1, 2])
    with pytest.raises(ValueError, match=r"init must be integers, not float64"):
        AccumulatorBuffer(config, init=np.zeros((depth, 2)))
    with pytest.raises(ValueError, match=r"init values must be int32"):
        AccumulatorBuffer(config, init=np.full((depth, 2), 2**31))
    monkeypatch.setattr(timing, "ACC_LATENCY", 2)
    with pytest.raises(
        ValueError, match=r"accel\.timing\.ACC_LATENCY = 2, but the accumulator writes 1 cycle"
    ):
        AccumulatorBuffer(config)


def test_engine_reports_its_parts_and_rejects_a_bad_config():
    config = make_config(3, 4)
    dut = ComputeEngine(config)
    assert (dut.array.rows, dut.array.cols, dut.vector.lanes) == (3, 4, 3)
    assert dut.accumulator.depth == ACC_ROWS and dut.window.addr_bits == addr_bits(config)
    assert weight_addr_bits(config) == 6
    assert dut.array_latency == 3 + 4 - 1 + timing.ACC_LATENCY + 1
    assert dut.vector_latency == timing.VECTOR_LATENCY + 1
    with pytest.raises(TypeError, match=r"config must be an AccelConfig, not \(3, 4\)"):
        ComputeEngine((3, 4))


# --- Verilog ----------------------------------------------------------------------------------

VERILOG_CONFIG = make_config(3, 4)
BLOCKS = {"compute": ComputeEngine, "accumulator": AccumulatorBuffer, "vector": VectorUnit}


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_verilog_is_deterministic_and_lints_clean(block, tmp_path):
    text = verilog(BLOCKS[block](VERILOG_CONFIG), block)
    assert text == verilog(BLOCKS[block](VERILOG_CONFIG), block)
    header = re.search(rf"module {block}\((.*?)\);", text, re.S).group(1)
    names = {name.strip() for name in header.split(",")}
    assert not any("__" in name for name in names)
    assert names - {"clk", "rst"} == set(ports(BLOCKS[block](VERILOG_CONFIG)))
    assert_lints_clean(text, block, tmp_path)


def test_compute_verilog_ports():
    names = set(ports(ComputeEngine(VERILOG_CONFIG)))
    assert names == {
        "i_payload", "i_valid", "i_ready", "start", "complete", "done",
        *(f"{port}_{member}" for port in ("input_rd", "weight_rd", "post_rd")
          for member in ("addr", "en", "data")),
    }  # fmt: skip


def test_compute_verilog_is_the_same_in_another_process_with_another_hash_seed():
    script = (
        "from tests.test_hdl_compute import VERILOG_CONFIG\n"
        "from hdl.compute import ComputeEngine\n"
        "from hdl.flow.generate import verilog\n"
        "print(verilog(ComputeEngine(VERILOG_CONFIG), 'compute'), end='')\n"
    )
    texts = verilog_in_fresh_processes(script)
    assert texts[0] == texts[1] == verilog(ComputeEngine(VERILOG_CONFIG), "compute")
