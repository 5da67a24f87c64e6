"""Reports: the Perfetto timeline, the HTML report, buffer occupancy, sweeps and the SCALE-Sim
comparison table.

One small network (tinynet on the 4x4 ``tiny`` preset) is compiled and run once per module;
every report is checked against that ``Result``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import sys
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

import sim
from accel import compiler, config, html_report, occupancy, report, sweep, timeline, window
from accel.isa import Buffer, Compute, Engine, Load, Post, PostMode, Store
from accel.program import LayerInfo
from tests.layers import zoo_qnet


@pytest.fixture(scope="module")
def run():
    program = compiler.compile(zoo_qnet("tinynet"), config.preset("tiny"))
    return program, sim.run(program, compute_outputs=False)


# ---------------------------------------------------------------------------------------
# Timeline


@pytest.fixture(scope="module")
def trace(run, tmp_path_factory):
    program, result = run
    path = tmp_path_factory.mktemp("trace") / "sub" / "trace.json"
    assert timeline.write_trace(path, result, program) == path
    return json.loads(path.read_text())


def instructions(doc):
    return [e for e in doc["traceEvents"] if e.get("cat") == "instruction"]


def test_trace_has_every_instruction_once(run, trace):
    program, _ = run
    seen = defaultdict(list)
    for event in instructions(trace):
        assert event["ph"] == "X"
        args = event["args"]
        seen[args["engine"]].append(args["index"])
        instr = program.streams[Engine[args["engine"]]][args["index"]]
        layer = program.layers[instr.layer].name
        assert args["layer"] == layer and args["layer_index"] == instr.layer
        assert event["name"] == f"{timeline.instruction_kind(instr)} {layer}"
        assert event["pid"] == int(Engine[args["engine"]]) + 1
    for engine, stream in program.streams.items():
        assert sorted(seen[engine.name]) == list(range(len(stream)))


def test_trace_events_are_ordered(trace):
    events = trace["traceEvents"]
    kinds = [e["ph"] for e in events]
    first_timed = kinds.index("X")
    assert set(kinds[:first_timed]) == {"M"} and "M" not in kinds[first_timed:]
    stamps = [e["ts"] for e in events[first_timed:]]
    assert stamps == sorted(stamps)


def test_trace_durations_match_the_schedule(run, trace):
    program, result = run
    clock = program.config.clock_mhz
    assert trace["otherData"]["clock_mhz"] == clock
    for event in instructions(trace):
        args = event["args"]
        engine = Engine[args["engine"]]
        start = result.start[engine][args["index"]]
        done = result.done[engine][args["index"]]
        assert (args["start_cycle"], args["done_cycle"]) == (start, done)
        assert math.isclose(event["ts"], start / clock, rel_tol=1e-12, abs_tol=1e-12)
        assert math.isclose(event["dur"], (done - start) / clock, rel_tol=1e-12, abs_tol=1e-12)


def test_trace_lanes_never_overlap(trace):
    lanes = defaultdict(list)
    for event in instructions(trace):
        lanes[event["pid"], event["tid"]].append(
            (event["args"]["start_cycle"], event["args"]["done_cycle"])
        )
    for spans in lanes.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    names = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in trace["traceEvents"]
        if e["name"] == "thread_name"
    }
    assert set(lanes) <= set(names)
    assert names[int(Engine.COMPUTE) + 1, 0] == "COMPUTE"


def test_trace_layer_track_and_counter(run, trace):
    _, result = run
    layers = [e for e in trace["traceEvents"] if e.get("cat") == "layer"]
    assert [e["name"] for e in layers] == [x.name for x in result.layers if x.cycles]
    assert sum(e["args"]["cycles"] for e in layers) == result.total_cycles
    counters = [e for e in trace["traceEvents"] if e["ph"] == "C"]
    assert len(counters) == len(result.layers)
    assert {e["name"] for e in counters} == {"MAC utilization %"}


def test_trace_rejects_a_result_of_another_program(run):
    program, _ = run
    other = compiler.compile(zoo_qnet("tinyconv"), config.preset("tiny"))
    with pytest.raises(ValueError, match=r"the schedule has \d+ LOAD instructions but the"):
        timeline.trace_events(sim.run(other, compute_outputs=False), program)


def test_lanes_are_first_fit():
    assert timeline._lanes([0, 1, 2, 5, 5], [3, 4, 5, 6, 9]) == [0, 1, 2, 0, 1]


# ---------------------------------------------------------------------------------------
# HTML report


@pytest.fixture(scope="module")
def written(run, tmp_path_factory):
    program, result = run
    out = tmp_path_factory.mktemp("report") / "new"
    return out, html_report.write_report(out, result, program)


def test_report_writes_its_files(written):
    out, paths = written
    assert {p.name for p in out.iterdir()} == {
        "report.html",
        "layers.csv",
        "occupancy.csv",
        "report.json",
        "trace.json",
    }
    assert set(paths) == {"html", "csv", "occupancy", "json", "trace"}


def test_report_html_is_self_contained_with_the_plots(written):
    out, _ = written
    page = (out / "report.html").read_text()
    for name in ("cycles", "roofline", "stalls", "occupancy"):
        start = page.index(f'<figure id="fig-{name}"')
        assert page.index("<svg", start) < page.index("</figure>", start)
    assert page.count("<svg") == 4
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'(?:url\(#|href="#)([^)"]+)', page):
        assert ref in ids
    for external in ("src=", "http://", '<link rel="stylesheet"', "<script"):
        assert external not in page.replace("http://www.w3.org", "")
    for href in ("layers.csv", "occupancy.csv", "report.json", "trace.json"):
        assert f'href="{href}"' in page
    assert "conv1" in page and "compute roof 16 MACs/cycle" in page


def test_report_tables_agree_with_the_run(run, written):
    program, result = run
    out, _ = written
    table = list(csv.DictReader(io.StringIO((out / "layers.csv").read_text())))
    doc = json.loads((out / "report.json").read_text())
    assert [r["layer"] for r in table] == [x.name for x in result.layers]
    assert sum(int(r["cycles"]) for r in table) == result.total_cycles
    assert sum(int(r["macs"]) for r in table) == result.macs
    totals = doc["summary"]
    assert totals["total_cycles"] == result.total_cycles
    assert totals["macs"] == result.macs
    assert totals["dram_read_bytes"] == result.dram_read_bytes
    assert totals["stalls"] == result.stalls
    assert doc["config"] == program.config.to_dict()
    assert doc["roofline"]["compute_roof_macs_per_cycle"] == 16
    assert [r["cycles"] for r in doc["layers"]] == [x.cycles for x in result.layers]


def test_layer_traffic_adds_up_to_the_run(run):
    """Every layer's SRAM and DRAM counts, summed, are the run's; the first conv of tinynet
    reads its weight tile once per pass."""
    program, result = run
    for name in result.sram_reads:
        assert sum(x.sram_reads[name] for x in result.layers) == result.sram_reads[name]
        assert sum(x.sram_writes[name] for x in result.layers) == result.sram_writes[name]
    assert sum(x.dram_read for x in result.layers) == result.dram_read_bytes
    assert sum(x.dram_written for x in result.layers) == result.dram_written_bytes
    first = result.layers[0]
    computes = [c for c in program.streams[Engine.COMPUTE] if c.layer == 0]
    rows = program.config.array.rows
    assert first.sram_reads["w"] == sum(c.passes * rows for c in computes) > 0


def test_roofline_columns(run):
    program, result = run
    peak, bandwidth = program.config.array.pes, program.config.dram.bandwidth
    for row, layer in zip(html_report.layer_table(result, program), result.layers, strict=True):
        traffic = layer.dram_read + layer.dram_written
        assert row["dram_bytes"] == traffic
        if layer.macs and traffic:
            intensity = layer.macs / traffic
            assert row["intensity_macs_per_byte"] == pytest.approx(intensity, abs=1e-6)
            assert row["roof_macs_per_cycle"] == pytest.approx(
                min(peak, bandwidth * intensity), abs=1e-6
            )
            assert row["bound"] == ("compute" if bandwidth * intensity >= peak else "dram")
            assert row["attained_macs_per_cycle"] <= row["roof_macs_per_cycle"] + 1e-6
        else:
            assert row["intensity_macs_per_byte"] is None and row["bound"] is None


def test_report_without_matplotlib_names_the_extra(run, tmp_path, monkeypatch):
    program, result = run
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(html_report.MissingExtraError, match=r"pip install 'accel\[report\]'"):
        html_report.write_report(tmp_path / "out", result, program)
    assert not (tmp_path / "out").exists()


def test_report_output_must_be_a_directory(run, tmp_path):
    program, result = run
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        html_report.write_report(path, result, program)


# ---------------------------------------------------------------------------------------
# Sweeps


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8,16,32", [8, 16, 32]), (" 4 ", [4]), (None, None)],
)
def test_parse_int_list(text, expected):
    assert sweep.parse_int_list("--rows", text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8,x", r"--rows: 'x' is not an integer"),
        ("8,,16", r"--rows: '' is not an integer"),
        ("0", r"--rows: values must be >= 1, got 0"),
        ("8,8", r"--rows: 8 is listed twice"),
    ],
)
def test_parse_int_list_errors(text, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse_int_list("--rows", text)


def test_sweep_configs_product_and_errors():
    base = config.preset("tiny")
    configs = sweep.sweep_configs(base, [4, 8], None, [4, 16])
    assert [(c.array.rows, c.array.cols, c.dram.bandwidth) for c in configs] == [
        (4, 4, 4),
        (4, 4, 16),
        (8, 4, 4),
        (8, 4, 16),
    ]
    assert configs[0].buffers == base.buffers and configs[0].name == "tiny-4x4-bw4"
    assert sweep.buffer_bytes(base) == 12 * 1024
    with pytest.raises(ValueError, match=r"rows=64 cols=64 bandwidth=4 on 'tiny': buffers"):
        sweep.sweep_configs(base, [64], [64])


@pytest.mark.parametrize(
    ("pairs", "front"),
    [
        ([(16, 100), (32, 50), (64, 60)], [(16, 100), (32, 50)]),
        ([(16, 100), (16, 90), (32, 90)], [(16, 90)]),
        ([(16, 100), (16, 100)], [(16, 100)]),
        ([(64, 10), (32, 20), (16, 40)], [(16, 40), (32, 20), (64, 10)]),
        ([], []),
    ],
)
def test_pareto_front(pairs, front):
    assert sweep.pareto_front(pairs) == front


def test_run_sweep_in_process_agrees_with_sim_run(run):
    program, result = run
    calls = []
    points = sweep.run_sweep(
        zoo_qnet("tinynet"),
        [program.config],
        sim.run,
        jobs=1,
        progress=lambda done, total: calls.append((done, total)),
    )
    (point,) = points
    assert (point.cycles, point.pes, point.pareto) == (result.total_cycles, 16, True)
    assert (point.network, point.status) == ("tinynet", "ok")
    assert point.config_digest == program.config.digest
    assert point.seconds == result.seconds and calls == [(1, 1)]
    with pytest.raises(ValueError, match="jobs must be an integer >= 1, not 0"):
        sweep.run_sweep(zoo_qnet("tinynet"), [program.config], sim.run, jobs=0)


def test_run_sweep_records_a_failing_point():
    def broken(program, compute_outputs=False):
        if program.config.array.rows == 8:
            raise RuntimeError("boom\non two lines")
        return sim.run(program, compute_outputs=compute_outputs)

    configs = sweep.sweep_configs(config.preset("tiny"), [4, 8])
    good, bad = sweep.run_sweep(zoo_qnet("tinyconv"), configs, broken, jobs=1)
    assert (good.status, good.error, good.pareto) == ("ok", "", True)
    assert (bad.status, bad.error, bad.pareto) == (
        "error",
        "RuntimeError: boom on two lines",
        False,
    )
    assert bad.cycles is bad.utilization is bad.seconds is None
    assert bad.label() == "tinyconv rows=8 cols=4 bandwidth=4"


# ---------------------------------------------------------------------------------------
# SCALE-Sim comparison table

COMPARED = [
    {
        "layer": "Conv1",
        "scalesim_cycles": 200,
        "accel_cycles": 100,
        "ratio": 0.5,
        "macs": 1600,
        "accel_utilization": 1.0,
    },
    {
        "layer": "FC",
        "scalesim_cycles": 50,
        "accel_cycles": 100,
        "ratio": 2.0,
        "macs": 16,
        "accel_utilization": 0.01,
    },
]


def test_comparison_formats():
    table = report.render_comparison(COMPARED, "table", title="t")
    assert "\ntotal               250           200            0.800\n" in table
    doc = json.loads(report.render_comparison(COMPARED, "json"))
    assert doc["total"] == {"scalesim_cycles": 250, "accel_cycles": 200, "ratio": 0.8}
    rows = list(csv.DictReader(io.StringIO(report.render_comparison(COMPARED, "csv"))))
    assert [r["ratio"] for r in rows] == ["0.5", "2.0"]


def test_comparison_errors():
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        report.render_comparison(COMPARED, "xml")
    with pytest.raises(ValueError, match=r"comparison row 0 must have the keys"):
        report.render_comparison([{"layer": "x"}], "table")


# ---------------------------------------------------------------------------------------
# Buffer occupancy


def test_buffer_depths_follow_the_buffer_geometry():
    # tiny: 4x4 array; 4 KiB input, 2 KiB weights, 4 KiB accumulators, 1 KiB out, 1 KiB params.
    assert occupancy.buffer_depths(config.preset("tiny")) == {
        "input": 4096 // 4,
        "weight": 2048 // 4,
        "param": 1024 // (12 * 4),
        "acc": 4096 // (4 * 4),
        "output": 1024 // 4,
        "table": 2 * 16,  # two 256-entry tables of 16-byte words, on every config
    }


def _hand_input_words(program) -> set[int]:
    """The window walk of docs/isa.md, one address at a time (padding is not read)."""
    words = set()
    for c in program.streams[Engine.COMPUTE]:
        for ct, r, s, p, q in itertools.product(
            range(c.ct_count), range(c.kernel_h), range(c.kernel_w), range(c.out_h), range(c.out_w)
        ):
            h, w = p * c.stride_h + r * c.dil_h, q * c.stride_w + s * c.dil_w
            if 0 <= c.origin_h + h < c.image_h and 0 <= c.origin_w + w < c.image_w:
                words.add(c.in_base + ct * c.ct_stride + h * c.tile_w + w)
    return words


def test_occupancy_of_tinyconv_by_hand():
    program = compiler.compile(zoo_qnet("tinyconv"), config.preset("tiny"))
    (row,) = occupancy.buffer_occupancy(program)
    (layer,) = program.layers
    assert (row["layer"], row["kind"]) == (layer.name, layer.kind)
    rows = program.config.array.rows
    loads = program.streams[Engine.LOAD]
    computes = program.streams[Engine.COMPUTE]
    posts = program.streams[Engine.POST]
    # Weights: resident, one LOAD per k tile of 18 passes x 4 rows, back to back from word 0;
    # the passes read exactly those words.
    weight_loads = [x for x in loads if x.buffer == Buffer.WEIGHT]
    cols = program.config.array.cols
    assert [(x.sram_addr, x.inner_count * x.run_bytes // cols) for x in weight_loads] == [
        (0, 72),
        (72, 72),
    ]
    assert {c.w_base for c in computes} == {0, 72} and computes[0].passes * rows == 72
    assert row["weight_words"] == 144 and row["weight_fraction"] == 144 / 512
    # Accumulators and outputs: 1x4-pixel tiles in a ring of four slots 64 words apart.
    assert {c.acc_base for c in computes} == {p.acc_base for p in posts} == {0, 64, 128, 192}
    assert {c.pixels for c in computes} == {4}
    assert row["acc_words"] == 16 and row["acc_fraction"] == 16 / 256
    assert row["output_words"] == 16 and row["output_fraction"] == 16 / 256
    # Parameters: one word per k tile.
    assert {p.param_base for p in posts} == {0, 1}
    assert row["param_words"] == 2 and row["param_fraction"] == round(2 / 21, 6)
    # Input: every word the window generator reads was loaded, and vice versa here.
    words = _hand_input_words(program)
    loaded = set()
    for x in loads:
        if x.buffer == Buffer.INPUT:
            for o, j in itertools.product(range(x.outer_count), range(x.inner_count)):
                loaded.add(x.sram_addr + o * x.sram_outer_stride + j)  # run_bytes = 4 = 1 word
    assert words == loaded
    assert row["input_words"] == len(words) == 60
    for name in occupancy.BUFFERS[:-1]:  # no table: tinyconv has no Pointwise
        assert 0 < row[f"{name}_fraction"] <= 1


def test_occupancy_covers_every_layer(run):
    program, _ = run
    rows = occupancy.buffer_occupancy(program)
    assert [r["layer"] for r in rows] == [x.name for x in program.layers]
    depths = occupancy.buffer_depths(program.config)
    active = {instr.layer for stream in program.streams.values() for instr in stream}
    for index, row in enumerate(rows):
        for name in occupancy.BUFFERS:
            assert 0 <= row[f"{name}_words"] <= depths[name]
            assert row[f"{name}_fraction"] == round(row[f"{name}_words"] / depths[name], 6)
        used = [row[f"{name}_words"] > 0 for name in ("input", "acc", "output")]
        assert used == [index in active] * 3  # flatten is a view: no instructions, no words
        assert (row["weight_words"] > 0) == (row["kind"] in ("Conv2d", "Linear"))
    assert "flatten" in [r["layer"] for r in rows] and len(active) < len(rows)


def test_compute_input_words_are_the_window_generators(run):
    program, _ = run
    for instr in program.streams[Engine.COMPUTE]:
        address, valid = window.feed_addresses(instr)
        words = occupancy.instruction_words(instr, program.config).get("input", np.zeros(0))
        assert np.array_equal(words, np.unique(address[valid]))


def _program(streams, layers=1):
    return SimpleNamespace(
        config=config.preset("tiny"),
        streams={engine: streams.get(engine, []) for engine in Engine},
        layers=[LayerInfo(i, f"l{i}", "Conv2d", (4, 4, 4), (4, 4, 4), 0) for i in range(layers)],
    )


def test_load_words_are_counted_exactly():
    # tiny: input words are 4 bytes, so a 6-byte run fills 2 words; 2 runs per row, 3 rows.
    apart = Load(sram_addr=10, outer_count=3, sram_outer_stride=5, inner_count=2, run_bytes=6)
    tiny = config.preset("tiny")
    expected = [10, 11, 12, 13, 15, 16, 17, 18, 20, 21, 22, 23]
    assert occupancy.instruction_words(apart, tiny)["input"].tolist() == expected
    # Rows that overlap (stride 2 < 4 words a row) count each word once: 10 .. 17.
    overlap = Load(
        sram_addr=10, outer_count=3, sram_outer_stride=2, inner_count=2, run_bytes=6, layer=1
    )
    # A parameter word is 12 x 4 bytes: 3 runs of 48 bytes fill words 5, 6, 7.
    params = Load(buffer=Buffer.PARAM, sram_addr=5, inner_count=3, run_bytes=48, layer=1)
    rows = occupancy.buffer_occupancy(_program({Engine.LOAD: [apart, overlap, params]}, 2))
    assert rows[0]["input_words"] == 12 and rows[0]["input_fraction"] == round(12 / 1024, 6)
    assert rows[1]["input_words"] == 8 and rows[1]["param_words"] == 3
    assert rows[0]["param_words"] == rows[1]["weight_words"] == rows[1]["acc_words"] == 0


def test_occupancy_of_compute_post_and_store():
    # A padded 2x2 VSUM tile: window rows/cols -1 .. 1 of a 2x2 image, tile_w 3 (the vector
    # modes read no weights); POST in PASS mode reads no parameter word.
    vector = Compute(
        mode=1, in_base=100, tile_w=3, out_h=2, out_w=2, origin_h=-1, origin_w=-1,
        image_h=2, image_w=2, kernel_h=3, kernel_w=3, acc_base=8,
    )  # fmt: skip
    array = Compute(ct_count=2, kernel_h=1, kernel_w=1, w_base=20, acc_base=8, layer=1)
    post = Post(mode=PostMode.PASS, acc_base=8, count=4, out_base=30)
    requant = Post(acc_base=6, count=2, param_base=3, out_base=40, layer=1)
    store = Store(out_base=32, outer_count=2, inner_count=2, layer=1)
    streams = {Engine.COMPUTE: [vector, array], Engine.POST: [post, requant], Engine.STORE: [store]}
    first, second = occupancy.buffer_occupancy(_program(streams, 2))
    # In-image positions are rows/cols 1 and 2 of the 3-wide tile: 100 + {4, 5, 7, 8}.
    words = occupancy.instruction_words(vector, config.preset("tiny"))
    assert words["input"].tolist() == [104, 105, 107, 108] and "weight" not in words
    assert first["layer"] == "l0" and first["kind"] == "Conv2d"
    assert [first[f"{name}_words"] for name in occupancy.BUFFERS] == [4, 0, 0, 4, 4, 0]
    assert [first[f"{name}_fraction"] for name in occupancy.BUFFERS] == [
        round(4 / 1024, 6),
        0.0,
        0.0,
        4 / 256,
        4 / 256,
        0.0,
    ]
    # 2 passes x 4 rows of weights; acc rows 6..8 (8 from the compute, 6, 7 from the POST);
    # outputs 40, 41 (POST) and 32..35 (STORE).
    assert second["input_words"] == 1 and second["weight_words"] == 8
    assert second["acc_words"] == 3 and second["param_words"] == 1
    assert second["output_words"] == 6


def test_occupancy_rejects_words_past_the_end():
    store = Store(out_base=250, outer_count=2, inner_count=4)
    with pytest.raises(ValueError, match=r"layer 'l0' \(output buffer\) touches words "):
        occupancy.buffer_occupancy(_program({Engine.STORE: [store]}))


def test_report_writes_the_occupancy_table(run, written):
    program, _ = run
    out, _ = written
    rows = occupancy.buffer_occupancy(program)
    table = list(csv.DictReader(io.StringIO((out / "occupancy.csv").read_text())))
    assert [r["layer"] for r in table] == [r["layer"] for r in rows]
    assert [int(r["weight_words"]) for r in table] == [r["weight_words"] for r in rows]
    doc = json.loads((out / "report.json").read_text())
    assert doc["occupancy"]["layers"] == rows
    assert doc["occupancy"]["depth_words"] == occupancy.buffer_depths(program.config)
    page = (out / "report.html").read_text()
    start = page.index('<figure id="fig-occupancy"')
    caption = page[page.index("<figcaption>", start) : page.index("</figure>", start)]
    assert "distinct words" in caption and "occupancy.csv" in caption


def test_a_layer_above_its_dram_roof_is_named_with_the_reason(tmp_path):
    """ResNet-18 at 64 on edge: layer3.0.downsample.0 reads 41,984 DRAM bytes (2,624 cycles
    at 16 B/cycle) in a 2,048-cycle share, because its loads start in layer3.0.conv2's share;
    the report names it instead of leaving a point above the roof unexplained."""
    program = compiler.compile(zoo_qnet("resnet18", 64), config.preset("edge"))
    result = sim.run(program, compute_outputs=False)
    rows = html_report.layer_table(result, program)
    above = [
        r["layer"]
        for r in rows
        if r["intensity_macs_per_byte"] and r["attained_macs_per_cycle"] > r["roof_macs_per_cycle"]
    ]
    assert above == ["layer3.0.downsample.0"]
    layers = {x.name: x for x in result.layers}
    before, layer = layers["layer3.0.conv2"], layers["layer3.0.downsample.0"]
    assert layer.start < before.end  # its first instruction runs in the layer before's share
    html_report.write_report(tmp_path, result, program, trace=False)
    page = (tmp_path / "report.html").read_text()
    assert "Above their roof: layer3.0.downsample.0. A layer's cycles are its share" in page
    tiny = tmp_path / "tiny"
    small = compiler.compile(zoo_qnet("tinynet"), config.preset("tiny"))
    html_report.write_report(tiny, sim.run(small, compute_outputs=False), small, trace=False)
    assert "Above their roof" not in (tiny / "report.html").read_text()
