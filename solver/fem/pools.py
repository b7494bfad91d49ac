"""Conserved pools kept exact however early Newton stops.

For a pool's weights w (the reactions conserve it: wᵀN(U) ≡ 0; diffusion does not
change it: wᵀS = 0) the residual's pool balance wᵀF(U) = c0·wᵀM U + wᵀH is affine
in U, and zero exactly when the pool follows the time scheme (constant, for BDF
history of equal pools). What Newton leaves of it is the last linear solve's
residual: about GMRES's tolerance times the step's *first* residual when Newton stops
after one update (pools then drifted by 1e-11 over a short run). ``Balances.restore``
adds Zα, Z the pools' nodal weight vectors, with c0·(ZᵀM Z) α = −ZᵀF(U): a uniform
shift of each pool's species by about that residual, which leaves the iteration
error as it was. It restores the balance wᵀF, not the pool: a discretisation that
did not conserve (wᵀN ≠ 0) would still drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import SupportsFloat

from petsc4py import PETSc

import numpy as np


class Balances:
    """The nodal weight vectors of conserved pools and the inverse of c0-free ZᵀMZ.

    ``blocks``: the system's blocks (their ``species``, node-interleaved);
    ``x``: a vector of the system's layout; ``owned``: each block's first owned local
    entry (and the end); ``pools``: weights per species name; ``mass``: applies M.
    """

    def __init__(
        self,
        blocks: Sequence,
        x: PETSc.Vec,
        owned: Sequence[int],
        pools: Sequence[Mapping[str, SupportsFloat]],
        mass: Callable[[PETSc.Vec, PETSc.Vec], None],
    ) -> None:
        self.vectors: list[PETSc.Vec] = []
        for weights in pools:
            z = x.duplicate()
            z.set(0.0)
            with z.localForm() as local:
                for b, lo, hi in zip(blocks, owned, owned[1:], strict=False):
                    n = len(b.species)
                    for k, name in enumerate(b.species):
                        if name in weights:
                            local.array_w[lo + k : hi : n] = float(weights[name])
            self.vectors.append(z)
        gram = np.zeros((len(self.vectors), len(self.vectors)))
        Mz = x.duplicate()
        for j, z in enumerate(self.vectors):
            mass(z, Mz)
            for i, y in enumerate(self.vectors):
                gram[i, j] = y.dot(Mz)
        Mz.destroy()
        self.inverse = np.linalg.pinv(gram) if self.vectors else gram

    def restore(self, x: PETSc.Vec, F: PETSc.Vec, c0: float) -> None:
        """Zero the balances ZᵀF(x) (F: the residual at ``x``) by adding Zα to ``x``."""
        if not self.vectors:
            return
        balance = np.array([z.dot(F) for z in self.vectors])
        alpha = -(self.inverse @ balance) / c0
        x.maxpy(alpha, self.vectors)

    def destroy(self) -> None:
        """Free the vectors."""
        for z in self.vectors:
            z.destroy()
        self.vectors = []
