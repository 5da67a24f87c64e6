"""The program-order pass (``accel.compiler.order``): a layer's first input loads move down to
the COMPUTE that reads them, and the program still means what it meant."""

from __future__ import annotations

import numpy as np
import pytest

import accel.compiler
import sim
from accel import config, executor, synthetic
from accel.compiler import compile
from accel.frontends import scalesim
from accel.isa import Buffer, Engine
from tests.layers import quantized, zoo_qnet
from tests.test_sim_scalesim import CONFIG, DATA, single_layer


def alexnet_conv5_os_32():
    """AlexNet's Conv5 at 32x32, output-stationary: one tile of 12 channel tiles (2,028
    words), each COMPUTE reading two of them."""
    base = scalesim.load_config(CONFIG)
    cfg = base.replace(array={"rows": 32, "cols": 32, "dataflow": "os"}, dram={"bandwidth": 1024})
    net = scalesim.load_topology(DATA / "alexnet.csv")
    return quantized(single_layer(net, "Conv5")), cfg


def test_the_first_compute_waits_only_for_its_own_channel_tiles(monkeypatch):
    qnet, cfg = alexnet_conv5_os_32()
    program = compile(qnet, cfg)
    loads = program.streams[Engine.LOAD]
    kinds = [load.buffer for load in loads[:6]]
    # Before the pass: 12 input loads, then the first weights. Now the weights and the
    # channel tile the first COMPUTE reads come first (the ramp's one channel tile,
    # lower_conv.chunk_ranges), the next two with the next weights.
    weight, inputs = Buffer.WEIGHT, Buffer.INPUT
    assert kinds == [weight, inputs, weight, inputs, inputs, weight]
    result = sim.run(program, compute_outputs=False)
    assert result.start[Engine.COMPUTE][0] < input_done(program, result)[2]

    monkeypatch.setattr(accel.compiler, "sink_first_input_loads", lambda log: None)
    unmoved = compile(qnet, cfg)
    before = sim.run(unmoved, compute_outputs=False)
    assert before.start[Engine.COMPUTE][0] > max(input_done(unmoved, before))
    # 2,028 input words no longer wait in front of the first feed.
    assert before.total_cycles - result.total_cycles > 1500


def input_done(program, result) -> list[int]:
    """``done`` of every input LOAD, in stream order."""
    loads = program.streams[Engine.LOAD]
    done = result.done[Engine.LOAD]
    return [d for d, load in zip(done, loads, strict=True) if load.buffer == Buffer.INPUT]


@pytest.mark.parametrize(
    ("name", "size", "preset", "dataflow"),
    [
        ("tinynet", None, "tiny", "ws"),
        ("lenet5", None, "tiny", "os"),
        ("resnet18", 64, "edge", "ws"),
        ("mobilenet_v2", 64, "edge", "is"),
    ],
)
def test_the_reordered_program_computes_what_the_network_does(name, size, preset, dataflow):
    qnet = zoo_qnet(name, size)
    program = compile(qnet, config.preset(preset).replace(array={"dataflow": dataflow}))
    inputs = synthetic.random_int8_inputs(qnet)
    result = sim.run(program, program.make_image(inputs))
    for out, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[out], expected, strict=True)
