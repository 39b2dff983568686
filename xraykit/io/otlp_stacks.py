"""Exception events of a span as X-Ray ``cause.exceptions``, stack traces parsed into frames.

An ``exception`` event's ``exception.type``, ``exception.message`` and
``exception.stacktrace`` give one exception; the resource's ``telemetry.sdk.language`` says
how to read the stack trace, as the ADOT collector's X-Ray exporter does for Java (and PHP,
printed alike) and Python: frames innermost first (a Java label without its class loader
and module prefixes, up to the last ``/``; the exporter cuts at the first, leaving a ``/``
when the class loader names no module), and each chained cause (Java's ``Caused
by:``, Python's "During handling of the above exception") a further exception, linked by
``cause``. Other languages keep the exception without frames. Exception ids are derived from
the event's id, so a file loads the same every time. At most :data:`MAX_LINES` lines of a
stack trace are read.

>>> trace = '''Traceback (most recent call last):
...   File "app.py", line 12, in handler
...     charge(order)
...   File "pay.py", line 3, in charge
...     raise ValueError("card declined")
... ValueError: card declined
... '''
>>> attrs = {"exception.type": "ValueError", "exception.message": "card declined",
...          "exception.stacktrace": trace}
>>> [e["stack"] for e in exceptions(attrs, "aaaaaaaaaaaaaaaa", False, "python")]
[[{'path': 'pay.py', 'line': 3, 'label': 'charge'}, {'path': 'app.py', 'line': 12, 'label': 'handler'}]]
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["MAX_LINES", "exceptions"]

#: lines of a stack trace read at most
MAX_LINES = 2000
_PY_CHAIN = "During handling of the above exception, another exception occurred:"


def exceptions(
    attrs: dict[str, Any], eid: str, remote: bool, language: str
) -> list[dict[str, Any]]:
    """The exceptions of one ``exception`` event (the first one, then its causes)."""
    first: dict[str, Any] = {"id": eid, "remote": remote}
    for key, field in (("exception.type", "type"), ("exception.message", "message")):
        value = attrs.get(key)
        if type(value) is str and value:
            first[field] = value
    found = [first]
    trace = attrs.get("exception.stacktrace")
    if type(trace) is not str or not trace:
        return found
    lines = trace.split("\n")[:MAX_LINES]
    if language in ("java", "php"):
        _java(lines, found)
    elif language == "python":
        _python(lines, found)
    return found


def _chained(found: list[dict[str, Any]], kind: str, message: str) -> dict[str, Any]:
    """A new exception that caused the last one."""
    new = {
        "id": hashlib.blake2b(f"{found[0]['id']}/{len(found)}".encode(), digest_size=8).hexdigest(),
        "remote": found[0]["remote"],
    }
    if kind:
        new["type"] = kind
    if message:
        new["message"] = message
    found[-1]["cause"] = new["id"]
    found.append(new)
    return new


def _java_frame(line: str) -> dict[str, Any] | None:
    if not line.startswith("\tat ") or "(" not in line or not line.endswith(")"):
        return None
    paren = line.index("(")
    label = line[4:paren]
    label = label.rpartition("/")[2]  # class loader and module prefixes cut
    path, number = line[paren + 1 : -1], 0
    if ":" in path:
        path, digits = path.split(":", 1)
        number = int(digits) if digits.isdecimal() else 0
    return {"path": path, "line": number, "label": label}


def _java(lines: list[str], found: list[dict[str, Any]]) -> None:
    current = found[0]
    current["stack"] = []
    i = 1  # the first line is the exception's own message
    while i < len(lines):
        line = lines[i].rstrip("\r")
        frame = _java_frame(line)
        if frame is not None:
            current["stack"].append(frame)
        elif line.startswith("Caused by: "):
            kind, _, message = line[len("Caused by: ") :].partition(": ")
            i += 1
            while i < len(lines) and _java_frame(lines[i].rstrip("\r")) is None:
                message += lines[i].rstrip("\r")  # a message over several lines
                i += 1
            current = _chained(found, kind, message)
            current["stack"] = []
            continue
        i += 1


def _python_frame(line: str) -> dict[str, Any] | None:
    if not line.startswith("  File "):
        return None
    parts = line.split(",")
    if len(parts) != 3:
        return None
    path = parts[0][8:-1]
    number = int(parts[1][6:]) if parts[1].startswith(" line ") and parts[1][6:].isdecimal() else 0
    label = parts[2][4:] if parts[2].startswith(" in ") else ""
    return {"path": path, "line": number, "label": label}


def _python(lines: list[str], found: list[dict[str, Any]]) -> None:
    current = found[0]
    current["stack"] = []
    i = len(lines) - 2  # the last line names the exception itself
    while i >= 0:
        line = lines[i]
        frame = _python_frame(line)
        if frame is not None:
            current["stack"].append(frame)
        elif line.startswith(_PY_CHAIN):
            above = i - 1
            while above >= 0 and not lines[above].startswith("  File "):
                above -= 1
            if above < 0:
                return  # no frame above: not a traceback we can read further
            message = "\n".join(lines[above + 2 : i - 1])
            kind, colon, text = message.partition(":")
            if not colon:
                return
            current = _chained(found, kind, text[1:])
            current["stack"] = []
            i = above
            continue
        i -= 1
