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

Every network here runs wholly on the accelerator (no host op). Activations are
:class:`~accel.graph.Pointwise` tables on the accelerator, as the ONNX frontend maps them.
torchvision's layer shapes and MACs, with these choices:

- ``mobilenet_v3_small``: HardSwish and HardSigmoid (``alpha=1/6``, torch's) are tables; the
  squeeze-and-excitation ``Mul`` (a per-channel broadcast) is a VMUL; ReLU is fused into its
  conv.
- ``efficientnet_b0``: SiLU and the SE gate's Sigmoid are tables, the SE ``Mul`` a VMUL;
  stochastic depth and dropout are omitted (inference).
- ``densenet121``: the BN-ReLU *before* each dense layer's 1x1 conv, each transition and the
  classifier (pre-activation, on the concatenated features: ``norm1``, ``transition.norm``,
  ``norm5``) is a per-channel affine with the ReLU fused (:func:`accel.graph.channel_affine`,
  a depthwise 1x1 conv on the accelerator, 62 of them); the BN after each 1x1 conv and after
  ``conv0`` folds into it. So the function is torchvision's; its MACs are torchvision's
  conv + linear MACs plus the affines' one MAC per element (10,549,504 at 224x224). The
  concatenations are a chain (``concat_i = Concat(concat_{i-1}, conv2_i)``), which the
  accelerator runs in place: the whole network is one program.
- ``shufflenet_v2`` (``x1_0``): the channel split is two :class:`~accel.graph.ChannelSlice`
  layers and the channel shuffle a :class:`~accel.graph.ChannelShuffle` (groups 2), as the
  ONNX frontend imports torch's ``Split`` and Reshape/Transpose/Reshape: the whole network
  is one program.
- ``unet``: Ronneberger's U-Net with padded 3x3 convs (sizes are kept), widths 32, 64, 128,
  256, bottom 512, 2 output classes, at 128x128 natively; the 2x2 stride-2 up-convolutions
  are :class:`~accel.graph.ConvTranspose2d` layers on the accelerator (four phases of a 1x1
  convolution each): the whole network is one program.

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

import numpy as np

from accel.graph import (
    Add,
    AvgPool2d,
    ChannelShuffle,
    ChannelSlice,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Flatten,
    GlobalAvgPool,
    Input,
    Linear,
    MaxPool2d,
    Mul,
    Network,
    Op,
    Pointwise,
    channel_affine,
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


# -- modern mobile networks: tables, VMULs, slices and shuffles --------------------------


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of ``divisor``, not below 90%."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


def _act(b: _Builder, name: str, kind: str) -> str:
    """An activation table after the current node: ``hardswish``, ``hardsigmoid`` (torch's:
    alpha 1/6, as float32 the way ``torch.onnx.export`` writes it), ``sigmoid``, ``silu``."""
    params = (("alpha", float(np.float32(1 / 6))), ("beta", 0.5)) if kind == "hardsigmoid" else ()
    return b.add(name, Pointwise(kind, params))


def _squeeze_excitation(b: _Builder, prefix: str, squeeze: int, inner: str, gate: str) -> str:
    """x * gate(fc2(inner(fc1(avgpool(x))))): fc1/fc2 are 1x1 convs, the gate a table and the
    channel-broadcast Mul a VMUL, all on the accelerator."""
    x, channels = b.x, b.channels()
    b.add(f"{prefix}.avgpool", GlobalAvgPool())
    b.conv(f"{prefix}.fc1", squeeze, 1, activation="relu" if inner == "relu" else None)
    if inner != "relu":
        _act(b, f"{prefix}.{inner}", inner)
    b.conv(f"{prefix}.fc2", channels, 1, activation=None)
    scale = _act(b, f"{prefix}.{gate}", gate)
    return b.add(f"{prefix}.mul", Mul(), [x, scale])


def _conv_act(b: _Builder, name: str, out: int, kernel: int, stride: int, act: str, **kw) -> str:
    """conv + an activation: ReLU fused, anything else a table after it."""
    fused = act if act in ("relu", "relu6") else None
    b.conv(name, out, kernel, stride, (kernel - 1) // 2, activation=fused, **kw)
    return b.x if fused or act is None else _act(b, f"{name}.act", act)


# torchvision mobilenet_v3_small: kernel, expanded channels, out channels, SE, activation,
# stride.
_MOBILENET_V3_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", 2),
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", 2),
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
]


def _mobilenet_v3_small(b: _Builder) -> None:
    _conv_act(b, "features.0.0", 16, 3, 2, "hardswish")
    for i, (kernel, expanded, out, se, act, stride) in enumerate(_MOBILENET_V3_SMALL, 1):
        prefix, identity, j = f"features.{i}.block", b.x, 0
        if expanded != b.channels():
            _conv_act(b, f"{prefix}.0.0", expanded, 1, 1, act)
            j = 1
        _conv_act(b, f"{prefix}.{j}.0", expanded, kernel, stride, act, groups=expanded)
        if se:
            j += 1
            squeeze = _make_divisible(expanded // 4)
            _squeeze_excitation(b, f"{prefix}.{j}", squeeze, "relu", "hardsigmoid")
        b.conv(f"{prefix}.{j + 1}.0", out, 1, activation=None)
        if stride == 1 and b.channels(identity) == out:
            b.add(f"features.{i}.add", Add(), [b.x, identity])
    _conv_act(b, "features.12.0", 576, 1, 1, "hardswish")
    b.add("avgpool", GlobalAvgPool())
    b.add("flatten", Flatten())
    b.add("classifier.0", Linear(576, 1024))
    _act(b, "classifier.1", "hardswish")
    b.add("classifier.3", Linear(1024, 1000))


# torchvision efficientnet_b0 (MBConv): expansion, kernel, stride, out channels, repeats.
_EFFICIENTNET_B0 = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]


def _efficientnet_b0(b: _Builder) -> None:
    _conv_act(b, "features.0.0", 32, 3, 2, "silu")
    for stage, (expansion, kernel, first_stride, out, repeats) in enumerate(_EFFICIENTNET_B0, 1):
        for i in range(repeats):
            prefix, identity = f"features.{stage}.{i}.block", b.x
            channels, stride, j = b.channels(), first_stride if i == 0 else 1, 0
            expanded = channels * expansion
            if expansion != 1:
                _conv_act(b, f"{prefix}.0.0", expanded, 1, 1, "silu")
                j = 1
            _conv_act(b, f"{prefix}.{j}.0", expanded, kernel, stride, "silu", groups=expanded)
            _squeeze_excitation(b, f"{prefix}.{j + 1}", max(1, channels // 4), "silu", "sigmoid")
            b.conv(f"{prefix}.{j + 2}.0", out, 1, activation=None)
            if stride == 1 and channels == out:
                b.add(f"features.{stage}.{i}.add", Add(), [b.x, identity])
    _conv_act(b, "features.8.0", 1280, 1, 1, "silu")
    b.add("avgpool", GlobalAvgPool())
    b.classifier([("classifier.1", 1000, None)])


def _densenet121(b: _Builder) -> None:
    """torchvision densenet121 (growth 32, bn_size 4, blocks 6/12/24/16); each pre-activation
    BN-ReLU is a per-channel affine with the ReLU fused (see the module docstring)."""
    b.conv("features.conv0", 64, 7, 2, 3)
    b.add("features.pool0", MaxPool2d(3, 2, 1))
    for block, layers in enumerate((6, 12, 24, 16), 1):
        features = b.x
        for i in range(1, layers + 1):
            prefix = f"features.denseblock{block}.denselayer{i}"
            b.add(f"{prefix}.norm1", channel_affine(b.channels(features), "relu"), [features])
            b.conv(f"{prefix}.conv1", 128, 1)
            new = b.conv(f"{prefix}.conv2", 32, 3, 1, 1, activation=None)
            features = b.add(f"{prefix}.concat", Concat(), [features, new])
        if block < 4:
            b.add(f"features.transition{block}.norm", channel_affine(b.channels(), "relu"))
            b.conv(f"features.transition{block}.conv", b.channels() // 2, 1, activation=None)
            b.add(f"features.transition{block}.pool", AvgPool2d(2, 2))
    b.add("features.norm5", channel_affine(b.channels(), "relu"))
    b.add("avgpool", GlobalAvgPool())
    b.classifier([("classifier", 1000, None)])


def _shufflenet_v2(b: _Builder) -> None:
    """torchvision shufflenet_v2_x1_0: the channel split is two channel slices, the channel
    shuffle (groups 2) a ChannelShuffle, as the ONNX frontend imports them."""
    b.conv("conv1.0", 24, 3, 2, 1)
    b.add("maxpool", MaxPool2d(3, 2, 1))
    for stage, (repeats, out) in enumerate(zip((4, 8, 4), (116, 232, 464), strict=True), 2):
        half = out // 2
        for i in range(repeats):
            prefix, x, channels = f"stage{stage}.{i}", b.x, b.channels()
            if i == 0:
                b.conv(f"{prefix}.branch1.0", channels, 3, 2, 1, groups=channels, activation=None)
                left = b.conv(f"{prefix}.branch1.2", half, 1)
                src = x
            else:
                left = b.add(f"{prefix}.split.0", ChannelSlice(0, half), [x])
                src = b.add(f"{prefix}.split.1", ChannelSlice(half, channels), [x])
            stride = 2 if i == 0 else 1
            b.conv(f"{prefix}.branch2.0", half, 1, src=src)
            b.conv(f"{prefix}.branch2.3", half, 3, stride, 1, groups=half, activation=None)
            right = b.conv(f"{prefix}.branch2.5", half, 1)
            b.add(f"{prefix}.concat", Concat(), [left, right])
            b.add(f"{prefix}.shuffle", ChannelShuffle(2))
    b.conv("conv5.0", 1024, 1)
    b.add("avgpool", GlobalAvgPool())
    b.classifier([("fc", 1000, None)])


def _unet(b: _Builder) -> None:
    """U-Net (Ronneberger et al.) with padded 3x3 convs, widths 32..512, 2 output classes;
    the 2x2 stride-2 up-convolutions are ConvTranspose2d layers."""
    skips = []
    for level, width in enumerate((32, 64, 128, 256)):
        b.conv(f"down{level}.conv1", width, 3, 1, 1)
        skips.append(b.conv(f"down{level}.conv2", width, 3, 1, 1))
        b.add(f"down{level}.pool", MaxPool2d(2, 2))
    b.conv("bottom.conv1", 512, 3, 1, 1)
    b.conv("bottom.conv2", 512, 3, 1, 1)
    for level, width in reversed(list(enumerate((32, 64, 128, 256)))):
        up = b.add(f"up{level}.upconv", ConvTranspose2d(b.channels(), width, 2, 2))
        b.add(f"up{level}.concat", Concat(), [skips[level], up])
        b.conv(f"up{level}.conv1", width, 3, 1, 1)
        b.conv(f"up{level}.conv2", width, 3, 1, 1)
    b.conv("head", 2, 1, activation=None)


# name -> (builder, input channels, native input size)
_MODELS: dict[str, tuple[Callable[[_Builder], None], int, int]] = {
    "lenet5": (_lenet5, 1, 32),
    "alexnet": (_alexnet, 3, 224),
    "vgg16": (_vgg16, 3, 224),
    "resnet18": (partial(_resnet, block=_basic_block, depths=(2, 2, 2, 2)), 3, 224),
    "resnet34": (partial(_resnet, block=_basic_block, depths=(3, 4, 6, 3)), 3, 224),
    "resnet50": (partial(_resnet, block=_bottleneck, depths=(3, 4, 6, 3)), 3, 224),
    "mobilenet_v2": (_mobilenet_v2, 3, 224),
    "mobilenet_v3_small": (_mobilenet_v3_small, 3, 224),
    "efficientnet_b0": (_efficientnet_b0, 3, 224),
    "densenet121": (_densenet121, 3, 224),
    "shufflenet_v2": (_shufflenet_v2, 3, 224),
    "unet": (_unet, 3, 128),
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
