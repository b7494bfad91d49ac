"""When Newton may stop: a test tied to the error the time integrator allows.

A step of length dt may make a local error of (atol + rtol·|U|)·dt/T (T the output
interval, :mod:`solver.time.schemes`). Newton needs no more accuracy than a fraction
κ of that: it stops when the remaining iteration error, estimated from the last
update δ_k and the observed contraction rate ρ (as in CVODE, Hindmarsh et al. 2005),

    ‖δ_k‖ · min(1, ρ) ≤ κ,   ‖x‖ = RMS(x / (atol + rtol·|U_0|)) · T/dt,
    ρ = max(0.3·ρ_prev, ‖δ_k‖/‖δ_{k−1}‖)  (ρ = 1 before the second update),

is below it, with U_0 the initial iterate. Conserved pools do not depend on how far
Newton went: with wᵀN(U) ≡ 0 for a pool's weights w (the reactions conserve it) and
wᵀ(stiffness) = 0, wᵀF is affine in U, so after any Newton update δ with Jδ = −F + r
the pool residual is wᵀF(U + δ) = wᵀr, the linear solve's residual alone, and
:mod:`solver.fem.pools` zeroes it after each solve. Only the number of Newton updates
is cut; later updates are solved to the Krylov tolerance of the first residual
(``KrylovTest``), and that tolerance follows the size of the first update
(``Forcing``).

After the first update the rate is not known yet. Rather than always taking a second
update, the test then estimates it (``Estimate``): five GMRES iterations preconditioned
by the Jacobian's diagonal give δ̃_2 ≈ −J⁻¹F(U_1), whose weighted norm is the
remaining iteration error of U_1 (for a Newton method converging fast,
U* − U_1 ≈ δ_2), and U_1 is accepted when SAFETY·‖δ̃_2‖ ≤ κ. The estimate is tried
only while the last solve's second update was within 100 κ, so transients, which need
several updates anyway, do not pay for it.

The residual tolerances (``snes_atol``, ``snes_rtol``) still stop Newton when they are
met first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from petsc4py import PETSc

#: the rules a run file can choose (``[solver] newton``)
RULES = ("error", "residual")
#: U_1 is accepted when SAFETY·‖δ̃_2‖ ≤ κ (the estimate measured 0.6 to 1.1 of ‖δ_2‖)
SAFETY = 1.5
_REASON = PETSc.SNES.ConvergedReason


@dataclass(frozen=True)
class NewtonRule:
    """How Newton stops.

    ``rule``: ``"error"`` (the update against the time tolerances ``rtol``/``atol``,
    a fraction ``fraction`` of the error a step may make) or ``"residual"`` (PETSc's
    residual and step tolerances only: ``snes_rtol`` 1e-10, ``snes_atol`` 1e-13).
    """

    rule: str = "error"
    rtol: float = 1e-3
    atol: float = 1e-4
    fraction: float = 0.01


class ErrorTest:
    """A SNES convergence test that stops when the update is small against the time error.

    ``scale`` (T/dt of the step, set before each solve) turns the per-unknown tolerance
    into the allowance of the step. ``start`` takes the initial iterate (collective).
    """

    def __init__(self, rule: NewtonRule, x: PETSc.Vec, atol: float, rtol: float) -> None:
        self.rule = rule
        self.residual_atol = atol
        self.residual_rtol = rtol
        self.weights = x.duplicate()
        self._work = x.duplicate()
        self._size = x.getSize()
        self.scale = 1.0
        self.rate = 1.0
        self.ratio: float | None = None
        self._previous: float | None = None
        self._f0 = 0.0
        #: the weighted norm of each update of the last solve (for tests and reports)
        self.updates: list[float] = []
        #: estimates the second update from F(U_1) (None: never accept after one update)
        self.estimate: Callable[[PETSc.SNES], PETSc.Vec | None] | None = None
        #: the estimated ‖δ_2‖ of the last solve (None: not estimated)
        self.estimated: float | None = None
        #: ‖δ_2‖ (taken or estimated) of the last solve that had one
        self._second: float | None = None
        #: sets the Krylov tolerance from the size of the first update (None: fixed)
        self.forcing: Forcing | None = None

    def start(self, x: PETSc.Vec) -> None:
        """Weights 1/(atol + rtol·|x|) of the solve starting from ``x``."""
        w = self.weights
        x.copy(w)
        w.abs()
        w.scale(self.rule.rtol)
        w.shift(self.rule.atol)
        w.reciprocal()
        self.rate = 1.0
        self.ratio = None  # ‖δ_k‖/‖δ_{k−1}‖ of the last two updates
        self._previous = None
        self.updates = []
        self.estimated = None

    def norm(self, y: PETSc.Vec) -> float:
        """The weighted RMS of ``y`` times T/dt: 1 is the error a step may make."""
        self._work.pointwiseMult(y, self.weights)
        return float(self._work.norm()) / math.sqrt(self._size) * self.scale  # type: ignore[arg-type]

    def __call__(self, snes: PETSc.SNES, it: int, norms: tuple[float, float, float]) -> int:
        """The SNES reason after iteration ``it``: converged, diverged or iterating."""
        _, _, fnorm = norms
        if not math.isfinite(fnorm):
            return _REASON.DIVERGED_FUNCTION_NANORINF
        if it == 0:
            self._f0 = fnorm
        if fnorm <= self.residual_atol:
            return _REASON.CONVERGED_FNORM_ABS
        if it == 0:
            return _REASON.ITERATING
        if fnorm <= self.residual_rtol * self._f0:
            return _REASON.CONVERGED_FNORM_RELATIVE
        update = self.norm(snes.getSolutionUpdate())
        self.updates.append(update)
        if self._previous is not None:
            ratio = update / self._previous if self._previous > 0 else 0.0
            self.rate = max(0.3 * self.rate, ratio)
            self.ratio = ratio
        self._previous = update
        if it == 2:
            self._second = update
        if it == 1 and self.forcing is not None and self.forcing.tighten(snes.getKSP(), update):
            return _REASON.ITERATING  # the first solve was too loose for this update
        if update * min(1.0, self.rate) <= self.rule.fraction:
            return _REASON.CONVERGED_SNORM_RELATIVE
        if it == 1 and self._accept_first(snes):
            return _REASON.CONVERGED_SNORM_RELATIVE
        return _REASON.ITERATING

    def _accept_first(self, snes: PETSc.SNES) -> bool:
        """Whether U_1 is within the allowance: the estimated second update is small."""
        fraction = self.rule.fraction
        if self.estimate is None or (self._second is not None and self._second > 100 * fraction):
            return False
        update = self.estimate(snes)
        if update is None:  # the estimate failed: take the second update
            return False
        estimated = self.norm(update)
        self.estimated = self._second = estimated
        return SAFETY * estimated <= fraction

    def destroy(self) -> None:
        """Free the work vectors."""
        self.weights.destroy()
        self._work.destroy()


@dataclass
class Forcing:
    """The Krylov tolerance of a Newton solve, from the size of its first update.

    A linear solve stopped at the relative residual η leaves an error of about
    η·‖δ_1‖ in the update (measured on the fast exchange of the tests and on the
    11-species model with η = 1e-4, where it outweighs Newton's own error, in the norm
    of ``ErrorTest``: at most 11 η‖δ_1‖, median 0.3 and 0.8). That error is held to
    ``share`` (1 %) of Newton's allowance κ: η = share·κ/‖δ_1‖, between the
    configured ``ksp_rtol`` (``floor``, which it never undercuts) and ``ceiling``.
    ‖δ_1‖ is taken from the last solve (the update of a step is about T·|dU/dt| in
    this norm, whatever the step size); the first solve, and any after a failure, use
    the floor. When the first update turns out larger
    than expected, so that its linear error may exceed the share, the tolerance is
    tightened and Newton takes another update, whose solve reduces the residual to
    the tighter tolerance (``KrylovTest``), so the linear error keeps to its share when
    a step's update jumps (an event, a stimulus switched on).
    """

    floor: float
    fraction: float
    ceiling: float = 1e-4
    share: float = 0.01
    expected: float | None = None  # ‖δ_1‖ of the last solve

    def _need(self, update: float) -> float:
        wanted = self.share * self.fraction / update if update > 0 else self.ceiling
        return min(self.ceiling, max(self.floor, wanted))

    def rtol(self) -> float:
        """The Krylov tolerance of the next solve's first update."""
        return self.floor if self.expected is None else self._need(self.expected)

    def apply(self, ksp: PETSc.KSP) -> None:
        """Set ``ksp`` to the tolerance of the next solve's first update."""
        ksp.setTolerances(rtol=self.rtol())

    def describe(self) -> dict[str, object]:
        """The rule, as a run's record states it."""
        rule = f"{self.share:g} * newton_fraction / |delta_1|"
        return {"from_first_update": rule, "min": self.floor, "max": self.ceiling}

    def tighten(self, ksp: PETSc.KSP, update: float) -> bool:
        """After the first update ``update``: tighten ``ksp`` if it was solved too loosely."""
        self.expected = update
        used = ksp.getTolerances()[0]
        need = self._need(update)
        if used <= 2 * need:
            return False
        ksp.setTolerances(rtol=need)
        return True

    def reset(self) -> None:
        """Solve the next step with the floor (after a failed solve)."""
        self.expected = None


@dataclass
class Reuse:
    """When a Newton iteration may keep the preconditioner of an earlier Jacobian.

    Setting up the preconditioner (multigrid hierarchies, ILU factors) costs about as
    much as a few linear solves, while the Jacobian changes little between Newton
    iterations and between steps of the same size. The preconditioner of an earlier
    Jacobian is kept (GMRES still solves with the current one, to the same tolerance)
    until the Krylov iterations it costs beyond those of the first solve after its
    set-up add up to ``budget`` (about what a set-up costs, in iterations), until one
    solve takes more than ``growth`` times that first count plus ``slack``, or until
    c0 = (BDF coefficient of the new state)/dt moved by more than the factor
    ``change`` from the set-up's. The solution does not depend on it beyond the Krylov
    tolerance.
    """

    budget: int = 40
    growth: float = 2.0
    slack: int = 3
    change: float = 2.0
    c0: float | None = None  # of the last set-up
    baseline: int | None = None  # Krylov iterations of the first solve after it
    extra: int = 0  # Krylov iterations beyond the baseline since
    lagged: bool = False  # the last decision kept an earlier preconditioner
    setups: int = 0

    def rebuild(self, c0: float, iterations: int | None) -> bool:
        """Whether to set the preconditioner up anew for the Jacobian at ``c0``.

        ``iterations``: the Krylov iterations of the last linear solve (None: none yet).
        """
        if self.c0 is not None and iterations is not None:
            if self.baseline is None:
                self.baseline = iterations  # the first solve after a set-up
            else:
                self.extra += max(0, iterations - self.baseline)
        stale = self.c0 is None or not (self.c0 / self.change <= c0 <= self.c0 * self.change)
        if not stale and self.baseline is not None and iterations is not None:
            stale = self.extra >= self.budget
            stale = stale or iterations > self.growth * self.baseline + self.slack
        if stale:
            self.c0, self.baseline, self.extra = c0, None, 0
            self.setups += 1
        self.lagged = not stale
        return stale

    def reset(self) -> None:
        """Set up at the next Jacobian (after a failed solve)."""
        self.c0 = self.baseline = None
        self.extra = 0
        self.lagged = False


@dataclass
class Lag:
    """When a Newton iteration may use the Jacobian assembled at an earlier iterate.

    Newton then takes chord steps, δ = −J(U_old)⁻¹F(U): still exactly conservative
    (wᵀJ(U) = wᵀK for every U when the reactions conserve a pool, so wᵀF(U + δ) is the
    linear solve's residual, as with the exact Jacobian), and as accurate, since
    Newton stops on the same test; only the convergence rate can suffer. The Jacobian
    is assembled anew when an update contracted by less than ``max_ratio``
    (‖δ_k‖/‖δ_{k−1}‖) and at the first iteration of every ``max_solves``-th Newton solve.
    The default, 1, assembles it at the start of every step: a step's result then
    depends only on the states it starts from, so a run continued from a checkpoint,
    or on another number of ranks, takes the same Newton steps (keeping it across
    steps saves another 15 % on the 11-species model, but a restart would not
    reproduce the run beyond Newton's tolerance). A change of c0 within a solve is
    added exactly, as (c0 − c0_old)·M.
    """

    max_ratio: float = 0.1
    max_solves: int = 1
    assembled_at: int | None = None  # the number of the solve of the last assembly
    assemblies: int = 0

    def fresh(self, solve: int, ratio: float | None) -> bool:
        """Whether to assemble the Jacobian in solve number ``solve``.

        ``ratio``: the contraction of the last two updates of this solve (None if fewer).
        """
        stale = self.assembled_at is None or solve - self.assembled_at >= self.max_solves
        stale = stale or (ratio is not None and ratio > self.max_ratio)
        if stale:
            self.assembled_at = solve
            self.assemblies += 1
        return stale

    def reset(self) -> None:
        """Assemble at the next Jacobian."""
        self.assembled_at = None


class Estimate:
    """The second Newton update, estimated by a few Jacobi-preconditioned GMRES iterations.

    A KSP of its own on the Jacobian of the first update, preconditioned by its
    diagonal and stopped after exactly ``iterations`` iterations, so the estimate, and
    with it the decision to stop, depends only on the step's states: not on the
    Newton solver's preconditioner, which is kept across steps and depends on the
    partition. A run continued from a checkpoint or on another number of ranks then
    takes the same number of Newton updates in every step. Measured on the 11-species
    model, five iterations give 0.72 to 1.10 of the exact second update, on the 2-D
    default 0.61 to 0.96 (ten do no better: what Jacobi misses is smooth), on the
    exchange benchmark 1.00; each costs about one matrix-vector product.
    """

    def __init__(self, A: PETSc.Mat, F: PETSc.Vec, iterations: int = 5) -> None:
        self.ksp = PETSc.KSP().create(A.getComm())
        self.ksp.setOperators(A, A)
        self.ksp.setType(PETSc.KSP.Type.GMRES)
        self.ksp.setGMRESRestart(iterations)  # as many Krylov vectors as it uses
        self.ksp.getPC().setType(PETSc.PC.Type.JACOBI)
        self.ksp.setTolerances(max_it=iterations)
        self.ksp.setConvergenceTest(self._test)  # type: ignore[arg-type]
        self.residual = F  # where SNES keeps the residual of its current iterate
        self.update = F.duplicate()
        #: Krylov iterations spent on estimates (reported by the benchmarks; not in the
        #: steps' Krylov counts, which are the Newton solver's)
        self.iterations = 0
        self._max_it = iterations

    def _test(self, ksp: PETSc.KSP, it: int, rnorm: float) -> int:
        """Exactly ``max_it`` iterations (fewer only when the residual vanishes)."""
        if not math.isfinite(rnorm):
            return PETSc.KSP.ConvergedReason.DIVERGED_NANORINF
        if it >= self._max_it or rnorm == 0.0:
            return PETSc.KSP.ConvergedReason.CONVERGED_ITS
        return PETSc.KSP.ConvergedReason.ITERATING

    def __call__(self, snes: PETSc.SNES) -> PETSc.Vec | None:
        """δ̃_2 with J δ̃_2 ≈ −F(U_1) (the sign does not matter to its norm)."""
        self.update.set(0.0)
        try:
            self.ksp.solve(self.residual, self.update)
        except PETSc.Error:
            return None
        self.iterations += self.ksp.getIterationNumber()
        reason: int = self.ksp.getConvergedReason()  # type: ignore[assignment]
        if reason < 0:
            return None
        return self.update

    def destroy(self) -> None:
        """Free the KSP and the vector."""
        self.ksp.destroy()
        self.update.destroy()


class KrylovTest:
    """GMRES's stopping test within a Newton solve: relative to the solve's first residual.

    PETSc stops each linear solve at ``rtol`` times its own initial residual. Later
    Newton updates start from a residual F(U_k) many times smaller than F(U_0), and
    solving them to ``rtol`` of it buys accuracy nothing uses: the update's error is
    then far below that of the first update, which stays as it was. Here every solve of
    a Newton solve stops at ``rtol`` times the larger of its own initial residual and
    the first solve's (the preconditioned norms GMRES monitors), or at ``atol``. The
    pools do not depend on it (their balances are restored after each solve,
    :mod:`solver.fem.pools`).
    """

    def __init__(self, snes: PETSc.SNES) -> None:
        self.snes = snes
        self._first = 0.0
        self._r0 = 0.0

    def __call__(self, ksp: PETSc.KSP, it: int, rnorm: float) -> int:
        """The KSP reason after iteration ``it`` with residual norm ``rnorm``."""
        rtol, atol, dtol, _ = ksp.getTolerances()
        if not math.isfinite(rnorm):
            return PETSc.KSP.ConvergedReason.DIVERGED_NANORINF
        if it == 0:
            self._r0 = rnorm
            if self.snes.getIterationNumber() == 0:
                self._first = rnorm
        if rnorm <= max(rtol * max(self._r0, self._first), atol):
            return PETSc.KSP.ConvergedReason.CONVERGED_RTOL
        if dtol is not None and rnorm > dtol * self._r0 > 0:
            return PETSc.KSP.ConvergedReason.DIVERGED_DTOL
        return PETSc.KSP.ConvergedReason.ITERATING
