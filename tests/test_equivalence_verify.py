"""``accel verify``: golden, model and RTL per layer, and how it names a mismatch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from accel import executor, timing
from accel.cli import main
from accel.config import preset
from accel.verify import verify as run_verify
from hdl.flow import verilator
from tests.layers import zoo_qnet


def verify(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["verify", *args, "--quiet"])
    out, err = capsys.readouterr()
    return status, out, err


def test_verify_passes_a_network_and_prints_every_layer(capsys):
    status, out, _ = verify(capsys, "tinynet", "--preset", "tiny")
    assert status == 0, out
    for layer in ("conv1", "conv2", "dw", "pw", "add", "pool", "gap", "fc"):
        assert f" {layer} " in out
    assert "verilator vs model on 'tiny': PASS (counters equal)" in out


def test_verify_json_names_backend_cycles_and_layers(capsys):
    status, out, _ = verify(capsys, "tinyconv", "--preset", "tiny", "--format", "json")
    doc = json.loads(out)
    assert status == 0 and doc["ok"] and doc["first_mismatch"] is None
    assert doc["backend"] == "verilator" and doc["model_cycles"] == doc["rtl_cycles"] > 0
    assert [layer["name"] for layer in doc["layers"]] == ["conv"]
    assert sum(layer["rtl_cycles"] for layer in doc["layers"]) == doc["rtl_cycles"]


@pytest.mark.parametrize("backend", ["verilator", "amaranth"])
def test_verify_single_layers(capsys, backend):
    status, out, _ = verify(
        capsys, "tinynet", "--preset", "tiny", "--layers", "pw,fc", "--backend", backend
    )
    assert status == 0, out
    lines = out.splitlines()
    assert lines[2].split()[:3] == ["0", "pw", "Conv2d"]
    assert lines[3].split()[:3] == ["1", "fc", "Linear"]
    assert "PASS" in out


def test_a_model_cycle_bug_is_named_by_layer_instruction_and_cycle(capsys, monkeypatch):
    real = timing.post_timing

    def late(post, earliest, free):  # the model believes POST takes one more cycle
        t = real(post, earliest, free)
        return timing.EngineTiming(t.start, t.done + 1, t.next_start)

    monkeypatch.setattr(timing, "post_timing", late)
    status, out, _ = verify(capsys, "tinyconv", "--preset", "tiny")
    assert status == 1
    assert "FAIL: layer 0 'conv': POST[0] starts/is done in cycles" in out
    assert "NO" in out


def test_a_data_mismatch_names_the_output_element(capsys, monkeypatch):
    real = executor.trace_network

    def wrong(qnet, inputs, **kw):
        trace = real(qnet, inputs, **kw)
        if trace["conv"].dtype == np.int8:  # not the quantiser's float calibration run
            trace["conv"] = trace["conv"].copy()
            trace["conv"][0, 2, 1, 3] ^= 1
        return trace

    monkeypatch.setattr(executor, "trace_network", wrong)
    status, out, _ = verify(capsys, "tinyconv", "--preset", "tiny")
    assert status == 1
    assert "output 'conv' element (0, 2, 1, 3): golden" in out
    assert "(1 of 512 elements differ)" in out


@pytest.mark.parametrize("backend", ["verilator", "amaranth"])
def test_verify_a_compiled_program(capsys, tmp_path, backend):
    program = tmp_path / "tinyconv.bin"
    assert main(["compile", "tinyconv", "--preset", "tiny", "-o", str(program)]) == 0
    capsys.readouterr()
    status, out, _ = verify(capsys, str(program), "--backend", backend)
    assert status == 0, out
    assert " conv " in out
    assert out.rstrip().endswith(
        f"{backend} vs model on 'tiny': PASS (counters equal; outputs held to the model's)"
    )


def test_verify_rejects_bad_arguments(capsys):
    status, _, err = verify(capsys, "tinynet", "--preset", "tiny", "--layers", "nope")
    assert status == 2 and "has no layer 'nope'" in err
    status, _, err = verify(
        capsys, "tinyconv", "--preset", "tiny", "--backend", "amaranth", "--vcd", "x.vcd"
    )
    assert status == 2 and "--vcd needs --backend verilator" in err
    status, _, err = verify(capsys, "tinyconv", "--preset", "tiny", "--vcd-window", "1:2")
    assert status == 2 and "--vcd-window and --vcd-layer need --vcd PATH" in err
    status, _, err = verify(
        capsys, "tinyconv", "--preset", "tiny", "--vcd", "x.vcd", "--vcd-layer", "nope"
    )
    assert status == 2 and "has no layer 'nope'" in err


def test_a_build_refuses_sources_changed_since_the_import(monkeypatch):
    """A process that imported the hardware before its files changed on disk (a merge under a
    running test suite) would file its own, older design under the new files' key: refused."""
    monkeypatch.setattr(verilator, "_IMPORTED_SOURCES", "an older checkout")
    with pytest.raises(verilator.BuildError, match="changed on disk after this process"):
        verilator.build(preset("tiny"))


def test_verilator_builds_are_cached():
    first = verilator.build(preset("tiny"))
    assert verilator.build(preset("tiny")) == first and first.exists()


@pytest.mark.slow
def test_vcd_of_a_cycle_window(capsys, tmp_path):
    path = tmp_path / "wave.vcd"
    status, _, _ = verify(
        capsys, "tinyconv", "--preset", "tiny", "--vcd", str(path), "--vcd-window", "10:20"
    )
    assert status == 0
    text = path.read_text()
    assert "$enddefinitions" in text and "ar_valid" in text
    stamps = [int(line[1:]) for line in text.splitlines() if line.startswith("#")]
    assert min(stamps) == 20 and max(stamps) == 41  # cycles 10..20, two edges each
    assert np.all(np.diff(stamps) > 0)


@pytest.mark.slow
def test_vcd_of_one_layer_of_a_network(capsys, tmp_path):
    import sim
    from accel.compiler import compile
    from accel.verify import layer_window

    qnet = zoo_qnet("tinynet")
    program = compile(qnet, preset("tiny"), keep_tensors=True)
    first, last = layer_window(program, sim.run(program, compute_outputs=False), "pool")
    path = tmp_path / "pool.vcd"
    status, _, _ = verify(
        capsys, "tinynet", "--preset", "tiny", "--vcd", str(path), "--vcd-layer", "pool"
    )
    assert status == 0
    stamps = [int(line[1:]) for line in path.read_text().splitlines() if line.startswith("#")]
    assert (min(stamps), max(stamps)) == (2 * first, 2 * last + 1)
    assert 0 < first < last


EDGE = preset("edge")
#: An 8x8 array with the edge preset's buffers and DRAM.
EIGHT = EDGE.replace(name="edge-8x8", array={"rows": 8, "cols": 8})
#: Every zoo model that builds at a reduced input size (alexnet and vgg16 only build at
#: 224x224: too long for the RTL tier, see docs/verify.md).
REDUCED = [
    ("tinynet", None),
    ("lenet5", 32),
    ("resnet18", 64),
    ("resnet34", 64),
    ("resnet50", 64),
    ("mobilenet_v2", 64),
    ("mobilenet_v3_small", 64),
    ("efficientnet_b0", 64),
    ("densenet121", 64),
    ("shufflenet_v2", 64),
    ("unet", 64),
]


#: The other dataflows on 8x8: each zoo model through the output- and the input-stationary
#: array (its depthwise layers on the depthwise mode, so every unit switch between the two).
DATAFLOW_CONFIGS = [
    EIGHT.replace(name=f"edge-8x8-{d}", array={"dataflow": d}) for d in ("os", "is")
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "config", [EIGHT, EDGE, *DATAFLOW_CONFIGS], ids=lambda c: c.name.removeprefix("edge-")
)
@pytest.mark.parametrize(("name", "size"), REDUCED)
def test_zoo_model_is_bit_and_cycle_exact_in_verilator(name, size, config):
    qnet = zoo_qnet(name, size)
    result = run_verify(qnet, config)
    assert result.ok, result.first_mismatch
    assert len(result.layers) == len(qnet.network.order()) - len(qnet.network.input_names)


@pytest.mark.slow
def test_resnet18_224_whole_network_is_bit_and_cycle_exact_in_verilator():
    qnet = zoo_qnet("resnet18")
    result = run_verify(qnet, EDGE)
    assert result.ok, result.first_mismatch
    assert result.rtl_cycles == result.model_cycles > 7_000_000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "cycles"),
    [("mobilenet_v3_small", 500_000), ("shufflenet_v2", 1_000_000)],
)
def test_a_modern_network_at_224_is_bit_and_cycle_exact_in_verilator(name, cycles):
    """Full-size networks built of the newer ops: MobileNetV3-small (activation tables, the
    squeeze-and-excitation VMULs) and ShuffleNetV2 (channel slices and concats, host steps
    between its segments), at 224 on ``edge``."""
    qnet = zoo_qnet(name)
    result = run_verify(qnet, EDGE)
    assert result.ok, result.first_mismatch
    assert result.rtl_cycles == result.model_cycles > cycles


def batch_of_four_is_verified(backend: str) -> None:
    """tinynet on ``tiny`` as one program for 4 images: every layer of every image equal to
    that image's golden tensor, every instruction's cycles the model's."""
    qnet = zoo_qnet("tinynet")
    result = run_verify(qnet, preset("tiny"), backend=backend, images=4)
    assert result.ok, result.first_mismatch
    assert result.images == 4 and result.model_cycles == result.rtl_cycles
    single = run_verify(qnet, preset("tiny"), backend="verilator")
    assert single.model_cycles < result.model_cycles < 4 * single.model_cycles
    assert [layer.name for layer in result.layers] == [layer.name for layer in single.layers]
    assert sum(layer.instructions for layer in result.layers) > sum(
        layer.instructions for layer in single.layers
    )


def test_a_batch_program_is_bit_and_cycle_exact_in_verilator(capsys):
    batch_of_four_is_verified("verilator")
    # lenet5 on tiny at N=4 has all three batch mappings: image by image (resident
    # weights), streamed weight chunks shared by the images, and images as pixels.
    result = run_verify(zoo_qnet("lenet5"), preset("tiny"), backend="verilator", images=4)
    assert result.ok and result.images == 4, result.first_mismatch
    status, out, _ = verify(capsys, "tinynet", "--preset", "tiny", "--batch", "4")
    assert status == 0, out
    assert "batch of 4 images in one program (random inputs of seeds 0..3" in out
    assert "batch of 4 images: pass; note: one program for the whole batch" in out


@pytest.mark.slow
def test_a_batch_program_is_bit_and_cycle_exact_in_the_amaranth_simulator():
    batch_of_four_is_verified("amaranth")  # about 100 s


def test_a_batch_is_verified_as_one_program_only_without_host_steps(tmp_path):
    import onnx

    from accel.frontends import load_model
    from tests.layers import quantized
    from tests.test_accel_batch import batch3_model

    path = tmp_path / "batch3.onnx"
    onnx.save(batch3_model(), path)
    qnet = quantized(load_model(str(path)))
    with pytest.raises(ValueError, match="has host steps: its batch runs image by image"):
        run_verify(qnet, preset("tiny"), images=3)
