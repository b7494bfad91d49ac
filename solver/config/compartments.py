"""The ``[compartments]`` tables of a run file, and where each reaction is integrated.

A run file without ``[compartments]`` has the cytosol (a volume) and the membrane (its
outer boundary). Otherwise each ``[compartments.NAME]`` declares ``kind = "volume"`` or
``kind = "surface"``; a surface names the volume ``inside`` it and, unless it is the
outer boundary of that volume, the volume ``outside``. Which cells and facets each
compartment covers is for the mesh to say (:mod:`solver.fem.geometry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from solver.config.values import Values, shown
from solver.errors import InputError
from solver.model.model import DEFAULT_COMPARTMENTS, Compartment, Kind, Species
from solver.model.names import normalise

_KEYS = ("kind", "inside", "outside")


def read_compartments(v: Values, data: Any) -> dict[str, Compartment]:
    """The compartments declared by ``[compartments]`` (``data``; None if absent).

    Volumes come first, then surfaces, each in the order written.
    """
    if data is None:
        return dict(DEFAULT_COMPARTMENTS)
    tables = v.table("compartments", data)
    if not tables:
        raise InputError(
            "compartments",
            "no compartment declared; leave the table out for the cytosol and its membrane",
        )
    read: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for written, table in tables.items():
        name = v.name("compartments", written)
        key = f"compartments.{written}"
        table = v.table(key, table)
        v.keys(key, table, _KEYS)
        read[name] = (key, table)
    volumes = {}
    for name, (key, table) in read.items():
        kind = table.get("kind")
        if kind not in tuple(Kind):
            raise InputError(f"{key}.kind", f"expected 'volume' or 'surface', got {shown(kind)}")
        if kind == Kind.VOLUME:
            for side in ("inside", "outside"):
                if side in table:
                    raise InputError(
                        f"{key}.{side}", "a volume has no sides: only a surface names them"
                    )
            volumes[name] = Compartment(name, Kind.VOLUME)
    if not volumes:
        raise InputError("compartments", "no volume declared: a surface lies between volumes")
    surfaces = {}
    for name, (key, table) in read.items():
        if table.get("kind") != Kind.SURFACE:
            continue
        if "inside" not in table:
            raise InputError(f"{key}.inside", "missing: the volume this surface bounds")
        sides = []
        for side in ("inside", "outside"):
            value = table.get(side, "")
            if side == "outside" and side not in table:
                sides.append("")
                continue
            if not isinstance(value, str) or normalise(value) not in volumes:
                raise InputError(
                    f"{key}.{side}",
                    f"expected the name of a volume ({', '.join(volumes)}), got {shown(value)}",
                )
            sides.append(normalise(value))
        if sides[0] == sides[1]:
            raise InputError(f"{key}.outside", "a surface lies between two different volumes")
        surfaces[name] = Compartment(name, Kind.SURFACE, sides[0], sides[1])
    return {**volumes, **surfaces}


def species_compartment(
    key: str, value: Any, compartments: Mapping[str, Compartment]
) -> Compartment:
    """The compartment ``[species.NAME] compartment`` names."""
    name = normalise(value) if isinstance(value, str) else ""
    if name not in compartments:
        names = " or ".join(f"'{c}'" for c in compartments)
        raise InputError(key, f"expected {names}, got {shown(value)}")
    return compartments[name]


def locate(
    key: str,
    involved: set[str],
    species: Mapping[str, Species],
    compartments: Mapping[str, Compartment],
    on: str | None,
    reads_field: bool,
) -> str:
    """Where a reaction is integrated: the compartment where its species meet.

    A reaction of one volume's species is integrated in that volume; one with species
    of a surface, or of the volumes on the two sides of a surface, on that surface.
    ``on`` (``[reactions.NAME] on``, already a compartment name) chooses among surfaces
    that fit, or puts a reaction of volume species on a surface (a boundary flux).
    A rate that reads a stimulus is integrated on a surface (stimuli are sampled on
    surfaces, where the receptors are). Raises :class:`InputError` at ``key`` when
    the species never meet.
    """
    held = {species[s].compartment for s in involved}
    surfaces = sorted(c for c in held if compartments[c].surface)
    volumes = {c for c in held if not compartments[c].surface}
    if len(surfaces) > 1:
        raise InputError(
            f"{key}.equation",
            f"its species never meet: they are on the surfaces {', '.join(surfaces)}",
        )

    def fits(c: Compartment) -> bool:
        if not c.surface:
            return not surfaces and volumes <= {c.name}
        return set(surfaces) <= {c.name} and volumes <= set(c.sides)

    if on is not None:
        where = compartments[on]
        if not fits(where) or (reads_field and not where.surface):
            what = ", ".join(f"{s} ({species[s].compartment})" for s in sorted(involved))
            raise InputError(
                f"{key}.on",
                f"the reaction cannot be integrated on {on}: its species {what} "
                + ("read a stimulus, sampled on surfaces" if fits(where) else "do not meet there"),
            )
        return on
    if surfaces:
        if not fits(compartments[surfaces[0]]):
            raise InputError(
                f"{key}.equation",
                f"its species never meet: {surfaces[0]} does not touch "
                + ", ".join(sorted(volumes - set(compartments[surfaces[0]].sides))),
            )
        return surfaces[0]
    if len(volumes) == 1 and not reads_field:
        return next(iter(volumes))
    candidates = [c.name for c in compartments.values() if c.surface and fits(c)]
    if len(candidates) == 1:
        return candidates[0]
    if not volumes and not reads_field:
        raise InputError(f"{key}.on", "a reaction of no species needs on = 'COMPARTMENT'")
    what = " and ".join(sorted(volumes))
    if not candidates:
        reason = "reads a stimulus, sampled on surfaces, but " if reads_field else ""
        place = f"lies between {what}" if len(volumes) > 1 else f"bounds {what}"
        raise InputError(
            f"{key}.equation",
            f"its species never meet: {reason}no surface {place}",
        )
    raise InputError(
        f"{key}.on",
        f"its species meet on {', '.join(candidates)}: choose one with on = 'NAME'",
    )
