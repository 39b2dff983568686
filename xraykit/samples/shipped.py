"""The sample trace files shipped with xraykit: where they are, their names, loading them.

Each sample is a recorded-style ``BatchGetTraces`` pull (or, for ``sdk-capture``, a daemon
capture of what the real X-Ray SDK sent); ``sample_traces/README.md`` describes them.
A loaded sample is cached; every call returns a copy a caller may edit.

Examples
--------
>>> import xraykit
>>> "shop" in xraykit.sample_names()
True
>>> xraykit.load_sample("nope")
Traceback (most recent call last):
...
xraykit.exceptions.SampleNotFoundError: There is no sample named 'nope'. ...
"""

from __future__ import annotations

import functools
from pathlib import Path

import orjson
import pandas as pd

from xraykit.exceptions import SampleNotFoundError
from xraykit.traceset import TraceSet, load_file

__all__ = ["DEFAULT_SAMPLE", "load_sample", "sample_names", "sample_path"]

DEFAULT_SAMPLE = "shop"


def _folder() -> Path:
    here = Path(__file__).resolve().parent
    # installed: xraykit/sample_traces; from a source checkout: the repository's sample_traces
    for candidate in (here.parent / "sample_traces", here.parent.parent / "sample_traces"):
        if candidate.is_dir():
            return candidate
    raise SampleNotFoundError(  # pragma: no cover - a broken installation
        f"The sample_traces folder is missing next to {here}. Reinstall xraykit."
    )


def _files() -> dict[str, Path]:
    files = {}
    for path in sorted(_folder().iterdir()):
        if path.is_file() and path.suffix == ".gz":
            files[path.name.split(".", 1)[0]] = path
    return files


def sample_names() -> list[str]:
    """Return the names of the shipped samples, sorted.

    >>> import xraykit
    >>> sorted(set(xraykit.sample_names()) & {"shop", "cross-account"})
    ['cross-account', 'shop']
    """
    return sorted(_files())


def sample_path(name: str = DEFAULT_SAMPLE) -> Path:
    """Return the file of a shipped sample (to read it raw, or to load it with ``load_file``)."""
    files = _files()
    if name not in files:
        raise SampleNotFoundError(
            f"There is no sample named {name!r}. Samples: {', '.join(sorted(files))}. "
            "Use xraykit.sample_names() to list them."
        )
    return files[name]


@functools.lru_cache(maxsize=8)
def _cached(name: str) -> TraceSet:
    return load_file(sample_path(name), on_error="ignore")


def load_sample(name: str = DEFAULT_SAMPLE) -> TraceSet:
    """Load a shipped sample as a TraceSet (offline, no AWS account needed).

    Parameters
    ----------
    name : str
        One of :func:`sample_names`; ``"shop"`` by default.

    Raises
    ------
    SampleNotFoundError
        When there is no sample of that name; the message lists the names.

    Examples
    --------
    >>> import xraykit
    >>> ts = xraykit.load_sample()
    >>> sorted(ts.frames)[:3]
    ['annotations', 'exceptions', 'metadata']
    """
    ts = _cached(name)
    frames = {n: f.copy() for n, f in ts.frames.items()}
    # metadata values are dicts and lists: a caller editing one must not edit the cache
    values = frames["metadata"]["value"]
    frames["metadata"]["value"] = pd.array(
        [orjson.loads(orjson.dumps(v)) if isinstance(v, dict | list) else v for v in values],
        dtype=object,
    )
    frames["documents"] = ts.document_store  # immutable: shared with the cache
    return TraceSet(frames)
