"""Channel shuffle (:class:`accel.graph.ChannelShuffle`) and CRD depth to space
(:class:`accel.graph.PixelShuffle`): graph ops, golden against a naive loop, and the cycle
model bit-exact on random shapes.

Both run as identity passes of the vector unit whose STOREs scatter the lanes of each word
to every ``lane_stride``-th byte (:mod:`accel.compiler.lower_layout`); RTL equivalence is in
tests/test_equivalence_layout.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config, executor, golden, graph, synthetic
from accel.compiler import compile
from accel.isa import Engine
from tests.layers import quantized


def test_channel_shuffle_golden_is_the_definition():
    rng = np.random.default_rng(0)
    for groups, c in [(2, 6), (3, 12), (4, 20), (5, 5)]:
        x = rng.integers(-128, 128, (2, c, 3, 2)).astype(np.int8)
        y = golden.channel_shuffle(x, groups)
        m = c // groups
        for k in range(m):
            for i in range(groups):
                np.testing.assert_array_equal(y[:, k * groups + i], x[:, i * m + k], strict=True)


def test_pixel_shuffle_golden_is_the_definition():
    rng = np.random.default_rng(1)
    for b, c in [(2, 3), (3, 2)]:
        x = rng.integers(-128, 128, (1, c * b * b, 2, 3)).astype(np.int8)
        y = golden.pixel_shuffle(x, b)
        assert y.shape == (1, c, 2 * b, 3 * b)
        for ch in range(c):
            for h in range(2):
                for w in range(3):
                    for i in range(b):
                        for j in range(b):
                            want = x[0, ch * b * b + i * b + j, h, w]
                            assert y[0, ch, h * b + i, w * b + j] == want


def test_shapes_and_validation():
    assert graph.ChannelShuffle(3).infer_shape([(12, 4, 5)]) == (12, 4, 5)
    assert graph.PixelShuffle(2).infer_shape([(12, 4, 5)]) == (3, 8, 10)
    with pytest.raises(ValueError, match=r"ChannelShuffle.groups=3: 10 channels"):
        graph.ChannelShuffle(3).infer_shape([(10, 4, 5)])
    with pytest.raises(ValueError, match=r"PixelShuffle.block=2: 10 channels"):
        graph.PixelShuffle(2).infer_shape([(10, 4, 5)])
    net = graph.Network("n")
    net.add("x", graph.Input((12, 2, 3)))
    net.add("s", graph.ChannelShuffle(4), ["x"])
    net.add("p", graph.PixelShuffle(2), ["s"])
    again = graph.Network.from_dict(net.to_dict())
    assert [again.op(n) for n in again.order()] == [net.op(n) for n in net.order()]


def layer_net(op: graph.Op, shape, conv: bool) -> graph.Network:
    net = graph.Network("layout")
    x = net.add("input", graph.Input(shape))
    if conv:
        x = net.add("conv", graph.Conv2d(shape[0], shape[0], 1, activation="relu"), [x])
    net.add("y", op, [x])
    return net


def run_model(net: graph.Network, preset: str):
    """Compile for ``preset``; the fast and the trace model equal the int8 golden model and
    each other's per-instruction timing."""
    qnet = quantized(net)
    program = compile(qnet, config.preset(preset))
    inputs = synthetic.random_int8_inputs(qnet)
    image = program.make_image(inputs)
    result = sim.run(program, image)
    trace = sim.run(program, image, mode="trace")
    assert trace.instruction_times() == result.instruction_times()
    for name, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[name], expected, strict=True)
        np.testing.assert_array_equal(trace.outputs[name], expected, strict=True)
    return program, result


@pytest.mark.parametrize("preset", ["tiny", "edge"])
@pytest.mark.parametrize("seed", range(6))
def test_channel_shuffle_bit_exact_on_the_cycle_model(seed, preset):
    """Random g in 2, 3, 4 and C a multiple of g (mostly not of the lane count)."""
    rng = np.random.default_rng([seed, 3])
    groups = int(rng.integers(2, 5))
    channels = groups * int(rng.integers(1, 14))
    shape = (channels, int(rng.integers(1, 6)), int(rng.integers(1, 7)))
    program, _ = run_model(layer_net(graph.ChannelShuffle(groups), shape, bool(seed % 2)), preset)
    scatter = [i for i in program.streams[Engine.STORE] if i.lane_stride > 1]
    assert scatter and all(i.lane_stride == groups for i in scatter)


@pytest.mark.parametrize("preset", ["tiny", "edge"])
@pytest.mark.parametrize("seed", range(4))
def test_pixel_shuffle_bit_exact_on_the_cycle_model(seed, preset):
    """Random block 2 or 3, 1..4 output channels."""
    rng = np.random.default_rng([seed, 4])
    b = int(rng.integers(2, 4))
    shape = (b * b * int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 5)))
    run_model(layer_net(graph.PixelShuffle(b), shape, bool(seed % 2)), preset)


def test_shuffle_then_split_into_a_concat_like_shufflenet():
    """ShuffleNetV2's unit: concat(x1, branch(x2)), shuffled, then split: the shuffle writes
    into a tensor whose halves are read in place (a view) or copied into the next concat."""
    net = graph.Network("unit")
    x = net.add("input", graph.Input((12, 4, 4)))
    x = net.add("conv", graph.Conv2d(12, 12, 1, activation="relu"), [x])
    for i in range(2):
        left = net.add(f"split{i}.0", graph.ChannelSlice(0, 6), [x])
        right = net.add(f"split{i}.1", graph.ChannelSlice(6, 12), [x])
        right = net.add(f"branch{i}", graph.Conv2d(6, 6, 3, padding=1, activation="relu"), [right])
        cat = net.add(f"concat{i}", graph.Concat(), [left, right])
        x = net.add(f"shuffle{i}", graph.ChannelShuffle(2), [cat])
    run_model(net, "tiny")


# --- ONNX: Reshape - Transpose - Reshape chains --------------------------------------------


def chain_model(shape5, perm, final, channels: int, opset: int = 13):
    """conv -> relu -> Reshape(shape5) -> Transpose(perm) -> Reshape(final) -> conv."""
    from tests.test_accel_onnx import Graph

    g = Graph(5)
    c = g.node("Conv", ["x", g.randn("w1", (channels, 3, 1, 1))], name="conv")
    r = g.node("Relu", [c], name="relu")
    a = g.node("Reshape", [r, g.init("s1", np.array(shape5, np.int64))], name="r1")
    t = g.node("Transpose", [a], name="t", perm=list(perm))
    b = g.node("Reshape", [t, g.init("s2", np.array(final, np.int64))], name="r2")
    g.node("Conv", [b, g.randn("w2", (2, final[1], 1, 1))], "y", name="head")
    return g.model({"x": [1, 3, 4, 6]}, {"y": 4}, opset=opset)


@pytest.mark.parametrize("groups", [2, 3, 4])
def test_onnx_channel_shuffle_is_one_op_on_the_accelerator(groups):
    from tests.test_accel_onnx_mapped import check_accelerator
    from tests.test_accel_onnx_prepare import check, host_ops

    c = 6 * groups
    model = chain_model((1, groups, c // groups, 4, 6), (0, 2, 1, 3, 4), (1, c, 4, 6), c)
    net = check(model, batch=1)
    assert host_ops(net) == []
    assert graph.ChannelShuffle(groups) in [net.op(n) for n in net.order()]
    check_accelerator(net)


@pytest.mark.parametrize("block", [2, 3])
def test_onnx_six_d_pixel_shuffle_is_one_op_on_the_accelerator(block):
    """PixelShuffle as exported below opset 11: Reshape (N, C, b, b, H, W), Transpose
    (0, 1, 4, 2, 5, 3), Reshape (N, C, H*b, W*b)."""
    from tests.test_accel_onnx_mapped import check_accelerator
    from tests.test_accel_onnx_prepare import check, host_ops

    c = 2 * block * block
    model = chain_model(
        (1, 2, block, block, 4, 6), (0, 1, 4, 2, 5, 3), (1, 2, 4 * block, 6 * block), c
    )
    net = check(model, batch=1)
    assert host_ops(net) == []
    assert graph.PixelShuffle(block) in [net.op(n) for n in net.order()]
    check_accelerator(net)


def test_onnx_other_transposes_stay_on_the_host():
    """A chain that is no shuffle (another perm) runs on the host, as before."""
    from tests.test_accel_onnx_prepare import check, host_ops

    model = chain_model((1, 2, 6, 4, 6), (0, 1, 2, 4, 3), (1, 12, 4, 6), 12)
    net = check(model, batch=1)
    assert host_ops(net) == ["Reshape", "Transpose", "Reshape"]


def test_shuffles_stored_in_place_into_a_concat():
    """A ChannelShuffle and a PixelShuffle written straight into channel slices of concat
    tensors (their outputs' pixel stride is the concat's, their channel offset its slice's)."""
    net = graph.Network("cat")
    x = net.add("input", graph.Input((12, 2, 3)))
    x = net.add("conv", graph.Conv2d(12, 12, 1, activation="relu"), [x])
    s = net.add("shuffle", graph.ChannelShuffle(3), [x])
    other = net.add("other", graph.Conv2d(12, 5, 1, activation="relu"), [x])
    net.add("cat", graph.Concat(), [other, s])
    p = net.add("pixel", graph.PixelShuffle(2), [x])
    up = net.add("up", graph.Upsample((2, 2)), [other])
    net.add("cat2", graph.Concat(), [p, up])
    run_model(net, "tiny")
