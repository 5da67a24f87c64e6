"""SCALE-Sim frontend: topology and config import/export, the analytical compute model.

Expected cycle counts are either worked out by hand below or taken from SCALE-Sim's own
golden reports (scale-sim-v2/v3 ``test/general/golden_trace_*/COMPUTE_REPORT.csv``).
"""

import json
import math
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from accel import config as accel_config
from accel.frontends import scalesim
from accel.frontends.scalesim import ScaleSimLayer
from accel.graph import Conv2d, Input, Linear, MaxPool2d, Network

DATA = Path(__file__).parent / "data" / "scalesim"  # SCALE-Sim's own samples (MIT)
RESNET18 = DATA / "Resnet18.csv"
ALEXNET = DATA / "alexnet.csv"
SCALE_CFG = DATA / "scale.cfg"
HEADER = scalesim.TOPOLOGY_HEADER


def write(tmp_path, text, name="topo.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------
# Topology import


def test_samples_load():
    rows = scalesim.load_topology_rows(RESNET18)
    assert len(rows) == 21
    assert rows[0] == ScaleSimLayer("Conv1", 224, 224, 7, 7, 3, 64, 2)
    assert rows[-1] == ScaleSimLayer("FC", 1, 1, 1, 1, 512, 1000, 1)
    # alexnet.csv pads every field with spaces; names are stripped.
    alex = scalesim.load_topology_rows(ALEXNET)
    assert [r.name for r in alex] == ["Conv1", "Conv2", "Conv3", "Conv4", "Conv5"]
    assert alex[0] == ScaleSimLayer("Conv1", 224, 224, 11, 11, 3, 96, 4)
    assert not any(r.depthwise for r in rows + alex)


def test_network_is_independent_input_conv_pairs():
    net = scalesim.load_topology(RESNET18)
    assert net.name == "Resnet18"
    assert len(net) == 42
    assert net.input_names[:2] == ["Conv1.input", "Conv2_1a.input"]
    assert net.inputs("Conv2_1a") == ["Conv2_1a.input"]
    assert net.shape("Conv1.input") == (3, 224, 224)
    # Conv1: P = ceil((224 - 7 + 2) / 2) = 110; pad = (110-1)*2 + 7 - 224 = 1 at the bottom.
    assert net.op("Conv1") == Conv2d(3, 64, 7, stride=2, padding=(0, 1, 0, 1), bias=False)
    assert net.shape("Conv1") == (64, 110, 110)
    # A 1x1 input with a 1x1 filter stays a conv.
    assert net.op("FC") == Conv2d(512, 1000, 1, bias=False)
    assert net.shape("FC") == (1000, 1, 1)


@pytest.mark.parametrize("path", [RESNET18, ALEXNET])
def test_output_sizes_equal_scalesim(path):
    net = scalesim.load_topology(path)
    for row in scalesim.load_topology_rows(path):
        assert net.shape(row.name)[1:] == (row.ofmap_h, row.ofmap_w)
        assert 0 <= row.pad_h < row.stride and 0 <= row.pad_w < row.stride


def test_shortcut_uses_scalesim_ceil():
    # Conv3_s: 1x1 stride 2 on 56 -> SCALE-Sim gives ceil((56-1+2)/2) = 29 (PyTorch: 28).
    net = scalesim.load_topology(RESNET18)
    assert net.shape("Conv3_s") == (128, 29, 29)
    assert net.op("Conv3_s").padding == (0, 1, 0, 1)


def test_depthwise_dp_convention(tmp_path):
    path = write(
        tmp_path, HEADER + "\nConv2_DP, 112, 112, 3, 3, 32, 1, 1,\nBlk_DPx,8,8,3,3,4,2,1,\n"
    )
    rows = scalesim.load_topology_rows(path)
    assert [r.depthwise for r in rows] == [True, True]
    net = scalesim.load_topology(path)
    assert net.op("Conv2_DP") == Conv2d(32, 32, 3, groups=32, bias=False)
    # SCALE-Sim runs C layers of 1 channel and num_filters filters: a channel multiplier.
    assert net.op("Blk_DPx") == Conv2d(4, 8, 3, groups=4, bias=False)
    assert net.shape("Blk_DPx") == (8, 6, 6)


def test_dp_is_case_sensitive(tmp_path):
    path = write(tmp_path, HEADER + "\nconv_dp,8,8,3,3,4,2,1,\n")
    assert not scalesim.load_topology_rows(path)[0].depthwise


def test_blank_lines_and_comments_after_last_comma(tmp_path):
    path = write(tmp_path, HEADER + "\n\nA,8,8,3,3,4,2,1,#dw\n\n")
    assert scalesim.load_topology_rows(path) == [ScaleSimLayer("A", 8, 8, 3, 3, 4, 2, 1)]


@pytest.mark.parametrize(
    ("row", "match"),
    [
        (
            "A,8,x8,3,3,4,2,1,",
            r"topo.csv:2: column 3 \(IFMAP Width\) must be an integer >= 1, "
            r"got 'x8'",
        ),
        ("A,8,8,3,3,4,2,0,", r"topo.csv:2: column 8 \(Strides\) must be an integer >= 1, got '0'"),
        ("A,8,8,3,3,4,-2,1,", r"column 7 \(Num Filter\) must be an integer >= 1, got '-2'"),
        ("A,8,8,3,3,4,2.5,1,", r"column 7 \(Num Filter\) must be an integer >= 1, got '2.5'"),
        ("A,8,8,9,3,4,2,1,", r"topo.csv:2: layer 'A': filter_h = 9 is larger than ifmap_h = 8"),
        ("A,8,8,3,3,4,2,", r"topo.csv:2: expected 8 fields .* got 7 fields"),
        ("A,8,8,3,3,4,2,1,1,", r"topo.csv:2: expected 8 fields .* got 9 fields"),
        ("A,8,8,3,3,4,2,1", r"topo.csv:2: row must end with a comma .* the stride '1'"),
        ("A,8,8,3,3,4,2,1,x", r"text after the last comma 'x' is ignored by SCALE-Sim"),
        (" ,8,8,3,3,4,2,1,", r"topo.csv:2: column 1 \(Layer name\) is empty"),
    ],
)
def test_malformed_rows(tmp_path, row, match):
    path = write(tmp_path, HEADER + "\n" + row + "\n")
    with pytest.raises(ValueError, match=match):
        scalesim.load_topology_rows(path)
    with pytest.raises(ValueError, match=match):
        scalesim.load_topology(path)


def test_malformed_row_line_number_counts_blank_lines(tmp_path):
    path = write(tmp_path, HEADER + "\nA,8,8,3,3,4,2,1,\n\nB,8,8,3,3,4,2,q,\n")
    with pytest.raises(ValueError, match=r"topo.csv:4: column 8 \(Strides\)"):
        scalesim.load_topology_rows(path)


def test_missing_header_and_empty_file(tmp_path):
    with pytest.raises(ValueError, match=r"topo.csv:1: the first line must be the header"):
        scalesim.load_topology_rows(write(tmp_path, "A,8,8,3,3,4,2,1,\n"))
    with pytest.raises(ValueError, match=r"topo.csv: no layers"):
        scalesim.load_topology_rows(write(tmp_path, HEADER + "\n\n"))


def test_duplicate_layer_names(tmp_path):
    path = write(tmp_path, HEADER + "\nA,8,8,3,3,4,2,1,\nA,8,8,3,3,4,2,1,\n")
    with pytest.raises(ValueError, match=r"topo.csv: row 2 \('A'\): .*duplicate name"):
        scalesim.load_topology(path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stride": 0}, ValueError, r"layer 'L': stride \(Strides\) must be >= 1, got 0"),
        ({"channels": 2.0}, TypeError, r"channels \(Channels\) must be an int, got 2.0"),
        ({"ifmap_w": True}, TypeError, r"ifmap_w \(IFMAP Width\) must be an int, got True"),
        ({"filter_w": 9}, ValueError, r"filter_w = 9 is larger than ifmap_w = 8"),
        ({"name": " L"}, ValueError, r"layer name must be a non-empty str .* got ' L'"),
        ({"name": "a,b"}, ValueError, r"layer name 'a,b' must not contain a comma"),
        ({"depthwise": True}, ValueError, r"depthwise=True, but SCALE-Sim treats a layer"),
    ],
)
def test_layer_validation(kwargs, error, match):
    args = {
        "name": "L",
        "ifmap_h": 8,
        "ifmap_w": 8,
        "filter_h": 3,
        "filter_w": 3,
        "channels": 4,
        "num_filters": 2,
        "stride": 1,
    } | kwargs
    with pytest.raises(error, match=match):
        ScaleSimLayer(**args)


# ---------------------------------------------------------------------------------------
# Topology export


@pytest.mark.parametrize("path", [RESNET18, ALEXNET])
def test_topology_round_trip(tmp_path, path):
    net = scalesim.load_topology(path)
    out = tmp_path / path.name
    scalesim.save_topology(net, out)
    assert scalesim.load_topology_rows(out) == scalesim.load_topology_rows(path)
    assert scalesim.load_topology(out).to_dict() == net.to_dict()


def test_saved_format(tmp_path):
    out = tmp_path / "r.csv"
    scalesim.save_topology(scalesim.load_topology(RESNET18), out)
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER
    assert lines[1] == "Conv1,224,224,7,7,3,64,2,"
    assert lines[-1] == "FC,1,1,1,1,512,1000,1,"


def pytorch_like_network():
    net = Network("mini")
    x = net.add("x", Input((3, 224, 224)))
    c1 = net.add("conv1", Conv2d(3, 8, 7, stride=2, padding=3), [x])
    p = net.add("pool", MaxPool2d(3, 2, padding=1), [c1])
    dw = net.add("dw", Conv2d(8, 8, 3, stride=2, padding=1, groups=8), [p])
    pw = net.add("pw", Conv2d(8, 16, 1), [dw])
    g = net.add("gap", MaxPool2d(28, 28), [pw])
    net.add("fc", Linear(16, 10), [g])
    return net


def test_export_pytorch_style_network(tmp_path):
    net = pytorch_like_network()
    rows = scalesim.topology_rows(net)
    # conv1: 224 + 3 top = 227, our P = 112; SCALE-Sim gives 112 for sizes 228..229
    # ((P-2)*2 + 7 + 1 = 228 .. (P-1)*2 + 7 = 229), so 227 is raised to 228 (the padded size
    # 230 would give SCALE-Sim ceil((230-7+2)/2) = 113 windows).
    assert rows[0] == ScaleSimLayer("conv1", 228, 228, 7, 7, 3, 8, 2)
    # Depthwise: '_DP' appended, num filter = channel multiplier 1; 56 + 1 = 57 = (28-1)*2 + 3.
    assert rows[1] == ScaleSimLayer("dw_DP", 57, 57, 3, 3, 8, 1, 2)
    assert rows[2] == ScaleSimLayer("pw", 28, 28, 1, 1, 8, 16, 1)
    assert rows[3] == ScaleSimLayer("fc", 1, 1, 1, 1, 16, 10, 1)
    for row in rows[:3]:
        name = row.name.removesuffix("_DP")
        assert (row.ofmap_h, row.ofmap_w) == net.shape(name)[1:]
    out = tmp_path / "mini.csv"
    scalesim.save_topology(net, out)
    reloaded = scalesim.load_topology(out)
    assert reloaded.op("dw_DP") == Conv2d(
        8, 8, 3, stride=2, padding=(0, 0, 0, 0), groups=8, bias=False
    )
    assert [reloaded.shape(r.name) for r in rows[:3]] == [
        net.shape(n) for n in ("conv1", "dw", "pw")
    ]


def one_conv(op, shape=(8, 16, 16), name="c"):
    net = Network("n")
    net.add(name, op, [net.add("x", Input(shape))])
    return net


@pytest.mark.parametrize(
    ("op", "name", "match"),
    [
        (Conv2d(8, 8, 3, stride=(1, 2)), "c", r"layer 'c': stride=\(1, 2\) is not supported"),
        (Conv2d(8, 8, 3, dilation=2), "c", r"layer 'c': dilation=\(2, 2\) is not supported"),
        (
            Conv2d(8, 8, 3, groups=2),
            "c",
            r"layer 'c': groups=2 is a grouped conv that is not "
            r"depthwise",
        ),
        (
            Conv2d(8, 8, 3),
            "cDP",
            r"layer 'cDP': name contains 'DP', which SCALE-Sim reads as "
            r"depthwise, but groups=1 != in_channels=8",
        ),
    ],
)
def test_export_rejects(tmp_path, op, name, match):
    with pytest.raises(ValueError, match=match):
        scalesim.save_topology(one_conv(op, name=name), tmp_path / "t.csv")


def test_export_rejects_dp_linear_and_empty(tmp_path):
    with pytest.raises(ValueError, match=r"layer 'fcDP': .* but the layer is a Linear"):
        scalesim.topology_rows(one_conv(Linear(8, 4), shape=(8, 1, 1), name="fcDP"))
    net = one_conv(MaxPool2d(2, 2))
    with pytest.raises(ValueError, match=r"network 'n' has no Conv2d or Linear layer"):
        scalesim.save_topology(net, tmp_path / "t.csv")


def test_export_one_channel_dp_conv_round_trips(tmp_path):
    path = write(tmp_path, HEADER + "\nA_DP,8,8,3,3,1,1,1,\n")
    out = tmp_path / "o.csv"
    scalesim.save_topology(scalesim.load_topology(path), out)
    assert out.read_text() == path.read_text()


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    pads=st.tuples(st.integers(0, 3), st.integers(0, 3)),
)
def test_exported_size_gives_our_output_size(size, kernel, stride, pads):
    assume(size + sum(pads) >= kernel)
    net = one_conv(
        Conv2d(2, 3, (kernel, 1), stride=stride, padding=(*pads, 0, 0)), shape=(2, size, 5)
    )
    (row,) = scalesim.topology_rows(net)
    assert row.ofmap_h == net.shape("c")[1]
    # SCALE-Sim's output size does not depend on which size in the valid range we write.
    reloaded = scalesim.topology_rows(scalesim_network(row))
    assert reloaded == [row]


def scalesim_network(row):
    net = Network("r")
    scalesim._add_layer(net, row)
    return net


# ---------------------------------------------------------------------------------------
# Config


def test_sample_config_loads():
    cfg = scalesim.load_config(SCALE_CFG)
    edge = accel_config.preset("edge")
    assert cfg.name == "scale_example_run_32x32_ws"
    assert (cfg.array.rows, cfg.array.cols, cfg.array.dataflow) == (32, 32, "ws")
    assert cfg.buffers.input_bytes == cfg.buffers.weight_bytes == 64 * 1024
    assert cfg.buffers.output_bytes == 64 * 1024
    assert cfg.buffers.acc_bytes == 4 * 64 * 1024  # SCALE-Sim has no accumulator buffer
    assert cfg.buffers.param_bytes == edge.buffers.param_bytes
    assert cfg.dram.bandwidth == 10  # words/cycle, 1-byte words
    assert (cfg.dram.latency, cfg.clock_mhz) == (edge.dram.latency, edge.clock_mhz)


@pytest.mark.parametrize("interface", ["USER", "CALC"])
def test_config_round_trip(tmp_path, interface):
    cfg = scalesim.load_config(SCALE_CFG)
    out = tmp_path / "out.cfg"
    scalesim.save_config(cfg, out, interface=interface)
    assert scalesim.load_config(out) == cfg
    text = out.read_text()
    assert "Dataflow : ws\n" in text and f"InterfaceBandwidth : {interface}\n" in text
    assert "buffers.acc_bytes = 262144" in text  # what SCALE-Sim cannot hold is written down


def test_save_config_of_a_preset(tmp_path):
    server = accel_config.preset("server")
    out = tmp_path / "server.cfg"
    scalesim.save_config(server, out)
    cfg = scalesim.load_config(out)
    assert (cfg.name, cfg.array, cfg.dram.bandwidth) == ("server", server.array, 64)
    assert cfg.buffers.input_bytes == server.buffers.input_bytes
    assert cfg.buffers.output_bytes == server.buffers.output_bytes


def edited_config(tmp_path, old, new):
    text = SCALE_CFG.read_text()
    assert old in text
    return write(tmp_path, text.replace(old, new), "bad.cfg")


def test_an_os_config_is_an_os_machine(tmp_path):
    path = edited_config(tmp_path, "Dataflow : ws", "Dataflow : os")
    assert scalesim.load_config(path).array.dataflow == "os"


def test_an_is_config_is_an_is_machine(tmp_path):
    path = edited_config(tmp_path, "Dataflow : ws", "Dataflow : is")
    assert scalesim.load_config(path).array.dataflow == "is"


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("run_name = scale_example_run_32x32_ws", r"\[general\] run_name"),
        ("ArrayHeight:    32", r"\[architecture_presets\] ArrayHeight"),
        ("ArrayWidth:     32", r"\[architecture_presets\] ArrayWidth"),
        ("IfmapSramSzkB:   64", r"\[architecture_presets\] IfmapSramSzkB"),
        ("FilterSramSzkB:  64", r"\[architecture_presets\] FilterSramSzkB"),
        ("OfmapSramSzkB:   64", r"\[architecture_presets\] OfmapSramSzkB"),
        ("Bandwidth : 10", r"\[architecture_presets\] Bandwidth"),
        ("Dataflow : ws", r"\[architecture_presets\] Dataflow"),
    ],
)
def test_config_missing_key(tmp_path, line, key):
    path = edited_config(tmp_path, line + "\n", "")
    with pytest.raises(ValueError, match=rf"bad.cfg: missing required key {key}"):
        scalesim.load_config(path)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (
            "ArrayWidth:     32",
            "ArrayWidth: 3x2",
            r"\[architecture_presets\] ArrayWidth must be "
            r"an integer >= 1, got '3x2'",
        ),
        ("Bandwidth : 10", "Bandwidth : 0", r"Bandwidth must be an integer >= 1, got '0'"),
        (
            "Dataflow : ws",
            "Dataflow : rs",
            r"Dataflow must be one of \('os', 'ws', 'is'\), "
            r"got 'rs'",
        ),
        (
            "InterfaceBandwidth: CALC",
            "InterfaceBandwidth: AUTO",
            r"InterfaceBandwidth must be "
            r"USER or CALC, got 'AUTO'",
        ),
        ("ArrayHeight:    32", "ArrayHeight: 512", r"bad.cfg: array size 512x32 exceeds"),
        ("[general]", "general", r"bad.cfg: not a valid SCALE-Sim config"),
    ],
)
def test_config_bad_values(tmp_path, old, new, match):
    with pytest.raises(ValueError, match=match):
        scalesim.load_config(edited_config(tmp_path, old, new))


def test_config_bandwidth_list_takes_first(tmp_path):
    path = edited_config(tmp_path, "Bandwidth : 10", "Bandwidth : 12,4,4")
    assert scalesim.load_config(path).dram.bandwidth == 12


def test_save_config_errors(tmp_path):
    odd = accel_config.preset("edge").replace(buffers={"input_bytes": 1000})
    with pytest.raises(ValueError, match=r"buffers.input_bytes = 1000 is not a whole number"):
        scalesim.save_config(odd, tmp_path / "c.cfg")
    with pytest.raises(TypeError, match=r"config must be an AccelConfig"):
        scalesim.save_config({"name": "x"}, tmp_path / "c.cfg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"interface must be 'USER' or 'CALC', got 'user'"):
        scalesim.save_config(accel_config.preset("edge"), tmp_path / "c.cfg", interface="user")


# ---------------------------------------------------------------------------------------
# Analytical compute model


def resnet_row(name):
    return {r.name: r for r in scalesim.load_topology_rows(RESNET18)}[name]


@pytest.mark.parametrize(
    ("name", "cycles"),
    [
        # Conv1 224x224, 7x7x3, 64 filters, stride 2:
        #   P = Q = ceil((224 - 7 + 2) / 2) = 110, T = 110 * 110 = 12100 pixels
        #   rows: R*S*C = 147 -> ceil(147/32) = 5;  cols: K = 64 -> ceil(64/32) = 2
        #   10 folds * (2*32 + 32 + 12100 - 2 = 12194) - 1 = 121939
        ("Conv1", 121939),
        # Conv2_1a 56x56, 3x3x64, 64 filters, stride 1: P = 54, T = 2916
        #   ceil(576/32) = 18 * ceil(64/32) = 2 = 36 folds * (96 + 2916 - 2 = 3010) - 1 = 108359
        ("Conv2_1a", 108359),
        # Conv3_s 56x56, 1x1x64, 128 filters, stride 2: P = ceil(57/2) = 29, T = 841
        #   ceil(64/32) = 2 * ceil(128/32) = 4 = 8 folds * (96 + 841 - 2 = 935) - 1 = 7479
        ("Conv3_s", 7479),
        # FC 1x1x512, 1000 filters: T = 1
        #   ceil(512/32) = 16 * ceil(1000/32) = 32 = 512 folds * (96 + 1 - 2 = 95) - 1 = 48639
        ("FC", 48639),
    ],
)
def test_ws_cycles_by_hand(name, cycles):
    assert scalesim.scalesim_cycles(resnet_row(name), 32, 32, "ws") == cycles


def test_ws_report_by_hand():
    cfg = scalesim.load_config(SCALE_CFG)
    (entry,) = scalesim.compute_report([resnet_row("Conv1")], cfg.array.rows, cfg.array.cols)
    # Folds use 32, 32, 32, 32, 19 (= 147 - 128) rows and all 32 columns.
    mapping = (4 * 32 + 19) / 5 / 32
    assert entry["Mapping Efficiency %"] == pytest.approx(100 * mapping, rel=1e-13)
    # Compute Util: T / (2*32 + 2*32 + T - 3) of the mapped PEs, T = 12100.
    assert entry["Compute Util %"] == pytest.approx(100 * mapping * 12100 / 12225, rel=1e-13)
    macs = 12100 * 64 * 147
    assert entry["Overall Util %"] == pytest.approx(100 * macs / (121939 * 1024), rel=1e-13)
    assert (entry["LayerID"], entry["Total Cycles"], entry["Stall Cycles"]) == (0, 121939, 0)


def test_matches_scalesim_golden_calc_run():
    # SCALE-Sim test/general/golden_trace_calc (v3; v2 test/golden_trace): alexnet_part.csv
    # (Conv1 224x224 11x11x3, 96 filters, stride 4) on configs/scale.cfg, 32x32 ws, CALC.
    (conv1,) = scalesim.load_topology_rows(ALEXNET)[:1]
    assert scalesim.compute_report([conv1], 32, 32, "ws") == [
        {
            "LayerID": 0,
            "Total Cycles": 112283,
            "Stall Cycles": 0,
            "Overall Util %": 91.68309650614964,
            "Mapping Efficiency %": 94.53125,
            "Compute Util %": 90.78000992063485,
        }
    ]


@pytest.mark.parametrize(
    ("dataflow", "golden_total", "golden_stalls", "compute_util"),
    [
        # SCALE-Sim golden_trace_user_{ws,os,is}: GEMM M=256, N=128, K=256 on 32x32, USER
        # bandwidth 10; v2 reports Total Cycles including the memory stalls.
        ("ws", 52447, 41248, 67.19160104986877),
        ("os", 52447, 42272, 80.50314465408805),
        ("is", 19984, 5777, 50.59288537549411),
    ],
)
def test_matches_scalesim_golden_gemm(dataflow, golden_total, golden_stalls, compute_util):
    # SCALE-Sim reads a GEMM row M, N, K as ifmap M x K, filter 1 x K, 1 channel, N filters.
    gemm = ScaleSimLayer("Test 1", 256, 256, 1, 256, 1, 128, 1)
    (entry,) = scalesim.compute_report([gemm], 32, 32, dataflow)
    assert entry["Total Cycles"] == golden_total - golden_stalls
    assert entry["Mapping Efficiency %"] == 100.0
    assert entry["Compute Util %"] == compute_util


@pytest.mark.parametrize(
    ("dataflow", "sr", "sc", "t", "per_fold"),
    [
        ("os", 12100, 64, 147, "r + c + T - 2"),
        ("ws", 147, 64, 12100, "2r + c + T - 2"),
        ("is", 147, 12100, 64, "2r + c + T - 2"),
    ],
)
def test_dataflow_formulas(dataflow, sr, sc, t, per_fold):
    r, c = 8, 16
    folds = math.ceil(sr / r) * math.ceil(sc / c)
    length = {"r + c + T - 2": r + c + t - 2, "2r + c + T - 2": 2 * r + c + t - 2}[per_fold]
    assert scalesim.scalesim_cycles(resnet_row("Conv1"), r, c, dataflow) == folds * length - 1


def test_depthwise_is_channels_layers():
    dp = ScaleSimLayer("Conv2_DP", 112, 112, 3, 3, 32, 1, 1)
    # One channel: P = 110, T = 12100, 1 x 1 folds of 2*32 + 32 + 12100 - 2 = 12194 lines.
    assert scalesim.scalesim_cycles(dp, 32, 32, "ws") == 32 * (12194 - 1)
    report = scalesim.compute_report([resnet_row("FC"), dp], 32, 32, "ws")
    assert [e["LayerID"] for e in report] == list(range(33))
    assert {e["Total Cycles"] for e in report[1:]} == {12193}
    assert report[1]["Mapping Efficiency %"] == 100 * 9 / 1024


def test_resnet18_total():
    rows = scalesim.load_topology_rows(RESNET18)
    report = scalesim.compute_report(rows, 32, 32, "ws")
    assert [e["Total Cycles"] for e in report] == [
        scalesim.scalesim_cycles(r, 32, 32) for r in rows
    ]
    assert sum(e["Total Cycles"] for e in report) == 2519815


def test_write_compute_report(tmp_path):
    (conv1,) = scalesim.load_topology_rows(ALEXNET)[:1]
    out = tmp_path / "COMPUTE_REPORT.csv"
    scalesim.write_compute_report(scalesim.compute_report([conv1, conv1], 32, 32), out)
    assert out.read_text() == (
        "LayerID, Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, "
        "Compute Util %,\n"
        "0, 112283, 0, 91.68309650614964, 94.53125, 90.78000992063485,\n"
        "1, 112283, 0, 91.68309650614964, 94.53125, 90.78000992063485,\n"
    )


def test_write_compute_report_rejects_bad_entries(tmp_path):
    with pytest.raises(ValueError, match=r"report entry 0 must have the keys \['LayerID'"):
        scalesim.write_compute_report([{"LayerID": 0}], tmp_path / "r.csv")


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((8, 8, "rs"), ValueError, r"dataflow must be one of \('os', 'ws', 'is'\), got 'rs'"),
        ((0, 8, "ws"), ValueError, r"rows must be >= 1, got 0"),
        ((8, 8.0, "ws"), TypeError, r"cols must be an int, got 8.0"),
    ],
)
def test_model_argument_errors(args, error, match):
    with pytest.raises(error, match=match):
        scalesim.scalesim_cycles(resnet_row("FC"), *args)
    with pytest.raises(error, match=match):
        scalesim.compute_report([resnet_row("FC")], *args)


def test_model_layer_type_errors():
    with pytest.raises(TypeError, match=r"layer must be a ScaleSimLayer, got 'FC'"):
        scalesim.scalesim_cycles("FC", 8, 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"layers must be a sequence of ScaleSimLayer"):
        scalesim.compute_report(resnet_row("FC"), 8, 8)  # type: ignore[arg-type]


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_the_cli_runs_scalesims_model_of_every_dataflow(tmp_path, capsys, dataflow):
    """A SCALE-Sim config of any dataflow drives --model scalesim digit for digit and
    --model both beside our machine of the same dataflow, which --model accel runs."""
    from accel.cli import main

    cfg = tmp_path / "scale.cfg"
    cfg.write_text(
        (DATA / "scale.cfg").read_text().replace("Dataflow : ws", f"Dataflow : {dataflow}")
    )
    topology = DATA / "Resnet18.csv"
    args = ["simulate", str(topology), "--scalesim-config", str(cfg)]
    assert main([*args, "--model", "scalesim", "--format", "json"]) == 0
    rows = scalesim.load_topology_rows(topology)
    assert json.loads(capsys.readouterr().out) == scalesim.compute_report(rows, 32, 32, dataflow)
    assert main([*args, "--model", "both", "--format", "json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert f"SCALE-Sim's {dataflow} model against our {dataflow} machine" in doc["title"]
    expected = [scalesim.scalesim_cycles(r, 32, 32, dataflow) for r in rows]
    assert [layer["scalesim_cycles"] for layer in doc["layers"]] == expected
    assert main([*args, "--cycles-only"]) == 0
