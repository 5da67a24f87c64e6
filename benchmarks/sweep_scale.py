"""How sweep time grows with points and workers, and what that predicts for a cluster.

Runs ``accel.sweep.run_sweep`` (compile + cycles-only model per point, no program cache, so
every point compiles) on a dask ``LocalCluster`` of 1 and 2 worker processes for 8, 16 and
32 points of ResNet-18 at 64x64 on small arrays, and measures in the same run the time of
one point in this process (the mean over a few points). Each sweep's wall time includes
starting and stopping its cluster, as ``accel sweep`` does; each is the fastest of
``--repeat`` runs (default 2), which filters out some of the noise of a shared machine.
Printed:

* per (points, workers): wall time, points per second, points per second per worker, the
  ratio of the wall time to ``points * single-point time / workers`` (1.0 would be perfect
  scaling with no overhead), and the speed-up over the same points run in this process;
* the extrapolation: the marginal points per second per worker (the slope of a
  least-squares line through the sweeps of each worker count, so the fixed start-up cost
  drops out), as a ratio to one point in this process, and what a cluster of W such
  workers would take for N points.

The machine's load average is printed before and after: other processes on the machine
take cores from the workers and make the figures worse. Figures, not assertions:
``python benchmarks/sweep_scale.py [--points 8,16,32] [--workers 1,2] [--model resnet18]
[--input-size 64]``. Needs the ``cluster`` extra.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np


def configs(count: int):
    """``count`` small-array configs, the array sizes interleaved so that every prefix has
    the same mix of cheap and expensive points."""
    from accel import config, sweep

    base = config.preset("edge")
    arrays = [(8, 8), (8, 16), (16, 8), (16, 16)]
    out = []
    for bandwidth, weight_kib, clock in itertools.product(
        (4, 8, 16, 32), (32, 64), (250.0, 500.0, 1000.0)
    ):
        for rows, cols in arrays:
            (cfg,) = sweep.sweep_configs(
                base,
                [rows],
                [cols],
                [bandwidth],
                buffers={"weight": [weight_kib * 1024]},
                clocks=[clock],
            )
            out.append(cfg)
    if count > len(out):
        raise SystemExit(f"at most {len(out)} points")
    return out[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--points", default="8,16,32")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--single", type=int, default=4, help="points timed one by one")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each measurement; the fastest counts"
    )
    args = parser.parse_args()

    import os

    import sim
    from accel import graph, models, ptq, sweep

    if not sweep.dask_available():
        raise SystemExit("needs dask.distributed: pip install -e '.[cluster]'")
    points = [int(n) for n in args.points.split(",")]
    workers = [int(n) for n in args.workers.split(",")]
    network = models.get(args.model, input_size=args.input_size)
    qnet = ptq.quantize(graph.fuse_activations(network), seed=0)
    name = f"{args.model}@{args.input_size}"

    # One point at a time in this process: the unit everything is measured in (after one
    # untimed point, so that first-call costs do not count).
    sweep.run_sweep({name: qnet}, configs(1), sim.run, jobs=1)
    load = os.getloadavg()
    times = []
    for cfg in configs(args.single):
        best = float("inf")
        for _ in range(args.repeat):
            began = time.perf_counter()
            (point,) = sweep.run_sweep({name: qnet}, [cfg], sim.run, jobs=1)
            best = min(best, time.perf_counter() - began)
            assert point.ok, point.error
        times.append(best)
    single = sum(times) / len(times)
    print(
        f"{name}, {os.cpu_count()} CPUs (load average {load[0]:.1f} before); one point in "
        f"this process (compile + cycles-only model, mean of {len(times)}, each the fastest "
        f"of {args.repeat} runs): {single:.3f} s"
    )
    print()
    header = (
        f"{'points':>6s} {'workers':>10s} {'wall s':>7s} {'points/s':>8s} "
        f"{'pts/s/worker':>12s} {'wall / ideal':>12s} {'speed-up':>8s}"
    )
    print(header)
    print("-" * len(header))
    walls: dict[tuple[int, int], float] = {}
    for count in points:
        grid = configs(count)
        for jobs in [0, *workers]:
            wall = float("inf")
            for _ in range(args.repeat):
                began = time.perf_counter()
                if jobs == 0:  # in this process, no cluster: the baseline
                    done = sweep.run_sweep({name: qnet}, grid, sim.run, jobs=1)
                elif jobs == 1:  # jobs=1 would run in this process: a one-worker cluster
                    done = _one_worker_cluster({name: qnet}, grid)
                else:  # a LocalCluster of `jobs` workers, as `accel sweep -j N` starts
                    done = sweep.run_sweep({name: qnet}, grid, sim.run, jobs=jobs)
                wall = min(wall, time.perf_counter() - began)
                assert all(p.ok for p in done), [p.error for p in done if not p.ok]
            walls[count, jobs] = wall
            label = "in-process" if jobs == 0 else str(jobs)
            ideal = count * single / max(jobs, 1)
            print(
                f"{count:6d} {label:>10s} {wall:7.2f} {count / wall:8.2f} "
                f"{count / wall / max(jobs, 1):12.3f} {wall / ideal:12.2f} "
                f"{walls[count, 0] / wall:8.2f}"
            )
    print(
        f"(each wall time the fastest of {args.repeat} runs; load average "
        f"{os.getloadavg()[0]:.1f} after; speed-up: against in-process)"
    )
    print()
    if len(points) >= 2:
        print(
            "extrapolation (a least-squares line wall = fixed + points / rate through the "
            f"{len(points)} sweeps of each worker count):"
        )
        rates = {}
        for jobs in workers:
            per_point, fixed = np.polyfit(points, [walls[n, jobs] for n in points], 1)
            rates[jobs] = 1 / per_point / jobs
            print(
                f"  {jobs} worker(s): {rates[jobs]:.3f} points/s per worker = "
                f"{rates[jobs] * single:.2f} x the single-point rate (1/{single:.3f} s); "
                f"fixed cost {fixed:.1f} s"
            )
        per_worker = rates[max(workers)]
        for cluster, count in ((16, 1000), (64, 10000)):
            print(
                f"  predicted: {count} points on {cluster} such workers ~ "
                f"{count / (per_worker * cluster):.0f} s plus start-up (if the points cost "
                f"what these do and the scheduler keeps up)"
            )


def _one_worker_cluster(networks, grid):
    """The sweep on a LocalCluster of one worker process (what ``--jobs 1`` would be if it
    did not run in this process)."""
    import logging

    from distributed import LocalCluster

    import sim
    from accel import sweep

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    ) as cluster:
        return sweep.run_sweep(networks, grid, sim.run, scheduler=cluster.scheduler_address)


if __name__ == "__main__":
    main()
