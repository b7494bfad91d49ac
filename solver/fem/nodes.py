"""P1 nodes keyed by the mesh's input node numbers: a rank-independent ordering.

Every P1 degree of freedom sits at a mesh vertex, and every vertex keeps the index
it had in the mesh as generated or read (``mesh.geometry.input_global_indices``; a
membrane submesh inherits the numbers of the cytosol mesh). Sorting the nodes by
that number gives an ordering that does not depend on the number of ranks or on
the partition: field outputs and checkpoints are written in it, so a run can be
continued on any number of ranks.

Rank 0 gathers and writes; the sizes involved (a few 10⁵ nodes × a dozen species)
fit comfortably in one process.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
from dolfinx import fem

ROOT = 0


class NodeLayout:
    """Owned P1 nodes of a (possibly blocked) Lagrange space and their global keys.

    Collective to construct. ``keys`` and ``coordinates`` (µm) hold this rank's owned
    nodes; on rank 0, ``global_keys`` are all keys sorted, and ``global_coordinates``
    and ``cells`` (the mesh's owned cells as positions in ``global_keys``) follow.
    """

    def __init__(self, space: fem.FunctionSpace) -> None:
        mesh = space.mesh
        self.comm: MPI.Comm = mesh.comm
        index_map = space.dofmap.index_map
        self.owned = index_map.size_local
        self.local = self.owned + index_map.num_ghosts
        self.block_size = space.dofmap.index_map_bs
        self.gdim = mesh.geometry.dim
        self.tdim = mesh.topology.dim
        self.cell_name = mesh.topology.cell_name()
        cell_dofs = space.dofmap.list
        vertices = mesh.geometry.dofmaps[0][:, : cell_dofs.shape[1]]
        node = np.empty(self.local, dtype=np.int64)
        node[cell_dofs.ravel()] = vertices.ravel()  # P1: dofs sit at the cell's vertices
        inputs = np.asarray(mesh.geometry.input_global_indices, dtype=np.int64)
        self.all_keys = inputs[node]  # owned and ghost dofs
        self.keys = self.all_keys[: self.owned]
        self.coordinates = mesh.geometry.x[node[: self.owned], : self.gdim].copy()

        num_cells = mesh.topology.index_map(self.tdim).size_local
        cell_keys = self.all_keys[cell_dofs[:num_cells]]
        gathered = self.comm.gather((self.keys, self.coordinates, cell_keys), root=ROOT)
        self.global_keys = self.global_coordinates = self.cells = None
        if self.comm.rank == ROOT:
            keys = np.concatenate([g[0] for g in gathered])
            order = np.argsort(keys, kind="stable")
            self.global_keys = keys[order]
            self.global_coordinates = np.concatenate([g[1] for g in gathered])[order]
            cells = np.concatenate([g[2] for g in gathered])
            self.cells = np.searchsorted(self.global_keys, cells).astype(np.int64)
        self.size = self.comm.bcast(None if self.global_keys is None else self.global_keys.size)

    def gather(self, values: np.ndarray) -> np.ndarray | None:
        """Values at the owned nodes (first axis) → all nodes in key order on rank 0."""
        parts = self.comm.gather((self.keys, np.asarray(values)[: self.owned]), root=ROOT)
        if self.comm.rank != ROOT:
            return None
        assert parts is not None  # gathered on the root
        keys = np.concatenate([p[0] for p in parts])
        data = np.concatenate([p[1] for p in parts])
        return data[np.argsort(keys, kind="stable")]

    def scatter(self, keys: np.ndarray | None, values: np.ndarray | None) -> np.ndarray:
        """Rank 0's ``values`` at sorted ``keys`` → this rank's owned and ghost nodes.

        Raises KeyError (collectively) when a node of this mesh is not among ``keys``.
        """
        keys, values = self.comm.bcast((keys, values) if self.comm.rank == ROOT else None)
        position = np.searchsorted(keys, self.all_keys)
        position = np.minimum(position, keys.size - 1)
        missing = int(np.count_nonzero(keys[position] != self.all_keys))
        if self.comm.allreduce(missing, op=MPI.SUM):
            raise KeyError("nodes of the mesh are missing from the stored data")
        return values[position]

    def node_values(self, function: fem.Function, dofs: np.ndarray | None = None) -> np.ndarray:
        """Owned-node values of a scalar function whose dof ``j`` is node ``dofs[j] // bs``.

        ``dofs`` are the indices of the function's dofs in the blocked space (as from
        ``V.sub(k).collapse()``); None when the function lives on this layout's space.
        """
        if dofs is None:
            return function.x.array[: self.owned]
        out = np.empty(self.local)
        out[np.asarray(dofs) // self.block_size] = function.x.array[: len(dofs)]
        return out[: self.owned]
