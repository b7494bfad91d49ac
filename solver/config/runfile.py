"""Run files: TOML → validated, frozen configuration in solver units.

Every value with a unit is converted once, here (µm, s, µM, µM·µm). Every error
names the file and the key and says what was expected, on one line; nothing is
solved or written before a run file has passed all of these checks. The
``[limits]`` table (:mod:`solver.config.limits`) bounds what a run file may ask
for; a run file itself may be at most :data:`MAX_FILE_BYTES` long.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.config.limits import CEILINGS, Limits, read_limits
from solver.config.mesh import MeshSpec, read_mesh
from solver.config.model import ModelTables
from solver.config.numerics import (
    NumericsTables,
    OutputConfig,
    SolverConfig,
    TimeConfig,
)
from solver.config.stimulus import MetricsConfig
from solver.config.values import Values, shown
from solver.errors import InputError
from solver.model.model import Model

#: the tables of a run file, in the order a written run file puts them
SECTIONS = (
    "mesh",
    "time",
    "output",
    "parameters",
    "compartments",
    "stimulus",
    "species",
    "definitions",
    "reactions",
    "metrics",
    "solver",
    "limits",
)
MAX_FILE_BYTES = 4 * 1024 * 1024  # a run file is a few kB; more is no run file
_MAX_WHERE, _MAX_MESSAGE = 300, 1000  # characters of an error line's parts
_TOO_DEEP = "tables or arrays nested too deeply to read"
# characters that end or garble a line on a terminal, as escapes
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), 0x7F, 0x85)}
_ESCAPES |= {10: "\\n", 13: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"}


@dataclass(frozen=True)
class RunConfig:
    """One run: where it came from, the mesh table (solver units) and the model."""

    source: str
    base_dir: Path
    mesh: MeshSpec
    time: TimeConfig
    output: OutputConfig
    solver: SolverConfig
    model: Model
    metrics: MetricsConfig
    #: the run file as read, after ``--set`` overrides (for run.json)
    document: Mapping[str, Any]


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read, override (``"key.sub=value"``) and validate a run file."""
    path = Path(path)
    try:
        data = _read_toml(path)
        for item in overrides:
            apply_override(data, item, str(path))
    except InputError as err:
        raise _one_line(err) from None
    return from_dict(data, source=str(path), base_dir=path.parent)


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed run file; InputError naming the file (and the line) if it cannot be read."""
    where = str(path)
    try:
        if path.is_dir():
            raise InputError(where, "is a folder, not a run file")
        if not path.is_file():
            raise InputError(where, "run file does not exist")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(
                where, f"a run file of {path.stat().st_size} bytes (at most {MAX_FILE_BYTES})"
            )
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except InputError:
        raise
    except (OSError, ValueError) as err:  # permissions, a name too long, a NUL byte
        reason = getattr(err, "strerror", None) or str(err)
        raise InputError(where, f"cannot read the run file: {reason}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(where, f"not a UTF-8 text file: {err}") from None
    return _parse_toml(text, where)


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(where, f"malformed TOML: {err}") from None
    except RecursionError:
        line = _first_line(text, lambda line: "[" in line or "{" in line, deepest=True)
        raise InputError(
            f"{where}: line {line}", f"{_TOO_DEEP} (limit {CEILINGS['depth']} levels)"
        ) from None
    except ValueError:  # Python's limit of digits in an integer
        longest = max((len(m) for m in re.findall(r"\d+", text)), default=0)
        line = _first_line(text, lambda line: re.search(rf"\d{{{longest}}}", line) is not None)
        raise InputError(
            f"{where}: line {line}",
            f"a number of {longest} digits (at most {CEILINGS['number_digits']})",
        ) from None
    except MemoryError:
        raise InputError(where, "too large to read") from None


def _first_line(text: str, test: Any, deepest: bool = False) -> int:
    """1-based number of the first line passing ``test`` (with ``deepest``: of most brackets)."""
    lines = text.splitlines() or [""]
    if deepest:
        counts = [line.count("[") + line.count("{") for line in lines]
        return counts.index(max(counts)) + 1
    return next((i for i, line in enumerate(lines, 1) if test(line)), 1)


def apply_override(data: dict, item: str, source: str = "--set") -> None:
    """Set ``a.b.c=value`` in ``data``; the value is read as TOML, else kept as a string."""
    if "=" not in item:
        raise InputError("--set", f"expected key=value, got {shown(item)}")
    key, raw = (s.strip() for s in item.split("=", 1))
    parts = key.split(".")
    if not all(parts):
        raise InputError("--set", f"malformed key {shown(key)}")
    try:
        value = _parse_toml(f"v = {raw}", f"--set {key}")["v"]
    except InputError as err:
        if err.message.startswith("malformed TOML"):
            value = raw.strip("'\"")
        else:
            raise InputError(f"--set {key}", err.message) from None
    table = data
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise InputError("--set", f"{key}: {part!r} is not a table in {source}")
    table[parts[-1]] = value


def from_dict(
    data: Mapping[str, Any], source: str = "<dict>", base_dir: Path | str = "."
) -> RunConfig:
    """Validate a run-file document (as parsed from TOML) into a :class:`RunConfig`."""
    try:
        limits = read_limits(data.get("limits", {})) if isinstance(data, Mapping) else Limits()
        check_document(data, limits)
        return _Reader(data, Path(base_dir), limits).read(source)
    except InputError as err:
        raise _one_line(err.located(source)) from None
    except RecursionError:  # a safety net: every reader is bounded by the limits
        raise InputError(source, f"{_TOO_DEEP} or expressions too deep") from None


def check_document(data: Any, limits: Limits) -> None:
    """Refuse a document nested deeper than ``limits.depth``, or with too long an integer.

    Walks the document without recursion, so any depth is safe to check.
    """
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    bound = 10**limits.number_digits
    while stack:
        key, value, depth = stack.pop()
        if isinstance(value, Mapping | list):
            if depth >= limits.depth:
                raise InputError(
                    key or "(document)",
                    limits.exceeded("depth", f"tables or arrays nested more than {depth} deep"),
                )
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            for k, v in items:
                sub = f"{key}[{k}]" if isinstance(k, int) else (f"{key}.{k}" if key else str(k))
                stack.append((sub, v, depth + 1))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= bound:
            raise InputError(
                key,
                limits.exceeded("number_digits", f"an integer of {len(str(abs(value)))} digits"),
            )


def _one_line(err: InputError) -> InputError:
    """``err`` with control characters escaped and each part shortened: one line."""

    def clean(text: str, width: int) -> str:
        text = text.translate(_ESCAPES)
        return text if len(text) <= width else text[: width - 3] + "..."

    return InputError(clean(err.where, _MAX_WHERE), clean(err.message, _MAX_MESSAGE))


class _Reader:
    """Reads a whole run-file document, table by table."""

    def __init__(self, data: Mapping[str, Any], base_dir: Path, limits: Limits) -> None:
        self.data = data
        self.v = Values(base_dir, limits)
        self.numerics = NumericsTables(self.v)
        self.models = ModelTables(self.v)

    # -- sections --------------------------------------------------------------
    def read(self, source: str) -> RunConfig:
        data = self.v.table("", self.data)
        self.v.keys("", data, SECTIONS)
        for required in ("mesh", "time", "species"):
            if required not in data:
                raise InputError(required, f"missing table [{required}]")
        time = self.numerics.time(self.v.table("time", data["time"]))
        output = self.numerics.output(self.v.table("output", data.get("output", {})), time)
        mesh = read_mesh(self.v, self.v.table("mesh", data["mesh"]))
        model = self.models.model(data, mesh)
        solver = self.numerics.solver(
            self.v.table("solver", data.get("solver", {})), tuple(model.declared)
        )
        metrics = self.models.stimuli.metrics(
            self.v.table("metrics", data.get("metrics", {})), model
        )
        return RunConfig(
            source,
            self.v.base_dir,
            mesh,
            time,
            output,
            solver,
            model,
            metrics,
            copy.deepcopy(dict(data)),
        )
