"""Write notebooks/00-start-here.ipynb from the cells below (outputs stripped).

Keeping the notebook's source here makes reviews readable; run it after editing:
``.venv/bin/python scripts/make_start_notebook.py``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

MD, CODE = "markdown", "code"

CELLS: list[tuple[str, str]] = [
    (
        MD,
        """# Start here: AWS X-Ray traces as DataFrames

This notebook runs offline on the `shop` sample: an hour of a serverless web shop recorded the
way X-Ray's `BatchGetTraces` API returns it. No AWS account is needed.

**You will learn to**

1. load traces into a `TraceSet` and name its seven frames;
2. tell a *segment* (one service's record of a request) from a *subsegment* (work inside it) and an *inferred* segment (a downstream X-Ray drew for you);
3. read one trace both as raw segment documents and as rows;
4. draw the service map and a trace timeline, and search traces with a filter expression;
5. see why only some requests become traces (sampling).""",
    ),
    (
        CODE,
        """import pandas as pd
import xraykit

pd.set_option("display.max_columns", 12)
xraykit.sample_names()""",
    ),
    (
        CODE,
        """ts = xraykit.load_sample("shop")
ts""",
    ),
    (
        MD,
        """## The frames

Every source (a sample, a file, a live pull) ends in the same seven frames:

| frame | one row per | from the documents |
| --- | --- | --- |
| `traces` | trace | what `GetTraceSummaries` reports: duration, response time, root service, fault/error/throttle |
| `segments` | segment document | `name`, `origin`, `http`, `aws`, flags; inferred segments flagged |
| `subsegments` | subsegment, any depth | `namespace` (`aws`, `remote`, `local`), `aws.operation`, `sql`, ... |
| `annotations` | annotation | indexed, searchable key/values (string, number, boolean) |
| `metadata` | metadata key | anything JSON, not searchable |
| `exceptions` | exception in a `cause` | type, message, stack depth |
| `problems` | record that could not be read | empty here |

Times are UTC; durations are seconds (X-Ray's own unit).""",
    ),
    (CODE, """ts.traces.head()"""),
    (
        CODE,
        """ts.segments[["trace_id", "name", "origin", "inferred", "duration_s", "http_status", "fault", "error", "throttle"]].head(8)""",
    ),
    (
        CODE,
        """ts.subsegments[["name", "namespace", "depth", "duration_s", "aws_operation", "table_name", "sql_database_type"]].head(8)""",
    ),
    (
        CODE,
        """# annotations are indexed (you can search them); metadata is not
display(ts.annotations.head())
display(ts.metadata.head(3))
ts.annotations.key.value_counts()""",
    ),
    (
        MD,
        """## One trace, two views

X-Ray stores a trace as a set of JSON *segment documents*. Below is the root segment's
document of one checkout request next to the rows xraykit made from the whole trace.
Notice `parent_id`: a downstream segment names the *subsegment* that called it.""",
    ),
    (
        CODE,
        """checkout = ts.traces[ts.traces.http_url.str.endswith("/checkout", na=False)].iloc[0]
one = ts.trace(checkout.trace_id)
root_doc = one.document(checkout.root_segment_id)
{k: root_doc[k] for k in ("name", "id", "trace_id", "origin", "start_time", "end_time", "http") if k in root_doc}""",
    ),
    (
        CODE,
        """one.segments[["segment_id", "parent_id", "name", "origin", "inferred", "duration_s"]]""",
    ),
    (
        CODE,
        """one.subsegments[["subsegment_id", "parent_id", "depth", "name", "namespace", "duration_s"]]""",
    ),
    (
        MD,
        """## The service map

X-Ray draws one node per service (name, type, account) and an edge for every call. Node
rings show the share of OK (green), error (4xx, orange), throttle (429, purple) and fault
(5xx, red) responses. Inferred nodes (DynamoDB tables, the SQL database, the payment API)
come from subsegments. Notebook 01 explains how the graph is computed.""",
    ),
    (CODE, """xraykit.service_map(ts)"""),
    (
        MD,
        """## Latency and one trace's timeline

The response time distribution is what the console shows per service; the timeline is the
console's trace view, with the critical path (what the user waited for) marked.""",
    ),
    (CODE, """ax = xraykit.plot_latency_histogram(ts)"""),
    (CODE, """ax = xraykit.plot_timeline(ts, checkout.trace_id)"""),
    (
        MD,
        """## Searching with filter expressions

X-Ray's console and `GetTraceSummaries` search traces with *filter expressions*. xraykit
evaluates the same language offline. Simple keywords look at the trace's root; `service()`
and `edge()` blocks look inside the trace. Here: checkouts in which the payment provider
throttled the `payments` service, yet the shop still answered within half a second. Change
`expression` (try `fault`, `responsetime > 2`, `annotation.customer_tier = "premium"`) and run
the cell again.""",
    ),
    (
        CODE,
        """expression = 'edge("payments", "api.paygate.example") { throttle } AND responsetime < 0.5'
matches = ts.query(expression)
print(f"{len(matches)} of {len(ts)} traces match {expression!r}")
matches.traces[["trace_id", "root_service", "http_url", "response_time_s", "has_throttle"]].head()""",
    ),
    (
        MD,
        """## Why only some requests are traced

X-Ray records a *sample*. With no rules of your own, the built-in Default rule traces the
first request each second (the reservoir) plus 5 % of the rest (the fixed rate), so a busy
service produces only a few traces per second. Notebook 05 goes deeper: rules, hosts, cost.""",
    ),
    (
        CODE,
        """from xraykit.sampling import sampling_summary, simulate_sampling, traffic

requests = traffic(30, duration_s=300, seed=0)  # about 30 requests per second, with a peak
result = simulate_sampling(requests, [], seed=0)  # no rules of our own: X-Ray's Default rule
display(sampling_summary(result)[["requests", "sampled", "sampled_share", "sampled_per_s"]])
ax = xraykit.plot_sampling(result)""",
    ),
    (
        MD,
        """## Where to go next

| notebook | what it covers |
| --- | --- |
| `01-service-map.ipynb` | how X-Ray builds nodes and edges: client node, inferred nodes, Lambda's two nodes, async links, cross-account maps |
| `02-latency-and-root-causes.ipynb` | latency distributions, SLAs, throttling, impacted users, root causes, what changed in the incident |
| `03-filter-expressions.ipynb` | the filter-expression language, clause by clause, with `explain` |
| `04-live-and-cross-account.ipynb` | loading from a real AWS account with boto3, IAM, cost, cross-account (offline by default) |
| `05-sampling.ipynb` | sampling rules, reservoir vs fixed rate, local vs centralized across hosts, cost |""",
    ),
    (
        MD,
        """## Exercises

1. How many traces in `shop` have a fault at the root? How many had a throttle anywhere?
2. Which annotation keys are numbers? (Hint: `value_type`.)
3. Find the slowest trace and draw its timeline. Which service is on its critical path?""",
    ),
    (
        MD,
        """<details><summary>Solutions</summary>

```python
ts.traces.has_fault.sum(), ts.traces.has_throttle.sum()
ts.annotations.loc[ts.annotations.value_type == "number", "key"].unique()
slowest = ts.traces.sort_values("response_time_s").trace_id.iloc[-1]
xraykit.plot_timeline(ts, slowest)
```
</details>""",
    ),
]


def main() -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, source) in enumerate(CELLS):
        make = nbformat.v4.new_markdown_cell if kind == MD else nbformat.v4.new_code_cell
        nb.cells.append(make(source, id=f"cell-{i:02d}"))  # stable ids keep diffs small
    path = Path(__file__).resolve().parent.parent / "notebooks" / "00-start-here.ipynb"
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
