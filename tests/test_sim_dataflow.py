"""The cycle model's data path computes several instructions at once (the k tiles of an output
tile in one matrix product, float32 where exact); these tests plant the bugs that grouping
and the narrower arithmetic could hide and check that they are caught."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from accel import config, synthetic
from accel.compiler import compile
from accel.isa import Buffer, Load
from sim import array, compute, dma
from sim.buffers import Buffers
from sim.controller import schedule
from sim.dram import Dram
from tests.layers import zoo_qnet

sim_run = importlib.import_module("sim.run")  # ``sim.run`` the attribute is the function


@pytest.fixture(scope="module")
def lenet():
    """lenet5 on ``tiny``: streamed weights, a weight LOAD between consecutive k tiles."""
    qnet = zoo_qnet("lenet5", 32)
    program = compile(qnet, config.preset("tiny"))
    image = program.make_image(synthetic.random_int8_inputs(qnet))
    return program, image, schedule(program.streams, program.config)


def _runs(program, sched) -> list[list[int]]:
    _, position = sim_run.start_order(program, sched)
    plan = compute.ArrayProducts(program, position)
    return list(plan._runs.values())


def test_a_plan_that_ignores_weight_loads_is_caught(lenet, monkeypatch):
    """If the plan thought LOADs wrote nothing, members would take products of weights that a
    LOAD has since replaced: the run must stop at the first such member."""
    program, image, sched = lenet
    honest = _runs(program, sched)
    monkeypatch.setattr(compute, "load_span", lambda load, config: (0, 0))
    planted = _runs(program, sched)
    assert max(map(len, planted)) > max(map(len, honest))  # the bug does group more
    with pytest.raises(AssertionError, match=r"COMPUTE\[\d+\]: its words changed"):
        sim_run.execute(program, sched, image)


def test_a_load_stamps_exactly_the_words_it_writes():
    """The check members rely on: a LOAD into the input buffer marks the words it wrote (and
    no others) as changed since any earlier count of LOADs."""
    cfg = config.preset("tiny")
    buffers = Buffers(cfg)
    dram = Dram(np.arange(256, dtype=np.uint8))
    before = buffers.loads
    load = Load(
        buffer=Buffer.INPUT, dram_addr=0, sram_addr=10, outer_count=2, outer_stride=8,
        sram_outer_stride=5, inner_count=2, inner_stride=4, run_bytes=cfg.array.rows,
    )  # fmt: skip
    dma.execute_load(load, dram, buffers)
    assert not buffers.unchanged_since(Buffer.INPUT, 10, 11, before)
    assert not buffers.unchanged_since(Buffer.INPUT, 16, 17, before)  # the last word written
    assert buffers.unchanged_since(Buffer.INPUT, 0, 10, before)
    assert buffers.unchanged_since(Buffer.INPUT, 17, 40, before)
    assert buffers.unchanged_since(Buffer.INPUT, 10, 17, buffers.loads)
    assert buffers.unchanged_since(Buffer.WEIGHT, 0, cfg.weight_words, before)


def test_a_plan_that_groups_different_windows_is_caught(lenet, monkeypatch):
    """A member whose window walk is not its run's first's would take someone else's sums."""
    program, image, sched = lenet
    original = compute.ArrayProducts.__init__

    def planted(self, program, position):
        original(self, program, position)
        firsts = sorted(self._runs)
        merged = self._runs[firsts[0]] + self._runs[firsts[1]]  # two output tiles
        del self._runs[firsts[1]]
        self._runs[firsts[0]] = merged
        self._first.update(dict.fromkeys(merged, firsts[0]))

    monkeypatch.setattr(compute.ArrayProducts, "__init__", planted)
    with pytest.raises(AssertionError, match="reads other words than its run's first"):
        sim_run.execute(program, sched, image)


def test_the_honest_plan_matches_one_product_per_instruction(lenet, monkeypatch):
    """Grouped products give the DRAM that one product per instruction gives."""
    program, image, sched = lenet
    grouped = sim_run.execute(program, sched, image)
    monkeypatch.setattr(compute.ArrayProducts, "MOST", 1)
    assert max(map(len, _runs(program, sched))) == 1
    np.testing.assert_array_equal(sim_run.execute(program, sched, image), grouped, strict=True)


def test_products_switch_to_float64_before_float32_rounds():
    """``2**24 + 1`` is not a float32: a product whose sums reach it must run in float64."""
    k = array.FLOAT32_TERMS + 1
    lhs = np.full((1, k), -128, np.int8)
    lhs[0, -1] = 1
    tiles = np.full((k, 2), -128, np.int8)
    tiles[-1] = 1
    assert array.FLOAT32_TERMS * 128 * 128 == 2**24
    np.testing.assert_array_equal(array.multiply(lhs, tiles), [[2**24 + 1, 2**24 + 1]])
    wrong = lhs.astype(np.float32) @ tiles.astype(np.float32)
    assert int(wrong[0, 0]) != 2**24 + 1  # float32 would have rounded


@pytest.mark.parametrize("k", [1, 17, array.FLOAT32_TERMS, array.FLOAT32_TERMS + 1, 3000])
def test_products_are_exact_at_the_extremes(k):
    rng = np.random.default_rng(k)
    lhs = rng.choice(np.array([-128, 127, -127], np.int8), size=(5, k))
    tiles = rng.choice(np.array([-128, 127], np.int8), size=(k, 3))
    exact = lhs.astype(np.int64) @ tiles.astype(np.int64)
    np.testing.assert_array_equal(array.multiply(lhs, tiles), exact, strict=True)
