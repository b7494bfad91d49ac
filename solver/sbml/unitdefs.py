"""SBML units and the solver's: the dimension of a unit definition and its factor.

An SBML unit definition is a product of units, each ``(multiplier · 10^scale · kind)^exponent``.
Read here into a :class:`~solver.model.dimensions.Dim` (amount, length, time) and the
factor that turns a value in it into solver units (µM·µm³ = 1 zmol for amounts, µm, s):
``1 mole`` is 1e21, ``1 litre`` 1e15 µm³, ``1 item`` (one molecule) 1/602.214 zmol.
Kinds of other dimensions (gram, kelvin, ampere, …) have no solver unit and are refused.

The other way, :func:`definition_units` gives the units of a dimension in the solver's
own SBML units: zeptomole (mole, scale −21), micrometre (metre, scale −6) and second,
so every number written in an exported model is the run file's number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from solver.model.dimensions import AMOUNT, DIMENSIONLESS, LENGTH, TIME, Dim, unit_text

VOLUME = LENGTH * LENGTH * LENGTH
AREA = LENGTH * LENGTH
AVOGADRO = 6.02214076e23  # 1/mol, exact since 2019
SOLVER_AMOUNT = 1e-21  # mol: 1 µM·µm³
SOLVER_LENGTH = 1e-6  # m: 1 µm


class UnitError(ValueError):
    """A unit the solver cannot convert; ``message`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Scaled:
    """A dimension and the factor that turns a value in the unit into solver units."""

    dim: Dim
    factor: float = 1.0

    def __mul__(self, other: Scaled) -> Scaled:
        return Scaled(self.dim * other.dim, self.factor * other.factor)

    def __truediv__(self, other: Scaled) -> Scaled:
        return Scaled(self.dim / other.dim, self.factor / other.factor)

    def __pow__(self, p: float) -> Scaled:
        return Scaled(self.dim ** Fraction(p).limit_denominator(1000), self.factor**p)

    @property
    def is_solver(self) -> bool:
        """True when a value in the unit is already in solver units."""
        return math.isclose(self.factor, 1.0, rel_tol=1e-12)

    @property
    def text(self) -> str:
        """The solver unit of the dimension (``uM``, ``uM*um/s``, ``1``)."""
        return unit_text(self.dim)


ONE = Scaled(DIMENSIONLESS)


def _kinds() -> dict[int, tuple[str, Scaled]]:
    import libsbml

    mole = Scaled(AMOUNT, 1 / SOLVER_AMOUNT)
    metre = Scaled(LENGTH, 1 / SOLVER_LENGTH)
    second = Scaled(TIME)
    return {
        libsbml.UNIT_KIND_MOLE: ("mole", mole),
        libsbml.UNIT_KIND_ITEM: ("item", Scaled(AMOUNT, 1 / (AVOGADRO * SOLVER_AMOUNT))),
        libsbml.UNIT_KIND_AVOGADRO: ("avogadro", Scaled(DIMENSIONLESS, AVOGADRO)),
        libsbml.UNIT_KIND_DIMENSIONLESS: ("dimensionless", ONE),
        libsbml.UNIT_KIND_RADIAN: ("radian", ONE),
        libsbml.UNIT_KIND_STERADIAN: ("steradian", ONE),
        libsbml.UNIT_KIND_METRE: ("metre", metre),
        libsbml.UNIT_KIND_METER: ("meter", metre),
        libsbml.UNIT_KIND_LITRE: ("litre", Scaled(VOLUME, 1e-3 / SOLVER_LENGTH**3)),
        libsbml.UNIT_KIND_LITER: ("liter", Scaled(VOLUME, 1e-3 / SOLVER_LENGTH**3)),
        libsbml.UNIT_KIND_SECOND: ("second", second),
        libsbml.UNIT_KIND_HERTZ: ("hertz", Scaled(DIMENSIONLESS / TIME)),
        libsbml.UNIT_KIND_KATAL: ("katal", Scaled(AMOUNT / TIME, 1 / SOLVER_AMOUNT)),
    }


def scaled(definition: Any, what: str) -> Scaled | None:
    """A libsbml UnitDefinition read; None when it is empty (units not declared).

    ``what`` names the element the units belong to, for the message of a unit of a
    dimension the solver does not have.
    """
    if definition is None or definition.getNumUnits() == 0:
        return None
    kinds = _kinds()
    result = ONE
    for i in range(definition.getNumUnits()):
        unit = definition.getUnit(i)
        kind = unit.getKind()
        if kind not in kinds:
            import libsbml

            name = libsbml.UnitKind_toString(kind)
            raise UnitError(
                f"{what} is in a unit of '{name}': the solver knows only amounts (mole, item), "
                "lengths (metre, litre) and times (second)"
            )
        base = kinds[kind][1]
        factor = unit.getMultiplier() * 10.0 ** unit.getScale()
        result = result * (Scaled(base.dim, base.factor * factor) ** unit.getExponentAsDouble())
    return result


def describe(definition: Any) -> str:
    """A unit definition in words: ``mole^1 litre^-1`` as ``1e-06 mole/litre``."""
    if definition is None or definition.getNumUnits() == 0:
        return "(no units)"
    import libsbml

    up: list[str] = []
    down: list[str] = []
    for i in range(definition.getNumUnits()):
        unit = definition.getUnit(i)
        name = libsbml.UnitKind_toString(unit.getKind())
        factor = unit.getMultiplier() * 10.0 ** unit.getScale()
        e = unit.getExponentAsDouble()
        text = name if factor == 1 else f"({factor:g} {name})"
        text += "" if abs(e) == 1 else f"^{abs(e):g}"
        (up if e > 0 else down).append(text)
    return "*".join(up or ["1"]) + "".join(f"/{d}" for d in down)


# -- export: units of the solver in SBML -------------------------------------------
#: (kind, scale) of the solver's base units: zmol, µm, s
_BASE = (("mole", -21), ("metre", -6), ("second", 0))


def unit_id(dim: Dim) -> str:
    """An SBML id for the solver unit of ``dim``: ``uM``, ``uM_um_per_s``, ``per_s``."""
    if dim == DIMENSIONLESS:
        return "dimensionless"
    text = unit_text(dim)
    text = re.sub(r"\*\*\(?(-?\d+)/(\d+)\)?", r"\1_\2", text)  # fractional powers
    text = text.replace("**", "").replace("(", "").replace(")", "")
    up, _, down = text.partition("/")
    pieces = [] if up == "1" else [up.replace("*", "_")]
    if down:
        pieces.append("per_" + down.replace("*", "_"))
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(pieces))


def definition_units(dim: Dim) -> list[tuple[str, Fraction, int]]:
    """(kind, exponent, scale) of the units of ``dim`` in zmol, µm and s."""
    exponents = (dim.amount, dim.length, dim.time)
    return [(kind, e, scale) for (kind, scale), e in zip(_BASE, exponents, strict=True) if e]
