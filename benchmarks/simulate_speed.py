"""Time and peak memory to compile and simulate whole networks, against the arithmetic floor.

One line per (model, config, mode), each measured in a fresh process doing quantise +
compile + simulate: compile time, simulation time, peak resident memory, and the ratio of
compile + simulate to the **floor**: the time a float64 BLAS matrix product of the network's
MAC count takes on this machine, measured in the same run (a 2048 x 2048 x 2048 product,
scaled; float64 is exact for int8 x int8 sums below 2^53, so it is the fastest exact way a
general-purpose machine computes these MACs), and the CPU seconds of compile + simulate (on a
shared machine the wall times wait for the CPU; the CPU seconds much less). Figures, not
assertions:

    python benchmarks/simulate_speed.py [--models resnet18,resnet50] [--presets edge,server]
        [--modes tensors,cycles]

(``--presets tiny --models tinynet,lenet5,resnet18,alexnet,resnet50 --modes cycles`` gives how
the times grow with the program's instruction count.)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def blas_macs_per_second() -> float:
    """Best of three 2048^3 float64 products, in MACs per second (BLAS's own threads)."""
    import numpy as np

    n = 2048
    a, b = np.random.default_rng(0).random((2, n, n))
    best = min(_timed(lambda: a @ b) for _ in range(3))
    return n**3 / best


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def measure(model: str, size: int, preset: str, outputs: bool) -> dict:
    import sim
    from accel import config, graph, models, ptq, synthetic
    from accel.compiler import compile

    t0 = time.perf_counter()
    network = models.get(model, input_size=size or None)
    qnet = ptq.quantize(graph.fuse_activations(network), seed=0)
    t1, c1 = time.perf_counter(), time.process_time()
    program = compile(qnet, config.preset(preset))
    t2, c2 = time.perf_counter(), time.process_time()
    image = None
    if outputs:
        image = program.make_image(synthetic.random_int8_inputs(qnet))
    t3, c3 = time.perf_counter(), time.process_time()
    result = sim.run(program, image, compute_outputs=outputs)
    t4, c4 = time.perf_counter(), time.process_time()
    return {
        "model": model,
        "input": size,
        "preset": preset,
        "outputs": outputs,
        "quantize_s": t1 - t0,
        "compile_s": t2 - t1,
        "simulate_s": t4 - t3,
        "cpu_s": (c2 - c1) + (c4 - c3),
        "instructions": program.instruction_count,
        "macs": result.macs,
        "cycles": result.total_cycles,
        "utilization": round(result.utilization, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,resnet50")
    parser.add_argument("--presets", default="edge,server")
    parser.add_argument("--size", type=int, default=0, help="input side (default: native)")
    parser.add_argument(
        "--modes", default="tensors,cycles", help="tensors (every tensor computed), cycles"
    )
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        model, size, preset, outputs = args.one
        print(json.dumps(measure(model, int(size), preset, outputs == "1")))
        return
    rate = blas_macs_per_second()
    print(f"floor: float64 BLAS at {rate / 1e9:.1f} GMAC/s (2048^3 product, best of 3)")
    print(
        f"{'model':10s} {'preset':7s} {'mode':12s} {'compile s':>9s} {'sim s':>7s} "
        f"{'instrs':>8s} {'cycles':>11s} {'util':>6s} {'peak MB':>8s} {'floor s':>8s} "
        f"{'x floor':>8s} {'cpu s':>6s}"
    )
    for model in args.models.split(","):
        for preset in args.presets.split(","):
            for outputs in [mode == "tensors" for mode in args.modes.split(",")]:
                out = subprocess.run(
                    [sys.executable, __file__, "--one", model, str(args.size), preset,
                     "1" if outputs else "0"],
                    capture_output=True,
                    text=True,
                    check=True,
                )  # fmt: skip
                r = json.loads(out.stdout.strip().splitlines()[-1])
                mode = "with tensors" if outputs else "cycles only"
                floor = r["macs"] / rate
                ratio = (r["compile_s"] + r["simulate_s"]) / floor
                print(
                    f"{model:10s} {preset:7s} {mode:12s} {r['compile_s']:9.2f} "
                    f"{r['simulate_s']:7.2f} {r['instructions']:8d} {r['cycles']:11,d} "
                    f"{r['utilization']:6.3f} {r['peak_rss_mb']:8d} {floor:8.3f} {ratio:8.1f} "
                    f"{r['cpu_s']:6.2f}"
                )


if __name__ == "__main__":
    main()
