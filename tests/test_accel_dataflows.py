"""Which dataflow wins each layer (:mod:`accel.dataflows`) and ``accel report --dataflow
ws,os``: every dataflow's cycles per layer equal its own run's, the winner has the fewest,
and the reason names the part of the cycles that differs most."""

from __future__ import annotations

import csv
import json

import pytest

import sim
from accel import compiler, config, dataflows
from accel.cli import main
from tests.layers import zoo_qnet


@pytest.fixture(scope="module")
def layers():
    qnet = zoo_qnet("resnet18", 32)
    out = {}
    for flow in ("ws", "os"):
        cfg = config.preset("tiny").replace(array={"dataflow": flow})
        out[flow] = sim.run(compiler.compile(qnet, cfg), compute_outputs=False).layers
    return out


def test_rows_carry_each_run_and_the_winner_has_the_fewest_cycles(layers):
    rows = dataflows.compare(layers)
    assert [r["layer"] for r in rows] == [x.name for x in layers["ws"]]
    for row, ws, os_ in zip(rows, layers["ws"], layers["os"], strict=True):
        assert (row["cycles_ws"], row["cycles_os"]) == (ws.cycles, os_.cycles)
        assert row["w_reads_os"] == os_.sram_reads["w"]
        assert row["acc_writes_ws"] == ws.sram_writes["acc"]
        best = min(ws.cycles, os_.cycles)
        assert row[f"cycles_{row['winner']}"] == best
        assert row["saved"] == max(ws.cycles, os_.cycles) - best
        if row["saved"]:
            part, values = row["why"].split(": ")
            assert part.split()[0] in ("feed", *layers["ws"][0].stalls)
            assert values.startswith(row["winner"])
        else:
            assert row["why"] == "equal cycles" and row["winner"] == "ws"  # ties: first listed
    # Not a table of ties: the pixel groups of 4 rows leave rows empty on 2x2 maps.
    assert any(r["saved"] and r["why"].startswith("fill_drain") for r in rows)


def test_parts_add_up_to_the_cycles(layers):
    for layer in layers["os"]:
        assert sum(dataflows.parts(layer).values()) == layer.cycles


def test_compare_needs_two_runs_of_the_same_layers(layers):
    with pytest.raises(ValueError, match="two or more dataflows"):
        dataflows.compare({"ws": layers["ws"]})
    with pytest.raises(ValueError, match="the os run's layers differ from the ws run's"):
        dataflows.compare({"ws": layers["ws"], "os": layers["os"][1:]})


def test_report_compares_the_listed_dataflows(tmp_path, capsys):
    out = tmp_path / "report"
    args = ["report", "tinynet", "--preset", "tiny", "--no-trace", "-o", str(out)]
    assert main([*args, "--dataflow", "os,ws"]) == 0
    printed = capsys.readouterr().out
    table = list(csv.DictReader((out / "dataflows.csv").read_text().splitlines()))
    doc = json.loads((out / "report.json").read_text())
    assert doc["config"]["array"]["dataflow"] == "os"  # the report is the first one's
    assert [r["layer"] for r in table] == [r["layer"] for r in doc["layers"]]
    assert [int(r["cycles_os"]) for r in table] == [r["cycles"] for r in doc["layers"]]
    ws_total = sum(int(r["cycles_ws"]) for r in table)
    assert f"ws {ws_total:,} cycles" in printed
    assert 'id="dataflows"' in (out / "report.html").read_text()


def test_report_rejects_an_unknown_dataflow_in_the_list(tmp_path, capsys):
    out = tmp_path / "report"
    args = ["report", "tinynet", "--preset", "tiny", "--dataflow", "ws,xs", "-o", str(out)]
    assert main(args) == 2
    assert "--dataflow must be one of ws, os, is, not 'xs'" in capsys.readouterr().err
    assert not out.exists()
