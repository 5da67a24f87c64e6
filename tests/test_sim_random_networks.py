"""Random networks on random small configs: the compiler either maps a network, and the model
runs it bit-exact to the golden model, or rejects it with a :class:`CompileError` naming the
layer and a real limit. Never any other exception.

Plus the vector-unit layers whose input window is larger than half of the input buffer but
fits the whole of it, with more channels than vector lanes (they once failed with
``range() arg 3 must not be zero``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from accel import executor, graph, synthetic
from accel.compiler import CompileError, compile
from accel.config import AccelConfig, ArrayConfig, BufferConfig, DramConfig
from tests.layers import quantized

#: What a CompileError may blame: a buffer of the config, a field of the ISA, an attribute.
LIMITS = ("buffers.", "exceeds the hardware limit", "not supported", "may overflow int32")


@st.composite
def configs(draw) -> AccelConfig:
    rows, cols = draw(st.integers(2, 6)), draw(st.integers(1, 6))
    words = {name: draw(st.integers(2, 48)) for name in ("input", "acc", "output", "param")}
    tiles = draw(st.integers(2, 12))
    return AccelConfig(
        name="random",
        array=ArrayConfig(rows=rows, cols=cols),
        buffers=BufferConfig(
            input_bytes=words["input"] * rows,
            weight_bytes=tiles * rows * cols,
            acc_bytes=words["acc"] * 4 * cols,
            output_bytes=words["output"] * cols,
            param_bytes=words["param"] * 12 * cols,
        ),
        dram=DramConfig(bandwidth=draw(st.integers(1, 8)), latency=draw(st.integers(0, 12))),
    )


@st.composite
def networks(draw) -> graph.Network:
    """A chain of convolutions, pools and residual adds, then maybe a classifier."""
    c, h = draw(st.integers(1, 9)), draw(st.integers(3, 9))
    net = graph.Network("random")
    last = net.add("input", graph.Input((c, h, h)))
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "depthwise", "max", "avg", "add"]))
        channels, size = net.shape(last)[:2]
        name = f"{kind}{i}"
        if kind in ("conv", "depthwise"):
            k = draw(st.integers(1, min(3, size)))
            pad = draw(st.integers(0, k // 2))
            stride = draw(st.integers(1, 2))
            out = channels if kind == "depthwise" else draw(st.integers(1, 12))
            groups = channels if kind == "depthwise" else 1
            act = draw(st.sampled_from([None, "relu", "relu6"]))
            op = graph.Conv2d(
                channels, out, (k, k), (stride,) * 2, (pad,) * 4, (1, 1), groups, True, act
            )
            last = net.add(name, op, [last])
        elif kind in ("max", "avg") and size >= 2:
            k = draw(st.integers(2, min(3, size)))
            cls = graph.MaxPool2d if kind == "max" else graph.AvgPool2d
            last = net.add(name, cls((k, k), (draw(st.integers(1, k)),) * 2), [last])
        elif kind == "add":
            branch = net.add(f"{name}.branch", graph.Conv2d(channels, channels, (1, 1)), [last])
            last = net.add(name, graph.Add(), [last, branch])
    if draw(st.booleans()):
        channels, size = net.shape(last)[0], net.shape(last)[1]
        if size > 1:
            last = net.add("gap", graph.GlobalAvgPool(), [last])
        last = net.add("flat", graph.Flatten(), [last])
        net.add("fc", graph.Linear(channels, draw(st.integers(1, 10))), [last])
    return net


def run_or_reject(network: graph.Network, config: AccelConfig) -> str:
    """Quantise, compile and run; ``"ran"`` bit-exact, or ``"rejected"`` with a clean error
    naming the layer (and, from the compiler, the limit)."""
    try:
        qnet = quantized(network)
    except ValueError as error:  # a rescale factor the int8 arithmetic cannot represent
        assert str(error).startswith("node '"), error
        return "rejected"
    try:
        program = compile(qnet, config)
    except CompileError as error:
        message = str(error)
        assert message.startswith("layer '"), message
        assert any(limit in message for limit in LIMITS), message
        return "rejected"
    inputs = synthetic.random_int8_inputs(qnet)
    result = sim.run(program, program.make_image(inputs))
    for name, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[name], expected, strict=True)
    return "ran"


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(network=networks(), config=configs())
def test_random_networks_compile_and_run_exactly_or_are_rejected_by_name(network, config):
    run_or_reject(network, config)


VECTOR_LAYERS = {
    "max pool": graph.MaxPool2d((3, 3), (1, 1)),
    "avg pool": graph.AvgPool2d((3, 3), (1, 1)),
    "global avg pool": graph.GlobalAvgPool(),
    "add": None,
}


@pytest.mark.parametrize("layer", list(VECTOR_LAYERS))
@pytest.mark.parametrize("input_words", [8, 9, 12, 17, 18, 19, 36])
def test_vector_layers_at_the_half_buffer_boundary(layer, input_words):
    """Pools whose one output pixel reads a 3x3 window (9 words per channel tile) on input
    buffers below, at, between and above 9 and 18 words (half and whole buffer), with 12
    channels on 4 lanes (3 channel tiles); the add (one word per pixel and operand) alike.
    The average pools here sum the whole 3x3 input into one pixel: below 9 words they sum
    it block by block (``lower_sum_in_blocks``), so they run on every buffer."""
    config = AccelConfig(
        name="boundary",
        array=ArrayConfig(rows=4, cols=4),
        buffers=BufferConfig(
            input_bytes=4 * input_words,
            weight_bytes=2048,
            acc_bytes=4096,
            output_bytes=1024,
            param_bytes=1024,
        ),
        dram=DramConfig(bandwidth=4, latency=8),
    )
    net = graph.Network(layer)
    x = net.add("input", graph.Input((12, 3, 3)))
    if layer == "add":
        branch = net.add("branch", graph.Conv2d(12, 12, (1, 1)), [x])
        net.add("add", graph.Add(), [x, branch])
    else:
        net.add("layer", VECTOR_LAYERS[layer], [x])
    outcome = run_or_reject(net, config)
    assert outcome == ("rejected" if layer == "max pool" and input_words < 9 else "ran")


def test_an_input_node_late_in_the_order_is_live_from_the_start():
    """The host writes every input before the run; an Input node that the topological order
    puts after a layer once had its bytes given to that layer's output (found by the
    deployment of networks with host ops, whose segments read several tensors)."""
    net = graph.Network("late input")
    net.add("a", graph.Input((8, 6, 6)))
    net.add("conv", graph.Conv2d(8, 8, 3, padding=1), ["a"])
    net.add("b", graph.Input((8, 6, 6)))
    net.add("add", graph.Add(), ["conv", "b"])
    net.add("gap", graph.GlobalAvgPool(), ["add"])
    net.add("flat", graph.Flatten(), ["gap"])
    net.add("fc", graph.Linear(8, 10), ["flat"])
    tiny = AccelConfig(
        name="tiny",
        array=ArrayConfig(rows=4, cols=4),
        buffers=BufferConfig(
            input_bytes=4096, weight_bytes=2048, acc_bytes=4096, output_bytes=1024, param_bytes=1024
        ),
        dram=DramConfig(bandwidth=4, latency=8),
    )
    assert run_or_reject(net, tiny) == "ran"
