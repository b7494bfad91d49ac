"""The compartments of an output folder, as ``run.json`` records them.

A run records its compartments under ``resolved.compartments`` (name -> ``kind``,
``inside``, ``outside``) and each species' compartment under
``resolved.species[NAME].compartment``; a compartment that holds species has a field
series ``<name>.xdmf``. Output folders written before runs had compartments of their
own have no ``compartments`` key: they are the cytosol and its membrane
(:data:`DEFAULT`). Serial and MPI-free, like the rest of :mod:`solver.io.results`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VOLUME = "volume"
SURFACE = "surface"
CYTOSOL = "cytosol"
MEMBRANE = "membrane"
#: the compartments of a run without a ``[compartments]`` table (and of older outputs)
DEFAULT: Mapping[str, Mapping[str, str]] = {
    CYTOSOL: {"kind": VOLUME},
    MEMBRANE: {"kind": SURFACE, "inside": CYTOSOL},
}


@dataclass(frozen=True)
class Compartment:
    """A volume or surface of a run and the species it holds (in run-file order).

    A surface lies between the volume ``inside`` and the volume ``outside`` ("" on the
    outer boundary of ``inside``).
    """

    name: str
    kind: str
    inside: str = ""
    outside: str = ""
    species: tuple[str, ...] = ()

    @property
    def surface(self) -> bool:
        """Whether the compartment is a surface."""
        return self.kind == SURFACE

    @property
    def where(self) -> str:
        """Where it is, in a few words: ``"volume"``, ``"surface between a and b"``.

        A surface on the outer boundary of its volume is ``"surface around a"``.
        """
        if not self.surface:
            return VOLUME
        if self.outside:
            return f"surface between {self.inside} and {self.outside}"
        return f"surface around {self.inside}" if self.inside else SURFACE


def _species(record: Mapping[str, Any]) -> dict[str, Any]:
    resolved = record.get("resolved")
    species = resolved.get("species") if isinstance(resolved, dict) else None
    return species if isinstance(species, dict) else {}


def compartment_of(record: Mapping[str, Any], name: str) -> str | None:
    """The compartment of species ``name``, or None if the run has no such species."""
    entry = _species(record).get(name)
    place = entry.get("compartment") if isinstance(entry, dict) else None
    return str(place) if place is not None else None


def compartments(record: Mapping[str, Any]) -> dict[str, Compartment]:
    """Every compartment of the run, in the order recorded (volumes first).

    Outputs without ``resolved.compartments`` have the cytosol and the membrane.
    """
    resolved = record.get("resolved")
    table = resolved.get("compartments") if isinstance(resolved, dict) else None
    if not isinstance(table, dict) or not table:
        table = DEFAULT
    held: dict[str, list[str]] = {}
    for name in _species(record):
        place = compartment_of(record, name)
        if place is not None:
            held.setdefault(place, []).append(name)
    found = {}
    for name, entry in table.items():
        entry = entry if isinstance(entry, dict) else {}
        found[str(name)] = Compartment(
            str(name),
            str(entry.get("kind", VOLUME)),
            str(entry.get("inside", "")),
            str(entry.get("outside", "")),
            tuple(held.get(str(name), ())),
        )
    return found


def is_default(record: Mapping[str, Any]) -> bool:
    """Whether the run has just the cytosol and its membrane (as every older output).

    Such runs are inspected exactly as before runs had compartments of their own.
    """
    found = compartments(record)
    return {n: (c.kind, c.inside, c.outside) for n, c in found.items()} == {
        CYTOSOL: (VOLUME, "", ""),
        MEMBRANE: (SURFACE, CYTOSOL, ""),
    }


def readout_surface(record: Mapping[str, Any]) -> str | None:
    """The surface of the polarity read-outs: ``membrane``, else the first surface.

    Only surfaces that hold species count (as in the run); None if none does.
    """
    surfaces = [c.name for c in compartments(record).values() if c.surface and c.species]
    return MEMBRANE if MEMBRANE in surfaces else next(iter(surfaces), None)


def primary_volume(record: Mapping[str, Any]) -> str | None:
    """The cell's volume, whose centroid the read-outs are measured from.

    ``cytosol`` if the run has it, else the inside of the read-out surface, else the
    first volume (None without volumes).
    """
    found = compartments(record)
    if CYTOSOL in found:
        return CYTOSOL
    surface = readout_surface(record)
    if surface is not None and found[surface].inside:
        return found[surface].inside
    return next((c.name for c in found.values() if not c.surface), None)


def with_series(record: Mapping[str, Any]) -> list[Compartment]:
    """The compartments that hold species (each has a field series), volumes first."""
    return [c for c in compartments(record).values() if c.species]
