"""Whole zoo networks on the cycle model: bit-exact to ``accel.executor.run_network`` (int8),
on two presets; fast and trace modes identical on a whole small network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import sim
from accel import config, executor, quantized, synthetic
from accel.backend import Result
from accel.compiler import compile
from accel.isa import ComputeMode, Engine
from accel.timing import VECTOR_MIN_PASS
from tests.layers import zoo_qnet

REDUCED = [
    ("tinyconv", None),
    ("tinynet", None),
    ("lenet5", 32),
    ("resnet18", 64),
    ("resnet34", 64),
    ("resnet50", 64),
    ("mobilenet_v2", 64),
]
FULL_SIZE_ONLY = [("alexnet", 224), ("vgg16", 224)]


def check_bit_exact(qnet: quantized.QuantizedNetwork, preset: str) -> Result:
    program = compile(qnet, config.preset(preset))
    inputs = synthetic.random_int8_inputs(qnet)
    result = sim.run(program, program.make_image(inputs))
    expected = executor.run_network(qnet, inputs)
    assert set(result.outputs) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(result.outputs[name], value, strict=True)
    return result


@pytest.mark.parametrize("preset", ["edge", "server"])
@pytest.mark.parametrize(("name", "size"), REDUCED)
def test_zoo_model_bit_exact(name, size, preset):
    result = check_bit_exact(zoo_qnet(name, size), preset)
    assert result.total_cycles > 0
    assert sum(layer.cycles for layer in result.layers) == result.total_cycles
    assert 0 < result.utilization <= 1


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["edge", "server"])
@pytest.mark.parametrize(("name", "size"), FULL_SIZE_ONLY)
def test_full_size_zoo_model_bit_exact(name, size, preset):
    check_bit_exact(zoo_qnet(name, size), preset)


def test_tiny_preset_runs_small_networks_bit_exact():
    check_bit_exact(zoo_qnet("tinynet", None), "tiny")
    check_bit_exact(zoo_qnet("lenet5", 32), "tiny")


def test_whole_network_fast_equals_trace():
    qnet = zoo_qnet("tinynet", None)
    program = compile(qnet, config.preset("tiny"))
    fast = sim.run(program, compute_outputs=False)
    trace = sim.run(program, compute_outputs=False, mode="trace")
    assert trace.instruction_times() == fast.instruction_times()
    assert dataclasses.replace(trace, backend=fast.backend) == fast  # counters, layers, stalls


def test_feed_slot_busy_plus_stalls_is_the_total():
    program = compile(zoo_qnet("tinynet", None), config.preset("tiny"))
    result = sim.run(program, compute_outputs=False)
    busy = sum(
        instr.passes
        * (instr.pixels if instr.mode == ComputeMode.ARRAY else max(instr.pixels, VECTOR_MIN_PASS))
        for instr in program.streams[Engine.COMPUTE]
    )
    assert set(result.stalls) == {"dram", "dependency", "weights", "fill_drain"}
    assert busy + sum(result.stalls.values()) == result.total_cycles
    assert sum(sum(layer.stalls.values()) for layer in result.layers) == sum(result.stalls.values())


@pytest.mark.parametrize(("name", "preset"), [("tinynet", "tiny"), ("resnet18", "edge")])
def test_the_fast_schedule_feeds_are_the_ones_derived_from_done(name, preset):
    """make_result takes the fast mode's feed slots as they are; RTL results derive them
    from the start and done cycles (accel.backend.feeds): the two must be the same numbers,
    with the AXI top's instruction fetch too."""
    from accel.backend import feeds
    from accel.timing import Fetch
    from sim.controller import schedule

    program = compile(zoo_qnet(name, 64 if name == "resnet18" else None), config.preset(preset))
    for fetch in (None, Fetch(depth=2, width=16)):
        sched = schedule(program.streams, program.config, fetch)
        assert sched.feeds == feeds(program, sched.done, sched.start[Engine.COMPUTE])
