"""Deterministic synthetic data: random weights for networks without trained ones, inputs.

The zoo networks (:mod:`accel.models`) and SCALE-Sim topologies carry shapes but no weights;
:func:`random_weights` fills them reproducibly. :func:`random_inputs` (float, the default
calibration of :func:`accel.ptq.quantize`) and :func:`random_int8_inputs` (what ``accel
simulate`` and ``accel verify`` feed a quantised network) draw inputs. Every draw depends only
on the seed and a name, so adding a layer never changes another's weights.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from accel.graph import Add, Network

__all__ = [
    "BIAS_STD",
    "random_inputs",
    "random_int8_inputs",
    "random_program_inputs",
    "random_weights",
    "stack_images",
    "weight_std",
]

#: Standard deviation of random biases.
BIAS_STD = 0.01


def _rng(seed: int, *key: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (not on the other nodes)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode()) for k in key)])


def random_weights(network: Network, seed: int = 0) -> Network:
    """Return a copy of ``network`` in which every Conv2d/Linear has float weights.

    Weights already set are kept. Missing ones are normal with mean 0 and the standard
    deviation of :func:`weight_std` (He-normal ``sqrt(2 / fan_in)`` for layers with a ReLU,
    scaled down for linear layers and residual branches), and the bias (when the op has one)
    ``N(0, 0.01**2)``. Each node's normal draws depend only on ``seed`` and the node name,
    so they are reproducible and do not change when other layers are added or changed.
    Node metadata is copied (shallowly); ``network`` is not modified.

    Raises
    ------
    ValueError
        If ``seed`` is not an int >= 0.
    """
    _rng(seed)  # validate the seed even for a network without weights
    copy = Network(network.name)
    for name in network.order():
        op = network.op(name)
        copy.add(name, op, network.inputs(name))
        copy.meta(name).update(network.meta(name))
        weights = network.weights(name)
        if weights:
            copy.set_weights(name, weights["weight"], weights.get("bias"))
        elif op.weight_shape is not None:
            rng = _rng(seed, "weights", name)
            weight = rng.standard_normal(op.weight_shape) * weight_std(network, name)
            bias = None if op.bias_shape is None else rng.standard_normal(op.bias_shape) * BIAS_STD
            copy.set_weights(name, weight, bias)
    return copy


def weight_std(network: Network, name: str) -> float:
    """Standard deviation of the random weights of Conv2d/Linear node ``name``.

    ``sqrt(gain**2 / fan_in)``, ``fan_in = C / groups * R * S`` (``in_features``):

    * ``gain**2 = 2`` (He) when the op applies relu/relu6, which halves the second moment;
    * ``gain**2 = 1`` when it has no activation (variance-preserving for a linear layer);
    * divided by ``k`` more when the node is an input of an Add of ``k`` inputs, so a
      residual sum does not grow by the branch's full variance at every block.

    Plain He (``2 / fan_in`` everywhere) makes the activations of residual networks grow
    with depth (RMS at the output of ResNet-34/50 about 350x/530x the input's at 64x64);
    this keeps every tensor of the zoo models within about 0.2x..5x of the input RMS.
    """
    op = network.op(name)
    fan_in = math.prod(op.weight_shape[1:])
    gain2 = 1.0 if op.activation is None else 2.0
    for consumer in network.consumers(name):
        if isinstance(network.op(consumer), Add):
            gain2 /= len(network.inputs(consumer))
            break
    return math.sqrt(gain2 / fan_in)


def random_inputs(network: Network, seed: int = 0, batch: int = 1) -> dict[str, np.ndarray]:
    """One ``N(0, 1)`` float64 array of shape ``(batch, *shape)`` per network input.

    Deterministic in ``seed`` and the input name; the default calibration of :func:`quantize`.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    return {
        name: _rng(seed, "input", name).standard_normal((batch, *network.shape(name)))
        for name in network.input_names
    }


def random_int8_inputs(network, seed: int = 0) -> dict[str, np.ndarray]:
    """One uniform int8 array of shape ``(1, *shape)`` per network input, drawn in input
    order from ``np.random.default_rng(seed)``: what ``accel simulate`` and ``accel verify``
    feed a network. ``network`` is a :class:`~accel.graph.Network` or anything with one in
    its ``network`` attribute (a :class:`~accel.quantized.QuantizedNetwork`)."""
    network = getattr(network, "network", network)
    return _uniform_int8({name: network.shape(name) for name in network.input_names}, seed)


def random_program_inputs(program, seed: int = 0) -> dict[str, np.ndarray]:
    """The same draws as :func:`random_int8_inputs` for the inputs of a compiled
    :class:`~accel.program.Program` (what ``accel simulate prog.bin`` feeds it), so a program
    gets the inputs its network would; the program of a batch gets image ``i``'s of seed
    ``seed + i``, stacked (batch, C, H, W), as ``--batch`` feeds a network."""
    shapes = {name: (t.channels, t.height, t.width) for name, t in program.inputs.items()}
    images = [_uniform_int8(shapes, seed + i) for i in range(program.batch)]
    return {name: np.concatenate([image[name] for image in images]) for name in shapes}


def stack_images(feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-image input feeds (each ``(1, C, H, W)``, or ``(1, C, L)`` / ``(1, F)`` as the
    network's inputs are) as one feed of a batch program: every input ``(images, C, H, W)``,
    image ``i`` at ``[i]``."""
    return {
        name: np.stack([feed[name].reshape(feed[name].shape[-3:]) for feed in feeds])
        for name in feeds[0]
    }


def _uniform_int8(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.integers(-128, 128, size=(1, *shape), dtype=np.int8)
        for name, shape in shapes.items()
    }
