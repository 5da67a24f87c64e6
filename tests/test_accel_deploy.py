"""Networks the accelerator runs in part: segments around host ops, bit-exact end to end;
the command line simulates and verifies them and says what runs where."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper

import sim
from accel import config, deploy, executor, graph, synthetic
from accel.cli import main
from accel.compiler import CompileError, compile
from accel.host import host_op
from tests.layers import quantized, zoo_qnet

OPSET = [helper.make_opsetid("", 13)]


def softmax(features: int) -> graph.HostOp:
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    return host_op(node, [("x", (features,))], {}, (features,), (features,), OPSET)


def sigmoid(shape: tuple[int, int, int]) -> graph.HostOp:
    return host_op(
        helper.make_node("Sigmoid", ["x"], ["y"]), [("x", shape)], {}, shape, shape, OPSET
    )


def se_net() -> graph.Network:
    """conv -> sigmoid (host) -> conv + residual -> pool -> fc -> softmax (host)."""
    net = graph.Network("hosted")
    net.add("input", graph.Input((3, 8, 8)))
    net.add("conv", graph.Conv2d(3, 8, 3, padding=1, activation="relu"), ["input"])
    net.add("sig", sigmoid((8, 8, 8)), ["conv"])
    net.add("conv2", graph.Conv2d(8, 8, 3, padding=1), ["sig"])
    net.add("add", graph.Add(), ["conv2", "conv"])
    net.add("gap", graph.GlobalAvgPool(), ["add"])
    net.add("flat", graph.Flatten(), ["gap"])
    net.add("fc", graph.Linear(8, 10), ["flat"])
    net.add("softmax", softmax(10), ["fc"])
    return net


@pytest.mark.parametrize("preset", ["tiny", "edge"])
def test_segments_and_host_ops_run_bit_exact_end_to_end(preset):
    qnet = quantized(se_net())
    deployment = deploy.deploy(qnet, config.preset(preset))
    kinds = [
        (type(s).__name__, getattr(s, "layers", getattr(s, "node", None))) for s in deployment.steps
    ]
    assert kinds == [
        ("Segment", ("conv",)),
        ("HostStep", "sig"),
        ("Segment", ("conv2", "add", "gap", "flat", "fc")),
        ("HostStep", "softmax"),
    ]
    first, second = deployment.segments
    assert (first.inputs, first.outputs) == (("input",), ("conv",))
    assert (second.inputs, second.outputs) == (("sig", "conv"), ("fc",))
    inputs = synthetic.random_int8_inputs(qnet)
    run = deploy.run(deployment, inputs, sim.run)
    golden = executor.trace_network(qnet, inputs)
    for name in ("conv", "sig", "fc", "softmax"):
        np.testing.assert_array_equal(run.values[name].reshape(golden[name].shape), golden[name])
    assert set(run.outputs) == {"softmax"}
    assert run.total_cycles == sum(r.total_cycles for r in run.results) > 0
    # The host writes sig and conv into segment 1 and reads conv and fc back.
    assert run.boundary_bytes == 8 * 8 * 8 * 3 + 10


def test_a_network_without_host_ops_is_compiled_exactly_as_compile_compiles_it():
    qnet = zoo_qnet("tinynet")
    deployment = deploy.deploy(qnet, config.preset("tiny"))
    assert deployment.whole
    assert (
        deployment.segments[0].program.to_bytes() == compile(qnet, config.preset("tiny")).to_bytes()
    )


def test_host_ops_off_is_an_error_naming_the_node_and_op():
    with pytest.raises(CompileError, match=r"^layer 'sig' \(HostOp Sigmoid\) runs on the host"):
        deploy.deploy(quantized(se_net()), config.preset("tiny"), host_ops=False)


@pytest.fixture
def hosted(monkeypatch):
    """`accel ... hosted` loads :func:`se_net`."""
    monkeypatch.setattr("accel.cli.load_network", lambda args: se_net())


def test_simulate_shows_the_host_ops_and_the_boundary(capsys, hosted):
    assert main(["simulate", "hosted", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "sig      8x8x8" in out and "host" in out
    host = "host: 2 op(s) (HostOp Sigmoid 'sig', HostOp Softmax 'softmax')"
    assert f"{host}; accelerator: 6 of 8 layers" in out
    assert main(["simulate", "hosted", "--preset", "tiny", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in doc["host_ops"]] == ["sig", "softmax"]
    assert [layer["runs_on"] for layer in doc["layers"]].count("host") == 2
    assert doc["boundary_bytes"] == 1546 and len(doc["segments"]) == 2
    assert main(["simulate", "hosted", "--preset", "tiny", "--no-host"]) == 2
    assert "runs on the host, and host ops are off (--no-host)" in capsys.readouterr().err


def test_compile_needs_a_network_the_accelerator_runs_whole(capsys, hosted, tmp_path):
    assert main(["compile", "hosted", "--preset", "tiny", "-o", str(tmp_path / "p.bin")]) == 2
    err = capsys.readouterr().err
    assert "accel compile writes one program, but 'hosted' runs in 2 accelerator segments" in err
    assert not (tmp_path / "p.bin").exists()


@pytest.mark.parametrize("backend", ["amaranth", "verilator"])
def test_verify_checks_segments_and_host_ops(capsys, hosted, backend):
    status = main(["verify", "hosted", "--preset", "tiny", "--backend", backend, "-q"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "HostOp Sigmoid (host)" in out and "HostOp Softmax (host)" in out
    assert f"{backend} vs model on 'tiny': PASS (counters equal)" in out


def test_report_of_a_batch_with_host_steps_is_image_by_image(capsys, hosted, tmp_path):
    import html

    from accel import batch

    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    assert main(["report", "hosted", "--preset", "tiny", "--batch", "3", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "report.json").read_text())
    one = doc["summary"]["total_cycles"]
    assert doc["batch"]["total_cycles"] == 3 * one and not doc["batch"]["weights_resident"]
    assert "batch of 3 images (image by image, one simulated, cycles-only)" in printed
    page = (out / "report.html").read_text()
    assert f"Weight reuse: {html.escape(batch.IMAGE_BY_IMAGE_NOTE)}." in page
    assert f"total cycles (one image)<b>{one:,}</b>" in page
    assert "the tables and plots below are one image" in page


def test_report_shows_the_partition(capsys, hosted, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    assert main(["report", "hosted", "--preset", "tiny", "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert "in 2 segments around 2 host step(s)" in printed.out
    assert "no trace.json" in printed.err
    assert sorted(p.name for p in out.iterdir()) == [
        "layers.csv",
        "occupancy.csv",
        "report.html",
        "report.json",
    ]
    doc = json.loads((out / "report.json").read_text())
    split = doc["partition"]
    assert [(s["runs_on"], s["name"], s["kind"]) for s in split["steps"]] == [
        ("accelerator", "segment 0", "segment"),
        ("host", "sig", "HostOp Sigmoid"),
        ("accelerator", "segment 1", "segment"),
        ("host", "softmax", "HostOp Softmax"),
    ]
    assert split["steps"][2]["layers"] == ["conv2", "add", "gap", "flat", "fc"]
    # segment 0 hands conv (512 B) to the host; segment 1 takes sig and conv, gives fc.
    boundary = [(s["host_writes_bytes"], s["host_reads_bytes"]) for s in split["steps"]]
    assert boundary == [(0, 512), (0, 0), (1024, 10), (0, 0)]
    assert split["boundary_bytes"] == doc["summary"]["boundary_bytes"] == 1546
    assert (split["layers"], split["accelerator_layers"], split["segments"]) == (8, 6, 2)
    assert split["accelerator_mac_share"] == 1.0  # Sigmoid and Softmax have no MACs
    assert doc["summary"]["total_cycles"] == sum(s["cycles"] for s in split["steps"])
    layers = doc["layers"]
    assert [row["layer"] for row in layers] == [
        "conv", "sig", "conv2", "add", "gap", "flat", "fc", "softmax"
    ]  # fmt: skip
    assert [row["runs_on"] for row in layers].count("host") == 2
    assert [row["segment"] for row in layers] == [0, None, 1, 1, 1, 1, 1, None]
    assert sum(row["cycles"] for row in layers) == doc["summary"]["total_cycles"]
    page = (out / "report.html").read_text()
    assert 'id="partition"' in page and page.count('<tr class="host">') == 4  # 2 steps, 2 layers
    assert "[host] sig" in page


def test_host_macs_count_convolutions_only():
    from accel import host

    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    weight = np.zeros((8, 4, 2, 2), np.float32)  # C=8 -> K=4, 2x2
    op = host_op(node, [("x", (8, 5, 5))], {"w": weight}, (4, 10, 10), (4, 10, 10), OPSET)
    assert host.macs(op) == 8 * 4 * 2 * 2 * 5 * 5
    assert host.macs(sigmoid((8, 4, 4))) == 0


# Zoo networks that once had host ops, at reduced sizes: every segment and host op bit-exact end to
# end (`accel simulate MODEL --preset edge --cycles-only` runs them at native size).
HOSTED_ZOO = [
    ("mobilenet_v3_small", 64, set()),  # the SE gate is a VMUL, the activations tables
    ("efficientnet_b0", 32, set()),
    ("shufflenet_v2", 64, set()),  # its split and shuffle are layout ops: one program
    ("unet", 32, set()),  # its ConvTransposes run on the accelerator: one program
    ("densenet121", 32, set()),  # its concatenations run on the accelerator: one program
]


@pytest.mark.parametrize(("name", "size", "kinds"), HOSTED_ZOO)
def test_zoo_networks_with_host_ops_run_bit_exact(name, size, kinds):
    qnet = zoo_qnet(name, size)
    deployment = deploy.deploy(qnet, config.preset("edge"))
    assert {step.kind for step in deployment.host_steps} == kinds
    inputs = synthetic.random_int8_inputs(qnet)
    run = deploy.run(deployment, inputs, sim.run)
    expected = executor.run_network(qnet, inputs)
    assert set(run.outputs) == set(expected)
    for output, value in expected.items():
        np.testing.assert_array_equal(run.outputs[output].reshape(value.shape), value)


def test_a_network_of_host_ops_only_simulates_at_zero_accelerator_cycles(capsys, tmp_path):
    """ONNX's own one-Relu model: nothing for the accelerator (no segment), so 0 cycles and
    the host op, in every format; it once ended in an IndexError. Its report shows no MAC
    share (it once read 100% of 0 MACs) and no plots of an accelerator that did nothing."""
    from pathlib import Path

    import onnx

    model = Path(onnx.__file__).parent / "backend/test/data/simple/test_single_relu_model"
    path = str(model / "model.onnx")
    assert main(["simulate", path, "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "0 cycles = 0.000 ms" in out and "0 segment(s)" in out
    assert "host: 1 op(s) (Activation relu 'test'); accelerator: 0 of 1 layers" in out
    assert main(["simulate", path, "--preset", "tiny", "--cycles-only", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total_cycles"] == 0 and doc["segments"] == [] and len(doc["host_ops"]) == 1
    assert doc["stalls"] == {"dram": 0, "dependency": 0, "weights": 0, "fill_drain": 0}
    assert main(["report", path, "--preset", "tiny", "-o", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "<b>no MACs</b>" in page and "(no MACs in the network)" in page
    assert "No layer of this network runs on the accelerator" in page
    assert 'id="roofline"' not in page and "<svg" not in page
