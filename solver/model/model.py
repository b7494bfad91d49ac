"""The model: species, compartments and reactions, a pure description.

Nothing here knows about meshes or PETSc. Units are the solver's: µm, s, µM for
species of a volume compartment and µM·µm (surface density) for species of a
surface. A reaction ``rate`` is a volume rate (µM/s) for a reaction in a volume and
a flux density (µM·µm/s) for a reaction on a surface (which may change species of
the volumes on either side); the stoichiometric coefficients multiply it.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from solver.errors import InputError
from solver.model.expressions import Expression
from solver.model.stimulus import Stimulus

#: Names every expression may use besides parameters, species and stimuli.
COORDINATES = ("x", "y", "z")
TIME = "t"


class Kind(enum.StrEnum):
    """What a compartment is: a region of the mesh or a set of its facets."""

    VOLUME = "volume"
    SURFACE = "surface"


#: the names of the two compartments of a run file without ``[compartments]``
CYTOSOL = "cytosol"
MEMBRANE = "membrane"


@dataclass(frozen=True)
class Compartment:
    """A volume (cells of the mesh) or a surface (facets) that species live in.

    A surface lies between the volume ``inside`` and the volume ``outside``, or, with
    ``outside`` empty, on the outer boundary of ``inside`` (the cell membrane of a
    cell without a medium around it).
    """

    name: str
    kind: Kind
    inside: str = ""
    outside: str = ""

    @property
    def surface(self) -> bool:
        """Whether the compartment is a surface."""
        return self.kind is Kind.SURFACE

    @property
    def sides(self) -> tuple[str, ...]:
        """The volumes on the two sides of a surface (inside first); () for a volume."""
        return tuple(v for v in (self.inside, self.outside) if v)


#: the compartments of a run file without ``[compartments]``: the cytosol and its boundary
DEFAULT_COMPARTMENTS: Mapping[str, Compartment] = {
    CYTOSOL: Compartment(CYTOSOL, Kind.VOLUME),
    MEMBRANE: Compartment(MEMBRANE, Kind.SURFACE, inside=CYTOSOL),
}


#: the unit of a species' numbers unless it declares one: µM in a volume, µM·µm
#: (a surface density) on a surface
SPECIES_UNITS = {Kind.VOLUME: "uM", Kind.SURFACE: "uM*um"}


@dataclass(frozen=True)
class Species:
    """A chemical species.

    ``D`` is the diffusion coefficient (µm²/s; surface diffusion on the membrane).
    ``initial`` is a value in the species' unit (:attr:`units`: µM, or µM·µm on the
    membrane, unless the run file declares another) or an expression in ``x, y, z`` and
    parameters; ``noise`` multiplies it by 1 + noise·ξ(x)
    with ξ uniform in [−1, 1], a fixed function of position (the same on any number of
    MPI ranks).
    """

    name: str
    compartment: str
    D: float
    initial: float | Expression
    #: relative amplitude of reproducible spatial noise on the initial value (0.05 = ±5 %)
    noise: float = 0.0
    #: the unit of the species' numbers, in solver units (``uM``, ``uM*um``, ``1``);
    #: "" for the compartment's (:data:`SPECIES_UNITS`)
    unit: str = ""
    #: what the species is, in a few words (``"PIP3"``); "" for none
    description: str = ""
    #: the kind of its compartment; by default a volume, except in ``membrane``
    kind: Kind | None = None

    def __post_init__(self) -> None:
        if self.kind is None:
            kind = Kind.SURFACE if self.compartment == MEMBRANE else Kind.VOLUME
            object.__setattr__(self, "kind", kind)

    @property
    def units(self) -> str:
        """The unit of the species' numbers: the declared one, else the compartment's."""
        return self.unit or SPECIES_UNITS[self.kind or Kind.VOLUME]


@dataclass(frozen=True)
class Reaction:
    """``reactants -> products`` at ``rate``, integrated over ``location``.

    ``reactants`` and ``products`` map species names to stoichiometric
    coefficients; either may be empty (a source or a sink).
    """

    name: str
    reactants: Mapping[str, int]
    products: Mapping[str, int]
    rate: Expression
    #: the name of the compartment the reaction is integrated over
    location: str

    @property
    def stoichiometry(self) -> dict[str, int]:
        """Net change of each species per unit of rate (products minus reactants)."""
        net: dict[str, int] = {}
        for name, n in self.reactants.items():
            net[name] = net.get(name, 0) - n
        for name, n in self.products.items():
            net[name] = net.get(name, 0) + n
        return {k: v for k, v in net.items() if v != 0}

    @property
    def species(self) -> frozenset[str]:
        """The species the reaction involves, as reactant or product."""
        return frozenset(self.reactants) | frozenset(self.products)


@dataclass(frozen=True)
class ConservedPool:
    """A weighted sum of species whose total amount no reaction changes.

    The total is ``sum(w * ∫ species)`` over the species' compartments
    (µM·µm³ = 1e-21 mol, whatever the compartment).
    """

    name: str
    weights: Mapping[str, Fraction]


@dataclass(frozen=True)
class Model:
    """Species, reactions and parameter values (solver units)."""

    species: Mapping[str, Species]
    reactions: Mapping[str, Reaction]
    parameters: Mapping[str, float] = field(default_factory=dict)
    #: names of external fields (stimuli and occupancies) that expressions may use
    fields: frozenset[str] = frozenset()
    stimuli: Mapping[str, Stimulus] = field(default_factory=dict)
    #: every declared compartment by name, volumes first
    declared: Mapping[str, Compartment] = field(default_factory=lambda: DEFAULT_COMPARTMENTS)
    #: solved stimuli (species of the model, ``kind = "field"``): their source positions
    #: (µm), or None without a source
    solved: Mapping[str, tuple[float, ...] | None] = field(default_factory=dict)

    def in_compartment(self, compartment: str) -> list[Species]:
        """Species of one compartment, in declaration order."""
        return [s for s in self.species.values() if s.compartment == compartment]

    @property
    def compartments(self) -> list[Compartment]:
        """Compartments that hold at least one species (volumes first, as declared)."""
        return [c for c in self.declared.values() if self.in_compartment(c.name)]

    @property
    def membrane(self) -> str | None:
        """The surface of the polarity read-outs: ``membrane``, else the first surface.

        None when no surface holds a species.
        """
        surfaces = [c.name for c in self.compartments if c.surface]
        return MEMBRANE if MEMBRANE in surfaces else next(iter(surfaces), None)

    def conserved_pools(self) -> list[ConservedPool]:
        """Conserved weighted sums: a basis of the left null space of the stoichiometry.

        Exact rational arithmetic; each basis vector is scaled to smallest integers
        and named after its species (``"K_c+K_m"``). Only pools with non-negative
        weights over at least two species, or species no reaction touches, are
        meaningful totals; all basis vectors are returned.
        """
        names = list(self.species)
        touched = set().union(*(r.stoichiometry for r in self.reactions.values()))
        pools = []
        for vec in _left_null_space(names, [r.stoichiometry for r in self.reactions.values()]):
            weights = {n: w for n, w in zip(names, vec, strict=True) if w != 0}
            if len(weights) == 1 and next(iter(weights)) not in touched:
                continue  # an untouched species is conserved trivially: its own total says it
            label = "+".join((n if w == 1 else f"{w}*{n}") for n, w in weights.items()).replace(
                "+-", "-"
            )
            pools.append(ConservedPool(label, weights))
        return pools


_TERM = re.compile(r"^\s*(?:(\d+)\s*\*?\s*)?([A-Za-z][A-Za-z0-9_]*)\s*$")


def parse_equation(text: str, where: str) -> tuple[dict[str, int], dict[str, int]]:
    """Parse ``"A + 2 B -> C"`` into reactant and product coefficients.

    Either side may be empty (``"-> X"`` a source, ``"X ->"`` a sink), not both.
    Raises :class:`InputError` naming ``where`` and the offending term.
    """
    if text.count("->") != 1:
        raise InputError(where, f"expected one '->' in the equation, got {text!r}")
    left, right = text.split("->")
    sides = []
    for side in (left, right):
        coeffs: dict[str, int] = {}
        if side.strip():
            for term in side.split("+"):
                m = _TERM.match(term)
                if not m:
                    raise InputError(
                        where,
                        f"cannot read {term.strip()!r} in {text!r}: "
                        "expected terms like 'A', '2 A' or '2*A' joined by '+'",
                    )
                digits = m.group(1) or "1"
                if len(digits) > 3:
                    raise InputError(
                        where, f"a stoichiometric coefficient of at most 999 in {text!r}"
                    )
                n = int(digits)
                if n == 0:
                    raise InputError(where, f"zero stoichiometric coefficient in {text!r}")
                coeffs[m.group(2)] = coeffs.get(m.group(2), 0) + n
        sides.append(coeffs)
    if not sides[0] and not sides[1]:
        raise InputError(where, f"the reaction {text!r} has no species")
    return sides[0], sides[1]


def _left_null_space(names: list[str], columns: list[dict[str, int]]) -> list[list[Fraction]]:
    """Basis of {w : w·ν_r = 0 for every reaction r}, as integer-scaled vectors."""
    n = len(names)
    index = {name: i for i, name in enumerate(names)}
    # rows of the system: one equation per reaction, unknowns are the weights w_i
    rows = []
    for col in columns:
        row = [Fraction(0)] * n
        for name, nu in col.items():
            row[index[name]] = Fraction(nu)
        rows.append(row)
    pivots: list[int] = []
    r = 0
    for c in range(n):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        p = rows[r][c]
        rows[r] = [v / p for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    basis = []
    for free in (c for c in range(n) if c not in pivots):
        vec = [Fraction(0)] * n
        vec[free] = Fraction(1)
        for i, c in enumerate(pivots):
            vec[c] = -rows[i][free]
        scale = math.lcm(*(v.denominator for v in vec))
        vec = [v * scale for v in vec]
        if all(v <= 0 for v in vec):
            vec = [-v for v in vec]
        basis.append(vec)
    return basis


def noise_field(x: np.ndarray) -> np.ndarray:
    """Reproducible pseudo-random values in [−1, 1] at points ``x`` (shape (3, n), µm).

    A hash of the coordinates, not a random-number stream, so the value at a
    vertex does not depend on how the mesh is split over ranks.
    """
    k = np.array([12.9898, 78.233, 37.719])
    s = np.sin(np.tensordot(k, np.asarray(x)[:3] * 17.0 + 0.5, axes=1)) * 43758.5453
    return 2.0 * (s - np.floor(s)) - 1.0
