"""Tests of xraykit.widgets: quiz files, grading, check(), the explorer, playground, map explorer.

The widgets are driven through their ipywidgets objects as a learner would (set a Text's
value, move a slider, click a button) and their static HTML is read back. The last tests
check the course as a whole: every quiz file valid, every theme quizzed and checked.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xraykit
from xraykit.exceptions import (
    ArgumentError,
    ArgumentTypeError,
    MissingDependencyError,
    NotFoundError,
)
from xraykit.widgets import check, explore, load_quiz, map_explorer, quiz, sampling_playground
from xraykit.widgets import view as widget_view
from xraykit.widgets.quizzes import QUIZ_FOLDER, THEMES, grade, quiz_names

ROOT = Path(__file__).parent.parent
NOTEBOOKS = ROOT / "notebooks"
HOSTILE = "<script>alert(1)</script>"

VALID = """
notebook = "demo"

[[questions]]
id = "annotation-limit"
themes = [1]
kind = "number"
prompt = "How many `annotations` can one trace carry at most?"
answer = 50
explanation = "X-Ray indexes at most 50 annotations per trace."

[[questions]]
id = "latency"
themes = [2, 13]
kind = "number"
prompt = "p90 of the orders service, in seconds?"
answer = 1.25
tolerance = 0.05
explanation = "Read it off the chart."

[[questions]]
id = "searchable"
themes = [1]
kind = "choice"
prompt = "You must search by customer id. Where does it go?"
choices = ["An annotation", "Metadata", "The segment name"]
answer = "an annotation"
explanation = "Annotations are indexed; metadata is not."

[[questions]]
id = "iam"
themes = [9]
kind = "multi"
prompt = "Which managed policies let the daemon send segments?"
choices = ["AWSXRayDaemonWriteAccess", "AWSXrayReadOnlyAccess", "AWSXrayWriteOnlyAccess"]
answer = ["AWSXRayDaemonWriteAccess", "AWSXrayWriteOnlyAccess"]
explanation = "Both grant PutTraceSegments; read-only does not."
"""

FROM_VALUES = """
notebook = "demo"

[[questions]]
id = "slowest-service"
themes = [2]
kind = "choice"
prompt = "Which service has the highest p90?"
choices_from = "services"
answer_from = "slowest"
explanation = "It is the tallest bar."

[[questions]]
id = "fault-count"
themes = [14]
kind = "number"
prompt = "How many traces have a fault?"
answer_from = "faults"
explanation = "Count them with ts.query('fault')."

[[questions]]
id = "fixed-answer"
themes = [2]
kind = "choice"
prompt = "Which service is the entry point?"
choices_from = "services"
answer = "web"
explanation = "It has the client edge."
"""


def write(tmp_path: Path, text: str, name: str = "demo") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return write(tmp_path, VALID)


@pytest.fixture(scope="module")
def hostile() -> xraykit.TraceSet:
    """One trace whose names, annotations, metadata and URL all carry markup."""
    doc = {
        "name": "web<b>x</b>",
        "id": "70de5b6f19ff9a0a",
        "trace_id": "1-581cf771-a006649127e371903a2de979",
        "start_time": 1478293361.271,
        "end_time": 1478293361.449,
        "http": {
            "request": {"method": "GET", "url": f"https://example.com/?q={HOSTILE}"},
            "response": {"status": 500},
        },
        "fault": True,
        "annotations": {"comment": HOSTILE, "customer": "a&b"},
        "metadata": {"default": {"payload": HOSTILE}},
        "subsegments": [
            {
                "id": "70de5b6f19ff9a0b",
                "name": f"call {HOSTILE}",
                "start_time": 1478293361.3,
                "end_time": 1478293361.4,
                "namespace": "remote",
                "http": {"request": {"method": "GET", "url": f"http://x/{HOSTILE}"}},
            }
        ],
    }
    return xraykit.from_documents([doc])


# -- quiz files ----------------------------------------------------------------------------


def test_a_valid_quiz_file_loads_with_every_field(demo: Path) -> None:
    questions = load_quiz(demo)
    assert [q.id for q in questions] == ["annotation-limit", "latency", "searchable", "iam"]
    by_id = {q.id: q for q in questions}
    assert by_id["latency"].themes == (2, 13)
    assert by_id["latency"].tolerance == 0.05
    assert by_id["searchable"].answer == "An annotation"  # normalised to the choice's text
    assert by_id["iam"].answer == ("AWSXRayDaemonWriteAccess", "AWSXrayWriteOnlyAccess")
    assert all(q.resolved and q.source == "demo.toml" for q in questions)


QUESTION = """
notebook = "demo"
[[questions]]
id = "q-one"
themes = [1]
kind = "choice"
prompt = "Pick one."
choices = ["a", "b", "c"]
answer = "a"
explanation = "Because."
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('kind = "choice"', 'kind = "single"', r"q-one.*`kind` must be one of"),
        ('answer = "a"', "", r"q-one.*exactly one of `answer` and `answer_from`.*neither"),
        ('answer = "a"', 'answer = "d"', r"q-one.*answer 'd' is not among the choices"),
        ('answer = "a"', 'answer = ["a", "b"]', r"q-one.*one answer.*multi"),
        ('answer = "a"', 'answer = "a"\nanswer_from = "x"', r"q-one.*both were found"),
        ('choices = ["a", "b", "c"]', 'choices = ["a", "b"]', r"q-one.*3-5 entries, but 2"),
        ('choices = ["a", "b", "c"]', 'choices = ["a", "A", "c"]', r"q-one.*different"),
        ('choices = ["a", "b", "c"]', 'choices = ["a", 2, "c"]', r"q-one.*must all be texts"),
        ("themes = [1]", "themes = [16]", r"q-one.*`themes` must be a non-empty list of integers"),
        ("themes = [1]", "themes = [true]", r"q-one.*`themes`"),
        ("themes = [1]", "themes = []", r"q-one.*`themes`"),
        ('prompt = "Pick one."', 'prompt = "  "', r"q-one.*`prompt` must be non-empty text"),
        ('explanation = "Because."', "", r"q-one.*`explanation`"),
        ('id = "q-one"', 'id = "Q One"', r"demo.toml, question 1: `id` must match"),
        ('id = "q-one"', 'id = "q-one"\nanswers = 3', r"q-one.*unknown keys \['answers'\]"),
        ('answer = "a"', 'answer = "a"\ntolerance = 1', r"q-one.*`tolerance` is for number"),
        ('notebook = "demo"', 'notebook = "other"', r"demo.toml.*`notebook` must be .*'demo'"),
        ('notebook = "demo"', 'notebook = "demo"\ntitle = "x"', r"unknown top-level keys"),
        ('prompt = "Pick one."', 'prompt = "Pick one.', r"demo.toml: not valid TOML"),
    ],
)
def test_schema_errors_name_the_file_and_the_question(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in QUESTION
    path = write(tmp_path, QUESTION.replace(old, new, 1))
    with pytest.raises(ArgumentError, match=message):
        load_quiz(path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('kind = "number"\nanswer = "50"', "must be a number"),
        ('kind = "number"\nanswer = true', "must be a number"),
        ('kind = "number"\nanswer = 5\ntolerance = -1', "`tolerance` must be a number >= 0"),
        ('kind = "number"\nanswer = 5\nchoices = ["a", "b", "c"]', "has no `choices`"),
        ('kind = "multi"\nanswer = "a"\nchoices = ["a", "b", "c"]', "non-empty list"),
        ('kind = "multi"\nanswer = []\nchoices = ["a", "b", "c"]', "non-empty list"),
        ('kind = "multi"\nanswer = ["a", "A"]\nchoices = ["a", "b", "c"]', "names a choice twice"),
        ('kind = "multi"\nanswer = ["a", "z"]\nchoices = ["a", "b", "c"]', "'z' is not among"),
    ],
)
def test_schema_errors_per_kind(tmp_path: Path, entry: str, message: str) -> None:
    text = f"""notebook = "demo"
[[questions]]
id = "k"
themes = [3]
prompt = "?"
explanation = "!"
{entry}
"""
    with pytest.raises(ArgumentError, match=r"demo.toml, question 'k'.*" + message):
        load_quiz(write(tmp_path, text))


def test_duplicate_ids_and_empty_files_are_refused(tmp_path: Path) -> None:
    twice = QUESTION + QUESTION.split('notebook = "demo"', 1)[1]
    with pytest.raises(ArgumentError, match=r"demo.toml, question 2: id 'q-one' is used twice"):
        load_quiz(write(tmp_path, twice))
    with pytest.raises(ArgumentError, match="no \\[\\[questions\\]\\]"):
        load_quiz(write(tmp_path, 'notebook = "demo"\n'))


def test_an_unknown_quiz_lists_the_shipped_ones() -> None:
    with pytest.raises(NotFoundError, match="Shipped quizzes"):
        load_quiz("99-no-such-notebook")
    with pytest.raises(ArgumentTypeError):
        load_quiz(42)  # type: ignore[arg-type]


# -- grading --------------------------------------------------------------------------------


def test_grading_each_kind(demo: Path) -> None:
    q = {question.id: question for question in load_quiz(demo)}
    assert grade(q["annotation-limit"], 50).correct
    assert grade(q["annotation-limit"], np.int64(50)).correct
    assert not grade(q["annotation-limit"], 51).correct
    assert grade(q["latency"], 1.3).correct  # within the tolerance 0.05
    assert not grade(q["latency"], 1.31).correct
    assert grade(q["searchable"], "  an ANNOTATION ").correct
    assert not grade(q["searchable"], "Metadata").correct
    both = ["AWSXrayWriteOnlyAccess", "awsxraydaemonwriteaccess"]
    assert grade(q["iam"], both).correct  # order and case do not matter
    assert not grade(q["iam"], both[:1]).correct
    assert not grade(q["iam"], [*both, "AWSXrayReadOnlyAccess"]).correct
    feedback = grade(q["searchable"], "Metadata")
    assert feedback.explanation == "Annotations are indexed; metadata is not."
    assert feedback.question_id == "searchable" and not feedback


def test_grading_refuses_values_that_are_no_answer(demo: Path) -> None:
    q = {question.id: question for question in load_quiz(demo)}
    with pytest.raises(ArgumentError, match=r"'Tags' is not one of the choices"):
        grade(q["searchable"], "Tags")
    with pytest.raises(ArgumentTypeError, match="wants a number"):
        grade(q["annotation-limit"], "50")
    with pytest.raises(ArgumentTypeError, match="wants a number"):
        grade(q["annotation-limit"], True)
    with pytest.raises(ArgumentTypeError, match="wants one choice"):
        grade(q["searchable"], ["An annotation"])
    with pytest.raises(ArgumentTypeError, match="wants a list of choices"):
        grade(q["iam"], "AWSXRayDaemonWriteAccess")


# -- values ----------------------------------------------------------------------------------


def test_values_fill_choices_and_answers(tmp_path: Path) -> None:
    path = write(tmp_path, FROM_VALUES)
    unresolved = load_quiz(path)
    assert [q.needs for q in unresolved] == [("services", "slowest"), ("faults",), ("services",)]
    values = {
        "services": pd.Series(["web", "orders", "inventory"]),
        "slowest": "Orders",
        "faults": np.int64(38),
    }
    questions = {q.id: q for q in load_quiz(path, values=values)}
    assert questions["slowest-service"].choices == ("web", "orders", "inventory")
    assert questions["slowest-service"].answer == "orders"
    assert questions["fault-count"].answer == 38 and type(questions["fault-count"].answer) is int
    assert grade(questions["fault-count"], 38).correct
    assert grade(questions["fixed-answer"], "WEB").correct


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"services": ["a", "b"], "slowest": "a"}, r"\['faults'\] are missing"),
        (
            {"services": ["a", "b"], "slowest": "a", "faults": 1, "extra": 2},
            r"\['extra'\] are not used",
        ),
        ({"services": ["web", "b"], "slowest": "c", "faults": 1}, r"'slowest-service'.*'c' is not"),
        ({"services": ["a", "b"], "slowest": "a", "faults": 1}, r"'fixed-answer'.*'web' is not"),
        ({"services": ["web"], "slowest": "web", "faults": 1}, r"at least 2 entries"),
        ({"services": ["web", "b"], "slowest": "web", "faults": "many"}, r"must be a number"),
    ],
)
def test_values_that_do_not_fit_are_refused(tmp_path: Path, values: dict, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        load_quiz(write(tmp_path, FROM_VALUES), values=values)


def test_an_unresolved_question_cannot_be_graded(tmp_path: Path) -> None:
    question = load_quiz(write(tmp_path, FROM_VALUES))[1]
    with pytest.raises(ArgumentError, match=r"needs values \['faults'\]"):
        grade(question, 38)


# -- the quiz widget ----------------------------------------------------------------------


def test_quiz_answer_updates_feedback_widget_and_score(demo: Path) -> None:
    q = quiz(demo)
    assert q.score == (0, 0)
    assert q.answer("annotation-limit", 50).correct
    wrong = q.answer("searchable", "metadata")
    assert not wrong.correct and "indexed" in wrong.explanation
    assert q.score == (1, 2)
    assert q._inputs["searchable"].value == "Metadata"  # the widget shows the answer
    assert "Not quite" in q._feedback["searchable"].value
    assert q.answer("searchable", "An annotation").correct  # a second try counts once
    assert q.score == (2, 2)
    assert "Score: 2 / 2" in q._score.value
    with pytest.raises(NotFoundError, match="annotation-limit"):
        q.answer("nope", 1)


def test_quiz_check_buttons_grade_what_the_learner_entered(demo: Path) -> None:
    q = quiz(demo)
    boxes = {box.description: box for box in q._inputs["iam"].children}
    boxes["AWSXRayDaemonWriteAccess"].value = True
    boxes["AWSXrayWriteOnlyAccess"].value = True
    q._inputs["annotation-limit"].value = "5o"  # a typo: not a number
    for button in q.widget.children:
        for child in getattr(button, "children", ()):
            if getattr(child, "description", "") == "Check":
                child.click()
    assert "Right" in q._feedback["iam"].value
    assert "Type a number" in q._feedback["annotation-limit"].value
    assert "Pick an answer first" in q._feedback["searchable"].value
    assert q.score == (1, 1)
    q._inputs["annotation-limit"].value = "50"
    q.widget.children[1].children[2].click()
    assert q.score == (2, 2)


def test_quiz_static_render_folds_the_answers(demo: Path, tmp_path: Path) -> None:
    q = quiz(demo)
    bundle = q._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    page = bundle["text/html"]
    assert page.count("<details>") == 4
    folded = page.split("<details>")[3]  # the third question's answer
    assert "An annotation" in folded and "indexed" in folded
    assert "How many <code>annotations</code> can" in page  # backticks became <code>
    waiting = quiz(write(tmp_path, FROM_VALUES.replace('"demo"', '"waiting"'), "waiting"))
    assert "computed from your data" in waiting._repr_html_()
    assert "needs values" in waiting._feedback["fault-count"].value


# -- check() -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "options", "correct"),
    [
        (50, 50, {}, True),
        (np.int64(50), 50, {}, True),
        (50.0, 50, {}, True),
        (51, 50, {}, False),
        (0.1 + 0.2, 0.3, {}, True),
        (0.3001, 0.3, {}, False),
        (0.3001, 0.3, {"tolerance": 0.001}, True),
        (52, 50, {"tolerance": 2}, True),
        (53, 50, {"tolerance": 2}, False),
        (float("nan"), float("nan"), {}, True),
        ("50", 50, {}, False),
        (True, 1, {}, False),
        (True, True, {}, True),
        (1, True, {}, False),
        (None, None, {}, True),
        ("  Annotation\n", "annotation", {}, True),
        ("annotations", "annotation", {}, False),
        (["a", "B"], ["a", "b"], {}, True),
        (["b", "a"], ["a", "b"], {}, False),
        (["b", "a"], ["a", "b"], {"ordered": False}, True),
        (["a", "a", "b"], ["a", "b", "b"], {"ordered": False}, False),
        (("a", "b"), ["a", "b"], {}, True),
        (["a"], ["a", "b"], {}, False),
        ({"b", "a"}, {"a", "b"}, {}, True),
        (["b", "a", "a"], {"a", "b"}, {}, True),
        ({"a"}, {"a", "b"}, {}, False),
        ([1.0, 2.0000001], [1, 2], {"tolerance": 1e-3}, True),
        (pd.Series([1, 2], index=[5, 6]), [1, 2], {}, True),
        (pd.Series([1, 2]), pd.Series([1, 2], name="x"), {}, True),
        (pd.Series([2, 1]), pd.Series([1, 2]), {"ordered": False}, True),
        (np.array([1, 2, 3]), [1, 2, 3], {}, True),
        ({"a": 1, "b": "x"}, {"b": "X", "a": 1}, {}, True),
        ({"a": 1}, {"a": 2}, {}, False),
    ],
)
def test_check_semantics(value, expected, options, correct) -> None:
    assert check(value, expected, theme=1, **options).correct is correct


def test_check_compares_frames_by_values() -> None:
    expected = pd.DataFrame({"service": ["orders", "web"], "p90": [1.25, 0.5]})
    mine = pd.DataFrame({"name": ["ORDERS", "web"], "latency": [1.25, 0.5]}, index=[3, 4])
    assert check(mine, expected, theme=2).correct
    assert not check(mine.iloc[::-1], expected, theme=2).correct
    assert check(mine.iloc[::-1], expected, ordered=False, theme=2).correct
    assert not check(mine.assign(latency=[1.3, 0.5]), expected, theme=2).correct
    assert check(mine.assign(latency=[1.3, 0.5]), expected, tolerance=0.1, theme=2).correct
    assert not check(mine[["name"]], expected, theme=2).correct
    assert not check(mine.to_dict(), expected, theme=2).correct


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12344, 98765),
        ("giraffe", "zebra-417"),
        (["x"], ["zebra-417", "okapi-99"]),
        ({"a"}, {"zebra-417"}),
        (pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [98765]})),
        ("text", 98765),
        (3, "zebra-417"),
    ],
)
def test_check_never_reveals_the_expected_value(value, expected) -> None:
    result = check(value, expected, hint="Look at `ts.traces` again.", theme=[1, 12])
    assert not result.correct
    shown = result._repr_html_() + str(result._repr_mimebundle_()) + repr(result)
    shown += str(vars(result))
    for secret in ("98765", "zebra-417", "okapi-99"):
        assert secret not in shown
    assert "Hint: Look at <code>ts.traces</code> again." in result._repr_html_()
    assert result.themes == (1, 12)


def test_check_explains_type_and_length_mistakes_without_the_value() -> None:
    assert "A number was expected, but a str was given" in check("5", 98765, theme=1).note
    assert "Yours has 1 items" in check([1], [1, 2], theme=1).note
    assert "✓ Correct." in check(1, 1, theme=1)._repr_html_()


@pytest.mark.parametrize("theme", [0, 16, [1, 99], True, "3", []])
def test_check_refuses_unknown_themes(theme) -> None:
    with pytest.raises(ArgumentError, match="`theme` must be an exam theme number 1-15"):
        check(1, 1, theme=theme)


def test_check_refuses_a_negative_tolerance() -> None:
    with pytest.raises(ArgumentError, match="`tolerance`"):
        check(1, 1, tolerance=-1, theme=1)


class _Shell:
    execution_count = 7


def test_results_show_once_per_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    shown: list[dict] = []
    monkeypatch.setattr(widget_view, "_shell", lambda: _Shell)
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw: shown.append(bundle))
    result = check(1, 2, hint="again", theme=3)
    assert len(shown) == 1 and "Not yet" in shown[0]["text/html"]
    result._ipython_display_()  # the same cell's value: not shown twice
    assert len(shown) == 1
    _Shell.execution_count = 8
    try:
        result._ipython_display_()  # shown again in a later cell
    finally:
        _Shell.execution_count = 7
    assert len(shown) == 2


# -- escaping -------------------------------------------------------------------------------


def test_trace_values_are_escaped_in_every_widget(hostile: xraykit.TraceSet) -> None:
    explorer = explore(hostile)
    assert explorer.trace_id == "1-581cf771-a006649127e371903a2de979"
    pages = [
        explorer._repr_html_(),
        explorer.table.value,
        explorer.annotations.value,
        explorer.metadata.value,
        explorer.documents.value,
        explorer.message.value,
    ]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in explorer.annotations.value
    assert "a&amp;b" in explorer.annotations.value
    assert "&lt;script&gt;" in explorer.metadata.value
    assert "&lt;script&gt;" in explorer.documents.value
    explorer.expression_box.value = f'annotation.comment = "{HOSTILE}"'
    pages += [explorer.message.value, explorer._repr_html_()]
    assert len(explorer.matches) == 1
    explorer.expression_box.value = f"{HOSTILE} ="
    pages.append(explorer.message.value)
    assert "Not valid" in explorer.message.value
    graph_map = map_explorer(hostile)
    pages += [graph_map._repr_html_()]
    for page in pages:
        assert HOSTILE not in page
        assert "<b>x</b>" not in page


def test_hostile_quiz_text_is_escaped(tmp_path: Path) -> None:
    text = QUESTION.replace('"Pick one."', f'"Pick {HOSTILE}"').replace(
        '"a", "b"', '"<i>a</i>", "b"'
    )
    text = text.replace('answer = "a"', 'answer = "<i>a</i>"')
    q = quiz(write(tmp_path, text))
    assert HOSTILE not in q._repr_html_() and "<i>a</i>" not in q._repr_html_()
    q.answer("q-one", "b")
    assert HOSTILE not in str([box.value for box in q.widget.children if hasattr(box, "value")])


# -- the trace explorer ------------------------------------------------------------------


def test_explorer_filters_as_the_expression_changes(shop: xraykit.TraceSet) -> None:
    explorer = explore(shop, limit=5)
    assert f"{len(shop):,} of {len(shop):,} traces" in explorer.message.value
    explorer.expression_box.value = 'service("payments") { fault }'
    expected = shop.query('service("payments") { fault }')
    assert 0 < len(expected) < len(shop)
    assert set(explorer.matches.traces.trace_id) == set(expected.traces.trace_id)
    first = expected.traces.sort_values("start").trace_id.head(5)
    assert all(tid in explorer.table.value for tid in first)
    others = set(shop.traces.trace_id) - set(expected.traces.trace_id)
    assert not any(tid in explorer.table.value for tid in list(others)[:200])
    assert [value for _, value in explorer.chooser.options] == list(
        expected.traces.sort_values("start", kind="stable").trace_id
    )
    assert explorer.trace_id == first.iloc[0]


def test_explorer_reports_a_bad_expression_and_keeps_the_last_table(shop) -> None:
    explorer = explore(shop, expression="fault")
    table = explorer.table.value
    explorer.expression_box.value = "responsetime >"
    assert "Not valid" in explorer.message.value and "^" in explorer.message.value
    assert explorer.table.value == table and len(explorer.matches) == len(shop.query("fault"))
    explorer.expression_box.value = "http.status = 2xx"
    assert "http.status &gt;= 200" in explorer.message.value  # the suggested fix, escaped


def test_explorer_shows_the_chosen_trace(shop: xraykit.TraceSet) -> None:
    explorer = explore(shop, expression="fault")
    target = explorer.chooser.options[2][1]
    explorer.choose(target)
    assert explorer.trace_id == target
    assert bytes(explorer.timeline.value).startswith(b"\x89PNG")
    one = shop.trace(target)
    assert explorer.documents.value.count("<details>") == len(
        one.document_store.trace_texts(target)
    )
    assert one.segments.segment_id.iloc[0] in explorer.documents.value
    for key in one.annotations.key:
        assert key in explorer.annotations.value
    with pytest.raises(ArgumentError, match="matching traces offered"):
        explorer.choose("1-00000000-000000000000000000000000")


def test_explorer_with_no_match_and_console_links(shop: xraykit.TraceSet) -> None:
    explorer = explore(shop, expression="responsetime > 100000", region="eu-west-1")
    assert explorer.trace_id is None and "No trace matches" in explorer.annotations.value
    explorer.expression_box.value = "fault"
    assert f"region=eu-west-1#xray:traces/{explorer.trace_id}" in explorer.link.value
    with pytest.raises(ArgumentError, match="region"):
        explore(shop, region="Mars")


def test_explorer_static_render_has_table_and_timeline(shop: xraykit.TraceSet) -> None:
    page = explore(shop, expression="throttle")._repr_mimebundle_()["text/html"]
    assert "<table" in page and 'src="data:image/png;base64,' in page
    assert "throttle" in page


# -- the sampling playground ---------------------------------------------------------------


def test_playground_recomputes_when_a_slider_moves() -> None:
    playground = sampling_playground(rate=100, reservoir=1, fixed_rate=0.05, hosts=1)
    facts = playground.cost.attrs["assumptions"]
    assert facts["sampled_per_s"] == pytest.approx(1 + 0.05 * 99, abs=1e-6)
    chart = bytes(playground.chart.value)
    playground.hosts_slider.value = 4  # local rules: each host's reservoir takes 1/s
    facts = playground.cost.attrs["assumptions"]
    assert facts["hosts"] == 4 and facts["sampled_per_s"] == pytest.approx(4 + 0.05 * 96, abs=0.01)
    assert bytes(playground.chart.value) != chart
    sim = playground.simulation
    per_second = sim[sim["reason"] == "reservoir"].groupby(sim["time"].dt.floor("s")).size()
    assert per_second.max() <= 4 and sim.attrs["sampling"]["hosts"] == 4
    playground.mode_buttons.value = "centralized"  # X-Ray shares the reservoir: 1/s in all
    assert playground.cost.attrs["assumptions"]["sampled_per_s"] == pytest.approx(5.95, abs=0.01)
    playground.fixed_rate_slider.value = 0.0
    playground.reservoir_slider.value = 0
    assert playground.cost.loc["total", "cost_usd"] == 0
    assert not playground.simulation["sampled"].any()
    assert "$0.00" in playground.cost_box.value


def test_playground_cost_is_the_estimate_and_static_render_has_the_chart() -> None:
    playground = sampling_playground(rate=200, reservoir=2, fixed_rate=0.1, hosts=2, mode="local")
    expected = xraykit.estimate_cost(200.0, rules=[playground.rule], hosts=2, mode="local")
    assert playground.cost.loc["total", "cost_usd"] == pytest.approx(
        expected.loc["total", "cost_usd"]
    )
    page = playground._repr_html_()
    assert 'src="data:image/png;base64,' in page
    assert f"${expected.loc['total', 'cost_usd']:,.2f}" in page


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 0}, "`rate` must be an integer from 1 to 2000"),
        ({"reservoir": -1}, "`reservoir`"),
        ({"hosts": 51}, "`hosts`"),
        ({"fixed_rate": 5}, "5 % is 0.05"),
        ({"mode": "global"}, "`mode` must be one of"),
    ],
)
def test_playground_refuses_settings_out_of_range(options: dict, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        sampling_playground(**options)


# -- the map explorer ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain() -> xraykit.TraceSet:
    """client → web → orders → inventory."""
    return xraykit.load_file(Path(__file__).parent / "data" / "graph_chain.json")


def _drawn(svg: str) -> set[str]:
    return {name for name in ("web", "orders", "inventory") if f">{name}</text>" in svg}


@pytest.mark.dot
def test_map_explorer_focus_and_hops(chain: xraykit.TraceSet) -> None:
    explorer = map_explorer(chain, focus="web", hops=0)
    assert "<svg" in explorer.map_box.value and 'style="max-width:100%' in explorer.map_box.value
    assert _drawn(explorer.map_box.value) == {"web"}
    explorer.hops_slider.value = 1
    assert _drawn(explorer.map_box.value) == {"web", "orders"}
    explorer.hops_slider.value = 2
    assert _drawn(explorer.map_box.value) == {"web", "orders", "inventory"}
    explorer.focus_dropdown.value = "inventory"  # two hops back to web
    assert _drawn(explorer.map_box.value) == {"web", "orders", "inventory"}
    explorer.hops_slider.value = 1
    assert _drawn(explorer.map_box.value) == {"orders", "inventory"}
    explorer.focus_dropdown.value = "(whole map)"
    assert explorer.focus is None and explorer.hops_slider.disabled
    assert _drawn(explorer.map_box.value) == {"web", "orders", "inventory"}
    assert _drawn(explorer._repr_mimebundle_()["text/html"]) == {"web", "orders", "inventory"}


def test_map_explorer_options_and_errors(chain: xraykit.TraceSet) -> None:
    graph = xraykit.service_graph(chain)
    explorer = map_explorer(graph, focus="orders|AWS::ECS::Container|")  # a node id works too
    assert explorer.focus == "orders"
    assert list(explorer.focus_dropdown.options) == ["(whole map)", "inventory", "orders", "web"]
    with pytest.raises(NotFoundError, match=r"Services: \['inventory', 'orders', 'web'\]"):
        map_explorer(chain, focus="payments")
    with pytest.raises(ArgumentError, match="`hops` must be an integer 0-6"):
        map_explorer(chain, focus="web", hops=7)


def test_map_explorer_without_dot_says_how_to_install(chain, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    explorer = map_explorer(chain)
    assert "needs Graphviz" in explorer.map_box.value and "apt-get install graphviz" in (
        explorer._repr_html_()
    )


# -- the package ----------------------------------------------------------------------------


def test_importing_the_widgets_package_imports_no_ipywidgets() -> None:
    code = (
        "import sys, xraykit.widgets; from xraykit.widgets import check; check(1, 1, theme=1); "
        "print(','.join(m for m in ('ipywidgets', 'matplotlib.pyplot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_without_ipywidgets_the_widgets_name_the_extra(
    demo: Path, shop: xraykit.TraceSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    for make in (
        lambda: quiz(demo),
        lambda: explore(shop),
        lambda: sampling_playground(),
        lambda: map_explorer(shop),
    ):
        with pytest.raises(MissingDependencyError, match=r'pip install "xraykit\[widgets\]"'):
            make()
    assert check(1, 1, theme=1).correct  # check() needs no ipywidgets


# -- the course -----------------------------------------------------------------------------


def test_the_example_quiz_files_here_are_valid_and_count_their_themes(tmp_path: Path) -> None:
    """The course-wide counting below, on two files made here (the real ones may be new)."""
    write(tmp_path, VALID, "demo")
    write(tmp_path, FROM_VALUES.replace('"demo"', '"values"'), "values")
    counts = _theme_counts([load_quiz(p) for p in sorted(tmp_path.glob("*.toml"))])
    assert counts == {1: 2, 2: 3, 9: 1, 13: 1, 14: 1}


def _theme_counts(files: list) -> dict[int, int]:
    counts: dict[int, int] = {}
    for questions in files:
        for question in questions:
            for theme in question.themes:
                counts[theme] = counts.get(theme, 0) + 1
    return counts


def test_every_shipped_quiz_file_is_valid_with_two_questions() -> None:
    names = quiz_names()
    assert names, f"no quiz files in {QUIZ_FOLDER}"
    for name in names:
        questions = load_quiz(name)
        assert len(questions) >= 2, f"{name}.toml has {len(questions)} question(s); write 2+"
    notebooks = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert set(names) <= notebooks, f"quiz files without a notebook: {set(names) - notebooks}"


def test_every_theme_has_two_quiz_questions_across_the_course() -> None:
    counts = _theme_counts([load_quiz(name) for name in quiz_names()])
    short = {theme: counts.get(theme, 0) for theme in THEMES if counts.get(theme, 0) < 2}
    assert not short, f"themes with fewer than 2 quiz questions (theme: count): {short}"


def _check_calls(path: Path) -> list[tuple[int, ast.Call]]:
    """Each ``check(...)`` call in the notebook's code cells, with its cell number."""
    calls = []
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # IPython magics and shell lines are not Python
        lines = [
            "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
        ]
        tree = ast.parse("\n".join(lines), filename=f"{path.name} cell {number}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "check":
                    calls.append((number, node))
    return calls


def test_every_theme_has_a_checked_exercise_in_the_notebooks() -> None:
    covered: set[int] = set()
    problems = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell, call in _check_calls(path):
            theme = next((k.value for k in call.keywords if k.arg == "theme"), None)
            if theme is None:
                problems.append(f"{path.name} cell {cell}: check(...) without theme=")
                continue
            try:
                value = ast.literal_eval(theme)
            except ValueError:
                problems.append(f"{path.name} cell {cell}: theme= must be a literal number")
                continue
            themes = [value] if isinstance(value, int) else list(value)
            bad = [t for t in themes if t not in THEMES]
            if bad:
                problems.append(f"{path.name} cell {cell}: theme {bad} is not 1-15")
            covered |= set(themes)
    assert not problems, problems
    missing = sorted(set(THEMES) - covered)
    assert not missing, f"themes without a check(..., theme=N) exercise in notebooks/: {missing}"
