"""``hdl.flow.package``: the FuseSoC core and the register map rendered from ``hdl.csr``."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from accel import __version__
from hdl.csr import REGISTERS
from hdl.flow.generate import LINT_WAIVERS
from hdl.flow.package import fusesoc_core, registers_header, registers_markdown


def defines(text: str) -> dict[str, int]:
    """``{macro: value}`` of the header's ``#define NAME value`` lines (C literals)."""
    result = {}
    for name, value in re.findall(r"^#define (\w+)[ \t]+(\S.*?)(?:[ \t]+/\*.*\*/)?$", text, re.M):
        if name.endswith("_H"):
            continue
        result[name] = eval(value.replace("u", ""))  # hex, decimal or (1 << n)
    return result


def test_header_offsets_and_masks_equal_the_table():
    text = registers_header("acc")
    values = defines(text)
    for reg in REGISTERS:
        assert values.pop(f"ACC_REG_{reg.name}") == reg.offset
        for field in reg.fields:
            if field.width == 1:
                assert values.pop(f"ACC_{reg.name}_{field.name}") == field.mask
            else:
                assert values.pop(f"ACC_{reg.name}_{field.name}_MASK") == field.mask
                assert values.pop(f"ACC_{reg.name}_{field.name}_SHIFT") == field.lsb
    assert values == {"ACC_ID": 0x4143434C}
    assert "#ifndef ACC_REGS_H\n#define ACC_REGS_H\n" in text
    assert text.endswith("#endif /* ACC_REGS_H */\n")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_header_compiles(tmp_path):
    (tmp_path / "acc_regs.h").write_text(registers_header("acc"))
    (tmp_path / "main.c").write_text(
        '#include "acc_regs.h"\n#include "acc_regs.h"\n'
        '_Static_assert(ACC_REG_CYCLE_HI == ACC_REG_CYCLE_LO + 4, "pair");\n'
        "int main(void) { return (int)(ACC_REG_STATUS & ACC_STATUS_DONE); }\n"
    )
    subprocess.run(
        ["cc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only", "main.c"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )


def test_markdown_lists_every_register_and_field():
    text = registers_markdown("acc")
    rows = re.findall(
        r"^\| `0x([0-9a-f]{3})` \| `(\w+)` \| (\w+) \| `0x([0-9a-f]{8})` \|", text, re.M
    )
    assert [(int(o, 16), n, a, int(r, 16)) for o, n, a, r in rows] == [
        (r.offset, r.name, r.access.value, r.reset) for r in REGISTERS
    ]
    for reg in REGISTERS:
        for field in reg.fields:
            assert f"| `{field.name}` | {field.meaning} |" in text


def test_the_core_is_capi2_yaml():
    text = fusesoc_core("acc", description="an 'x' core", header=True)
    assert text.startswith("CAPI=2:\n")
    core = yaml.safe_load(text)
    assert core["name"] == f"accel:generated:acc:{__version__}"
    assert core["description"] == "an 'x' core"
    assert core["filesets"]["rtl"] == {"files": ["acc.v"], "file_type": "verilogSource"}
    assert core["filesets"]["sw"]["files"] == [{"acc_regs.h": {"is_include_file": True}}]
    assert core["targets"]["default"] == {"filesets": ["rtl", "sw"], "toplevel": "acc"}
    lint = core["targets"]["lint"]
    assert lint["default_tool"] == "verilator" and lint["toplevel"] == "acc"
    assert lint["tools"]["verilator"] == {
        "mode": "lint-only",
        "verilator_options": ["-Wall", *(f"-Wno-{w}" for w in sorted(LINT_WAIVERS))],
    }
    plain = yaml.safe_load(fusesoc_core("acc", description="d", header=False))
    assert set(plain["filesets"]) == {"rtl"} and plain["targets"]["default"]["filesets"] == ["rtl"]


@pytest.mark.parametrize("render", [registers_header, registers_markdown])
def test_bad_names(render):
    with pytest.raises(ValueError, match="must be a Verilog identifier, not '1x'"):
        render("1x")
