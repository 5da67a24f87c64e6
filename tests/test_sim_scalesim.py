"""Our machine against SCALE-Sim's weight-stationary analytical model.

Every layer of SCALE-Sim's own ResNet-18 topology, compiled alone for SCALE-Sim's sample
32x32 config with DRAM bandwidth high enough never to stall (as SCALE-Sim's CALC mode
assumes; our DRAM latency of 64 cycles stays in), must take no more cycles on our machine
than SCALE-Sim's "Total Cycles" for it: a real pipelined machine must beat a model that runs
its folds serially with a fill and drain each.
"""

from __future__ import annotations

from pathlib import Path

import sim
from accel import graph
from accel.compiler import compile
from accel.frontends import scalesim
from tests.layers import quantized

DATA = Path(__file__).parent / "data" / "scalesim"  # SCALE-Sim's own samples (MIT licence)
TOPOLOGY = DATA / "Resnet18.csv"
CONFIG = DATA / "scale.cfg"


def single_layer(net: graph.Network, name: str) -> graph.Network:
    sub = graph.Network(name)
    source = f"{name}.input"
    sub.add(source, net.op(source))
    sub.add(name, net.op(name), [source])
    return sub


def test_every_resnet18_layer_beats_scalesim_ws():
    config = scalesim.load_config(CONFIG).replace(dram={"bandwidth": 1024})
    net = scalesim.load_topology(TOPOLOGY)
    rows = scalesim.load_topology_rows(TOPOLOGY)
    assert len(rows) == 21
    worse = []
    for row in rows:
        program = compile(quantized(single_layer(net, row.name)), config)
        ours = sim.run(program, compute_outputs=False)
        theirs = scalesim.scalesim_cycles(row, config.array.rows, config.array.cols)
        if ours.total_cycles > theirs:
            worse.append((row.name, ours.total_cycles, theirs))
    assert not worse, f"layers slower than SCALE-Sim's ws model: {worse}"
