"""Pointwise activations on the cycle model: fused into the POST of the layer before them or
on their own, bit-exact to the int8 golden model, the fast mode's timing equal to the trace
mode's; and the program of a network without one does not change."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config, executor, synthetic
from accel import graph as g
from accel.compiler import compile
from accel.isa import Buffer, Engine, Load, Post
from sim.dma import load_span
from tests.layers import quantized


def lut_network(function: str = "sigmoid") -> g.Network:
    """Every way a table runs: after a conv, a linear, an add and pools (fused), after the
    network input and after a tensor with two consumers (on its own), as an output."""
    net = g.Network("lut")
    net.add("x", g.Input((5, 7, 7)))
    net.add("pre", g.Pointwise("tanh"), ["x"])  # standalone: its input is the network input
    net.add("c1", g.Conv2d(5, 20, 3, padding=1), ["pre"])
    net.add("a1", g.Pointwise(function), ["c1"])  # fused
    net.add("c2", g.Conv2d(20, 20, 3, padding=1), ["a1"])
    net.add("c3", g.Conv2d(20, 20, 1), ["a1"])
    net.add("sum", g.Add(), ["c2", "c3"])
    net.add("a2", g.Pointwise("hardswish"), ["sum"])  # fused into the add
    net.add("mp", g.MaxPool2d(2, 2), ["a2"])
    net.add("a3", g.Pointwise("elu", {"alpha": 0.5}), ["mp"])  # fused into the max pool
    net.add("gap", g.GlobalAvgPool(), ["a3"])
    net.add("a4", g.Pointwise("gelu"), ["gap"])  # fused into the global pool
    net.add("flat", g.Flatten(), ["a4"])
    net.add("fc", g.Linear(20, 10), ["flat"])
    net.add("a5", g.Pointwise("softplus"), ["fc"])  # fused; the output
    net.add("a6", g.Pointwise("leakyrelu"), ["c2"])  # c2 has two consumers: on its own
    return net


def run_bit_exact(qnet, cfg, **compile_args):
    program = compile(qnet, cfg, **compile_args)
    inputs = synthetic.random_int8_inputs(qnet, seed=3)
    result = sim.run(program, program.make_image(inputs))
    expected = executor.run_network(qnet, inputs)
    for name, value in expected.items():
        np.testing.assert_array_equal(result.outputs[name], value, strict=True)
    return program, result


@pytest.mark.parametrize("preset", ["tiny", "edge"])
def test_network_with_tables_is_bit_exact(preset):
    qnet = quantized(lut_network())
    program, _ = run_bit_exact(qnet, config.preset(preset))
    tables = [i for i in program.streams[Engine.LOAD] if i.buffer == Buffer.TABLE]
    assert len(tables) == 7  # one per Pointwise, fused or not
    luts = {i.layer for i in program.streams[Engine.POST] if i.lut}
    layers = {layer.name: layer for layer in program.layers}
    for producer, pointwise in (("c1", "a1"), ("sum", "a2"), ("mp", "a3"), ("gap", "a4")):
        assert layers[producer].mapping["activation"] == f"{pointwise} (table in POST)"
        assert layers[pointwise].mapping["unit"].startswith("none")
    for alone in ("pre", "a6"):
        assert layers[alone].mapping["unit"].startswith("vector")
    # The POSTs that apply a table are those of the producers and of the lone ones.
    assert {layers[n].index for n in ("pre", "c1", "sum", "mp", "gap", "fc", "a6")} == luts


def test_every_intermediate_kept_runs_every_table_on_its_own():
    qnet = quantized(lut_network("silu"))
    program, _ = run_bit_exact(qnet, config.preset("edge"), keep_tensors=True)
    assert "c1" in program.outputs and "a1" in program.outputs
    assert not any(layer.mapping.get("activation") for layer in program.layers)


@pytest.mark.parametrize("preset", ["tiny", "edge"])
def test_fast_mode_timing_equals_trace_mode(preset):
    qnet = quantized(lut_network("gelu_tanh"))
    program = compile(qnet, config.preset(preset))
    image = program.make_image(synthetic.random_int8_inputs(qnet, seed=1))
    fast = sim.run(program, image)
    trace = sim.run(program, image, mode="trace", compute_outputs=False)
    assert trace.instruction_times() == fast.instruction_times()


def test_a_post_with_a_table_takes_the_cycles_of_one_without():
    qnet = quantized(lut_network())
    program = compile(qnet, config.preset("edge"))
    plain = [
        i if not isinstance(i, Post) else type(i)(**{**i.__dict__, "lut": 0})
        for i in program.streams[Engine.POST]
    ]
    image = program.make_image(synthetic.random_int8_inputs(qnet))
    with_tables = sim.run(program, image, compute_outputs=False)
    program.streams[Engine.POST] = plain
    without = sim.run(program, image, compute_outputs=False)
    assert with_tables.instruction_times() == without.instruction_times()


def test_table_load_fills_sixteen_byte_words():
    assert load_span(Load(buffer=Buffer.TABLE, run_bytes=256), config.preset("tiny")) == (0, 16)
