"""Time and peak memory to simulate whole networks on the cycle model.

Prints one line per (model, config, mode): compile time, simulation time and the peak
resident memory of a fresh process doing quantise + compile + simulate. Figures, not
assertions: run ``python benchmarks/simulate_speed.py [--models resnet18,resnet50]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(model: str, size: int, preset: str, outputs: bool) -> dict:

    import sim
    from accel import config, graph, models, ptq, synthetic
    from accel.compiler import compile

    t0 = time.perf_counter()
    qnet = ptq.quantize(graph.fuse_activations(models.get(model, input_size=size)), seed=0)
    t1 = time.perf_counter()
    program = compile(qnet, config.preset(preset))
    t2 = time.perf_counter()
    image = None
    if outputs:
        image = program.make_image(synthetic.random_int8_inputs(qnet))
    t3 = time.perf_counter()
    result = sim.run(program, image, compute_outputs=outputs)
    t4 = time.perf_counter()
    return {
        "model": model,
        "input": size,
        "preset": preset,
        "outputs": outputs,
        "quantize_s": round(t1 - t0, 2),
        "compile_s": round(t2 - t1, 2),
        "simulate_s": round(t4 - t3, 2),
        "instructions": program.instruction_count,
        "cycles": result.total_cycles,
        "utilization": round(result.utilization, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="resnet18,resnet50")
    parser.add_argument("--presets", default="edge,server")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        model, size, preset, outputs = args.one
        print(json.dumps(measure(model, int(size), preset, outputs == "1")))
        return
    print(
        f"{'model':10s} {'preset':7s} {'mode':12s} {'compile s':>9s} {'sim s':>7s} "
        f"{'instrs':>8s} {'cycles':>11s} {'util':>6s} {'peak MB':>8s}"
    )
    for model in args.models.split(","):
        for preset in args.presets.split(","):
            for outputs in (True, False):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        model,
                        str(args.size),
                        preset,
                        "1" if outputs else "0",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                mode = "with tensors" if outputs else "cycles only"
                print(
                    f"{model:10s} {preset:7s} {mode:12s} {r['compile_s']:9.2f} "
                    f"{r['simulate_s']:7.2f} {r['instructions']:8d} {r['cycles']:11,d} "
                    f"{r['utilization']:6.3f} {r['peak_rss_mb']:8d}"
                )


if __name__ == "__main__":
    main()
