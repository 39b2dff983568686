"""Writing BatchGetTraces responses to a file, the same bytes on every run.

Compact JSON lines, gzipped when the name ends in ``.gz`` with a gzip header that holds no
file name and a zero time stamp.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

from xraykit.samples.generate.documents import Doc, compact_json

__all__ = ["write_responses"]


def write_responses(responses: Iterable[Doc], path: str | Path) -> Path:
    """Write BatchGetTraces responses as JSON lines, gzipped if ``path`` ends in ``.gz``.

    The bytes depend only on the responses: compact JSON, one response per line, and a gzip
    header with no file name and a zero time stamp.

    Parameters
    ----------
    responses : iterable of dict
        Responses such as :func:`generate_shop` returns; consumed once, lazily.
    path : str or Path
        Where to write; parent folders must exist.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> from xraykit.samples.generate import generate_shop
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = write_responses(generate_shop(3), pathlib.Path(folder) / "tiny.jsonl.gz")
    ...     gzip.decompress(out.read_bytes()).startswith(b'{"Traces":[{"Id":"1-')
    True
    """
    path = Path(path)
    with path.open("wb") as raw:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
                for response in responses:
                    gz.write((compact_json(response) + "\n").encode())
        else:
            for response in responses:
                raw.write((compact_json(response) + "\n").encode())
    return path
