"""Compile speed: instructions per second of ``accel.compiler.compile``, against a floor.

Prints one line per (network, preset): the program's instructions, the compile time (the
best of ``--repeat`` runs in one fresh process, quantisation excluded), instructions per
second, and the compile time as a multiple of a floor measured in the same process:

- **floor**: the time to make the program's instruction objects again from their finished
  fields (an ``object.__new__`` and a copy of the field dict per distinct instruction
  object, the cheapest way this code base makes an instruction, ``accel.isa.with_fields``,
  then the four stream lists; garbage collector paused as the compiler pauses it). A
  compiler that returns ``Program.streams``, lists of instruction objects, cannot beat
  that: the ratio is what compiling costs beyond making its output. (The compiler makes
  one object of equal instructions of a layer step; the floor copies what it made.)
- **encode**: the time ``accel.isa.encode`` takes for the same instructions (measured on up
  to 100,000 of them and scaled), which the compiler used to run on every instruction as a
  fit check: a second yardstick, per instruction work of the kind compiling does.

Also the compile's processor time (``time.process_time``: on a shared machine it moves less
than the wall clock) and the peak resident memory of the process after compiling (network
and quantisation included). Figures, not assertions. Run
``python benchmarks/compile_speed.py`` (``--cases resnet50/edge,alexnet/tiny``, ``--repeat``,
``--timeout`` seconds per case; a case past it is reported as not finished).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time

#: network/preset[@input size]: the issue's table, small to large.
CASES = (
    "tinynet/tiny",
    "resnet18/edge",
    "resnet50/edge",
    "resnet50/server",
    "vgg16/edge",
    "alexnet/tiny",
    "resnet50/tiny",
)
ENCODE_SAMPLE = 100_000


def measure(case: str, repeat: int) -> dict:
    from accel import config, graph, isa, models, ptq
    from accel.compiler import compile

    name, preset = case.split("/")
    preset, _, size = preset.partition("@")
    net = models.get(name, input_size=int(size) if size else None)
    qnet = ptq.quantize(graph.fuse_activations(net), seed=0)
    cfg = config.preset(preset)
    times, cpu = [], []
    program = None
    while len(times) < repeat and (not times or sum(times) < 20):
        program = None  # the previous program's memory is free before the next compile
        start, start_cpu = time.perf_counter(), time.process_time()
        program = compile(qnet, cfg)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    instrs = [i for stream in program.streams.values() for i in stream]

    floors = []
    for _ in range(len(times)):
        enabled = gc.isenabled()
        gc.disable()
        start = time.perf_counter()
        made: dict[int, isa.Instruction] = {}
        streams = {}
        for engine, stream in program.streams.items():
            for i in stream:
                if id(i) not in made:
                    made[id(i)] = isa.with_fields(i)
            streams[engine] = [made[id(i)] for i in stream]
        floors.append(time.perf_counter() - start)
        del made, streams
        if enabled:
            gc.enable()
    sample = instrs[:ENCODE_SAMPLE]
    start = time.perf_counter()
    for i in sample:
        isa.encode(i)
    encode = (time.perf_counter() - start) * len(instrs) / max(1, len(sample))
    return {
        "case": case,
        "instructions": len(instrs),
        "compile_s": min(times),
        "cpu_s": min(cpu),
        "objects": len({id(i) for i in instrs}),
        "floor_s": min(floors),
        "encode_s": encode,
        "runs": len(times),
        "peak_rss_mb": round(peak / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--repeat", type=int, default=3, help="compiles per case (best)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per case")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.repeat)))
        return
    print(
        f"{'network/preset':16s} {'instructions':>12s} {'objects':>10s} {'compile s':>9s} "
        f"{'cpu s':>7s} {'instr/s':>9s} {'floor s':>8s} {'x floor':>7s} {'encode s':>8s} "
        f"{'x encode':>8s} {'peak MB':>7s}"
    )
    for case in args.cases.split(","):
        command = [sys.executable, __file__, "--one", case, "--repeat", str(args.repeat)]
        try:
            out = subprocess.run(
                command, capture_output=True, text=True, check=True, timeout=args.timeout
            )
        except subprocess.TimeoutExpired:
            print(
                f"{case:16s} {'':>12s} {'':>10s} {'> ' + str(args.timeout):>9s}  (did not finish)"
            )
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        n, t = r["instructions"], r["compile_s"]
        print(
            f"{case:16s} {n:12,d} {r.get('objects', n):10,d} {t:9.3f} {r.get('cpu_s', t):7.3f} "
            f"{n / t:9,.0f} {r['floor_s']:8.3f} {t / r['floor_s']:7.1f} {r['encode_s']:8.3f} "
            f"{t / r['encode_s']:8.2f} {r['peak_rss_mb']:7d}",
            flush=True,
        )


if __name__ == "__main__":
    main()
