"""Our output- and input-stationary machines against SCALE-Sim's OS and IS analytical models
(issue 16, requirement 3), as ``tests/test_sim_scalesim.py`` does for WS.

Every layer of SCALE-Sim's ResNet-18 and AlexNet topologies, compiled alone for SCALE-Sim's
sample config at 8x8 and 32x32 with ``array.dataflow`` "os" or "is" and DRAM bandwidth that
never stalls (1024 B/cycle; the latency of 64 cycles stays in), takes no more cycles than
SCALE-Sim's "Total Cycles" of the same dataflow for it, except the layers of :data:`SLOWER`,
each held to its measured ratio (``python benchmarks/scalesim_os.py [--dataflow is]`` prints
them all; ``docs/architecture.md``, "Output-stationary dataflow" and "Input-stationary
dataflow", says why they are slower).
"""

from __future__ import annotations

import pytest

import sim
from accel.compiler import compile
from accel.frontends import scalesim
from tests.layers import quantized
from tests.test_sim_scalesim import CONFIG, DATA, single_layer

#: Output-stationary with one weight bank: (topology, array size, layer) -> ours / SCALE-Sim's
#: cycles, measured and rounded up to 0.001: the layers such an OS machine runs slower than
#: SCALE-Sim's OS formula (with two weight banks, none). Conv5_x
#: (5x5 outputs, one pixel group) and Conv4_1a at 32x32 stream their weights at the DMA's one word
#: per cycle, as fast as the array reads them, so the input loads (784 words for Conv5_x), the
#: DRAM latency and the last chunk's feed and drain add to the weights' 73,728 words: 74,795
#: cycles at best for Conv5_1b against SCALE-Sim's 74,719, which has no DRAM. Two weight banks
#: (``buffers.weight_banks``: the DMA writes two weight words per cycle) close them.
SLOWER_OS = {
    ("Resnet18", 32, "Conv4_1a"): 1.014,
    ("Resnet18", 32, "Conv5_1b"): 1.006,
    ("Resnet18", 32, "Conv5_2a"): 1.006,
    ("Resnet18", 32, "Conv5_2b"): 1.006,
}

#: Input-stationary: none. FC at 8x8 was the last (1.024): its weights stream as fast as the
#: array reads them, so it now streams them in small chunks (``lower_conv.ConvPasses.paced``)
#: and ends one small chunk behind the DMA: 0.995.
SLOWER_IS: dict[tuple[str, int, str], float] = {}

SLOWER = {"os": SLOWER_OS, "is": SLOWER_IS}


@pytest.mark.parametrize("banks", [1, 2])
@pytest.mark.parametrize("size", [8, 32])
@pytest.mark.parametrize("topology", ["Resnet18", "alexnet"])
@pytest.mark.parametrize("dataflow", ["os", "is"])
def test_every_layer_beats_scalesim_or_is_a_known_slower_one(dataflow, topology, size, banks):
    path = DATA / f"{topology}.csv"
    config = scalesim.load_config(CONFIG).replace(
        array={"rows": size, "cols": size, "dataflow": dataflow},
        dram={"bandwidth": 1024},
        buffers={"weight_banks": banks},
    )
    net = scalesim.load_topology(path)
    rows = scalesim.load_topology_rows(path)
    assert len(rows) == {"Resnet18": 21, "alexnet": 5}[topology]
    wrong = []
    for row in rows:
        program = compile(quantized(single_layer(net, row.name)), config)
        ours = sim.run(program, compute_outputs=False).total_cycles
        theirs = scalesim.scalesim_cycles(row, size, size, dataflow)
        bound = SLOWER[dataflow].get((topology, size, row.name), 1.0) if banks == 1 else 1.0
        if ours > theirs * bound:
            wrong.append((row.name, ours, theirs, round(ours / theirs, 4)))
    assert not wrong, (
        f"layers slower than SCALE-Sim's {dataflow} model (or their known ratio): {wrong}"
    )
