"""The discretised system: blocked matrices and vectors, and its Newton solver.

One monolithic Newton solve (PETSc SNES) per time step over all compartments, with
the exact Jacobian of the step's first iterate (chord steps after it while they
contract fast) and, by default, a stopping test tied to the time integrator's error
(:mod:`solver.fem.newton`). The matrix is a single AIJ matrix with one block per
compartment, holding only the species pairs the forms couple
(:mod:`solver.fem.pattern`); the default linear solver is GMRES preconditioned by a
multiplicative field split, one split per compartment: algebraic multigrid (GAMG) on
each volume, which measured fastest and robust on the target problems, and additive
Schwarz/ILU(0) on each surface (see ``_configure``), the preconditioner kept across
iterations and steps while it serves. Any PETSc option can be overridden under this
problem's options prefix.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import SupportsFloat, cast

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx.fem.petsc as fem_petsc
import numpy as np
from dolfinx import cpp as _cpp
from dolfinx import fem

from solver.errors import InputError
from solver.fem import pattern
from solver.fem.forms import SystemForms
from solver.fem.newton import ErrorTest, Estimate, Forcing, KrylovTest, Lag, NewtonRule, Reuse
from solver.fem.pools import Balances

log = logging.getLogger(__name__)

#: petsc4py's stubs type the MatStructure constants as int
_SAME = cast("PETSc.Mat.Structure", PETSc.Mat.Structure.SAME_NONZERO_PATTERN)

_counter = itertools.count()

#: Newton settings shared by every linear-solver family. ``snes_atol`` is an
#: absolute residual (µM·µm³/s); conserved totals drift at most by about dt·atol.
#: ``snes_stol`` stops when the Newton update is round-off relative to the state,
#: near steady states where the residual cannot fall below round-off.
NEWTON_DEFAULTS = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": "1e-10",
    "snes_atol": "1e-13",
    "snes_stol": "1e-12",
    "snes_max_it": "25",
}
ITERATIVE_DEFAULTS = {
    "ksp_type": "gmres",
    "ksp_rtol": "1e-9",
    "ksp_atol": "1e-16",
    "ksp_gmres_restart": "100",
    "ksp_max_it": "500",
}
DIRECT_DEFAULTS = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


@dataclass
class SolveInfo:
    """Outcome of one Newton solve."""

    converged: bool
    newton_iterations: int
    linear_iterations: int
    reason: str


class Problem:
    """Blocked nonlinear system F(U) = K U + H + N(U) = 0 for one time step."""

    def __init__(
        self,
        forms: SystemForms,
        linear: str = "iterative",
        petsc_options: Mapping[str, str] | None = None,
        newton: NewtonRule | None = None,
        reuse: bool = True,
    ) -> None:
        self.forms = forms
        self.newton = newton or NewtonRule()
        blocks = forms.blocks
        self.comm: MPI.Comm = blocks[0].space.mesh.comm
        self.prefix = f"polarity_{next(_counter)}_"
        spaces = [b.space for b in blocks]
        maps = [(V.dofmap.index_map, V.dofmap.index_map_bs) for V in spaces]
        self._is_local = _cpp.la.petsc.create_index_sets(maps)

        # one pattern for every matrix: the entries the forms can fill (solver.fem.pattern)
        n = len(blocks)
        diagonal = [np.eye(len(b.species), dtype=bool) for b in blocks]
        entries: list[tuple[int, int, fem.Form | None, np.ndarray | None]]
        entries = [(i, i, forms.stiffness[i][i], diagonal[i]) for i in range(n)]
        if not forms.lumped:
            entries += [(i, i, forms.mass[i], diagonal[i]) for i in range(n)]
        couplings = forms.couplings or {}
        for layer in ("jacobian", "fixed"):
            for i, row in enumerate(getattr(forms, layer)):
                for j, a in enumerate(row):
                    if a is not None:
                        entries.append((i, j, a, couplings[layer][i][j]))
        present = [(i, j, a, c) for i, j, a, c in entries if a is not None and c is not None]
        self.A, self.numbering = pattern.create(spaces, present, self.comm)
        #: S: diffusion; S_J = S + the constant part of dN/dU (assembled once)
        self.S = self._duplicate()
        has_fixed = any(a is not None for row in forms.fixed for a in row)
        self.S_J = self._duplicate() if has_fixed else self.S
        #: K = S + c0·M, the residual's linear part, is applied as S x + c0·M x, and the
        #: Jacobian starts from S_J + c0·M: no matrix per step size
        self.x = fem_petsc.create_vector(spaces, kind="mpi")
        self.b = fem_petsc.create_vector(spaces, kind="mpi")
        self.h = fem_petsc.create_vector(spaces, kind="mpi")
        self.r = fem_petsc.create_vector(spaces, kind="mpi")
        #: local offsets of each block's owned and ghost entries (set by create_vector)
        self._blocks = cast("tuple[tuple[int, ...], tuple[int, ...]]", self.x.getAttr("_blocks"))
        for v in (self.b, self.h, self.r):
            v.setAttr("_blocks", self._blocks)
        #: the mass: a vector of row sums (lumped) or a matrix (consistent)
        self.m: PETSc.Vec | None = None
        self.M: PETSc.Mat | None = None
        self._work = self.x.duplicate()
        self._assemble_constant()
        self._c0: float | None = None
        #: no reaction term of the Jacobian depends on the state: J = S_J + c0·M for each c0
        self._constant_jacobian = all(a is None for row in forms.jacobian for a in row)
        self._jacobian_c0: float | None = None  # c0 of the Jacobian in self.A
        self._solves = 0  # Newton solves so far
        #: conserved pools whose balances are restored after each solve (``conserve``)
        self._pools: Balances | None = None
        #: wall seconds spent in residual and Jacobian assembly and in SNES solves
        self.timers = {"residual": 0.0, "jacobian": 0.0, "linear_matrix": 0.0, "snes": 0.0}

        snes = PETSc.SNES().create(self.comm)
        snes.setOptionsPrefix(self.prefix)
        snes.setFunction(self._residual, self.b)
        #: the matrix the preconditioner is built from: A itself, or (when it may be
        #: kept across iterations) a copy of A taken when it is set up anew
        self.P = self.A
        self.snes: PETSc.SNES | None = snes  # None after destroy()
        self.options: dict[str, str] = {}
        self.error_test: ErrorTest | None = None
        #: estimates Newton's second update, to stop after the first (error rule only)
        self.estimate: Estimate | None = None
        #: keeps the preconditioner across Newton iterations and steps (None: never)
        self.reuse: Reuse | None = None
        #: keeps the Jacobian across Newton iterations and steps (None: never)
        self.lag: Lag | None = None
        try:
            self._configure(snes, linear, dict(petsc_options or {}))
        except PETSc.Error as err:  # e.g. a solver or preconditioner type PETSc lacks
            self.destroy()
            reason = _petsc_reason(err)
            raise InputError("solver.petsc", f"PETSc refused the options: {reason}") from None
        #: the linear solver iterates (GMRES & co.), rather than applying LU once
        self.krylov = self.options.get("ksp_type") not in ("preonly", "none")
        lagging = any(k.startswith(("snes_lag", "ksp_reuse")) for k in self.options)
        if reuse and self.krylov and not lagging and not self._constant_jacobian:
            self.reuse = Reuse()
            self.P = self._duplicate()
        snes.setJacobian(self._jacobian, self.A, self.P)
        if self.newton.rule == "error":
            atol, rtol = float(self.options["snes_atol"]), float(self.options["snes_rtol"])
            self.error_test = ErrorTest(self.newton, self.x, atol, rtol)
            self.estimate = Estimate(self.A, self.b)
            self.error_test.estimate = self.estimate
            if self.krylov:  # later Newton updates solved to rtol of the first residual
                self._krylov_test = KrylovTest(snes)
                snes.getKSP().setConvergenceTest(self._krylov_test)  # type: ignore[arg-type]
                if "ksp_rtol" not in (petsc_options or {}):  # a given tolerance is kept
                    floor = float(self.options["ksp_rtol"])
                    self.error_test.forcing = Forcing(floor, self.newton.fraction)
            if self.reuse is not None:  # chord steps need a Newton that stops on the update
                self.lag = Lag()
            # petsc4py's stubs want the ConvergedReason class; the reasons are ints
            snes.setConvergenceTest(self.error_test)  # type: ignore[arg-type]

    # -- PETSc set-up ----------------------------------------------------------
    def _configure(self, snes: PETSc.SNES, linear: str, user: dict[str, str]) -> None:
        blocks = self.forms.blocks
        options = dict(NEWTON_DEFAULTS)
        if linear == "direct":
            options.update(DIRECT_DEFAULTS)
        else:
            options.update(ITERATIVE_DEFAULTS)
            # one rank: additive Schwarz is block-Jacobi, without the overlapped copy
            schwarz = "asm" if self.comm.size > 1 else "bjacobi"
            if len(blocks) == 1:
                options["pc_type"] = schwarz if blocks[0].compartment.surface else "gamg"
            else:
                options["pc_type"] = "fieldsplit"
                options["pc_fieldsplit_type"] = "multiplicative"
                # volumes: diffusion-dominated, algebraic multigrid; surfaces: thin,
                # their blocks mass-dominated and holding species without diffusion,
                # where GAMG's aggregation breaks down: additive Schwarz with one layer
                # of overlap and ILU(0) per rank (block-Jacobi/ILU(0) needed 27 % more
                # Krylov iterations on 2 ranks than on 1; with the overlap, as many)
                for b in blocks:
                    options[f"fieldsplit_{b.name}_ksp_type"] = "preonly"
                    options[f"fieldsplit_{b.name}_pc_type"] = (
                        schwarz if b.compartment.surface else "gamg"
                    )
        options.update(user)
        self.options = options
        db = PETSc.Options()
        for key, value in options.items():
            db.setValue(self.prefix + key, value)
        ksp = snes.getKSP()
        ksp.setOperators(self.A)
        if options.get("pc_type") == "fieldsplit":
            pc = ksp.getPC()
            pc.setType("fieldsplit")
            pc.setFieldSplitIS(*self.field_index_sets())
        # the options stay in the database until destroy(): a field split reads
        # its sub-solver options only when it is first set up
        snes.setFromOptions()

    def field_index_sets(self) -> list[tuple[str, PETSc.IS]]:
        """Global index sets of each compartment's owned rows (from the ownership range)."""
        start, _ = self.A.getOwnershipRange()
        sets = []
        offsets = self._blocks[0]
        for b, lo, hi in zip(self.forms.blocks, offsets, offsets[1:], strict=False):
            index_set = PETSc.IS().createStride(
                hi - lo,
                first=start + lo,
                step=1,
                comm=self.comm,  # type: ignore[arg-type]  # petsc4py takes mpi4py comms
            )
            index_set.setBlockSize(b.space.dofmap.index_map_bs)
            sets.append((b.name, index_set))
        return sets

    # -- assembly --------------------------------------------------------------
    def _duplicate(self) -> PETSc.Mat:
        """A zero matrix with the pattern (and local-to-global map) of ``A``."""
        M = self.A.duplicate(copy=False)
        pattern.freeze(M)
        return M

    def _assemble_constant(self) -> None:
        """S, S_J and the mass: the parts of the system that never change."""
        forms = self.forms
        self._assemble_matrix(self.S, forms.stiffness)
        self.S.assemble()
        if self.S_J is not self.S:
            self.S.copy(self.S_J, _SAME)
            self._assemble_matrix(self.S_J, forms.fixed)
            self.S_J.assemble()
        if forms.lumped:
            self.m = self.x.duplicate()
            self.m.setAttr("_blocks", self._blocks)
            self._assemble_vector(self.m, forms.mass)
        else:
            self.M = self._duplicate()
            n = len(forms.blocks)
            diagonal = [[forms.mass[i] if i == j else None for j in range(n)] for i in range(n)]
            self._assemble_matrix(self.M, diagonal)
            self.M.assemble()

    def _add_mass(self, out: PETSc.Mat, c0: float) -> None:
        """Add c0·M to ``out``."""
        if self.m is not None:
            self.m.copy(self._work)
            self._work.scale(c0)
            out.setDiagonal(self._work, addv=PETSc.InsertMode.ADD)  # type: ignore[arg-type]
        else:
            assert self.M is not None
            out.axpy(c0, self.M, _SAME)

    def _assemble_matrix(self, A: PETSc.Mat, forms) -> None:
        """Add the blocks of ``forms`` into ``A`` (None blocks are skipped)."""
        for i, row in enumerate(forms):
            for j, a in enumerate(row):
                if a is None:
                    continue
                sub = A.getLocalSubMatrix(self._is_local[i], self._is_local[j])
                _cpp.fem.petsc.assemble_matrix(
                    sub, a._cpp_object, fem.pack_constants(a), fem.pack_coefficients(a), [], True
                )
                A.restoreLocalSubMatrix(self._is_local[i], self._is_local[j], sub)

    def _assemble_vector(self, b: PETSc.Vec, forms) -> None:
        """Zero ``b``, add the block forms (None skipped), accumulate ghosts."""
        owned, ghosts = self._blocks
        with b.localForm() as local:
            local.set(0.0)
            for i, L in enumerate(forms):
                if L is None:
                    continue
                n = owned[i + 1] - owned[i]
                values = np.zeros(n + ghosts[i + 1] - ghosts[i], dtype=PETSc.ScalarType)
                fem.assemble._assemble_vector_array(values, L)
                local.array_w[owned[i] : owned[i + 1]] += values[:n]
                local.array_w[ghosts[i] : ghosts[i + 1]] += values[n:]
        # petsc4py's stubs type the InsertMode and ScatterMode constants as int
        b.ghostUpdate(
            addv=PETSc.InsertMode.ADD,  # type: ignore[arg-type]
            mode=PETSc.ScatterMode.REVERSE,  # type: ignore[arg-type]
        )

    def _to_functions(self, x: PETSc.Vec) -> None:
        x.ghostUpdate(
            addv=PETSc.InsertMode.INSERT,  # type: ignore[arg-type]
            mode=PETSc.ScatterMode.FORWARD,  # type: ignore[arg-type]
        )
        # the (Vec, functions) variant of the singledispatch function assign
        fem_petsc.assign(x, [b.u for b in self.forms.blocks])  # type: ignore[arg-type]

    def _residual(self, snes, x: PETSc.Vec, F: PETSc.Vec) -> None:
        t0 = time.perf_counter()
        self._to_functions(x)
        self._assemble_vector(self.r, self.forms.nonlinear)
        # F = S x + (c0·M x + H + N), K x = S x + c0·M x
        self._apply_mass(x, self._work)
        self._work.scale(float(self._c0 or 0.0))
        self._work.maxpy([1.0, 1.0], [self.h, self.r])
        self.S.multAdd(x, self._work, F)
        self.timers["residual"] += time.perf_counter() - t0

    def _jacobian(self, snes, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        c0 = float(self._c0 or 0.0)
        if self._constant_jacobian and self._jacobian_c0 == c0:
            # J = S_J + c0·M as last time: left untouched, so PETSc keeps the preconditioner
            # (a linear problem sets up GAMG once per step size, not at every iteration)
            return
        t0 = time.perf_counter()
        ratio = self.error_test.ratio if self.error_test is not None else None
        if self.lag is None or self.lag.fresh(self._solves, ratio):
            self._to_functions(x)
            self.S_J.copy(J, _SAME)
            self._assemble_matrix(J, self.forms.jacobian)
            J.assemble()
            self._add_mass(J, c0)
        elif c0 != self._jacobian_c0:  # a chord step: the Jacobian of an earlier iterate
            self._add_mass(J, c0 - float(self._jacobian_c0 or 0.0))
        self._jacobian_c0 = c0
        if P is not J and self.reuse is not None:
            # the preconditioner is built from P: left as it is, PETSc keeps it
            solved = self._solves > 1 or snes.getIterationNumber() > 0
            last = snes.getKSP().getIterationNumber() if solved else None
            if self.reuse.rebuild(c0, last):
                J.copy(P, _SAME)
        self.timers["jacobian"] += time.perf_counter() - t0

    # -- time step ------------------------------------------------------------
    def prepare_step(self) -> None:
        """The step's c0 and the history vector H.

        H = M·(c1 U^n + c2 U^{n-1}), from the blocks' past states.
        """
        t0 = time.perf_counter()
        blocks = self.forms.blocks
        c0, c1, c2 = (float(c.value) for c in blocks[0].bdf)
        self._c0 = c0
        owned = self._blocks[0]
        with self._work.localForm() as local:
            for b, lo, hi in zip(blocks, owned, owned[1:], strict=False):
                past = b.history
                local.array_w[lo:hi] = (
                    c1 * past[0].x.array[: hi - lo] + c2 * past[1].x.array[: hi - lo]
                )
        self._apply_mass(self._work, self.h)
        self.timers["linear_matrix"] += time.perf_counter() - t0

    def solve(self, error_scale: float = 1.0) -> SolveInfo:
        """Solve F(U) = 0 from the current functions as initial guess; U is updated.

        ``error_scale``: T/dt of the step (the error rule's allowance, see
        :mod:`solver.fem.newton`).
        """
        snes = self.snes
        if snes is None:
            raise RuntimeError("the problem was destroyed")
        self.prepare_step()
        fem_petsc.assign([b.u for b in self.forms.blocks], self.x)
        forcing = self.error_test.forcing if self.error_test is not None else None
        if self.error_test is not None:
            self.error_test.scale = error_scale
            self.error_test.start(self.x)
        if forcing is not None:
            forcing.apply(snes.getKSP())
        t0 = time.perf_counter()
        start = self.x.copy() if self.reuse is not None else None
        self._solves += 1
        snes.solve(None, self.x)
        # an int at run time; petsc4py's stubs say the ConvergedReason class
        reason: int = snes.getConvergedReason()  # type: ignore[assignment]
        newton, krylov = snes.getIterationNumber(), snes.getLinearSolveIterations()
        if reason <= 0 and start is not None and self.reuse is not None and self._kept():
            # a kept preconditioner or Jacobian may have failed: again, with new ones
            self.reuse.reset()
            if self.lag is not None:
                self.lag.reset()
            start.copy(self.x)
            if forcing is not None:
                forcing.reset()
                forcing.apply(snes.getKSP())
            if self.error_test is not None:
                self.error_test.start(self.x)
            snes.solve(None, self.x)
            reason = snes.getConvergedReason()  # type: ignore[assignment]
            newton += snes.getIterationNumber()
            krylov += snes.getLinearSolveIterations()
        if reason <= 0 and forcing is not None:
            forcing.reset()  # the next attempt solves tightly
        if start is not None:
            start.destroy()
        if reason > 0 and self._pools is not None and self._c0:
            # b holds F(U) of the solution: SNES's last residual
            self._pools.restore(self.x, self.b, self._c0)
        self.timers["snes"] += time.perf_counter() - t0
        self._to_functions(self.x)
        return SolveInfo(
            converged=reason > 0,
            newton_iterations=newton,
            linear_iterations=krylov,
            reason=_reason_name(reason),
        )

    def conserve(self, pools: list[Mapping[str, SupportsFloat]]) -> None:
        """Restore these conserved pools' balances after each solve (:mod:`solver.fem.pools`)."""
        if self._pools is not None:
            self._pools.destroy()
        self._pools = Balances(self.forms.blocks, self.x, self._blocks[0], pools, self._apply_mass)

    def _apply_mass(self, x: PETSc.Vec, out: PETSc.Vec) -> None:
        """M x into ``out`` (lumped: the row sums times x)."""
        if self.m is not None:
            out.pointwiseMult(self.m, x)
        else:
            assert self.M is not None
            self.M.mult(x, out)

    def _kept(self) -> bool:
        """Whether the last Newton solve used a kept preconditioner or Jacobian."""
        lagged = self.lag is not None and self.lag.assembled_at != self._solves
        return lagged or (self.reuse is not None and self.reuse.lagged)

    @property
    def unknowns(self) -> int:
        """The global number of unknowns (all blocks, all ranks)."""
        return self.x.getSize()

    def destroy(self) -> None:
        """Free the PETSc objects and this problem's options (collective)."""
        if self.snes is None:
            return
        db = PETSc.Options()
        for key in self.options:
            db.delValue(self.prefix + key)
        objects: list[PETSc.Object | None] = [self.snes, self.A, self.P, self.S, self.S_J]
        objects += [self.M, self.m, self.x, self.b, self.h, self.r, self._work]
        for obj in {id(o): o for o in objects if o is not None}.values():
            obj.destroy()
        if self.error_test is not None:
            self.error_test.destroy()
        if self.estimate is not None:
            self.estimate.destroy()
        if self._pools is not None:
            self._pools.destroy()
        self.snes = None


def _petsc_reason(err: Exception) -> str:
    """The last line of a PETSc error: what it could not do (e.g. an unknown type)."""
    lines = [line.split("] ", 1)[-1].strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else f"error {err}"


def _reason_name(reason: int) -> str:
    for name in dir(PETSc.SNES.ConvergedReason):
        if not name.startswith("_") and getattr(PETSc.SNES.ConvergedReason, name) == reason:
            return name
    return str(reason)
