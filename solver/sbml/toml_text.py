"""Writing run files: TOML text for the tables of a run-file document, with comments.

Only what run files hold is written: tables, arrays of tables, strings, numbers,
booleans and lists of them. Comments are keyed by the dotted key they describe
(``"species.A"`` before the table ``[species.A]``, ``"species.A.D"`` after that value).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def key(name: str) -> str:
    """A TOML key: bare when it can be, else quoted."""
    return name if _BARE.match(name) else string(name)


def string(text: str) -> str:
    """A TOML basic string."""
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def value(v: Any) -> str:
    """A TOML value (not a table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"a run file holds finite numbers only, got {v}")
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to a run file")


def _is_table(v: Any) -> bool:
    return isinstance(v, Mapping)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def dumps(
    document: Mapping[str, Any],
    comments: Mapping[str, str] | None = None,
    header: list[str] | None = None,
) -> str:
    """The TOML text of ``document``, with ``comments`` and ``header`` lines on top."""
    comments = comments or {}
    lines = [f"# {h}".rstrip() for h in header or []]
    _table(document, [], lines, comments, top=True)
    return "\n".join(lines).strip("\n") + "\n"


def _comment(text: str | None) -> str:
    return f"  # {text}" if text else ""


def _table(
    table: Mapping[str, Any],
    path: list[str],
    lines: list[str],
    comments: Mapping[str, str],
    top: bool = False,
) -> None:
    dotted = ".".join(path)
    simple = [(k, v) for k, v in table.items() if not _is_table(v) and not _is_table_array(v)]
    nested = [(k, v) for k, v in table.items() if _is_table(v) or _is_table_array(v)]
    if path and (simple or not nested):
        lines.append("")
        for note in comments.get(f"{dotted}#before", "").splitlines():
            lines.append(f"# {note}".rstrip())
        lines.append(f"[{'.'.join(key(p) for p in path)}]" + _comment(comments.get(dotted)))
    elif not top and path and comments.get(dotted):
        lines.append("")
        lines.append(f"# {comments[dotted]}")
    for k, v in simple:
        lines.append(f"{key(k)} = {value(v)}" + _comment(comments.get(f"{dotted}.{k}".lstrip("."))))
    for k, v in nested:
        sub = [*path, k]
        if _is_table(v):
            _table(v, sub, lines, comments)
            continue
        name = ".".join(key(p) for p in sub)
        for item in v:
            lines.append("")
            lines.append(f"[[{name}]]")
            for ik, iv in item.items():
                lines.append(f"{key(ik)} = {value(iv)}")
