"""Regenerate the synthetic samples in sample_traces/ from their seeds.

Usage::

    .venv/bin/python scripts/make_samples.py            # write all three
    .venv/bin/python scripts/make_samples.py --check    # exit 1 if a committed file differs

The output is byte-for-byte reproducible (see ``xraykit.samples.generate.write_responses``), so a
clean run leaves ``git status`` clean. ``sdk-capture.capture.gz`` is not synthetic: it is
recorded from the real X-Ray SDK by ``scripts/capture_sdk.py``.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xraykit.samples.generate import (
    generate_cross_account,
    generate_lambda_cold_starts,
    generate_shop,
    write_responses,
)

FOLDER = Path(__file__).resolve().parent.parent / "sample_traces"

#: file name -> (generator, keyword arguments); the README quotes these settings
SAMPLES: dict[str, tuple[Callable[..., list[dict[str, Any]]], dict[str, Any]]] = {
    "shop.jsonl.gz": (generate_shop, {"n_traces": 2000, "seed": 0}),
    "lambda-cold-starts.jsonl.gz": (generate_lambda_cold_starts, {"n_traces": 1200, "seed": 0}),
    "cross-account.jsonl.gz": (generate_cross_account, {"n_traces": 400, "seed": 0}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the committed files instead of writing them",
    )
    parser.add_argument("--out", type=Path, default=FOLDER, help="folder to write to")
    args = parser.parse_args(argv)
    stale = []
    for name, (generate, kwargs) in SAMPLES.items():
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                fresh = write_responses(generate(**kwargs), Path(tmp) / name)
                same = gzip.decompress(fresh.read_bytes()) == gzip.decompress(
                    (args.out / name).read_bytes()
                )
            print(f"{name}: {'up to date' if same else 'DIFFERS'}")
            if not same:
                stale.append(name)
        else:
            path = write_responses(generate(**kwargs), args.out / name)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
