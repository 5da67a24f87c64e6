"""Depth to space in DCR order (:class:`accel.graph.DepthToSpace`, ONNX DepthToSpace mode
DCR) and space to depth (:class:`accel.graph.SpaceToDepth`): graph ops, golden against
onnxruntime, quantisation and the cycle model.

Each runs as ``b * b`` identity passes of the vector unit, each moving one channel block
to or from one phase of the image (:mod:`accel.compiler.lower_layout`); CRD (PyTorch's
PixelShuffle) is a :class:`accel.graph.PixelShuffle` (tests/test_accel_shuffle.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config, executor, golden, graph, synthetic
from accel.compiler import compile
from accel.graph import DepthToSpace, PixelShuffle, SpaceToDepth
from tests.layers import quantized
from tests.test_accel_onnx import Graph
from tests.test_accel_onnx_mapped import check_accelerator
from tests.test_accel_onnx_prepare import check, host_ops


def test_depth_to_space_shape_and_validation():
    net = graph.Network("d")
    net.add("x", graph.Input((18, 2, 3)))
    net.add("d", graph.DepthToSpace(3), ["x"])
    assert net.shape("d") == (2, 6, 9)
    with pytest.raises(ValueError, match="18 channels are not a multiple of 4"):
        net.add("e", graph.DepthToSpace(2), ["x"])
    assert graph.Network.from_dict(net.to_dict()).op("d") == graph.DepthToSpace(3)


def model(mode: str = "DCR", block: int = 2, opset: int = 13):
    """conv (3 -> 4*b*b channels) -> relu -> DepthToSpace -> conv."""
    g = Graph(9)
    c = g.node(
        "Conv", ["x", g.randn("w1", (4 * block * block, 3, 3, 3))], name="conv", pads=[1] * 4
    )
    r = g.node("Relu", [c], name="relu")
    d = g.node("DepthToSpace", [r], name="d2s", blocksize=block, mode=mode)
    g.node("Conv", [d, g.randn("w2", (3, 4, 3, 3))], "y", name="head", pads=[1] * 4)
    return g.model({"x": ["N", 3, 5, 4]}, {"y": 4}, opset=opset)


def only_layer(deployment, kind: str):
    """The one layer of ``kind`` in a deployment's programs."""
    (layer,) = (x for s in deployment.segments for x in s.program.layers if x.kind == kind)
    return layer


def s2d_model(block: int = 2, opset: int = 13):
    """conv -> relu -> SpaceToDepth -> conv."""
    g = Graph(10)
    c = g.node("Conv", ["x", g.randn("w1", (4, 3, 3, 3))], name="conv", pads=[1] * 4)
    r = g.node("Relu", [c], name="relu")
    d = g.node("SpaceToDepth", [r], name="s2d", blocksize=block)
    g.node("Conv", [d, g.randn("w2", (3, 4 * block * block, 1, 1))], "y", name="head")
    return g.model({"x": ["N", 3, 2 * block, 3 * block]}, {"y": 4}, opset=opset)


@pytest.mark.parametrize(
    ("op", "block", "opset"),
    [
        (DepthToSpace, 2, 11),
        (DepthToSpace, 3, 13),
        (DepthToSpace, 2, 13),
        (SpaceToDepth, 2, 11),
        (SpaceToDepth, 3, 13),
    ],
)
def test_equals_onnxruntime_and_runs_bit_exact_on_the_cycle_model(op, block, opset):
    """DCR DepthToSpace and SpaceToDepth: ``b * b`` identity passes, no MAC."""
    onnx_model = model("DCR", block, opset) if op is DepthToSpace else s2d_model(block, opset)
    net = check(onnx_model)
    assert host_ops(net) == []
    assert op(block) in [net.op(n) for n in net.order()]
    layer = only_layer(check_accelerator(net), op.__name__)
    assert layer.macs == 0 and layer.mapping["phases"] == block * block


@pytest.mark.parametrize(("block", "opset"), [(2, 11), (3, 13)])
def test_crd_equals_onnxruntime_and_runs_bit_exact_on_the_cycle_model(block, opset):
    """CRD (PyTorch's PixelShuffle) is a :class:`PixelShuffle`: scatter STOREs."""
    net = check(model("CRD", block, opset))
    assert host_ops(net) == []
    assert PixelShuffle(block) in [net.op(n) for n in net.order()]
    assert only_layer(check_accelerator(net), "PixelShuffle").macs == 0


@pytest.mark.parametrize("preset", ["tiny", "edge"])
@pytest.mark.parametrize(
    ("op", "shape", "block"),
    [
        (DepthToSpace, (8, 3, 4), 2),
        (DepthToSpace, (36, 2, 3), 3),
        (DepthToSpace, (80, 3, 3), 2),
        (SpaceToDepth, (4, 4, 6), 2),
        (SpaceToDepth, (3, 6, 3), 3),
        (SpaceToDepth, (20, 6, 4), 2),
    ],
)
def test_graph_op_bit_exact_on_the_cycle_model(op, shape, block, preset):
    """conv -> the op -> conv on the cycle model against the int8 golden model, and the
    golden op against its definition (and SpaceToDepth against DepthToSpace's inverse)."""
    channels = shape[0] // block**2 if op is DepthToSpace else shape[0] * block**2
    net = graph.Network("layout")
    x = net.add("input", graph.Input(shape))
    x = net.add("conv", graph.Conv2d(shape[0], shape[0], 3, padding=1, activation="relu"), [x])
    d = net.add("op", op(block), [x])
    net.add("head", graph.Conv2d(channels, 3, 1), [d])
    qnet = quantized(net)
    program = compile(qnet, config.preset(preset))
    inputs = synthetic.random_int8_inputs(qnet)
    result = sim.run(program, program.make_image(inputs))
    for name, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[name], expected, strict=True)
    v = np.random.default_rng(0).integers(-128, 128, (2, *shape)).astype(np.int8)
    y = executor.int8_node(qnet, "op", [v])
    assert y.dtype == np.int8
    if op is DepthToSpace:
        np.testing.assert_array_equal(y, golden.depth_to_space(v, block), strict=True)
    else:
        np.testing.assert_array_equal(y, golden.space_to_depth(v, block), strict=True)
        np.testing.assert_array_equal(golden.depth_to_space(y, block), v, strict=True)
