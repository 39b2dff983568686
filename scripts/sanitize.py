"""``make sanitize``: the scanner's tests under AddressSanitizer and UndefinedBehaviorSanitizer.

1. Compiles ``xraykit/io/_scan.c`` once as a compiler that is not GCC sees it (``__GNUC__`` is
   undefined after the system and Python headers, and GCC's ``__builtin_ctz``/``__builtin_ctzll``
   are poisoned), so the portable fallbacks an MSVC build uses keep compiling.
2. Copies the package, the tests and the samples to a temporary folder, builds ``xraykit.io._scan``
   there with ``-fsanitize=address,undefined`` (UB stops the run), and runs
   ``tests/test_scan.py``, ``tests/test_otlp_native.py`` and ``tests/test_fuzz.py`` on that copy with the
   sanitizer runtimes preloaded. The library in ``xraykit/`` (which running kernels use) and
   the virtualenv are not touched; a pytest plugin checks that the copy's sanitized library is
   the one imported, and prints its path in the report header.

Run with the project's virtualenv: ``.venv/bin/python scripts/sanitize.py [options] [-- pytest
arguments]``. Needs GCC with its sanitizer runtimes (Debian: ``apt-get install gcc``; they come
with ``libgcc-12-dev`` as ``libasan8`` and ``libubsan1``) and the Python headers.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SANITIZERS = "address,undefined"
COMPILE_ARGS = [
    f"-fsanitize={SANITIZERS}",
    "-fno-sanitize-recover=undefined",  # undefined behaviour ends the run, like an ASan error
    "-fno-wrapv",  # Python's flags define signed overflow (-fwrapv), hiding it from UBSan;
    # it is undefined for compilers without that flag (MSVC), so it is checked here
    "-fno-omit-frame-pointer",
    "-O1",
    "-g",
]
LINK_ARGS = [f"-fsanitize={SANITIZERS}"]
# the scanner's, the OTLP reader's and the fuzz tests (each run when it exists)
TESTS = ["tests/test_scan.py", "tests/test_otlp_native.py", "tests/test_fuzz.py"]
EXIT_SANITIZER = 86  # the exit status of a process a sanitizer stopped

# CPython frees not everything at exit (not a leak of ours); the out-of-memory tests need
# malloc to return NULL instead of ASan aborting; a sanitizer error sets a status we recognise.
ASAN_OPTIONS = (
    f"detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:exitcode={EXIT_SANITIZER}"
)
UBSAN_OPTIONS = f"print_stacktrace=1:halt_on_error=1:exitcode={EXIT_SANITIZER}"

PLUGIN = '''
"""Loaded by scripts/sanitize.py with -p: the sanitized copy must be what the tests import."""
import os
from pathlib import Path

import pytest


def pytest_configure(config):
    import xraykit.io._scan

    expected = Path(os.environ["XRAYKIT_SANITIZED_LIBRARY"]).resolve()
    imported = Path(xraykit.io._scan.__file__).resolve()
    if imported != expected:
        raise pytest.UsageError(f"imported {imported}, not the sanitized {expected}")


def pytest_report_header(config):
    import xraykit.io._scan

    return f"sanitized xraykit.io._scan: {xraykit.io._scan.__file__}"
'''

# Read before __GNUC__ is undefined: the system headers need it (glibc's would not compile).
NOT_GNU_PRELUDE = """\
#define PY_SSIZE_T_CLEAN
{includes}
#undef __GNUC__
#undef __GNUC_MINOR__
#undef __GNUC_PATCHLEVEL__
#pragma GCC poison __builtin_ctz __builtin_ctzll
"""


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_xraykit_hatch_build", ROOT / "scripts" / "hatch_build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _say(message: str) -> None:
    print(f"\n== sanitize: {message}", flush=True)


def _compiler() -> list[str]:
    return shlex.split(sysconfig.get_config_var("CC") or "cc")


def _runtime(name: str) -> str:
    """The path of a sanitizer runtime shipped with the compiler, or exit saying what to do."""
    try:
        found = subprocess.run(
            [*_compiler(), f"-print-file-name={name}"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:  # no compiler at all
        found = ""
    if not os.path.isabs(found) or not os.path.exists(found):
        sys.exit(
            f"sanitize: the compiler {_compiler()[0]!r} has no {name} (it printed {found!r}). "
            "It needs GCC with its sanitizer runtimes: on Debian or Ubuntu run "
            "`sudo apt-get install -y gcc` (libasan and libubsan come with it)."
        )
    return str(Path(found).resolve())


def compile_not_gnu(source: Path, work: Path) -> bool:
    """Compile ``source`` as a compiler other than GCC sees it; say what happened."""
    text = source.read_text(encoding="utf-8", errors="replace")
    headers = dict.fromkeys(re.findall(r"^\s*#\s*include\s*(<[^>]+>)", text, re.MULTILINE))
    includes = "\n".join(f"#if __has_include({h})\n#include {h}\n#endif" for h in headers)
    prelude = work / "not_gnu_prelude.h"
    prelude.write_text(NOT_GNU_PRELUDE.format(includes=includes), encoding="utf-8")
    paths = sysconfig.get_paths()
    command = [
        *_compiler(),
        "-include",
        str(prelude),
        *[f"-I{d}" for d in dict.fromkeys([paths["include"], paths["platinclude"]])],
        "-Wall",
        "-c",
        str(source),
        "-o",
        str(work / "not_gnu.o"),
    ]
    _say("compile without __GNUC__ (the portable fallbacks of GCC's builtins)")
    print(shlex.join(command), flush=True)
    done = subprocess.run(command, check=False)
    print("compiled" if done.returncode == 0 else "FAILED: see the compiler's errors above")
    return done.returncode == 0


def _copy_tree(work: Path, source: Path | None) -> None:
    """The package, tests, samples and pytest configuration, as they are now."""
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", ".tmp-*")
    shutil.copytree(ROOT / "xraykit", work / "xraykit", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    shutil.copytree(ROOT / "sample_traces", work / "sample_traces")
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
    if source is not None:
        shutil.copyfile(source, work / "xraykit" / "io" / "_scan.c")


def run_sanitized_tests(work: Path, pytest_args: list[str]) -> int:
    """Build the sanitized scanner in a copy of the project and run its tests there."""
    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    _say(f"build xraykit.io._scan with {' '.join(COMPILE_ARGS)}")
    hook = _hook()
    previous = Path.cwd()
    os.chdir(work)  # setuptools resolves the source path from the working directory
    try:
        built = hook.compile_extension(work, work / "build", COMPILE_ARGS, LINK_ARGS)
    finally:
        os.chdir(previous)
    library = work / "xraykit" / "io" / built.name
    shutil.copy2(built, library)
    binary = library.read_bytes()
    if b"__asan_report" not in binary or b"__ubsan_handle" not in binary:
        sys.exit(f"sanitize: {library} was built without the sanitizers")
    (work / "_xraykit_sanitize_plugin.py").write_text(PLUGIN, encoding="utf-8")

    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(work), *filter(None, [env.get("PYTHONPATH")])]),
        LD_PRELOAD=" ".join([asan, ubsan, *filter(None, [env.get("LD_PRELOAD")])]),
        ASAN_OPTIONS=ASAN_OPTIONS,
        UBSAN_OPTIONS=UBSAN_OPTIONS,
        PYTHONMALLOC="malloc",  # Python objects in malloc'd blocks, where ASan sees them
        PYTHONDONTWRITEBYTECODE="1",
        XRAYKIT_REQUIRE_NATIVE="1",
        XRAYKIT_SANITIZED_LIBRARY=str(library),
    )
    tests = [t for t in TESTS if (work / t).exists()]
    missing = sorted(set(TESTS) - set(tests))
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "_xraykit_sanitize_plugin",
        "--capture=sys",  # a sanitizer writes its report to fd 2: let it through
        *tests,
        *pytest_args,
    ]
    _say(
        f"run {' '.join(tests)} on the sanitized copy in {work}"
        + (f" ({', '.join(missing)} does not exist yet)" if missing else "")
    )
    print(
        f"LD_PRELOAD={shlex.quote(env['LD_PRELOAD'])} ASAN_OPTIONS={ASAN_OPTIONS} "
        f"UBSAN_OPTIONS={UBSAN_OPTIONS} PYTHONMALLOC=malloc PYTHONPATH={work} "
        + shlex.join(command),
        flush=True,
    )
    code = subprocess.run(command, cwd=work, env=env, check=False).returncode
    if code == EXIT_SANITIZER:
        print("FAILED: a sanitizer stopped the tests (its report is above)")
    elif code:
        print(f"FAILED: pytest exited with status {code}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--source",
        type=Path,
        help="test this C file instead of xraykit/io/_scan.c (it is copied in as _scan.c)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("pytest_args", nargs="*", help="after --: more arguments for pytest")
    args = parser.parse_args(argv)
    source = args.source.resolve() if args.source else None

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="xraykit-sanitize-"))
    try:
        for runtime in ("libasan.so", "libubsan.so"):  # first of all, say what is missing
            _runtime(runtime)
        _copy_tree(work / "copy", source)  # one snapshot: the C source may be changing meanwhile
        portable = compile_not_gnu(work / "copy" / "xraykit" / "io" / "_scan.c", work)
        code = run_sanitized_tests(work / "copy", args.pytest_args)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [
        what
        for what, bad in [("compile without __GNUC__", not portable), ("sanitized tests", code)]
        if bad
    ]
    _say(
        f"{'FAILED: ' + ', '.join(failed) if failed else 'passed'} "
        f"({time.monotonic() - started:.0f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
