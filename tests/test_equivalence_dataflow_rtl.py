"""The RTL top on output-stationary ("os") and input-stationary ("is") machines against the
cycle model and the golden model: compiled conv layers and zoo networks (every dense ARRAY
COMPUTE with the dataflow's bit, ``os`` or ``is_``; the depthwise mode stays
weight-stationary), bit-exact outputs and the model's cycles per instruction, in the Amaranth
simulator and in Verilator (tests/test_equivalence_rtl.py's ``check``: total, every
instruction's start and done, the performance counters).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from accel import config as cfg
from accel.compiler import compile
from accel.isa import ComputeMode, Engine
from accel.verify import verify as run_verify
from tests.layers import conv_qnet, conv_reference, random_input, zoo_qnet
from tests.test_equivalence_rtl import check, zoo_check

OS_TINY = cfg.preset("tiny").replace(array={"dataflow": "os"})
IS_TINY = cfg.preset("tiny").replace(array={"dataflow": "is"})
#: The small machines of each dataflow: output-stationary also on a non-square array (no
#: depthwise mode, more columns than rows); input-stationary needs a square one.
MACHINES = {
    "os": {"tiny-os": OS_TINY, "4x6-os": OS_TINY.replace(array={"rows": 4, "cols": 6})},
    "is": {
        "tiny-is": IS_TINY,
        "8x8-is": IS_TINY.replace(name="tiny-8x8-is", array={"rows": 8, "cols": 8}),
    },
}
EDGE = {flow: cfg.preset("edge").replace(array={"dataflow": flow}) for flow in MACHINES}
#: The COMPUTE bit of each dataflow, and a name only its Verilog has.
FLAG = {"os": "os", "is": "is_"}
MARKER = {"os": "os_mode", "is": "transposer"}

CONVS = {
    "1x1": dict(c=8, k=4, hw=(3, 5), kernel=(1, 1)),
    "3x3 pad 1 relu": dict(
        c=6, k=5, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1), activation="relu"
    ),
    "3x3 stride 2, more channels than columns": dict(
        c=11, k=19, hw=(6, 7), kernel=(3, 3), stride=(2, 2), padding=(1, 0, 1, 0)
    ),
    "5x5 stride 2 pad 2": dict(c=5, k=7, hw=(7, 6), kernel=(5, 5), stride=(2, 2), padding=(2,) * 4),
    "dilation 2, asymmetric pad": dict(
        c=4, k=4, hw=(6, 6), kernel=(2, 2), padding=(0, 1, 2, 1), dilation=(2, 2)
    ),
    "fewer pixels than the array's side": dict(c=9, k=13, hw=(1, 3), kernel=(1, 1)),
    "fc": dict(c=20, k=10, hw=(1, 1), kernel=(1, 1)),
    "fc streamed in small chunks sharing ring slots": dict(c=256, k=16, hw=(1, 1), kernel=(1, 1)),
    "depthwise (weight-stationary) 3x3": dict(
        c=8, k=8, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1), groups=8
    ),
}
AMARANTH = ["1x1", "fewer pixels than the array's side", "fc", "dilation 2, asymmetric pad"]


def conv_check(name: str, config, backend: str) -> None:
    rng = np.random.default_rng(len(name))
    qnet = conv_qnet(rng, **CONVS[name])
    program = compile(qnet, config)
    flag = FLAG[config.array.dataflow]
    computes = program.streams[Engine.COMPUTE]
    dense = [i for i in computes if i.mode == ComputeMode.ARRAY and not i.depthwise]
    assert all(getattr(i, flag) for i in dense)
    assert not any(getattr(i, flag) for i in computes if i not in dense)
    if not name.startswith("depthwise"):
        assert dense, f"the layer runs on the {config.array.dataflow} array"
    elif config.array.rows == config.array.cols:
        assert any(i.depthwise for i in computes), "the depthwise mode runs beside it"
    x = random_input(rng, qnet)
    check(program, program.make_image({"input": x}), {"conv": conv_reference(qnet, x)}, backend)


def machines(names):
    return [
        pytest.param(name, config, id=f"{name}-{label}")
        for flow in MACHINES
        for label, config in MACHINES[flow].items()
        for name in names
    ]


@pytest.mark.parametrize(("name", "config"), machines(AMARANTH))
def test_conv_layer_bit_and_cycle_exact_amaranth(name, config):
    conv_check(name, config, "amaranth")


@pytest.mark.parametrize("flow", list(MACHINES))
@pytest.mark.parametrize("name", AMARANTH)
def test_conv_layer_on_two_weight_banks_bit_and_cycle_exact_amaranth(name, flow):
    """The dataflows' weight reads through the banked weight buffer's one read port."""
    config = MACHINES[flow][f"tiny-{flow}"]
    conv_check(name, config.replace(dram={"bandwidth": 8}, buffers={"weight_banks": 2}), "amaranth")


@pytest.mark.parametrize(("name", "config"), machines(CONVS))
def test_conv_layer_bit_and_cycle_exact_verilator(name, config):
    conv_check(name, config, "verilator")


@pytest.mark.parametrize("flow", list(MACHINES))
@pytest.mark.parametrize("network", ["tinynet", "lenet5"])
def test_zoo_network_bit_and_cycle_exact_verilator(network, flow):
    zoo_check(network, None, MACHINES[flow][f"tiny-{flow}"], "verilator")


@pytest.mark.slow
@pytest.mark.parametrize("flow", list(MACHINES))
@pytest.mark.parametrize(("name", "size"), [("resnet18", 64), ("mobilenet_v2", 64)])
def test_zoo_model_is_bit_and_cycle_exact_in_verilator(name, size, flow):
    """mobilenet_v2 mixes the depthwise mode (weight-stationary) with pointwise layers on the
    dataflow's datapath: every unit switch between the two datapaths of one array."""
    qnet = zoo_qnet(name, size)
    result = run_verify(qnet, EDGE[flow])
    assert result.ok, result.first_mismatch
    assert len(result.layers) == len(qnet.network.order()) - len(qnet.network.input_names)


#: ResNet-18 at 224: 1,814,073,344 MACs on `edge`'s 256 PEs take at least this many cycles
#: (every PE busy in every cycle): a run below it did not run the whole network.
RESNET18_224_EDGE_MAC_CYCLES = 1_814_073_344 // 256


@pytest.mark.slow
@pytest.mark.parametrize("flow", ["os", "is"])
def test_resnet18_224_whole_network_is_bit_and_cycle_exact_in_verilator(flow):
    result = run_verify(zoo_qnet("resnet18"), EDGE[flow])
    assert result.ok, result.first_mismatch
    assert result.rtl_cycles == result.model_cycles > RESNET18_224_EDGE_MAC_CYCLES


@pytest.mark.parametrize("flow", list(MACHINES))
def test_generate_and_verify_take_the_config(tmp_path, capsys, flow):
    """``accel generate --dataflow FLOW`` writes that machine (its manifest says so) and
    ``accel verify --dataflow FLOW`` runs a network on it, golden == model == RTL."""
    import hdl
    from accel.cli import main

    assert flow in hdl.DATAFLOWS
    out = tmp_path / "gen"
    args = ["generate", "--preset", "tiny", "--dataflow", flow, "-o", str(out), "--no-lint"]
    assert main([*args, "-q"]) == 0
    manifest = json.loads((out / "accel_top.json").read_text())
    assert manifest["config"]["values"]["array"]["dataflow"] == flow
    assert MARKER[flow] in (out / "accel_top.v").read_text()
    assert main(["verify", "tinyconv", "--preset", "tiny", "--dataflow", flow, "--quiet"]) == 0
    capsys.readouterr()
