"""Sample traces for learning without an AWS account, and the generator that made them.

Modules, in data-flow order:

- ``generate`` — the scenario generator (a sub-package): seeded, X-Ray-faithful
  BatchGetTraces responses for the shop, Lambda cold starts, cross-account calls and the
  load benchmarks, written reproducibly by ``scripts/make_samples.py``;
- ``shipped`` — the shipped sample files: their names, paths, and :func:`load_sample`.

The generator is imported only on demand (``xraykit.samples.generate``); ``import xraykit``
loads just ``shipped``.
"""

from xraykit.samples.shipped import DEFAULT_SAMPLE, load_sample, sample_names, sample_path

__all__ = ["DEFAULT_SAMPLE", "load_sample", "sample_names", "sample_path"]
