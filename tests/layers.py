"""Quantised networks for tests: single layers with random weights and quantisation, built
directly as :class:`accel.quantized.QuantizedNetwork` (no calibration, so the model and compiler
tests do not depend on the quantiser), and zoo models through the quantiser."""

from __future__ import annotations

import numpy as np

from accel import graph as g
from accel import models, numerics, ptq
from accel.quantized import ConvQuant, QuantizedNetwork, TensorQuant


def quantized(network: g.Network, seed: int = 0) -> QuantizedNetwork:
    """``network`` through the pipeline's quantisation step, as ``accel simulate`` does it:
    activations fused, then post-training quantisation with random weights of ``seed``."""
    return ptq.quantize(g.fuse_activations(network), seed=seed)


def zoo_qnet(name: str, size: int | None = None) -> QuantizedNetwork:
    """Zoo model ``name`` at input size ``size`` (its native size if None), quantised with
    seed 0."""
    return quantized(models.get(name, input_size=size))


def conv_qnet(
    rng: np.random.Generator,
    *,
    c: int,
    k: int,
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    activation: str | None = None,
) -> QuantizedNetwork:
    """One Conv2d with random int8 weights, int32 bias and per-channel requantisation."""
    net = g.Network("conv")
    net.add("input", g.Input((c, *hw)))
    op = g.Conv2d(c, k, kernel, stride, padding, dilation, groups, True, activation)
    net.add("conv", op, ["input"])
    w = rng.integers(-128, 128, size=(k, c // groups, *kernel), dtype=np.int8)
    bias = rng.integers(-5000, 5000, size=k).astype(np.int32)
    fan_in = c // groups * kernel[0] * kernel[1]
    scales = rng.uniform(0.2, 1.0, size=k) / (64 * np.sqrt(fan_in))
    multiplier, shift = numerics.quantize_multiplier(scales)
    x_q = TensorQuant(0.05, int(rng.integers(-20, 20)))
    y_scale = 0.1
    y_q = TensorQuant(y_scale, int(rng.integers(-20, 20)))
    act_min, act_max = numerics.activation_range(activation, y_q.zero_point, y_scale)
    cq = ConvQuant(w, bias, multiplier, shift, act_min, act_max)
    return QuantizedNetwork(net, {"input": x_q, "conv": y_q}, {"conv": cq})


def conv_reference(qnet: QuantizedNetwork, x: np.ndarray) -> np.ndarray:
    """The golden int8 result of :func:`conv_qnet`'s layer."""
    op = qnet.network.op("conv")
    cq = qnet.layers["conv"]
    acc = numerics.qconv2d(
        x,
        cq.weight,
        cq.bias,
        x_zero_point=qnet.tensors["input"].zero_point,
        multiplier=cq.multiplier,
        shift=cq.shift,
        out_zero_point=qnet.tensors["conv"].zero_point,
        stride=op.stride,
        padding=op.padding,
        dilation=op.dilation,
        groups=op.groups,
    )
    return np.clip(acc, cq.act_min, cq.act_max).astype(np.int8)


def random_input(rng: np.random.Generator, qnet: QuantizedNetwork, name: str = "input"):
    shape = qnet.network.shape(name)
    return rng.integers(-128, 128, size=(1, *shape), dtype=np.int8)


def prelu_qnet(seed: int, c: int, hw: tuple[int, int], after_conv: bool):
    """input -> [conv ->] PRelu (random slopes of both signs, one 0, one above 1) -> output."""
    rng = np.random.default_rng(seed)
    net = g.Network("prelu")
    x = net.add("input", g.Input((c, *hw)))
    if after_conv:
        x = net.add("conv", g.Conv2d(c, c, 3, padding=1), [x])
    net.add("prelu", g.PRelu(c), [x])
    slope = rng.uniform(-1.5, 1.5, c)
    slope[0], slope[-1] = 0.0, 2.5
    net.set_weights("prelu", slope)
    return ptq.quantize(net, seed=seed)
