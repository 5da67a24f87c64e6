"""Layout ops on the RTL top against the cycle model and the golden model.

Channel slices are views (nothing runs) or identity-pass copies; a DepthToSpace is one
identity pass per channel block, stored into one output phase each (a SpaceToDepth the other
way: one per input phase, loaded with strides); an Upsample is an identity pass of the
vector unit whose tiles are STOREd once into each phase of the output with strided STOREs
(:mod:`accel.compiler.lower_layout`). All compile to existing instructions, so the RTL runs
them unchanged: the outputs equal the int8 golden model's bit for bit and every
instruction's start and done cycle equals the model's, in the Amaranth simulator and in
Verilator (:func:`tests.test_equivalence_rtl.check`).
"""

from __future__ import annotations

import pytest

from accel import executor, graph, synthetic
from accel.compiler import compile
from tests.layers import quantized
from tests.test_equivalence_rtl import NARROW, TINY, check

#: name -> (input shape, factor, a conv before it)
LAYERS = {
    "2x2 after a conv": ((4, 3, 4), (2, 2), True),
    "3x1 of the input, 20 channels (two channel tiles)": ((20, 2, 3), (3, 1), False),
    "1-D 1x3 after a conv": ((4, 1, 5), (1, 3), True),
}

SETUPS = [
    pytest.param(TINY, "amaranth", id="tiny-amaranth"),
    pytest.param(NARROW, "amaranth", id="bw3-lat7-amaranth", marks=pytest.mark.slow),
    pytest.param(TINY, "verilator", id="tiny-verilator", marks=pytest.mark.slow),
]


def upsampler(shape, factor, conv: bool) -> graph.Network:
    net = graph.Network("upsample")
    x = net.add("input", graph.Input(shape))
    if conv:
        x = net.add("conv", graph.Conv2d(shape[0], shape[0], 3, padding=1, activation="relu"), [x])
    net.add("up", graph.Upsample(factor), [x])
    return net


@pytest.mark.parametrize(("config", "backend"), SETUPS)
@pytest.mark.parametrize("name", list(LAYERS))
def test_upsample_bit_and_cycle_exact(name, config, backend):
    qnet = quantized(upsampler(*LAYERS[name]))
    program = compile(qnet, config)
    assert [layer.kind for layer in program.layers][-1] == "Upsample"
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.parametrize(("config", "backend"), SETUPS)
def test_channel_slices_bit_and_cycle_exact(config, backend):
    """ShuffleNetV2's split: one half a view read by a conv, the other copied into the
    concat; and a view read by an add."""
    net = graph.Network("slices")
    x = net.add("input", graph.Input((20, 3, 4)))
    c = net.add("conv", graph.Conv2d(20, 20, 1, activation="relu"), [x])
    a = net.add("a", graph.ChannelSlice(0, 10), [c])
    b = net.add("b", graph.ChannelSlice(10, 20), [c])
    b1 = net.add("b1", graph.Conv2d(10, 10, 3, padding=1, activation="relu"), [b])
    cat = net.add("cat", graph.Concat(), [a, b1])
    s = net.add("s", graph.ChannelSlice(2, 8), [cat])
    t = net.add("t", graph.ChannelSlice(12, 18), [cat])
    net.add("add", graph.Add(), [s, t])
    qnet = quantized(net)
    program = compile(qnet, config)
    units = {layer.name: layer.mapping["unit"] for layer in program.layers}
    assert units["a"].startswith("vector") and units["b"].startswith("none (view")
    assert units["s"].startswith("none (view") and units["t"].startswith("none (view")
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.parametrize(("config", "backend"), SETUPS)
def test_depth_to_space_bit_and_cycle_exact(config, backend):
    net = graph.Network("d2s")
    x = net.add("input", graph.Input((20, 2, 3)))
    c = net.add("conv", graph.Conv2d(20, 36, 1, activation="relu"), [x])
    net.add("d2s", graph.DepthToSpace(3), [c])
    qnet = quantized(net)
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.parametrize(("config", "backend"), SETUPS)
def test_space_to_depth_bit_and_cycle_exact(config, backend):
    net = graph.Network("s2d")
    x = net.add("input", graph.Input((6, 4, 6)))
    c = net.add("conv", graph.Conv2d(6, 6, 3, padding=1, activation="relu"), [x])
    net.add("s2d", graph.SpaceToDepth(2), [c])
    qnet = quantized(net)
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


#: name -> (op, input shape): scatter STOREs (lane_stride > 1)
SHUFFLES = {
    "shuffle g2, 10 channels": (graph.ChannelShuffle(2), (10, 2, 3)),
    "shuffle g3, 21 channels (two channel tiles a group on tiny)": (
        graph.ChannelShuffle(3),
        (21, 2, 2),
    ),
    "shuffle g4, 12 channels": (graph.ChannelShuffle(4), (12, 3, 2)),
    "pixel shuffle b2, 8 channels": (graph.PixelShuffle(2), (8, 2, 3)),
    "pixel shuffle b3, 18 channels": (graph.PixelShuffle(3), (18, 2, 2)),
}


def random_shuffle(seed: int) -> tuple[graph.Op, tuple[int, int, int]]:
    """A channel shuffle (g 2..4, C = g * 1..7) or a PixelShuffle (b 2 or 3) of a random
    small map."""
    import numpy as np

    rng = np.random.default_rng([seed, 12])
    h, w = (int(v) for v in rng.integers(1, 4, 2))
    if seed % 2:
        b = int(rng.integers(2, 4))
        return graph.PixelShuffle(b), (b * b * int(rng.integers(1, 3)), h, w)
    g = int(rng.integers(2, 5))
    return graph.ChannelShuffle(g), (g * int(rng.integers(1, 8)), h, w)


SHUFFLES.update({f"random {seed}": random_shuffle(seed) for seed in range(4)})


@pytest.mark.parametrize(("config", "backend"), SETUPS)
@pytest.mark.parametrize("name", list(SHUFFLES))
def test_channel_and_pixel_shuffle_bit_and_cycle_exact(name, config, backend):
    """Channel shuffles and CRD depth to space after a conv: scatter STOREs on the RTL."""
    op, shape = SHUFFLES[name]
    net = graph.Network("shuffle")
    x = net.add("input", graph.Input(shape))
    c = net.add("conv", graph.Conv2d(shape[0], shape[0], 1, activation="relu"), [x])
    net.add("y", op, [c])
    qnet = quantized(net)
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.parametrize(("config", "backend"), SETUPS)
def test_onnx_conformance_pixel_shuffle_bit_and_cycle_exact(config, backend):
    """ONNX's own PixelShuffle case from the wheel (a 9x4x4 input, block 3, exported as a 6-D
    Reshape-Transpose-Reshape), quantised: one PixelShuffle on the RTL, equal to the int8
    golden model (its float golden is checked against the shipped output in
    tests/test_accel_onnx_conformance.py)."""
    from pathlib import Path

    import onnx

    from accel import ptq
    from accel.frontends.onnx import load

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"
    net = load(path / "test_PixelShuffle" / "model.onnx")
    assert [type(net.op(n)).__name__ for n in net.order()] == ["Input", "PixelShuffle"]
    qnet = ptq.quantize(net, seed=0)
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.slow
def test_the_shufflenet_v2_in_verilator():
    """The zoo's ShuffleNetV2 (its channel split as slices, its 16 channel shuffles as
    scatter STOREs: one program) at 32x32 on `tiny`: 705,594 cycles through the generated
    Verilog, bit- and cycle-exact."""
    from tests.test_equivalence_rtl import zoo_check

    zoo_check("shufflenet_v2", 32, TINY, "verilator")
