"""Hatch build hook: compile the loader's C fast path, ``xraykit/io/_scan.c``.

The extension is optional. Without a C compiler the package still installs and works: the
loader reads everything in Python, only slower. Set ``XRAYKIT_REQUIRE_NATIVE=1`` to make a
failed compile an error instead (``make test`` does, so CI always measures the fast path).

For an editable install (``pip install -e .``, what ``make`` uses) the library is built next
to its source, where the editable import finds it; for a wheel it is added to the wheel,
which then gets a platform tag.

A library already next to the source may be loaded by running processes (a JupyterLab kernel,
a test run). Writing over it in place would change the pages they have mapped, and they would
die with SIGBUS or SIGSEGV; ``install_library`` puts the new one there under a new name and
renames it over the old, which those processes keep until they exit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported outside a build: tests/test_install.py uses the functions
    BuildHookInterface = object

PACKAGE = Path("xraykit") / "io"  # where the library goes, beside its source
SOURCE = PACKAGE / "_scan.c"
#: the C source: ``_scan.c`` and the files it includes
SOURCES = (SOURCE, PACKAGE / "_scan_otlp.h")


def source_hash(root: Path) -> str:
    """The SHA-256 of the C source, compiled into the library so a stale build is noticed."""
    return hashlib.sha256(b"".join((root / path).read_bytes() for path in SOURCES)).hexdigest()[:16]


def compile_extension(
    root: Path,
    build_dir: Path,
    compile_args: Sequence[str] | None = None,
    link_args: Sequence[str] = (),
) -> Path:
    """Compile ``xraykit.io._scan`` with the compiler Python was built with; return the library.

    The working directory must be ``root``. ``compile_args`` replace the optimisation flag
    (they come after Python's own flags, so they win) and ``link_args`` are added to the link:
    ``make sanitize`` builds with sanitizers this way (``scripts/sanitize.py``).
    """
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    if compile_args is None:
        compile_args = ["-O3"] if sys.platform != "win32" else ["/O2"]
    extension = Extension(
        "xraykit.io._scan",
        sources=[str(SOURCE)],
        define_macros=[("XRAYKIT_SCAN_SOURCE_HASH", f'"{source_hash(root)}"')],
        extra_compile_args=list(compile_args),
        extra_link_args=list(link_args),
    )
    command = build_ext(Distribution({"name": "xraykit", "ext_modules": [extension]}))
    command.build_lib = str(build_dir)
    command.build_temp = str(build_dir / "temp")
    command.ensure_finalized()
    command.run()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return build_dir / PACKAGE / f"_scan{suffix}"


def install_library(library: Path, target: Path) -> None:
    """Copy ``library`` to ``target`` atomically, never writing into an existing ``target``.

    The copy is written under a temporary name in ``target``'s folder (hidden, and not a name
    Python imports) and then renamed over ``target``: a process that has the old file mapped
    keeps its inode, and a new one imports either the old or the new library, never half of one.
    """
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{target.name}", dir=target.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        shutil.copyfile(library, temporary)
        shutil.copymode(library, temporary)  # mkstemp made it private (0600)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class NativeBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        previous = Path.cwd()
        os.chdir(root)  # setuptools resolves source paths from the working directory
        try:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    library = compile_extension(root, Path(tmp))
                except Exception as exc:
                    if os.environ.get("XRAYKIT_REQUIRE_NATIVE") == "1":
                        raise
                    print(
                        f"xraykit: the C fast path was not built ({exc}); the loader will "
                        "read everything in Python, which is several times slower. Install a "
                        "C compiler and the Python headers (Debian: apt-get install gcc "
                        "python3-dev) and reinstall to get it.",
                        file=sys.stderr,
                    )
                    return
                if version == "editable":
                    install_library(library, root / PACKAGE / library.name)
                else:  # a new file, read into the wheel; removed again in finalize
                    self._kept = Path(tempfile.mkdtemp(prefix="xraykit-scan-"))
                    kept = self._kept / library.name
                    install_library(library, kept)
                    build_data["force_include"][str(kept)] = (PACKAGE / library.name).as_posix()
                    build_data["pure_python"] = False
                    build_data["infer_tag"] = True
        finally:
            os.chdir(previous)

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        kept = getattr(self, "_kept", None)
        if kept is not None:
            shutil.rmtree(kept, ignore_errors=True)
            self._kept = None
