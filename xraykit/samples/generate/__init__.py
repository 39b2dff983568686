"""The scenario generator: X-Ray-faithful sample traces, made deterministically from a seed.

Each ``generate_*`` function returns what ``BatchGetTraces`` would have returned for a made-up
application (responses of up to 5 traces whose segment documents are JSON strings), and
:func:`write_responses` stores them byte for byte the same on every run. The shipped samples
are made so (``scripts/make_samples.py``); ``docs/sample-generator.md`` gives the modelling
decisions and their sources.

Modules, in data-flow order:

- ``rng`` — the seeded random source, ids and arrival times;
- ``documents`` — segment documents, subsegments, inferred segments, flags, response batches;
- ``calls`` — AWS SDK call subsegments (DynamoDB, SQS, SNS);
- ``lambdas`` — Lambda invocations and execution environments (cold starts);
- ``shop_services`` — the shop's inventory and payments services;
- ``shop``, ``cold_starts``, ``cross_account`` — the three shipped scenarios;
- ``benchmark`` — generic traces for the load benchmarks;
- ``write`` — responses to a reproducible (gzipped) JSON-lines file.

Examples
--------
>>> from xraykit.samples.generate import generate_shop
>>> responses = generate_shop(20, seed=1)
>>> trace = responses[0]["Traces"][0]
>>> trace["Id"][:2], len(trace["Id"])
('1-', 35)
>>> sum(len(r["Traces"]) for r in responses) >= 20
True
"""

from xraykit.samples.generate.benchmark import generate_traces
from xraykit.samples.generate.cold_starts import generate_lambda_cold_starts
from xraykit.samples.generate.cross_account import generate_cross_account
from xraykit.samples.generate.shop import generate_shop
from xraykit.samples.generate.write import write_responses

__all__ = [
    "generate_cross_account",
    "generate_lambda_cold_starts",
    "generate_shop",
    "generate_traces",
    "write_responses",
]
