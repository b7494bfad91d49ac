"""What a cell mesh is like: measures, counts, element sizes and shapes, resolution warnings.

Printed by ``polarity mesh`` (after making a mesh, and with ``--check FILE``) and by
``polarity check CONFIG``. The resolution warning follows docs/numerics.md, Mesh resolution: fronts
(10–90 %) are 2.4–3.9 µm wide and need at least 8 elements across, i.e. a
membrane element size h_Γ ≤ 0.4 µm for P1 elements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mpi4py import MPI

import dolfinx.fem
import numpy as np
import ufl

from solver.mesh.tagged import CYTOSOL, CYTOSOL_GROUP, MEMBRANE, MEMBRANE_GROUP, TaggedMesh

__all__ = ["H_MEMBRANE_MAX", "CompartmentReport", "MeshReport", "report", "element_quality"]

FRONT_WIDTHS = (
    2.4,
    3.9,
)  # µm, narrowest (P1 preset) and default-model fronts (docs/numerics.md, Mesh resolution)
ELEMENTS_ACROSS_FRONT = 8
H_MEMBRANE_MAX = 0.4  # µm: the P1 membrane element size of docs/numerics.md, Mesh resolution
# Radius ratio below which an element counts as a sliver (slow, inaccurate solves).
QUALITY_WARNING = 0.05
CELL_EXTENT = (1.0, 1000.0)  # µm: a cell outside this range is probably in another unit


def element_quality(vertices: np.ndarray) -> np.ndarray:
    """Radius ratio of simplices: d · inradius / circumradius, 1 for a regular one.

    Args:
        vertices: (n, d + 1, g) coordinates of n triangles (d = 2) or tetrahedra
            (d = 3) in g ≥ d dimensions.

    Returns:
        (n,) values in [0, 1]; 0 for a degenerate simplex.
    """
    n, corners, _ = vertices.shape
    if corners == 3:
        a = np.linalg.norm(vertices[:, 1] - vertices[:, 2], axis=1)
        b = np.linalg.norm(vertices[:, 2] - vertices[:, 0], axis=1)
        c = np.linalg.norm(vertices[:, 0] - vertices[:, 1], axis=1)
        s = 0.5 * (a + b + c)
        area = np.sqrt(np.clip(s * (s - a) * (s - b) * (s - c), 0.0, None))
        # 2 r / R with r = area/s, R = abc/(4 area)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = 8 * area**2 / (s * a * b * c)
        return np.nan_to_num(q)
    if corners != 4:
        raise ValueError(f"expected triangles or tetrahedra, got {corners} vertices per cell")
    p0, p1, p2, p3 = (vertices[:, i] for i in range(4))
    volume = np.abs(np.einsum("ij,ij->i", p1 - p0, np.cross(p2 - p0, p3 - p0))) / 6
    faces = [(p1, p2, p3), (p0, p2, p3), (p0, p1, p3), (p0, p1, p2)]
    area = sum(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1) for a, b, c in faces)
    # products of the lengths of opposite edges
    products = [
        np.linalg.norm(p0 - p1, axis=1) * np.linalg.norm(p2 - p3, axis=1),
        np.linalg.norm(p0 - p2, axis=1) * np.linalg.norm(p1 - p3, axis=1),
        np.linalg.norm(p0 - p3, axis=1) * np.linalg.norm(p1 - p2, axis=1),
    ]
    x, y, z = products
    radicand = np.clip((x + y + z) * (-x + y + z) * (x - y + z) * (x + y - z), 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        inradius = 3 * volume / area
        circumradius = np.sqrt(radicand) / (24 * volume)
        q = 3 * inradius / circumradius
    return np.clip(np.nan_to_num(q), 0.0, 1.0)


@dataclass(frozen=True)
class CompartmentReport:
    """One region of a mesh (lengths in µm).

    A volume has ``entities`` cells, ``measure`` its volume (µm³, µm² in 2-D) and
    ``h_*`` its cell diameters; a surface has ``entities`` facets, ``measure`` its
    area (µm², µm in 2-D), ``h_*`` its edge lengths, and ``between`` the names of the
    volumes on its two sides (``"outside"`` beyond the mesh).
    """

    name: str
    dim: int
    tag: int
    surface: bool
    entities: int
    measure: float
    h_min: float
    h_mean: float
    h_max: float
    between: tuple[str, ...] = ()

    def line(self, width: int) -> str:
        """``"nucleus   volume  3: 1143 tetrahedra, 33.2 µm³, cell size 0.4–0.9 µm"``."""
        kind = {1: "edges", 2: "triangles", 3: "tetrahedra"}[self.dim]
        unit = {1: "µm", 2: "µm²", 3: "µm³"}[self.dim]
        sizes = "edges" if self.surface else "cell size"
        text = (
            f"    {self.name:<{width}} {'surface' if self.surface else 'volume ':<7} tag "
            f"{self.tag}: {self.entities} {kind}, {self.measure:.6g} {unit}, {sizes} "
            f"{self.h_min:.3g}–{self.h_max:.3g} µm (mean {self.h_mean:.3g})"
        )
        if self.surface:
            text += ", between " + " and ".join(self.between or ("nothing",))
        return text


@dataclass(frozen=True)
class MeshReport:
    """Global facts of a cell mesh (lengths in µm).

    ``extent`` is the largest side of the bounding box, ``volume`` the cytosol
    measure (µm³, µm² in 2-D), ``area`` the membrane measure (µm², µm in 2-D);
    ``h_*`` are cell diameters, ``h_membrane_*`` lengths of the membrane's edges;
    ``quality_*`` radius ratios of the cells (vertices only: curved cells count
    by their corners).
    """

    source: str
    dim: int
    order: int
    cells: int
    vertices: int
    membrane_facets: int
    extent: float
    volume: float
    area: float
    h_min: float
    h_max: float
    h_membrane_min: float
    h_membrane_mean: float
    h_membrane_max: float
    quality_min: float
    quality_mean: float
    compartments: tuple[CompartmentReport, ...] = field(default=())

    def warnings(self) -> list[str]:
        """Resolution and shape problems, each a sentence saying what to change."""
        found = []
        if not CELL_EXTENT[0] <= self.extent <= CELL_EXTENT[1]:
            found.append(
                f"the cell is {self.extent:.3g} µm across, outside {CELL_EXTENT[0]:g}–"
                f"{CELL_EXTENT[1]:g} µm: are its coordinates in µm (polarity mesh import --unit)?"
            )
        if self.h_membrane_mean > H_MEMBRANE_MAX:
            low, high = FRONT_WIDTHS
            found.append(
                f"membrane elements are too coarse for polarity fronts: mean edge length "
                f"{self.h_membrane_mean:.3g} µm > {H_MEMBRANE_MAX:g} µm; "
                f"fronts {low:g}–{high:g} µm wide need >= {ELEMENTS_ACROSS_FRONT} elements "
                "across (docs/numerics.md, Mesh resolution): "
                f"make the membrane size at most {H_MEMBRANE_MAX:g} µm"
            )
        if self.quality_min < QUALITY_WARNING:
            found.append(
                f"worst element quality {self.quality_min:.3g} < {QUALITY_WARNING:g} "
                "(nearly flat elements): remesh, e.g. with a smaller size"
            )
        return found

    def lines(self) -> list[str]:
        """The report as lines of text."""
        vol, surf = ("area", "length") if self.dim == 2 else ("volume", "area")
        unit_v, unit_a = ("µm²", "µm") if self.dim == 2 else ("µm³", "µm²")
        cell_kind = "triangles" if self.dim == 2 else "tetrahedra"
        facet_kind = "edges" if self.dim == 2 else "triangles"
        lines = [
            f"mesh: {self.source}",
            f"  {self.dim}-D, geometry order {self.order}: {self.cells} {cell_kind}, "
            f"{self.vertices} vertices, {self.membrane_facets} membrane {facet_kind}; "
            f"{self.extent:.4g} µm across",
            f"  cytosol {vol} {self.volume:.6g} {unit_v}, membrane {surf} {self.area:.6g} {unit_a}",
            f"  cell size {self.h_min:.3g}–{self.h_max:.3g} µm; membrane edges "
            f"{self.h_membrane_min:.3g}–{self.h_membrane_max:.3g} µm "
            f"(mean {self.h_membrane_mean:.3g})",
            f"  element quality (radius ratio, 1 = regular): worst {self.quality_min:.3g}, "
            f"mean {self.quality_mean:.3g}",
        ]
        if self.membrane_facets == 0 and self.compartments:  # no surface named membrane:
            lines[1] = (  # the compartments below say what the mesh holds
                f"  {self.dim}-D, geometry order {self.order}: {self.cells} {cell_kind}, "
                f"{self.vertices} vertices; {self.extent:.4g} µm across"
            )
            lines[2:4] = [f"  cell size {self.h_min:.3g}–{self.h_max:.3g} µm"]
        if self.compartments:
            width = max(len(c.name) for c in self.compartments)
            lines.append("  compartments:")
            lines += [c.line(width) for c in self.compartments]
        return lines + [f"  warning: {w}" for w in self.warnings()]


def _measure(tagged: TaggedMesh, dim: int, tag: int) -> float:
    """Volume of the cells or area of the facets tagged ``tag`` (collective).

    Facets are integrated as exterior (``ds``) and, where the surface has any,
    interior facets (``dS``, each once: meshes with such surfaces are ghosted across
    facets).
    """
    mesh, comm = tagged.mesh, tagged.mesh.comm
    tdim = mesh.topology.dim
    one = dolfinx.fem.Constant(mesh, 1.0)
    if dim == tdim:
        forms = [one * ufl.Measure("dx", mesh, subdomain_data=tagged.cell_tags, subdomain_id=tag)]
    else:
        forms = [one * ufl.Measure("ds", mesh, subdomain_data=tagged.facet_tags, subdomain_id=tag)]
        facets = tagged.facet_tags.find(tag)
        count = mesh.topology.connectivity(tdim - 1, tdim).offsets
        interior = np.any(count[facets + 1] - count[facets] == 2)
        if comm.allreduce(bool(interior), op=MPI.LOR):
            dS = ufl.Measure("dS", mesh, subdomain_data=tagged.facet_tags, subdomain_id=tag)
            forms.append(one("+") * dS)
    local = sum(float(dolfinx.fem.assemble_scalar(dolfinx.fem.form(f)).real) for f in forms)
    return comm.allreduce(local, op=MPI.SUM)


def _edges(tagged: TaggedMesh, tag: int) -> np.ndarray:
    """Owned edges of the facets tagged ``tag`` (the facets themselves in 2-D)."""
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    facets = tagged.facet_tags.find(tag)  # with ghosts: they may hold owned edges
    if tdim == 2:
        edges = facets
    else:
        mesh.topology.create_connectivity(tdim - 1, 1)
        mesh.topology.create_connectivity(1, tdim)  # for mesh.h
        facet_edges = mesh.topology.connectivity(tdim - 1, 1).array.reshape(-1, 3)
        edges = np.unique(facet_edges[facets])
    return edges[edges < mesh.topology.index_map(1).size_local].astype(np.int32)


def _between(tagged: TaggedMesh, tag: int) -> tuple[str, ...]:
    """Names of the volumes beside the owned facets tagged ``tag``, on any rank."""
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    names = {t: n for n, t in tagged.volumes.items()}
    cell_map = mesh.topology.index_map(tdim)
    volume_of = np.full(cell_map.size_local + cell_map.num_ghosts, -1, dtype=np.int64)
    volume_of[tagged.cell_tags.indices] = tagged.cell_tags.values
    facets = tagged.facet_tags.find(tag)
    facets = facets[facets < mesh.topology.index_map(tdim - 1).size_local]
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    start, count = f2c.offsets[facets], f2c.offsets[facets + 1] - f2c.offsets[facets]
    sides = [volume_of[f2c.array[start[count > k] + k]] for k in range(2)]
    found = {names.get(int(t), "unnamed") for t in np.unique(np.concatenate(sides))}
    if np.any(count == 1):
        found.add("outside")
    every = set().union(*mesh.comm.allgather(found))
    order = [*names.values(), "unnamed", "outside"]
    return tuple(n for n in order if n in every)


def _compartments(tagged: TaggedMesh, stats: _Stats) -> tuple[CompartmentReport, ...]:
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    reports = []
    for name, (dim, tag) in tagged.regions.items():
        surface = dim == tdim - 1
        tags = tagged.facet_tags if surface else tagged.cell_tags
        owned = tags.find(tag)
        owned = owned[owned < mesh.topology.index_map(dim).size_local]
        h = mesh.h(1, _edges(tagged, tag)) if surface else mesh.h(tdim, owned.astype(np.int32))
        count = mesh.comm.allreduce(int(owned.size), op=MPI.SUM)
        reports.append(
            CompartmentReport(
                name,
                dim,
                tag,
                surface,
                count,
                _measure(tagged, dim, tag),
                stats.low(h),
                stats.total(h) / max(mesh.comm.allreduce(h.size), 1),
                stats.high(h),
                _between(tagged, tag) if surface else (),
            )
        )
    return tuple(reports)


class _Stats:
    """Global minimum, maximum and sum of values spread over ranks."""

    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm

    def total(self, values: np.ndarray) -> float:
        return self.comm.allreduce(float(values.sum()), op=MPI.SUM)

    def low(self, values: np.ndarray) -> float:
        return self.comm.allreduce(float(values.min(initial=np.inf)), op=MPI.MIN)

    def high(self, values: np.ndarray) -> float:
        return self.comm.allreduce(float(values.max(initial=0.0)), op=MPI.MAX)


def report(tagged: TaggedMesh) -> MeshReport:
    """Measure ``tagged`` (collective)."""
    mesh, comm = tagged.mesh, tagged.mesh.comm
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    cell_map, facet_map = mesh.topology.index_map(tdim), mesh.topology.index_map(tdim - 1)
    cells = np.arange(cell_map.size_local, dtype=np.int32)
    h = mesh.h(tdim, cells)
    cytosol = tagged.regions.get(CYTOSOL_GROUP, (tdim, CYTOSOL))[1]
    membrane_tag = tagged.regions.get(MEMBRANE_GROUP, (tdim - 1, MEMBRANE))[1]
    membrane = tagged.facet_tags.find(membrane_tag)
    membrane = membrane[membrane < facet_map.size_local]
    h_membrane = mesh.h(1, _edges(tagged, membrane_tag))
    corners = mesh.geometry.x[mesh.geometry.dofmaps[0][: cell_map.size_local, : tdim + 1]]
    quality = element_quality(corners[:, :, : mesh.geometry.dim])
    stats = _Stats(comm)
    n_membrane = comm.allreduce(int(membrane.size), op=MPI.SUM)
    x = mesh.geometry.x[: mesh.geometry.index_map().size_local, : mesh.geometry.dim]
    lowest, highest = np.empty(x.shape[1]), np.empty(x.shape[1])
    comm.Allreduce(x.min(axis=0, initial=np.inf), lowest, op=MPI.MIN)
    comm.Allreduce(x.max(axis=0, initial=-np.inf), highest, op=MPI.MAX)
    return MeshReport(
        source=tagged.source,
        dim=tdim,
        order=mesh.geometry.cmaps[0].degree,
        cells=cell_map.size_global,
        vertices=mesh.topology.index_map(0).size_global,
        membrane_facets=n_membrane,
        extent=float(np.max(highest - lowest)),
        volume=_measure(tagged, tdim, cytosol),
        area=_measure(tagged, tdim - 1, membrane_tag),
        h_min=stats.low(h),
        h_max=stats.high(h),
        h_membrane_min=stats.low(h_membrane),
        h_membrane_mean=stats.total(h_membrane) / max(comm.allreduce(h_membrane.size), 1),
        h_membrane_max=stats.high(h_membrane),
        quality_min=stats.low(quality),
        quality_mean=stats.total(quality) / cell_map.size_global,
        compartments=_compartments(tagged, stats),
    )
