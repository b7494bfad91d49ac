"""UFL forms of the compartments' system, split by how often they change.

Unknowns: one blocked P1 function per compartment that holds species (on the
compartment's mesh, :mod:`solver.fem.geometry`), one component per species. The residual of a
step with BDF coefficients (c0, c1, c2) (already divided by dt, 1/s) is

    F(U) = K U + H + N(U)

- ``K``: c0·mass + diffusion, linear; the diffusion (stiffness) and the mass are
  assembled once, K = S + c0·M is formed from them whenever c0 changes,
- ``H``: M·(c1 U^n + c2 U^{n-1}), a product with the mass once per step,
- ``N``: reactions, and the surface fluxes that couple the compartments,
  assembled at every Newton iteration on the surfaces' facets (and on the cells
  only if there are volume reactions).

Every surface reaction enters the rows of the surface and of the volumes beside it
with the same integrand and quadrature, so conserved pools are exact. A reaction
with species of the volumes on both sides of a surface is integrated over the
surface's facets seen from both sides: the inside volume's functions and tests are
restricted to the ``"+"`` side, the outside volume's to ``"-"``.
dolfinx 0.11 constraints: pure membrane terms are submesh ``dx`` integrals (the
gradient of a submesh function inside a parent ``ds`` integral is wrong), and
constants belong to one mesh, so each has its twin on the other mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dolfinx
import numpy as np
import ufl
from dolfinx import fem
from ufl.algorithms import estimate_total_polynomial_degree
from ufl.algorithms.analysis import extract_coefficients, extract_constants
from ufl.corealg.traversal import unique_pre_traversal

from solver.fem.geometry import CellGeometry
from solver.model.model import COORDINATES, TIME, Compartment, Model, Reaction


def _constant(mesh: dolfinx.mesh.Mesh, value) -> fem.Constant:
    return fem.Constant(mesh, np.asarray(value, dtype=dolfinx.default_scalar_type))


@dataclass(eq=False)
class Block:
    """One compartment's share of the system: its space, states and forms."""

    compartment: Compartment
    species: list[str]
    space: fem.FunctionSpace
    u: fem.Function  # the unknown at the new time level
    history: list[fem.Function]  # U^n, U^{n-1}
    bdf: list[fem.Constant]  # c0, c1, c2 on this block's mesh (1/s)
    diffusivity: fem.Constant  # one per species, µm²/s

    @property
    def name(self) -> str:
        """The compartment's name."""
        return self.compartment.name

    def index(self, name: str) -> int:
        """Position of species ``name`` among this block's components."""
        return self.species.index(name)

    def component(self, k: int) -> tuple[fem.FunctionSpace, np.ndarray]:
        """Scalar P1 space of species ``k`` and the indices of its dofs in ``u``."""
        if len(self.species) == 1:  # a one-component element has no sub-elements
            space = fem.functionspace(self.space.mesh, ("Lagrange", 1))
            n = self.space.dofmap.index_map.size_local + self.space.dofmap.index_map.num_ghosts
            return space, np.arange(n, dtype=np.int32)
        space, dofs = self.space.sub(k).collapse()
        return space, np.asarray(dofs, dtype=np.int32).reshape(-1)


@dataclass(eq=False)
class SystemForms:
    """Compiled forms, indexed by block (0 = first compartment present)."""

    blocks: list[Block]
    stiffness: list[list[fem.Form | None]]  # S: diffusion, block-diagonal
    #: the mass of each block: its row sums ∫φ (a linear form) when lumped, else the
    #: consistent mass matrix (a bilinear form)
    mass: list[fem.Form]
    lumped: bool
    nonlinear: list[fem.Form | None]  # N rows
    jacobian: list[list[fem.Form | None]]  # the parts of dN/dU that change with U or t
    fixed: list[list[fem.Form | None]]  # the parts of dN/dU that never change
    time: fem.Constant  # t (s) on the cell mesh
    parameters: dict[str, fem.Constant]
    #: which species of block j each species of block i is coupled to, per form of
    #: ``jacobian`` and ``fixed`` (rows: block i's species, columns: block j's)
    couplings: dict[str, list[list[np.ndarray | None]]] | None = None


#: UFL nodes of polynomials in the unknowns, x, y, z and constants (Power: checked apart)
_POLYNOMIAL_NODES = {
    "Argument",
    "Coefficient",
    "ComponentTensor",
    "Constant",
    "FloatValue",
    "Function",
    "Indexed",
    "IndexSum",
    "IntValue",
    "ListTensor",
    "MultiIndex",
    "Product",
    "ScalarValue",
    "SpatialCoordinate",
    "Sum",
    "Zero",
}


def _polynomial(expr: object) -> bool:
    """Whether a rate is a polynomial, so that its estimated degree is exact.

    Polynomials are sums and products of unknowns, coordinates and constants, and whole
    non-negative powers.
    """
    if isinstance(expr, int | float):
        return True
    for node in unique_pre_traversal(expr):
        name = type(node).__name__
        if name == "Power":
            exponent = node.ufl_operands[1]
            if type(exponent).__name__ not in ("IntValue", "FloatValue", "ScalarValue"):
                return False
            value = float(exponent)
            if value < 0 or not value.is_integer():
                return False
        elif name not in _POLYNOMIAL_NODES:
            return False
    return True


def reaction_degree(
    rate: ufl.core.expr.Expr | float, test: ufl.core.expr.Expr, configured: int, affine: bool = True
) -> int:
    """Quadrature degree of a reaction term ``rate·test``.

    The configured degree, or the term's own degree when the rate is a polynomial of
    lower degree on an affine mesh (that rule is exact, and has fewer points).
    """
    if not affine or not _polynomial(rate):
        return configured
    return min(configured, estimate_total_polynomial_degree(rate * test))


def trial_components(derivative: ufl.Form, size: int) -> np.ndarray:
    """Which of the ``size`` components of the trial function ``derivative`` reads.

    A component is read when the trial function appears indexed by it; any other use
    (unindexed, a free index) counts as reading all of them.
    """
    read = np.zeros(size, dtype=bool)
    for integral in derivative.integrals():
        for node in unique_pre_traversal(integral.integrand()):
            for operand in node.ufl_operands:
                if not isinstance(operand, ufl.classes.Argument) or operand.number() != 1:
                    continue
                index: Any = node.ufl_operands[1] if isinstance(node, ufl.classes.Indexed) else ()
                fixed = all(isinstance(i, ufl.classes.FixedIndex) for i in index)
                if fixed and len(index) == 1:
                    read[int(index[0])] = True
                else:
                    read[:] = True
    return read


def _restricted(expr, side: str | None):
    """``expr`` seen from ``side`` ("+" or "-") of the facets, or as it is (None)."""
    return expr if side is None else expr(side)


def _where(
    reaction: Reaction, model: Model, geometry: CellGeometry, metadata: dict
) -> tuple[dict[str, str], ufl.Measure]:
    """The measure a reaction is integrated with, and the sides of its compartments.

    ``sides`` maps compartment names to the restriction of their functions ("+" or
    "-"), and is empty unless the reaction reads species of both volumes beside its
    surface (then it is integrated over the facets seen from both sides).
    """
    where = model.declared[reaction.location]
    if not where.surface:
        return {}, geometry.volume(where.name, **metadata)
    names = reaction.species | (reaction.rate.names & set(model.species))
    volumes = {model.species[n].compartment for n in names} & set(where.sides)
    if len(volumes) == 2:
        sides = {where.name: "+", where.inside: "+", where.outside: "-"}
        return sides, geometry.interface(where.name, **metadata)
    side = next(iter(volumes), where.inside)
    return {}, geometry.surface(where.name, side, **metadata)


def build(
    model: Model,
    geometry: CellGeometry,
    quadrature_degree: int = 4,
    extra_symbols: Mapping[str, object] | None = None,
    lumped: bool = True,
) -> SystemForms:
    """Spaces, functions and compiled forms for ``model`` on ``geometry``.

    ``extra_symbols`` adds UFL expressions (on the cell mesh) that expressions may
    use, such as stimulus fields. ``lumped``: the time derivative uses the lumped
    (diagonal, vertex-quadrature) mass matrix, so that a positive source never drives
    a neighbouring node negative (docs/numerics.md, Mass lumping); totals and pools are conserved
    either way, since a lumped row sums to the consistent row's sum.
    """
    mesh = geometry.mesh
    entity_maps = geometry.entity_maps
    blocks = []
    for compartment in model.compartments:
        names = [s.name for s in model.in_compartment(compartment.name)]
        on = geometry.regions[compartment.name].mesh
        space = fem.functionspace(on, ("Lagrange", 1, (len(names),)))
        u = fem.Function(space, name=compartment.name)
        past = [fem.Function(space) for _ in range(2)]
        bdf = [_constant(on, v) for v in (1.0, -1.0, 0.0)]
        D = _constant(on, [model.species[n].D for n in names])
        blocks.append(Block(compartment, names, space, u, past, bdf, D))

    t = _constant(mesh, 0.0)
    parameters = {k: _constant(mesh, v) for k, v in model.parameters.items()}
    x = ufl.SpatialCoordinate(mesh)
    symbols: dict[str, object] = {TIME: t, **parameters}
    for i, c in enumerate(COORDINATES):
        symbols[c] = x[i] if i < geometry.gdim else 0.0
    symbols.update(extra_symbols or {})
    tests = [ufl.TestFunction(b.space) for b in blocks]
    trials = [ufl.TrialFunction(b.space) for b in blocks]

    stiffness: list[list[fem.Form | None]] = [[None] * len(blocks) for _ in blocks]
    masses: list[fem.Form] = []
    for i, (b, v, du) in enumerate(zip(blocks, tests, trials, strict=True)):
        measure = geometry.own(b.name)
        diffusion = sum(
            b.diffusivity[k] * ufl.inner(ufl.grad(du[k]), ufl.grad(v[k]))
            for k in range(len(b.species))
        )
        stiffness[i][i] = fem.form(diffusion * measure)
        if lumped:  # the vertex rule: ∫ u φ_j = u_j ∫ φ_j
            ones = ufl.as_vector([1.0] * len(b.species))
            rule = geometry.own(b.name, quadrature_rule="vertex", quadrature_degree=1)
            masses.append(fem.form(ufl.inner(ones, v) * rule))
        else:
            masses.append(fem.form(ufl.inner(du, v) * measure))

    # N: minus the production of each species, tested in its own row. Each reaction's
    # share of the Jacobian is constant (only parameters, no unknowns, no time) or not:
    # constant shares join K, assembled once per step size, not at every iteration.
    n = len(blocks)
    rows: list[ufl.Form | None] = [None] * n
    constant: list[list[list[ufl.Form]]] = [[[] for _ in blocks] for _ in blocks]
    varying: list[list[list[ufl.Form]]] = [[[] for _ in blocks] for _ in blocks]
    couplings = {
        layer: [[np.zeros((len(a.species), len(b.species)), bool) for b in blocks] for a in blocks]
        for layer in ("fixed", "jacobian")
    }
    static = {id(c) for c in parameters.values()}
    block_of = {name: (i, b.index(name)) for i, b in enumerate(blocks) for name in b.species}
    affine = geometry.mesh.geometry.cmaps[0].degree == 1
    metadata = {"quadrature_degree": quadrature_degree}
    for reaction in model.reactions.values():
        sides, measure = _where(reaction, model, geometry, metadata)
        local = dict(symbols)
        for b in blocks:
            for k, name in enumerate(b.species):
                local[name] = _restricted(b.u[k], sides.get(b.name))
        if sides:  # two-sided: everything else is seen from the inside
            for name in (*COORDINATES, *(extra_symbols or {})):
                value = local[name]
                if isinstance(value, ufl.core.expr.Expr):
                    local[name] = value("+")
        rate = reaction.rate.to_ufl(local)
        degree = reaction_degree(rate, tests[0][0], quadrature_degree, affine)
        if degree != quadrature_degree:
            measure = measure.reconstruct(metadata={"quadrature_degree": degree})
        for name, nu in reaction.stoichiometry.items():
            i, k = block_of[name]
            term = -nu * rate * _restricted(tests[i][k], sides.get(blocks[i].name)) * measure
            rows[i] = term if rows[i] is None else rows[i] + term
            for j, b in enumerate(blocks):
                d = ufl.algorithms.expand_derivatives(ufl.derivative(term, b.u, trials[j]))
                if d.empty():
                    continue
                is_constant = not extract_coefficients(d) and all(
                    id(c) in static for c in extract_constants(d)
                )
                (constant if is_constant else varying)[i][j].append(d)
                layer = "fixed" if is_constant else "jacobian"
                couplings[layer][i][j][k] |= trial_components(d, len(b.species))

    def compile_sum(terms: list[ufl.Form]) -> fem.Form | None:
        return fem.form(sum(terms[1:], terms[0]), entity_maps=entity_maps) if terms else None

    nonlinear = [None if r is None else fem.form(r, entity_maps=entity_maps) for r in rows]
    jacobian = [[compile_sum(varying[i][j]) for j in range(n)] for i in range(n)]
    fixed = [[compile_sum(constant[i][j]) for j in range(n)] for i in range(n)]
    coupling = {
        layer: [
            [c if forms[i][j] is not None else None for j, c in enumerate(row)]
            for i, row in enumerate(couplings[layer])
        ]
        for layer, forms in (("fixed", fixed), ("jacobian", jacobian))
    }
    return SystemForms(
        blocks, stiffness, masses, lumped, nonlinear, jacobian, fixed, t, parameters, coupling
    )
