"""Reinstalling the C fast path must not crash a process that has it loaded.

A JupyterLab kernel (``make lab``) or a test run keeps ``xraykit.io._scan`` mapped while ``make
test`` or ``pip install -e .`` rebuilds it next to its source. The build hook
(``scripts/hatch_build.py``) installs the new library by renaming a new file over the old one,
so the running process keeps the old file; writing into the old file, as the hook once did,
kills it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = os.environ.get("XRAYKIT_REQUIRE_NATIVE") == "1"
CHILD_SECONDS = 20  # the child stops on its own by then; the test waits 15 s more at most

# Loads a sample over and over (the first load checks that it calls the scanner) and prints
# its counts after every load: `before` loads started before the marker file existed, `after`
# loads started after it. argv: marker file, seconds to run for, and optionally a library to
# import as xraykit.io._scan.
CHILD = """
import importlib.util, json, os, sys, time
marker, seconds, library = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
if library:  # imported from this file instead of the package
    spec = importlib.util.spec_from_file_location("xraykit.io._scan", library[0])
    scan = importlib.util.module_from_spec(spec)
    sys.modules["xraykit.io._scan"] = scan
    spec.loader.exec_module(scan)
else:
    import xraykit.io._scan as scan
import xraykit
from xraykit.samples import sample_path
print(json.dumps({"scan": scan.__file__}), flush=True)
path = sample_path("cross-account")
used = []  # the first load must call into the library, or this child would prove nothing
def watch(frame, event, arg):  # a function of the module, or a method of one of its types
    owner = getattr(arg, "__self__", None)
    if event == "c_call" and (owner is scan or type(owner).__module__ == "xraykit.io._scan"):
        used.append(arg)
sys.setprofile(watch)
xraykit.load_file(path)
sys.setprofile(None)
assert used, "loading the sample did not call the scanner"
before = after = 0
deadline = time.monotonic() + seconds
while after < 5 and time.monotonic() < deadline:
    replaced = os.path.exists(marker)
    assert len(xraykit.load_file(path)) > 0
    if replaced:
        after += 1
    else:
        before += 1
    print(json.dumps({"before": before, "after": after}), flush=True)
"""


def _hook() -> ModuleType:
    """scripts/hatch_build.py, whose functions the build uses (hatchling is not needed)."""
    pytest.importorskip("setuptools", reason="the build hook compiles with setuptools")
    spec = importlib.util.spec_from_file_location(
        "_xraykit_hatch_build", ROOT / "scripts" / "hatch_build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _installed_library() -> Path:
    """The library this process imported; it must be the editable one, next to the source."""
    try:
        scan = importlib.import_module("xraykit.io._scan")
    except ImportError:
        if REQUIRED:
            pytest.fail("xraykit.io._scan did not import; `make test` requires the C fast path")
        pytest.skip("the C fast path is not built here")
    library = Path(scan.__file__ or "").resolve()
    if library.parent != ROOT / "xraykit" / "io":
        pytest.skip(f"xraykit is not installed in editable mode here ({library})")
    return library


def _start_child(marker: Path, library: Path | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-X", "faulthandler", "-c", CHILD, str(marker), str(CHILD_SECONDS)]
    return subprocess.Popen(
        [*args, *([str(library)] if library else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _first_load(child: subprocess.Popen[str]) -> str:
    """Wait until the child has loaded the sample once; return the scanner's file it uses."""
    assert child.stdout is not None
    scan = json.loads(child.stdout.readline() or "{}").get("scan")
    line = child.stdout.readline()
    if scan is None or not line:
        child.kill()
        _, err = child.communicate()
        pytest.fail(f"the child did not load a sample (exit {child.returncode}):\n{err}")
    return str(scan)


def _finish(child: subprocess.Popen[str]) -> tuple[int, dict[str, int], str]:
    """Wait for the child (bounded); return its exit code, its last counts and its stderr."""
    try:
        out, err = child.communicate(timeout=CHILD_SECONDS + 15)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"the child did not stop in time:\n{err}")
    lines = out.strip().splitlines()
    counts = json.loads(lines[-1]) if lines else {}
    return child.returncode, counts, err


def _exit_text(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def test_install_library_renames_a_new_file_over_the_old(tmp_path: Path) -> None:
    hook = _hook()
    library = tmp_path / "build" / "_scan.so"
    library.parent.mkdir()
    library.write_bytes(b"new library")
    library.chmod(0o755)
    target = tmp_path / "package" / "_scan.so"
    target.parent.mkdir()
    target.write_bytes(b"old library")
    held = target.open("rb")  # stands for a process that has the old file loaded
    try:
        hook.install_library(library, target)
        assert target.read_bytes() == b"new library"
        assert os.stat(held.fileno()).st_ino != target.stat().st_ino  # a new file, not rewritten
        assert held.read() == b"old library"
    finally:
        held.close()
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # the built library's mode, not 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["_scan.so"]  # nothing left over


def test_install_library_leaves_the_old_file_when_the_copy_fails(tmp_path: Path) -> None:
    hook = _hook()
    target = tmp_path / "_scan.so"
    target.write_bytes(b"old library")
    with pytest.raises(FileNotFoundError):
        hook.install_library(tmp_path / "missing.so", target)
    assert target.read_bytes() == b"old library"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_scan.so"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_running_process_survives_reinstalling_the_scanner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuild the scanner from the current source and install it, as `make test` does, over
    the library a running process is using: the process keeps loading through and after it."""
    hook = _hook()
    target = _installed_library()
    marker = tmp_path / "replaced"
    child = _start_child(marker)
    try:
        assert Path(_first_load(child)).resolve() == target
        monkeypatch.chdir(ROOT)  # setuptools resolves the source path from here
        source_hash = hook.source_hash(ROOT)
        library = hook.compile_extension(ROOT, tmp_path / "build")
        hook.install_library(library, target)
        marker.touch()
        code, counts, err = _finish(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert code == 0, f"the loading process died on the reinstall ({_exit_text(code)}):\n{err}"
    assert counts.get("before", 0) > 0 and counts.get("after", 0) > 0, counts
    # what is installed now is exactly what was built from the current source
    assert target.read_bytes() == library.read_bytes()
    fresh = subprocess.run(
        [
            sys.executable,
            "-c",
            "from xraykit.io import _scan; print(_scan.__file__, _scan.SOURCE_HASH)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    fresh_file, fresh_hash = fresh.stdout.split()
    assert (Path(fresh_file).resolve(), fresh_hash) == (target, source_hash)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_writing_over_a_loaded_library_in_place_kills_the_process(tmp_path: Path) -> None:
    """Why install_library renames: the hook's old `target.write_bytes(...)`, even with the very
    same bytes, kills the process that has the library loaded (SIGSEGV or SIGBUS: truncating a
    mapped file throws away the pages the dynamic loader had relocated). The child loads a copy
    of the library here, so that only the child is at risk."""
    installed = _installed_library()
    copy = tmp_path / "lib" / installed.name
    copy.parent.mkdir()
    copy.write_bytes(installed.read_bytes())
    marker = tmp_path / "replaced"
    child = _start_child(marker, copy)
    try:
        assert Path(_first_load(child)).resolve() == copy.resolve()
        copy.write_bytes(installed.read_bytes())  # the old way: the same inode, rewritten
        marker.touch()
        code, counts, _ = _finish(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert code < 0, f"the child survived an in-place rewrite ({_exit_text(code)}, {counts})"
