"""Write notebooks/00-start-here.ipynb: its cells, the course map and the Binder badge.

The notebook's source lives here so that reviews read as text. Run the script after editing
it, after a course notebook is added or renamed, or after the repository moves::

    .venv/bin/python scripts/make_start_notebook.py           # write the files
    .venv/bin/python scripts/make_start_notebook.py --check   # only say whether they are stale

The Binder badge's repository is one setting: ``Repository`` under ``[project.urls]`` in
pyproject.toml (a GitHub URL). The script writes the badge from it into notebook 00 and into
the badge line of README.md, so both open the same Binder. tests/test_binder.py fails when
either file is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
START = NOTEBOOKS / "00-start-here.ipynb"
README = ROOT / "README.md"
PYPROJECT = ROOT / "pyproject.toml"

#: The notebook Binder opens (the badge's ``urlpath``).
START_PATH = "notebooks/00-start-here.ipynb"
#: The README line that holds the badge (the whole line is rewritten).
_README_BADGE = re.compile(
    r"^\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]\(.*\)$", re.M
)
_GITHUB = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")

#: The recurring DVA exam themes (xray-facts §10), as the course map names them.
THEMES: dict[int, str] = {
    1: "annotations vs metadata (indexed, 50 per trace)",
    2: "segments, subsegments, inferred segments",
    3: "sampling: reservoir, fixed rate, rules",
    4: "the daemon (UDP 2000) on EC2, ECS, Beanstalk, Lambda",
    5: "`AWS_XRAY_DAEMON_ADDRESS`",
    6: "`AWS_XRAY_CONTEXT_MISSING` and the other SDK variables",
    7: "the tracing header and Lambda's `_X_AMZN_TRACE_ID`",
    8: "instrumenting Python: `patch_all`, `@capture`, middleware",
    9: "IAM managed policies",
    10: "cross-account tracing",
    11: "API Gateway and Lambda tracing",
    12: "filter expressions, groups, Insights",
    13: "X-Ray vs CloudWatch vs CloudTrail; encryption",
    14: "error, throttle, fault (4xx, 429, 5xx)",
    15: "SDK maintenance mode; ADOT and OpenTelemetry",
}

#: Every course notebook: what the learner does in it, and the exam themes it teaches.
COURSE: dict[str, tuple[str, tuple[int, ...]]] = {
    "00-start-here": ("the seven frames, one trace two ways, a first map, timeline and filter", ()),
    "01-service-map": (
        "how X-Ray builds nodes and edges: client, inferred and Lambda nodes, async links",
        (2, 11, 14),
    ),
    "02-latency-and-root-causes": (
        "latency distributions, throttling, impacted users, root causes; which AWS tool answers what",
        (13, 14),
    ),
    "03-filter-expressions": ("the filter-expression language, clause by clause", (1, 12)),
    "04-live-and-cross-account": (
        "pulling traces with boto3 (a local X-Ray by default), IAM, cost, cross-account, encryption",
        (9, 10, 13),
    ),
    "05-sampling": ("sampling rules, reservoir vs fixed rate, local vs centralized, cost", (3, 11)),
    "06-segments-and-subsegments": (
        "segment documents, inferred segments, trace ids and headers, streaming, limits",
        (2, 7),
    ),
    "07-instrumenting-with-the-sdk": (
        "instrument a Flask app with the X-Ray SDK against a local X-Ray; the SDK's variables",
        (5, 6, 7, 8),
    ),
    "08-annotations-and-metadata": (
        "indexed annotations vs metadata, the 50 limit, searching, groups",
        (1, 12),
    ),
    "09-daemon-and-platforms": (
        'the daemon; EC2, ECS, Beanstalk, Lambda, API Gateway set-up; "no traces arrive"',
        (4, 5, 9, 11, 13, 15),
    ),
    "10-opentelemetry-and-adot": ("OpenTelemetry and ADOT, the path after the X-Ray SDK", (15,)),
    "11-exam-review": (
        "a quiz across all fifteen themes and a one-page recap of the numbers",
        tuple(THEMES),
    ),
}

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
5. see why only some requests become traces (sampling).

The course map at the end says which notebook teaches each of the fifteen exam themes.""",
    ),
    (
        CODE,
        """import pandas as pd
import xraykit
from xraykit.widgets import check

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
]

EXERCISES: list[tuple[str, str]] = [
    (
        MD,
        """## Exercises

Replace each `None` with your answer, computed from `ts`, and run the cell: `check` says right
or wrong (with a hint), never the answer. Solutions are folded at the end.

1. How many traces in `shop` have a fault at the root, and how many had a throttle anywhere?""",
    ),
    (
        CODE,
        """answer_1 = None  # a pair of ints: (root faults, traces with a throttle)

check(answer_1, (int(ts.traces.has_fault.sum()), int(ts.traces.has_throttle.sum())), theme=14,
      hint="Sum the boolean columns has_fault and has_throttle of ts.traces.")""",
    ),
    (MD, """2. Which annotation keys hold numbers? (Hint: `value_type`.)"""),
    (
        CODE,
        """answer_2 = None  # a set of key names

number_keys = set(ts.annotations.loc[ts.annotations.value_type == "number", "key"])
check(answer_2, number_keys, theme=1, ordered=False,
      hint="Filter ts.annotations on value_type and take the unique keys.")""",
    ),
    (
        MD,
        """3. In the checkout trace `one` above, how many segments did X-Ray *infer* (for
downstreams that sent no segment of their own)?""",
    ),
    (
        CODE,
        """answer_3 = None  # an int

check(answer_3, int(one.segments.inferred.sum()), theme=2,
      hint="Count the rows of one.segments whose `inferred` column is true.")""",
    ),
    (
        MD,
        """<details><summary>Solutions</summary>

```python
answer_1 = (int(ts.traces.has_fault.sum()), int(ts.traces.has_throttle.sum()))
answer_2 = set(ts.annotations.loc[ts.annotations.value_type == "number", "key"])
answer_3 = int(one.segments.inferred.sum())  # DynamoDB, SQS, the SQL database (3 calls), the payment API
```
</details>""",
    ),
]


def binder_repository(pyproject: Path = PYPROJECT) -> str:
    """``owner/name`` of the GitHub repository in pyproject.toml's ``[project.urls]``."""
    with pyproject.open("rb") as f:
        urls = tomllib.load(f).get("project", {}).get("urls", {})
    url = urls.get("Repository")
    if url is None:
        raise SystemExit(
            f"{pyproject} has no Repository under [project.urls]; add the GitHub URL the Binder "
            'badge should open, e.g. Repository = "https://github.com/xraykit/xraykit".'
        )
    match = _GITHUB.match(str(url))
    if match is None:
        raise SystemExit(
            f"[project.urls] Repository in {pyproject} must be a GitHub repository URL "
            f"(https://github.com/<owner>/<name>) for the Binder badge, but it is {url!r}."
        )
    return f"{match[1]}/{match[2]}"


def binder_url(repository: str) -> str:
    """The Binder link that opens the start notebook in JupyterLab (default branch)."""
    return f"https://mybinder.org/v2/gh/{repository}/HEAD?urlpath=lab/tree/{START_PATH}"


def binder_badge(repository: str) -> str:
    """The badge as a Markdown line (README and notebook 00 use the same)."""
    return f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(repository)})"


def course_notebooks(folder: Path = NOTEBOOKS) -> list[str]:
    """The stems of the course notebooks in ``folder``, in their (sortable) order."""
    stems = sorted(p.stem for p in folder.glob("[0-9][0-9]-*.ipynb"))
    unknown = [s for s in stems if s not in COURSE]
    if unknown:
        raise SystemExit(
            f"{unknown!r} in {folder} are not in COURSE in scripts/make_start_notebook.py: add "
            "each with what the learner does in it and its exam themes."
        )
    return stems


def _themes_text(themes: tuple[int, ...]) -> str:
    if not themes:
        return "—"
    if set(themes) == set(THEMES):
        return "all 15"
    return ", ".join(str(t) for t in sorted(themes))


def course_map(stems: list[str]) -> str:
    """The course map in Markdown: the notebooks in order, then the themes with their notebooks."""
    rows = ["| notebook | what you do | exam themes |", "| --- | --- | --- |"]
    for stem in stems:
        what, themes = COURSE[stem]
        rows.append(f"| [`{stem}`]({stem}.ipynb) | {what} | {_themes_text(themes)} |")
    by_theme = ["| # | exam theme | taught in |", "| --- | --- | --- |"]
    for number, name in THEMES.items():
        where = [
            f"[{s[:2]}]({s}.ipynb)"
            for s in stems
            if number in COURSE[s][1] and s != "11-exam-review"
        ]
        by_theme.append(f"| {number} | {name} | {', '.join(where) or '—'} |")
    return (
        "## The course\n\n"
        "Work through the notebooks in order, or jump to the exam themes you are unsure of. "
        "Every theme has a demonstration on data, an exercise whose answer is checked, and quiz "
        "questions; notebook 11 reviews them all.\n\n"
        + "\n".join(rows)
        + "\n\n**The fifteen exam themes** (recurring DVA-C02 points) **and where they are taught:**"
        "\n\n" + "\n".join(by_theme)
    )


def binder_cell(repository: str) -> str:
    return f"""## Run the course in your browser

{binder_badge(repository)}

The badge opens this course on [mybinder.org](https://mybinder.org) in JupyterLab: nothing to
install and no AWS account; every notebook runs offline on the shipped samples or against a
local X-Ray inside the session. Starting can take a minute or two. A Binder session is
temporary and stops after a while without activity: download the notebooks you changed
(*File → Download*) before you leave. Workshop hosts: share the badge's link; every
participant gets a separate copy."""


def build_notebook(repository: str, stems: list[str]) -> nbformat.NotebookNode:
    """Notebook 00 as nbformat builds it (no outputs, stable cell ids)."""
    cells = [
        *CELLS,
        (MD, course_map(stems)),
        (MD, binder_cell(repository)),
        *EXERCISES,
    ]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, source) in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if kind == MD else nbformat.v4.new_code_cell
        nb.cells.append(make(source, id=f"cell-{i:02d}"))  # stable ids keep diffs small
    return nb


def notebook_text(repository: str, stems: list[str]) -> str:
    """The file's text, exactly as :func:`nbformat.write` would write it."""
    text = nbformat.writes(build_notebook(repository, stems))
    return text if text.endswith("\n") else text + "\n"


def readme_text(readme: str, repository: str) -> str:
    """``readme`` with its badge line pointing at ``repository``."""
    if len(_README_BADGE.findall(readme)) != 1:
        raise SystemExit(
            "README.md must have exactly one Binder badge line, starting with "
            "[![Binder](https://mybinder.org/badge_logo.svg)](...): the script rewrites that line."
        )
    return _README_BADGE.sub(lambda _: binder_badge(repository), readme)


def stale_files(root: Path = ROOT) -> dict[Path, str]:
    """The files whose text differs from what this script writes, with that text."""
    repository = binder_repository(root / "pyproject.toml")
    wanted = {
        root / "notebooks" / START.name: notebook_text(
            repository, course_notebooks(root / "notebooks")
        ),
        root / "README.md": readme_text(
            (root / "README.md").read_text(encoding="utf-8"), repository
        ),
    }
    return {
        path: text
        for path, text in wanted.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a file is stale"
    )
    args = parser.parse_args(argv)
    stale = stale_files()
    for path, text in stale.items():
        if args.check:
            print(f"stale: {path.relative_to(ROOT)} (run scripts/make_start_notebook.py)")
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if not stale:
        print("notebook 00 and the README badge are up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
