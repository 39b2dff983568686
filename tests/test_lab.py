"""End to end in a real browser: the course in JupyterLab as `make lab` opens it.

Drives Debian's chromium with Playwright (never a downloaded browser), against a JupyterLab
bound to 127.0.0.1 that this test starts and stops, at a 1366×900 window. JupyterLab serves a
copy of notebooks/ (autosave off), so nothing a test does reaches the repository. The tests
run the start notebook (the service map must fit the notebook's width), and the exam review
(answer a quiz question and see the feedback; filter in the trace explorer and see a trace's
timeline). Screenshots go to ``test-artifacts/lab/`` (or ``$XRAYKIT_TEST_ARTIFACTS/lab``); the
folder is printed. Kernels are shut down and the server stopped by the fixture, which fails
the test if a kernel outlives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 900}
RUN_S = 180  # a whole notebook run in the browser's kernel (the rule is under a minute)
UI_MS = 60_000  # JupyterLab's own steps: page load, menus, widgets appearing
#: User settings for this lab: no autosave (the copy stays as it was), every cell in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(
        f"{base}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def _processes_mentioning(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (kernels name their connection file)."""
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


@pytest.fixture(scope="module")
def artifacts(pytestconfig: pytest.Config) -> Path:
    """Where the screenshots go (CI keeps this folder); its path is shown in the test output."""
    base = Path(os.environ.get("XRAYKIT_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder = base / "lab"
    folder.mkdir(parents=True, exist_ok=True)
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nbrowser test screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """JupyterLab as `make lab` starts it, on a copy of notebooks/, on loopback (one per module)."""
    tmp_path = tmp_path_factory.mktemp("lab")
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns(".*"))
    settings = tmp_path / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values), encoding="utf-8")
    port, token = _free_port(), secrets.token_hex(16)
    runtime = tmp_path / "runtime"
    jupyter = Path(sys.executable).with_name("jupyter")
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [str(jupyter if jupyter.exists() else shutil.which("jupyter")), "lab",
         str(notebooks / "00-start-here.ipynb"),
         *(["--allow-root"] if os.geteuid() == 0 else []),  # as `make lab` does
         "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=notebooks, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (tmp_path / "lab.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"JupyterLab did not start: {tail}") from None
                time.sleep(0.5)
        yield base, token
    finally:
        try:  # the kernels first, through the API, as the Shut Down menu does
            for kernel in _api(base, token, "/api/kernels"):
                _api(base, token, f"/api/kernels/{kernel['id']}", method="DELETE")
        except OSError:
            pass
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        # a kernel names its connection file, in this lab's runtime folder, on its command line
        deadline = time.monotonic() + 15
        while (left := _processes_mentioning(str(runtime))) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in left:  # ours: started by this lab; stop them and fail
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"kernels outlived JupyterLab: {left}"


@pytest.fixture
def browser_page(request: pytest.FixtureRequest, artifacts: Path) -> Iterator[Any]:
    """A chromium page at 1366×900; when the test fails, its screenshot is kept too."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(UI_MS)
            failed_before = request.session.testsfailed
            yield page
            if request.session.testsfailed > failed_before:  # the call's report is in by now
                page.screenshot(path=artifacts / f"FAILED-{request.node.name}.png")
        finally:
            browser.close()


def _open(page: Any, base: str, token: str, name: str) -> None:
    """Open a notebook of the course and wait until its kernel is up and idle."""
    from playwright.sync_api import expect

    page.goto(f"{base}/lab/tree/{name}?token={token}", timeout=UI_MS)
    tab = page.locator(".lm-TabBar-tab.jp-mod-current")
    expect(tab.first).to_contain_text(name, timeout=UI_MS)
    page.locator(".jp-NotebookPanel:visible .jp-Notebook").first.wait_for(timeout=UI_MS)
    _wait_idle(base, token, name)


def _wait_idle(base: str, token: str, name: str) -> None:
    """Wait until the kernel of notebook ``name`` has finished what it was asked to do."""
    deadline = time.monotonic() + UI_MS / 1000
    states: list[str] = []
    while time.monotonic() < deadline:
        sessions = _api(base, token, "/api/sessions")
        states = [s["kernel"]["execution_state"] for s in sessions if s["path"].endswith(name)]
        if states == ["idle"]:
            return
        time.sleep(0.3)
    raise AssertionError(f"the kernel of {name} did not become idle: {states}")


def _run_all(page: Any) -> None:
    """Run All Cells from the menu and wait until no cell is queued or running."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page.get_by_text("Run", exact=True).first.click()
    page.get_by_text("Run All Cells", exact=True).first.click()
    panel = page.locator(".jp-NotebookPanel:visible")
    # a running or queued cell shows [*] in its prompt; wait for the first to appear and all to go
    busy = panel.locator(".jp-InputPrompt", has_text="[*]")
    with contextlib.suppress(PlaywrightTimeoutError):  # a fast notebook may be done already
        busy.first.wait_for(timeout=10_000)
    deadline = time.monotonic() + RUN_S
    while busy.count() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert busy.count() == 0, f"the notebook was still running after {RUN_S} s"
    errors = panel.locator(
        "[data-mime-type='application/vnd.jupyter.stderr']", has_text="Traceback"
    )
    assert errors.count() == 0, f"a cell raised an error:\n{errors.first.inner_text()[-2000:]}"


def _code_cell(page: Any, text: str) -> Any:
    """The code cell whose source contains ``text``."""
    cell = page.locator(".jp-NotebookPanel:visible .jp-CodeCell", has_text=text).first
    cell.scroll_into_view_if_needed()
    return cell


def test_lab_opens_the_start_notebook_and_its_map_fits(lab, browser_page, artifacts) -> None:
    from playwright.sync_api import expect

    base, token = lab
    page = browser_page
    # the server serves the folder of the file it was started with, as `make lab`
    _open(page, base, token, "00-start-here.ipynb")
    heading = page.get_by_role("heading", name=re.compile("Start here"))
    heading.first.wait_for(timeout=UI_MS)
    _run_all(page)
    # the first output lists the samples
    output = page.locator(".jp-OutputArea-output", has_text="cross-account").first
    expect(output).to_contain_text("lambda-cold-starts", timeout=UI_MS)
    page.screenshot(path=artifacts / "00-start-here-run.png")

    # the service map fits the notebook's width (no sideways scrolling to see it)
    cell = _code_cell(page, "xraykit.service_map(ts)")
    drawing = cell.locator(".jp-OutputArea-output").locator("svg, img").first
    expect(drawing).to_be_visible(timeout=UI_MS)
    drawing.scroll_into_view_if_needed()
    map_box = drawing.bounding_box()
    notebook_box = page.locator(".jp-NotebookPanel:visible .jp-Notebook").first.bounding_box()
    assert map_box is not None and notebook_box is not None
    cell.screenshot(path=artifacts / "00-service-map.png")
    assert map_box["width"] > 100, map_box  # a map was drawn, not an empty box
    assert map_box["width"] <= notebook_box["width"], (
        f"the service map is {map_box['width']:.0f} px wide; the notebook shows "
        f"{notebook_box['width']:.0f} px at {VIEWPORT['width']}×{VIEWPORT['height']}"
    )
    assert map_box["x"] + map_box["width"] <= notebook_box["x"] + notebook_box["width"] + 1


def test_exam_review_quiz_gives_feedback_and_explorer_shows_a_timeline(
    lab, browser_page, artifacts
) -> None:
    from playwright.sync_api import expect

    base, token = lab
    page = browser_page
    _open(page, base, token, "11-exam-review.ipynb")
    _run_all(page)

    # the quiz: a tempting wrong answer first, then the right one; feedback and score follow
    quiz = page.locator(".jp-NotebookPanel:visible .xraykit-quiz").first
    quiz.scroll_into_view_if_needed()
    question = quiz.locator(".xraykit-quiz-question").first
    expect(question).to_contain_text("order id")
    question.locator("label", has_text="As metadata").first.click()
    question.locator(".xraykit-quiz-check").first.click()
    expect(question).to_contain_text("Not quite.", timeout=UI_MS)
    expect(question).to_contain_text("not indexed")  # the explanation says why
    question.locator("label", has_text="As an annotation").first.click()
    question.locator(".xraykit-quiz-check").first.click()
    expect(question).to_contain_text("Right.", timeout=UI_MS)
    expect(quiz.locator(".xraykit-quiz-score")).to_contain_text("Score: 1 / 1")
    question.screenshot(path=artifacts / "11-quiz-feedback.png")

    # the trace explorer: a new filter expression, its matches, and a trace's timeline
    explorer = page.locator(".jp-NotebookPanel:visible .xraykit-explorer").first
    explorer.scroll_into_view_if_needed()
    expect(explorer).to_contain_text("traces match", timeout=UI_MS)
    timeline = explorer.locator("img").first
    expect(timeline).to_be_visible(timeout=UI_MS)
    box = explorer.locator("input[type='text']").first
    box.fill('service("payments") { fault }')
    message = explorer.get_by_text(re.compile(r"of [\d,]+ traces match"))
    expect(message).to_contain_text('service("payments")', timeout=UI_MS)
    matched = int(re.search(r"([\d,]+) of", message.inner_text())[1].replace(",", ""))
    _wait_idle(base, token, "11-exam-review.ipynb")  # the new first match's timeline is sent
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 100", arg=timeline.element_handle()
    )
    first = timeline.get_attribute("src")
    # another trace from the chooser redraws the timeline
    chooser = explorer.locator("select").first
    assert chooser.locator("option").count() == min(matched, 200) > 1
    chooser.select_option(index=1)
    page.wait_for_function(
        "([img, before]) => img.getAttribute('src') !== before && img.complete "
        "&& img.naturalWidth > 100",
        arg=[timeline.element_handle(), first],
    )
    explorer.screenshot(path=artifacts / "11-explorer-timeline.png")
