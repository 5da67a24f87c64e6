"""Built-in model zoo: classic CNNs as :class:`~accel.graph.Network` graphs (no weights).

Layer shapes, strides, paddings and ``ceil_mode`` match torchvision (``alexnet``,
``vgg16``, ``resnet18``/``34``/``50`` (v1.5: stride on the 3x3 conv), ``mobilenet_v2``),
node names follow torchvision's module names (``layer3.5.conv2``, ``features.18.0``), with
these documented differences:

- **BatchNorm is folded into the preceding conv.** torchvision's convs before a BN have
  ``bias=False``; here they have ``bias=True`` and there is no BN node. Parameter counts
  therefore differ from torchvision's by the BN channels: each BN has ``2*C`` parameters
  (its running statistics are buffers, not parameters) and is replaced by ``C`` bias
  values, so ``total_params == torchvision_params - sum(C of every BN)``.
- **Activations are fused** (``activation="relu"``/``"relu6"`` on the conv or linear, and
  ``"relu"`` on the residual :class:`~accel.graph.Add` of ResNets); dropout is omitted.
- **Adaptive average pools** become :class:`~accel.graph.GlobalAvgPool` when the target is
  1x1. AlexNet's ``AdaptiveAvgPool2d((6, 6))`` and VGG's ``((7, 7))`` are omitted when the
  feature map already has the target size (the identity, as at 224x224), become an
  :class:`~accel.graph.AvgPool2d` with ``kernel == stride == side // target`` when the
  sides are multiples of the target (exactly the adaptive pool then), and are rejected
  otherwise: torchvision would replicate or overlap bins, which no op here expresses. So
  ``alexnet`` builds for input sizes 223..254 (or where its 6x6 grid scales evenly, e.g.
  415..446) and ``vgg16`` for 224..255, 448..479, ...; not at 32 or 64.

``lenet5`` is the classic LeNet-5 on a 1x32x32 input with ReLU in place of its squashing
functions and average-pool subsampling. ``tinynet`` and ``tinyconv`` are small synthetic
networks for fast tests.

``input_size`` sets the square spatial input size of any model; the fully connected
layers take whatever the feature map flattens to. A size at which some layer would
vanish is rejected with an error naming the model, the size and the layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from numbers import Integral

from accel.graph import (
    Add,
    AvgPool2d,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    Input,
    Linear,
    MaxPool2d,
    Network,
    Op,
)

__all__ = ["get", "names"]


class _Builder:
    """Appends layers to a network, tracking the most recent node as the default input."""

    def __init__(self, name: str, shape: tuple[int, int, int]) -> None:
        self.net = Network(name)
        self.x = self.net.add("input", Input(shape))

    def add(self, name: str, op: Op, inputs: Sequence[str] | None = None) -> str:
        self.x = self.net.add(name, op, [self.x] if inputs is None else inputs)
        return self.x

    def channels(self, name: str | None = None) -> int:
        return self.net.shape(self.x if name is None else name)[0]

    def conv(
        self,
        name: str,
        out: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        activation: str | None = "relu",
        src: str | None = None,
    ) -> str:
        src = self.x if src is None else src
        op = Conv2d(
            self.channels(src), out, kernel, stride, padding, groups=groups, activation=activation
        )
        return self.add(name, op, [src])

    def classifier(self, layers: Sequence[tuple[str, int, str | None]]) -> None:
        """Flatten, then Linear layers given as (name, out_features, activation)."""
        self.add("flatten", Flatten())
        for name, out, activation in layers:
            self.add(name, Linear(self.channels(), out, activation=activation))

    def adaptive_avgpool(self, name: str, target: int) -> None:
        """torchvision's AdaptiveAvgPool2d((target, target)); see the module docstring."""
        _, h, w = self.net.shape(self.x)
        if (h, w) == (target, target):
            return
        if h % target or w % target:
            raise ValueError(
                f"layer {name!r}: AdaptiveAvgPool2d({target}) needs a feature map whose "
                f"sides are multiples of {target}, got {h}x{w}"
            )
        kernel = (h // target, w // target)
        self.add(name, AvgPool2d(kernel, kernel))


def _lenet5(b: _Builder) -> None:
    b.conv("conv1", 6, 5)
    b.add("pool1", AvgPool2d(2, 2))
    b.conv("conv2", 16, 5)
    b.add("pool2", AvgPool2d(2, 2))
    b.classifier([("fc1", 120, "relu"), ("fc2", 84, "relu"), ("fc3", 10, None)])


# torchvision `features` tables: (out_channels, kernel, stride, padding) for a conv + ReLU
# (two module indices), ("M", kernel) for MaxPool2d(kernel, stride=2) (one index).
_ALEXNET = [
    (64, 11, 4, 2),
    ("M", 3),
    (192, 5, 1, 2),
    ("M", 3),
    (384, 3, 1, 1),
    (256, 3, 1, 1),
    (256, 3, 1, 1),
    ("M", 3),
]
# VGG-16 (torchvision cfg "D"): five stages of (channels, number of 3x3 convs), each
# followed by a 2x2 max pool.
_VGG16 = [
    layer
    for channels, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
    for layer in [(channels, 3, 1, 1)] * convs + [("M", 2)]
]


def _vgg_style(
    b: _Builder, features: list, pool: int, classifier: list[tuple[str, int, str | None]]
) -> None:
    """AlexNet and VGG: a features table, an adaptive pool to ``pool``, a classifier."""
    index = 0
    for layer in features:
        if layer[0] == "M":
            b.add(f"features.{index}", MaxPool2d(layer[1], 2))
            index += 1
        else:
            b.conv(f"features.{index}", *layer)
            index += 2
    b.adaptive_avgpool("avgpool", pool)
    b.classifier(classifier)


def _alexnet(b: _Builder) -> None:
    classifier = [("classifier.1", 4096, "relu"), ("classifier.4", 4096, "relu")]
    _vgg_style(b, _ALEXNET, 6, [*classifier, ("classifier.6", 1000, None)])


def _vgg16(b: _Builder) -> None:
    classifier = [("classifier.0", 4096, "relu"), ("classifier.3", 4096, "relu")]
    _vgg_style(b, _VGG16, 7, [*classifier, ("classifier.6", 1000, None)])


def _resnet(
    b: _Builder, block: Callable[[_Builder, str, int, int], None], depths: tuple[int, int, int, int]
) -> None:
    b.conv("conv1", 64, 7, 2, 3)
    b.add("maxpool", MaxPool2d(3, 2, 1))
    for stage, (depth, width) in enumerate(zip(depths, (64, 128, 256, 512), strict=True), 1):
        for i in range(depth):
            block(b, f"layer{stage}.{i}", width, 2 if stage > 1 and i == 0 else 1)
    b.add("avgpool", GlobalAvgPool())
    b.classifier([("fc", 1000, None)])


def _basic_block(b: _Builder, prefix: str, width: int, stride: int) -> None:
    identity = b.x
    b.conv(f"{prefix}.conv1", width, 3, stride, 1)
    b.conv(f"{prefix}.conv2", width, 3, 1, 1, activation=None)
    _shortcut(b, prefix, identity, stride)


def _bottleneck(b: _Builder, prefix: str, width: int, stride: int) -> None:
    identity = b.x
    b.conv(f"{prefix}.conv1", width, 1)
    b.conv(f"{prefix}.conv2", width, 3, stride, 1)
    b.conv(f"{prefix}.conv3", width * 4, 1, activation=None)
    _shortcut(b, prefix, identity, stride)


def _shortcut(b: _Builder, prefix: str, identity: str, stride: int) -> None:
    """``relu(residual + identity)``, the identity through a strided 1x1 conv if needed."""
    residual = b.x
    if stride != 1 or b.channels(identity) != b.channels(residual):
        identity = b.conv(
            f"{prefix}.downsample.0", b.channels(residual), 1, stride, activation=None, src=identity
        )
    b.add(f"{prefix}.add", Add("relu"), [residual, identity])


# torchvision MobileNetV2 inverted residual settings: expansion t, channels c, repeats n,
# first stride s.
_MOBILENET_V2 = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def _mobilenet_v2(b: _Builder) -> None:
    b.conv("features.0.0", 32, 3, 2, 1, activation="relu6")
    index = 1
    for expansion, out, repeats, first_stride in _MOBILENET_V2:
        for i in range(repeats):
            _inverted_residual(
                b, f"features.{index}", out, first_stride if i == 0 else 1, expansion
            )
            index += 1
    b.conv(f"features.{index}.0", 1280, 1, activation="relu6")
    b.add("avgpool", GlobalAvgPool())
    b.classifier([("classifier.1", 1000, None)])


def _inverted_residual(b: _Builder, prefix: str, out: int, stride: int, expansion: int) -> None:
    identity, hidden = b.x, b.channels() * expansion
    j = 0
    if expansion != 1:
        b.conv(f"{prefix}.conv.0.0", hidden, 1, activation="relu6")
        j = 1
    b.conv(f"{prefix}.conv.{j}.0", hidden, 3, stride, 1, groups=hidden, activation="relu6")
    b.conv(f"{prefix}.conv.{j + 1}", out, 1, activation=None)
    if stride == 1 and b.channels(identity) == out:
        b.add(f"{prefix}.add", Add(), [b.x, identity])


def _tinynet(b: _Builder) -> None:
    """3x16x16: conv, strided conv, depthwise, pointwise, residual add, pools, fc."""
    b.conv("conv1", 8, 3, 1, 1)
    identity = b.conv("conv2", 16, 3, 2, 1)
    b.conv("dw", 16, 3, 1, 1, groups=16)
    b.conv("pw", 16, 1, activation=None)
    b.add("add", Add("relu"), [b.x, identity])
    b.add("pool", MaxPool2d(2, 2))
    b.add("gap", GlobalAvgPool())
    b.classifier([("fc", 10, None)])


def _tinyconv(b: _Builder) -> None:
    """8x8x8: one 3x3 conv, padding 1, 8 -> 8 channels, bias, no activation."""
    b.conv("conv", 8, 3, 1, 1, activation=None)


# name -> (builder, input channels, native input size)
_MODELS: dict[str, tuple[Callable[[_Builder], None], int, int]] = {
    "lenet5": (_lenet5, 1, 32),
    "alexnet": (_alexnet, 3, 224),
    "vgg16": (_vgg16, 3, 224),
    "resnet18": (partial(_resnet, block=_basic_block, depths=(2, 2, 2, 2)), 3, 224),
    "resnet34": (partial(_resnet, block=_basic_block, depths=(3, 4, 6, 3)), 3, 224),
    "resnet50": (partial(_resnet, block=_bottleneck, depths=(3, 4, 6, 3)), 3, 224),
    "mobilenet_v2": (_mobilenet_v2, 3, 224),
    "tinynet": (_tinynet, 3, 16),
    "tinyconv": (_tinyconv, 8, 8),
}


def names() -> list[str]:
    """Names accepted by :func:`get`, sorted."""
    return sorted(_MODELS)


def get(name: str, input_size: int | None = None) -> Network:
    """Build model ``name`` for a square input of side ``input_size``.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    input_size : int, optional
        Spatial input size; default the model's native size (224 for the ImageNet
        models, 32 for ``lenet5``, 16 for ``tinynet``, 8 for ``tinyconv``).

    Returns
    -------
    Network
        A fresh network named ``name`` with input node ``"input"`` and no weights.

    Raises
    ------
    ValueError
        For an unknown name, a non-positive size, or a size at which a layer would vanish
        or an adaptive pool is not expressible (naming the model, the size and the layer).
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(names())}")
    build, channels, native = _MODELS[name]
    size = native if input_size is None else input_size
    if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
        raise ValueError(f"model {name!r}: input_size must be a positive int, got {size!r}")
    builder = _Builder(name, (channels, int(size), int(size)))
    try:
        build(builder)
    except ValueError as exc:
        raise ValueError(f"model {name!r} at input_size {size}: {exc}") from exc
    return builder.net
