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

import dolfinx.fem.petsc as fem_petsc
import numpy as np
from dolfinx import cpp as _cpp
from dolfinx import fem


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
    """Global (rows, columns) of the nonzero entries ``form`` adds to block (i, j)."""
    M = fem_petsc.create_matrix(form)
    M.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, False)  # type: ignore[arg-type]
    _cpp.fem.petsc.assemble_matrix(
        M, form._cpp_object, fem.pack_constants(form), fem.pack_coefficients(form), [], True
    )
    M.assemble()
    indptr, cols, _ = M.getValuesCSR()
    first_row = M.getOwnershipRange()[0]
    M.destroy()
    bi, bj = numbering.bs[i], numbering.bs[j]
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr)) + first_row
    cols = cols.astype(np.int64)
    keep = coupling[rows % bi, cols % bj]
    rows, cols = rows[keep], cols[keep]
    global_rows = numbering.base(i, rows // bi) + rows % bi
    global_cols = numbering.base(j, cols // bj) + cols % bj
    return global_rows, global_cols


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
    n = numbering.local_size
    diagonal = np.arange(first, first + n, dtype=np.int64)
    rows, cols = [diagonal], [diagonal]
    for i, j, form, coupling in forms:
        r, c = _entries(form, coupling, i, j, numbering)
        rows.append(r)
        cols.append(c)
    row = np.concatenate(rows) - first
    col = np.concatenate(cols)
    order = np.lexsort((col, row))
    row, col = row[order], col[order]
    unique = np.ones(len(row), dtype=bool)
    unique[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
    row, col = row[unique], col[unique]
    indptr = np.zeros(n + 1, dtype=PETSc.IntType)
    np.cumsum(np.bincount(row, minlength=n), out=indptr[1:])
    N = numbering.global_size
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
