"""What a cell mesh is like: measures, counts, element sizes and shapes, resolution warnings.

Printed by ``polarity mesh`` (after making a mesh, and with ``--check FILE``) and by
``polarity check CONFIG``. The resolution warning follows docs/numerics.md, Mesh resolution: fronts
(10–90 %) are 2.4–3.9 µm wide and need at least 8 elements across, i.e. a
membrane element size h_Γ ≤ 0.4 µm for P1 elements.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpi4py import MPI

import dolfinx.fem
import numpy as np
import ufl

from solver.mesh.meshing import CYTOSOL, MEMBRANE, TaggedMesh

__all__ = ["H_MEMBRANE_MAX", "MeshReport", "report", "element_quality"]

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
        return lines + [f"  warning: {w}" for w in self.warnings()]


def _measure(tagged: TaggedMesh, kind: str) -> float:
    mesh = tagged.mesh
    tags, tag = (tagged.cell_tags, CYTOSOL) if kind == "dx" else (tagged.facet_tags, MEMBRANE)
    measure = ufl.Measure(kind, domain=mesh, subdomain_data=tags, subdomain_id=tag)
    one = dolfinx.fem.Constant(mesh, 1.0)
    local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(one * measure))
    return mesh.comm.allreduce(float(local.real), op=MPI.SUM)  # a real scalar type


def _membrane_edges(tagged: TaggedMesh) -> np.ndarray:
    """Owned edges of the membrane facets (the facets themselves in 2-D)."""
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    facets = tagged.facet_tags.find(MEMBRANE)  # with ghosts: they may hold owned edges
    if tdim == 2:
        edges = facets
    else:
        mesh.topology.create_connectivity(tdim - 1, 1)
        mesh.topology.create_connectivity(1, tdim)  # for mesh.h
        facet_edges = mesh.topology.connectivity(tdim - 1, 1).array.reshape(-1, 3)
        edges = np.unique(facet_edges[facets])
    return edges[edges < mesh.topology.index_map(1).size_local].astype(np.int32)


def report(tagged: TaggedMesh) -> MeshReport:
    """Measure ``tagged`` (collective)."""
    mesh, comm = tagged.mesh, tagged.mesh.comm
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    cell_map, facet_map = mesh.topology.index_map(tdim), mesh.topology.index_map(tdim - 1)
    cells = np.arange(cell_map.size_local, dtype=np.int32)
    h = mesh.h(tdim, cells)
    membrane = tagged.facet_tags.find(MEMBRANE)
    membrane = membrane[membrane < facet_map.size_local]
    h_membrane = mesh.h(1, _membrane_edges(tagged))
    corners = mesh.geometry.x[mesh.geometry.dofmaps[0][: cell_map.size_local, : tdim + 1]]
    quality = element_quality(corners[:, :, : mesh.geometry.dim])

    def total(values: np.ndarray) -> float:
        return comm.allreduce(float(values.sum()), op=MPI.SUM)

    def low(values: np.ndarray) -> float:
        return comm.allreduce(float(values.min(initial=np.inf)), op=MPI.MIN)

    def high(values: np.ndarray) -> float:
        return comm.allreduce(float(values.max(initial=0.0)), op=MPI.MAX)

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
        volume=_measure(tagged, "dx"),
        area=_measure(tagged, "ds"),
        h_min=low(h),
        h_max=high(h),
        h_membrane_min=low(h_membrane),
        h_membrane_mean=total(h_membrane) / max(comm.allreduce(h_membrane.size), 1),
        h_membrane_max=high(h_membrane),
        quality_min=low(quality),
        quality_mean=total(quality) / cell_map.size_global,
    )
