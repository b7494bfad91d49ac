"""The compartments on the mesh: one parent mesh, a submesh per compartment, measures.

Every compartment that holds species gets its own mesh: a volume that covers the
whole parent mesh is the parent itself; any other volume is a submesh of its cells,
and a surface a codimension-1 submesh of its facets. So the P1 space of a surface is
exactly the trace of the P1 spaces of the volumes beside it (the condition for exact
conservation of what crosses it).

Every form that mixes compartments is integrated over the parent mesh, with the
entity maps of all submeshes: a volume reaction over the volume's cells, a surface
reaction over the surface's facets seen from one side (``ds``: pairs of a cell of that
side and its local facet), and a flux between the two volumes beside a surface over
its facets seen from both (``dS``: the inside cell is the ``"+"`` side, the outside
cell the ``"-"`` side). Each facet is integrated by the rank that owns its cell on the
integrating side, so no facet is counted twice; a two-sided surface needs the cell on
the other side there too (meshes of several volumes are ghosted across facets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from mpi4py import MPI

import dolfinx
import numpy as np
import ufl

from solver.errors import InputError
from solver.mesh.meshing import TaggedMesh
from solver.model.model import CYTOSOL, DEFAULT_COMPARTMENTS, Compartment


@dataclass(eq=False)
class Region:
    """One compartment on the mesh.

    Attributes:
        compartment: What it is (volume or surface, and its sides).
        mesh: The parent mesh (a volume that covers it) or a submesh.
        entity_map: The map between ``mesh`` and the parent (None for the parent).
        entities: Its local parent cells (volume) or facets (surface), ghosts included.
    """

    compartment: Compartment
    mesh: dolfinx.mesh.Mesh
    entity_map: dolfinx.mesh.EntityMap | None
    entities: np.ndarray
    #: a volume that covers the whole parent mesh
    whole: bool = False

    @property
    def name(self) -> str:
        """The compartment's name."""
        return self.compartment.name


@dataclass(eq=False)
class CellGeometry:
    """The parent mesh, the compartments on it, and the measures that integrate them."""

    tagged: TaggedMesh
    regions: dict[str, Region]
    #: integration data by integral type: [(id, packed entities), ...] (see the module doc)
    data: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    #: the id in ``data`` of (compartment, side); side "" for a volume, "+" for both sides
    ids: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def from_tagged(
        cls,
        tagged: TaggedMesh,
        compartments: Mapping[str, Compartment] | None = None,
        meshed: set[str] | None = None,
    ) -> CellGeometry:
        """The ``compartments`` (default: cytosol and membrane) on ``tagged``. Collective.

        Only the compartments in ``meshed`` (default: all) get a submesh: those that hold
        species. A compartment is found by its name among the mesh's regions; a volume the mesh
        does not name is all of it when it is the only volume, and a surface the mesh
        does not name is the facets between its two volumes (or, without ``outside``,
        those of its inside volume on the mesh's boundary or next to no volume).

        Raises:
            InputError: at ``compartments.NAME``, for a compartment the mesh does not
                have or a surface that does not touch its volumes.
        """
        compartments = dict(compartments or DEFAULT_COMPARTMENTS)
        finder = _Finder(tagged, compartments)
        regions = {}
        for c in sorted(compartments.values(), key=lambda c: c.surface):
            entities = finder.cells(c) if not c.surface else finder.facets(c)
            regions[c.name] = finder.region(c, entities, meshed is None or c.name in meshed)
        regions = {name: regions[name] for name in compartments}
        geometry = cls(tagged, regions)
        geometry._integration_data(finder)
        return geometry

    # -- integration data ----------------------------------------------------------
    def _integration_data(self, finder: _Finder) -> None:
        data: dict[str, list[tuple[int, np.ndarray]]] = {"dx": [], "ds": [], "dS": []}
        for region in self.regions.values():
            c = region.compartment
            if not c.surface:
                if not region.whole:
                    owned = region.entities[region.entities < finder.owned_cells]
                    data["dx"].append((len(data["dx"]) + 1, owned.astype(np.int32)))
                    self.ids[(c.name, "")] = data["dx"][-1][0]
                continue
            for side in c.sides:
                pairs = finder.one_sided(region.entities, self.regions[side].entities)
                data["ds"].append((len(data["ds"]) + 1, pairs))
                self.ids[(c.name, side)] = data["ds"][-1][0]
            if c.outside:
                inside, outside = (self.regions[v].entities for v in c.sides)
                quads = finder.two_sided(c, region.entities, inside, outside)
                data["dS"].append((len(data["dS"]) + 1, quads))
                self.ids[(c.name, "+")] = data["dS"][-1][0]
        self.data = data

    # -- what the rest of the solver asks -------------------------------------------
    @property
    def mesh(self) -> dolfinx.mesh.Mesh:
        """The parent mesh, in µm: every compartment is on it."""
        return self.tagged.mesh

    @property
    def comm(self) -> MPI.Comm:
        """The communicator the mesh is distributed over."""
        return self.tagged.mesh.comm

    @property
    def gdim(self) -> int:
        """The geometric dimension (2 or 3)."""
        return self.tagged.mesh.geometry.dim

    @cached_property
    def entity_maps(self) -> list[dolfinx.mesh.EntityMap]:
        """The entity maps of every submesh: pass them to every form that mixes meshes."""
        return [r.entity_map for r in self.regions.values() if r.entity_map is not None]

    def own(self, name: str, **metadata) -> ufl.Measure:
        """``dx`` on the compartment's own mesh: its time derivative and diffusion."""
        return ufl.Measure("dx", domain=self.regions[name].mesh, metadata=metadata or None)

    def volume(self, name: str, **metadata) -> ufl.Measure:
        """``dx`` over the cells of a volume, on the parent mesh: volume reactions."""
        key = (name, "")
        if key not in self.ids:  # the volume is the parent mesh
            return ufl.Measure("dx", domain=self.mesh, metadata=metadata or None)
        return ufl.Measure(
            "dx",
            domain=self.mesh,
            subdomain_data=self.data["dx"],
            subdomain_id=self.ids[key],
            metadata=metadata or None,
        )

    def surface(self, name: str, side: str = "", **metadata) -> ufl.Measure:
        """``ds`` over a surface's facets seen from ``side`` (default: its inside)."""
        side = side or self.regions[name].compartment.inside
        return ufl.Measure(
            "ds",
            domain=self.mesh,
            subdomain_data=self.data["ds"],
            subdomain_id=self.ids[(name, side)],
            metadata=metadata or None,
        )

    def interface(self, name: str, **metadata) -> ufl.Measure:
        """``dS`` over a surface between two volumes: ``"+"`` inside, ``"-"`` outside."""
        return ufl.Measure(
            "dS",
            domain=self.mesh,
            subdomain_data=self.data["dS"],
            subdomain_id=self.ids[(name, "+")],
            metadata=metadata or None,
        )

    @property
    def primary(self) -> tuple[str, str | None]:
        """The cell's volume and its membrane: the read-outs' compartments.

        ``membrane`` if declared, else the first surface; the volume is ``cytosol`` if
        declared, else the membrane's inside, else the first volume.
        """
        surfaces = [r.name for r in self.regions.values() if r.compartment.surface]
        membrane = "membrane" if "membrane" in surfaces else next(iter(surfaces), None)
        if CYTOSOL in self.regions:
            return CYTOSOL, membrane
        if membrane is not None:
            return self.regions[membrane].compartment.inside, membrane
        return next(iter(self.regions)), membrane

    @property
    def membrane(self) -> dolfinx.mesh.Mesh:
        """The membrane's submesh."""
        name = self.primary[1]
        if name is None:
            raise KeyError("the model has no surface")
        return self.regions[name].mesh

    @property
    def dx(self) -> ufl.Measure:
        """The cell's volume (cytosol) measure, on the parent mesh."""
        return self.volume(self.primary[0])

    @property
    def ds(self) -> ufl.Measure:
        """The membrane as facets of the parent mesh, seen from the cell's volume."""
        name = self.primary[1]
        if name is None:
            raise KeyError("the model has no surface")
        return self.surface(name)

    @property
    def dm(self) -> ufl.Measure:
        """The membrane submesh measure, for pure membrane terms."""
        name = self.primary[1]
        if name is None:
            raise KeyError("the model has no surface")
        return self.own(name)

    def cell_cells(self) -> np.ndarray:
        """This rank's owned parent cells of the cell: all but those of the medium.

        The medium is the volume outside the membrane (if it has one); inner bodies
        (a nucleus) belong to the cell.
        """
        tdim = self.mesh.topology.dim
        owned = self.mesh.topology.index_map(tdim).size_local
        keep = np.ones(owned, dtype=bool)
        membrane = self.primary[1]
        medium = self.regions[membrane].compartment.outside if membrane else ""
        if medium:
            cells = self.regions[medium].entities
            keep[cells[cells < owned]] = False
        return np.flatnonzero(keep).astype(np.int32)

    def measure(self) -> tuple[float, float]:
        """Global cell volume (µm³, or µm² in 2-D) and membrane area (µm², or µm)."""
        return self.size(self.primary[0]), self.size(self.primary[1] or "")

    def size(self, name: str) -> float:
        """The volume (µm³; µm² in 2-D) or area (µm²; µm in 2-D) of a compartment."""
        if name not in self.regions:
            return 0.0
        one = dolfinx.fem.Constant(self.mesh, 1.0)
        c = self.regions[name].compartment
        measure = self.surface(name) if c.surface else self.volume(name)
        form = dolfinx.fem.form(one * measure, entity_maps=self.entity_maps)
        return self.comm.allreduce(dolfinx.fem.assemble_scalar(form), op=MPI.SUM)


class _Finder:
    """Cells and facets of compartments on a tagged mesh (local, ghosts included)."""

    def __init__(self, tagged: TaggedMesh, compartments: Mapping[str, Compartment]) -> None:
        self.tagged = tagged
        self.compartments = compartments
        mesh = tagged.mesh
        self.tdim = tdim = mesh.topology.dim
        mesh.topology.create_connectivity(tdim - 1, tdim)
        mesh.topology.create_connectivity(tdim, tdim - 1)
        cell_map = mesh.topology.index_map(tdim)
        self.owned_cells = cell_map.size_local
        self.num_cells = cell_map.size_local + cell_map.num_ghosts
        f2c = mesh.topology.connectivity(tdim - 1, tdim)
        self.f2c_offsets, self.f2c = f2c.offsets, f2c.array
        c2f = mesh.topology.connectivity(tdim, tdim - 1)
        self.c2f = c2f.array.reshape(self.num_cells, -1)
        self.regions = getattr(tagged, "regions", None) or {}
        self.volume_of = np.full(self.num_cells, -1, dtype=np.int32)  # index of the volume

    def _tagged(self, name: str, dim: int) -> np.ndarray | None:
        found = self.regions.get(name)
        if found is None or found[0] != dim:
            return None
        tags = self.tagged.cell_tags if dim == self.tdim else self.tagged.facet_tags
        return tags.find(found[1]).astype(np.int32)

    def _none_anywhere(self, entities: np.ndarray) -> bool:
        comm = self.tagged.mesh.comm
        return comm.allreduce(int(entities.size), op=MPI.SUM) == 0

    def cells(self, c: Compartment) -> np.ndarray:
        volumes = [v for v in self.compartments.values() if not v.surface]
        cells = self._tagged(c.name, self.tdim)
        if cells is None:
            if len(volumes) > 1:
                raise InputError(
                    f"compartments.{c.name}",
                    f"the mesh has no volume named '{c.name}'; its regions: {self._listed()}",
                )
            cells = np.arange(self.num_cells, dtype=np.int32)
        if self._none_anywhere(cells):
            raise InputError(f"compartments.{c.name}", "the mesh has no cells of this volume")
        index = list(self.compartments).index(c.name)
        if self.tagged.mesh.comm.allreduce(bool(np.any(self.volume_of[cells] >= 0)), op=MPI.LOR):
            raise InputError(f"compartments.{c.name}", "its cells belong to another volume too")
        self.volume_of[cells] = index
        return cells

    def _listed(self) -> str:
        names = [
            f"{n} ({'volume' if d == self.tdim else 'surface'})"
            for n, (d, _) in self.regions.items()
        ]
        return ", ".join(names) or "none named"

    def _sides(self, facets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The local cells on the two sides of each facet (-1 where there is none)."""
        start = self.f2c_offsets[facets]
        count = self.f2c_offsets[facets + 1] - start
        first = np.where(count > 0, self.f2c[np.minimum(start, self.f2c.size - 1)], -1)
        second = np.where(count > 1, self.f2c[np.minimum(start + 1, self.f2c.size - 1)], -1)
        return first, second

    def facets(self, c: Compartment) -> np.ndarray:
        names = list(self.compartments)
        inside = names.index(c.inside)
        outside = names.index(c.outside) if c.outside else -1
        facets = self._tagged(c.name, self.tdim - 1)
        if facets is None:
            facets = self._derived(inside, outside)
        a, b = self._sides(facets)
        va = np.where(a >= 0, self.volume_of[np.maximum(a, 0)], -2)
        vb = np.where(b >= 0, self.volume_of[np.maximum(b, 0)], -2)
        # facets next to an owned cell: both neighbours are local (or it has one)
        checked = (a >= 0) & (a < self.owned_cells) | (b >= 0) & (b < self.owned_cells)
        touches = (va == inside) | (vb == inside)
        if outside >= 0:
            touches &= (va == outside) | (vb == outside)
        comm = self.tagged.mesh.comm
        wrong = comm.allreduce(int(np.count_nonzero(checked & ~touches)), op=MPI.SUM)
        if wrong:
            between = f"{c.inside} and {c.outside}" if c.outside else c.inside
            raise InputError(
                f"compartments.{c.name}",
                f"{wrong} of its facets in the mesh do not lie on {between}",
            )
        if self._none_anywhere(facets):
            between = f"between {c.inside} and {c.outside}" if c.outside else f"of {c.inside}"
            raise InputError(
                f"compartments.{c.name}", f"the mesh has no facets {between} for this surface"
            )
        return facets

    def _derived(self, inside: int, outside: int) -> np.ndarray:
        """Facets between two volumes, or of one volume on the boundary or next to none."""
        topology = self.tagged.mesh.topology
        n = topology.index_map(self.tdim - 1)
        facets = np.arange(n.size_local + n.num_ghosts, dtype=np.int32)
        a, b = self._sides(facets)
        va = np.where(a >= 0, self.volume_of[np.maximum(a, 0)], -2)
        vb = np.where(b >= 0, self.volume_of[np.maximum(b, 0)], -2)
        if outside >= 0:
            keep = ((va == inside) & (vb == outside)) | ((va == outside) & (vb == inside))
            return facets[keep]
        boundary = np.zeros(facets.size, dtype=bool)
        boundary[dolfinx.mesh.exterior_facet_indices(topology)] = True
        # nothing beyond: the mesh's boundary, or a cell of no volume
        none_b = np.where(b >= 0, vb == -1, boundary)
        none_a = va == -1
        keep = ((va == inside) & none_b) | ((vb == inside) & none_a)
        return facets[keep]

    def _local_facet(self, cells: np.ndarray, facets: np.ndarray) -> np.ndarray:
        return np.argmax(self.c2f[cells] == facets[:, None], axis=1).astype(np.int32)

    def one_sided(self, facets: np.ndarray, side_cells: np.ndarray) -> np.ndarray:
        """Packed (cell, local facet) of ``facets`` seen from their owned cell in a volume."""
        in_side = np.zeros(self.num_cells, dtype=bool)
        in_side[side_cells] = True
        a, b = self._sides(facets)
        cell = np.where((a >= 0) & in_side[np.maximum(a, 0)], a, -1)
        cell = np.where((cell < 0) & (b >= 0) & in_side[np.maximum(b, 0)], b, cell)
        keep = (cell >= 0) & (cell < self.owned_cells)
        cell, facets = cell[keep], facets[keep]
        pairs = np.column_stack([cell, self._local_facet(cell, facets)])
        return pairs.reshape(-1).astype(np.int32)

    def two_sided(
        self, c: Compartment, facets: np.ndarray, inside: np.ndarray, outside: np.ndarray
    ) -> np.ndarray:
        """Packed (inside cell, local facet, outside cell, local facet) of ``facets``."""
        is_in = np.zeros(self.num_cells, dtype=bool)
        is_in[inside] = True
        a, b = self._sides(facets)
        a_in = (a >= 0) & is_in[np.maximum(a, 0)]
        cin = np.where(a_in, a, b)
        cout = np.where(a_in, b, a)
        keep = (cin >= 0) & (cin < self.owned_cells)
        cin, cout, facets = cin[keep], cout[keep], facets[keep]
        if np.any(cout < 0):
            raise RuntimeError(
                f"compartments.{c.name}: the mesh is not ghosted across facets; a mesh of "
                "several volumes must be distributed with GhostMode.shared_facet"
            )
        quads = np.column_stack(
            [cin, self._local_facet(cin, facets), cout, self._local_facet(cout, facets)]
        )
        return quads.reshape(-1).astype(np.int32)

    def region(self, c: Compartment, entities: np.ndarray, meshed: bool) -> Region:
        mesh = self.tagged.mesh
        tdim = self.tdim
        whole = not c.surface and bool(
            self.tagged.mesh.comm.allreduce(int(entities.size == self.num_cells), op=MPI.MIN)
        )
        if not meshed or whole:  # no species there, or the parent mesh itself
            return Region(c, mesh, None, entities, whole)
        if not c.surface:
            sub, emap, _, _ = dolfinx.mesh.create_submesh(mesh, tdim, entities)
            return Region(c, sub, emap, entities)
        sub, emap, _, _ = dolfinx.mesh.create_submesh(mesh, tdim - 1, entities)
        return Region(c, sub, emap, entities)
