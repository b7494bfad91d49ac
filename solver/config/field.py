"""Solved stimuli: ``[stimulus.NAME] kind = "field"``, a chemokine that is a species.

A prescribed stimulus is a formula; a field is solved: a species of a volume (the
medium around the cell, by default) that diffuses, is released by a small-ball source
(a micropipette tip), exchanges with a bath or receives a flux through an outer
surface, decays, and is taken up by the cell. The table is shorthand for that species
and its reactions, which it adds to the model under its own name::

    [stimulus.chemokine]
    kind = "field"
    D = "120 um^2/s"
    K_D = "25 nM"                  # chemokine_occupancy = chemokine/(chemokine + K_D)
    # in = "medium"                # default: the volume outside the membrane
    # initial = "0 nM"
    # decay = "0.01 1/s"
    [stimulus.chemokine.source]    # a ball of radius `radius` releasing `rate` in all
    position = [20, 0, 0]
    radius = "2 um"
    rate = "750 uM*um^3/s"         # amount per time (2-D: per µm of depth, uM*um^2/s)
    [stimulus.chemokine.bath]      # the outer surface exchanges with a bath ...
    surface = "boundary"
    concentration = "0 nM"
    exchange = "3 um/s"
    # flux = "0.1 uM*um/s"         # ... or receives this influx density instead
    [stimulus.chemokine.uptake]    # taken up by the cell at the membrane
    rate = "1 um/s"                # a velocity: uptake = rate*chemokine (µM·µm/s)
    # or rate = "Vmax*chemokine/(K_M + chemokine)", any expression (µM·µm/s)

The source is the radial bump ``rate·max(0, radius² − |x − position|²)/∫bump``: by the
mean-value property, the field outside the ball is exactly that of a point source.
Every number is converted here (keys named as written); the expansion adds the species
``NAME``, the reactions ``NAME_source``, ``NAME_bath``, ``NAME_decay`` and
``NAME_uptake``, and the definition ``NAME_occupancy``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from solver.config.values import Values, shown
from solver.errors import InputError
from solver.model.model import Compartment

KEYS = ("kind", "in", "D", "K_D", "initial", "decay", "source", "bath", "uptake")
SOURCE_KEYS = ("position", "radius", "rate")
BATH_KEYS = ("surface", "concentration", "exchange", "flux")
UPTAKE_KEYS = ("rate", "on")


@dataclass(frozen=True)
class Field:
    """A solved stimulus: its species' name, volume and source position (µm, or None)."""

    name: str
    volume: str
    position: tuple[float, ...] | None


def _number(value: float) -> str:
    return repr(float(value))


class FieldTables:
    """Reader of field stimuli, with the run file's value readers ``v``."""

    def __init__(self, v: Values) -> None:
        self.v = v

    def expand(
        self,
        data: Mapping[str, Any],
        compartments: Mapping[str, Compartment],
        known: set[str],
    ) -> tuple[dict[str, Any], dict[str, Field]]:
        """``data`` with each field stimulus replaced by its species and reactions."""
        stimuli = data.get("stimulus")
        if not isinstance(stimuli, Mapping):
            return dict(data), {}
        fields = {
            name: table
            for name, table in stimuli.items()
            if isinstance(table, Mapping) and table.get("kind") == "field"
        }
        if not fields:
            return dict(data), {}
        out = dict(data)
        out["stimulus"] = {k: t for k, t in stimuli.items() if k not in fields}
        species = dict(self.v.table("species", data.get("species", {})))
        reactions = dict(self.v.table("reactions", data.get("reactions", {})))
        definitions = dict(self.v.table("definitions", data.get("definitions", {})))
        found = {}
        known = known | set(species) | {self.v.name("stimulus", n) for n in fields}
        for written, table in fields.items():
            name = self.v.name("stimulus", written)
            key = f"stimulus.{written}"
            field, added = self.field(key, name, table, compartments, known)
            for section, entries in added.items():
                target = {"species": species, "reactions": reactions, "definitions": definitions}
                for entry, value in entries.items():
                    if entry in target[section]:
                        raise InputError(
                            key, f"{section}.{entry} exists already: this field would add it"
                        )
                    target[section][entry] = value
            found[name] = field
        out.update(species=species, reactions=reactions, definitions=definitions)
        return out, found

    def field(
        self,
        key: str,
        name: str,
        table: Mapping[str, Any],
        compartments: Mapping[str, Compartment],
        known: set[str],
    ) -> tuple[Field, dict[str, dict[str, Any]]]:
        """One field table: its :class:`Field` and the entries it adds, by section."""
        v = self.v
        v.keys(key, table, KEYS)
        volume = self.volume(key, table.get("in"), compartments)
        membrane = next((c for c in compartments.values() if c.surface and volume in c.sides), None)
        species: dict[str, Any] = {
            "compartment": volume,
            "D": v.quantity(f"{key}.D", table.get("D", 0.0), "diffusivity"),
            "description": f"{name} (solved field)",
        }
        if species["D"] < 0:
            raise InputError(f"{key}.D", "a diffusion coefficient cannot be negative")
        initial = v.value_or_expression(
            f"{key}.initial", table.get("initial", 0.0), "concentration", known
        )
        species["initial"] = initial if isinstance(initial, float) else initial.text
        reactions: dict[str, Any] = {}
        definitions: dict[str, Any] = {}
        if "K_D" in table:
            k_d = v.quantity(f"{key}.K_D", table["K_D"], "concentration")
            if not k_d > 0:
                raise InputError(f"{key}.K_D", "expected a positive concentration")
            definitions[f"{name}_occupancy"] = f"{name}/({name} + {_number(k_d)})"
        if "decay" in table:
            rate = v.quantity(f"{key}.decay", table["decay"], "rate")
            reactions[f"{name}_decay"] = {"equation": f"{name} ->", "rate": f"{rate!r}*{name}"}
        position = None
        if "source" in table:
            position, reactions[f"{name}_source"] = self.source(
                f"{key}.source", name, v.table(f"{key}.source", table["source"]), volume
            )
        if "bath" in table:
            reactions[f"{name}_bath"] = self.bath(
                f"{key}.bath", name, v.table(f"{key}.bath", table["bath"]), volume, compartments
            )
        if "uptake" in table:
            reactions[f"{name}_uptake"] = self.uptake(
                f"{key}.uptake", name, v.table(f"{key}.uptake", table["uptake"]), membrane, known
            )
        added = {"species": {name: species}, "reactions": reactions, "definitions": definitions}
        return Field(name, volume, position), added

    def volume(self, key: str, value: Any, compartments: Mapping[str, Compartment]) -> str:
        """The volume of the field: ``in``, or the volume outside the membrane."""
        if value is None:
            outside = [c.outside for c in compartments.values() if c.surface and c.outside]
            membrane = compartments.get("membrane")
            if membrane is not None and membrane.outside:
                return membrane.outside
            if len(set(outside)) == 1:
                return outside[0]
            raise InputError(
                f"{key}.in",
                "missing: the volume the field lives in (declare a medium outside the "
                "membrane in [compartments], or name one here)",
            )
        if not isinstance(value, str) or value not in compartments:
            raise InputError(f"{key}.in", f"expected a declared volume, got {shown(value)}")
        if compartments[value].surface:
            raise InputError(f"{key}.in", f"'{value}' is a surface: a field lives in a volume")
        return value

    def source(
        self, key: str, name: str, table: Mapping[str, Any], volume: str
    ) -> tuple[tuple[float, ...], dict[str, Any]]:
        """A small-ball source: its position and its reaction ``-> NAME`` in the volume."""
        v = self.v
        v.keys(key, table, SOURCE_KEYS)
        for required in SOURCE_KEYS:
            if required not in table:
                raise InputError(f"{key}.{required}", "missing")
        position = tuple(v.vector(f"{key}.position", table["position"], "length"))
        if len(position) not in (2, 3):
            raise InputError(f"{key}.position", "expected 2 or 3 coordinates (µm)")
        radius = v.quantity(f"{key}.radius", table["radius"], "length")
        if not radius > 0:
            raise InputError(f"{key}.radius", "expected a positive length")
        dim = len(position)
        per_time = "[substance]/[time]" if dim == 3 else "[substance]/[length]/[time]"
        rate = v.quantity(f"{key}.rate", table["rate"], per_time)
        if rate < 0:
            raise InputError(f"{key}.rate", "a release rate cannot be negative")
        integral = 8 * math.pi * radius**5 / 15 if dim == 3 else math.pi * radius**4 / 2
        distance = " + ".join(
            f"({c} - {_number(p)})**2" for c, p in zip("xyz", position, strict=False)
        )
        bump = f"{_number(rate / integral)}*max(0, {_number(radius**2)} - ({distance}))"
        return position, {"equation": f"-> {name}", "rate": bump, "on": volume}

    def bath(
        self,
        key: str,
        name: str,
        table: Mapping[str, Any],
        volume: str,
        compartments: Mapping[str, Compartment],
    ) -> dict[str, Any]:
        """Exchange with a bath, or an influx, through an outer surface of the volume."""
        v = self.v
        v.keys(key, table, BATH_KEYS)
        surface = table.get("surface")
        if surface is None:
            outer = [c.name for c in compartments.values() if c.surface and c.sides == (volume,)]
            if len(outer) != 1:
                raise InputError(f"{key}.surface", f"missing: the outer surface of {volume}")
            surface = outer[0]
        c = compartments.get(surface) if isinstance(surface, str) else None
        if c is None or not c.surface or volume not in c.sides:
            raise InputError(
                f"{key}.surface", f"expected a surface of {volume}, got {shown(surface)}"
            )
        if "flux" in table:
            if "exchange" in table or "concentration" in table:
                raise InputError(f"{key}.flux", "a flux, or a bath's concentration and exchange")
            flux = v.quantity(f"{key}.flux", table["flux"], "flux")
            return {"equation": f"-> {name}", "rate": _number(flux), "on": surface}
        concentration = v.quantity(
            f"{key}.concentration", table.get("concentration", 0.0), "concentration"
        )
        if "exchange" not in table:
            raise InputError(f"{key}.exchange", "missing: the bath's exchange velocity (um/s)")
        exchange = v.quantity(f"{key}.exchange", table["exchange"], "velocity")
        if not exchange > 0:
            raise InputError(f"{key}.exchange", "expected a positive velocity")
        rate = f"{_number(exchange)}*({_number(concentration)} - {name})"
        return {"equation": f"-> {name}", "rate": rate, "on": surface}

    def uptake(
        self,
        key: str,
        name: str,
        table: Mapping[str, Any],
        membrane: Compartment | None,
        known: set[str],
    ) -> dict[str, Any]:
        """Uptake (degradation) by the cell through a surface of the field's volume."""
        v = self.v
        v.keys(key, table, UPTAKE_KEYS)
        on = table.get("on", membrane.name if membrane else None)
        if not isinstance(on, str):
            raise InputError(f"{key}.on", "missing: the surface that takes the field up")
        if "rate" not in table:
            raise InputError(f"{key}.rate", "missing")
        rate = table["rate"]
        try:
            velocity = v.quantity(f"{key}.rate", rate, "velocity")
        except InputError:
            expr = v.expression(f"{key}.rate", rate, known | {name})
            return {"equation": f"{name} ->", "rate": expr.text, "on": on}
        return {"equation": f"{name} ->", "rate": f"{_number(velocity)}*{name}", "on": on}
