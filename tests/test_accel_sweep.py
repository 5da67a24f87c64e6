"""Design sweeps (accel.sweep, ``accel sweep``): on a real dask LocalCluster, streamed into
sweep.csv, resumed, with failing points recorded, over buffers, clocks and several networks."""

from __future__ import annotations

import csv
import dataclasses
import re
import sys
from pathlib import Path

import pytest

import sim
from accel import cache, config, sweep
from accel.cli import main
from tests.layers import quantized, zoo_qnet

distributed = pytest.importorskip("distributed", reason="dask.distributed is the cluster extra")


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Every test gets its own program cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ACCEL_CACHE", str(root))
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real LocalCluster of two worker processes, sharing a program cache directory."""
    shared = tmp_path_factory.mktemp("cluster-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACCEL_CACHE", str(shared))  # the workers inherit it
        with distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address="127.0.0.1:0",
            silence_logs=50,
        ) as local:
            yield local, shared


def networks():
    return {"tinynet": zoo_qnet("tinynet"), "tinyconv": zoo_qnet("tinyconv")}


def grid():
    """Eight tiny configs; the 128-byte input buffer is too small for some layers on some
    arrays, so some points fail to compile."""
    return sweep.sweep_configs(
        config.preset("tiny"), [4, 8], [4, 8], None, buffers={"input": [128, 4096]}
    )


def without_cache_flag(points):
    return [dataclasses.replace(p, cached=False) for p in points]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == list(sweep.COLUMNS)
        return list(reader)


class Counting:
    """``sim.run`` that counts and records the configs it ran."""

    def __init__(self):
        self.configs = []
        self.run = sim.run  # before a test puts this in its place

    def __call__(self, program, compute_outputs=False):
        self.configs.append(program.config.name)
        return self.run(program, compute_outputs=compute_outputs)


# ---------------------------------------------------------------------------------------
# The grid


def test_sweep_configs_over_buffers_and_clocks():
    base = config.preset("tiny")
    configs = sweep.sweep_configs(
        base,
        [4],
        None,
        [4, 8],
        buffers={"weight": [2048, 1024], "acc": [4096]},
        clocks=[100, 250.5],
    )
    assert len(configs) == 8
    first = configs[0]
    assert first.name == "tiny-4x4-bw4-weight2048-acc4096-100MHz"
    assert (first.buffers.weight_bytes, first.buffers.acc_bytes, first.clock_mhz) == (
        2048,
        4096,
        100,
    )
    assert configs[1].clock_mhz == 250.5 and configs[1].name.endswith("-250.5MHz")
    assert [c.buffers.weight_bytes for c in configs[:4]] == [2048, 2048, 1024, 1024]
    assert {c.buffers.input_bytes for c in configs} == {base.buffers.input_bytes}
    with pytest.raises(ValueError, match=r"unknown buffer 'line' \(known: input, weight"):
        sweep.sweep_configs(base, buffers={"line": [1]})
    with pytest.raises(
        ValueError, match=r"sweep point rows=4 cols=4 bandwidth=4 weight_bytes=4 on 'tiny'"
    ):
        sweep.sweep_configs(base, buffers={"weight": [4]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("100,x", r"--clock: 'x' is not a number"),
        ("0", r"--clock: values must be finite and > 0, got 0"),
        ("inf", r"--clock: values must be finite and > 0, got inf"),
        ("100,100.0", r"--clock: 100.0 is listed twice"),
    ],
)
def test_parse_float_list_errors(text, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse_float_list("--clock", text)


# ---------------------------------------------------------------------------------------
# Executors


def test_a_local_cluster_gives_the_points_of_the_in_process_run(cluster):
    local, shared = cluster
    nets, configs = networks(), grid()
    inline = sweep.run_sweep(nets, configs, sim.run, jobs=1)
    on_cluster = sweep.run_sweep(
        nets, configs, sim.run, scheduler=local.scheduler_address, cache=True
    )
    assert without_cache_flag(on_cluster) == inline  # point for point, in the same order
    assert len(inline) == 16
    failed = [p for p in inline if not p.ok]
    assert 0 < len(failed) < len(inline)
    assert all(p.error.startswith("CompileError: layer ") for p in failed)
    assert all(p.cycles is None and not p.pareto for p in failed)
    # The workers compiled into the shared cache; a second run reads every program from it.
    ok = [p for p in inline if p.ok]
    assert len(cache.ProgramCache(shared / "programs").entries()) == len(ok)
    again = sweep.run_sweep(nets, configs, sim.run, scheduler=local.scheduler_address, cache=True)
    assert [p.cached for p in again] == [p.ok for p in again]
    assert without_cache_flag(again) == inline


def batch_grid():
    """Four tiny configs (two fail on tinyconv, as in :func:`grid`), over batches of 1 and 3."""
    return sweep.sweep_configs(
        config.preset("tiny"), [4, 8], None, None, buffers={"input": [128, 4096]}
    )


def test_a_batch_axis_gives_the_same_points_inline_in_processes_and_on_a_cluster(
    cluster, monkeypatch
):
    local, _ = cluster
    nets, configs = networks(), batch_grid()
    inline = sweep.run_sweep(nets, configs, sim.run, batches=[1, 3], jobs=1)
    on_cluster = sweep.run_sweep(
        nets, configs, sim.run, batches=[1, 3], scheduler=local.scheduler_address, cache=True
    )
    assert without_cache_flag(on_cluster) == inline
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "distributed", None)  # the local process pool
        in_processes = sweep.run_sweep(nets, configs, sim.run, batches=[1, 3], jobs=2)
    assert without_cache_flag(in_processes) == inline
    assert len(inline) == 16 and [p.batch for p in inline[:4]] == [1, 3, 1, 3]
    # Batch 1 is the sweep without a batch axis, point for point.
    assert [p for p in inline if p.batch == 1] == sweep.run_sweep(nets, configs, sim.run, jobs=1)
    ok = [p for p in inline if p.ok and p.batch == 3]
    failed = [p for p in inline if not p.ok]
    assert ok and failed and {p.batch for p in failed} == {1, 3}


def test_a_batch_point_is_what_one_program_for_the_batch_gives():
    """The cycles of a batch point are those of compile(..., batch=N) on the model, and
    weight reuse makes a batch of 4 cheaper per image than one image on tinynet."""
    from accel import batch as batches
    from accel import compiler

    qnet = zoo_qnet("tinynet")
    tiny = config.preset("tiny")
    one = sweep.evaluate_point(qnet, "tinynet", qnet.digest, tiny, sim.run, None)
    four = sweep.evaluate_point(qnet, "tinynet", qnet.digest, tiny, sim.run, None, 4)
    program = compiler.compile(qnet, tiny, batch=4)
    result = sim.run(program, compute_outputs=False)
    assert four.ok and four.batch == 4 and not four.image_by_image
    assert four.cycles == result.total_cycles
    assert four.cycles_per_image == result.total_cycles / 4 < one.cycles
    figures = batches.Batch(4, result.total_cycles, result.macs // 4, tiny, resident=True)
    assert four.utilization == pytest.approx(figures.utilization, rel=0, abs=0)
    assert four.utilization > one.utilization
    assert four.images_per_second == pytest.approx(figures.images_per_second, rel=1e-12)
    assert four.seconds == figures.seconds
    assert four.label() == "tinynet rows=4 cols=4 bandwidth=4 batch=4"


def test_a_network_with_host_steps_runs_its_batch_image_by_image(tmp_path, capsys, monkeypatch):
    from accel import batch as batches
    from tests.test_accel_deploy import se_net

    qnet = quantized(se_net())
    tiny = config.preset("tiny")
    one = sweep.evaluate_point(qnet, "hosted", qnet.digest, tiny, sim.run, None)
    three = sweep.evaluate_point(qnet, "hosted", qnet.digest, tiny, sim.run, None, 3)
    assert one.ok and not one.image_by_image
    assert three.ok and three.image_by_image and three.cycles == 3 * one.cycles
    assert three.utilization == pytest.approx(one.utilization, rel=1e-12)
    # The command says so, once, naming the network.
    onnx_path = tmp_path / "hosted.onnx"
    monkeypatch.setattr("accel.frontends.load_model", lambda model, input_size=None: se_net())
    args = ["sweep", str(onnx_path), "--preset", "tiny", "--batch", "1,3", "-j", "1"]
    assert main([*args, "-o", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert printed.count(f"note: hosted: {batches.IMAGE_BY_IMAGE_NOTE}") == 1
    rows = read_rows(tmp_path / "s" / "sweep.csv")
    assert [(r["batch"], r["image_by_image"]) for r in rows] == [("1", "0"), ("3", "1")]


def test_the_pareto_front_is_per_network_and_batch():
    tiny = config.preset("tiny")
    small, large = sweep.sweep_configs(tiny, [4, 8])
    point = lambda cfg, batch, cycles: dataclasses.replace(  # noqa: E731
        sweep.SweepPoint.of("net", cfg, "d", batch), status="ok", cycles=cycles, utilization=0.5
    )
    # Batch 4 on the large array takes more cycles than batch 1 on the small one; per batch,
    # both points are on the front (more PEs, fewer cycles).
    points = sweep.with_pareto(
        [point(small, 1, 100), point(large, 1, 60), point(small, 4, 300), point(large, 4, 200)]
    )
    assert [p.pareto for p in points] == [True, True, True, True]
    points = sweep.with_pareto([point(small, 4, 300), point(large, 4, 400), point(large, 1, 60)])
    assert [p.pareto for p in points] == [True, False, True]


def test_the_command_on_an_existing_cluster(cluster, tmp_path, capsys):
    local, _ = cluster
    args = ["sweep", "tinynet,tinyconv", "--preset", "tiny", "--rows", "4,8"]
    assert main([*args, "-j", "1", "-o", str(tmp_path / "here")]) == 0
    here = capsys.readouterr().out
    assert main([*args, "--scheduler", local.scheduler_address, "-o", str(tmp_path / "there")]) == 0
    there = capsys.readouterr().out
    assert f"tinynet,tinyconv: 4 points on tiny (dask cluster {local.scheduler_address})" in there
    assert "tinynet,tinyconv: 4 points on tiny (1 process)" in here
    table = lambda text: [line for line in text.splitlines()[1:] if "/" not in line]  # noqa: E731
    assert table(here) == table(there)
    for name in ("sweep.csv", "pareto.png", "sweep.json"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()


def test_a_scheduler_that_cannot_be_reached_is_one_error_and_writes_nothing(
    tmp_path, capsys, monkeypatch
):
    import socket

    with socket.socket() as free:  # a port on the loopback that nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", "0.5s")
    out = tmp_path / "s"
    args = ["sweep", "tinyconv", "--preset", "tiny", "--scheduler", f"tcp://127.0.0.1:{port}"]
    assert main([*args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"accel: error: Timed out trying to connect to tcp://127.0.0.1:{port}")
    assert list(out.iterdir()) == []


def test_workers_with_other_code_are_refused(cluster):
    local, _ = cluster
    packages = ("accel", "sim")
    with distributed.Client(local.scheduler_address) as client:
        sweep.check_workers(client, packages, "the cluster")  # the same code: fine
        with pytest.raises(ValueError, match=r"worker tcp://127.0.0.1:\d+ of the cluster runs "):
            sweep.check_workers(client, packages, "the cluster", local="0" * 16)
        with pytest.raises(ValueError, match=r"the workers of the cluster cannot run accel, nope"):
            sweep.check_workers(client, ("accel", "nope"), "the cluster", local="x")


def test_an_interrupted_cluster_sweep_leaves_a_valid_csv(cluster, tmp_path):
    local, _ = cluster
    done = []

    def progress(finished, total):
        done.append(finished)
        if finished == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.sweep_to_directory(
            tmp_path,
            networks(),
            config.preset("tiny"),
            grid(),
            sim.run,
            scheduler=local.scheduler_address,
            progress=progress,
        )
    rows = read_rows(tmp_path / "sweep.csv")
    assert len(rows) == 2 and done == [0, 1, 2]
    assert all(row["pareto"] == "" for row in rows)


def test_without_dask_the_sweep_runs_in_a_process_pool(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert not sweep.dask_available()
    args = ["sweep", "tinyconv", "--preset", "tiny", "--rows", "4,8", "-j", "2"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "tinyconv: 2 points on tiny (2 processes)" in out
    assert err.count("dask.distributed is not installed") == 1
    assert "pip install 'accel[cluster]'" in err
    assert main([*args, "-q", "-o", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err == ""
    a, b = (read_rows(tmp_path / d / "sweep.csv") for d in "ab")
    assert a == b and [r["status"] for r in a] == ["ok", "ok"]
    status = main([*args[:-2], "--scheduler", "tcp://127.0.0.1:1", "-o", str(tmp_path / "c")])
    assert status == 2
    assert "needs dask.distributed, which is not installed" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Streaming and resuming


def test_rows_stream_in_as_points_finish(tmp_path):
    seen = []

    def on_point(point):
        rows = read_rows(tmp_path / "sweep.csv")  # valid CSV, this point's row already in
        seen.append(len(rows))
        assert rows[-1]["config_digest"] == point.config_digest

    outcome = sweep.sweep_to_directory(
        tmp_path, networks(), config.preset("tiny"), grid()[:3], sim.run, jobs=1, on_point=on_point
    )
    assert seen == [1, 2, 3, 4, 5, 6] and outcome.resumed == 0


def test_a_rerun_recomputes_only_the_deleted_rows(tmp_path, capsys, monkeypatch):
    counting = Counting()
    monkeypatch.setattr(sim, "run", counting)
    out = tmp_path / "s"
    args = ["sweep", "tinynet", "--preset", "tiny", "--rows", "4,8", "--cols", "4,8", "-j", "1"]
    assert main([*args, "-o", str(out)]) == 0
    assert len(counting.configs) == 4
    first = capsys.readouterr().out
    final = (out / "sweep.csv").read_text()
    lines = final.splitlines(keepends=True)
    deleted = [lines[2], lines[4]]  # the second and fourth points
    (out / "sweep.csv").write_text("".join(line for line in lines if line not in deleted))
    counting.configs.clear()
    assert main([*args, "-o", str(out)]) == 0
    assert counting.configs == ["tiny-4x8-bw4", "tiny-8x8-bw4"]
    again = capsys.readouterr().out
    assert "tinynet: 4 points on tiny (1 process, 2 resumed from sweep.csv)" in again
    assert (out / "sweep.csv").read_text() == final  # the same bytes as the whole run
    assert again.splitlines()[1:] == first.splitlines()[1:]
    counting.configs.clear()
    assert main([*args, "--restart", "-o", str(out)]) == 0
    assert len(counting.configs) == 4


def test_a_rerun_with_more_batch_sizes_runs_only_the_new_batches(tmp_path, capsys, monkeypatch):
    counting = Counting()
    monkeypatch.setattr(sim, "run", counting)
    out = tmp_path / "s"
    args = ["sweep", "tinynet", "--preset", "tiny", "--rows", "4,8", "-j", "1", "-o", str(out)]
    assert main([*args, "--batch", "2"]) == 0
    assert len(counting.configs) == 2
    first = read_rows(out / "sweep.csv")
    capsys.readouterr()
    counting.configs.clear()
    assert main([*args, "--batch", "1,2"]) == 0  # the batch-2 points resume, batch 1 runs
    assert counting.configs == ["tiny-4x4-bw4", "tiny-8x4-bw4"]
    printed = capsys.readouterr().out
    assert "tinynet: 4 points on tiny (1 process, 2 resumed from sweep.csv)" in printed
    header = printed.splitlines()[1].split()
    assert header[3:7] == ["batch", "PEs", "buffer", "KiB"] and "cycles/image" in header
    assert "images/s" in header and "note: pareto is per network and batch size" in printed
    rows = read_rows(out / "sweep.csv")
    assert [r["batch"] for r in rows] == ["1", "2", "1", "2"]
    assert [r["cycles"] for r in rows[1::2]] == [r["cycles"] for r in first]
    for row in rows:
        cycles, batch = int(row["cycles"]), int(row["batch"])
        assert float(row["cycles_per_image"]) == cycles / batch
        assert float(row["images_per_second"]) == pytest.approx(batch / float(row["seconds"]))
    # Two batches of the same config: two points, each on the front of its batch.
    assert [r["pareto"] for r in rows] == ["1", "1", "1", "1"]


def test_a_sweep_csv_from_before_the_batch_axis_resumes_as_batch_1(tmp_path, capsys, monkeypatch):
    counting = Counting()
    monkeypatch.setattr(sim, "run", counting)
    out = tmp_path / "s"
    args = ["sweep", "tinynet", "--preset", "tiny", "--rows", "4,8", "-j", "1", "-o", str(out)]
    assert main(args) == 0
    final = (out / "sweep.csv").read_text()
    # The file as the sweep before the batch axis wrote it: without the four new columns.
    old = [
        {k: v for k, v in row.items() if k in sweep.COLUMNS_BEFORE_BATCH}
        for row in read_rows(out / "sweep.csv")
    ]
    with (out / "sweep.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(sweep.COLUMNS_BEFORE_BATCH))
        writer.writeheader()
        writer.writerows(old)
    assert "batch" not in (out / "sweep.csv").read_text().splitlines()[0].split(",")
    counting.configs.clear()
    capsys.readouterr()
    assert main(args) == 0
    assert counting.configs == []  # both points resumed
    assert "(1 process, 2 resumed from sweep.csv)" in capsys.readouterr().out
    assert (out / "sweep.csv").read_text() == final  # rewritten with the batch columns
    assert main([*args, "--batch", "1,2"]) == 0
    assert len(counting.configs) == 2  # only the batch-2 points ran


def test_a_sweep_csv_from_before_the_dataflow_axis_resumes_as_ws(tmp_path, capsys, monkeypatch):
    counting = Counting()
    monkeypatch.setattr(sim, "run", counting)
    out = tmp_path / "s"
    args = ["sweep", "tinynet", "--preset", "tiny", "--rows", "4,8", "-j", "1", "-o", str(out)]
    assert main(args) == 0
    final = (out / "sweep.csv").read_text()
    old = [
        {k: v for k, v in row.items() if k in sweep.COLUMNS_BEFORE_DATAFLOW}
        for row in read_rows(out / "sweep.csv")
    ]
    with (out / "sweep.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(sweep.COLUMNS_BEFORE_DATAFLOW))
        writer.writeheader()
        writer.writerows(old)
    counting.configs.clear()
    capsys.readouterr()
    assert main(args) == 0
    assert counting.configs == []  # both points resumed, as weight-stationary
    assert (out / "sweep.csv").read_text() == final  # rewritten with the dataflow column
    assert main([*args, "--dataflow", "ws,os"]) == 0
    assert [name.rsplit("-", 1)[1] for name in counting.configs] == ["os", "os"]  # only os ran


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    counting = Counting()
    base, configs = config.preset("tiny"), grid()[:4]

    def stop_after_two(done, total):
        if done == 2:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        sweep.sweep_to_directory(
            tmp_path, networks(), base, configs, counting, jobs=1, progress=stop_after_two
        )
    rows = read_rows(tmp_path / "sweep.csv")
    assert len(rows) == 2 and len(counting.configs) == 2
    # A killed writer may leave half a row: it is not valid, so it is not resumed.
    with (tmp_path / "sweep.csv").open("a") as file:
        file.write("tinynet,4,8,4,100,128,2048,4096,1024,1024,32,83")
    ran = []
    outcome = sweep.sweep_to_directory(
        tmp_path, networks(), base, configs, sim.run, jobs=1, on_point=ran.append
    )
    assert outcome.resumed == 2 and len(ran) == 6
    assert not {p.config_digest for p in ran if p.network == "tinynet"} & {
        r["config_digest"] for r in rows
    }
    assert len(read_rows(tmp_path / "sweep.csv")) == 8
    fresh = sweep.sweep_to_directory(tmp_path / "fresh", networks(), base, configs, sim.run, jobs=1)
    assert sweep.format_rows(outcome.points, header=True) == sweep.format_rows(
        fresh.points, header=True
    )


def test_failed_points_are_recorded_and_run_again(tmp_path, capsys):
    toml = tmp_path / "small.toml"
    toml.write_text(config.preset("tiny").replace(buffers={"input_bytes": 128}).to_toml())
    out = tmp_path / "s"
    args = ["sweep", "tinyconv", "--config", str(toml), "--rows", "4,8", "-j", "1", "-o", str(out)]
    assert main(args) == 1
    printed, err = capsys.readouterr()
    rows = read_rows(out / "sweep.csv")
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert rows[1]["error"].startswith("CompileError: layer 'conv' (Conv2d): one output pixel")
    assert rows[1]["cycles"] == rows[1]["pareto"] == "" and rows[0]["pareto"] == "1"
    assert "failed" in printed.splitlines()[3]
    assert "accel: failed: tinyconv rows=8 cols=4 bandwidth=4: CompileError: layer 'conv'" in err
    assert err.strip().endswith("accel: 1 of 2 points failed (their error is in sweep.csv)")
    assert main(args) == 1  # the failed point runs again, the finished one does not
    assert "(1 process, 1 resumed from sweep.csv)" in capsys.readouterr().out


def test_another_network_or_config_in_the_directory_is_an_error(tmp_path, capsys):
    out = str(tmp_path / "s")
    assert main(["sweep", "tinynet", "--preset", "tiny", "-j", "1", "-o", out]) == 0
    before = (tmp_path / "s" / "sweep.csv").read_bytes()
    capsys.readouterr()
    for args in (["tinyconv", "--preset", "tiny"], ["tinynet", "--preset", "tiny", "--seed", "1"]):
        assert main(["sweep", *args, "-j", "1", "-o", out]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("accel: error: ")
        assert "holds a sweep of tinynet (network digest " in err
        assert f"not of {args[0]} (network digest " in err and "--restart" in err
    toml = tmp_path / "slow.toml"
    toml.write_text(config.preset("tiny").replace(dram={"latency": 99}).to_toml())
    assert main(["sweep", "tinynet", "--config", str(toml), "-j", "1", "-o", out]) == 2
    assert "on 'tiny' (config digest " in capsys.readouterr().err
    assert (tmp_path / "s" / "sweep.csv").read_bytes() == before
    assert main(["sweep", "tinyconv", "--preset", "tiny", "-j", "1", "--restart", "-o", out]) == 0
    assert [r["network"] for r in read_rows(tmp_path / "s" / "sweep.csv")] == ["tinyconv"]
    # A subset or a superset of the networks continues the sweep.
    assert main(["sweep", "tinyconv,tinynet", "--preset", "tiny", "-j", "1", "-o", out]) == 0
    assert "1 resumed from sweep.csv" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# The command


def test_the_command_over_buffers_and_clocks(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["sweep", "tinyconv", "--preset", "tiny", "--input-kib", "0.5,4", "--clock", "100,200"]
    assert main([*args, "-j", "1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split() == [
        *("rows", "cols", "bandwidth", "input", "KiB", "MHz", "PEs", "buffer", "KiB"),
        *("cycles", "util%", "ms", "pareto"),
    ]
    rows = read_rows(out / "sweep.csv")
    assert [(r["input_bytes"], r["clock_mhz"]) for r in rows] == [
        ("512", "100"),
        ("512", "200"),
        ("4096", "100"),
        ("4096", "200"),
    ]
    assert float(rows[0]["seconds"]) == pytest.approx(2 * float(rows[1]["seconds"]))
    assert main(["sweep", "tinyconv", "--preset", "tiny", "--input-kib", "0.3", "-o", "x"]) == 2
    assert "--input-kib: 0.3 KiB is not a whole number of bytes" in capsys.readouterr().err


def test_the_progress_bar_counts_points(tmp_path, capsys, monkeypatch):
    import io

    from accel.cli import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(Progress, "DELAY", 0.0)
    monkeypatch.setattr(sys, "stderr", terminal)
    args = ["sweep", "tinyconv", "--preset", "tiny", "--rows", "4,8", "--cols", "4,8", "-j", "1"]
    assert main([*args, "-v", "-o", str(tmp_path)]) == 0
    shown = terminal.getvalue().replace("\x1b[K", "")
    assert "sweep tinyconv: loading and quantising tinyconv" in shown
    for done in range(5):
        assert f"] {done}/4 " in shown
    assert "\raccel: tinyconv rows=8 cols=8 bandwidth=4: compiled\n" in shown  # above the bar
    # erased when done, before the summary
    assert re.search(r"\] 4/4 [\d.]+s\raccel: program cache 0 of 4 programs from it\n$", shown)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tinyconv,", "--preset", "tiny"], "sweep: empty model name in 'tinyconv,'"),
        (["tinyconv,tinyconv", "--preset", "tiny"], "the model 'tinyconv' is listed twice"),
        (["tinyconv", "-j", "2", "--scheduler", "tcp://h:1"], "give --jobs (workers on this"),
        (["tinyconv", "--clock", "fast"], "--clock: 'fast' is not a number"),
        (["tinyconv", "--batch", "0"], "--batch: values must be >= 1, got 0"),
        (["tinyconv", "--batch", "2,2"], "--batch: 2 is listed twice"),
    ],
)
def test_sweep_command_errors(tmp_path, capsys, args, message):
    assert main(["sweep", *args, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_sweep_csv_is_the_same_with_and_without_the_cache(tmp_path, capsys):
    runs = {}
    for label, extra in (("cold", []), ("warm", []), ("off", ["--no-cache"])):
        out = tmp_path / label
        args = ["sweep", "tinynet", "--preset", "tiny", "--cols", "4,8", "-j", "1", "-v", *extra]
        assert main([*args, "-o", str(out)]) == 0
        printed, err = capsys.readouterr()
        table = [line for line in printed.splitlines()[1:] if not line.startswith(str(out))]
        runs[label] = (table, {p.name: p.read_bytes() for p in out.iterdir()})
        expected = {"cold": "0 of 2 programs", "warm": "2 of 2 programs", "off": "off (--no-cache)"}
        assert f"accel: program cache {expected[label]}" in err
        if label == "warm":
            assert "accel: tinynet rows=4 cols=8 bandwidth=4: program from the cache" in err
    assert runs["cold"] == runs["warm"] == runs["off"]
    assert sorted(runs["cold"][1]) == ["layers.csv", "pareto.png", "sweep.csv", "sweep.json"]


def test_read_csv_gives_back_the_streamed_points(tmp_path):
    outcome = sweep.sweep_to_directory(
        tmp_path, networks(), config.preset("tiny"), grid()[:2], sim.run, jobs=1
    )
    key = lambda p: (p.network, p.network_digest, p.config_digest, p.cycles, p.error)  # noqa: E731
    assert [key(p) for p in sweep.read_csv(tmp_path / "sweep.csv")] == [
        key(p) for p in outcome.points
    ]
    assert sweep.read_csv(tmp_path / "missing.csv") == []


def test_a_network_with_host_ops_sweeps_over_its_accelerator_segments():
    """The cycles of a point are its segments' back to back, as `accel simulate` reports."""
    from accel import deploy
    from tests.test_accel_deploy import se_net

    qnet = quantized(se_net())
    tiny = config.preset("tiny")
    point = sweep.evaluate_point(qnet, "hosted", qnet.digest, tiny, sim.run, None)
    run = deploy.run(
        deploy.deploy(qnet, tiny), None, lambda program, _: sim.run(program, compute_outputs=False)
    )
    assert point.status == "ok" and point.cycles == run.total_cycles > 0
