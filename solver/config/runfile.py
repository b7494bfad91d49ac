"""Run files: TOML → validated, frozen configuration in solver units.

Every value with a unit is converted once, here (µm, s, µM, µM·µm). Every error
names the file and the key and says what was expected; nothing is solved or
written before a run file has passed all of these checks.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.config import units
from solver.config.numerics import (
    NumericsTables,
    OutputConfig,
    SolverConfig,
    TimeConfig,
)
from solver.config.stimulus import StimulusTables
from solver.errors import InputError
from solver.model.expressions import (
    CONSTANTS,
    FUNCTIONS,
    Expression,
    ExpressionError,
    parse_expression,
)
from solver.model.model import (
    COORDINATES,
    TIME,
    Compartment,
    Model,
    Reaction,
    Species,
    parse_equation,
)

MESH_SHAPES = ("sphere", "ellipsoid", "disk", "ellipse", "spread", "capsule", "file")
RESERVED = frozenset(COORDINATES) | {TIME} | CONSTANTS | FUNCTIONS

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
_MESH_KEYS = (
    "shape",
    "radius",
    "semi_axes",
    "height",
    "dome_radius",
    "thickness",
    "length",
    "size",
    "inner_size",
    "grading",
    "center",
    "file",
    "order",
)
# lengths of a spread cell or a capsule (defaults: solver.mesh.shapes.SHAPE_DEFAULTS)
_MESH_LENGTHS = {
    "spread": ("radius", "height", "dome_radius", "thickness"),
    "capsule": ("radius", "length"),
}
_SPECIES_KEYS = ("compartment", "D", "initial", "noise")
_REACTION_KEYS = ("equation", "rate", "on")


@dataclass(frozen=True)
class MetricsConfig:
    """Polarity read-outs of membrane species along the direction of ``stimulus``."""

    species: tuple[str, ...] = ()
    stimulus: str | None = None
    correlations: tuple[tuple[str, str], ...] = ()
    cap_angle: float = 15.0  # degrees: half-angle of the front and back caps


@dataclass(frozen=True)
class RunConfig:
    """One run: where it came from, the mesh table (solver units) and the model."""

    source: str
    base_dir: Path
    mesh: Mapping[str, Any]
    time: TimeConfig
    output: OutputConfig
    solver: SolverConfig
    model: Model
    metrics: MetricsConfig
    #: the run file as read, after ``--set`` overrides (for run.json)
    document: Mapping[str, Any]

    @property
    def case_dir(self) -> Path:
        """The folder of the run file: outputs go to ``<case>/out`` by default."""
        return self.base_dir


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


class _Reader(StimulusTables, NumericsTables):
    def __init__(self, data: Mapping[str, Any], base_dir: Path) -> None:
        self.data = data
        self.base_dir = base_dir

    # -- helpers ---------------------------------------------------------------
    def table(self, key: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise InputError(key, f"expected a table, got {value!r}")
        return value

    def keys(self, key: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for k in table:
            if k not in allowed:
                raise InputError(
                    f"{key}.{k}" if key else k,
                    f"unknown key; expected one of: {', '.join(allowed)}",
                )

    def quantity(self, key: str, value: Any, expect: str | None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InputError(key, f"expected a number or a value with a unit, got {value!r}")
        try:
            result = units.to_solver_units(value, expect)
        except units.UnitError as err:
            raise InputError(key, str(err)) from None
        if not math.isfinite(result):
            raise InputError(key, f"expected a finite value, got {value!r}")
        return result

    def vector(
        self, key: str, value: Any, expect: str | None, n: tuple[int, ...] = (2, 3)
    ) -> tuple[float, ...]:
        """A list of 2 or 3 values (a point or a direction), each converted like a quantity."""
        if not isinstance(value, list) or len(value) not in n:
            raise InputError(key, f"expected a list of {' or '.join(map(str, n))} numbers")
        return tuple(self.quantity(f"{key}[{i}]", v, expect) for i, v in enumerate(value))

    def positive(self, key: str, value: Any, expect: str) -> float:
        result = self.quantity(key, value, expect)
        if result <= 0:
            raise InputError(key, f"expected a positive value, got {value!r}")
        return result

    def expression(self, key: str, text: Any, known: set[str]) -> Expression:
        if isinstance(text, bool) or not isinstance(text, int | float | str):
            raise InputError(key, f"expected an expression (a string) or a number, got {text!r}")
        try:
            expr = parse_expression(str(text))
        except ExpressionError as err:
            raise InputError(key, str(err)) from None
        bad = expr.undefined(known)
        if bad:
            name, col = bad[0]
            raise InputError(
                key,
                f"undefined name '{name}' (column {col} of {str(text)!r}); known names: "
                f"{', '.join(sorted(known - RESERVED)) or 'none'}, x, y, z, t",
            )
        return expr

    # -- sections --------------------------------------------------------------
    def read(self, source: str) -> RunConfig:
        data = self.table("", self.data)
        self.keys("", data, _SECTIONS)
        for required in ("mesh", "time", "species"):
            if required not in data:
                raise InputError(required, f"missing table [{required}]")
        time = self.time(self.table("time", data["time"]))
        output = self.output(self.table("output", data.get("output", {})), time)
        solver = self.solver(self.table("solver", data.get("solver", {})))
        mesh = self.mesh(self.table("mesh", data["mesh"]))
        model = self.model(data, mesh)
        metrics = self.metrics(self.table("metrics", data.get("metrics", {})), model)
        return RunConfig(
            source,
            self.base_dir,
            mesh,
            time,
            output,
            solver,
            model,
            metrics,
            copy.deepcopy(dict(data)),
        )

    def mesh(self, table: Mapping[str, Any]) -> dict[str, Any]:
        self.keys("mesh", table, _MESH_KEYS)
        shape = table.get("shape", "file" if "file" in table else None)
        if shape not in MESH_SHAPES:
            raise InputError(
                "mesh.shape", f"expected one of {', '.join(MESH_SHAPES)}, got {shape!r}"
            )
        out: dict[str, Any] = {"shape": shape}
        if shape == "file":
            if "file" not in table:
                raise InputError("mesh.file", "missing: the path of a gmsh .msh or XDMF mesh")
            path = Path(str(table["file"]))
            path = path if path.is_absolute() else self.base_dir / path
            if not path.is_file():
                raise InputError("mesh.file", f"mesh file {str(path)!r} does not exist")
            out["file"] = path
            return out
        if "size" not in table:
            raise InputError("mesh.size", "missing: the target element size, e.g. '0.5 um'")
        out["size"] = self.positive("mesh.size", table["size"], "length")
        takes = _MESH_LENGTHS.get(
            shape, ("semi_axes",) if shape in ("ellipse", "ellipsoid") else ("radius",)
        )
        for key in ("radius", "semi_axes", "height", "dome_radius", "thickness", "length"):
            if key in table and key not in takes:
                hint = "use radius" if takes == ("radius",) else f"it takes {', '.join(takes)}"
                raise InputError(f"mesh.{key}", f"not used by shape {shape!r}; {hint}")
        for key in ("inner_size", "grading"):
            if key in table:
                out[key] = self.positive(f"mesh.{key}", table[key], "length")
        if shape in _MESH_LENGTHS:
            for key in takes:
                if key in table:
                    out[key] = self.positive(f"mesh.{key}", table[key], "length")
        elif shape in ("sphere", "disk"):
            out["radius"] = self.positive("mesh.radius", table.get("radius", 1.0), "length")
        else:
            axes = table.get("semi_axes")
            n = 2 if shape == "ellipse" else 3
            if not isinstance(axes, list) or len(axes) != n:
                raise InputError("mesh.semi_axes", f"expected a list of {n} lengths for {shape!r}")
            out["semi_axes"] = tuple(
                self.positive(f"mesh.semi_axes[{i}]", a, "length") for i, a in enumerate(axes)
            )
        if "center" in table:
            out["center"] = self.vector("mesh.center", table["center"], "length")
        if "order" in table:
            if table["order"] not in (1, 2):
                raise InputError("mesh.order", f"expected 1 or 2, got {table['order']!r}")
            out["order"] = table["order"]
        return out

    def model(self, data: Mapping[str, Any], mesh: Mapping[str, Any]) -> Model:
        parameters = {}
        for name, value in self.table("parameters", data.get("parameters", {})).items():
            self.name("parameters", name)
            parameters[name] = self.quantity(f"parameters.{name}", value, None)
        known = set(parameters) | RESERVED
        stimuli = {}
        for name, table in self.table("stimulus", data.get("stimulus", {})).items():
            self.name("stimulus", name)
            if name in known:
                raise InputError(f"stimulus.{name}", "a parameter has the same name")
            stimuli[name] = self.stimulus(name, self.table(f"stimulus.{name}", table), known, mesh)
        fields = {n for s in stimuli.values() for n in s.symbols}
        species_table = self.table("species", data["species"])
        if not species_table:
            raise InputError("species", "no species defined")
        species = {}
        for name, table in species_table.items():
            self.name("species", name)
            if name in known | fields:
                raise InputError(f"species.{name}", "a parameter or stimulus has the same name")
            species[name] = self.species(name, self.table(f"species.{name}", table), known)
        known |= set(species) | fields
        definitions: dict[str, Expression] = {}
        for name, text in self.table("definitions", data.get("definitions", {})).items():
            self.name("definitions", name)
            if name in known:
                raise InputError(f"definitions.{name}", "this name is already defined")
            expr = self.expression(f"definitions.{name}", text, known)
            definitions[name] = expr.substitute(definitions)
            known.add(name)
        reactions = {}
        for name, table in self.table("reactions", data.get("reactions", {})).items():
            reactions[name] = self.reaction(
                name,
                self.table(f"reactions.{name}", table),
                species,
                known,
                definitions,
                frozenset(fields),
            )
        return Model(
            species=species,
            reactions=reactions,
            parameters=parameters,
            fields=frozenset(fields),
            stimuli=stimuli,
        )

    def name(self, section: str, name: str) -> None:
        if not name.isidentifier() or name.startswith("_"):
            raise InputError(
                f"{section}.{name}",
                "expected a name of letters, digits and '_' that starts with a letter",
            )
        if name in RESERVED:
            raise InputError(f"{section}.{name}", f"'{name}' is reserved for expressions")

    def species(self, name: str, table: Mapping[str, Any], known: set[str]) -> Species:
        key = f"species.{name}"
        self.keys(key, table, _SPECIES_KEYS)
        compartment = table.get("compartment")
        if compartment not in tuple(Compartment):
            raise InputError(
                f"{key}.compartment", f"expected 'cytosol' or 'membrane', got {compartment!r}"
            )
        compartment = Compartment(compartment)
        D = self.quantity(f"{key}.D", table.get("D", 0.0), "diffusivity")
        if D < 0:
            raise InputError(
                f"{key}.D", f"a diffusion coefficient cannot be negative, got {table['D']!r}"
            )
        expect = "concentration" if compartment == Compartment.CYTOSOL else "density"
        initial = table.get("initial", 0.0)
        noise = self.quantity(f"{key}.noise", table.get("noise", 0.0), "dimensionless")
        if not 0 <= noise < 1:
            raise InputError(f"{key}.noise", "expected a relative amplitude in [0, 1), e.g. '5 %'")
        return Species(
            name,
            compartment,
            D,
            self.value_or_expression(f"{key}.initial", initial, expect, known),
            noise,
        )

    def value_or_expression(
        self, key: str, value: Any, expect: str, known: set[str]
    ) -> float | Expression:
        """A number with a unit, or an expression whose names are all known."""
        if isinstance(value, str) and not isinstance(value, bool):
            try:
                expr = parse_expression(value)
            except ExpressionError:
                expr = None
            if expr is not None and not expr.is_constant() and not expr.undefined(known):
                return expr
            try:
                return self.quantity(key, value, expect)
            except InputError:
                if expr is not None and not expr.is_constant():
                    self.expression(key, value, known)  # names the undefined symbol
                raise
        return self.quantity(key, value, expect)

    def reaction(
        self,
        name: str,
        table: Mapping[str, Any],
        species: Mapping[str, Species],
        known: set[str],
        definitions: Mapping[str, Expression] | None = None,
        fields: frozenset[str] = frozenset(),
    ) -> Reaction:
        key = f"reactions.{name}"
        self.keys(key, table, _REACTION_KEYS)
        for required in ("equation", "rate"):
            if required not in table:
                raise InputError(f"{key}.{required}", "missing")
        if not isinstance(table["equation"], str):
            raise InputError(f"{key}.equation", "expected a string such as 'A + B -> C'")
        reactants, products = parse_equation(table["equation"], f"{key}.equation")
        for s in (*reactants, *products):
            if s not in species:
                raise InputError(
                    f"{key}.equation", f"unknown species '{s}'; species are: {', '.join(species)}"
                )
        rate = self.expression(f"{key}.rate", table["rate"], known).substitute(definitions or {})
        involved = set(reactants) | set(products) | (set(rate.names) & set(species))
        # stimuli are sampled on the membrane: a rate that reads one is a membrane reaction
        on_membrane = bool(rate.names & fields) or any(
            species[s].compartment == Compartment.MEMBRANE for s in involved
        )
        on = table.get("on")
        if on not in (None, *tuple(Compartment)):
            raise InputError(f"{key}.on", f"expected 'membrane' or 'cytosol', got {on!r}")
        if on == Compartment.CYTOSOL and on_membrane:
            raise InputError(
                f"{key}.on",
                "a reaction involving membrane species is integrated "
                "on the membrane; it cannot be declared on the cytosol",
            )
        location = (
            Compartment.MEMBRANE
            if on_membrane or on == Compartment.MEMBRANE
            else Compartment.CYTOSOL
        )
        return Reaction(name, reactants, products, rate, location)
