"""The matrix of the system with only the entries its forms can fill.

Each compartment's species share one vector P1 space (node-interleaved), so dolfinx
gives every pair of neighbouring nodes a full block of species × species entries. Most
of them are structural zeros: diffusion and the mass matrix couple a species only to
itself, and a reaction couples only the species it reads to those it changes (11
species of the default model: 72 % of the full blocks are zeros). This module builds
the pattern of the nonzero entries alone: for each form, the nodes dolfinx couples,
times the species pairs its integrand couples (:func:`solver.fem.forms.trial_components`),
united over all forms. Sparse matrix products, the assembly's additions and the
preconditioners then work on about a third of the entries, and ILU or multigrid see
the coupling as it is.

Rows and columns are numbered as dolfinx numbers a list of spaces (each rank owns a
contiguous range: its owned dofs of block 0, then of block 1, ...); the matrix has the
local-to-global map of :func:`dolfinx.cpp.la.petsc.create_index_sets`, so forms are
assembled into it through ``getLocalSubMatrix`` as into dolfinx's own matrices.
Insertions outside the pattern (zeros at the full blocks' other places) are dropped,
and zero values are skipped before their place is looked up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
from dolfinx import fem, la


class Numbering:
    """The global row of (block, node, species) in the monolithic system (collective)."""

    def __init__(self, spaces: Sequence[fem.FunctionSpace], comm: MPI.Comm) -> None:
        self.comm = comm
        self.bs = [V.dofmap.index_map_bs for V in spaces]
        self.maps = [V.dofmap.index_map for V in spaces]
        owned = [im.size_local * bs for im, bs in zip(self.maps, self.bs, strict=True)]
        mine = np.array([0, *np.cumsum(owned)], dtype=np.int64)  # block offsets, this rank
        table = comm.allgather(
            (int(mine[-1]), mine[:-1].tolist(), [im.local_range[0] for im in self.maps])
        )
        sizes = np.array([row[0] for row in table], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.offsets = np.array([row[1] for row in table], dtype=np.int64)  # rank × block
        self.first = np.array([row[2] for row in table], dtype=np.int64)  # rank × block
        self.local_size = int(mine[-1])
        self.global_size = comm.allreduce(self.local_size)
        self.rank = comm.rank

    def base(self, block: int, nodes: np.ndarray) -> np.ndarray:
        """Global row of species 0 at the global ``nodes`` of ``block`` (any owner)."""
        first = self.first[:, block]
        owner = np.searchsorted(first, nodes, side="right") - 1
        return (
            self.starts[owner]
            + self.offsets[owner, block]
            + (nodes - first[owner]) * self.bs[block]
        )

    def local_to_global(self) -> np.ndarray:
        """The global index of every local index of the blocks' concatenated local spaces."""
        parts = []
        for block, (im, bs) in enumerate(zip(self.maps, self.bs, strict=True)):
            nodes = np.arange(im.size_local + im.num_ghosts, dtype=np.int32)
            base = self.base(block, im.local_to_global(nodes).astype(np.int64))
            parts.append((base[:, None] + np.arange(bs)).reshape(-1))
        return np.concatenate(parts)


def _entries(
    form: fem.Form, coupling: np.ndarray, i: int, j: int, numbering: Numbering
) -> tuple[np.ndarray, np.ndarray]:
    """Global (rows, columns) of the nonzero entries ``form`` adds to block (i, j).

    dolfinx's sparsity pattern of the form couples nodes; each pair of coupled nodes
    holds the species pairs of ``coupling``. Only this rank's owned rows are kept
    (the finalised pattern holds in them what other ranks' cells add as well).
    """
    sparsity = fem.create_sparsity_pattern(form)
    sparsity.finalize()
    # a matrix of the pattern for its column map, which finalising may extend with
    # columns that only other ranks' cells reach; its values (float32) go unused
    matrix = la.matrix_csr(sparsity, dtype=np.float32)
    del sparsity
    owned = matrix.index_map(0).size_local
    indptr = matrix.indptr[: owned + 1]
    nodes = np.repeat(np.arange(owned, dtype=np.int32), np.diff(indptr))
    row_nodes = matrix.index_map(0).local_to_global(nodes)
    col_nodes = matrix.index_map(1).local_to_global(matrix.indices[: indptr[-1]])
    del matrix, nodes
    k, m = np.nonzero(coupling)  # the species pairs (row species, column species)
    rows = (numbering.base(i, row_nodes)[:, None] + k).reshape(-1)
    cols = (numbering.base(j, col_nodes)[:, None] + m).reshape(-1)
    return rows, cols


def create(
    spaces: Sequence[fem.FunctionSpace],
    forms: Iterable[tuple[int, int, fem.Form, np.ndarray]],
    comm: MPI.Comm,
) -> tuple[PETSc.Mat, Numbering]:
    """A matrix holding exactly the entries of ``forms`` (block i, block j, form, coupling).

    ``coupling[k, l]``: species k of block i reads species l of block j in that form.
    Every diagonal entry is in the pattern. Later insertions outside it are dropped.
    """
    numbering = Numbering(spaces, comm)
    first = numbering.starts[numbering.rank]
    n, N = numbering.local_size, numbering.global_size
    # each entry as one int64 key, (local row)·N + (global column): a single array to
    # sort and thin out, a third of the memory of sorting rows and columns as pairs
    local = np.arange(n, dtype=np.int64)
    parts = [local * N + (first + local)]  # every diagonal entry
    del local
    for i, j, form, coupling in forms:
        rows, cols = _entries(form, coupling, i, j, numbering)
        rows -= first
        rows *= N
        rows += cols
        parts.append(rows)
        del cols
    keys = np.concatenate(parts)
    del parts
    keys.sort()
    first_of_its_kind = np.empty(len(keys), dtype=bool)
    first_of_its_kind[:1] = True  # (a rank may own no rows)
    np.not_equal(keys[1:], keys[:-1], out=first_of_its_kind[1:])
    keys = keys[first_of_its_kind]
    del first_of_its_kind
    row = keys // N
    indptr = np.zeros(n + 1, dtype=PETSc.IntType)
    np.cumsum(np.bincount(row, minlength=n), out=indptr[1:])
    keys -= row * N  # now the columns
    del row
    col = keys
    csr: Any = (indptr, col.astype(PETSc.IntType))  # arrays, where the stubs say sequences
    A = PETSc.Mat().createAIJ(
        ((n, N), (n, N)),
        csr=csr,
        comm=comm,  # type: ignore[arg-type]  # petsc4py takes mpi4py comms
    )
    indices: Any = numbering.local_to_global().astype(PETSc.IntType)
    lgmap = PETSc.LGMap().create(indices, comm=comm)  # type: ignore[arg-type]
    A.setLGMap(lgmap, lgmap)
    lgmap.destroy()
    freeze(A)
    return A, numbering


def freeze(A: PETSc.Mat) -> None:
    """Drop insertions outside the pattern, and zeros before they are looked up.

    Element matrices carry full species blocks: most of their entries are zeros that
    the pattern does not hold. Skipping zero values before their column is searched
    halves the cost of inserting the Jacobian of the 11-species model.
    """
    options = PETSc.Mat.Option
    A.setOption(options.NEW_NONZERO_ALLOCATION_ERR, False)  # type: ignore[arg-type]
    A.setOption(options.NEW_NONZERO_LOCATIONS, False)  # type: ignore[arg-type]
    A.setOption(options.IGNORE_ZERO_ENTRIES, True)  # type: ignore[arg-type]
