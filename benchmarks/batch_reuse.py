"""Weights kept resident across a batch: what one program for N images buys.

For each batch size N, the network is compiled as one program for N images
(``compile(..., batch=N)``) and run on the cycle model (cycles only: the schedule does not
depend on the data; bit-exactness is the tests' job). One line per N: total cycles, cycles
per image, the utilization of the fully connected layer(s) and of the whole network, the
DRAM bytes of weight loads per image, and the wall time to compile and simulate. Figures,
not assertions:

    python benchmarks/batch_reuse.py [--model resnet18] [--size 224] [--preset edge]
        [--batches 1,2,4,8]
"""

from __future__ import annotations

import argparse
import time


def measure(qnet, cfg, images: int) -> dict:
    import sim
    from accel import batch
    from accel.compiler import compile

    t0 = time.perf_counter()
    program = compile(qnet, cfg, batch=images)
    t1 = time.perf_counter()
    result = sim.run(program, None, compute_outputs=False)
    t2 = time.perf_counter()
    fc = [layer for layer in result.layers if layer.kind == "Linear"]
    fc_macs = sum(layer.macs for layer in fc)
    fc_cycles = sum(layer.cycles for layer in fc)
    return {
        "images": images,
        "total_cycles": result.total_cycles,
        "cycles_per_image": result.total_cycles / images,
        "fc_utilization": fc_macs / (cfg.array.pes * fc_cycles) if fc_cycles else 0.0,
        "utilization": result.utilization,
        "weight_bytes_per_image": batch.weight_bytes(program) / images,
        "instructions": program.instruction_count,
        "compile_s": t1 - t0,
        "simulate_s": t2 - t1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--preset", default="edge")
    parser.add_argument("--batches", default="1,2,4,8")
    args = parser.parse_args()

    from accel import config, graph, models, ptq

    network = models.get(args.model, input_size=args.size)
    qnet = ptq.quantize(graph.fuse_activations(network), seed=0)
    cfg = config.preset(args.preset)
    print(f"{args.model} at {args.size} on {args.preset}, one program per batch (cycles only)")
    head = (
        f"{'N':>3} {'total cycles':>14} {'cycles/image':>13} {'FC util':>8} {'net util':>9} "
        f"{'weight B/image':>15} {'instrs':>10} {'compile s':>10} {'sim s':>7}"
    )
    print(head)
    print("-" * len(head))
    for images in (int(n) for n in args.batches.split(",")):
        m = measure(qnet, cfg, images)
        print(
            f"{m['images']:>3} {m['total_cycles']:>14,} {m['cycles_per_image']:>13,.0f} "
            f"{100 * m['fc_utilization']:>7.1f}% {100 * m['utilization']:>8.1f}% "
            f"{m['weight_bytes_per_image']:>15,.0f} {m['instructions']:>10,} "
            f"{m['compile_s']:>10.1f} {m['simulate_s']:>7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
