"""Dimensions of expressions: rates checked against the units of what they change.

A dimension is a vector of exponents of the solver's base quantities, amount (µM·µm³),
length (µm) and time (s), written in solver units (``uM*um/s``). Every value in an
expression has one of three kinds of dimension:

- *fixed*: species (the unit of the species), parameters given with a unit, ``x, y, z``
  (µm), ``t`` (s), stimuli (µM) and occupancies (1);
- *free*: a parameter given as a bare number. It is in solver units and has no declared
  dimension, so it takes whatever dimension its use requires (and so does every
  product or quotient it is part of);
- *number*: a number written in the expression (and ``pi``): a pure number, so
  ``1 + (P/K)**2`` needs ``P/K`` dimensionless. Only 0 fits any dimension
  (``max(u, 0)``), and an expression of numbers only fits anything. In a rate
  (``rate=True``), a number that multiplies or divides a whole term of the rate's
  top-level sum is a rate constant in solver units, so it is free: ``k*c - 0.5*m``.

``+``, ``-``, ``min`` and ``max`` need equal fixed dimensions; ``exp log sin cos tanh atan``
a dimensionless argument; ``**`` a dimensionless exponent, constant when the base has a
dimension; ``sqrt`` halves the exponents. :func:`dimension` raises
:class:`DimensionError` with a one-line message naming the term and the units.
"""

from __future__ import annotations

import ast
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from solver.model.expressions import Expression, ExpressionError, _fold_constants

__all__ = [
    "AMOUNT",
    "DIMENSIONLESS",
    "LENGTH",
    "TIME",
    "Dim",
    "DimensionError",
    "Kind",
    "Value",
    "dimension",
    "unit_text",
]


class DimensionError(ValueError):
    """A term whose dimension does not fit its use; ``message`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Dim:
    """Exponents of amount, length and time."""

    amount: Fraction = Fraction(0)
    length: Fraction = Fraction(0)
    time: Fraction = Fraction(0)

    def __mul__(self, other: Dim) -> Dim:
        return Dim(self.amount + other.amount, self.length + other.length, self.time + other.time)

    def __truediv__(self, other: Dim) -> Dim:
        return Dim(self.amount - other.amount, self.length - other.length, self.time - other.time)

    def __pow__(self, p: Fraction) -> Dim:
        return Dim(self.amount * p, self.length * p, self.time * p)

    @property
    def dimensionless(self) -> bool:
        """True for a pure number."""
        return not (self.amount or self.length or self.time)

    def __str__(self) -> str:
        return unit_text(self)


DIMENSIONLESS = Dim()
AMOUNT = Dim(amount=Fraction(1))
LENGTH = Dim(length=Fraction(1))
TIME = Dim(time=Fraction(1))


def _power(unit: str, e: Fraction) -> str:
    e = abs(e)
    return unit if e == 1 else f"{unit}**{e.numerator if e.denominator == 1 else f'({e})'}"


def unit_text(dim: Dim) -> str:
    """The solver unit of ``dim`` in ASCII: ``uM``, ``uM*um/s``, ``1/s``, ``1``.

    Amounts are written as µM times µm³, so that concentrations read µM and surface
    densities µM·µm.
    """
    merged = {"uM": dim.amount, "um": dim.length + 3 * dim.amount, "s": dim.time}
    up = [_power(u, e) for u, e in merged.items() if e > 0]
    down = [_power(u, e) for u, e in merged.items() if e < 0]
    text = "*".join(up) or "1"
    if down:
        text += "/" + (down[0] if len(down) == 1 else "(" + "*".join(down) + ")")
    return text


class Kind(enum.Enum):
    """How a value's dimension is known (see the module docstring)."""

    FIXED = "fixed"
    FREE = "free"
    NUMBER = "number"


@dataclass(frozen=True)
class Value:
    """The dimension of a value: its kind and, when fixed, its exponents."""

    kind: Kind
    dim: Dim = DIMENSIONLESS

    @classmethod
    def fixed(cls, dim: Dim) -> Value:
        """A value of dimension ``dim``."""
        return cls(Kind.FIXED, dim)

    @property
    def units(self) -> str:
        """The solver unit (``uM/s``), ``a number`` or ``free``."""
        if self.kind is Kind.FIXED:
            return unit_text(self.dim)
        return "a number" if self.kind is Kind.NUMBER else "no declared unit"


FREE = Value(Kind.FREE)
NUMBER = Value(Kind.NUMBER)
_TRANSCENDENTAL = frozenset({"exp", "log", "sin", "cos", "tanh", "atan"})
_VERB = {ast.Add: "add", ast.Sub: "subtract"}


def dimension(
    expr: Expression,
    names: Mapping[str, Value],
    constants: Mapping[str, float] | None = None,
    rate: bool = False,
) -> Value:
    """The dimension of ``expr`` whose names have the dimensions ``names``.

    ``constants`` are the parameters' values (solver units), for exponents such as
    ``u**n``. A name missing from ``names`` is free. With ``rate``, numbers that
    multiply whole terms are free. Raises :class:`DimensionError`.
    """
    walker = _Walker(expr, names, dict(constants or {}), rate)
    return walker.walk(expr._tree.body)


def _operands(node: ast.AST, ops: tuple[type, ...]) -> list[ast.AST]:
    """The operands of a chain of the binary operators ``ops`` (signs dropped), in order."""
    out: list[ast.AST] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.UnaryOp):
            stack.append(n.operand)
        elif isinstance(n, ast.BinOp) and isinstance(n.op, ops):
            stack.extend([n.right, n.left])
        else:
            out.append(n)
    return out


def _factors(node: ast.AST) -> list[ast.AST]:
    """The factors of a product or quotient (signs dropped)."""
    return _operands(node, (ast.Mult, ast.Div))


class _Walker:
    def __init__(
        self,
        expr: Expression,
        names: Mapping[str, Value],
        constants: dict[str, float],
        rate: bool = False,
    ) -> None:
        self.src = expr._src
        self.names = names
        self.constants = constants
        #: numbers that are rate constants: factors of whole terms of a rate
        self.free: set[int] = set()
        if rate:
            for term in terms(expr):
                factors = _factors(term)
                if len(factors) > 1:
                    self.free |= {id(f) for f in factors if isinstance(f, ast.Constant)}

    def piece(self, node: ast.AST) -> str:
        return f"'{self.src.piece(node)}'"

    def walk(self, node: ast.AST) -> Value:
        if isinstance(node, ast.Constant):
            return FREE if id(node) in self.free else NUMBER
        if isinstance(node, ast.Name):
            return NUMBER if node.id == "pi" else self.names.get(node.id, FREE)
        if isinstance(node, ast.UnaryOp):
            return self.walk(node.operand)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return self.call(node, node.func.id)

    def binary(self, node: ast.BinOp) -> Value:
        left, right = self.walk(node.left), self.walk(node.right)
        if isinstance(node.op, ast.Add | ast.Sub):
            verb = _VERB[type(node.op)]
            return self.same(node, [(node.left, left), (node.right, right)], f"cannot {verb}")
        if isinstance(node.op, ast.Pow):
            return self.power(node, left, right)
        if Kind.FREE in (left.kind, right.kind):
            return FREE
        if left.kind is Kind.NUMBER and right.kind is Kind.NUMBER:
            return NUMBER
        if isinstance(node.op, ast.Mult):
            return Value.fixed(left.dim * right.dim)
        return Value.fixed(left.dim / right.dim)  # a number is dimensionless: Dim() / ...

    def same(self, node: ast.AST, parts: list[tuple[ast.AST, Value]], what: str) -> Value:
        fixed = [(n, self.pure(n, v)) for n, v in parts if self.pure(n, v).kind is Kind.FIXED]
        for n, v in fixed[1:]:
            first, value = fixed[0]
            if v.dim != value.dim:
                raise DimensionError(
                    f"{what} {self.piece(first)} ({value.units}) and {self.piece(n)} "
                    f"({v.units}) in {self.piece(node)}: their units differ"
                )
        if fixed:
            return fixed[0][1]
        return FREE if any(v.kind is Kind.FREE for _, v in parts) else NUMBER

    def pure(self, node: ast.AST, value: Value) -> Value:
        """A number among quantities: dimensionless, unless it is 0 (which fits any)."""
        if value.kind is not Kind.NUMBER:
            return value
        try:
            zero = _fold_constants(node, {}, self.src) == 0
        except ExpressionError:
            zero = False
        return FREE if zero else Value.fixed(DIMENSIONLESS)

    def power(self, node: ast.BinOp, base: Value, exponent: Value) -> Value:
        if exponent.kind is Kind.FIXED and not exponent.dim.dimensionless:
            raise DimensionError(
                f"the exponent {self.piece(node.right)} of {self.piece(node)} is in "
                f"{exponent.units}; an exponent must be dimensionless"
            )
        if base.kind is not Kind.FIXED or base.dim.dimensionless:
            return base
        try:
            value = _fold_constants(node.right, self.constants, self.src)
        except ExpressionError:
            value = None
        if value is None:
            raise DimensionError(
                f"{self.piece(node)}: a power of {self.piece(node.left)} ({base.units}) "
                "needs a constant exponent"
            )
        return Value.fixed(base.dim ** Fraction(value).limit_denominator(1000))

    def call(self, node: ast.Call, name: str) -> Value:
        args = [self.walk(a) for a in node.args]
        if name in ("min", "max"):
            return self.same(node, list(zip(node.args, args, strict=True)), f"{name}() of")
        (arg,) = args
        if name in _TRANSCENDENTAL:
            if arg.kind is Kind.FIXED and not arg.dim.dimensionless:
                raise DimensionError(
                    f"{name}() needs a dimensionless argument, but {self.piece(node.args[0])} "
                    f"is in {arg.units}"
                )
            return NUMBER if arg.kind is Kind.NUMBER else Value.fixed(DIMENSIONLESS)
        if name == "sqrt" and arg.kind is Kind.FIXED:
            return Value.fixed(arg.dim ** Fraction(1, 2))
        return arg  # abs, and sqrt of a number or a free value


def terms(expr: Expression) -> list[ast.AST]:
    """The terms of the top-level sum of ``expr`` (the whole expression if it is no sum)."""
    return _operands(expr._tree.body, (ast.Add, ast.Sub))


def check(
    expr: Expression,
    expected: Dim,
    names: Mapping[str, Value],
    constants: Mapping[str, float] | None = None,
) -> tuple[str, str, frozenset[str]] | None:
    """None if the rate ``expr`` can have the dimension ``expected``, else the term that cannot.

    The term is the first term of the top-level sum whose dimension is not ``expected``:
    ``(the term quoted as written, its units, the names it uses)``. Inner mismatches
    raise :class:`DimensionError`.
    """
    value = dimension(expr, names, constants, rate=True)
    if value.kind is not Kind.FIXED or value.dim == expected:
        return None
    walker = _Walker(expr, names, dict(constants or {}), rate=True)
    node = next(
        n for n in terms(expr) if (v := walker.walk(n)).kind is Kind.FIXED and v.dim != expected
    )
    used = frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    return walker.piece(node), walker.walk(node).units, used
