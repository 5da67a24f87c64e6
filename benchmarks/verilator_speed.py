"""Verilator backend speed: build time, simulated cycles per second, whole-network verify time.

    python benchmarks/verilator_speed.py [--configs 8x8,edge,server] [--cold] [--network resnet18]
        [--size 64] [--verify-full]

For each config: the build time of the Verilated top (``--cold`` builds into an empty cache,
otherwise a cached build costs ~0.1 s), then one run of the network on the RTL with the
simulated cycles per second (harness and process start included). ``--verify-full`` also
times ``accel.verify.verify`` of resnet18 at 224x224 on ``edge`` (golden, compile, model,
RTL and the per-layer comparison). Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from accel import config, graph, models, ptq, synthetic
from accel.compiler import compile
from accel.verify import verify
from hdl.flow import verilator


def named_config(name: str) -> config.AccelConfig:
    if name == "8x8":
        return config.preset("edge").replace(name="edge-8x8", array={"rows": 8, "cols": 8})
    return config.preset(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="8x8,edge,server")
    parser.add_argument("--cold", action="store_true", help="build into an empty cache")
    parser.add_argument("--network", default="resnet18")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--verify-full", action="store_true")
    args = parser.parse_args()
    if args.cold:
        os.environ["ACCEL_CACHE"] = tempfile.mkdtemp(prefix="accel-cold-")
    qnet = ptq.quantize(
        graph.fuse_activations(models.get(args.network, input_size=args.size)), seed=0
    )
    inputs = synthetic.random_int8_inputs(qnet)
    print(f"{os.cpu_count()} CPUs; {args.network}@{args.size}; cold={args.cold}")
    print(
        f"{'config':10s} {'array':>7s} {'build s':>8s} {'cycles':>11s} {'run s':>7s} "
        f"{'cycles/s':>10s}"
    )
    for name in args.configs.split(","):
        cfg = named_config(name)
        clock = time.perf_counter()
        verilator.build(cfg)
        built = time.perf_counter() - clock
        program = compile(qnet, cfg)
        image = program.make_image(inputs)
        clock = time.perf_counter()
        result = verilator.run(program, image)
        ran = time.perf_counter() - clock
        array = f"{cfg.array.rows}x{cfg.array.cols}"
        print(
            f"{name:10s} {array:>7s} {built:8.1f} {result.total_cycles:11,d} {ran:7.2f} "
            f"{result.total_cycles / ran:10,.0f}"
        )
    if args.verify_full:
        full = ptq.quantize(graph.fuse_activations(models.get("resnet18")), seed=0)
        clock = time.perf_counter()
        outcome = verify(full, config.preset("edge"))
        wall = time.perf_counter() - clock
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in outcome.seconds.items())
        print(
            f"verify resnet18@224 on edge: {'PASS' if outcome.ok else 'FAIL'}, "
            f"{outcome.rtl_cycles:,} cycles, {wall:.1f} s wall ({parts})"
        )


if __name__ == "__main__":
    main()
