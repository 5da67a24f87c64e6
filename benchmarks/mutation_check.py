"""Mutation check: does the default test suite catch small, plausible bugs in ``hdl/``?

Each mutation below is a text substitution in one ``hdl/`` source file (one or more
``(old, new)`` edits, each ``old`` found exactly once), with a one-line description. For each,
the script copies the repository (its working tree, without ``.git``, virtual environments
and caches) to a temporary directory, applies the mutation there (never to the working tree),
and runs the default suite in the copy::

    python -m pytest -q -x -m "not slow" -p no:cacheprovider -n 0 <RTL tests first> <the others>

The block and equivalence tests of the RTL are named first, then every other
``tests/test_*.py`` (the default suite's files, in a different order), so that most mutants
stop at the first failure within seconds. A mutant is *caught* when the suite fails (the
first failing test is recorded), *missed* when it passes, and a *timeout* when it runs past
``--timeout`` seconds (reported apart: a hang is not a test). A mutant that no longer
elaborates is *INVALID* (a broken mutation, not a catch). It prints a Markdown table and the
kill count, and exits non-zero unless every mutant was caught.

Usage (from the repository root, in its virtual environment)::

    python benchmarks/mutation_check.py                  # every mutant, 2 at a time
    python benchmarks/mutation_check.py --jobs 1 --only post+1 vector-1
    python benchmarks/mutation_check.py --list

Not part of the pass/fail suite (``benchmarks/`` never is): it takes 10-30 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The RTL's own tests, run first so that most mutants fail fast (then the rest of ``tests``).
FIRST = [
    "tests/test_hdl_postproc.py",
    "tests/test_hdl_vector.py",
    "tests/test_hdl_array.py",
    "tests/test_hdl_window.py",
    "tests/test_hdl_post.py",
    "tests/test_hdl_compute.py",
    "tests/test_equivalence_compute.py",
    "tests/test_equivalence_dma.py",
    "tests/test_hdl_dma.py",
    "tests/test_hdl_controller.py",
    "tests/test_equivalence_postproc.py",
    "tests/test_equivalence_vector.py",
    "tests/test_equivalence_array.py",
    "tests/test_equivalence_post.py",
    "tests/test_equivalence_rtl.py",
]


#: Run in the mutated copy before the suite: the top and every block still elaborate.
ELABORATE = """
from accel.config import preset
from hdl.flow.generate import verilog
from hdl.top import Accelerator
import hdl
assert hdl.__file__.startswith(__import__("os").getcwd()), hdl.__file__
verilog(Accelerator(preset("tiny")), "top")
"""


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    edits: tuple[tuple[str, str], ...]
    description: str


def M(name: str, path: str, old: str, new: str, description: str) -> Mutation:
    return Mutation(name, path, ((old, new),), description)


MUTATIONS = [
    # --- pipeline depth -----------------------------------------------------------------
    M(
        "post+1",
        "hdl/postproc.py",
        "        m.d.comb += [self.o.valid.eq(valid[-1]), self.o.payload.eq(output)]",
        "        s7 = Signal.like(output)\n"
        "        s7_valid = Signal()\n"
        "        m.d.sync += [s7.eq(output), s7_valid.eq(valid[-1])]\n"
        "        m.d.comb += [self.o.valid.eq(s7_valid), self.o.payload.eq(s7)]",
        "post-processor: one more pipeline stage (data and valid)",
    ),
    Mutation(
        "post-1",
        "hdl/postproc.py",
        (
            (
                "            m.d.sync += s6[lane].eq(clamped)",
                "            m.d.comb += s6[lane].eq(clamped)",
            ),
            (
                "        m.d.comb += [self.o.valid.eq(valid[-1]), self.o.payload.eq(output)]",
                "        m.d.comb += [self.o.valid.eq(valid[-2]), self.o.payload.eq(output)]",
            ),
        ),
        "post-processor: one less pipeline stage (the clamp stage combinational, data and valid)",
    ),
    M(
        "lut-index-sign",
        "hdl/postproc.py",
        "Cat(clamped[:7], ~clamped[7], s5.table)",
        "Cat(clamped[:7], clamped[7], s5.table)",
        "activation table: the entry of v, not of v + 128 (sign bit not flipped)",
    ),
    M(
        "lut-mux",
        "hdl/postproc.py",
        "Mux(s6_lut, self.table.data[lane], s6[lane])",
        "Mux(s6_lut, s6[lane], self.table.data[lane])",
        "activation table: the output mux's operands swapped",
    ),
    M(
        "vector+1",
        "hdl/vector.py",
        "        m.d.comb += [self.o.valid.eq(valid[-1]), self.o.payload.eq(s5)]",
        "        s6 = Signal.like(s5)\n"
        "        s6_valid = Signal()\n"
        "        m.d.sync += [s6.eq(s5), s6_valid.eq(valid[-1])]\n"
        "        m.d.comb += [self.o.valid.eq(s6_valid), self.o.payload.eq(s6)]",
        "vector unit: one more pipeline stage (data and valid)",
    ),
    Mutation(
        "vector-1",
        "hdl/vector.py",
        (
            (
                "        m.d.comb += [self.o.valid.eq(valid[-1]), self.o.payload.eq(s5)]",
                "        m.d.comb += [self.o.valid.eq(valid[-2]), self.o.payload.eq(s5)]",
            ),
            (
                "                m.d.sync += s5[lane].eq(Const(0, signed(bits)))",
                "                m.d.comb += s5[lane].eq(Const(0, signed(bits)))",
            ),
            (
                "            m.d.sync += s5[lane].eq(Mux(s4.overwrite, term, combined))",
                "            m.d.comb += s5[lane].eq(Mux(s4.overwrite, term, combined))",
            ),
        ),
        "vector unit: one less pipeline stage (the combine stage combinational, data and valid)",
    ),
    M(
        "feeder+1",
        "hdl/feeder.py",
        "        x = Signal(data.ArrayLayout(signed(config.data.act_bits), rows))\n"
        "        for lane in range(rows):\n"
        "            m.d.comb += x[lane].eq(Mux(fed.pad, fed.pad_value, self.input_rd.data[lane]))",
        "        x0 = Signal(data.ArrayLayout(signed(config.data.act_bits), rows))\n"
        "        for lane in range(rows):\n"
        "            m.d.comb += x0[lane].eq(Mux(fed.pad, fed.pad_value, self.input_rd.data[lane]))\n"  # noqa: E501
        "        x, fed_d, fed_valid_d = Signal.like(x0), Signal.like(fed), Signal()\n"
        "        m.d.sync += [x.eq(x0), fed_d.eq(fed), fed_valid_d.eq(fed_valid)]\n"
        "        fed, fed_valid = fed_d, fed_valid_d",
        "feeder: one more pipeline stage between the input buffer and the array / vector unit",
    ),
    M(
        "feeder-1",
        "hdl/feeder.py",
        "        m.d.sync += [\n            fed_valid.eq(took),",
        "        m.d.comb += [\n            fed_valid.eq(took),",
        "feeder: one less pipeline stage (the word fed in the cycle it is taken)",
    ),
    # --- the accumulator and completion -----------------------------------------------------
    M(
        "acc-write-through",
        "hdl/accumulator.py",
        "rmw = mem.read_port(transparent_for=[wr])",
        "rmw = mem.read_port()",
        "accumulator: the read-modify-write port no longer write-transparent",
    ),
    M(
        "acc-overwrite",
        "hdl/accumulator.py",
        "Mux(a_held.overwrite, a_held.sum, rmw.data + a_held.sum)",
        "Mux(a_held.overwrite, rmw.data + a_held.sum, a_held.sum)",
        "accumulator: overwrite and accumulate swapped",
    ),
    M(
        "compute-done-latency",
        "hdl/compute.py",
        "        m.d.sync += self.done.eq(self.complete)",
        "        m.d.comb += self.done.eq(self.complete)",
        "compute engine: done one cycle early (with complete)",
    ),
    M(
        "unit-switch-early",
        "hdl/feeder.py",
        "drain.eq(Mux(word_vector, vector_latency - 1, array_latency - 1))",
        "drain.eq(Mux(word_vector, vector_latency - 2, array_latency - 1))",
        "feeder: an array pass after a vector instruction one cycle before its done",
    ),
    M(
        "pe-write-through",
        "hdl/pe.py",
        "new.eq(Mux(self.w_we, self.w_in, shadow)),",
        "new.eq(shadow),",
        "PE: no write-through of the weight written in the switch cycle",
    ),
    # --- addresses, masks, counts --------------------------------------------------------
    M(
        "store-addr-bit",
        "hdl/dma.py",
        "m.d.comb += self.output_buf.addr.eq(cur.word)",
        "m.d.comb += self.output_buf.addr.eq(cur.word ^ 1)",
        "STORE: bit 0 of the output buffer address flipped",
    ),
    M(
        "load-enable-bit",
        "hdl/dma.py",
        "                port.en.eq(Cat(*enables)),",
        "                port.en.eq(Cat(*enables) ^ 1),",
        "LOAD: bit 0 of every buffer's byte-enable mask flipped",
    ),
    M(
        "post-acc-addr-bit",
        "hdl/post.py",
        "            first.acc_addr.eq(payload.acc_base),",
        "            first.acc_addr.eq(payload.acc_base ^ 2),",
        "POST: bit 1 of the first accumulator row address flipped",
    ),
    M(
        "window-row-wrap",
        "hdl/window.py",
        "        out.oh_last.eq(instr.out_h - 1),",
        "        out.oh_last.eq(instr.out_h),",
        "window generator: off by one in the output-row wrap (p)",
    ),
    M(
        "window-col-wrap",
        "hdl/window.py",
        "        out.ow_last.eq(instr.out_w - 1),",
        "        out.ow_last.eq(instr.out_w - 2),",
        "window generator: off by one in the output-column wrap (q)",
    ),
    M(
        "window-pad-edge",
        "hdl/window.py",
        "            & (cur.img_w < ins.image_w)",
        "            & (cur.img_w <= ins.image_w)",
        "window generator: off by one in the right padding edge",
    ),
    M(
        "load-run-count",
        "hdl/dma.py",
        "        last_run = inner_last & (cur.o == ins.outer_count - 1)",
        "        last_run = inner_last & (cur.o == ins.outer_count)",
        "LOAD: off by one in the run count (one more outer row of requests)",
    ),
    M(
        "store-run-count",
        "hdl/dma.py",
        "        inner_last = cur.j == ins.inner_count - 1\n        last = run_end",
        "        inner_last = cur.j == ins.inner_count - 2\n        last = run_end",
        "STORE: off by one in the inner run count",
    ),
    M(
        "loader-row-index",
        "hdl/weight_loader.py",
        "w_row.eq(Mux(ld_active, ld_row, 0))",
        "w_row.eq(Mux(ld_active, ld_row - 1, 0))",
        "weight loader: off by one in the array row index of rows 1..rows-1",
    ),
    M(
        "post-count",
        "hdl/post.py",
        "        last = cur.left == 1",
        "        last = cur.left == 2",
        "POST: off by one in the row count (one row short)",
    ),
    # --- operands ----------------------------------------------------------------------------
    M(
        "vadd-operands",
        "hdl/feeder.py",
        "operand_b = (fields.mode == ComputeMode.VADD) & ~word.first_pass",
        "operand_b = (fields.mode == ComputeMode.VADD) & word.first_pass",
        "VADD: operands a and b swapped (zero point, multiplier, shift)",
    ),
    M(
        "requant-zp-before-shift",
        "hdl/postproc.py",
        "            value = Mux(s5.requant, rounded + s5.out_zero_point, rounded)",
        "            value = Mux(s5.requant, rounded - s5.out_zero_point, rounded)",
        "requantisation: output zero point subtracted instead of added",
    ),
    M(
        "clamp-order",
        "hdl/postproc.py",
        "            low = Mux(value < s5.act_min, s5.act_min, value)\n"
        "            clamped = Mux(low > s5.act_max, s5.act_max, low)",
        "            low = Mux(value > s5.act_max, s5.act_max, value)\n"
        "            clamped = Mux(low < s5.act_min, s5.act_min, low)",
        "requantisation: clamp bounds applied in the other order (max first)",
    ),
    M(
        "srdhm-nudge",
        "hdl/postproc.py",
        "high = (a * b + (1 << (bits - 2))) >> (bits - 1)",
        "high = (a * b + (1 << (bits - 2)) - 1) >> (bits - 1)",
        "SRDHM: rounding nudge one too small (ties round down)",
    ),
    M(
        "vmax-compare",
        "hdl/vector.py",
        "Mux(old > term, old, term)",
        "Mux(old < term, old, term)",
        "VMAX: min instead of max",
    ),
    # --- the controller ------------------------------------------------------------------------
    M(
        "semaphore-increment",
        "hdl/controller.py",
        "        inc = [complete & signalled[s] for s in range(_SEMS)]",
        "        inc = [complete & signalled[s] & (s != 0) for s in range(_SEMS)]",
        "controller: completions never increment semaphore 0",
    ),
    M(
        "semaphore-wait",
        "hdl/controller.py",
        "        tokens = tokens & (~wait[s] | (sems[s] != 0))",
        "        tokens = tokens & (~wait[s] | (sems[s] != 0) | (s == 1))",
        "controller: a grant does not wait for semaphore 1",
    ),
    M(
        "store-complete-early",
        "hdl/dma.py",
        "            self.complete.eq(self.b),",
        "            self.complete.eq(self.w.valid & self.w.payload.last),",
        "STORE: complete with the last beat, not its acknowledgement",
    ),
]


def copy_tree(destination: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "venv", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache",
        "*.egg-info", "build",
    )  # fmt: skip
    shutil.copytree(ROOT, destination, ignore=ignore)


def apply(mutation: Mutation, tree: Path) -> None:
    path = tree / mutation.path
    text = path.read_text()
    for old, new in mutation.edits:
        count = text.count(old)
        if count != 1:
            raise SystemExit(
                f"mutation {mutation.name}: {old!r} occurs {count} times in {mutation.path}"
            )
        text = text.replace(old, new)
    path.write_text(text)


def first_failure(output: str) -> str:
    for line in output.splitlines():
        m = re.match(r"(FAILED|ERROR) (.+?)(?: - |$)", line)
        if m:
            return m.group(2)
    tail = [line for line in output.splitlines() if line.strip()]
    return tail[-1] if tail else "(no output)"


def run_one(mutation: Mutation, timeout: float, logs: Path) -> tuple[str, str, float]:
    """(outcome, first failing test or note, seconds)."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutation.name}-") as tmp:
        tree = Path(tmp) / "repo"
        copy_tree(tree)
        apply(mutation, tree)
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
        # A mutant must still elaborate into Verilog: one that does not is a broken mutation,
        # not a bug the tests caught.
        elaborates = subprocess.run(
            [sys.executable, "-c", ELABORATE], cwd=tree, env=env, capture_output=True, text=True
        )
        if elaborates.returncode != 0:
            (logs / f"{mutation.name}.log").write_text(elaborates.stderr)
            return "INVALID", "does not elaborate", time.monotonic() - began
        first = [p for p in FIRST if (tree / p).exists()]
        rest = sorted(
            str(p.relative_to(tree))
            for p in (tree / "tests").glob("test_*.py")
            if str(p.relative_to(tree)) not in first
        )
        paths = first + rest
        command = [
            sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider",
            "-n", "0", *paths,
        ]  # fmt: skip
        try:
            proc = subprocess.run(
                command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            (logs / f"{mutation.name}.log").write_text(out)
            return "timeout", f"killed after {timeout:.0f} s", time.monotonic() - began
        output = proc.stdout + proc.stderr
        (logs / f"{mutation.name}.log").write_text(output)
        seconds = time.monotonic() - began
        if proc.returncode == 0:
            return "MISSED", "(the suite passed)", seconds
        return "caught", first_failure(output), seconds


def check_mutations_apply(mutations: list[Mutation]) -> None:
    """Every edit's old text occurs exactly once in the working tree (fail before running)."""
    for mutation in mutations:
        text = (ROOT / mutation.path).read_text()
        for old, _ in mutation.edits:
            if text.count(old) != 1:
                raise SystemExit(
                    f"mutation {mutation.name}: {old!r} occurs {text.count(old)} times "
                    f"in {mutation.path}"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--logs", type=Path, default=None, help="keep each mutant's pytest output here"
    )
    args = parser.parse_args(argv)
    names = {m.name for m in MUTATIONS}
    assert len(names) == len(MUTATIONS), "mutation names must be unique"
    chosen = MUTATIONS
    if args.only:
        unknown = set(args.only) - names
        if unknown:
            parser.error(f"unknown mutants: {', '.join(sorted(unknown))}")
        chosen = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:24} {m.path:22} {m.description}")
        return 0
    check_mutations_apply(chosen)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="mutation-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[str, str, float]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_one, m, args.timeout, logs): m for m in chosen}
        for future in concurrent.futures.as_completed(futures):
            m = futures[future]
            results[m.name] = future.result()
            outcome, where, seconds = results[m.name]
            print(f"# {m.name}: {outcome} ({where}, {seconds:.0f} s)", file=sys.stderr, flush=True)
    print("| mutant | file | mutation | outcome | first failing test | s |")
    print("|---|---|---|---|---|---|")
    for m in chosen:
        outcome, where, seconds = results[m.name]
        print(f"| {m.name} | {m.path} | {m.description} | {outcome} | `{where}` | {seconds:.0f} |")
    caught = sum(results[m.name][0] == "caught" for m in chosen)
    print(f"\n{caught}/{len(chosen)} mutants caught (logs in {logs})")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
