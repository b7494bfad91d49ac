"""Cell surfaces from files: reading, scaling to µm, checks, and the volume mesh inside.

A user's cell surface (e.g. exported from a segmentation tool) is a closed
triangulated surface in STL, PLY, OBJ, VTK/VTU or gmsh format. It is read with
meshio, scaled to µm, checked (closed, manifold, one piece, orientable, free of
self-intersections), oriented outwards, then remeshed by gmsh to the requested
element size and filled with tetrahedra; the whole surface is the membrane.

:func:`import_surface` is collective (call it on every rank); everything else
runs on the gmsh rank only and raises :class:`SurfaceError`, whose message says
what is wrong with the surface (:func:`import_surface` adds the file).
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from mpi4py import MPI

import gmsh
import meshio
import numpy as np

from solver.mesh import meshing
from solver.mesh import shapes as mesh_shapes

__all__ = [
    "SURFACE_SUFFIXES",
    "import_surface",
    "UNITS",
    "Surface",
    "SurfaceError",
    "load_surface",
    "mesh_volume",
    "unit_factor",
]

SURFACE_SUFFIXES = (".stl", ".ply", ".obj", ".off", ".vtk", ".vtu", ".msh")
UNITS: dict[str, float] = {"nm": 1e-3, "um": 1.0, "µm": 1.0, "mm": 1e3}  # µm per unit
PIXEL_UNIT = "px"
FEATURE_ANGLE = math.radians(40)  # sharper edges of the surface are kept as mesh edges
_MERGE_TOL = 1e-9  # relative to the bounding-box diagonal: points this close are one
_CROSS_TOL = 1e-12  # relative: orientation tests closer to 0 count as touching, not crossing
_PAIR_CHUNK = 200_000  # triangle pairs tested for crossings at once
_MAX_SPAN = 5  # grid cells per axis a triangle may cover in the search for crossings
_TRIANGLE, _TETRAHEDRON = 2, 4  # gmsh element types (3 and 4 nodes)


class SurfaceError(ValueError):
    """A surface that cannot become a cell; the message names the problem."""


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


def _where(points: np.ndarray, vertex_ids: np.ndarray) -> str:
    x = points[int(vertex_ids[0])]
    return f"e.g. near ({x[0]:.4g}, {x[1]:.4g}, {x[2]:.4g}) µm"


def _check_manifold(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Check that every edge has two triangles and every vertex one fan; orient consistently.

    Returns the triangles, consistently oriented. Raises :class:`SurfaceError` for an
    open, non-manifold, disconnected or non-orientable surface.
    """
    m = len(triangles)
    local = np.array([[0, 1], [1, 2], [2, 0]])
    directed = np.concatenate([triangles[:, pair] for pair in local])  # occurrence k: tri k % m
    keys = np.sort(directed, axis=1)
    n = len(points)
    codes, inverse, counts = np.unique(
        keys[:, 0] * n + keys[:, 1], return_inverse=True, return_counts=True
    )
    edges = np.stack([codes // n, codes % n], axis=1)
    if np.any(counts == 1):
        bad = edges[counts == 1]
        raise SurfaceError(
            f"open surface: {len(bad)} edges belong to one triangle only (a hole), "
            f"{_where(points, bad[0])}; expected a closed cell surface"
        )
    if np.any(counts > 2):
        bad = edges[counts > 2]
        raise SurfaceError(
            f"non-manifold surface: {len(bad)} edges are shared by more than two "
            f"triangles, {_where(points, bad[0])}"
        )
    order = np.argsort(inverse, kind="stable")
    first, second = order[0::2], order[1::2]  # the two occurrences of each edge
    tri_a, tri_b = first % m, second % m
    # one fan of triangles around each vertex: join corners across shared edges
    block = np.arange(3 * m) // m
    corner_from = 3 * (np.arange(3 * m) % m) + local[block, 0]
    corner_to = 3 * (np.arange(3 * m) % m) + local[block, 1]
    low_is_from = directed[:, 0] == keys[:, 0]
    corner_low = np.where(low_is_from, corner_from, corner_to)
    corner_high = np.where(low_is_from, corner_to, corner_from)
    links = np.concatenate(
        [
            np.stack([corner_low[first], corner_low[second]], axis=1),
            np.stack([corner_high[first], corner_high[second]], axis=1),
        ]
    )
    labels = np.arange(3 * m)
    while True:
        lowest = np.minimum(labels[links[:, 0]], labels[links[:, 1]])
        before = labels.copy()
        np.minimum.at(labels, links[:, 0], lowest)
        np.minimum.at(labels, links[:, 1], lowest)
        labels = labels[labels]
        if np.array_equal(labels, before):
            break
    vertex_of_corner = triangles.reshape(-1)
    fans = np.unique(vertex_of_corner * (3 * m) + labels) // (3 * m)  # (vertex, fan) pairs
    vertices, fan_counts = np.unique(fans, return_counts=True)
    if np.any(fan_counts > 1):
        bad = vertices[fan_counts > 1]
        raise SurfaceError(
            f"non-manifold surface: {len(bad)} vertices join surface parts that share no "
            f"edge (pinch points), {_where(points, bad)}"
        )
    # orientation: neighbours must run through their shared edge in opposite directions
    same = directed[first, 0] == directed[second, 0]
    neighbours: list[list[tuple[int, bool]]] = [[] for _ in range(m)]
    for a, b, s in zip(tri_a.tolist(), tri_b.tolist(), same.tolist(), strict=True):
        neighbours[a].append((b, s))
        neighbours[b].append((a, s))
    flip = np.zeros(m, dtype=bool)
    seen = np.zeros(m, dtype=bool)
    pieces = 0
    for start in range(m):
        if seen[start]:
            continue
        pieces += 1
        seen[start] = True
        queue = deque([start])
        while queue:
            t = queue.popleft()
            for other, same_direction in neighbours[t]:
                wanted = flip[t] ^ same_direction
                if not seen[other]:
                    seen[other], flip[other] = True, wanted
                    queue.append(other)
                elif flip[other] != wanted:
                    raise SurfaceError(
                        "non-orientable surface (it has no inside), "
                        f"{_where(points, triangles[other])}"
                    )
    if pieces > 1:
        raise SurfaceError(
            f"the surface has {pieces} separate pieces: expected one closed cell surface"
        )
    triangles = triangles.copy()
    triangles[flip] = triangles[flip][:, ::-1]
    return triangles


def _candidate_pairs(p: np.ndarray) -> np.ndarray:
    """Pairs of triangles (coordinates ``p`` (m, 3, 3)) whose bounding boxes meet."""
    lo, hi = p.min(axis=1), p.max(axis=1)
    extent = np.max(hi - lo, axis=1)
    # cells of twice the typical triangle; a few long ones span up to _MAX_SPAN cells
    cell = max(2 * float(np.median(extent)), float(extent.max()) / (_MAX_SPAN - 1)) or 1.0
    first, last = np.floor(lo / cell).astype(np.int64), np.floor(hi / cell).astype(np.int64)
    id_parts, key_parts = [], []
    for offset in np.ndindex(_MAX_SPAN, _MAX_SPAN, _MAX_SPAN):
        index = first + np.array(offset)
        ok = np.all(index <= last, axis=1)
        id_parts.append(np.flatnonzero(ok))
        key_parts.append(index[ok])
    ids, keys = np.concatenate(id_parts), np.concatenate(key_parts)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    order = np.argsort(flat, kind="stable")
    ids, flat = ids[order], flat[order]
    # every pair within a grid cell: entry i with the entries after it in its cell
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    ends = np.r_[starts[1:], len(flat)]
    later = np.repeat(ends, ends - starts) - np.arange(len(flat)) - 1
    left = np.repeat(np.arange(len(flat)), later)
    right = left + 1 + np.arange(len(left)) - np.repeat(np.cumsum(later) - later, later)
    a, b = np.minimum(ids[left], ids[right]), np.maximum(ids[left], ids[right])
    keep = (a != b) & np.all((lo[a] <= hi[b]) & (lo[b] <= hi[a]), axis=1)
    unique = np.unique(a[keep] * len(p) + b[keep])  # a pair may share several cells
    return np.stack([unique // len(p), unique % len(p)], axis=1)


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Six times the signed volume of the tetrahedra (a, b, c, d), row-wise."""
    return np.einsum("ij,ij->i", b - a, np.cross(c - a, d - a))


def _edges_cross(p: np.ndarray, q: np.ndarray, tol: float) -> np.ndarray:
    """Whether an edge of triangles ``p`` crosses the inside of triangles ``q``, row-wise."""
    a, b, c = q[:, 0], q[:, 1], q[:, 2]
    hit = np.zeros(len(p), dtype=bool)
    for i in range(3):
        s, t = p[:, i], p[:, (i + 1) % 3]
        sides = _orient(a, b, c, s) * _orient(a, b, c, t) < -tol
        turns = np.stack([_orient(s, t, a, b), _orient(s, t, b, c), _orient(s, t, c, a)])
        through = np.all(turns > tol, axis=0) | np.all(turns < -tol, axis=0)
        hit |= sides & through
    return hit


def _check_self_intersections(points: np.ndarray, triangles: np.ndarray) -> None:
    """Raise if two triangles that share no edge cross each other.

    Triangles sharing one corner are tested too: an edge through the shared corner
    touches the other triangle's plane there and never counts, so only a fold (the
    edge opposite the corner through the other triangle) is found.
    """
    p = points[triangles]
    pairs = _candidate_pairs(p)
    shared = np.zeros(len(pairs), dtype=np.int64)
    for i in range(3):
        for j in range(3):
            shared += triangles[pairs[:, 0], i] == triangles[pairs[:, 1], j]
    pairs = pairs[shared < 2]
    scale = float(np.max(np.ptp(points, axis=0)))
    tol = _CROSS_TOL * scale**3
    hits = []
    for start in range(0, len(pairs), _PAIR_CHUNK):
        chunk = pairs[start : start + _PAIR_CHUNK]
        pa, pb = p[chunk[:, 0]], p[chunk[:, 1]]
        hit = _edges_cross(pa, pb, tol) | _edges_cross(pb, pa, tol)
        hits.append(chunk[hit])
    crossing = np.concatenate(hits) if hits else np.empty((0, 2), np.int64)
    if len(crossing):
        raise SurfaceError(
            f"self-intersecting surface: {len(crossing)} pairs of triangles cross, "
            f"{_where(points, triangles[crossing[0, 0]])}"
        )


def load_surface(path: Path, factor: float) -> Surface:
    """Read, scale (``factor`` µm per file unit), check and orient a cell surface."""
    points, triangles = _read_triangles(path)
    points, triangles = _clean(points * factor, triangles)
    if len(triangles) < 4:
        raise SurfaceError(f"only {len(triangles)} triangles: not a closed surface")
    triangles = _check_manifold(points, triangles)
    _check_self_intersections(points, triangles)
    surface = Surface(points, triangles)
    if surface.volume() < 0:
        surface = Surface(points, triangles[:, ::-1].copy())
    return surface


def mesh_volume(
    surface: Surface,
    *,
    size: float | None,
    inner_size: float | None,
    grading: float | None,
    groups: tuple[tuple[int, str], tuple[int, str]],
) -> None:
    """Remesh ``surface`` in the current gmsh model and fill it with tetrahedra.

    ``size`` (µm, default the surface's mean edge length) at the membrane, growing
    to ``inner_size`` over ``grading`` µm inside (see
    :func:`solver.mesh.shapes.apply_sizes`). ``groups`` are the ``(tag, name)`` of
    the cytosol and membrane physical groups.
    """
    size = surface.mean_edge() if size is None else size
    inner = size if inner_size is None else max(inner_size, size)
    extent = float(np.max(np.ptp(surface.points, axis=0)))
    if size >= 0.5 * extent:
        raise SurfaceError(
            f"size={size:g} µm is too coarse for a surface {extent:.3g} µm across: "
            "expected at most half of that"
        )
    entity = gmsh.model.addDiscreteEntity(2)
    n = len(surface.points)
    gmsh.model.mesh.addNodes(2, entity, np.arange(1, n + 1), surface.points.ravel())
    gmsh.model.mesh.addElementsByType(entity, _TRIANGLE, [], (surface.triangles + 1).ravel())
    try:
        gmsh.model.mesh.classifySurfaces(FEATURE_ANGLE, True, True, math.pi)
        gmsh.model.mesh.createGeometry()
        patches = [tag for _, tag in gmsh.model.getEntities(2)]
        loop = gmsh.model.geo.addSurfaceLoop(patches)
        volume = gmsh.model.geo.addVolume([loop])
        gmsh.model.geo.synchronize()
        (cytosol_tag, cytosol_name), (membrane_tag, membrane_name) = groups
        gmsh.model.addPhysicalGroup(3, [volume], cytosol_tag, cytosol_name)
        gmsh.model.addPhysicalGroup(2, patches, membrane_tag, membrane_name)
        grade = mesh_shapes.DEFAULT_GRADING if grading is None else grading
        mesh_shapes.apply_sizes(3, patches, size, inner, grade, extent)
        gmsh.model.mesh.generate(3)
    except Exception as exc:  # gmsh raises bare Exception
        raise SurfaceError(f"gmsh could not mesh the inside of the surface: {exc}") from None
    if len(gmsh.model.mesh.getElementsByType(_TETRAHEDRON, -1)[0]) == 0:
        raise SurfaceError("gmsh made no tetrahedra inside the surface")
    _keep_mesh_only(patches, groups)


def _keep_mesh_only(patches: list[int], groups: tuple[tuple[int, str], tuple[int, str]]) -> None:
    """Replace the current gmsh model by one holding only the mesh and its groups.

    The reparametrized surface patches would otherwise be saved with a .msh file
    (its $Parametrizations section, larger than the mesh itself).
    """
    tags, coordinates, _ = gmsh.model.mesh.getNodes()
    tets, tet_nodes = gmsh.model.mesh.getElementsByType(_TETRAHEDRON)
    triangles = [gmsh.model.mesh.getElementsByType(_TRIANGLE, patch) for patch in patches]
    old = gmsh.model.getCurrent()
    gmsh.model.add(f"{old}-mesh")
    volume, surface = gmsh.model.addDiscreteEntity(3), gmsh.model.addDiscreteEntity(2)
    gmsh.model.mesh.addNodes(3, volume, tags, coordinates)
    gmsh.model.mesh.addElementsByType(volume, _TETRAHEDRON, tets, tet_nodes)
    for element_tags, nodes in triangles:
        gmsh.model.mesh.addElementsByType(surface, _TRIANGLE, element_tags, nodes)
    (cytosol_tag, cytosol_name), (membrane_tag, membrane_name) = groups
    gmsh.model.addPhysicalGroup(3, [volume], cytosol_tag, cytosol_name)
    gmsh.model.addPhysicalGroup(2, [surface], membrane_tag, membrane_name)
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
) -> meshing.TaggedMesh:
    """Volume mesh of the cell enclosed by a closed triangulated surface file.

    See :func:`solver.load_surface` for the formats, units and checks.
    The surface is remeshed with elements of ``size`` µm (default: its own mean
    edge length), the inside filled with tetrahedra (graded as in
    :func:`generate` with ``inner_size`` and ``grading``); the membrane is the
    whole surface. ``msh_file``/``msh_binary`` as in :func:`solver.mesh.meshing.generate`.

    Raises:
        meshing.MeshError: naming ``path``, for a missing or unreadable file, a surface
            that is open, non-manifold or self-intersecting, or bad options.
    """
    path = Path(path)
    source = f"imported {path} unit={unit}" + (f" size={size:g}" if size else "")
    try:
        factor = unit_factor(unit, pixel_size)
    except SurfaceError as exc:
        raise meshing.MeshError(f"{path}: {exc}") from None
    for name, value in (("size", size), ("inner_size", inner_size), ("grading", grading)):
        if value is not None and not value > 0:
            raise meshing.MeshError(f"{path}: {name} must be a positive length (µm), got {value!r}")

    def build() -> None:
        try:
            surface = load_surface(path, factor)
            mesh_volume(
                surface,
                size=size,
                inner_size=inner_size,
                grading=grading,
                groups=(
                    (meshing.CYTOSOL, meshing.CYTOSOL_GROUP),
                    (meshing.MEMBRANE, meshing.MEMBRANE_GROUP),
                ),
            )
        except SurfaceError as exc:
            raise meshing.MeshError(f"{path}: {exc}") from None
        meshing.write_msh(None if msh_file is None else Path(msh_file), msh_binary)

    return meshing.on_root(comm, source, build, lambda _: meshing.distribute_model(comm, 3, source))
