"""Concats that are channel prefixes of one another (DenseNet as torchvision exports it: dense
layer ``k`` reads ``cat(x0, f1 .. fk-1)``): every concat of the chain is a view of the longest
one, each layer stores its output once into it, and the network runs as one program bit-exact
to the int8 golden model. Sharing that is not a chain still puts the concat on the host.
The RTL runs the chain in ``tests/test_equivalence_concat.py``."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config, executor, graph, synthetic
from accel.compiler import compile
from accel.compiler.plan import plan_dram, prefix_concats
from accel.frontends.onnx import load
from tests.layers import quantized
from tests.test_accel_onnx import Graph
from tests.test_accel_onnx_mapped import check_accelerator


def dense_block(layers: int = 3, growth: int = 5, c0: int = 6, hw=(5, 6)) -> graph.Network:
    """stem conv -> ``layers`` dense layers (each a 3x3 conv of the concat of everything
    before it, the first of a one-input concat) -> a 1x1 transition conv."""
    net = graph.Network("dense")
    x = net.add("input", graph.Input((3, *hw)))
    features = [net.add("stem", graph.Conv2d(3, c0, 3, padding=1, activation="relu"), [x])]
    channels = c0
    for k in range(1, layers + 1):
        cat = net.add(f"cat{k}", graph.Concat(), list(features))
        conv = graph.Conv2d(channels, growth, 3, padding=1, activation="relu")
        features.append(net.add(f"f{k}", conv, [cat]))
        channels += growth
    cat = net.add("block", graph.Concat(), list(features))
    net.add("transition", graph.Conv2d(channels, 4, 1), [cat])
    return net


@pytest.mark.parametrize("preset", ["tiny", "edge"])
def test_a_dense_block_is_one_program_of_views(preset):
    net = dense_block()
    assert prefix_concats(net) == {"cat1": "cat2", "cat2": "cat3", "cat3": "block"}
    qnet = quantized(net)
    deployment = check_accelerator(qnet, preset)
    assert deployment.whole
    plan = plan_dram(qnet, config.preset(preset), keep_tensors=False, keep=frozenset())
    block = plan.layout("block")
    for name in ("stem", "f1", "f2", "f3", "cat1", "cat2", "cat3"):
        layout = plan.layout(name)
        assert plan.root[name] == "block" and layout.addr == block.addr
        assert layout.pixel_stride == block.channels == 21
    assert [plan.layout(f"f{k}").channel_offset for k in (1, 2, 3)] == [6, 11, 16]


def test_a_dense_block_verifies_with_every_tensor_kept():
    """With every tensor kept (as `accel verify` compiles), each concat of the chain is
    read back from its channels of the shared bytes after the run."""
    qnet = quantized(dense_block(layers=2))
    program = compile(qnet, config.preset("tiny"), keep_tensors=True)
    inputs = synthetic.random_int8_inputs(qnet)
    outputs = sim.run(program, program.make_image(inputs)).outputs
    for name, want in executor.run_network(qnet, inputs).items():
        if name in outputs:
            np.testing.assert_array_equal(outputs[name].reshape(want.shape), want, strict=True)
    assert {"cat1", "cat2", "block"} <= outputs.keys()


def test_concats_sharing_inputs_in_another_order_run_on_the_host():
    net = graph.Network("crossed")
    x = net.add("input", graph.Input((3, 4, 4)))
    a = net.add("a", graph.Conv2d(3, 4, 3, padding=1), [x])
    b = net.add("b", graph.Conv2d(3, 4, 1), [x])
    net.add("ab", graph.Concat(), [a, b])
    net.add("ba", graph.Concat(), [b, a])
    assert prefix_concats(net) == {}
    deployment = check_accelerator(quantized(net), "tiny")
    assert [step.kind for step in deployment.host_steps] == ["Concat", "Concat"]


def test_a_chain_with_a_reader_that_cannot_read_a_view_is_not_a_chain():
    """A concat read by a Linear (which cannot read a channel view) keeps its own bytes,
    so the concats around it cannot share theirs."""
    net = graph.Network("flat")
    x = net.add("input", graph.Input((3, 1, 1)))
    a = net.add("a", graph.Conv2d(3, 4, 1), [x])
    b = net.add("b", graph.Conv2d(3, 2, 1), [x])
    one = net.add("one", graph.Concat(), [a])
    net.add("fc", graph.Linear(4, 3), [net.add("flat", graph.Flatten(), [one])])
    net.add("two", graph.Concat(), [a, b])
    assert prefix_concats(net) == {}


def test_torchvision_style_onnx_dense_block_is_one_program():
    """DenseNet's export: ``Concat`` of every earlier output, then BatchNormalization and
    Relu (a per-channel affine with the Relu fused) before each dense layer's conv."""
    g = Graph(71)
    features = [g.node("Conv", ["x", g.randn("w0", (6, 3, 3, 3))], name="stem", pads=[1] * 4)]
    channels = 6
    for k in range(1, 4):
        cat = g.node("Concat", list(features), name=f"cat{k}", axis=1)
        stats = [g.randn(f"bn{k}_{p}", (channels,)) for p in "sbm"]
        var = g.init(f"bn{k}_v", g.rng.uniform(0.5, 1.5, channels), np.float32)
        bn = g.node("BatchNormalization", [cat, *stats, var], name=f"bn{k}")
        r = g.node("Relu", [bn], name=f"relu{k}")
        w = g.randn(f"w{k}", (4, channels, 3, 3))
        features.append(g.node("Conv", [r, w], name=f"conv{k}", pads=[1] * 4))
        channels += 4
    g.node("Concat", list(features), "y", name="block", axis=1)
    net = load(g.model({"x": ["N", 3, 6, 6]}, {"y": 4}))
    deployment = check_accelerator(quantized(net), "edge")
    assert deployment.whole
