"""ipywidgets for the course: quizzes, answer checks, the trace explorer, the sampling
playground and the map explorer (the optional ``widgets`` extra).

``import xraykit`` never imports this package; ipywidgets is imported when a widget is made,
and a missing ipywidgets raises :class:`~xraykit.exceptions.MissingDependencyError` naming the
extra (``pip install "xraykit[widgets]"``). :func:`check` needs no ipywidgets. Modules:

- ``view`` — how a widget shows itself: the live view plus a static HTML snapshot;
- ``quizzes`` — the quiz files: loading, schema checks, values, grading;
- ``quiz`` — :func:`quiz`, the quiz widget;
- ``check`` — :func:`check`, an exercise's answer checked without showing the solution;
- ``explorer`` — :func:`explore`, filter expression → matching traces → one trace;
- ``playground`` — :func:`sampling_playground`, sampling settings → sampled traces and cost;
- ``maps`` — :func:`map_explorer`, the service map around a focus service.

Examples
--------
>>> from xraykit.widgets import check
>>> check(2000, 2000, theme=4).correct
True
"""

from __future__ import annotations

from xraykit.widgets.check import CheckResult, check
from xraykit.widgets.explorer import TraceExplorer, explore
from xraykit.widgets.maps import MapExplorer, map_explorer
from xraykit.widgets.playground import SamplingPlayground, sampling_playground
from xraykit.widgets.quiz import Quiz, quiz
from xraykit.widgets.quizzes import Feedback, Question, load_quiz, quiz_names

__all__ = [
    "CheckResult",
    "Feedback",
    "MapExplorer",
    "Question",
    "Quiz",
    "SamplingPlayground",
    "TraceExplorer",
    "check",
    "explore",
    "load_quiz",
    "map_explorer",
    "quiz",
    "quiz_names",
    "sampling_playground",
]
