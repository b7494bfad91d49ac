"""Run-file tables of stimuli and read-outs: ``[stimulus.NAME]`` and ``[metrics]``.

Read with the value readers of :mod:`solver.config.values`; every error is an
:class:`~solver.errors.InputError` naming the key, like every other table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from solver.config.values import Values, shown
from solver.errors import InputError
from solver.mesh.catalog import SHAPE_DIM
from solver.model.model import Model
from solver.model.names import normalise
from solver.model.stimulus import KINDS as STIMULUS_KINDS
from solver.model.stimulus import Stimulus, StimulusEvent

STIMULUS_KEYS = (
    "kind",
    "mean",
    "gradient",
    "steepness",
    "across",
    "direction",
    "center",
    "position",
    "expression",
    "K_D",
    "events",
)
EVENT_KEYS = (
    "at",
    "direction",
    "rotation",
    "axis",
    "mean",
    "gradient",
    "steepness",
    "position",
    "remove",
    "washout",
)
METRICS_KEYS = ("species", "stimulus", "correlations", "cap_angle")


@dataclass(frozen=True)
class MetricsConfig:
    """Polarity read-outs of membrane species along the direction of ``stimulus``."""

    species: tuple[str, ...] = ()
    stimulus: str | None = None
    correlations: tuple[tuple[str, str], ...] = ()
    cap_angle: float = 15.0  # degrees: half-angle of the front and back caps


class StimulusTables:
    """Readers of ``[stimulus.NAME]`` (with its events) and ``[metrics]``."""

    def __init__(self, v: Values) -> None:
        self.v = v
        self.dim: int | None = None  # of the cell (from [mesh] shape); None: not known

    def stimulus(
        self, name: str, table: Mapping[str, Any], known: set[str], mesh: Mapping[str, Any]
    ) -> Stimulus:
        """Read and check one ``[stimulus.NAME]`` table and its events.

        Args:
            name: The stimulus name (``NAME``).
            table: The ``[stimulus.NAME]`` table of the run file.
            known: The names an ``expression`` may use (parameters and reserved names).
            mesh: The ``[mesh]`` table; its cell size gives the length of a ``steepness``.

        Returns:
            The stimulus, in µm, s and µM.

        Raises:
            InputError: A key is unknown, missing or malformed.
        """
        key = f"stimulus.{name}"
        self.v.keys(key, table, STIMULUS_KEYS)
        kind = self.v.choice(f"{key}.kind", table.get("kind"), STIMULUS_KINDS)
        self.dim = SHAPE_DIM.get(str(mesh.get("shape")))  # None: a mesh file
        args: dict[str, Any] = {"name": name, "kind": kind}
        if kind == "expression":
            if "expression" not in table:
                raise InputError(f"{key}.expression", "missing: an expression in x, y, z, t")
            args["expression"] = self.v.expression(f"{key}.expression", table["expression"], known)
            allowed = {"kind", "expression", "K_D", "events"}
        else:
            args["mean"] = self.v.quantity(f"{key}.mean", table.get("mean", 0.0), "concentration")
            if args["mean"] < 0:
                raise InputError(f"{key}.mean", "a concentration cannot be negative")
            allowed = {"kind", "mean", "center", "K_D", "events"}
        if kind in ("linear", "exponential"):
            allowed |= {"gradient", "steepness", "across", "direction"}
            args["gradient"] = self.slope(key, table, kind, mesh)
            if "direction" in table:
                args["direction"] = self.direction(f"{key}.direction", table["direction"])
        if kind == "point_source":
            allowed |= {"position"}
            if "position" not in table:
                raise InputError(f"{key}.position", "missing: where the source is (µm)")
            args["position"] = self.point(f"{key}.position", table["position"])
        for k in table:
            if k not in allowed:
                raise InputError(f"{key}.{k}", f"not used by a stimulus of kind {kind!r}")
        if "center" in table:
            args["center"] = self.point(f"{key}.center", table["center"])
        if "K_D" in table:
            args["K_D"] = self.v.positive(f"{key}.K_D", table["K_D"], "concentration")
        events = table.get("events", [])
        if not isinstance(events, list):
            raise InputError(f"{key}.events", "expected an array of tables [[...events]]")
        args["events"] = tuple(
            self.event(f"{key}.events[{i}]", self.v.table(f"{key}.events", e), kind, mesh)
            for i, e in enumerate(events)
        )
        return Stimulus(**args)

    def point(self, key: str, value: Any) -> tuple[float, ...]:
        """Read a point (µm) with as many coordinates as the cell has dimensions."""
        return self.fits(key, self.v.vector(key, value, "length"), "coordinates")

    def direction(self, key: str, value: Any) -> tuple[float, ...]:
        """Read a direction vector (dimensionless, not normalised) at ``key``.

        Raises:
            InputError: The value is not a vector of the cell's dimension, or is the
                zero vector.
        """
        d = self.fits(key, self.v.vector(key, value, "dimensionless"), "components")
        if not any(d):
            raise InputError(key, "a direction must not be the zero vector")
        return d

    def fits(self, key: str, vector: tuple[float, ...], what: str) -> tuple[float, ...]:
        """``vector`` if its length fits the cell's dimension (a 2-D cell: z = 0 or none)."""
        dim = self.dim
        if dim == 3 and len(vector) != 3:
            raise InputError(key, f"expected 3 {what} for a 3-D cell, got {len(vector)}")
        if dim == 2 and len(vector) == 3 and vector[2] != 0:
            raise InputError(
                key, f"expected 2 {what} (or a third of 0) for a 2-D cell, got {vector}"
            )
        return vector

    def slope(
        self, key: str, table: Mapping[str, Any], kind: str, mesh: Mapping[str, Any]
    ) -> float:
        """Relative slope g (1/µm) from ``gradient``, or from ``steepness`` across a length."""
        if "gradient" in table and "steepness" in table:
            raise InputError(f"{key}.steepness", "give either gradient or steepness, not both")
        if "gradient" in table:
            return self.v.quantity(f"{key}.gradient", table["gradient"], "inverse_length")
        if "steepness" not in table:
            return 0.0
        s = self.v.quantity(f"{key}.steepness", table["steepness"], "dimensionless")
        if "across" in table:
            across = self.v.positive(f"{key}.across", table["across"], "length")
        elif "radius" in mesh or "semi_axes" in mesh:
            across = 2 * (mesh.get("radius") or max(mesh["semi_axes"]))
        else:
            raise InputError(
                f"{key}.across",
                "missing: the length over which the steepness "
                "applies (the cell diameter of a mesh file is not known)",
            )
        if kind == "exponential":
            if s <= -1:
                raise InputError(f"{key}.steepness", "expected a value above -100 %")
            return math.log1p(s) / across
        return s / across

    def event(
        self, key: str, table: Mapping[str, Any], kind: str, mesh: Mapping[str, Any]
    ) -> StimulusEvent:
        """Read and check one event of a stimulus (``[[stimulus.NAME.events]]``).

        Args:
            key: The event's key in the run file, for messages.
            table: The event's table.
            kind: The stimulus kind, which decides how a ``steepness`` becomes a slope.
            mesh: The ``[mesh]`` table; its cell size gives the length of a ``steepness``.

        Returns:
            The event: its time ``at`` (s) and what it changes.

        Raises:
            InputError: A key is unknown, missing or malformed, or the event changes nothing.
        """
        self.v.keys(key, table, EVENT_KEYS)
        if "at" not in table:
            raise InputError(f"{key}.at", "missing: the time of the event, e.g. '150 s'")
        at = self.v.quantity(f"{key}.at", table["at"], "time")
        if at < 0:
            raise InputError(
                f"{key}.at", f"expected a time of at least 0 s, got {shown(table['at'])}"
            )
        args: dict[str, Any] = {"at": at}
        if "direction" in table:
            args["direction"] = self.direction(f"{key}.direction", table["direction"])
        if "rotation" in table:
            args["rotation"] = self.v.quantity(f"{key}.rotation", table["rotation"], "rate")
        if "axis" in table:
            given = self.fits(
                f"{key}.axis",
                self.v.vector(f"{key}.axis", table["axis"], "dimensionless"),
                "components",
            )
            axis = given + (0.0,) * (3 - len(given))
            if not any(axis):
                raise InputError(f"{key}.axis", "an axis must not be the zero vector")
            if self.dim == 2 and (axis[0] or axis[1]):
                raise InputError(
                    f"{key}.axis", f"a 2-D cell turns about the z axis [0, 0, 1], got {axis}"
                )
            args["axis"] = axis
        if "mean" in table:
            args["mean"] = self.v.quantity(f"{key}.mean", table["mean"], "concentration")
        if "gradient" in table or "steepness" in table:
            args["gradient"] = self.slope(key, table, kind, mesh)
        if "position" in table:
            args["position"] = self.point(f"{key}.position", table["position"])
        for flag in ("remove", "washout"):
            if flag in table:
                args[flag] = self.v.flag(f"{key}.{flag}", table[flag])
        if len(args) == 1:
            raise InputError(
                key,
                "an event must change something: direction, rotation, mean, "
                "gradient, steepness, position, remove or washout",
            )
        return StimulusEvent(**args)

    def metrics(self, table: Mapping[str, Any], model: Model) -> MetricsConfig:
        """``[metrics]``: the membrane species read out, the stimulus, correlations."""
        self.v.keys("metrics", table, METRICS_KEYS)
        names = table.get("species", [])
        if not isinstance(names, list):
            raise InputError("metrics.species", "expected a list of membrane species")
        species = tuple(self.membrane_species("metrics.species", n, model) for n in names)
        stimulus = table.get("stimulus")
        every = [*model.stimuli, *model.solved]
        if stimulus is None and len(every) == 1:
            stimulus = every[0]
        if stimulus is not None:
            if not isinstance(stimulus, str):
                raise InputError("metrics.stimulus", f"expected a name, got {shown(stimulus)}")
            stimulus = normalise(stimulus)
            if stimulus not in every:
                raise InputError("metrics.stimulus", f"no stimulus named {shown(stimulus)}")
        pairs = []
        correlations = table.get("correlations", [])
        if not isinstance(correlations, list):
            raise InputError("metrics.correlations", "expected a list of pairs like ['P', 'T_m']")
        for pair in correlations:
            if not isinstance(pair, list) or len(pair) != 2:
                raise InputError("metrics.correlations", "expected pairs like ['P', 'T_m']")
            a, b = (self.membrane_species("metrics.correlations", n, model) for n in pair)
            pairs.append((a, b))
        angle = table.get("cap_angle", 15.0)
        if isinstance(angle, bool) or not isinstance(angle, int | float) or not 0 < angle < 90:
            raise InputError("metrics.cap_angle", "expected degrees between 0 and 90")
        return MetricsConfig(species, stimulus, tuple(pairs), float(angle))

    def membrane_species(self, key: str, name: Any, model: Model) -> str:
        """The (normalised) name of a membrane species of ``model``."""
        if not isinstance(name, str):
            raise InputError(key, f"expected the name of a membrane species, got {shown(name)}")
        s = model.species.get(normalise(name))
        if s is None or s.compartment != model.membrane:
            where = model.membrane or "a surface"
            raise InputError(key, f"{shown(name)} is not a species of {where}")
        return s.name
