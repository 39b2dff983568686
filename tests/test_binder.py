"""Binder: ``binder/`` follows repo2docker's conventions, and the course runs from it alone.

repo2docker (what mybinder.org builds with) reads only ``binder/`` when that folder exists:
``runtime.txt`` picks the Python, ``apt.txt`` the Ubuntu packages, ``requirements.txt`` is
installed with pip from the repository root, and ``postBuild`` runs last. The slow test does
the same on this machine: it copies the repository as a checkout would have it, makes a fresh
virtual environment, installs ``binder/requirements.txt`` into it, runs ``postBuild``, and
executes every notebook in that environment's own kernel, one at a time, offline (no AWS
credentials; HTTP(S) beyond loopback fails), each bounded in time. pip may use the machine's index and its cache.

The badge (README and notebook 00) opens the repository named in pyproject.toml's
``[project.urls] Repository``; ``scripts/make_start_notebook.py`` writes both.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

INSTALL_S = 900  # fresh venv + pip install -r binder/requirements.txt (pip's cache helps)
NOTEBOOK_S = 180  # each notebook: the rule is under a minute; margin for a busy 2-core CI
CELL_S = 120  # nbclient's per-cell timeout inside that bound
#: What repo2docker reads in binder/ (a Dockerfile there would replace all of it).
REPO2DOCKER_FILES = {
    "apt.txt",
    "requirements.txt",
    "runtime.txt",
    "postBuild",
    "start",
    "environment.yml",
    "install.R",
    "Project.toml",
    "default.nix",
    "Pipfile",
    "Pipfile.lock",
}
#: repo2docker's check of an apt.txt line (buildpacks/base.py)
_APT_PACKAGE = re.compile(r"^[a-z0-9.+-]+$")


def _lines(path: Path) -> list[str]:
    """The lines of a repo2docker list file, without comments and blanks."""
    entries = (line.partition("#")[0].strip() for line in path.read_text("utf-8").splitlines())
    return [entry for entry in entries if entry]


def _script() -> ModuleType:
    """scripts/make_start_notebook.py, which writes notebook 00 and the README badge."""
    spec = importlib.util.spec_from_file_location(
        "_xraykit_make_start_notebook", ROOT / "scripts" / "make_start_notebook.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_binder_folder_holds_only_what_repo2docker_reads() -> None:
    names = {p.name for p in BINDER.iterdir()}
    assert names <= REPO2DOCKER_FILES, f"repo2docker ignores {sorted(names - REPO2DOCKER_FILES)}"
    assert "Dockerfile" not in names  # it would make repo2docker ignore every other file
    # conda's environment.yml would take over from requirements.txt and runtime.txt
    assert {"requirements.txt", "runtime.txt", "apt.txt"} <= names
    assert "environment.yml" not in names


def test_runtime_is_a_python_the_package_supports() -> None:
    lines = (BINDER / "runtime.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and re.fullmatch(r"python-3\.\d+", lines[0]), lines
    minor = int(lines[0].split(".")[1])
    with (ROOT / "pyproject.toml").open("rb") as f:
        requires = tomllib.load(f)["project"]["requires-python"]
    lowest = re.fullmatch(r">=\s*3\.(\d+)", requires)
    assert lowest is not None, requires
    assert minor >= int(lowest[1]), f"runtime.txt asks for {lines[0]}, the package {requires}"


def test_requirements_install_the_package_with_the_course_extra() -> None:
    # pip runs from the repository root on Binder, so `.` is this package
    assert _lines(BINDER / "requirements.txt") == ["-e .[notebooks]"]
    with (ROOT / "pyproject.toml").open("rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    notebooks = " ".join(extras["notebooks"])
    for needed in ("jupyterlab", "ipykernel", "widgets"):
        assert needed in notebooks, f"the notebooks extra no longer brings {needed}"


def test_apt_packages_are_what_the_notebooks_need() -> None:
    packages = _lines(BINDER / "apt.txt")
    assert all(_APT_PACKAGE.match(p) for p in packages), packages
    assert "graphviz" in packages  # `dot` draws the service maps


def test_post_build_is_an_executable_bash_script_that_stops_on_errors() -> None:
    path = BINDER / "postBuild"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash\n")
    assert re.search(r"^set -e", text, re.M), "repo2docker would go on after a failing line"
    assert os.access(path, os.X_OK)


def test_badges_and_notebook_00_are_written_from_the_one_setting() -> None:
    script = _script()
    repository = script.binder_repository()
    url = script.binder_url(repository)
    assert url == (
        f"https://mybinder.org/v2/gh/{repository}/HEAD"
        "?urlpath=lab/tree/notebooks/00-start-here.ipynb"
    )
    assert (ROOT / url.split("urlpath=lab/tree/")[1]).is_file()  # Binder opens a real file
    stale = script.stale_files()
    assert not stale, (
        f"{sorted(str(p.relative_to(ROOT)) for p in stale)} differ from what "
        "scripts/make_start_notebook.py writes: run `.venv/bin/python "
        "scripts/make_start_notebook.py`"
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = (ROOT / "notebooks" / "00-start-here.ipynb").read_text(encoding="utf-8")
    links = set(re.findall(r"https://mybinder\.org/v2/gh/[^)\s\"\\]+", readme + start))
    assert links == {url}


def test_the_course_map_lists_every_notebook_once() -> None:
    script = _script()
    stems = script.course_notebooks()
    assert stems == [p.stem for p in NOTEBOOKS]
    table = script.course_map(stems)
    for stem in stems:
        assert table.count(f"[`{stem}`]({stem}.ipynb)") == 1
    taught = {t for stem in stems for t in script.COURSE[stem][1]}
    assert taught <= set(script.THEMES)


# --- the slow test: a fresh environment from binder/ alone ------------------------------------


def _checkout(destination: Path) -> Path:
    """Copy the repository as a clone would have it: tracked and new files, nothing ignored."""
    files: list[str] | None = None
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        if listed.returncode == 0:
            files = [f for f in listed.stdout.decode().split("\0") if f]
    if files is None:  # no git here: leave out what .gitignore names
        skip = shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.so", "*.pyc", ".*_cache", ".hypothesis",
            "build", "dist", "*.egg-info", "test-artifacts", ".ipynb_checkpoints",
        )  # fmt: skip
        shutil.copytree(ROOT, destination, ignore=skip, symlinks=True)
        return destination
    for name in files:
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _python_for(runtime: str) -> str:
    """An interpreter of runtime.txt's version: this one, or pythonX.Y on PATH."""
    version = runtime.removeprefix("python-")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    other = shutil.which(f"python{version}")
    if other is None:
        print(f"binder: no python{version} here; using {sys.version.split()[0]} instead")
    return other or sys.executable


def _run(args: list[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command in a session of its own; on timeout kill that whole session."""
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, **kwargs,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(args[:4])} ... did not finish in {timeout:.0f} s:\n{out[-3000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, None)


def _offline_env(venv: Path, home: Path) -> dict[str, str]:
    """A session's environment as on Binder: a fresh home, no AWS credentials or instance
    metadata, and HTTP(S) to anything but loopback sent to a closed proxy port."""
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "VIRTUAL_ENV": str(venv),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TMPDIR": str(home / "tmp"),
        # any HTTP(S) connection that is not to loopback goes to a closed port and fails
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
        # no AWS credentials, config or instance metadata: live calls cannot happen by accident
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def _leftover_processes(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker`` (the venv's path), this one excepted."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


PROBE = """import json, sys, xraykit
print(json.dumps({"prefix": sys.prefix, "xraykit": xraykit.__file__}))"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Binder images are Linux")
@pytest.mark.timeout(INSTALL_S + 120 + NOTEBOOK_S * (len(NOTEBOOKS) + 1))
def test_every_notebook_runs_in_a_fresh_environment_made_from_binder_alone(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    import nbformat

    repo = _checkout(tmp_path / "repo")
    venv, home = tmp_path / "venv", tmp_path / "home"
    timings: dict[str, float] = {}
    started = time.monotonic()
    runtime = (repo / "binder" / "runtime.txt").read_text(encoding="utf-8").strip()
    build = {k: v for k, v in os.environ.items() if not k.startswith(("XRAYKIT_", "VIRTUAL_ENV"))}
    made = _run([_python_for(runtime), "-m", "venv", str(venv)], timeout=120, env=build)
    assert made.returncode == 0, made.stdout
    python = str(venv / "bin" / "python")
    # as repo2docker does: from the repository root (pip's cache and index as configured);
    # --no-compile: the kernels compile only what they import, a third less CPU than pip's
    # compiling every module of ~200 packages (repo2docker compiles; nothing else differs)
    installed = _run(
        [python, "-m", "pip", "install", "--quiet", "--no-compile", "-r", "binder/requirements.txt"],
        timeout=INSTALL_S, cwd=repo, env=build,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-5000:]
    timings["venv + pip install"] = time.monotonic() - started

    env = _offline_env(venv, home)
    mark = time.monotonic()
    post = _run([str(repo / "binder" / "postBuild")], timeout=300, cwd=repo, env=env)
    assert post.returncode == 0, post.stdout[-3000:]
    timings["postBuild"] = time.monotonic() - mark

    out = tmp_path / "executed"
    out.mkdir()

    def execute(notebook: Path) -> subprocess.CompletedProcess[str]:
        return _run(
            [python, "-m", "nbconvert", "--to", "notebook", "--execute",
             f"--ExecutePreprocessor.timeout={CELL_S}", "--ExecutePreprocessor.kernel_name=python3",
             "--output-dir", str(out), "--output", notebook.stem, str(notebook)],
            timeout=NOTEBOOK_S, cwd=notebook.parent, env=env,
        )  # fmt: skip

    # the kernel is the new environment's, with the checkout's xraykit
    probe = tmp_path / "probe" / "probe.ipynb"
    probe.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    nbformat.write(nb, probe)
    ran = execute(probe)
    assert ran.returncode == 0, ran.stdout[-3000:]
    seen = json.loads(nbformat.read(out / "probe.ipynb", as_version=4).cells[0].outputs[0].text)
    assert Path(seen["prefix"]).resolve() == venv.resolve()
    assert Path(seen["xraykit"]).resolve().is_relative_to(repo.resolve())

    failures = []
    for notebook in sorted((repo / "notebooks").glob("*.ipynb")):
        mark = time.monotonic()
        ran = execute(notebook)
        timings[notebook.name] = time.monotonic() - mark
        if ran.returncode != 0:
            failures.append(f"--- {notebook.name} (exit {ran.returncode}):\n{ran.stdout[-4000:]}")

    # nothing started from the new environment outlives its notebook (kernels, servers)
    deadline = time.monotonic() + 15
    while (left := _leftover_processes(str(venv))) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # ours (they run from this test's venv); stop them, then fail below
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    timings["total"] = time.monotonic() - started
    line = f"binder timings (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}"
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{line}")
    assert not failures, "\n".join(failures)
    assert not left, f"processes from the Binder environment were still running: {left}"
    assert {p.stem for p in out.glob("*.ipynb")} >= {p.stem for p in NOTEBOOKS}
