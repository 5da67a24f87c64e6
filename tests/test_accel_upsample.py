"""Nearest-neighbour upsampling (:class:`accel.graph.Upsample`): graph op, float and int8
golden, quantisation and the cycle model.

The int8 golden model is a copy of the input values; PTQ gives the output the input's
quantisation; compiled (:mod:`accel.compiler.lower_layout`) it runs bit-exact on the cycle
model, as a network output, in front of a Concat (a U-Net decoder: stored at the concat's
channel offset) and before a standalone table, on every preset.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config, executor, golden, graph, ptq, synthetic
from accel.compiler import compile
from tests.layers import quantized


def test_upsample_shape_and_validation():
    net = graph.Network("up")
    net.add("x", graph.Input((3, 4, 5)))
    net.add("up", graph.Upsample((2, 3)), ["x"])
    assert net.shape("up") == (3, 8, 15)
    assert net.macs("up") == 0
    assert graph.Upsample(2).factor == (2, 2)
    with pytest.raises(ValueError, match=r"Upsample\.factor"):
        graph.Upsample((0, 2))
    assert graph.Network.from_dict(net.to_dict()).op("up") == graph.Upsample((2, 3))


def test_golden_upsample_replicates_every_pixel_in_its_dtype():
    x = np.arange(2 * 3 * 2 * 3).reshape(2, 3, 2, 3).astype(np.int8)
    y = golden.upsample_nearest(x, (2, 3))
    assert y.dtype == np.int8 and y.shape == (2, 3, 4, 9)
    for i in range(4):
        for j in range(9):
            np.testing.assert_array_equal(y[:, :, i, j], x[:, :, i // 2, j // 3])


def decoder(shape=(8, 6, 7), factor=(2, 2), concat: bool = True, table: bool = False):
    """conv -> upsample [-> concat with a conv of the input upsampled] [-> sigmoid] -> conv."""
    c, h, w = shape
    net = graph.Network("decoder")
    x = net.add("input", graph.Input((c, h * factor[0], w * factor[1])))
    down = net.add("down", graph.Conv2d(c, c, factor, factor, activation="relu"), [x])
    up = net.add("up", graph.Upsample(factor), [down])
    if concat:
        skip = net.add("skip", graph.Conv2d(c, 4, 1), [x])
        up = net.add("cat", graph.Concat(), [up, skip])
    if table:
        up = net.add("act", graph.Pointwise("sigmoid"), [up])
    net.add("head", graph.Conv2d(net.shape(up)[0], 3, 3, padding=1), [up])
    return net


def test_ptq_gives_the_output_its_input_quantisation():
    qnet = ptq.quantize(decoder(concat=False), seed=0)
    assert qnet.tensors["up"] == qnet.tensors["down"]
    x = np.random.default_rng(1).integers(-128, 128, (2, 8, 6, 7)).astype(np.int8)
    y = executor.int8_node(qnet, "up", [x])
    np.testing.assert_array_equal(y, x.repeat(2, axis=2).repeat(2, axis=3), strict=True)


def run_exact(network: graph.Network, preset: str):
    qnet = quantized(network)
    program = compile(qnet, config.preset(preset))
    inputs = synthetic.random_int8_inputs(qnet)
    result = sim.run(program, program.make_image(inputs))
    for name, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[name], expected, strict=True)
    return program


@pytest.mark.parametrize("preset", ["tiny", "edge"])
@pytest.mark.parametrize(
    ("factor", "concat", "table"),
    [((2, 2), True, False), ((3, 2), False, True), ((1, 4), True, True), ((2, 1), False, False)],
)
def test_decoders_with_upsampling_are_bit_exact_on_the_cycle_model(preset, factor, concat, table):
    program = run_exact(decoder(factor=factor, concat=concat, table=table), preset)
    (layer,) = (x for x in program.layers if x.kind == "Upsample")
    assert layer.macs == 0
    assert layer.mapping["stores per tile"] == factor[0] * factor[1]


def test_an_upsampled_map_larger_than_the_buffers_and_an_output():
    net = graph.Network("big")
    x = net.add("input", graph.Input((40, 24, 20)))
    net.add("up", graph.Upsample((2, 2)), [x])
    program = run_exact(net, "tiny")
    (layer,) = program.layers
    assert layer.mapping["tiles"] > 1 and layer.mapping["c_tiles"] > 1
