"""The compiler's output, pinned: the programs of small zoo networks on every preset, byte
for byte, as digests recorded in ``tests/data/program_digests.json``.

A change that alters any program (an instruction, a constant, a DRAM layout) fails here by
name. When the change is meant to alter programs, regenerate the file with
``python tests/test_accel_compiler_digests.py`` and say in the commit why the programs moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accel import config, isa
from accel.compiler import compile
from accel.isa import Engine
from accel.program import Program

DIGESTS = Path(__file__).parent / "data" / "program_digests.json"

#: (zoo model, input size or None for its native size, presets): the small networks on every
#: preset, the larger ones where they compile in about a second.
CASES = [
    ("lenet5", None, ("tiny", "edge", "server")),
    ("tinyconv", None, ("tiny", "edge", "server")),
    ("tinynet", None, ("tiny", "edge", "server")),
    ("resnet18", 64, ("edge", "server")),
    ("mobilenet_v2", 64, ("edge", "server")),
    ("resnet50", 64, ("server",)),
]


def program_digest(program: Program) -> str:
    """sha256 of what the program is: every instruction's encoding, the constants, and the
    DRAM layout (serialisation headers excluded, so a file-format change does not move it)."""
    h = hashlib.sha256()
    for engine in Engine:
        h.update(len(program.streams[engine]).to_bytes(8, "little"))
        for instr in program.streams[engine]:
            h.update(isa.encode(instr))
    h.update(program.constants.tobytes())
    layout = {
        "dram_bytes": program.dram_bytes,
        "inputs": {k: repr(v) for k, v in program.inputs.items()},
        "outputs": {k: repr(v) for k, v in program.outputs.items()},
        "im2col": [repr(im) for im in program.im2col],
        "layers": [repr(layer) for layer in program.layers],
    }
    h.update(json.dumps(layout, sort_keys=True).encode())
    return h.hexdigest()


def compile_case(model: str, size: int | None, preset: str) -> Program:
    from tests.layers import zoo_qnet

    return compile(zoo_qnet(model, size), config.preset(preset))


def case_id(model: str, size: int | None, preset: str) -> str:
    return f"{model}@{size or 'native'}/{preset}"


ALL = [(m, s, p) for m, s, presets in CASES for p in presets]


@pytest.mark.parametrize(("model", "size", "preset"), ALL, ids=[case_id(*c) for c in ALL])
def test_program_is_byte_for_byte_the_recorded_one(model, size, preset):
    recorded = json.loads(DIGESTS.read_text())
    key = case_id(model, size, preset)
    assert program_digest(compile_case(model, size, preset)) == recorded[key], key


@pytest.mark.parametrize("coretype", ["Prescott", "SkylakeX"])
def test_program_does_not_depend_on_the_blas_kernel(coretype):
    """The calibration run's float64 BLAS sums in a kernel-specific order (OpenBLAS picks the
    kernel by CPU; ``OPENBLAS_CORETYPE`` forces one): the program must not move
    (``accel.ptq``, step 2). Both kernels give the recorded digest."""
    code = (
        "from tests.test_accel_compiler_digests import compile_case, program_digest;"
        "print(program_digest(compile_case('tinynet', None, 'tiny')))"
    )
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    root = Path(__file__).parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == json.loads(DIGESTS.read_text())["tinynet@native/tiny"]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    digests = {case_id(*c): program_digest(compile_case(*c)) for c in ALL}
    DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(digests)} digests to {DIGESTS}")
