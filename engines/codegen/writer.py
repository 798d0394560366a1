"""A small source writer for the codegen compiler (the Jinja2 `CodeGenerator` model).

The compiler never builds source by string concatenation of user data: it calls `writeline`
with code it owns and `literal(...)` for every user-supplied value (ids, mapping keys, constants),
which renders a Python literal that `ast.literal_eval` reads back to the same value.
"""

from __future__ import annotations

import math
from typing import Any

INDENT = "    "


class Unrepresentable(ValueError):
    """A value has no plain Python literal (it is not None/bool/int/float/str/list/tuple/dict)."""


def literal(value: Any) -> str:
    """A Python literal for plain data (escaped strings, nested lists/dicts); else Unrepresentable."""
    t = type(value)
    if t is str or t is int:  # the common cases first; repr() escapes every string
        return repr(value)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise Unrepresentable(f"float {value!r} has no literal")
        return repr(value)
    if isinstance(value, str):
        # repr() escapes quotes, backslashes, newlines and non-printables: always one literal.
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str | int | bool) and k is not None:
                raise Unrepresentable(f"dict key {k!r} has no literal")
            items.append(f"{literal(k)}: {literal(v)}")
        return "{" + ", ".join(items) + "}"
    raise Unrepresentable(f"{type(value).__name__} value has no literal")


def comment_text(text: str) -> str:
    """`text` made safe for a `#` comment: one line, control characters escaped."""
    if text.isascii() and text.isprintable():  # nothing to escape (the usual case)
        return text
    return text.encode("unicode_escape").decode("ascii")


class CodeWriter:
    """Accumulates indented lines: `writeline`, `indent`/`outdent`, `blank`, `getvalue`."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._level = 0
        self._prefix = ""  # INDENT * level

    @property
    def level(self) -> int:
        """The current indentation level."""
        return self._level

    @property
    def lineno(self) -> int:
        """The 1-based number of the next line to be written."""
        return len(self._lines) + 1

    def writeline(self, code: str) -> None:
        """Write one line of code at the current indentation."""
        if "\n" in code:
            raise ValueError(f"writeline takes one line, got {code!r}")
        self._lines.append(self._prefix + code if code else "")

    def comment(self, text: str) -> None:
        """Write a `# text` comment; user text inside is escaped onto one line."""
        self.writeline("# " + comment_text(text))

    def blank(self) -> None:
        """Write an empty line (never two in a row)."""
        if self._lines and self._lines[-1] != "":
            self._lines.append("")

    def indent(self) -> None:
        """Indent the following lines one level."""
        self._level += 1
        self._prefix = INDENT * self._level

    def outdent(self, levels: int = 1) -> None:
        """Outdent the following lines."""
        if levels > self._level:
            raise ValueError("outdent below column 0")
        self._level -= levels
        self._prefix = INDENT * self._level

    def getvalue(self) -> str:
        """The source written so far, ending with one newline."""
        lines = list(self._lines)
        while lines and lines[-1] == "":
            lines.pop()
        return "\n".join(lines) + "\n"
