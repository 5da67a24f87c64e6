"""A static ONNX batch, and ``--batch N``: N images, each bit-exact. A network the
accelerator runs alone is one program for the batch, its weights kept resident across it;
a network with host steps runs image by image, N times one image's cycles."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import sim
from accel import batch, config, deploy, executor, synthetic
from accel.cli import main
from accel.frontends import load_model
from accel.frontends.onnx import batch_size
from tests.layers import quantized


def batch3_model() -> onnx.ModelProto:
    """conv + relu -> softsign (a host op) -> conv, on a static batch of 3 images."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
            helper.make_node("Softsign", ["r1"], ["s1"], name="soft"),
            helper.make_node("Conv", ["s1", "w2"], ["y"], name="conv2"),
        ],
        "batch3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 6, 6])],
        [w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def batch3(tmp_path):
    path = tmp_path / "batch3.onnx"
    onnx.save(batch3_model(), path)
    return str(path)


def test_every_image_of_a_static_batch_is_bit_exact(batch3):
    network = load_model(batch3)
    assert batch_size(network) == 3
    qnet = quantized(network)
    deployment = deploy.deploy(qnet, config.preset("tiny"))
    assert len(deployment.segments) == 2  # the softsign runs on the host
    runs = batch.run(deployment, sim.run, images=3, seed=5)
    assert len(runs) == 3
    inputs = [synthetic.random_int8_inputs(qnet, 5 + i) for i in range(3)]
    assert not np.array_equal(inputs[0]["x"], inputs[1]["x"])  # different images
    outputs = []
    for run, feed in zip(runs, inputs, strict=True):
        golden = executor.trace_network(qnet, feed)
        for name, value in run.outputs.items():
            np.testing.assert_array_equal(value.reshape(golden[name].shape), golden[name])
        outputs.append(next(iter(run.outputs.values())))
    assert not np.array_equal(outputs[0], outputs[1])
    assert runs[0].total_cycles == runs[1].total_cycles == runs[2].total_cycles > 0


def test_simulate_runs_the_static_batch(batch3, capsys):
    assert main(["simulate", batch3, "--preset", "tiny", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    one = doc["total_cycles"]  # host steps: the table is one image's
    assert doc["batch"]["images"] == 3
    assert doc["batch"]["cycles_per_image"] == one
    assert doc["batch"]["total_cycles"] == 3 * one
    assert doc["batch"]["every_image_simulated"] and not doc["batch"]["weights_resident"]
    assert doc["batch"]["latency_seconds"] == pytest.approx(doc["seconds"])  # one image's
    assert main(["simulate", batch3, "--preset", "tiny", "--cycles-only"]) == 0
    out = capsys.readouterr().out
    assert f"batch of 3 images (image by image, one simulated, cycles-only): {3 * one:,}" in out
    assert "weights are not kept resident across the batch: the network has host steps" in out


def test_batch_option_runs_one_program_with_resident_weights(capsys):
    assert main(["simulate", "tinynet", "--preset", "tiny", "--format", "json"]) == 0
    single = json.loads(capsys.readouterr().out)
    one = single["total_cycles"]
    assert "batch" not in single
    argv = ["simulate", "tinynet", "--preset", "tiny", "--batch", "4", "--format", "json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    four = doc["batch"]
    assert doc["total_cycles"] == four["total_cycles"]  # the table is the batch's program
    assert four["weights_resident"] and four["every_image_simulated"]
    assert four["images"] == 4 and four["cycles_per_image"] == four["total_cycles"] / 4
    assert four["cycles_per_image"] < one  # loads overlap, weights load once
    assert four["images_per_second"] == pytest.approx(4 / four["seconds"])
    assert four["seconds_per_image"] == pytest.approx(four["seconds"] / 4)
    assert four["latency_seconds"] == four["seconds"]  # every image finishes with the batch
    assert four["utilization"] > single["utilization"]
    assert [layer["macs"] for layer in doc["layers"]] == [
        4 * layer["macs"] for layer in single["layers"]
    ]
    argv = ["simulate", "tinynet", "--preset", "tiny", "--batch", "4", "--cycles-only"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"batch of 4 images (one program): {four['total_cycles']:,} cycles" in out
    assert "a layer whose weights fit the weight buffer loads them once" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch", "0"], "--batch must be a positive integer, got 0"),
        (["--batch", "2"], "--batch 2 differs from the model's static batch of 3 images"),
        (["--batch", "2", "--model", "scalesim"], "--batch needs --model accel"),
    ],
)
def test_batch_errors(batch3, capsys, tmp_path, argv, message):
    out = tmp_path / "out"
    assert main(["simulate", batch3, "--preset", "tiny", "-o", str(out), *argv]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(f"accel: error: {message}")
    assert not out.exists() or not any(out.iterdir())


def test_verify_checks_every_image(batch3, capsys):
    status = main(["verify", batch3, "--preset", "tiny", "--backend", "amaranth", "-q"])
    out = capsys.readouterr().out
    assert status == 0, out
    for i in range(3):
        assert f"image {i + 1} of 3 (random inputs of seed {i}):" in out
    assert "batch of 3 images: 3 of 3 pass" in out


def batch2_model() -> onnx.ModelProto:
    """conv + relu -> conv -> global average pool -> gemm, on a static batch of 2 images,
    nothing on the host."""
    rng = np.random.default_rng(1)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 1, 1)).astype(np.float32), "w2")
    fc = numpy_helper.from_array(rng.normal(0, 0.3, (5, 8)).astype(np.float32), "fc")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
            helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
            helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
            helper.make_node("Flatten", ["g"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="gemm"),
        ],
        "batch2",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [w1, w2, fc],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_static_batch_without_host_ops_is_one_program(tmp_path, capsys):
    path = tmp_path / "batch2.onnx"
    onnx.save(batch2_model(), path)
    network = load_model(str(path))
    assert batch_size(network) == 2
    assert main(["simulate", str(path), "--preset", "tiny", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["batch"]["images"] == 2 and doc["batch"]["weights_resident"]
    assert doc["total_cycles"] == doc["batch"]["total_cycles"]
    qnet = quantized(network)
    deployment = deploy.deploy(qnet, config.preset("tiny"), batch=2)
    (run,) = batch.run(deployment, sim.run, images=2, seed=3)
    for i in range(2):
        golden = executor.trace_network(qnet, synthetic.random_int8_inputs(qnet, 3 + i))
        for name, value in run.outputs.items():
            np.testing.assert_array_equal(value[i].reshape(golden[name].shape), golden[name])
    status = main(["verify", str(path), "--preset", "tiny", "--backend", "verilator", "-q"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "batch of 2 images in one program" in out and "batch of 2 images: pass" in out


def test_a_program_file_of_a_batch_runs_and_verifies_as_one(tmp_path, capsys):
    from accel.compiler import compile
    from tests.layers import zoo_qnet

    path = tmp_path / "tinynet4.bin"
    argv = ["compile", "tinynet", "--preset", "tiny", "--batch", "4", "-o", str(path)]
    assert main(argv) == 0
    assert "a batch of 4 images ->" in capsys.readouterr().out
    program = compile(zoo_qnet("tinynet"), config.preset("tiny"), batch=4)
    assert path.read_bytes() == program.to_bytes()
    inputs = synthetic.random_program_inputs(program, 5)
    assert inputs["input"].shape[0] == 4
    assert not np.array_equal(inputs["input"][0], inputs["input"][1])
    assert main(["simulate", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["batch"]["images"] == 4 and doc["batch"]["weights_resident"]
    cycles = sim.run(program, None, compute_outputs=False).total_cycles
    assert doc["batch"]["total_cycles"] == doc["total_cycles"] == cycles
    status = main(["verify", str(path), "--backend", "verilator", "-q"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "batch of 4 images in one program" in out


def test_a_sweep_and_a_report_of_a_model_with_a_static_batch(tmp_path, capsys):
    """`accel report` runs a static batch as `accel simulate` does; `accel sweep` runs its own
    batch axis (default 1) and says so, and its batch-2 point is the simulated batch."""
    pytest.importorskip("matplotlib")
    path = tmp_path / "batch2.onnx"
    onnx.save(batch2_model(), path)
    assert main(["simulate", str(path), "--preset", "tiny", "--format", "json"]) == 0
    simulated = json.loads(capsys.readouterr().out)["batch"]
    assert main(["report", str(path), "--preset", "tiny", "-o", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["batch"] == simulated
    args = ["sweep", str(path), "--preset", "tiny", "-j", "1"]
    assert main([*args, "-o", str(tmp_path / "s1")]) == 0
    err = capsys.readouterr().err
    assert "accel: note: batch2 has a static batch of 2 images (N=2 in its input shapes); " in err
    assert "give --batch 1,2 to sweep it" in err
    assert main([*args, "--batch", "1,2", "-o", str(tmp_path / "s2")]) == 0
    assert "static batch" not in capsys.readouterr().err
    with (tmp_path / "s2" / "sweep.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [r["batch"] for r in rows] == ["1", "2"]
    assert int(rows[1]["cycles"]) == simulated["total_cycles"]
    assert rows[1]["image_by_image"] == "0"
