"""Where caches live, and the cache of compiled programs.

Everything the tools keep between runs sits under one directory, :func:`cache_root`:
``$ACCEL_CACHE`` when it is set, otherwise ``~/.cache/accel``. These caches share it:

* ``verilator/`` and ``cocotb/`` (:data:`BUILD_CACHES`): Verilator builds of the RTL
  (:mod:`hdl.flow.verilator`, about 170 MB for a 16x16 top; the cocotb bench's,
  ``tests/test_cocotb_axi.py``).
* ``programs/``: compiled programs (:class:`ProgramCache`), so that a second ``accel
  simulate``, ``report``, ``compile`` or ``sweep`` of the same network on the same config
  skips the compiler.

A program is stored under ``programs/<compiler version>/<network digest>-<config
digest>[-keep][-batchN].bin``, in the program file format (:meth:`accel.program.Program.to_bytes`,
CRC-checked), where

* the network digest is :attr:`accel.quantized.QuantizedNetwork.digest` (the graph, every
  weight and every quantisation parameter),
* the config digest is :attr:`accel.config.AccelConfig.digest` (every field, the name too,
  since the program carries its config),
* ``-keep`` marks ``keep_tensors=True`` programs, ``-keep<hash>`` those compiled with a list
  of tensors to ``keep`` (:func:`accel.compiler.compile`), ``-batchN`` those compiled for
  a batch of ``N`` images (``batch=N``; one image has no suffix),
* the compiler version (:func:`compiler_version`) is a hash of the source of every module the
  compiler's output depends on (:data:`COMPILER_MODULES`), so any change to the compiler
  makes a new directory rather than reusing old programs; nobody bumps a number by hand.

The cache is a pure optimisation: a program read from it is the program the compiler would
make, byte for byte (the tests compare the outputs of every command with and without it).
Entries are written to a temporary name and renamed into place, so processes and cluster
workers that compile the same entry at once never see a partial file; an entry that does not
read back (truncated, corrupt, another format) is ignored and compiled again. Nothing is ever
evicted, and there is a build per version of the RTL, so the builds grow with every change to
it: ``accel cache`` shows each cache's size, ``accel cache --clear`` empties ``programs/`` and
``--clear-builds`` the build caches (removing the directories by hand is as good).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from accel import compiler
from accel.config import AccelConfig
from accel.program import Program
from accel.quantized import QuantizedNetwork

__all__ = [
    "COMPILER_MODULES",
    "CachedCompile",
    "ProgramCache",
    "cache_root",
    "compile_cached",
    "compiler_version",
    "source_digest",
]

#: The modules whose source the compiler's output depends on: the compiler package, what it
#: imports, and the program format. ``tests/test_accel_cache.py`` checks that every ``accel``
#: module the compiler imports (directly or not) is listed.
COMPILER_MODULES = (
    "accel.collector",
    "accel.compiler",
    "accel.compiler.emit",
    "accel.compiler.errors",
    "accel.compiler.lower",
    "accel.compiler.lower_conv",
    "accel.compiler.lower_transpose",
    "accel.compiler.lower_layout",
    "accel.compiler.lower_vector",
    "accel.compiler.ops",
    "accel.compiler.order",
    "accel.compiler.plan",
    "accel.compiler.sync",
    "accel.compiler.tiling",
    "accel.config",
    "accel.files",
    "accel.golden",
    "accel.graph",
    "accel.isa",
    "accel.numerics",
    "accel.program",
    "accel.quantized",
    "accel.timing",
)


@contextlib.contextmanager
def build_lock(entry: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``<entry>.lock`` beside the cache entry ``entry``
    (created with its directory if needed) while building the entry, so that processes
    building it at once (test workers, sweep workers) build it once and the others wait for
    it and reuse it."""
    import fcntl  # POSIX only, as are the Verilator builds that use it

    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.with_name(entry.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: The caches of Verilator builds under :func:`cache_root` (rebuilt when missing).
BUILD_CACHES = ("verilator", "cocotb")


def directory_size(directory: Path) -> int:
    """Bytes of the files under ``directory`` (0 when it does not exist)."""
    total = 0
    if directory.is_dir():
        for path in directory.rglob("*"):
            with contextlib.suppress(OSError):
                total += path.stat().st_size if path.is_file() else 0
    return total


def remove_directory(directory: Path) -> None:
    """Remove ``directory`` and everything in it (nothing when it does not exist); an
    ``OSError`` names it when something is left."""
    if directory.is_dir():
        shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():
        raise OSError(None, f"could not remove all of {directory}")


def cache_root() -> Path:
    """The directory of every cache: ``$ACCEL_CACHE``, or ``~/.cache/accel`` when it is unset
    or empty. Not created here."""
    root = os.environ.get("ACCEL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "accel"


@functools.cache
def compiler_version() -> str:
    """A hash (16 hex digits) of the source of :data:`COMPILER_MODULES`, read once per
    process."""
    return source_digest(COMPILER_MODULES)


def source_digest(modules: Iterable[str]) -> str:
    """A hash (16 hex digits) of the names and source files of ``modules`` (found, not
    imported)."""
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:  # pragma: no cover - an installed package
            raise RuntimeError(f"cannot find the source of {name} to version the compiler")
        source = Path(spec.origin).read_bytes()
        digest.update(f"{name}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()[:16]


def _is_the_compiler(function: object) -> bool:
    """Whether ``function`` is :func:`accel.compiler.compile` as its source defines it (not
    a replacement installed at run time, whose output the compiler version does not cover)."""
    return (
        getattr(function, "__module__", None) == "accel.compiler"
        and getattr(function, "__qualname__", None) == "compile"
    )


class ProgramCache:
    """Compiled programs on disk, by network digest, config digest and compiler version.

    Parameters
    ----------
    directory:
        Where the programs are kept; default ``cache_root() / "programs"`` (read when the
        cache is made, so ``ACCEL_CACHE`` set later does not move it).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else cache_root() / "programs"

    def __repr__(self) -> str:
        return f"ProgramCache({str(self.directory)!r})"

    def path(
        self,
        network_digest: str,
        config: AccelConfig,
        *,
        keep_tensors: bool = False,
        keep: Sequence[str] = (),
        batch: int = 1,
    ) -> Path:
        """Where the program of this network (by its digest) on ``config`` is kept (with
        :func:`accel.compiler.compile`'s ``keep_tensors``, ``keep`` and ``batch``)."""
        suffix = "-keep" if keep_tensors else ""
        if keep:
            names = hashlib.sha256("\0".join(keep).encode()).hexdigest()[:16]
            suffix += f"-keep{names}"
        if batch != 1:
            suffix += f"-batch{batch}"
        name = f"{network_digest}-{config.digest}{suffix}.bin"
        return self.directory / compiler_version() / name

    def load(self, path: Path) -> Program | None:
        """The program stored at ``path``, or None when there is none or it does not read
        back (truncated, corrupt, another format: it is then compiled again)."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            return Program.from_bytes(data)
        except ValueError:
            return None

    def store(self, path: Path, program: Program) -> str | None:
        """Write ``program`` at ``path`` atomically; None when done, else why not (a cache
        that cannot be written is skipped, never an error)."""
        data = program.to_bytes()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
            )
        except OSError as error:
            return f"cannot write {path.parent} ({error.strerror or type(error).__name__})"
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from a shared cache's users
            os.replace(temporary, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return f"cannot write {path} ({error.strerror or type(error).__name__})"
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return None

    def entries(self) -> list[Path]:
        """Every stored program, of every compiler version."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*/*.bin") if p.is_file())

    def size(self) -> int:
        """Bytes taken by the cache's directory (the entries, and temporary files that
        interrupted writers left)."""
        return directory_size(self.directory)

    def clear(self) -> int:
        """Remove every stored program (of every compiler version); returns how many."""
        count = len(self.entries())
        remove_directory(self.directory)
        return count


@dataclass(frozen=True)
class CachedCompile:
    """The program, and how it was obtained.

    ``hit`` is True when it was read from the cache (the compiler did not run); ``path`` is
    the cache entry (None when the cache was not used); ``note`` says why the cache was not
    used or not written, if it was not.
    """

    program: Program
    hit: bool = False
    path: Path | None = None
    note: str | None = None

    def describe(self) -> str:
        """One line for ``--verbose``."""
        if self.hit:
            return f"program cache hit, compilation skipped: {self.path}"
        if self.path is not None and self.note is None:
            return f"compiled; stored in the program cache: {self.path}"
        return f"compiled; {self.note}" if self.note else "compiled"


def compile_cached(
    qnet: QuantizedNetwork,
    config: AccelConfig,
    *,
    keep_tensors: bool = False,
    keep: Sequence[str] = (),
    batch: int = 1,
    cache: ProgramCache | None = None,
    network_digest: str | None = None,
) -> CachedCompile:
    """:func:`accel.compiler.compile` through ``cache`` (None: compile, no cache).

    ``network_digest`` is ``qnet.digest`` when the caller has it already (hashing a large
    network's weights takes a moment). The cache is bypassed when
    ``accel.compiler.compile`` has been replaced at run time, since the compiler version
    covers only its source.
    """
    compile_function = compiler.compile
    options = {
        "keep_tensors": keep_tensors,
        **({"keep": list(keep)} if keep else {}),
        **({"batch": batch} if batch != 1 else {}),
    }
    if cache is None:
        return CachedCompile(compile_function(qnet, config, **options))
    if not _is_the_compiler(compile_function):
        program = compile_function(qnet, config, **options)
        return CachedCompile(program, note="the program cache is off: compile() is replaced")
    if network_digest is None:
        network_digest = qnet.digest
    path = cache.path(network_digest, config, keep_tensors=keep_tensors, keep=keep, batch=batch)
    program = cache.load(path)
    if (
        program is not None
        and program.config == config
        and program.network == qnet.network.name
        and program.batch == batch
    ):
        return CachedCompile(program, hit=True, path=path)
    program = compile_function(qnet, config, **options)
    problem = cache.store(path, program)
    return CachedCompile(program, path=path, note=problem and f"not cached: {problem}")
