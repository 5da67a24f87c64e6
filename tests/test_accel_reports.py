"""Reports: the Perfetto timeline, the HTML report, sweeps and the SCALE-Sim comparison table.

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

import pytest

import sim
from accel import compiler, config, html_report, models, report, sweep, timeline
from accel.isa import Engine


@pytest.fixture(scope="module")
def run():
    program = compiler.compile(models.get("tinynet"), config.preset("tiny"))
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
        start = result.schedule.start[engine][args["index"]]
        done = result.schedule.done[engine][args["index"]]
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
    other = compiler.compile(models.get("tinyconv"), config.preset("tiny"))
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
        "report.json",
        "trace.json",
    }
    assert set(paths) == {"html", "csv", "json", "trace"}


def test_report_html_is_self_contained_with_the_plots(written):
    out, _ = written
    page = (out / "report.html").read_text()
    for name in ("cycles", "roofline", "stalls"):
        start = page.index(f'<figure id="fig-{name}"')
        assert page.index("<svg", start) < page.index("</figure>", start)
    assert page.count("<svg") == 3
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'(?:url\(#|href="#)([^)"]+)', page):
        assert ref in ids
    for external in ("src=", "http://", '<link rel="stylesheet"', "<script"):
        assert external not in page.replace("http://www.w3.org", "")
    for href in ("layers.csv", "report.json", "trace.json"):
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
        models.get("tinynet"),
        [program.config],
        sim.run,
        jobs=1,
        progress=lambda done, total: calls.append((done, total)),
    )
    (point,) = points
    assert (point.cycles, point.pes, point.pareto) == (result.total_cycles, 16, True)
    assert point.seconds == result.seconds and calls == [(1, 1)]
    with pytest.raises(ValueError, match="jobs must be an integer >= 1, not 0"):
        sweep.run_sweep(models.get("tinynet"), [program.config], sim.run, jobs=0)


def test_run_sweep_names_a_failing_point():
    def broken(program, compute_outputs=False):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match=r"rows=4 cols=4 bandwidth=4: RuntimeError: boom"):
        sweep.run_sweep(models.get("tinyconv"), [config.preset("tiny")], broken, jobs=1)


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
