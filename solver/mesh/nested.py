"""Nested cell meshes with gmsh: a cell with inner bodies, optionally in a medium.

The cell (a :class:`~solver.mesh.shapes.CellShape`), its inner bodies and the
medium (:class:`~solver.mesh.bodies.Body`) are built with the OpenCASCADE kernel
and cut into non-overlapping volumes by one boolean *fragment*, so that two volumes
that touch share one surface, meshed once: the mesh is conforming across every
surface, and each surface's facets are interior facets of the mesh.

Regions and tags (:func:`region_tags`): the cytosol (the cell minus its inner
bodies) is cell tag 1 and the membrane (the cell's surface) facet tag 2; inner body
``i`` (0, 1, ... in the order of the table) is cell tag ``3 + 2i`` and its surface
facet tag ``4 + 2i``; the medium takes the next odd tag and its outer boundary the
next even one.

Element sizes: the cell's ``size`` on the membrane, growing inside to
``inner_size`` over ``grading`` µm as in :func:`~solver.mesh.shapes.apply_sizes`;
each inner body's ``size`` on its surface, growing away from it, on both sides, to
the larger of its size and the cell's inner size over the same ``grading``; in the
medium, sizes grow from the cell's ``size`` at the membrane to the medium's over
:func:`~solver.mesh.bodies.medium_grading`. A surface between two volumes takes the
smaller of the sizes the two sides ask for.

:func:`build` runs on the gmsh rank only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gmsh

from solver.mesh import shapes as mesh_shapes
from solver.mesh.bodies import Body, medium_grading
from solver.mesh.tagged import CYTOSOL, CYTOSOL_GROUP, MEMBRANE, MEMBRANE_GROUP, MeshError, Region

__all__ = ["build", "describe", "region_tags"]

_MIN_SAMPLING, _MAX_SAMPLING = 20, 400  # points per direction of the distance fields


def region_tags(dim: int, bodies: Sequence[Body], medium: Body | None) -> dict[str, Region]:
    """Name -> (dim, tag) of every volume and surface, in the order of the module doc."""
    regions: dict[str, Region] = {
        CYTOSOL_GROUP: (dim, CYTOSOL),
        MEMBRANE_GROUP: (dim - 1, MEMBRANE),
    }
    for i, body in enumerate([*bodies, *([medium] if medium else [])]):
        regions[body.name] = (dim, 3 + 2 * i)
        regions[body.surface] = (dim - 1, 4 + 2 * i)
    return dict(sorted(regions.items(), key=lambda r: -r[1][0]))  # volumes first


def describe(cell: mesh_shapes.CellShape, bodies: Sequence[Body], medium: Body | None) -> str:
    """``"generated sphere radius=5 size=0.8; inner nucleus sphere radius=2 ...; outside ..."``."""
    parts = [cell.describe()]
    parts += [f"inner {b.describe()}" for b in bodies]
    if medium is not None:
        parts.append(f"outside {medium.describe()}")
    return "; ".join(parts)


def _add(body: Body) -> int:
    """Add ``body`` to the OCC model; return its tag."""
    occ = gmsh.model.occ
    xc, yc, zc = body.center
    if body.is_box:
        low = [c - h for c, h in zip(body.center, body.half, strict=False)]
        if body.dim == 2:
            return occ.addRectangle(low[0], low[1], 0.0, 2 * body.half[0], 2 * body.half[1])
        return occ.addBox(*low, *(2 * h for h in body.half))
    if body.dim == 2:
        rx, ry = body.half
        # OCC requires rx >= ry: a taller-than-wide ellipse is a rotated one
        rotate = {"zAxis": [0.0, 0.0, 1.0], "xAxis": [0.0, 1.0, 0.0]} if ry > rx else {}
        return occ.addDisk(xc, yc, 0.0, max(rx, ry), min(rx, ry), **rotate)
    tag = occ.addSphere(xc, yc, zc, 1.0)
    occ.dilate([(3, tag)], xc, yc, zc, *body.half)
    return tag


def _boundary(dim: int, volumes: Sequence[int], combined: bool = False) -> set[int]:
    found = gmsh.model.getBoundary([(dim, v) for v in volumes], combined=combined, oriented=False)
    return {abs(t) for _, t in found}


def _fragment(
    cell: mesh_shapes.CellShape, bodies: Sequence[Body], medium: Body | None
) -> tuple[list[int], list[int], list[int]]:
    """Build and fragment the volumes; return cytosol, inner body (one each) and medium tags."""
    dim = cell.dim
    cell_tags = cell.build()
    inner_tags = [_add(b) for b in bodies]
    outer = [_add(medium)] if medium is not None else []
    inputs = [(dim, t) for t in [*outer, *cell_tags, *inner_tags]]
    _, pieces = gmsh.model.occ.fragment(inputs[:1], inputs[1:])
    gmsh.model.occ.synchronize()
    pieces = [[t for d, t in piece if d == dim] for piece in pieces]
    whole_cell = {t for piece in pieces[len(outer) : len(outer) + len(cell_tags)] for t in piece}
    inner = pieces[len(outer) + len(cell_tags) :]
    used: set[int] = set()
    for body, piece in zip(bodies, inner, strict=True):
        if len(piece) != 1 or not set(piece) <= whole_cell or piece[0] in used:
            raise MeshError(
                f"inner.{body.name}: the {body.describe()} is not strictly inside the cell "
                "or overlaps another inner body"
            )
        used.add(piece[0])
    cytosol = sorted(whole_cell - used)
    outside = sorted(set(pieces[0]) - whole_cell) if medium is not None else []
    if medium is not None and (not outside or not whole_cell <= set(pieces[0])):
        raise MeshError(f"outside: the {medium.describe()} does not contain the cell strictly")
    if not cytosol:
        raise MeshError("inner: the inner bodies fill the whole cell")
    return cytosol, [p[0] for p in inner], outside


def _distance(dim: int, surfaces: Sequence[int], extent: float, size: float) -> int:
    fields = gmsh.model.mesh.field
    distance = fields.add("Distance")
    fields.setNumbers(distance, "CurvesList" if dim == 2 else "SurfacesList", list(surfaces))
    sampling = math.ceil(2 * math.pi * extent / size)
    fields.setNumber(distance, "Sampling", min(max(sampling, _MIN_SAMPLING), _MAX_SAMPLING))
    return distance


def _graded(
    dim: int, surfaces: Sequence[int], sizes: tuple[float, float], ramp: float, extent: float
) -> int:
    """A field: ``sizes[0]`` up to one element from ``surfaces``, ``sizes[1]`` ``ramp`` further."""
    fields = gmsh.model.mesh.field
    near, far = sizes
    if far <= near or ramp <= 0:
        constant = fields.add("MathEval")
        fields.setString(constant, "F", repr(float(near)))
        return constant
    threshold = fields.add("Threshold")
    fields.setNumber(threshold, "InField", _distance(dim, surfaces, extent, near))
    fields.setNumber(threshold, "SizeMin", near)
    fields.setNumber(threshold, "SizeMax", far)
    fields.setNumber(threshold, "DistMin", near)
    fields.setNumber(threshold, "DistMax", near + ramp)
    return threshold


def _restrict(dim: int, field: int, volumes: Sequence[int]) -> int:
    fields = gmsh.model.mesh.field
    restricted = fields.add("Restrict")
    fields.setNumber(restricted, "InField", field)
    fields.setNumbers(restricted, "SurfacesList" if dim == 2 else "VolumesList", list(volumes))
    fields.setNumber(restricted, "IncludeBoundary", 1)
    return restricted


def _sizes(
    cell: mesh_shapes.CellShape,
    bodies: Sequence[Body],
    medium: Body | None,
    volumes: tuple[list[int], list[int], list[int]],
    surfaces: tuple[set[int], list[set[int]]],
) -> None:
    """The size fields of the module doc, as gmsh's background mesh."""
    dim = cell.dim
    cytosol, inner, outside = volumes
    membrane, envelopes = surfaces
    extent = max(cell.extent, *(max(b.half) for b in bodies), 1.0)
    fields = [
        _restrict(
            dim,
            _graded(dim, sorted(membrane), (cell.size, cell.inner_size), cell.grading, extent),
            cytosol,
        )
    ]
    for body, volume, envelope in zip(bodies, inner, envelopes, strict=True):
        far = max(body.size, cell.inner_size)
        graded = _graded(dim, sorted(envelope), (body.size, far), cell.grading, extent)
        fields.append(_restrict(dim, graded, [*cytosol, volume]))
    sizes = [cell.size, cell.inner_size, *(b.size for b in bodies)]
    if medium is not None:
        far = max(medium.size, cell.size)
        ramp = medium_grading(cell.size, far)
        graded = _graded(dim, sorted(membrane), (cell.size, far), ramp, max(extent, *medium.half))
        fields.append(_restrict(dim, graded, outside))
        sizes.append(far)
    field = gmsh.model.mesh.field
    smallest = field.add("Min")
    field.setNumbers(smallest, "FieldsList", fields)
    field.setAsBackgroundMesh(smallest)
    mesh_shapes.mesh_options(min(sizes), max(sizes))
    for option in ("Mesh.MeshSizeExtendFromBoundary", "Mesh.MeshSizeFromPoints"):
        gmsh.option.setNumber(option, 0)


def build(
    cell: mesh_shapes.CellShape, bodies: Sequence[Body], medium: Body | None
) -> dict[str, Region]:
    """Build, tag and mesh a nested cell in the current gmsh model (root only).

    Returns:
        The regions (see :func:`region_tags`), as tagged by the physical groups.

    Raises:
        MeshError: naming the body that is not inside the cell, overlaps another, or a
            medium that does not contain the cell.
    """
    dim = cell.dim
    regions = region_tags(dim, bodies, medium)
    cytosol, inner, outside = _fragment(cell, bodies, medium)
    envelopes = [_boundary(dim, [v]) for v in inner]
    membrane = _boundary(dim, cytosol + inner, combined=True)
    if any(e & membrane for e in envelopes):
        raise MeshError("inner: an inner body touches the membrane: it must be strictly inside")
    add = gmsh.model.addPhysicalGroup
    add(dim, cytosol, *regions_of(regions, CYTOSOL_GROUP))
    add(dim - 1, sorted(membrane), *regions_of(regions, MEMBRANE_GROUP))
    for body, volume, envelope in zip(bodies, inner, envelopes, strict=True):
        add(dim, [volume], *regions_of(regions, body.name))
        add(dim - 1, sorted(envelope), *regions_of(regions, body.surface))
    if medium is not None:
        add(dim, outside, *regions_of(regions, medium.name))
        boundary = _boundary(dim, [*cytosol, *inner, *outside], combined=True)
        add(dim - 1, sorted(boundary), *regions_of(regions, medium.surface))
    _sizes(cell, bodies, medium, (cytosol, inner, outside), (membrane, envelopes))
    gmsh.model.mesh.generate(dim)
    if cell.order > 1:
        gmsh.model.mesh.setOrder(cell.order)
    return regions


def regions_of(regions: dict[str, Region], name: str) -> tuple[int, str]:
    """``(tag, name)``: the arguments of a physical group of region ``name``."""
    return regions[name][1], name
