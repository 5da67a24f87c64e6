"""ONNX's own backend conformance cases for the convolution family, from the installed wheel
(``onnx/backend/test/data/pytorch-converted/``, exported from PyTorch at opset 6): each loads
as shipped (the opset upgraded to 13), and the float golden model
(``accel.executor.run_network`` of the imported network) equals the shipped expected output.

Tolerance: ``rtol=1e-5`` and ``atol=1e-5 * max(1, max|expected|)``. The expected outputs are
PyTorch float32; our accelerator ops compute in float64 and host ops in float32 (with
``onnx.reference``). float32 rounds at 2**-24 = 6e-8 relative, and the largest reductions here
(a 4x3x3 convolution window, a 200-tap max pool that only compares) accumulate at most a few
1e-7 of the output's magnitude: the largest difference measured is 4.9e-7 absolute, 2e-7
relative to the largest output. The tolerance leaves a factor 20; anything structurally
wrong (a pad on the wrong side, a wrong window) is off by whole input values.

Every case directory in the wheel is listed in :data:`OUTCOMES` with what must happen: it
passes with exactly the listed host ops (every other op through our own golden ops), or it is
rejected with the listed message. A case the table does not know (a newer wheel) fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from accel import executor
from accel.frontends.onnx import load, tensor_map
from accel.graph import HostOp

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"
CASES = sorted(p.name for p in DATA.iterdir() if (p / "model.onnx").is_file())

RANK5 = (
    r"node '\d+' \({op}\): input \(N, [\d, ]+\) has rank 5: 3-D {op} is not supported; only "
    r"1-D \(N, C, L\) and 2-D \(N, C, H, W\) inputs are"
)
EMBEDDING = r"input '0': element type INT64 is not supported \(float, double, float16 or int8\)"

#: case -> the host ops it runs with (a tuple; empty: all on the accelerator's golden ops), or
#: the message it is rejected with (a str). The family of issue 12 is every 1-D and 2-D case
#: of Conv, ConvTranspose, pools, BatchNorm, PReLU, the activations, pads, PixelShuffle,
#: Softmax, LogSoftmax and Linear; the others (3-D, Embedding, GLU, Softmin, Softplus,
#: Softsign, PoissonNLLLoss) are listed as they are.
OUTCOMES: dict[str, tuple[str, ...] | str] = {
    "test_AvgPool1d": (),
    "test_AvgPool1d_stride": (),
    "test_AvgPool2d": (),
    "test_AvgPool2d_stride": (),
    "test_AvgPool3d": RANK5.format(op="AveragePool"),
    "test_AvgPool3d_stride": RANK5.format(op="AveragePool"),
    "test_AvgPool3d_stride1_pad0_gpu_input": RANK5.format(op="AveragePool"),
    "test_BatchNorm1d_3d_input_eval": (),
    "test_BatchNorm2d_eval": (),
    "test_BatchNorm2d_momentum_eval": (),
    "test_BatchNorm3d_eval": ("BatchNormalization",),
    "test_BatchNorm3d_momentum_eval": ("BatchNormalization",),
    "test_ConstantPad2d": ("Pad",),
    "test_Conv1d": (),
    "test_Conv1d_dilated": (),
    "test_Conv1d_groups": (),
    "test_Conv1d_pad1": (),
    "test_Conv1d_pad1size1": (),
    "test_Conv1d_pad2": (),
    "test_Conv1d_pad2size1": (),
    "test_Conv1d_stride": (),
    "test_Conv2d": (),
    "test_Conv2d_depthwise": (),
    "test_Conv2d_depthwise_padded": (),
    "test_Conv2d_depthwise_strided": (),
    "test_Conv2d_depthwise_with_multiplier": (),
    "test_Conv2d_dilated": (),
    "test_Conv2d_groups": (),
    "test_Conv2d_groups_thnn": (),
    "test_Conv2d_no_bias": (),
    "test_Conv2d_padding": (),
    "test_Conv2d_strided": (),
    "test_Conv3d": RANK5.format(op="Conv"),
    "test_Conv3d_dilated": RANK5.format(op="Conv"),
    "test_Conv3d_dilated_strided": RANK5.format(op="Conv"),
    "test_Conv3d_groups": RANK5.format(op="Conv"),
    "test_Conv3d_no_bias": RANK5.format(op="Conv"),
    "test_Conv3d_stride": RANK5.format(op="Conv"),
    "test_Conv3d_stride_padding": RANK5.format(op="Conv"),
    "test_ConvTranspose2d": (),
    "test_ConvTranspose2d_no_bias": (),
    "test_ELU": (),
    "test_Embedding": EMBEDDING,
    "test_Embedding_sparse": EMBEDDING,
    "test_GLU": ("Split", "Split"),  # the Mul of the two halves runs as a VMUL
    "test_GLU_dim": (),  # its Mul runs as a VMUL
    "test_LeakyReLU": (),
    "test_LeakyReLU_with_negval": (),
    "test_Linear": (),
    "test_Linear_no_bias": (),
    "test_LogSoftmax": ("LogSoftmax",),
    "test_MaxPool1d": (),
    "test_MaxPool1d_stride": (),
    "test_MaxPool1d_stride_padding_dilation": (),
    "test_MaxPool2d": (),
    "test_MaxPool2d_stride_padding_dilation": (),
    "test_MaxPool3d": RANK5.format(op="MaxPool"),
    "test_MaxPool3d_stride": RANK5.format(op="MaxPool"),
    "test_MaxPool3d_stride_padding": RANK5.format(op="MaxPool"),
    "test_PReLU_1d": (),
    "test_PReLU_1d_multiparam": ("PRelu",),
    "test_PReLU_2d": (),
    "test_PReLU_2d_multiparam": ("PRelu",),
    "test_PReLU_3d": (),
    "test_PReLU_3d_multiparam": ("PRelu",),
    "test_PixelShuffle": (),
    "test_PoissonNLLLLoss_no_reduce": re.escape(
        "node '3' (Mul): output 0 ('3') is [10, 10] for the batch of 10 but [10, 10] for one "
        "image: the op depends on the number of images (a constant input spans or fixes the batch "
        "axis), and host ops run image by image"
    ),
    "test_ReLU": (),
    "test_ReflectionPad2d": ("Pad",),
    "test_ReplicationPad2d": ("Pad",),
    "test_SELU": (),
    "test_Sigmoid": (),
    "test_Softmax": ("Softmax",),
    "test_Softmin": ("Neg", "Softmax"),
    "test_Softplus": (),
    "test_Softsign": ("Abs", "Add", "Div"),
    "test_Tanh": (),
    "test_ZeroPad2d": ("Pad",),
    "test_log_softmax_dim3": ("LogSoftmax",),
    "test_log_softmax_lastdim": ("LogSoftmax",),
    "test_softmax_functional_dim3": ("Softmax",),
    "test_softmax_lastdim": ("Softmax",),
}


#: The cases outside the family of issue 12 (3-D, and other PyTorch modules).
OUTSIDE_FAMILY = {
    *(c for c in OUTCOMES if "3d" in c.lower() and "3d_input" not in c),
    "test_Embedding",
    "test_Embedding_sparse",
    "test_GLU",
    "test_GLU_dim",
    "test_PoissonNLLLLoss_no_reduce",
    "test_Softmin",
    "test_Softplus",
    "test_Softsign",
}


def tensors(directory: Path, kind: str) -> list[np.ndarray]:
    files = sorted(directory.glob(f"{kind}_*.pb"), key=lambda p: int(p.stem.split("_")[-1]))
    return [numpy_helper.to_array(onnx.load_tensor(str(f))) for f in files]


def test_every_case_of_the_wheel_has_an_outcome():
    assert CASES, f"no conformance data under {DATA}"
    assert sorted(OUTCOMES) == CASES
    passing = [c for c in CASES if isinstance(OUTCOMES[c], tuple)]
    on_accelerator = [c for c in passing if not OUTCOMES[c]]
    family = [c for c in CASES if c not in OUTSIDE_FAMILY]
    print(
        f"{len(passing)} of {len(CASES)} cases pass, {len(on_accelerator)} of them with no "
        f"host op; {len(CASES) - len(passing)} rejected by name; the 1-D/2-D family: "
        f"{sum(c in passing for c in family)} of {len(family)} pass"
    )
    assert all(c in passing for c in family)
    assert (len(CASES), len(passing), len(on_accelerator), len(family)) == (82, 66, 48, 57)


@pytest.mark.parametrize("case", CASES)
def test_conformance_case(case):
    directory = DATA / case
    outcome = OUTCOMES.get(case)
    assert outcome is not None, f"{case} is not in OUTCOMES"
    if isinstance(outcome, str):
        with pytest.raises(ValueError, match=f"^{outcome}$"):
            load(directory / "model.onnx")
        return
    network = load(directory / "model.onnx")
    host = tuple(
        network.op(n).op_type for n in network.order() if isinstance(network.op(n), HostOp)
    )
    assert host == outcome
    model = onnx.load(str(directory / "model.onnx"))
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    outputs = [o.name for o in model.graph.output]
    nodes = tensor_map(network)
    for data in sorted(directory.glob("test_data_set_*")):
        feeds = {
            nodes[name]: x.reshape(len(x), *network.shape(nodes[name]))
            for name, x in zip(names, tensors(data, "input"), strict=True)
        }
        got = executor.run_network(network, feeds)
        for name, expected in zip(outputs, tensors(data, "output"), strict=True):
            actual = got[nodes[name]].reshape(expected.shape)
            atol = 1e-5 * max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=atol)


# ---------------------------------------------------------------------------------------
# The ONNX model zoo's graphs shipped in the wheel (onnx/backend/test/data/light/): opset 9,
# weights made by ConstantOfShape (constant values), expected outputs for the input
# arange(n) / n that ONNX's backend test runner feeds them.

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"

#: model -> (its ops that run on the host, with counts; ONNX's rtol for it)
ZOO: dict[str, tuple[dict[str, int], float]] = {
    "bvlc_alexnet": ({"LRN": 2, "Softmax": 1}, 1e-3),
    "densenet121": ({}, 2e-3),
    "inception_v1": ({"LRN": 2, "Softmax": 1}, 1e-3),
    "inception_v2": ({"AveragePool": 7, "Softmax": 1}, 1e-3),
    "resnet50": ({"Softmax": 1}, 1e-3),
    "shufflenet": ({"AveragePool": 3, "Softmax": 1}, 1e-3),  # its 16 shuffles: ChannelShuffle
    "squeezenet": ({"Reshape": 1, "Softmax": 1}, 1e-3),
    "vgg19": ({"Softmax": 1}, 1e-3),
    "zfnet512": ({"LRN": 2, "Softmax": 1}, 1e-3),
}


def test_every_light_model_of_the_wheel_is_listed():
    shipped = sorted(p.stem.removeprefix("light_") for p in LIGHT.glob("light_*.onnx"))
    assert shipped == sorted(ZOO)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO))
def test_light_model_zoo(name):
    """Imports (opset 9 upgraded), runs in the float golden model, equals the shipped output
    within ONNX's own tolerance (rtol 1e-3, 2e-3 for DenseNet; atol 1e-7), and onnxruntime on
    one random input within 1e-4 of the largest output (float64 against float32 through up to
    121 layers)."""
    import onnxruntime as ort

    path = LIGHT / f"light_{name}.onnx"
    expected_host, rtol = ZOO[name]
    network = load(path)
    host: dict[str, int] = {}
    for node in network.order():
        if isinstance(network.op(node), HostOp):
            host[network.op(node).op_type] = host.get(network.op(node).op_type, 0) + 1
    assert host == expected_host
    model = onnx.load(str(path))
    (x_name,) = [
        i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    (y_name,) = [o.name for o in model.graph.output]
    node_x, node_y = tensor_map(network)[x_name], tensor_map(network)[y_name]
    shape = (1, *network.shape(node_x))
    x = (np.arange(np.prod(shape)).reshape(shape) / np.prod(shape)).astype(np.float32)
    (expected,) = tensors(LIGHT, f"light_{name}_output")
    got = executor.run_network(network, {node_x: x})[node_y].reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-7)

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    (reference,) = session.run(None, {x_name: x})
    got = executor.run_network(network, {node_x: x})[node_y].reshape(reference.shape)
    assert np.isfinite(got).all()
    atol = 1e-4 * float(np.abs(reference).max())
    np.testing.assert_allclose(got, reference, rtol=1e-4, atol=atol)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet121", "inception_v1", "shufflenet", "squeezenet"])
def test_light_model_runs_on_the_accelerator_bit_exact(name):
    """At its native size on `edge`: quantised, cut into segments around its host layers,
    every segment on the cycle model, every output equal to the int8 golden model."""
    import sim
    from accel import config, deploy, graph, ptq, synthetic

    qnet = ptq.quantize(graph.fuse_activations(load(LIGHT / f"light_{name}.onnx")), seed=0)
    deployment = deploy.deploy(qnet, config.preset("edge"))
    inputs = synthetic.random_int8_inputs(qnet)
    run = deploy.run(deployment, inputs, sim.run)
    for output, want in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(run.outputs[output].reshape(want.shape), want, strict=True)
    assert run.total_cycles > 0 and deployment.segments
