"""Our OS or IS machine against SCALE-Sim's analytical model of that dataflow, layer by layer.

Every layer of SCALE-Sim's ResNet-18 and AlexNet topologies (``tests/data/scalesim``),
compiled alone for SCALE-Sim's sample config at 8x8 and 32x32 with ``array.dataflow = "os"``
and DRAM bandwidth that never stalls (1024 B/cycle; latency 64 stays in); prints ours /
SCALE-Sim's OS "Total Cycles" per layer and min/median/max per network and array. With
``--weight-banks 2`` the weight buffer has two banks (``buffers.weight_banks``: the DMA
writes two weight words per cycle). Run from the repository root::

    python benchmarks/scalesim_os.py [--dataflow os|ws|is] [--arrays 8,32] [--weight-banks 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402
from accel.compiler import compile  # noqa: E402
from accel.frontends import scalesim  # noqa: E402
from tests.layers import quantized  # noqa: E402
from tests.test_sim_scalesim import CONFIG, DATA, single_layer  # noqa: E402

NETWORKS = ("Resnet18", "alexnet")


def ratios(name: str, size: int, dataflow: str, banks: int = 1) -> list[tuple[str, int, int]]:
    """(layer, ours, SCALE-Sim's) of every layer of topology ``name`` on a size x size array
    whose weight buffer has ``banks`` banks."""
    path = DATA / f"{name}.csv"
    config = scalesim.load_config(CONFIG).replace(
        name=f"scale-{size}x{size}-{dataflow}",
        array={"rows": size, "cols": size, "dataflow": dataflow},
        dram={"bandwidth": 1024},
        buffers={"weight_banks": banks},
    )
    net = scalesim.load_topology(path)
    out = []
    for row in scalesim.load_topology_rows(path):
        program = compile(quantized(single_layer(net, row.name)), config)
        ours = sim.run(program, compute_outputs=False).total_cycles
        out.append((row.name, ours, scalesim.scalesim_cycles(row, size, size, dataflow)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataflow", default="os", choices=("os", "ws", "is"))
    parser.add_argument("--arrays", default="8,32")
    parser.add_argument("--layers", action="store_true", help="print every layer")
    parser.add_argument("--weight-banks", type=int, default=1, choices=(1, 2))
    args = parser.parse_args()
    for name in NETWORKS:
        for size in (int(s) for s in args.arrays.split(",")):
            found = ratios(name, size, args.dataflow, args.weight_banks)
            r = [ours / theirs for _, ours, theirs in found]
            slower = [
                f"{layer} {ours / theirs:.3f}" for layer, ours, theirs in found if ours > theirs
            ]
            print(
                f"{name:9s} {size:2d}x{size:<2d} {args.dataflow} {args.weight_banks} bank(s): "
                f"ours/SCALE-Sim min {min(r):.3f} "
                f"median {statistics.median(r):.3f} max {max(r):.3f} over {len(r)} layers; "
                f"slower: {', '.join(slower) or 'none'}",
                flush=True,
            )
            if args.layers:
                for layer, ours, theirs in found:
                    print(f"    {layer:12s} {ours:>12,} {theirs:>12,} {ours / theirs:.3f}")


if __name__ == "__main__":
    main()
