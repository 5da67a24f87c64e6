"""Tests of the model zoo against torchvision's published figures and layer shapes.

Parameter counts: torchvision counts each BatchNorm's weight and bias (2*C; running stats
are buffers). Our zoo folds BN into the preceding conv as a per-channel bias (C values),
so ``ours == torchvision - sum(C over BNs)``; every conv in ResNet and MobileNetV2 is
followed by exactly one BN, so that sum is the sum of all conv output channels. AlexNet
and VGG-16 have no BN and must match exactly.
"""

import functools

import pytest

from accel import models
from accel.graph import Add, AvgPool2d, Conv2d, GlobalAvgPool, Linear, MaxPool2d, channel_affine


@functools.cache
def model(name, size=None):
    return models.get(name, size)


def ops(net, kind):
    return [net.op(n) for n in net.layers() if isinstance(net.op(n), kind)]


def test_names():
    assert models.names() == [
        "alexnet",
        "densenet121",
        "efficientnet_b0",
        "lenet5",
        "mobilenet_v2",
        "mobilenet_v3_small",
        "resnet18",
        "resnet34",
        "resnet50",
        "shufflenet_v2",
        "tinyconv",
        "tinynet",
        "unet",
        "vgg16",
    ]


# torchvision's published GFLOPS (which are GMACs of conv + linear layers) at 224x224,
# and the exact count of this implementation, which must lie within 1% of them. DenseNet's
# 62 pre-activation BNs are per-channel affines (depthwise 1x1 convs, one MAC per element)
# that the published figure leaves out: they are compared without them.
@pytest.mark.parametrize(
    ("name", "published_gmacs", "exact"),
    [
        ("alexnet", 0.71, 714_188_480),
        ("vgg16", 15.47, 15_470_264_320),
        ("resnet18", 1.81, 1_814_073_344),
        ("resnet34", 3.66, 3_663_761_408),
        ("resnet50", 4.09, 4_089_184_256),
        ("mobilenet_v2", 0.30, 300_774_272),
        # published to two digits only: within half a unit of the last digit
        ("mobilenet_v3_small", 0.06, 56_510_400),
        ("efficientnet_b0", 0.39, 385_814_752),
        ("densenet121", 2.83, 2_834_161_664 + 10_549_504),
        ("shufflenet_v2", 0.14, 144_907_992),
    ],
)
def test_macs_match_torchvision(name, published_gmacs, exact):
    net = model(name)
    affine = [n for n in net.layers() if net.op(n) == channel_affine(net.shape(n)[0], "relu")]
    conv_linear = net.total_macs - sum(net.macs(n) for n in affine)
    assert conv_linear == pytest.approx(published_gmacs * 1e9, abs=0.005e9)
    assert net.total_macs == exact
    assert len(affine) == (62 if name == "densenet121" else 0)


# (torchvision params, BN channels counted by hand from the architecture, ours)
@pytest.mark.parametrize(
    ("name", "torchvision", "bn_channels", "ours"),
    [
        ("alexnet", 61_100_840, 0, 61_100_840),
        ("vgg16", 138_357_544, 0, 138_357_544),
        # 64 + layer1 4*64 + layer2 (4+1)*128 + layer3 (4+1)*256 + layer4 (4+1)*512
        ("resnet18", 11_689_512, 4_800, 11_684_712),
        # 64 + layer1 6*64 + layer2 (8+1)*128 + layer3 (12+1)*256 + layer4 (6+1)*512
        ("resnet34", 21_797_672, 8_512, 21_789_160),
        # 64 + layer{i}: blocks * (w + w + 4w) + 4w (downsample), w = 64, 128, 256, 512
        ("resnet50", 25_557_032, 26_560, 25_530_472),
        # stem 32, per block expand + depthwise + project, final 1280
        ("mobilenet_v2", 3_504_872, 17_056, 3_487_816),
    ],
)
def test_params_match_torchvision_with_bn_folded(name, torchvision, bn_channels, ours):
    net = model(name)
    assert ours == torchvision - bn_channels
    assert net.total_params == ours
    if bn_channels:
        assert sum(op.out_channels for op in ops(net, Conv2d)) == bn_channels


def test_lenet5_figures():
    net = model("lenet5")
    assert net.shape("input") == (1, 32, 32)
    assert [net.shape(n) for n in ("conv1", "pool1", "conv2", "pool2", "flatten")] == [
        (6, 28, 28),
        (6, 14, 14),
        (16, 10, 10),
        (16, 5, 5),
        (400,),
    ]
    assert net.total_params == 61_706  # the classic LeNet-5 count
    assert (
        net.total_macs == 6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10
    )


@pytest.mark.parametrize(
    ("name", "node", "shape"),
    [
        ("alexnet", "features.0", (64, 55, 55)),
        ("alexnet", "features.2", (64, 27, 27)),
        ("alexnet", "features.12", (256, 6, 6)),
        ("alexnet", "flatten", (9216,)),
        ("vgg16", "features.30", (512, 7, 7)),
        ("vgg16", "flatten", (25088,)),
        ("resnet18", "conv1", (64, 112, 112)),
        ("resnet18", "maxpool", (64, 56, 56)),
        ("resnet18", "layer2.0.downsample.0", (128, 28, 28)),
        ("resnet18", "layer4.1.add", (512, 7, 7)),
        ("resnet34", "layer3.5.add", (256, 14, 14)),
        ("resnet50", "layer1.0.downsample.0", (256, 56, 56)),
        ("resnet50", "layer2.0.conv1", (128, 56, 56)),  # v1.5: stride on the 3x3 conv
        ("resnet50", "layer2.0.conv2", (128, 28, 28)),
        ("resnet50", "layer3.5.add", (1024, 14, 14)),
        ("resnet50", "avgpool", (2048, 1, 1)),
        ("mobilenet_v2", "features.0.0", (32, 112, 112)),
        ("mobilenet_v2", "features.1.conv.1", (16, 112, 112)),
        ("mobilenet_v2", "features.2.conv.0.0", (96, 112, 112)),
        ("mobilenet_v2", "features.2.conv.1.0", (96, 56, 56)),
        ("mobilenet_v2", "features.17.conv.2", (320, 7, 7)),
        ("mobilenet_v2", "features.18.0", (1280, 7, 7)),
    ],
)
def test_layer_shapes_match_torchvision(name, node, shape):
    assert model(name).shape(node) == shape


@pytest.mark.parametrize(
    ("name", "convs", "linears", "adds"),
    [
        ("alexnet", 5, 3, 0),
        ("vgg16", 13, 3, 0),
        ("resnet18", 20, 1, 8),
        ("resnet34", 36, 1, 16),
        ("resnet50", 53, 1, 16),
        ("mobilenet_v2", 52, 1, 10),
    ],
)
def test_layer_counts(name, convs, linears, adds):
    net = model(name)
    assert (len(ops(net, Conv2d)), len(ops(net, Linear)), len(ops(net, Add))) == (
        convs,
        linears,
        adds,
    )


@pytest.mark.parametrize("name", models.names())
def test_model_conventions(name):
    net = model(name)
    assert net.name == name
    assert net.input_names == ["input"]
    assert len(net.output_names) == 1
    assert all(op.bias for op in ops(net, Conv2d) + ops(net, Linear))  # BN folded to bias
    if name.startswith("resnet"):
        assert all(op.activation == "relu" for op in ops(net, Add))
    if name == "mobilenet_v2":
        assert all(op.activation is None for op in ops(net, Add))
        assert {op.activation for op in ops(net, Conv2d)} == {"relu6", None}
        depthwise = [op for op in ops(net, Conv2d) if op.groups > 1]
        assert len(depthwise) == 17
        assert all(op.groups == op.in_channels == op.out_channels for op in depthwise)


def test_imagenet_models_end_in_1000_classes():
    for name in ("alexnet", "vgg16", "resnet18", "resnet34", "resnet50", "mobilenet_v2"):
        net = model(name)
        assert net.shape(net.output_names[0]) == (1000,)


def test_tinynet_covers_the_layer_kinds_and_is_tiny():
    net = model("tinynet")
    assert net.shape("input") == (3, 16, 16)
    kinds = {type(net.op(n)) for n in net.layers()}
    assert {Conv2d, Add, MaxPool2d, GlobalAvgPool, Linear} <= kinds
    assert net.op("dw").groups == 16
    assert net.op("conv2").stride == (2, 2)
    assert net.inputs("add") == ["pw", "conv2"]
    assert net.shape("fc") == (10,)
    assert net.total_macs < 200_000


def test_tinyconv():
    net = model("tinyconv")
    assert net.layers() == ["conv"]
    assert net.op("conv") == Conv2d(8, 8, 3, padding=1)
    assert net.shape("conv") == (8, 8, 8)


@pytest.mark.parametrize(
    ("name", "size", "final"),
    [
        ("resnet18", 32, (512, 1, 1)),
        ("resnet18", 64, (512, 2, 2)),
        ("resnet34", 64, (512, 2, 2)),
        ("resnet50", 32, (2048, 1, 1)),
        ("resnet50", 64, (2048, 2, 2)),
        ("mobilenet_v2", 32, (1280, 1, 1)),
        ("mobilenet_v2", 64, (1280, 2, 2)),
        ("lenet5", 64, (16, 13, 13)),
        ("tinynet", 32, (16, 8, 8)),
        ("tinyconv", 4, (8, 4, 4)),
    ],
)
def test_reduced_input_sizes(name, size, final):
    net = model(name, size)
    assert net.shape("input")[1:] == (size, size)
    last_spatial = [
        n
        for n in net.order()
        if len(net.shape(n)) == 3 and not isinstance(net.op(n), GlobalAvgPool)
    ][-1]
    assert net.shape(last_spatial) == final


def test_adaptive_pool_becomes_avgpool_when_divisible():
    net = model("vgg16", 448)  # 14x14 feature map -> AvgPool 2x2/2 -> 7x7
    assert net.op("avgpool") == AvgPool2d(2, 2)
    assert net.shape("avgpool") == (512, 7, 7)
    assert net.total_params == 138_357_544
    assert "avgpool" not in model("vgg16")  # identity at 224 is omitted


@pytest.mark.parametrize(
    ("name", "size", "match"),
    [
        (
            "alexnet",
            64,
            r"model 'alexnet' at input_size 64: layer 'avgpool': "
            r"AdaptiveAvgPool2d\(6\) needs a feature map whose sides are multiples of 6, got 1x1",
        ),
        (
            "alexnet",
            32,
            r"model 'alexnet' at input_size 32: node 'features.12' \(MaxPool2d\): "
            r"kernel=\(3, 3\) does not fit",
        ),
        (
            "vgg16",
            32,
            r"model 'vgg16' at input_size 32: layer 'avgpool': AdaptiveAvgPool2d\(7\) .* got 1x1",
        ),
        ("vgg16", 64, r"model 'vgg16' at input_size 64: .* got 2x2"),
        (
            "lenet5",
            12,
            r"model 'lenet5' at input_size 12: node 'conv2' \(Conv2d\): kernel=\(5, 5\) "
            r"does not fit the height of input shape \(6, 4, 4\)",
        ),
        ("tinynet", 2, r"model 'tinynet' at input_size 2: node 'pool' \(MaxPool2d\)"),
        ("resnet18", 0, r"model 'resnet18': input_size must be a positive int, got 0"),
        ("resnet18", 32.0, r"model 'resnet18': input_size must be a positive int, got 32\.0"),
        ("resnet19", 224, r"unknown model 'resnet19'; known models: alexnet, densenet121, "),
    ],
)
def test_get_rejects(name, size, match):
    with pytest.raises(ValueError, match=match):
        models.get(name, size)


def test_get_returns_fresh_networks():
    a, b = models.get("tinynet"), models.get("tinynet")
    a.meta("fc")["x"] = 1
    assert b.meta("fc") == {}
    assert a.to_dict() == b.to_dict()
