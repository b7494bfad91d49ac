"""Run files: TOML → validated, frozen configuration in solver units.

Every value with a unit is converted once, here (µm, s, µM, µM·µm). Every error
names the file and the key and says what was expected; nothing is solved or
written before a run file has passed all of these checks.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.config.mesh import MeshSpec, read_mesh
from solver.config.model import ModelTables
from solver.config.numerics import (
    NumericsTables,
    OutputConfig,
    SolverConfig,
    TimeConfig,
)
from solver.config.stimulus import MetricsConfig
from solver.config.values import Values
from solver.errors import InputError
from solver.model.model import Model

_SECTIONS = (
    "mesh",
    "time",
    "output",
    "parameters",
    "stimulus",
    "species",
    "definitions",
    "reactions",
    "metrics",
    "solver",
)


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
    if not path.is_file():
        raise InputError(str(path), "run file does not exist")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise InputError(str(path), f"malformed TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise InputError(str(path), f"not a UTF-8 text file: {err}") from None
    for item in overrides:
        apply_override(data, item, str(path))
    return from_dict(data, source=str(path), base_dir=path.parent)


def apply_override(data: dict, item: str, source: str = "--set") -> None:
    """Set ``a.b.c=value`` in ``data``; the value is read as TOML, else kept as a string."""
    if "=" not in item:
        raise InputError("--set", f"expected key=value, got {item!r}")
    key, raw = (s.strip() for s in item.split("=", 1))
    parts = key.split(".")
    if not all(parts):
        raise InputError("--set", f"malformed key {key!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip("'\"")
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
        return _Reader(data, Path(base_dir)).read(source)
    except InputError as err:
        raise err.located(source) from None


class _Reader:
    """Reads a whole run-file document, table by table."""

    def __init__(self, data: Mapping[str, Any], base_dir: Path) -> None:
        self.data = data
        self.v = Values(base_dir)
        self.numerics = NumericsTables(self.v)
        self.models = ModelTables(self.v)

    # -- sections --------------------------------------------------------------
    def read(self, source: str) -> RunConfig:
        data = self.v.table("", self.data)
        self.v.keys("", data, _SECTIONS)
        for required in ("mesh", "time", "species"):
            if required not in data:
                raise InputError(required, f"missing table [{required}]")
        time = self.numerics.time(self.v.table("time", data["time"]))
        output = self.numerics.output(self.v.table("output", data.get("output", {})), time)
        solver = self.numerics.solver(self.v.table("solver", data.get("solver", {})))
        mesh = read_mesh(self.v, self.v.table("mesh", data["mesh"]))
        model = self.models.model(data, mesh)
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
