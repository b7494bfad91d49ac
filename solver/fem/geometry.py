"""The cell: cytosol mesh, membrane submesh, the map between them and the measures.

The membrane is a codimension-1 submesh of the tagged membrane facets, so the
membrane P1 space is exactly the trace of the cytosol P1 space there (the
condition for exact conservation of binding/unbinding pools).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mpi4py import MPI

import dolfinx
import numpy as np
import ufl

from solver.mesh.meshing import MEMBRANE, TaggedMesh


@dataclass(frozen=True, eq=False)
class CellGeometry:
    """Cytosol mesh (``mesh``), membrane submesh (``membrane``) and entity map.

    ``entity_map`` relates membrane cells to cytosol facets; every form that
    mixes the two meshes is compiled with ``entity_maps=[entity_map]``.
    """

    tagged: TaggedMesh
    membrane: dolfinx.mesh.Mesh
    entity_map: dolfinx.mesh.EntityMap
    membrane_facets: np.ndarray

    @classmethod
    def from_tagged(cls, tagged: TaggedMesh) -> CellGeometry:
        """Extract the membrane submesh from the facets tagged ``MEMBRANE``.

        Collective over the mesh's communicator.
        """
        mesh = tagged.mesh
        tdim = mesh.topology.dim
        mesh.topology.create_connectivity(tdim - 1, tdim)
        facets = tagged.facet_tags.find(MEMBRANE)
        submesh, entity_map, _, _ = dolfinx.mesh.create_submesh(mesh, tdim - 1, facets)
        return cls(tagged, submesh, entity_map, facets)

    @property
    def mesh(self) -> dolfinx.mesh.Mesh:
        """The cytosol (volume) mesh, in µm."""
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
    def dx(self) -> ufl.Measure:
        """Cytosol volume measure."""
        return ufl.Measure("dx", domain=self.mesh)

    @cached_property
    def ds(self) -> ufl.Measure:
        """Membrane as cytosol boundary facets: for every term coupling the two meshes."""
        return ufl.Measure(
            "ds", domain=self.mesh, subdomain_data=self.tagged.facet_tags, subdomain_id=MEMBRANE
        )

    @cached_property
    def dm(self) -> ufl.Measure:
        """Membrane submesh measure, for pure membrane terms (time derivative, diffusion)."""
        return ufl.Measure("dx", domain=self.membrane)

    def measure(self) -> tuple[float, float]:
        """Global cytosol volume (µm³, or µm² in 2-D) and membrane area (µm², or µm)."""
        one = dolfinx.fem.Constant(self.mesh, 1.0)
        values = [
            dolfinx.fem.assemble_scalar(dolfinx.fem.form(one * m)) for m in (self.dx, self.ds)
        ]
        return tuple(self.comm.allreduce(v, op=MPI.SUM) for v in values)
