"""The xraykit command."""

from __future__ import annotations

import subprocess
import sys

import xraykit
from xraykit.cli import main


def test_samples_lists_every_sample(capsys):
    assert main(["samples"]) == 0
    assert capsys.readouterr().out.split() == xraykit.sample_names()


def test_info_on_a_sample(capsys):
    assert main(["info", "cross-account"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cross-account: 400 traces")
    assert "services:" in out and "problem" not in out


def test_info_reports_problems_with_status_1(capsys, data_dir):
    assert main(["info", str(data_dir / "streamed_subsegments.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "1 problem(s):" in out and "deadbeefdeadbeef" in out


def test_query_prints_the_matches(capsys):
    assert main(["query", "shop", "http.status = 503"]) == 0
    out = capsys.readouterr().out
    expected = int((xraykit.load_sample("shop").traces.http_status == 503).sum())
    assert f"{expected} of 2481 traces match" in out


def test_bad_expression_and_unknown_source_exit_2(capsys):
    assert main(["query", "shop", "responsetime >"]) == 2
    assert "xraykit:" in capsys.readouterr().err
    assert main(["info", "no-such-file-or-sample"]) == 2
    err = capsys.readouterr().err
    assert "neither a file nor a sample" in err and "shop" in err


def test_save_writes_a_traceset(tmp_path, capsys):
    out = tmp_path / "ca.traceset"
    assert main(["save", "cross-account", str(out)]) == 0
    assert len(xraykit.load_file(out)) == 400


def test_console_script_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "xraykit.cli", "samples"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "shop" in done.stdout
