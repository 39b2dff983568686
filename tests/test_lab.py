"""End to end: `make lab`'s JupyterLab opens the start notebook in a real browser.

Drives Debian's chromium with Playwright (never a downloaded browser), against a
JupyterLab bound to 127.0.0.1 that this test starts and stops.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab as `make lab` starts it, on loopback, without opening a browser itself."""
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).with_name("jupyter")
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [str(jupyter if jupyter.exists() else shutil.which("jupyter")), "lab", "notebooks/00-start-here.ipynb",
         *(["--allow-root"] if os.geteuid() == 0 else []),  # as `make lab` does
         "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (tmp_path / "lab.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"JupyterLab did not start: {tail}") from None
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_lab_opens_the_start_notebook(lab):
    from playwright.sync_api import expect, sync_playwright

    base, token = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            # the server serves notebooks/ (the folder of the file it was started with), as `make lab`
            page.goto(f"{base}/lab/tree/00-start-here.ipynb?token={token}", timeout=60_000)
            heading = page.get_by_role("heading", name=re.compile("Start here"))
            heading.first.wait_for(timeout=60_000)
            tab = page.locator(".lm-TabBar-tab.jp-mod-current")
            assert "00-start-here.ipynb" in tab.first.inner_text()
            # run the notebook in the browser's kernel: the first output lists the samples
            page.get_by_text("Run", exact=True).first.click()
            page.get_by_text("Run All Cells", exact=True).first.click()
            output = page.locator(".jp-OutputArea-output", has_text="cross-account").first
            expect(output).to_contain_text("lambda-cold-starts", timeout=120_000)
        finally:
            browser.close()
