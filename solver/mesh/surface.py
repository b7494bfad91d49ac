"""Cell surfaces from files: reading, scaling to µm, checks, and the volume mesh inside.

A user's cell surface (e.g. exported from a segmentation tool) is a closed
triangulated surface in STL, PLY, OBJ, VTK/VTU or gmsh format. It is read with
meshio, scaled to µm, checked (closed, manifold, one piece, orientable, free of
self-intersections), oriented outwards, then remeshed by gmsh to the requested
element size and filled with tetrahedra; the whole surface is the membrane. Two
closed surfaces, one inside the other (two pieces of one file, or two files), give
a cell with an inner body: the cytosol between them and a volume inside the inner
one (a nucleus).

:func:`import_surface` is collective (call it on every rank); everything else
runs on the gmsh rank only and raises :class:`SurfaceError`, whose message says
what is wrong with the surface (:func:`import_surface` adds the file).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mpi4py import MPI

import gmsh
import meshio
import numpy as np

from solver.mesh import meshing
from solver.mesh import shapes as mesh_shapes
from solver.mesh.bodies import NAME
from solver.mesh.surface_checks import (
    SurfaceError,
    check_manifold,
    check_self_intersections,
    winding_number,
)

_check_self_intersections = check_self_intersections  # its name before it moved

__all__ = [
    "SURFACE_SUFFIXES",
    "import_surface",
    "UNITS",
    "Surface",
    "SurfaceError",
    "load_nested",
    "load_surface",
    "mesh_volume",
    "unit_factor",
]

SURFACE_SUFFIXES = (".stl", ".ply", ".obj", ".off", ".vtk", ".vtu", ".msh")
UNITS: dict[str, float] = {"nm": 1e-3, "um": 1.0, "µm": 1.0, "mm": 1e3}  # µm per unit
PIXEL_UNIT = "px"
FEATURE_ANGLE = math.radians(40)  # sharper edges of the surface are kept as mesh edges
_MERGE_TOL = 1e-9  # relative to the bounding-box diagonal: points this close are one
_TRIANGLE, _TETRAHEDRON = 2, 4  # gmsh element types (3 and 4 nodes)


@dataclass(frozen=True)
class Surface:
    """A closed, outward-oriented triangulated surface (coordinates in µm)."""

    points: np.ndarray  # (n, 3) float
    triangles: np.ndarray  # (m, 3) int, counter-clockwise seen from outside

    def area(self) -> float:
        """Area (µm²)."""
        p = self.points[self.triangles]
        return 0.5 * float(
            np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1).sum()
        )

    def volume(self) -> float:
        """Enclosed volume (µm³), positive for an outward orientation."""
        p = self.points[self.triangles]
        return float(np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum()) / 6

    def mean_edge(self) -> float:
        """Mean edge length (µm)."""
        p = self.points[self.triangles]
        return float(np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2).mean())


def unit_factor(unit: str, pixel_size: float | None = None) -> float:
    """µm per unit of the file: ``nm``, ``um``/``µm``, ``mm``, or ``px`` with ``pixel_size`` µm."""
    if unit == PIXEL_UNIT:
        if pixel_size is None or not pixel_size > 0:
            raise SurfaceError(
                f"unit 'px' needs a positive pixel size (µm per pixel), got {pixel_size!r}"
            )
        return float(pixel_size)
    if unit not in UNITS:
        raise SurfaceError(
            f"unknown unit {unit!r}: expected one of {', '.join([*UNITS, PIXEL_UNIT])}"
        )
    if pixel_size is not None:
        raise SurfaceError(f"a pixel size is only used with unit 'px', not {unit!r}")
    return UNITS[unit]


def _read_triangles(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Points and triangles of a surface file (quads are split, a volume's boundary taken)."""
    if not path.is_file():
        raise SurfaceError("surface file does not exist")
    if path.suffix.lower() not in SURFACE_SUFFIXES:
        raise SurfaceError(
            f"unsupported surface format {path.suffix!r}: expected one of "
            f"{', '.join(SURFACE_SUFFIXES)}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mesh = meshio.read(path)
    except Exception as exc:  # meshio raises many kinds on files that are not meshes
        raise SurfaceError(f"not a readable surface mesh ({type(exc).__name__}: {exc})") from None
    blocks: dict[str, list[np.ndarray]] = {}
    for block in mesh.cells:
        blocks.setdefault(block.type, []).append(np.asarray(block.data, dtype=np.int64))
    cells = {kind: np.concatenate(data) for kind, data in blocks.items()}
    parts = [cells.get("triangle", np.empty((0, 3), np.int64))]
    if "quad" in cells:
        quads = cells["quad"]
        parts += [quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]
    triangles = np.concatenate(parts)
    if triangles.size == 0 and "tetra" in cells:
        triangles = _boundary_of_tetrahedra(cells["tetra"])
    if triangles.size == 0:
        found = ", ".join(sorted(cells)) or "no cells"
        raise SurfaceError(f"expected a triangulated surface, found {found}")
    points = np.asarray(mesh.points, dtype=float)
    if points.shape[1] != 3:
        raise SurfaceError(f"expected 3-D points, found {points.shape[1]} coordinates")
    return points, triangles


def _boundary_of_tetrahedra(tets: np.ndarray) -> np.ndarray:
    """Faces that belong to one tetrahedron only."""
    faces = np.concatenate(
        [tets[:, [1, 2, 3]], tets[:, [0, 3, 2]], tets[:, [0, 1, 3]], tets[:, [0, 2, 1]]]
    )
    _, first, counts = np.unique(
        np.sort(faces, axis=1), axis=0, return_index=True, return_counts=True
    )
    return faces[first[counts == 1]]


def _clean(points: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident points, drop unused ones and collapsed triangles."""
    if triangles.min() < 0 or triangles.max() >= len(points):
        raise SurfaceError("triangles refer to points that do not exist")
    diagonal = float(np.linalg.norm(np.ptp(points[np.unique(triangles)], axis=0)))
    if not diagonal > 0:
        raise SurfaceError("all points coincide")
    keys = np.round(points / (diagonal * _MERGE_TOL)).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    triangles = inverse.reshape(-1)[triangles]
    triangles = triangles[
        (triangles[:, 0] != triangles[:, 1])
        & (triangles[:, 1] != triangles[:, 2])
        & (triangles[:, 2] != triangles[:, 0])
    ]
    used, triangles = np.unique(triangles, return_inverse=True)
    return points[first][used], triangles.reshape(-1, 3)


def _pieces(path: Path, factor: float) -> list[Surface]:
    """The checked, outward-oriented pieces of a surface file (see :func:`load_surface`)."""
    points, triangles = _read_triangles(path)
    points, triangles = _clean(points * factor, triangles)
    if len(triangles) < 4:
        raise SurfaceError(f"only {len(triangles)} triangles: not a closed surface")
    triangles, piece = check_manifold(points, triangles)
    count = int(piece.max()) + 1
    if count > 2:
        raise SurfaceError(
            f"the surface has {count} separate pieces: expected one closed cell surface "
            "(or two, one inside the other)"
        )
    check_self_intersections(points, triangles)
    surfaces = []
    for k in range(count):
        used, local = np.unique(triangles[piece == k], return_inverse=True)
        surface = Surface(points[used], local.reshape(-1, 3))
        if surface.volume() < 0:
            surface = Surface(surface.points, surface.triangles[:, ::-1].copy())
        surfaces.append(surface)
    return sorted(surfaces, key=lambda s: -s.volume())


def load_surface(path: Path, factor: float) -> Surface:
    """Read, scale (``factor`` µm per file unit), check and orient a cell surface."""
    surfaces = _pieces(path, factor)
    if len(surfaces) > 1:
        raise SurfaceError(
            f"the surface has {len(surfaces)} separate pieces: expected one closed cell surface"
        )
    return surfaces[0]


def load_nested(path: Path, factor: float, inner: Path | None = None) -> list[Surface]:
    """The cell surface and, if there is one, a closed surface strictly inside it.

    The inner surface is a second piece of ``path``, or the surface of the file
    ``inner`` (same unit). Returns ``[cell]`` or ``[cell, inner]``.
    """
    surfaces = _pieces(path, factor)
    if inner is not None:
        if len(surfaces) > 1:
            raise SurfaceError("the cell surface has two pieces and an inner surface is given")
        try:
            surfaces.append(load_surface(inner, factor))
        except SurfaceError as exc:
            raise SurfaceError(f"inner surface {inner}: {exc}") from None
        outer, body = surfaces
        joined = np.concatenate([outer.triangles, body.triangles + len(outer.points)])
        try:
            check_self_intersections(np.concatenate([outer.points, body.points]), joined)
        except SurfaceError:
            raise SurfaceError(f"the inner surface {inner} crosses the cell surface") from None
    if len(surfaces) == 2:
        outer, body = surfaces
        if winding_number(outer.points, outer.triangles, body.points[0]) < 0.5:
            raise SurfaceError(
                "the surface has 2 separate pieces, side by side: expected one closed cell "
                "surface, or two, one inside the other"
            )
    return surfaces


def mesh_volume(
    surface: Surface,
    *,
    size: float | None,
    inner_size: float | None,
    grading: float | None,
    groups: Sequence[tuple[int, str]],
    body: Surface | None = None,
) -> None:
    """Remesh ``surface`` in the current gmsh model and fill it with tetrahedra.

    ``size`` (µm, default the surface's mean edge length) at the membrane, growing
    to ``inner_size`` over ``grading`` µm inside (see
    :func:`solver.mesh.shapes.apply_sizes`). ``groups`` are the ``(tag, name)`` of
    the cytosol and membrane physical groups. With ``body`` (a closed surface
    inside ``surface``), the cytosol lies between the two and a second volume inside
    ``body``, remeshed at the same sizes; ``groups`` then has the ``(tag, name)`` of
    that volume and of its surface too.
    """
    size = surface.mean_edge() if size is None else size
    inner = size if inner_size is None else max(inner_size, size)
    extent = float(np.max(np.ptp(surface.points, axis=0)))
    if size >= 0.5 * extent:
        raise SurfaceError(
            f"size={size:g} µm is too coarse for a surface {extent:.3g} µm across: "
            "expected at most half of that"
        )
    pieces = [surface] if body is None else [surface, body]
    first = 1
    for piece in pieces:
        entity = gmsh.model.addDiscreteEntity(2)
        n = len(piece.points)
        gmsh.model.mesh.addNodes(2, entity, np.arange(first, first + n), piece.points.ravel())
        nodes = (piece.triangles + first).ravel()
        gmsh.model.mesh.addElementsByType(entity, _TRIANGLE, [], nodes)
        first += n
    try:
        gmsh.model.mesh.classifySurfaces(FEATURE_ANGLE, True, True, math.pi)
        gmsh.model.mesh.createGeometry()
        patches = [tag for _, tag in gmsh.model.getEntities(2)]
        outer = [p for p in patches if _first_node(p) <= len(surface.points)]
        loop = gmsh.model.geo.addSurfaceLoop(outer)
        if body is None:
            volumes = [gmsh.model.geo.addVolume([loop])]
            kept = [(3, volumes[:1]), (2, patches)]
        else:
            envelope = [p for p in patches if p not in outer]
            inner_loop = gmsh.model.geo.addSurfaceLoop(envelope)
            volumes = [gmsh.model.geo.addVolume([loop, inner_loop])]
            volumes.append(gmsh.model.geo.addVolume([inner_loop]))
            kept = [(3, volumes[:1]), (2, outer), (3, volumes[1:]), (2, envelope)]
        gmsh.model.geo.synchronize()
        for (dim, entities), (tag, name) in zip(kept, groups, strict=True):
            gmsh.model.addPhysicalGroup(dim, entities, tag, name)
        grade = mesh_shapes.DEFAULT_GRADING if grading is None else grading
        mesh_shapes.apply_sizes(3, patches, size, inner, grade, extent)
        gmsh.model.mesh.generate(3)
    except Exception as exc:  # gmsh raises bare Exception
        raise SurfaceError(f"gmsh could not mesh the inside of the surface: {exc}") from None
    for volume in volumes:
        if len(gmsh.model.mesh.getElementsByType(_TETRAHEDRON, volume)[0]) == 0:
            raise SurfaceError("gmsh made no tetrahedra inside the surface")
    _keep_mesh_only(kept, groups)


def _first_node(patch: int) -> int:
    """The smallest node tag of a surface patch (tags tell the pieces apart)."""
    return int(np.min(gmsh.model.mesh.getNodes(2, patch, includeBoundary=True)[0]))


def _keep_mesh_only(
    kept: Sequence[tuple[int, list[int]]], groups: Sequence[tuple[int, str]]
) -> None:
    """Replace the current gmsh model by one holding only the mesh and its groups.

    ``kept`` are the (dimension, entities) of the physical ``groups``, the first
    being a volume. The reparametrized surface patches would otherwise be saved with
    a .msh file (its $Parametrizations section, larger than the mesh itself).
    """
    tags, coordinates, _ = gmsh.model.mesh.getNodes()
    kinds = {3: _TETRAHEDRON, 2: _TRIANGLE}
    elements = [
        [gmsh.model.mesh.getElementsByType(kinds[dim], entity) for entity in entities]
        for dim, entities in kept
    ]
    old = gmsh.model.getCurrent()
    gmsh.model.add(f"{old}-mesh")
    new_entities = [gmsh.model.addDiscreteEntity(dim) for dim, _ in kept]
    gmsh.model.mesh.addNodes(3, new_entities[0], tags, coordinates)
    for (dim, _), entity, parts in zip(kept, new_entities, elements, strict=True):
        for element_tags, nodes in parts:
            gmsh.model.mesh.addElementsByType(entity, kinds[dim], element_tags, nodes)
    for (dim, _), entity, (tag, name) in zip(kept, new_entities, groups, strict=True):
        gmsh.model.addPhysicalGroup(dim, [entity], tag, name)
    gmsh.model.mesh.renumberNodes()
    gmsh.model.mesh.renumberElements()
    new = gmsh.model.getCurrent()
    gmsh.model.setCurrent(old)
    gmsh.model.remove()
    gmsh.model.setCurrent(new)


def import_surface(
    path: str | Path,
    comm: MPI.Comm,
    *,
    unit: str = "um",
    pixel_size: float | None = None,
    size: float | None = None,
    inner_size: float | None = None,
    grading: float | None = None,
    msh_file: str | Path | None = None,
    msh_binary: bool = False,
    inner: str | Path | None = None,
    inner_name: str = "nucleus",
    inner_surface: str = "envelope",
) -> meshing.TaggedMesh:
    """Volume mesh of the cell enclosed by a closed triangulated surface file.

    See :func:`solver.load_surface` for the formats, units and checks.
    The surface is remeshed with elements of ``size`` µm (default: its own mean
    edge length), the inside filled with tetrahedra (graded as in
    :func:`generate` with ``inner_size`` and ``grading``); the membrane is the
    whole surface. ``msh_file``/``msh_binary`` as in :func:`solver.mesh.meshing.generate`.

    A second closed surface strictly inside the cell's (a second piece of the file,
    or the file ``inner``, in the same unit) bounds an inner volume named
    ``inner_name`` (cell tag 3) whose surface is ``inner_surface`` (facet tag 4);
    the cytosol lies between the two surfaces, and the mesh is ghosted across facets.

    Raises:
        meshing.MeshError: naming ``path``, for a missing or unreadable file, a surface
            that is open, non-manifold or self-intersecting, an inner surface not
            inside the cell's, or bad options.
    """
    path = Path(path)
    source = f"imported {path} unit={unit}" + (f" size={size:g}" if size else "")
    if inner is not None:
        source += f" inner={inner}"
    try:
        factor = unit_factor(unit, pixel_size)
    except SurfaceError as exc:
        raise meshing.MeshError(f"{path}: {exc}") from None
    for name, value in (("size", size), ("inner_size", inner_size), ("grading", grading)):
        if value is not None and not value > 0:
            raise meshing.MeshError(f"{path}: {name} must be a positive length (µm), got {value!r}")
    regions = dict(meshing.default_regions(3))
    for key, name in (("inner_name", inner_name), ("inner_surface", inner_surface)):
        if not NAME.fullmatch(name) or name in regions:
            raise meshing.MeshError(
                f"{path}: {key} must be a lower-case name (letters, digits, '_') other than "
                f"{', '.join(regions)}, got {name!r}"
            )
        regions[name] = (3 if key == "inner_name" else 2, len(regions) + 1)

    def build() -> dict[str, tuple[int, int]]:
        try:
            surfaces = load_nested(path, factor, None if inner is None else Path(inner))
            groups = [(tag, name) for name, (_, tag) in regions.items()]
            mesh_volume(
                surfaces[0],
                size=size,
                inner_size=inner_size,
                grading=grading,
                groups=groups[: 2 * len(surfaces)],
                body=surfaces[1] if len(surfaces) > 1 else None,
            )
        except SurfaceError as exc:
            raise meshing.MeshError(f"{path}: {exc}") from None
        meshing.write_msh(None if msh_file is None else Path(msh_file), msh_binary)
        found = list(regions.items())[: 2 * len(surfaces)]
        return dict(sorted(found, key=lambda region: -region[1][0]))  # volumes first

    return meshing.on_root(
        comm, source, build, lambda found: meshing.distribute_model(comm, 3, source, found)
    )
