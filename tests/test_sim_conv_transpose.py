"""Transposed convolutions on the cycle model: bit-exact to the int8 golden model.

Random ConvTranspose2d layers (stride 1 to 3, kernels 1 to 5, pads, output padding,
dilation, groups including depthwise, 1-D as H = 1) are quantised, compiled (one stride-1
convolution per output phase, :mod:`accel.compiler.lower_transpose`) and run on the model,
on the presets and on random small configurations; the compiler may reject a layer only
naming it and a real limit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import sim
from accel import config, executor, graph, isa, models, synthetic
from accel.compiler import CompileError, compile
from accel.compiler.lower_transpose import axis_phases
from accel.frontends.onnx import load
from tests.layers import quantized
from tests.test_sim_random_networks import configs, run_or_reject


@st.composite
def transposed(draw, max_channels: int = 6) -> graph.Network:
    """One ConvTranspose2d (maybe after a conv, maybe with a relu) on a small input."""
    one_d = draw(st.booleans()) and draw(st.booleans())
    depthwise = draw(st.integers(0, 4)) == 0
    groups = draw(st.integers(2, 4)) if depthwise else draw(st.sampled_from([1, 1, 2]))
    c = groups if depthwise else groups * draw(st.integers(1, max_channels // groups))
    k = c if depthwise else groups * draw(st.integers(1, max_channels // groups))
    kernel = (1 if one_d else draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (1 if one_d else draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1 if one_d else draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    extent = [d * (r - 1) for r, d in zip(kernel, dilation, strict=True)]
    padding = tuple(draw(st.integers(0, extent[i // 2])) for i in range(4))
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    h = 1 if one_d else draw(st.integers(1, 6))
    w = draw(st.integers(1, 7))
    activation = draw(st.sampled_from([None, "relu"]))
    net = graph.Network("convt")
    x = net.add("input", graph.Input((c, h, w)))
    op = graph.ConvTranspose2d(
        c, k, kernel, stride, padding, output_padding, dilation, groups, True, activation
    )
    try:
        net.add("convt", op, [x])
    except ValueError:  # the padding crops the whole output
        net = graph.Network("convt")
        x = net.add("input", graph.Input((c, h, w)))
        net.add("convt", graph.ConvTranspose2d(c, k, kernel, stride, groups=groups), [x])
    return net


def run_exact(network: graph.Network, preset: str) -> None:
    qnet = quantized(network)
    program = compile(qnet, config.preset(preset))
    inputs = synthetic.random_int8_inputs(qnet)
    result = sim.run(program, program.make_image(inputs))
    for name, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[name], expected, strict=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=transposed())
def test_random_transposed_convolutions_are_bit_exact_on_tiny(network):
    run_exact(network, "tiny")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=transposed(), config=configs())
def test_random_transposed_convolutions_run_exactly_or_are_rejected_by_name(network, config):
    run_or_reject(network, config)


def test_a_decoder_of_transposed_convolutions_is_bit_exact_on_edge():
    """Conv, then three stride-2 up-convolutions (2x2, 3x3 with output padding, 4x4)
    feeding each other, a concat with a skip, and a 1x1 head."""
    net = graph.Network("decoder")
    x = net.add("input", graph.Input((8, 5, 6)))
    a = net.add("conv", graph.Conv2d(8, 24, 3, padding=1, activation="relu"), [x])
    u1 = net.add("up1", graph.ConvTranspose2d(24, 16, 2, 2, activation="relu"), [a])
    u2 = net.add("up2", graph.ConvTranspose2d(16, 8, 3, 2, 1, 1, activation="relu"), [u1])
    u3 = net.add("up3", graph.ConvTranspose2d(8, 8, 4, 2, 1, groups=8), [u2])
    skip = net.add("skip", graph.ConvTranspose2d(24, 8, 8, 8), [a])
    cat = net.add("cat", graph.Concat(), [u3, skip])
    net.add("head", graph.Conv2d(16, 3, 1), [cat])
    assert net.shape("cat") == (16, 40, 48)
    run_exact(net, "edge")


def test_phases_cover_every_output_once_with_every_tap_once():
    """The phases of an axis: every output position in exactly one phase, every kernel tap
    in at most one, and each phase's stride-1 convolution reads the input rows the scatter
    definition sends to it."""
    for size, kernel, stride, pad, dilation, extra in [
        (5, 3, 2, 1, 1, 1),
        (4, 5, 3, 2, 2, 0),
        (3, 2, 3, 0, 1, 2),  # a phase no tap reaches
        (6, 4, 2, 3, 4, 3),
        (1, 1, 1, 0, 1, 0),
    ]:
        out = (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + extra + 1
        phases = axis_phases(size, out, kernel, stride, pad, dilation)
        covered = sorted(p.start + i * stride for p in phases for i in range(p.count))
        assert covered == list(range(out))
        taps = [r for p in phases for r in p.taps]
        assert len(taps) == len(set(taps))
        for p in phases:
            for i in range(p.count):
                o = p.start + i * stride
                want = {
                    (h, r)
                    for h in range(size)
                    for r in range(kernel)
                    if h * stride - pad + r * dilation == o
                }
                m = len(p.taps)
                got = {
                    (i - p.pad + j * p.dilation, p.taps[m - 1 - j])
                    for j in range(m)
                    if 0 <= i - p.pad + j * p.dilation < size
                }
                assert got == want, (size, kernel, stride, pad, dilation, extra, o)


def test_no_inserted_zero_is_multiplied():
    """The COMPUTEs of a 3x3 stride-2 up-convolution use 9 kernel taps over its 4 phases
    (1, 2, 2 and 4), not 4 x 9."""
    net = graph.Network("up")
    x = net.add("input", graph.Input((4, 4, 4)))
    net.add("up", graph.ConvTranspose2d(4, 4, 3, 2, 1, 1), [x])
    program = compile(quantized(net), config.preset("tiny"))
    computes = [i for i in program.streams[isa.Engine.COMPUTE] if isinstance(i, isa.Compute)]
    assert {(c.kernel_h, c.kernel_w, c.stride_h, c.stride_w) for c in computes} == {
        (1, 1, 1, 1),
        (1, 2, 1, 1),
        (2, 1, 1, 1),
        (2, 2, 1, 1),
    }
    # Every output pixel once per phase: 8 x 8 pixels in all.
    assert sum(c.out_h * c.out_w for c in computes) == 8 * 8
    stores = [i for i in program.streams[isa.Engine.STORE] if isinstance(i, isa.Store)]
    assert {(s.outer_stride, s.inner_stride) for s in stores} == {(2 * 8 * 4, 2 * 4)}
    layer = program.layers[0]
    # MACs: K * C * 11 * 11, the (input row, tap) pairs landing in the output per axis.
    assert (layer.kind, layer.mapping["phases"]) == ("ConvTranspose2d", 4)
    assert layer.macs == 4 * 4 * 11 * 11


@pytest.mark.parametrize("preset", ["tiny", "edge"])
def test_the_unet_zoo_model_is_bit_exact(preset):
    net = models.get("unet", input_size=16)
    assert sum(isinstance(net.op(n), graph.ConvTranspose2d) for n in net.order()) == 4
    run_exact(net, preset)


def test_a_sub_kernel_dilation_beyond_the_hardware_is_rejected_by_name():
    """Dilation 16 at stride 1 keeps dilation 16 in its one phase (the COMPUTE field holds
    15); at stride 2 the phases' sub-kernels have dilation 8 and it runs."""
    net = graph.Network("dilated")
    x = net.add("input", graph.Input((2, 3, 3)))
    net.add("up", graph.ConvTranspose2d(2, 2, 2, dilation=16), [x])
    with pytest.raises(
        CompileError, match=r"^layer 'up' .*dilation 16 exceeds the hardware limit 15"
    ):
        compile(quantized(net), config.preset("tiny"))
    net = graph.Network("dilated")
    x = net.add("input", graph.Input((2, 3, 3)))
    net.add("up", graph.ConvTranspose2d(2, 2, 2, 2, dilation=16), [x])
    run_exact(net, "tiny")


def test_a_1d_onnx_upsampler_runs_bit_exact():
    """An ONNX (N, C, L) model: Conv1d, ConvTranspose1d (stride 4, kernel 8, pads 2),
    Relu, imported as H = 1, quantised, compiled and run on the model."""
    rng = np.random.default_rng(3)
    weights = {"w1": (6, 3, 3), "w2": (6, 4, 8), "b2": (4,)}
    inits = [
        numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)
        for n, s in weights.items()
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv", pads=[1, 1]),
        helper.make_node(
            "ConvTranspose", ["a", "w2", "b2"], ["t"], name="up", strides=[4], pads=[2, 2]
        ),
        helper.make_node("Relu", ["t"], ["y"], name="relu"),
    ]
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "upsampler",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 9])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, None])],
            inits,
        ),
        opset_imports=[helper.make_opsetid("", 13)],
    )
    net = load(model)
    assert net.shape("up") == (4, 1, 36) and net.op("up").activation == "relu"
    run_exact(net, "edge")
