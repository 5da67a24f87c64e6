"""How sweep time grows with points and workers, and what that predicts for a cluster.

Runs ``accel.sweep.run_sweep`` (compile + cycles-only model per point, no program cache, so
every point compiles) for 8, 16 and 32 points of ResNet-18 at 64x64 on small arrays, in
this process and on dask ``LocalCluster``s of 1 and 2 worker processes, and measures in the
same run one point at a time in this process, the unit of everything else.

Two kinds of figures, because a shared machine makes wall time noisy:

* wall time: of the sweep with its cluster already up (``sweep s``) and with starting and
  stopping the cluster (``wall s``, what ``accel sweep`` takes), and the speed-up over the
  same points run in this process;
* CPU time: what the workers spent (their ``time.process_time`` before and after, summed),
  per point, and as a ratio to one point in this process (``cpu ratio``; 1.0: dask adds no
  work per point). Other jobs on the machine slow the wall times, not this.

The extrapolation: a worker with a core to itself does ``1 / (worker CPU s per point)``
points per second (from the largest sweep), so W such workers take about ``N * CPU s per
point / W`` plus start-up for N points, while the scheduler keeps up. Each measurement is
the fastest of ``--repeat`` runs (default 2). Figures, not assertions:
``python benchmarks/sweep_scale.py [--points 8,16,32] [--workers 1,2] [--model resnet18]
[--input-size 64]``. Needs the ``cluster`` extra.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time


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


def one_point(qnet, name, digest, cfg):
    """(wall s, CPU s) of one point in this process: compile and run, nothing else."""
    import sim
    from accel import sweep

    wall, cpu = time.perf_counter(), time.process_time()
    point = sweep.evaluate_point(qnet, name, digest, cfg, sim.run, None)
    assert point.ok, point.error
    return time.perf_counter() - wall, time.process_time() - cpu


def in_process(networks, grid):
    """(wall s, CPU s) of the sweep in this process."""
    import sim
    from accel import sweep

    wall, cpu = time.perf_counter(), time.process_time()
    points = sweep.run_sweep(networks, grid, sim.run, jobs=1)
    assert all(p.ok for p in points), [p.error for p in points if not p.ok]
    return time.perf_counter() - wall, time.process_time() - cpu


def on_cluster(networks, grid, workers: int):
    """(wall s with start and stop, sweep s, workers' CPU s) on a fresh LocalCluster."""
    from distributed import Client

    import sim
    from accel import sweep

    began = time.perf_counter()
    with sweep.local_cluster(workers) as cluster, Client(cluster) as client:
        before = client.run(time.process_time)
        start = time.perf_counter()
        points = sweep.run_sweep(networks, grid, sim.run, scheduler=cluster.scheduler_address)
        swept = time.perf_counter() - start
        after = client.run(time.process_time)
    wall = time.perf_counter() - began
    assert all(p.ok for p in points), [p.error for p in points if not p.ok]
    return wall, swept, sum(after[w] - before[w] for w in after)


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

    from accel import graph, models, ptq, sweep

    if not sweep.dask_available():
        raise SystemExit("needs dask.distributed: pip install -e '.[cluster]'")
    points = [int(n) for n in args.points.split(",")]
    workers = [int(n) for n in args.workers.split(",")]
    network = models.get(args.model, input_size=args.input_size)
    qnet = ptq.quantize(graph.fuse_activations(network), seed=0)
    name = f"{args.model}@{args.input_size}"
    networks = {name: qnet}

    def best(measure):
        runs = [measure() for _ in range(args.repeat)]
        return tuple(min(values) for values in zip(*runs, strict=True))

    in_process(networks, configs(1))  # first-call costs (imports, caches) do not count
    load = os.getloadavg()[0]
    digest = qnet.digest
    singles = [best(lambda c=cfg: one_point(qnet, name, digest, c)) for cfg in configs(args.single)]
    single_wall = sum(w for w, _ in singles) / len(singles)
    single_cpu = sum(c for _, c in singles) / len(singles)
    print(
        f"{name}, {os.cpu_count()} CPUs, load average {load:.1f} before. One point in this "
        f"process (compile + cycles-only model; mean of {len(singles)} points, each the "
        f"fastest of {args.repeat} runs): {single_wall:.3f} s wall, {single_cpu:.3f} s CPU"
    )
    print()
    header = (
        f"{'points':>6s} {'workers':>10s} {'wall s':>7s} {'sweep s':>7s} {'speed-up':>8s} "
        f"{'CPU s':>7s} {'CPU s/pt':>8s} {'cpu ratio':>9s}"
    )
    print(header)
    print("-" * len(header))
    per_point: dict[int, float] = {}
    startup: dict[int, float] = {}
    for count in points:
        grid = configs(count)
        base_wall, base_cpu = best(lambda grid=grid: in_process(networks, grid))
        print(
            f"{count:6d} {'in-process':>10s} {base_wall:7.2f} {base_wall:7.2f} {1:8.2f} "
            f"{base_cpu:7.2f} {base_cpu / count:8.3f} {base_cpu / count / single_cpu:9.2f}"
        )
        for jobs in workers:
            wall, swept, cpu = best(lambda grid=grid, jobs=jobs: on_cluster(networks, grid, jobs))
            per_point[jobs] = cpu / count
            startup[jobs] = wall - swept
            print(
                f"{count:6d} {jobs:10d} {wall:7.2f} {swept:7.2f} {base_wall / wall:8.2f} "
                f"{cpu:7.2f} {cpu / count:8.3f} {cpu / count / single_cpu:9.2f}"
            )
    print(
        f"(wall s: with the cluster's start and stop; sweep s: the cluster up; speed-up: "
        f"in-process wall / wall; CPU s: of the workers; load average "
        f"{os.getloadavg()[0]:.1f} after)"
    )
    print()
    print(f"extrapolation (from the {max(points)}-point sweeps):")
    for jobs in workers:
        rate = 1 / per_point[jobs]
        print(
            f"  {jobs} worker(s): {per_point[jobs]:.3f} CPU s per point, so "
            f"{rate:.2f} points/s per worker with a core each = {rate * single_cpu:.2f} x "
            f"the single-point rate (1/{single_cpu:.3f} s CPU); start + stop "
            f"{startup[jobs]:.1f} s"
        )
    cpu = per_point[max(workers)]
    for cluster, count in ((16, 1000), (64, 10000)):
        print(
            f"  predicted: {count} points on {cluster} such workers ~ "
            f"{count * cpu / cluster:.0f} s plus start-up (points costing what these do, "
            f"the scheduler keeping up)"
        )


if __name__ == "__main__":
    main()
