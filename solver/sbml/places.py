"""The compartments of an imported model: the sides of its surfaces, names, and the mesh.

A surface lies between the volume inside it and, unless it is the outer boundary of
that volume, a volume outside it. The sides come from, in order: ``--sides``, this
project's annotation of an exported model, SBML Level 2's ``outside`` attributes, and
the reactions (a surface whose species react with one volume's bounds that volume; a
model of one volume has every surface inside it). A surface whose inside is still
unknown is refused with the option that settles it.

The generated meshes name the cell's volume ``cytosol`` and its surface ``membrane``,
so a model of one volume (and a surface on it) gets those names and a sphere or disk
whose volume-to-surface ratio is the SBML model's, so that the run's well-mixed limit
is the SBML model. Other models keep their compartment names and need a mesh file
whose regions carry them (``--mesh FILE``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from solver.errors import InputError
from solver.model.model import CYTOSOL, MEMBRANE, Compartment, Kind
from solver.sbml.reader import Place, SbmlReader, refuse
from solver.sbml.values import number_of

#: cell shapes an import may ask for, by dimension of the mesh
SHAPES = {"sphere": 3, "disk": 2}
CELLS_PER_RADIUS = 8  # element size: radius / this


def reaction_links(r: SbmlReader) -> dict[str, set[str]]:
    """For each SBML compartment, the compartments its species react with."""
    m = r.model
    links: dict[str, set[str]] = {c: set() for c in r.places}
    for i in range(m.getNumReactions()):
        reaction = m.getReaction(i)
        refs = [reaction.getReactant(j) for j in range(reaction.getNumReactants())]
        refs += [reaction.getProduct(j) for j in range(reaction.getNumProducts())]
        refs += [reaction.getModifier(j) for j in range(reaction.getNumModifiers())]
        held = {m.getSpecies(ref.getSpecies()).getCompartment() for ref in refs}
        if reaction.isSetCompartment():
            held.add(reaction.getCompartment())
        for c in held:
            links[c] |= held - {c}
    return links


def settle_sides(r: SbmlReader) -> None:
    """Give every surface its inside (and outside) volume, or refuse it."""
    volumes = [p for p in r.places.values() if p.kind is Kind.VOLUME]
    links = reaction_links(r)
    for place in r.places.values():
        if place.kind is not Kind.SURFACE or place.inside:
            continue
        sid = place.sbml_id
        outside = r.outside.get(sid, "")
        if outside and r.places.get(outside, place).kind is Kind.VOLUME:
            place.outside = outside
        inner = [v.sbml_id for v in volumes if r.outside.get(v.sbml_id) == sid]
        touching = [v for v in sorted(links[sid]) if r.places[v].kind is Kind.VOLUME]
        if len(inner) == 1:
            place.inside = inner[0]
        elif len(volumes) == 1:
            place.inside = volumes[0].sbml_id
        elif not volumes:
            place.inside = CYTOSOL  # a model of surfaces only: the cell's volume is added
        else:
            candidates = [v for v in touching if v != place.outside]
            if len(candidates) != 1:
                shown = ", ".join(v.sbml_id for v in volumes)
                raise refuse(
                    "compartment",
                    sid,
                    f"which volume does this surface bound? give --sides {sid}=INSIDE[/OUTSIDE] "
                    f"(volumes: {shown})",
                )
            place.inside = candidates[0]
        if not place.outside:
            others = [v for v in touching if v != place.inside]
            if len(others) > 1:
                raise refuse(
                    "compartment",
                    sid,
                    f"its species react with {', '.join(others)} besides {place.inside}: "
                    f"give --sides {sid}={place.inside}/OUTSIDE",
                )
            place.outside = others[0] if others else ""


def simple_cell(r: SbmlReader) -> bool:
    """Whether the model is one volume with at most one surface on its boundary."""
    volumes = [p for p in r.places.values() if p.kind is Kind.VOLUME and _holds(r, p)]
    surfaces = [p for p in r.places.values() if p.kind is Kind.SURFACE and _holds(r, p)]
    if len(volumes) > 1 or len(surfaces) > 1:
        return False
    return not surfaces or (
        not surfaces[0].outside and (not volumes or surfaces[0].inside == volumes[0].sbml_id)
    )


def _holds(r: SbmlReader, place: Place) -> bool:
    m = r.model
    return any(m.getSpecies(i).getCompartment() == place.sbml_id for i in range(m.getNumSpecies()))


def name_compartments(r: SbmlReader, generated: bool) -> dict[str, Compartment]:
    """Run-file names of the compartments that hold species, and their table.

    With a generated mesh the model is one cell: its volume becomes ``cytosol`` and its
    surface ``membrane`` (the run file then needs no ``[compartments]`` table).
    """
    held = [p for p in r.places.values() if _holds(r, p)]
    if generated:
        for p in held:
            new = CYTOSOL if p.kind is Kind.VOLUME else MEMBRANE
            if p.name != new:
                r.parts.comments[f"compartment.{new}"] = p.sbml_id
            p.name = new
        return {}
    table: dict[str, Compartment] = {}
    m = r.model
    on = {m.getReaction(i).getCompartment() for i in range(m.getNumReactions())}
    held += [p for p in r.places.values() if p.sbml_id in on and p not in held]
    needed = {p.sbml_id for p in held} | {p.inside for p in held} | {p.outside for p in held}
    for p in r.places.values():
        if p.sbml_id in needed and p.kind is Kind.VOLUME:
            table[p.name] = Compartment(p.name, Kind.VOLUME)
    if CYTOSOL in needed and CYTOSOL not in r.places:
        table[CYTOSOL] = Compartment(CYTOSOL, Kind.VOLUME)
    for p in held:
        if p.kind is Kind.SURFACE:
            names = {v.sbml_id: v.name for v in r.places.values()}
            table[p.name] = Compartment(
                p.name, Kind.SURFACE, names.get(p.inside, p.inside), names.get(p.outside, "")
            )
    return table


def mesh_table(r: SbmlReader, mesh: str | None, base: Path) -> dict[str, Any]:
    """The ``[mesh]`` table: a sphere (or ``disk``) sized like the model, or a file."""
    shape = mesh or "sphere"
    if shape not in SHAPES:
        path = Path(shape)
        if not path.is_file():
            raise InputError("--mesh", f"expected sphere, disk or a mesh file, got '{shape}'")
        try:
            shown = str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            shown = str(path.resolve())
        return {"shape": "file", "file": shown}
    dim = SHAPES[shape]
    volumes = [p for p in r.places.values() if p.kind is Kind.VOLUME and _holds(r, p)]
    surfaces = [p for p in r.places.values() if p.kind is Kind.SURFACE and _holds(r, p)]
    radius = 5.0
    if volumes and surfaces:  # |cell| / |membrane| = V / A: the SBML model's
        radius = dim * volumes[0].size / surfaces[0].size
    elif volumes:
        radius = (3 * volumes[0].size / (4 * math.pi)) ** (1 / 3)
    elif surfaces:
        a = surfaces[0].size
        radius = math.sqrt(a / (4 * math.pi)) if dim == 3 else a / (2 * math.pi)
    if not 1e-3 <= radius <= 1e5:
        r.parts.notes.append(
            f"the SBML sizes make a cell of radius {radius:.3g} um; a {shape} of 5 um is meshed "
            "instead, so the run's well-mixed limit differs from the SBML model's"
        )
        radius = 5.0
    radius = number_of(float(f"{radius:.6g}"))
    size = number_of(float(f"{radius / CELLS_PER_RADIUS:.2g}"))
    return {"shape": shape, "radius": f"{radius!r} um", "size": f"{size!r} um"}
