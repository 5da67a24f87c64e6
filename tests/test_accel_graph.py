"""Tests of accel.graph: op validation, shape inference, the Network API and fusion."""

import json
import math
from dataclasses import FrozenInstanceError

import networkx as nx
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from accel.graph import (
    OPS,
    Activation,
    Add,
    AvgPool2d,
    Concat,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    Input,
    Linear,
    MaxPool2d,
    Network,
    conv_output_size,
    fuse_activations,
)


def chain(*ops, shape=(4, 8, 8), name="net"):
    """A network input -> ops[0] -> ops[1] ..., nodes named n0, n1, ..."""
    net = Network(name)
    prev = net.add("x", Input(shape))
    for i, op in enumerate(ops):
        prev = net.add(f"n{i}", op, [prev])
    return net


def diamond():
    """x -> a (conv) -> c (add of a and b); x -> b (conv); c -> pool -> out. Names are
    inserted out of alphabetical order to show that order() follows insertion."""
    net = Network("diamond")
    net.add("x", Input((4, 8, 8)))
    net.add("z_conv", Conv2d(4, 4, 3, padding=1), ["x"])
    net.add("a_conv", Conv2d(4, 4, 1), ["x"])
    net.add("sum", Add("relu"), ["z_conv", "a_conv"])
    net.add("pool", MaxPool2d(2, 2), ["sum"])
    return net


# --- ops: construction ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Conv2d(3, 8, 3), {"kernel": (3, 3), "stride": (1, 1), "padding": (0,) * 4}),
        (lambda: Conv2d(3, 8, (3, 5), 2, 1), {"stride": (2, 2), "padding": (1, 1, 1, 1)}),
        (lambda: Conv2d(3, 8, 3, padding=(1, 2)), {"padding": (1, 1, 2, 2)}),
        (lambda: Conv2d(3, 8, 3, padding=[0, 1, 2, 3]), {"padding": (0, 1, 2, 3)}),
        (
            lambda: Conv2d(np.int64(3), 8, [3, 3], dilation=2),
            {"in_channels": 3, "dilation": (2, 2)},
        ),
        (lambda: MaxPool2d(3, 2, 1), {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1, 1, 1)}),
        (lambda: Input([3, 8, 8]), {"shape": (3, 8, 8)}),
    ],
)
def test_op_fields_are_normalised(make, expected):
    op = make()
    for field, value in expected.items():
        assert getattr(op, field) == value
        assert type(getattr(op, field)) is type(value)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Conv2d(0, 8, 3), r"Conv2d\.in_channels must be an int >= 1, got 0"),
        (lambda: Conv2d(3, 8.0, 3), r"Conv2d\.out_channels must be an int >= 1, got 8\.0"),
        (
            lambda: Conv2d(3, 8, (3, 3, 3)),
            r"Conv2d\.kernel must be an int or 2 ints >= 1, got \(3, 3, 3\)",
        ),
        (lambda: Conv2d(3, 8, 3, stride=(0, 1)), r"Conv2d\.stride .* got \(0, 1\)"),
        (
            lambda: Conv2d(3, 8, 3, padding=-1),
            r"Conv2d\.padding must be an int, \(pad_h, pad_w\) or \(top, "
            r"bottom, left, right\), ints >= 0, got -1",
        ),
        (lambda: Conv2d(3, 8, 3, padding=(1, 1, 1)), r"Conv2d\.padding .* got \(1, 1, 1\)"),
        (lambda: Conv2d(3, 8, 3, padding=(1, -1)), r"Conv2d\.padding .* got \(1, -1\)"),
        (lambda: Conv2d(3, 8, 3, stride=True), r"Conv2d\.stride .* got True"),
        (lambda: Conv2d(3, 8, 3, dilation=0), r"Conv2d\.dilation .* got 0"),
        (lambda: Conv2d(3, 8, 3, groups=2), r"Conv2d\.groups=2 does not divide in_channels=3"),
        (
            lambda: Conv2d(4, 6, 3, groups=4),
            r"Conv2d\.groups=4 does not divide out_channels=6",
        ),
        (lambda: Conv2d(3, 8, 3, bias=1), r"Conv2d\.bias must be a bool, got 1"),
        (
            lambda: Conv2d(3, 8, 3, activation="tanh"),
            r"Conv2d\.activation must be None or one of .*'tanh'",
        ),
        (lambda: Linear(True, 8), r"Linear\.in_features must be an int >= 1, got True"),
        (lambda: Linear(8, 8, activation="gelu"), r"Linear\.activation .* got 'gelu'"),
        (
            lambda: MaxPool2d(3, 2, padding=2),
            r"MaxPool2d\.padding=\(2, 2, 2, 2\) exceeds half of kernel=\(3, 3\)",
        ),
        (lambda: AvgPool2d(2, 2, padding=(0, 0, 0, 2)), r"AvgPool2d\.padding=\(0, 0, 0, 2\)"),
        (lambda: AvgPool2d(2, 2, ceil_mode="yes"), r"AvgPool2d\.ceil_mode must be a bool"),
        (lambda: AvgPool2d(2, 2, count_include_pad=None), r"AvgPool2d\.count_include_pad"),
        (lambda: Add("sigmoid"), r"Add\.activation .* got 'sigmoid'"),
        (lambda: Activation(None), r"Activation\.kind must be one of .* got None"),
        (lambda: Input((3, 8)), r"Input\.shape must be 3 ints >= 1, got \(3, 8\)"),
        (lambda: Input(8), r"Input\.shape must be 3 ints >= 1, got 8"),
        (lambda: Input((0, 8, 8)), r"Input\.shape .* got \(0, 8, 8\)"),
    ],
)
def test_op_rejects_invalid_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_ops_are_frozen_hashable_and_comparable():
    op = Conv2d(3, 8, 3)
    with pytest.raises(FrozenInstanceError):
        op.stride = (2, 2)
    assert op == Conv2d(3, 8, (3, 3), (1, 1), (0, 0, 0, 0))
    assert len({op, Conv2d(3, 8, 3), MaxPool2d(2, 2), AvgPool2d(2, 2)}) == 3


def test_op_registry_names_every_op():
    assert set(OPS) == {
        "Input",
        "Conv2d",
        "ConvTranspose2d",
        "Linear",
        "MaxPool2d",
        "AvgPool2d",
        "GlobalAvgPool",
        "Add",
        "Mul",
        "Concat",
        "Flatten",
        "Activation",
        "Pointwise",
        "Upsample",
        "ChannelSlice",
        "DepthToSpace",
        "PixelShuffle",
        "ChannelShuffle",
        "SpaceToDepth",
        "PRelu",
        "HostOp",
    }


# --- output sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((224, 7, 2, 6, 1), {}, 112),  # ResNet conv1
        ((112, 3, 2, 2, 1), {}, 56),  # ResNet maxpool
        ((224, 11, 4, 4, 1), {}, 55),  # AlexNet conv1
        ((8, 3, 1, 0, 2), {}, 4),  # dilation 2: extent 5
        ((5, 5, 1, 0, 1), {}, 1),  # kernel == input
        ((6, 3, 2, 0, 1), {}, 2),  # floor
        ((6, 3, 2, 0, 1), {"ceil_mode": True}, 3),  # ceil: one partial window
        ((112, 3, 2, 0, 1), {"ceil_mode": True}, 56),  # GoogLeNet-style ceil pool
        # padded input of 7 = 1 + 5 + 1: windows would start at 0, 2, 4, 6; the one at 6
        # lies in the end padding, so PyTorch drops it
        ((5, 2, 2, 2, 1), {"ceil_mode": True, "pad_begin": 1}, 3),
        ((5, 2, 2, 2, 1), {}, 3),
    ],
)
def test_conv_output_size_examples(args, kwargs, expected):
    assert conv_output_size(*args, **kwargs) == expected


def test_conv_output_size_rejects_kernel_larger_than_padded_input():
    with pytest.raises(
        ValueError,
        match=r"dilated kernel extent 5 is larger than the padded "
        r"input 3 \+ 1",
    ):
        conv_output_size(3, 3, 1, 1, 2)


def _window_starts(size, kernel, stride, pad_begin, pad_end, dilation, ceil_mode):
    """Naive enumeration of PyTorch's windows: step across the padded input; floor mode
    takes every window that fits; ceil mode takes windows while the previous one did not
    reach the end, and only those starting before the end padding."""
    length, span = size + pad_begin + pad_end, dilation * (kernel - 1) + 1
    starts = []
    for start in range(0, length, stride):
        if not ceil_mode and start + span <= length:
            starts.append(start)
        if ceil_mode and start < size + pad_begin and (not starts or starts[-1] + span < length):
            starts.append(start)
    return starts


@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 5),
    pad_begin=st.integers(0, 4),
    pad_end=st.integers(0, 4),
    dilation=st.integers(1, 3),
    ceil_mode=st.booleans(),
)
def test_conv_output_size_matches_window_enumeration(
    size, kernel, stride, pad_begin, pad_end, dilation, ceil_mode
):
    if ceil_mode:  # pools only: undilated, padding at most half the kernel (as PyTorch)
        assume(dilation == 1 and max(pad_begin, pad_end) <= kernel // 2)
    starts = _window_starts(size, kernel, stride, pad_begin, pad_end, dilation, ceil_mode)
    if dilation * (kernel - 1) + 1 > size + pad_begin + pad_end:
        with pytest.raises(ValueError):
            conv_output_size(
                size,
                kernel,
                stride,
                pad_begin + pad_end,
                dilation,
                ceil_mode=ceil_mode,
                pad_begin=pad_begin,
            )
    else:
        assert conv_output_size(
            size,
            kernel,
            stride,
            pad_begin + pad_end,
            dilation,
            ceil_mode=ceil_mode,
            pad_begin=pad_begin,
        ) == len(starts)


# --- shape inference --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "in_shape", "out_shape"),
    [
        (Conv2d(4, 6, 3), (4, 8, 8), (6, 6, 6)),
        (Conv2d(4, 6, 3, 2, 1), (4, 8, 8), (6, 4, 4)),
        (Conv2d(4, 6, (1, 3), padding=(0, 0, 1, 1)), (4, 5, 7), (6, 5, 7)),
        (Conv2d(4, 6, 3, padding=(0, 1, 2, 0)), (4, 8, 8), (6, 7, 8)),  # asymmetric
        (Conv2d(4, 6, 3, dilation=(2, 1)), (4, 8, 8), (6, 4, 6)),
        (Conv2d(4, 8, 3, groups=4, padding=1), (4, 8, 8), (8, 8, 8)),
        (Linear(16, 10), (16,), (10,)),
        (Linear(16, 10), (16, 1, 1), (10,)),
        (MaxPool2d(2, 2), (4, 7, 7), (4, 3, 3)),
        (MaxPool2d(2, 2, ceil_mode=True), (4, 7, 7), (4, 4, 4)),
        (MaxPool2d(3, 2, 1), (4, 112, 112), (4, 56, 56)),
        (MaxPool2d(3, 1, 1, dilation=2), (4, 7, 7), (4, 5, 5)),
        (MaxPool2d(3, 2, 1, ceil_mode=True, dilation=(1, 2)), (4, 8, 8), (4, 5, 4)),
        (AvgPool2d(3, 1, 1, count_include_pad=False), (4, 5, 5), (4, 5, 5)),
        (AvgPool2d((2, 3), (2, 3)), (4, 6, 9), (4, 3, 3)),
        (GlobalAvgPool(), (4, 7, 5), (4, 1, 1)),
        (Flatten(), (4, 3, 2), (24,)),
        (Flatten(), (5,), (5,)),
        (Activation("relu6"), (4, 3, 2), (4, 3, 2)),
    ],
)
def test_single_input_shape_inference(op, in_shape, out_shape):
    net = Network("n")
    if len(in_shape) == 3:
        src = net.add("x", Input(in_shape))
    else:  # vectors come from flattening a (F, 1, 1) input
        src = net.add("flat", Flatten(), [net.add("x", Input((in_shape[0], 1, 1)))])
    net.add("y", op, [src])
    assert net.shape("y") == out_shape
    assert net.activation_size("y") == math.prod(out_shape)


def test_multi_input_shape_inference():
    net = Network("n")
    net.add("a", Input((2, 4, 4)))
    net.add("b", Input((3, 4, 4)))
    net.add("c", Input((2, 4, 4)))
    assert net.shape(net.add("cat", Concat(), ["a", "b", "c"])) == (7, 4, 4)
    assert net.shape(net.add("one", Concat(), ["b"])) == (3, 4, 4)
    assert net.shape(net.add("sum", Add(), ["a", "c"])) == (2, 4, 4)
    assert net.shape(net.add("sum3", Add(), ["a", "c", "sum"])) == (2, 4, 4)


# --- Network.add rejections -------------------------------------------------------------


def _fresh():
    net = Network("n")
    net.add("x", Input((4, 8, 8)))
    net.add("small", Input((4, 2, 2)))
    net.add("vec", Flatten(), ["x"])
    return net


@pytest.mark.parametrize(
    ("name", "op", "inputs", "match"),
    [
        ("", Flatten(), ["x"], r"node name must be a non-empty str, got ''"),
        (3, Flatten(), ["x"], r"node name must be a non-empty str, got 3"),
        ("x", Flatten(), ["x"], r"node 'x': duplicate name in network 'n'"),
        ("y", Flatten(), ["nope"], r"node 'y': unknown input 'nope'"),
        ("y", Flatten(), ["y"], r"node 'y': lists itself as an input \(cycle\)"),
        ("y", Add(), ["x", "x"], r"node 'y': input 'x' is listed more than once"),
        ("y", Input((1, 1, 1)), ["x"], r"node 'y' \(Input\): takes 0 inputs, got 1"),
        ("y", Conv2d(4, 4, 1), [], r"node 'y' \(Conv2d\): takes 1 inputs, got 0"),
        ("y", Conv2d(4, 4, 1), ["x", "small"], r"node 'y' \(Conv2d\): takes 1 inputs, got 2"),
        ("y", Add(), ["x"], r"node 'y' \(Add\): takes 2 or more inputs, got 1"),
        ("y", Concat(), [], r"node 'y' \(Concat\): takes 1 or more inputs, got 0"),
        (
            "y",
            Conv2d(3, 8, 3),
            ["x"],
            r"node 'y' \(Conv2d\): in_channels=3 does not match "
            r"the 4 channels of input shape \(4, 8, 8\)",
        ),
        (
            "y",
            Conv2d(4, 8, 3, groups=2),
            ["vec"],
            r"node 'y' \(Conv2d\): expects a \(C, H, W\) input, got shape \(256,\)",
        ),
        (
            "y",
            Conv2d(4, 8, 3),
            ["small"],
            r"node 'y' \(Conv2d\): kernel=\(3, 3\) does not fit "
            r"the height of input shape \(4, 2, 2\)",
        ),
        (
            "y",
            MaxPool2d(3, 1),
            ["small"],
            r"node 'y' \(MaxPool2d\): kernel=\(3, 3\) does not fit the height",
        ),
        (
            "y",
            Linear(100, 10),
            ["vec"],
            r"node 'y' \(Linear\): in_features=100 does not match input shape \(256,\)",
        ),
        (
            "y",
            Linear(4, 10),
            ["x"],
            r"node 'y' \(Linear\): in_features=4 does not match input shape \(4, 8, 8\)",
        ),
        (
            "y",
            Add(),
            ["x", "small"],
            r"node 'y' \(Add\): input shapes differ: \[\(4, 8, 8\), \(4, 2, 2\)\]",
        ),
        ("y", Concat(), ["x", "small"], r"node 'y' \(Concat\): input H x W differ"),
        ("y", Concat(), ["x", "vec"], r"node 'y' \(Concat\): expects a \(C, H, W\) input"),
        ("y", GlobalAvgPool(), ["vec"], r"node 'y' \(GlobalAvgPool\): expects a \(C, H, W\)"),
    ],
)
def test_add_rejects_inconsistent_node(name, op, inputs, match):
    net = _fresh()
    with pytest.raises(ValueError, match=match):
        net.add(name, op, inputs)
    assert len(net) == 3  # nothing was added


def test_add_dilated_kernel_message():
    net = Network("n")
    net.add("x", Input((4, 8, 4)))
    with pytest.raises(
        ValueError,
        match=r"node 'y' \(Conv2d\): kernel=\(1, 3\) does not fit "
        r"the width of input shape \(4, 8, 4\) with "
        r"padding=\(0, 0, 0, 0\), dilation=\(1, 2\): dilated "
        r"kernel extent 5 is larger than the padded input 4",
    ):
        net.add("y", Conv2d(4, 8, (1, 3), dilation=(1, 2)), ["x"])


def test_add_rejects_wrong_argument_types():
    net = _fresh()
    with pytest.raises(TypeError, match=r"node 'y': op must be an accel\.graph\.Op, got 'relu'"):
        net.add("y", "relu", ["x"])
    with pytest.raises(
        TypeError,
        match=r"node 'y': inputs must be a sequence of node names, "
        r"got the str 'x'",
    ):
        net.add("y", Flatten(), "x")


def test_network_name_is_validated():
    with pytest.raises(ValueError, match=r"network name must be a non-empty str, got None"):
        Network(None)


# --- Network queries --------------------------------------------------------------------


def test_queries_on_diamond():
    net = diamond()
    assert net.name == "diamond" and len(net) == 5 and "sum" in net and "nope" not in net
    assert net.order() == ["x", "z_conv", "a_conv", "sum", "pool"]
    assert net.inputs("sum") == ["z_conv", "a_conv"]
    assert net.graph.edges["a_conv", "sum"]["index"] == 1
    assert net.consumers("x") == ["z_conv", "a_conv"]
    assert net.consumers("pool") == []
    assert net.input_names == ["x"]
    assert net.output_names == ["pool"]
    assert net.layers() == ["z_conv", "a_conv", "sum", "pool"]
    assert net.op("sum") == Add("relu")
    assert net.shape("pool") == (4, 4, 4)
    assert repr(net) == "Network('diamond', 5 nodes)"


def test_order_is_deterministic_and_topological():
    net = Network("multi")
    net.add("in_b", Input((2, 4, 4)))
    net.add("in_a", Input((2, 4, 4)))
    net.add("m", Add(), ["in_a", "in_b"])
    net.add("k", Flatten(), ["in_b"])
    assert net.order() == ["in_b", "in_a", "m", "k"] == net.order()
    assert net.input_names == ["in_b", "in_a"]
    assert net.output_names == ["m", "k"]
    assert nx.is_directed_acyclic_graph(net.graph)
    assert diamond().order() == diamond().order()


def test_graph_view_is_read_only():
    net = diamond()
    assert isinstance(net.graph, nx.DiGraph)
    assert net.graph.nodes["sum"]["op"] == Add("relu")
    with pytest.raises(nx.NetworkXError):
        net.graph.add_node("extra")


def test_unknown_node_lookup_names_it():
    net = diamond()
    for query in (
        net.op,
        net.shape,
        net.inputs,
        net.consumers,
        net.macs,
        net.params,
        net.weights,
        net.meta,
        net.activation_size,
    ):
        with pytest.raises(KeyError, match=r"network 'diamond' has no node named 'nope'"):
            query("nope")


def test_macs_and_params():
    net = Network("n")
    net.add("x", Input((4, 8, 8)))
    net.add("conv", Conv2d(4, 6, 3, 2, 1), ["x"])  # 6x4x4
    net.add("dw", Conv2d(6, 12, 3, padding=1, groups=6, bias=False), ["conv"])  # 12x4x4
    net.add("pool", AvgPool2d(2, 2), ["dw"])
    net.add("flat", Flatten(), ["pool"])  # 48
    net.add("fc", Linear(48, 10), ["flat"])
    net.add("fc2", Linear(10, 5, bias=False), ["fc"])
    expected_macs = {"conv": 6 * 4 * 4 * 4 * 9, "dw": 12 * 4 * 4 * 1 * 9, "fc": 480, "fc2": 50}
    expected_params = {"conv": 6 * 4 * 9 + 6, "dw": 12 * 9, "fc": 480 + 10, "fc2": 50}
    for name in net.order():
        assert net.macs(name) == expected_macs.get(name, 0)
        assert net.params(name) == expected_params.get(name, 0)
    assert net.total_macs == sum(expected_macs.values())
    assert net.total_params == sum(expected_params.values())
    assert net.activation_size("flat") == 48


# --- weights and meta -------------------------------------------------------------------


def test_set_weights_round_trip_read_only():
    net = diamond()
    w = np.arange(4 * 4 * 9, dtype=np.int8).reshape(4, 4, 3, 3)
    b = np.zeros(4, dtype=np.int32)
    net.set_weights("z_conv", weight=w, bias=b)
    stored = net.weights("z_conv")
    np.testing.assert_array_equal(stored["weight"], w, strict=True)
    np.testing.assert_array_equal(stored["bias"], b, strict=True)
    assert not stored["weight"].flags.writeable
    w[0, 0, 0, 0] = 99  # a copy is stored
    assert net.weights("z_conv")["weight"][0, 0, 0, 0] == 0
    assert net.weights("a_conv") == {}


def test_set_weights_linear_without_bias():
    net = chain(Flatten(), Linear(4 * 8 * 8, 3, bias=False))
    net.set_weights("n1", weight=np.ones((3, 256)))
    assert set(net.weights("n1")) == {"weight"}


@pytest.mark.parametrize(
    ("node", "kwargs", "match"),
    [
        ("pool", {"weight": np.ones(1)}, r"node 'pool' \(MaxPool2d\) has no weights"),
        (
            "z_conv",
            {"weight": np.ones((4, 4, 3)), "bias": np.ones(4)},
            r"node 'z_conv': weight shape \(4, 4, 3\) != expected \(4, 4, 3, 3\)",
        ),
        (
            "z_conv",
            {"weight": np.ones((4, 4, 3, 3)), "bias": np.ones(5)},
            r"node 'z_conv': bias shape \(5,\) != expected \(4,\)",
        ),
        (
            "z_conv",
            {"weight": np.ones((4, 4, 3, 3))},
            r"node 'z_conv': bias must be an integer or float ndarray, got NoneType None",
        ),
        (
            "z_conv",
            {"weight": [[1]], "bias": np.ones(4)},
            r"node 'z_conv': weight must be an integer or float ndarray, got list",
        ),
        (
            "z_conv",
            {"weight": np.ones((4, 4, 3, 3), dtype=bool), "bias": np.ones(4)},
            r"node 'z_conv': weight must be .* got an ndarray of dtype bool",
        ),
    ],
)
def test_set_weights_rejects(node, kwargs, match):
    net = diamond()
    with pytest.raises(ValueError, match=match):
        net.set_weights(node, **kwargs)
    assert net.weights(node) == {}


def test_set_weights_rejects_bias_when_op_has_none():
    net = chain(Conv2d(4, 2, 1, bias=False))
    with pytest.raises(ValueError, match=r"node 'n0': bias given but the op has bias=False"):
        net.set_weights("n0", weight=np.ones((2, 4, 1, 1)), bias=np.ones(2))


def test_depthwise_weight_shape():
    net = chain(Conv2d(4, 8, 3, groups=4))
    net.set_weights("n0", weight=np.ones((8, 1, 3, 3)), bias=np.ones(8))
    assert net.weights("n0")["weight"].shape == (8, 1, 3, 3)


def test_meta_is_a_live_per_node_dict():
    net = diamond()
    net.meta("sum")["scale"] = 0.5
    assert net.meta("sum") == {"scale": 0.5}
    assert net.meta("pool") == {}


# --- reporting --------------------------------------------------------------------------


def test_summary_table():
    net = diamond()
    text = net.summary()
    lines = text.splitlines()
    assert lines[0] == "Network 'diamond'"
    assert lines[1].split() == ["name", "op", "output", "MACs", "params"]
    assert lines[3].split() == ["x", "Input", "4x8x8", "0", "0"]
    assert lines[4].split() == [
        "z_conv",
        "Conv2d",
        "kernel=3x3",
        "padding=1,1,1,1",
        "4x8x8",
        "9,216",
        "148",
    ]
    assert lines[6].split() == ["sum", "Add", "activation=relu", "4x8x8", "0", "0"]
    assert lines[-1].split() == ["total", "4", "layers", "10,240", "168"]
    assert len({len(line) for line in lines[1:3]}) == 1  # header and rule align


def test_to_dict_is_json_round_trippable():
    net = diamond()
    net.meta("sum")["scale"] = np.float32(0.5)  # meta is not exported
    data = net.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["inputs"] == ["x"] and data["outputs"] == ["pool"]
    assert data["total_macs"] == net.total_macs and data["total_params"] == net.total_params
    assert data["nodes"][3] == {
        "name": "sum",
        "op": "Add",
        "attrs": {"activation": "relu"},
        "inputs": ["z_conv", "a_conv"],
        "shape": [4, 8, 8],
        "macs": 0,
        "params": 0,
    }
    rebuilt = Network.from_dict(json.loads(json.dumps(data)))
    assert rebuilt.to_dict() == data
    assert [rebuilt.op(n) for n in rebuilt.order()] == [net.op(n) for n in net.order()]


def test_from_dict_rejects_unknown_op():
    data = diamond().to_dict()
    data["nodes"][1]["op"] = "Softmax"
    with pytest.raises(ValueError, match=r"node 'z_conv': unknown op 'Softmax'"):
        Network.from_dict(data)


# --- fuse_activations -------------------------------------------------------------------


def _importer_style():
    """conv -> relu -> (pool, fc path); add -> relu6; linear -> relu6 -> relu (a chain)."""
    net = Network("imported")
    net.add("x", Input((4, 4, 4)))
    net.add("conv", Conv2d(4, 4, 3, padding=1), ["x"])
    net.add("conv_relu", Activation("relu"), ["conv"])
    net.add("sum", Add(), ["conv_relu", "x"])
    net.add("sum_relu6", Activation("relu6"), ["sum"])
    net.add("flat", Flatten(), ["sum_relu6"])
    net.add("fc", Linear(64, 8), ["flat"])
    net.add("fc_relu6", Activation("relu6"), ["fc"])
    net.add("fc_relu", Activation("relu"), ["fc_relu6"])
    return net


def test_fuse_activations_folds_and_rewires():
    net = _importer_style()
    net.set_weights("conv", weight=np.ones((4, 4, 3, 3)), bias=np.zeros(4))
    net.meta("fc")["scale"] = 2.0
    fused = fuse_activations(net)
    assert fused.order() == ["x", "conv", "sum", "flat", "fc"]
    assert fused.op("conv") == Conv2d(4, 4, 3, padding=1, activation="relu")
    assert fused.op("sum") == Add("relu6")
    assert fused.op("fc") == Linear(64, 8, activation="relu6")  # relu6 then relu
    assert fused.inputs("sum") == ["conv", "x"]
    assert fused.inputs("flat") == ["sum"]
    assert fused.output_names == ["fc"]
    np.testing.assert_array_equal(fused.weights("conv")["weight"], np.ones((4, 4, 3, 3)))
    assert fused.meta("fc") == {"scale": 2.0}
    fused.meta("fc")["scale"] = 3.0  # meta is copied, the original is untouched
    assert net.meta("fc") == {"scale": 2.0}
    assert len(net) == 9 and net.op("conv").activation is None


@pytest.mark.parametrize(
    ("existing", "added", "result"),
    [
        (None, "relu", "relu"),
        (None, "relu6", "relu6"),
        ("relu", "relu", "relu"),
        ("relu", "relu6", "relu6"),
        ("relu6", "relu", "relu6"),
        ("relu6", "relu6", "relu6"),
    ],
)
def test_fuse_activations_composes_with_existing_activation(existing, added, result):
    fused = fuse_activations(chain(Conv2d(4, 4, 1, activation=existing), Activation(added)))
    assert fused.order() == ["x", "n0"]
    assert fused.op("n0").activation == result


@pytest.mark.parametrize(
    "build",
    [
        # producer has a second consumer: its pre-activation output is needed
        lambda: _branching(),
        # producer cannot carry an activation
        lambda: chain(MaxPool2d(2, 2), Activation("relu")),
        lambda: chain(Activation("relu")),
        # the activation node carries metadata (e.g. its own quantisation)
        lambda: _with_meta(),
    ],
)
def test_fuse_activations_leaves_unfusable_nodes(build):
    net = build()
    fused = fuse_activations(net)
    assert fused.to_dict() == net.to_dict()


def _branching():
    net = chain(Conv2d(4, 4, 1))
    net.add("act", Activation("relu"), ["n0"])
    net.add("other", Flatten(), ["n0"])
    return net


def _with_meta():
    net = chain(Conv2d(4, 4, 1), Activation("relu"))
    net.meta("n1")["scale"] = 0.1
    return net
