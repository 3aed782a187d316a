"""One rule for every request body, checked on the raw bytes before FastAPI parses them and pydantic validates them.

- **Depth**: JSON nested deeper than `MAX_JSON_DEPTH` objects and arrays is refused, with where it got too deep.
  The scan is iterative over the bytes (no parser recursion on untrusted input): Python's `json` module recurses
  per level, so a deep body would otherwise end as a RecursionError reported as "not valid JSON".
- **Control characters**: text (every string value and every key, however deeply nested) may hold tab and line
  breaks (LF, or CR LF as email sends them); every other C0 control character (U+0000 to U+001F, including a CR
  that is not followed by LF) is refused, naming the field and the character. The rule is the same whether the
  character arrives escaped (`"\\u0000"`, `"\\b"`) or raw.

`InputGuard` is a pure ASGI middleware: it sees the body as the application reads it and, once the body is
complete, raises the exception that `reject` builds from the problems (the app's own 422 error), from inside
`receive`, where FastAPI lets an HTTPException through to the app's error handlers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 32
MAX_PROBLEMS = 10  # enough to fix a body in one go; a body full of NULs is not listed character by character

CONTROL_RULE = ("text may hold tab and line breaks (LF, or CR LF), no other control character "
                "(U+0000 to U+001F, nor a CR without LF)")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]|\r(?!\n)")
# Cheap test on the raw bytes: a raw control byte or an escape that can spell one. Most bodies have neither.
_MAY_HOLD_CONTROLS = re.compile(rb"[\x00-\x08\x0b-\x1f]|\\[bfr]|\\u00[01][0-9A-Fa-f]")
# JSON's structural bytes outside strings, and whole strings (an unterminated one runs to the end, so the scan
# never backtracks over it: linear in the body's length).
_STRING = rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)'
_TOKEN = re.compile(_STRING + rb"|[\[\]{},:]", re.S)
_NESTING = re.compile(_STRING + rb"|[\[\]{}]", re.S)
_OPENERS, _CLOSERS = frozenset(b"[{"), frozenset(b"]}")

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class BodyProblem:
    """One reason to refuse a body, in the terms of the API's error details."""

    loc: Loc  # ("body", "subject"), ("body", "tags", 0), ...
    message: str
    type: str  # json_too_deep | control_character


def check_body(raw: bytes) -> list[BodyProblem]:
    """The problems of a request body under the rule above; empty when it passes (or is not JSON at all: then
    FastAPI's own parse reports it)."""
    too_deep = _depth_problem(raw)
    if too_deep is not None:
        return [too_deep]
    if not _MAY_HOLD_CONTROLS.search(raw):
        return []
    try:
        document = json.loads(raw, strict=False)  # strict=False: raw control characters are ours to name
    except (ValueError, RecursionError):
        return []
    return control_character_problems(document)


# ----- depth ------------------------------------------------------------------------------------------


def _depth_problem(raw: bytes) -> BodyProblem | None:
    offset = _first_too_deep(raw)
    if offset is None:
        return None
    loc: Loc = ("body", *_path_at(raw, offset))
    message = (f"JSON is nested deeper than the maximum of {MAX_JSON_DEPTH} levels of objects and arrays "
               f"(at character {offset}, inside {_dotted(loc)})")
    return BodyProblem(loc=loc, message=message, type="json_too_deep")


def _first_too_deep(raw: bytes) -> int | None:
    """The offset of the first `[` or `{` that opens level MAX_JSON_DEPTH + 1, if any."""
    depth = 0
    for token in _NESTING.finditer(raw):
        first = raw[token.start()]
        if first in _OPENERS:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return token.start()
        elif first in _CLOSERS:
            depth = max(depth - 1, 0)
    return None


def _path_at(raw: bytes, offset: int) -> list[str | int]:
    """Keys and indexes leading to `offset` (only called for a body already known to be too deep)."""
    frames: list[list[Any]] = []  # [is_object, key or index, expecting a key]
    for token in _TOKEN.finditer(raw, 0, offset):
        first, top = raw[token.start()], frames[-1] if frames else None
        if first in _OPENERS:
            frames.append([first == ord("{"), 0 if first == ord("[") else "?", first == ord("{")])
        elif first in _CLOSERS:
            if frames:
                frames.pop()
        elif first == ord(",") and top is not None:
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
        elif first == ord('"') and top is not None and top[0] and top[2]:
            top[1], top[2] = _key(token.group()), False
    return [frame[1] for frame in frames]


def _key(token: bytes) -> str:
    try:
        return _printable(json.loads(token, strict=False))
    except ValueError:
        return _printable(token.decode("utf-8", "replace").strip('"'))


# ----- control characters -----------------------------------------------------------------------------


def control_character_problems(document: object) -> list[BodyProblem]:
    """Every string and key in a parsed document that breaks the control-character rule (walked with a stack)."""
    problems: list[BodyProblem] = []
    for loc, text, is_key in _texts(document):
        found = _FORBIDDEN.search(text)
        if found is None:
            continue
        what = f'the key "{_printable(text)}"' if is_key else "the text"
        char = f"U+{ord(found.group()[0]):04X}"
        problems.append(BodyProblem(loc=loc, type="control_character",
                                    message=f"{what} contains the control character {char} at position "
                                            f"{found.start()}: {CONTROL_RULE}"))
        if len(problems) == MAX_PROBLEMS:
            break
    return problems


def _texts(document: object) -> Iterator[tuple[Loc, str, bool]]:
    """(location, text, is it a key) for every string in the document; keys are located at their object."""
    stack: list[tuple[Loc, object, bool]] = [(("body",), document, False)]
    while stack:  # popped in document order: a key before its value, item 0 before item 1
        loc, value, is_key = stack.pop()
        if isinstance(value, str):
            yield loc, value, is_key
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                here = (*loc, _printable(key))
                stack += [(here, item, False), (here, key, True)]
        elif isinstance(value, list):
            stack.extend(((*loc, i), item, False) for i, item in reversed(list(enumerate(value))))


def _printable(text: str) -> str:
    """Text with its control characters spelled as escapes, fit for an error message and a log line."""
    return _FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


# ----- the middleware ---------------------------------------------------------------------------------


class InputGuard:
    """Pure ASGI: checks each request body as it is read; `reject` turns the problems into the app's 422.

    Put it inside the body-size limit (add it to the app before that middleware), so it never holds more than
    the limit allows."""

    def __init__(self, app: ASGIApp, reject: Callable[[list[BodyProblem]], Exception]) -> None:
        self.app = app
        self.reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def guarded_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    problems = check_body(b"".join(chunks))
                    if problems:
                        raise self.reject(problems)
            return message

        await self.app(scope, guarded_receive, send)
