"""Hatch build hook: compile the loader's C fast path, ``xraykit/_scan.c``.

The extension is optional. Without a C compiler the package still installs and works: the
loader reads everything in Python, only slower. Set ``XRAYKIT_REQUIRE_NATIVE=1`` to make a
failed compile an error instead (``make test`` does, so CI always measures the fast path).

For an editable install (``pip install -e .``, what ``make`` uses) the library is built next
to its source, where the editable import finds it; for a wheel it is added to the wheel,
which then gets a platform tag.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("xraykit") / "_scan.c"


def source_hash(root: Path) -> str:
    """The SHA-256 of the C source, compiled into the library so a stale build is noticed."""
    return hashlib.sha256((root / SOURCE).read_bytes()).hexdigest()[:16]


def compile_extension(root: Path, build_dir: Path) -> Path:
    """Compile ``xraykit._scan`` with the compiler Python was built with; return the library."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    extension = Extension(
        "xraykit._scan",
        sources=[str(SOURCE)],
        define_macros=[("XRAYKIT_SCAN_SOURCE_HASH", f'"{source_hash(root)}"')],
        extra_compile_args=["-O3"] if sys.platform != "win32" else ["/O2"],
    )
    command = build_ext(Distribution({"name": "xraykit", "ext_modules": [extension]}))
    command.build_lib = str(build_dir)
    command.build_temp = str(build_dir / "temp")
    command.ensure_finalized()
    command.run()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return build_dir / "xraykit" / f"_scan{suffix}"


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
                target = root / "xraykit" / library.name
                if version == "editable":
                    target.write_bytes(library.read_bytes())
                else:
                    kept = Path(tempfile.mkdtemp()) / library.name
                    kept.write_bytes(library.read_bytes())
                    build_data["force_include"][str(kept)] = f"xraykit/{library.name}"
                    build_data["pure_python"] = False
                    build_data["infer_tag"] = True
        finally:
            os.chdir(previous)
