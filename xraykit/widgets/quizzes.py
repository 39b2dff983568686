"""The course's quiz files: loading, schema checks, ``values=`` substitution and grading.

Each notebook has one quiz file, ``xraykit/widgets/quizzes/<notebook stem>.toml``, read with
:mod:`tomllib`. A file names its ``notebook`` and lists ``[[questions]]``, each with an
``id``, the exam ``themes`` it tests (1-15), a ``kind`` (``"choice"``, ``"multi"`` or
``"number"``), a ``prompt``, the ``answer`` (or ``answer_from``, a key of ``values``), the
``choices`` (or ``choices_from``) of a choice question, an optional absolute ``tolerance`` for
a number, and an ``explanation``. Every mistake is reported with the file and the question.

Examples
--------
>>> import tempfile, pathlib
>>> text = '''
... notebook = "demo"
... [[questions]]
... id = "udp-port"
... themes = [4]
... kind = "number"
... prompt = "Which UDP port does the daemon listen on by default?"
... answer = 2000
... explanation = "The SDK sends segments to the daemon on UDP 2000."
... [[questions]]
... id = "slowest"
... themes = [2]
... kind = "choice"
... prompt = "Which service was slowest?"
... choices_from = "services"
... answer_from = "slowest"
... explanation = "It has the highest p90 in the chart above."
... '''
>>> with tempfile.TemporaryDirectory() as folder:
...     path = pathlib.Path(folder, "demo.toml")
...     _ = path.write_text(text, encoding="utf-8")
...     questions = load_quiz(path, values={"services": ["a", "b", "c"], "slowest": "b"})
>>> [q.id for q in questions]
['udp-port', 'slowest']
>>> grade(questions[1], "B").correct
True
>>> grade(questions[0], 2001).correct
False
"""

from __future__ import annotations

import math
import numbers
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from xraykit.exceptions import ArgumentError, ArgumentTypeError, NotFoundError

__all__ = [
    "KINDS",
    "QUIZ_FOLDER",
    "THEMES",
    "Feedback",
    "Question",
    "grade",
    "load_quiz",
    "quiz_names",
    "quiz_path",
]

#: Where the course's quiz files are (shipped inside the package).
QUIZ_FOLDER = Path(__file__).parent / "quizzes"
#: The exam theme numbers of xray-facts §10.
THEMES = range(1, 16)
KINDS = ("choice", "multi", "number")
Kind = Literal["choice", "multi", "number"]

_ID = re.compile(r"[a-z0-9-]+")
_FILE_KEYS = {"notebook", "questions"}
_QUESTION_KEYS = {
    "id",
    "themes",
    "kind",
    "prompt",
    "answer",
    "answer_from",
    "choices",
    "choices_from",
    "tolerance",
    "explanation",
}
_MIN_CHOICES, _MAX_CHOICES = 3, 5


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: ``correct`` and the question's ``explanation``."""

    correct: bool
    explanation: str
    question_id: str = ""

    def __bool__(self) -> bool:
        return self.correct


@dataclass(frozen=True)
class Question:
    """One quiz question, as read from its file (``answer``/``choices`` may wait for values).

    ``answer`` is the choice text (choice), a tuple of choice texts (multi) or a number;
    ``answer_from`` and ``choices_from`` name the ``values`` keys that supply them.
    """

    id: str
    themes: tuple[int, ...]
    kind: Kind
    prompt: str
    explanation: str
    answer: Any = None
    choices: tuple[str, ...] = ()
    tolerance: float = 0.0
    answer_from: str | None = None
    choices_from: str | None = None
    source: str = field(default="", compare=False)

    @property
    def needs(self) -> tuple[str, ...]:
        """The ``values`` keys this question still needs."""
        return tuple(k for k in (self.choices_from, self.answer_from) if k is not None)

    @property
    def resolved(self) -> bool:
        """Whether the answer (and choices) are known."""
        return not self.needs


def quiz_names() -> list[str]:
    """Names of the shipped quiz files (notebook stems), sorted.

    >>> isinstance(quiz_names(), list)
    True
    """
    return sorted(p.stem for p in QUIZ_FOLDER.glob("*.toml"))


def quiz_path(name: str | Path) -> Path:
    """The file of a quiz: a shipped quiz name (notebook stem) or a path to a ``.toml`` file.

    Raises
    ------
    NotFoundError
        When no such file exists; the message lists the shipped quizzes.
    """
    if isinstance(name, Path) or str(name).endswith(".toml"):
        path = Path(name)
    elif isinstance(name, str):
        path = QUIZ_FOLDER / f"{name}.toml"
    else:
        raise ArgumentTypeError(
            f"`name` must be a quiz name such as '06-segments-and-subsegments' or a path to a "
            f".toml file, but a {type(name).__name__} was passed."
        )
    if not path.is_file():
        raise NotFoundError(
            f"No quiz file {str(path)!r}. Shipped quizzes: {quiz_names()!r} (the notebook "
            "stems); or pass the path of a .toml quiz file."
        )
    return path


def load_quiz(name: str | Path, *, values: Mapping[str, Any] | None = None) -> list[Question]:
    """Read and check a quiz file; fill ``answer_from``/``choices_from`` from ``values``.

    Parameters
    ----------
    name : str or Path
        A shipped quiz (notebook stem) or a ``.toml`` file.
    values : mapping, optional
        The answers and choice lists computed from the learner's data. Without it the
        questions that need values keep ``answer``/``choices`` empty (``resolved`` is False):
        enough to check the file, not to grade them.

    Returns
    -------
    list of Question

    Raises
    ------
    ArgumentError
        For a file that breaks the schema, or values that do not fit; the message names the
        file and the question.
    """
    path = quiz_path(name)
    source = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ArgumentError(f"{source}: not valid TOML ({exc}). Fix the syntax.") from exc
    questions = _parse_file(data, path)
    if values is None:
        return questions
    if not isinstance(values, Mapping):
        raise ArgumentTypeError(
            f"`values` must be a dict of the keys the quiz names ({_needed(questions)!r}), but "
            f"a {type(values).__name__} was passed."
        )
    needed = _needed(questions)
    missing = [k for k in needed if k not in values]
    unknown = sorted(set(values) - set(needed))
    if missing or unknown:
        raise ArgumentError(
            f"{source}: `values` must give exactly the keys {needed!r}, but "
            + (f"{missing!r} are missing" if missing else "")
            + (" and " if missing and unknown else "")
            + (f"{unknown!r} are not used by any question" if unknown else "")
            + ". Compute them from your data and pass them as values={...}."
        )
    return [_resolve(q, values) for q in questions]


def grade(question: Question, value: Any) -> Feedback:
    """Grade one answer: the choice text (choice), choice texts (multi) or a number.

    Choice texts compare stripped and case-insensitive; numbers within the question's
    ``tolerance`` (and a relative 1e-9, for floats).

    Raises
    ------
    ArgumentError
        When the question still needs values, or ``value`` is not among the choices.
    ArgumentTypeError
        For a value of the wrong type (a list for a choice question, text for a number...).
    """
    where = f"{question.source}, question {question.id!r}"
    if not question.resolved:
        raise ArgumentError(
            f"{where} needs values {list(question.needs)!r} before it can be graded: pass "
            "them to quiz(..., values={...})."
        )
    if question.kind == "number":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ArgumentTypeError(
                f"{where} wants a number, but {value!r} ({type(value).__name__}) was passed."
            )
        number, answer = float(value), float(question.answer)
        # a relative 1e-9 more, so that 1.3 is within 0.05 of 1.25 despite binary floats
        slack = question.tolerance + 1e-9 * max(abs(number), abs(answer))
        correct = abs(number - answer) <= slack
        return Feedback(correct, question.explanation, question.id)
    if question.kind == "choice":
        if not isinstance(value, str):
            raise ArgumentTypeError(
                f"{where} wants one choice (a string), but {value!r} was passed. Choices: "
                f"{list(question.choices)!r}."
            )
        chosen = _choice(question, value, where)
        return Feedback(chosen == question.answer, question.explanation, question.id)
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ArgumentTypeError(
            f"{where} wants a list of choices, but {value!r} was passed. Choices: "
            f"{list(question.choices)!r}."
        )
    chosen_set = {_choice(question, v, where) for v in value}
    return Feedback(chosen_set == set(question.answer), question.explanation, question.id)


# -- parsing ---------------------------------------------------------------------------------


def _fail(where: str, problem: str) -> ArgumentError:
    return ArgumentError(f"{where}: {problem}")


def _parse_file(data: dict[str, Any], path: Path) -> list[Question]:
    source = path.name
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise _fail(source, f"unknown top-level keys {unknown!r}; allowed: {sorted(_FILE_KEYS)}.")
    notebook = data.get("notebook")
    if notebook != path.stem:
        raise _fail(
            source,
            f"`notebook` must be the file's stem {path.stem!r}, but {notebook!r} was found. "
            f'Write notebook = "{path.stem}".',
        )
    raw = data.get("questions")
    if not isinstance(raw, list) or not raw:
        raise _fail(source, "no [[questions]]: a quiz file needs at least one question.")
    questions: list[Question] = []
    seen: set[str] = set()
    for number, entry in enumerate(raw, start=1):
        question = _parse_question(entry, f"{source}, question {number}", source)
        if question.id in seen:
            raise _fail(
                f"{source}, question {number}",
                f"id {question.id!r} is used twice in the file; ids must be unique.",
            )
        seen.add(question.id)
        questions.append(question)
    return questions


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"`{key}` must be non-empty text, but {value!r} was found.")
    return value.strip()


def _parse_question(entry: Any, where: str, source: str) -> Question:
    if not isinstance(entry, dict):
        raise _fail(where, f"a question must be a table ([[questions]]), not {entry!r}.")
    qid = entry.get("id")
    if not isinstance(qid, str) or not _ID.fullmatch(qid):
        raise _fail(where, f"`id` must match [a-z0-9-]+ (e.g. 'udp-port'), but {qid!r} was found.")
    where = f"{source}, question {qid!r}"
    unknown = sorted(set(entry) - _QUESTION_KEYS)
    if unknown:
        raise _fail(where, f"unknown keys {unknown!r}; allowed: {sorted(_QUESTION_KEYS)}.")
    themes = entry.get("themes")
    if (
        not isinstance(themes, list)
        or not themes
        or any(isinstance(t, bool) or not isinstance(t, int) or t not in THEMES for t in themes)
    ):
        raise _fail(
            where, f"`themes` must be a non-empty list of integers 1-15, but {themes!r} was found."
        )
    kind = entry.get("kind")
    if kind not in KINDS:
        raise _fail(where, f"`kind` must be one of {KINDS}, but {kind!r} was found.")
    prompt = _text(entry, "prompt", where)
    explanation = _text(entry, "explanation", where)
    answer_from = _from_key(entry, "answer", where)
    choices_from = _from_key(entry, "choices", where) if kind != "number" else None
    question = Question(
        id=qid,
        themes=tuple(dict.fromkeys(themes)),
        kind=kind,
        prompt=prompt,
        explanation=explanation,
        answer_from=answer_from,
        choices_from=choices_from,
        source=source,
    )
    if kind == "number":
        if "choices" in entry or "choices_from" in entry:
            raise _fail(where, "a number question has no `choices`/`choices_from`; remove them.")
        tolerance = entry.get("tolerance", 0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
            raise _fail(where, f"`tolerance` must be a number >= 0, but {tolerance!r} was found.")
        question = replace(question, tolerance=float(tolerance))
    elif "tolerance" in entry:
        raise _fail(where, f"`tolerance` is for number questions only, not {kind!r}.")
    if choices_from is None and kind != "number":
        question = replace(question, choices=_choices(entry.get("choices"), where, static=True))
    if answer_from is None:
        question = replace(question, answer=_answer(question, entry.get("answer"), where))
    return question


def _from_key(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    """The ``<key>_from`` value, checking that exactly one of ``key``/``<key>_from`` is set."""
    given, from_key = key in entry, f"{key}_from" in entry
    if given == from_key:
        raise _fail(
            where,
            f"give exactly one of `{key}` and `{key}_from` (a key of quiz(values=...)), but "
            + ("both were found." if given else "neither was found."),
        )
    if not from_key:
        return None
    name = entry[f"{key}_from"]
    if not isinstance(name, str) or not name.strip():
        raise _fail(where, f"`{key}_from` must name a values key, but {name!r} was found.")
    return name


def _choices(raw: Any, where: str, *, static: bool) -> tuple[str, ...]:
    what = "`choices`" if static else "the choices from values"
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise _fail(where, f"{what} must be a list of texts, but {raw!r} was found.")
    texts = [str(c).strip() if not isinstance(c, str) else c.strip() for c in raw]
    if static and any(not isinstance(c, str) for c in raw):
        raise _fail(where, f"{what} must all be texts, but {list(raw)!r} was found.")
    if any(not t for t in texts):
        raise _fail(where, f"{what} must not contain empty texts: {list(raw)!r}.")
    folded = [t.casefold() for t in texts]
    if len(set(folded)) != len(folded):
        raise _fail(where, f"{what} must be different from each other: {texts!r}.")
    low = _MIN_CHOICES if static else 2
    if len(texts) < low or (static and len(texts) > _MAX_CHOICES):
        allowed = f"{_MIN_CHOICES}-{_MAX_CHOICES}" if static else "at least 2"
        raise _fail(where, f"{what} must hold {allowed} entries, but {len(texts)} were found.")
    return tuple(texts)


def _answer(question: Question, raw: Any, where: str) -> Any:
    """Check an answer against the question's kind and (known) choices."""
    if question.kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, numbers.Real) or not math.isfinite(raw):
            raise _fail(where, f"the answer to a number question must be a number, not {raw!r}.")
        return raw
    if question.kind == "choice":
        if isinstance(raw, list | tuple):
            raise _fail(
                where,
                f"a choice question has one answer (text), but {raw!r} was found; "
                'use kind = "multi" for several.',
            )
        answers = [raw]
    else:
        if isinstance(raw, str) or not isinstance(raw, Sequence) or not raw:
            raise _fail(
                where, f"the answer to a multi question must be a non-empty list, not {raw!r}."
            )
        answers = list(raw)
    if question.choices_from is not None:  # checked against the choices once they are given
        texts = [a.strip() if isinstance(a, str) else str(a).strip() for a in answers]
        return texts[0] if question.kind == "choice" else tuple(texts)
    known: dict[str, str] = {c.casefold(): c for c in question.choices}
    matched: list[str] = []
    for item in answers:
        text = item.strip() if isinstance(item, str) else str(item).strip()
        if text.casefold() not in known:
            raise _fail(
                where, f"the answer {item!r} is not among the choices {list(question.choices)!r}."
            )
        matched.append(known[text.casefold()])
    if question.kind == "choice":
        return matched[0]
    if len(set(matched)) != len(matched):
        raise _fail(where, f"the answer {answers!r} names a choice twice.")
    return tuple(matched)


def _needed(questions: Sequence[Question]) -> list[str]:
    return sorted({key for q in questions for key in q.needs})


def _resolve(question: Question, values: Mapping[str, Any]) -> Question:
    where = f"{question.source}, question {question.id!r}"
    if question.choices_from is not None:
        raw = values[question.choices_from]
        if hasattr(raw, "tolist"):  # a pandas Series or Index, a numpy array
            raw = raw.tolist()
        question = replace(
            question,
            choices=_choices(raw, f"{where} (values[{question.choices_from!r}])", static=False),
            choices_from=None,
        )
        if question.answer_from is None:  # a fixed answer must be among the given choices
            question = replace(question, answer=_answer(question, question.answer, where))
    if question.answer_from is not None:
        raw = values[question.answer_from]
        if hasattr(raw, "tolist") and question.kind == "multi":
            raw = raw.tolist()
        if hasattr(raw, "item") and question.kind != "multi":  # numpy scalars
            raw = raw.item()
        answer = _answer(question, raw, f"{where} (values[{question.answer_from!r}])")
        question = replace(question, answer=answer, answer_from=None)
    return question


def _choice(question: Question, value: Any, where: str) -> str:
    text = value.strip().casefold() if isinstance(value, str) else str(value).strip().casefold()
    for choice in question.choices:
        if choice.casefold() == text:
            return choice
    raise ArgumentError(f"{where}: {value!r} is not one of the choices {list(question.choices)!r}.")
