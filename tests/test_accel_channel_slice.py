"""Channel slices (:class:`accel.graph.ChannelSlice`): graph op, golden, quantisation and the
cycle model.

A slice that only convolutions, pools, adds, tables, upsamplings and slices read is a view
(:func:`accel.compiler.plan.channel_views`: its readers load its channels in place, nothing
runs); one that feeds a concat, or is an output, is copied by an identity pass. Both run
bit-exact to the int8 golden model on every preset, with slices of inputs, of concat inputs,
of concats and of slices.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config, executor, graph, ptq, synthetic
from accel.compiler import compile
from tests.layers import quantized


def test_channel_slice_shape_and_validation():
    net = graph.Network("s")
    net.add("x", graph.Input((8, 3, 4)))
    net.add("s", graph.ChannelSlice(2, 7), ["x"])
    assert net.shape("s") == (5, 3, 4)
    with pytest.raises(ValueError, match="stop=2 must exceed start=2"):
        graph.ChannelSlice(2, 2)
    with pytest.raises(ValueError, match="exceeds the 8 input channels"):
        net.add("t", graph.ChannelSlice(2, 9), ["x"])
    assert graph.Network.from_dict(net.to_dict()).op("s") == graph.ChannelSlice(2, 7)


def test_golden_and_ptq_share_the_input_quantisation():
    net = graph.Network("s")
    x = net.add("x", graph.Input((8, 3, 4)))
    c = net.add("c", graph.Conv2d(8, 8, 1), [x])
    net.add("s", graph.ChannelSlice(3, 6), [c])
    qnet = ptq.quantize(net, seed=0)
    assert qnet.tensors["s"] == qnet.tensors["c"]
    v = np.random.default_rng(0).integers(-128, 128, (2, 8, 3, 4)).astype(np.int8)
    np.testing.assert_array_equal(executor.int8_node(qnet, "s", [v]), v[:, 3:6], strict=True)
    flat = graph.Network("f")
    flat.add("x", graph.Input((8, 3, 4)))
    flat.add("s", graph.ChannelSlice(3, 6), ["x"])
    f = np.random.default_rng(1).standard_normal((2, 8, 3, 4))
    np.testing.assert_array_equal(executor.run_network(flat, {"x": f})["s"], f[:, 3:6])


def views_into_convs_pool_add():
    net = graph.Network("views")
    x = net.add("input", graph.Input((20, 5, 6)))
    c = net.add("conv", graph.Conv2d(20, 24, 3, padding=1, activation="relu"), [x])
    s1 = net.add("s1", graph.ChannelSlice(3, 11), [c])
    s2 = net.add("s2", graph.ChannelSlice(16, 24), [c])
    a = net.add("add", graph.Add(), [s1, s2])
    s3 = net.add("s3", graph.ChannelSlice(5, 22), [c])
    p = net.add("pool", graph.MaxPool2d(2, 2), [s3])
    net.add("o1", graph.Conv2d(8, 4, 1), [a])
    net.add("o2", graph.Conv2d(17, 4, 3, padding=1), [p])
    return net, {"s1": "view", "s2": "view", "s3": "view"}


def shufflenet_unit():
    net = graph.Network("shuffle")
    x = net.add("input", graph.Input((8, 4, 5)))
    c = net.add("conv", graph.Conv2d(8, 8, 1, activation="relu"), [x])
    a = net.add("a", graph.ChannelSlice(0, 4), [c])
    b = net.add("b", graph.ChannelSlice(4, 8), [c])
    b1 = net.add("b1", graph.Conv2d(4, 4, 1, activation="relu"), [b])
    b2 = net.add("b2", graph.Conv2d(4, 4, 3, padding=1, groups=4), [b1])
    y = net.add("cat", graph.Concat(), [a, b2])
    net.add("head", graph.Conv2d(8, 4, 1), [y])
    return net, {"a": "copy", "b": "view"}


def slices_of_inputs_and_outputs():
    net = graph.Network("io")
    x = net.add("input", graph.Input((6, 3, 3)))
    s = net.add("s", graph.ChannelSlice(1, 5), [x])
    net.add("conv", graph.Conv2d(4, 4, 3, padding=1), [s])
    net.add("s2", graph.ChannelSlice(2, 6), [x])
    return net, {"s": "view", "s2": "copy"}


def nested_slices():
    net = graph.Network("nested")
    x = net.add("input", graph.Input((6, 3, 3)))
    c1 = net.add("c1", graph.Conv2d(6, 10, 1), [x])
    c2 = net.add("c2", graph.Conv2d(6, 6, 1), [x])
    cat = net.add("cat", graph.Concat(), [c1, c2])
    s = net.add("s", graph.ChannelSlice(4, 14), [cat])
    ss = net.add("ss", graph.ChannelSlice(2, 9), [s])
    t = net.add("t", graph.ChannelSlice(1, 5), [c2])
    net.add("o", graph.Conv2d(7, 3, 1), [ss])
    net.add("o2", graph.Pointwise("tanh"), [t])
    return net, {"s": "view", "ss": "view", "t": "view"}


@pytest.mark.parametrize("preset", ["tiny", "edge"])
@pytest.mark.parametrize(
    "build",
    [views_into_convs_pool_add, shufflenet_unit, slices_of_inputs_and_outputs, nested_slices],
)
def test_channel_slices_are_bit_exact_on_the_cycle_model(build, preset):
    net, kinds = build()
    qnet = quantized(net)
    program = compile(qnet, config.preset(preset))
    inputs = synthetic.random_int8_inputs(qnet)
    result = sim.run(program, program.make_image(inputs))
    for name, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[name], expected, strict=True)
    units = {x.name: x.mapping["unit"] for x in program.layers}
    for name, kind in kinds.items():
        assert units[name].startswith("none (view" if kind == "view" else "vector"), units[name]


def test_kept_slices_are_copied_and_exact():
    net, _ = views_into_convs_pool_add()
    qnet = quantized(net)
    program = compile(qnet, config.preset("tiny"), keep_tensors=True)
    assert all(
        x.mapping["unit"].startswith("vector") for x in program.layers if x.kind == "ChannelSlice"
    )
    inputs = synthetic.random_int8_inputs(qnet)
    result = sim.run(program, program.make_image(inputs))
    for name, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[name], expected, strict=True)
