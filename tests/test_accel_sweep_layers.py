"""The layers of a sweep's points (accel.sweep_layers): ``layers.csv``, streamed and taken
back by a resumed sweep, and ``dataflows.csv``, which dataflow wins each layer at each
design point of a sweep with a dataflow axis."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

import sim
from accel import config, sweep
from accel import sweep_layers as layer_files
from accel.cli import main
from tests.layers import zoo_qnet


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCEL_CACHE", str(tmp_path / "cache"))


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_a_dataflow_sweep_names_the_winner_of_every_layer(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["sweep", "tinynet", "--preset", "tiny", "--cols", "4,8", "-j", "1", "-o", str(out)]
    assert main([*args, "--dataflow", "ws,os,is"]) == 1  # is needs a square array: 4x8 fails
    printed = capsys.readouterr().out
    points = {(p["cols"], p["dataflow"]): p for p in rows(out / "sweep.csv")}
    assert points["8", "is"]["status"] == "error" and len(points) == 6
    layers: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows(out / "layers.csv"):
        layers.setdefault((row["config_digest"], row["dataflow"]), []).append(row)
    by_point = {}
    for (cols, flow), point in points.items():
        mine = layers.get((point["config_digest"], flow), [])
        assert len(mine) == (0 if point["status"] == "error" else int(mine[0]["layers"]))
        if mine:  # a point's layer cycles add up to its cycles
            assert sum(int(x["cycles"]) for x in mine) == int(point["cycles"])
            by_point[cols, flow] = {x["name"]: int(x["cycles"]) for x in mine}
    compared = rows(out / "dataflows.csv")
    expected_flows = {"4": ["ws", "os", "is"], "8": ["ws", "os"]}
    assert [(r["cols"], r["layer"]) for r in compared] == [
        (cols, name) for cols in ("4", "8") for name in by_point[cols, "ws"]
    ]
    for r in compared:
        flows = expected_flows[r["cols"]]
        cycles = {d: by_point[r["cols"], d][r["layer"]] for d in flows}
        assert {d: int(r[f"cycles_{d}"]) for d in flows} == cycles
        ranked = sorted(flows, key=cycles.get)  # stable: the first listed wins a tie
        assert r["winner"] == ranked[0]
        assert int(r["saved"]) == cycles[ranked[1]] - cycles[ranked[0]]
        assert r["why"]
        if r["cols"] == "8":
            assert r["cycles_is"] == ""  # the 4x8 group has no is point
    for cols in ("4", "8"):
        mine = [r for r in compared if r["cols"] == cols]
        tied = sum(r["saved"] == "0" for r in mine)
        won = {
            d: sum(r["winner"] == d and r["saved"] != "0" for r in mine) for d in ["ws", "os", "is"]
        }
        line = next(x for x in printed.splitlines() if x.startswith(f"  4x{cols} "))
        for d, n in won.items():
            assert (f"{d} {n}" in line) == (n > 0), line
        assert (f"tied {tied}" in line) == (tied > 0), line
    # The same directory without a dataflow axis: no comparison, and the old one is gone.
    assert main(args) == 0
    assert "layers won" not in capsys.readouterr().out
    assert not (out / "dataflows.csv").exists() and (out / "layers.csv").exists()


def test_a_resumed_sweep_takes_its_points_layers_back(tmp_path):
    networks = {"tinynet": zoo_qnet("tinynet")}
    base = config.preset("tiny")
    configs = sweep.sweep_configs(base, [4], [4], None, dataflows=["ws", "os"])
    first = sweep.sweep_to_directory(tmp_path, networks, base, configs, sim.run, jobs=1)
    assert all(p.ok and p.layers for p in first.points)
    again = sweep.sweep_to_directory(tmp_path, networks, base, configs, sim.run, jobs=1)
    assert again.resumed == 2
    assert [p.layers for p in again.points] == [p.layers for p in first.points]
    assert layer_files.compare_dataflows(again.points) == layer_files.compare_dataflows(
        first.points
    )
    # A killed writer may leave a point's layers incomplete: that point gets none back.
    path = tmp_path / sweep.LAYERS
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    cut = sweep.sweep_to_directory(tmp_path, networks, base, configs, sim.run, jobs=1)
    assert cut.resumed == 2
    assert cut.points[0].layers == first.points[0].layers and cut.points[1].layers == ()
    assert layer_files.compare_dataflows(cut.points) == []  # one dataflow left with layers
    # A damaged row (every column there, a batch that is not a number) is left out too.
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[3] = "x"
    path.write_text("".join([*lines, ",".join(fields)]))
    key = layer_files.point_key(cut.points[0])
    assert layer_files.read_layers(path) == {key: cut.points[0].layers}


def test_a_layers_csv_that_is_a_directory_is_one_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "s"
    (out / "layers.csv").mkdir(parents=True)
    assert main(["sweep", "tinynet", "--preset", "tiny", "-j", "1", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"accel: error: layers.csv {str(out / 'layers.csv')!r} is a directory, not a file"
    assert sorted(p.name for p in out.iterdir()) == ["layers.csv"]


def test_the_pareto_labels_name_the_dataflow_when_it_varies():
    base = config.preset("tiny")
    configs = sweep.sweep_configs(base, [4], [4], None, dataflows=["ws", "os"])
    points = [replace(sweep.SweepPoint.of("n", c), cycles=100, status="ok") for c in configs]
    assert sweep._varying(points) == ["dataflow"]
    assert [sweep._label(p, ["dataflow"]) for p in points] == ["4x4/bw4/ws: 100", "4x4/bw4/os: 100"]
