"""The quiz widget: a notebook's questions with a Check button, feedback and a running score.

:func:`quiz` loads a quiz file (:mod:`xraykit.widgets.quizzes`) and shows it: radio buttons
for one answer, checkboxes for several, a number box for a number; each Check grades the
answer, says right or wrong with the explanation, and updates the score. In an HTML export
the quiz shows as a list of the questions with their answers folded in ``<details>``.

Examples
--------
>>> import tempfile, pathlib
>>> text = '''
... notebook = "demo"
... [[questions]]
... id = "annotation-limit"
... themes = [1]
... kind = "number"
... prompt = "How many annotations can one trace carry at most?"
... answer = 50
... explanation = "X-Ray indexes at most 50 annotations per trace."
... [[questions]]
... id = "searchable"
... themes = [1]
... kind = "choice"
... prompt = "You need to search traces by customer id. Where does it go?"
... choices = ["an annotation", "metadata", "the segment name"]
... answer = "an annotation"
... explanation = "Annotations are indexed for filter expressions; metadata is not."
... '''
>>> with tempfile.TemporaryDirectory() as folder:
...     path = pathlib.Path(folder, "demo.toml")
...     _ = path.write_text(text, encoding="utf-8")
...     q = quiz(path)
>>> q.answer("annotation-limit", 50).correct
True
>>> q.answer("searchable", "metadata").correct
False
>>> q.score
(1, 2)
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xraykit.exceptions import NotFoundError
from xraykit.widgets.quizzes import Feedback, Question, grade, load_quiz, quiz_path
from xraykit.widgets.view import WidgetView, inline_code, ipywidgets

__all__ = ["Quiz", "quiz"]

_RIGHT = "#1d8102"
_WRONG = "#d13212"


def _answer_text(question: Question) -> str:
    if not question.resolved:
        return "computed from your data (run the notebook's cells above)"
    if question.kind == "number":
        text = f"{question.answer:g}"
        return text + (f" (± {question.tolerance:g})" if question.tolerance else "")
    if question.kind == "multi":
        return ", ".join(question.answer)
    return str(question.answer)


def _feedback_html(feedback: Feedback) -> str:
    mark, colour, word = (
        ("✓", _RIGHT, "Right.") if feedback.correct else ("✗", _WRONG, "Not quite.")
    )
    return (
        f"<div style='border-left:4px solid {colour};padding:2px 8px;margin:4px 0'>"
        f"<b style='color:{colour}'>{mark} {word}</b> {inline_code(feedback.explanation)}</div>"
    )


def _number(text: str) -> float | None:
    """The number typed in a box (``1,000`` too), or None."""
    cleaned = text.replace(",", "").replace("_", "").strip()
    try:
        return float(cleaned)
    except ValueError:
        return None


class Quiz(WidgetView):
    """A quiz in a notebook; :meth:`answer` grades an answer as the Check button does.

    Attributes
    ----------
    questions : list of Question
    widget : ipywidgets.VBox
        The live view (class ``xraykit-quiz``; each question ``xraykit-quiz-question``).
    """

    def __init__(self, title: str, questions: list[Question]) -> None:
        w = ipywidgets()
        self.title = title
        self.questions = questions
        self._results: dict[str, bool] = {}
        self._inputs: dict[str, Any] = {}
        self._feedback: dict[str, Any] = {}
        self._score = w.HTML(layout=w.Layout(max_width="100%"))
        boxes = [w.HTML(f"<h4 style='margin:4px 0'>Quiz: {html.escape(title)}</h4>")]
        for number, question in enumerate(questions, start=1):
            boxes.append(self._question_box(w, number, question))
        boxes.append(self._score)
        self.widget = w.VBox(boxes, layout=w.Layout(max_width="100%"))
        self.widget.add_class("xraykit-quiz")
        self._update_score()

    def _question_box(self, w: Any, number: int, question: Question) -> Any:
        fit = w.Layout(max_width="100%", width="auto")
        prompt = w.HTML(f"<p><b>{number}.</b> {inline_code(question.prompt)}</p>", layout=fit)
        feedback = w.HTML(layout=fit)
        feedback.add_class("xraykit-quiz-feedback")
        self._feedback[question.id] = feedback
        if not question.resolved:
            feedback.value = (
                "<i>This question needs values from your analysis: pass them with "
                "quiz(..., values={...}).</i>"
            )
            return w.VBox([prompt, feedback], layout=fit)
        if question.kind == "choice":
            entry: Any = w.RadioButtons(options=list(question.choices), value=None, layout=fit)
        elif question.kind == "multi":
            boxes = [
                w.Checkbox(description=c, value=False, indent=False, layout=fit)
                for c in question.choices
            ]
            entry = w.VBox(boxes, layout=fit)
        else:
            entry = w.Text(
                placeholder="a number", description="answer:", layout=w.Layout(width="16em")
            )
        self._inputs[question.id] = entry
        button = w.Button(description="Check", button_style="primary", icon="check")
        button.add_class("xraykit-quiz-check")
        button.on_click(lambda _: self._check_input(question))
        box = w.VBox([prompt, entry, button, feedback], layout=fit)
        box.add_class("xraykit-quiz-question")
        return box

    def _question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise NotFoundError(
            f"No question {question_id!r} in the quiz {self.title!r}; its ids are "
            f"{[q.id for q in self.questions]!r}."
        )

    def _check_input(self, question: Question) -> None:
        entry = self._inputs[question.id]
        if question.kind == "multi":
            value: Any = [box.description for box in entry.children if box.value]
        elif question.kind == "number":
            value = _number(entry.value)
            if value is None:
                self._feedback[question.id].value = "<i>Type a number, such as 42 or 0.5.</i>"
                return
        else:
            value = entry.value
        if value is None or value == []:
            self._feedback[question.id].value = "<i>Pick an answer first.</i>"
            return
        self._record(question, grade(question, value))

    def _record(self, question: Question, feedback: Feedback) -> None:
        self._results[question.id] = feedback.correct
        self._feedback[question.id].value = _feedback_html(feedback)
        self._update_score()

    def _update_score(self) -> None:
        right, asked = self.score
        self._score.value = (
            f"<p class='xraykit-quiz-score'><b>Score: {right} / {asked}</b> answered right "
            f"({len(self.questions)} questions)</p>"
        )

    def answer(self, question_id: str, value: Any) -> Feedback:
        """Answer a question as a learner would in the widget, and return the feedback.

        ``value`` is the choice text (choice), a list of choice texts (multi) or a number. The
        widget shows the answer, the feedback and the new score.

        Raises
        ------
        NotFoundError
            For an id that is not in the quiz.
        ArgumentError, ArgumentTypeError
            For a value that is not among the choices or of the wrong type.
        """
        question = self._question(question_id)
        feedback = grade(question, value)
        entry = self._inputs[question.id]
        if question.kind == "choice":
            entry.value = next(
                c for c in question.choices if c.casefold() == value.strip().casefold()
            )
        elif question.kind == "multi":
            chosen = {str(v).strip().casefold() for v in value}
            for box in entry.children:
                box.value = box.description.casefold() in chosen
        else:
            entry.value = f"{value:g}"
        self._record(question, feedback)
        return feedback

    @property
    def score(self) -> tuple[int, int]:
        """``(right, asked)``: questions whose last answer was right, questions answered."""
        return sum(self._results.values()), len(self._results)

    def __repr__(self) -> str:
        right, asked = self.score
        return f"<Quiz {self.title!r}: {len(self.questions)} questions, {right}/{asked} right>"

    def _static_html(self) -> str:
        items = []
        for question in self.questions:
            choices = ""
            if question.choices:
                choices = (
                    "<ul>"
                    + "".join(f"<li>{inline_code(c)}</li>" for c in question.choices)
                    + "</ul>"
                )
            themes = ", ".join(str(t) for t in question.themes)
            items.append(
                f"<li style='margin-bottom:8px'><p>{inline_code(question.prompt)} "
                f"<span style='color:#777;font-size:11px'>(themes {themes})</span></p>{choices}"
                f"<details><summary>Answer</summary><p><b>{inline_code(_answer_text(question))}"
                f"</b></p><p>{inline_code(question.explanation)}</p></details></li>"
            )
        return (
            f"<div class='xraykit-quiz' style='max-width:100%'>"
            f"<h4>Quiz: {html.escape(self.title)}</h4><ol>{''.join(items)}</ol>"
            "<p style='color:#777;font-size:11px'>Run the notebook to answer with the "
            "interactive quiz.</p></div>"
        )


def quiz(name: str | Path, *, values: Mapping[str, Any] | None = None) -> Quiz:
    """Show the quiz of a notebook; in Jupyter it displays itself.

    Parameters
    ----------
    name : str or Path
        The notebook's stem (``"06-segments-and-subsegments"``) or a ``.toml`` quiz file.
    values : mapping, optional
        The answers and choice lists computed from your data, for the questions with
        ``answer_from``/``choices_from`` (:func:`~xraykit.widgets.quizzes.load_quiz`).

    Returns
    -------
    Quiz

    Raises
    ------
    MissingDependencyError
        Without ipywidgets (``pip install "xraykit[widgets]"``).
    NotFoundError, ArgumentError
        For an unknown quiz, a quiz file that breaks the schema, or values that do not fit.
    """
    questions = load_quiz(name, values=values)
    result = Quiz(quiz_path(name).stem, questions)
    result.show_now()
    return result
