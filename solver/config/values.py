"""The value readers every run-file table uses.

Tables, keys, quantities with units, vectors, names and expressions, each raising
:class:`~solver.errors.InputError` that names the key and says what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from solver.config import units
from solver.config.limits import Limits
from solver.errors import InputError
from solver.model.expressions import (
    CONSTANTS,
    FUNCTIONS,
    Expression,
    ExpressionError,
    parse_expression,
)
from solver.model.model import COORDINATES, TIME
from solver.model.names import describe, normalise

#: names that expressions reserve: coordinates, time, constants and functions
RESERVED = frozenset(COORDINATES) | {TIME} | CONSTANTS | FUNCTIONS


def shown(value: Any, width: int = 60) -> str:
    """``repr(value)``, shortened to about ``width`` characters (for messages)."""
    if isinstance(value, Mapping | list):
        kind, n = ("table" if isinstance(value, Mapping) else "list"), len(value)
        return f"a {kind} of {n} item{'s' * (n != 1)}" if n else f"an empty {kind}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**width:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class Values:
    """Readers of single values of a run file whose relative paths start at ``base_dir``.

    Attributes:
        base_dir: The folder relative paths start at.
        limits: The run file's ``[limits]``.
        constants: Values of the names that are constant in expressions (the
            parameters, solver units), for folding constant subexpressions.
    """

    def __init__(self, base_dir: Path, limits: Limits | None = None) -> None:
        self.base_dir = base_dir
        self.limits = limits or Limits()
        self.constants: dict[str, float] = {}

    def table(self, key: str, value: Any) -> Mapping[str, Any]:
        """``value`` if it is a table."""
        if not isinstance(value, Mapping):
            raise InputError(key, f"expected a table, got {shown(value)}")
        return value

    def keys(self, key: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        """Refuse a key of ``table`` that is not ``allowed``."""
        for k in table:
            if k not in allowed:
                raise InputError(
                    f"{key}.{k}" if key else k,
                    f"unknown key; expected one of: {', '.join(allowed)}",
                )

    def quantity(self, key: str, value: Any, expect: str | None) -> float:
        """A finite number in solver units, from a number or a string with a unit.

        ``expect`` names the dimension (``"length"``, ``"concentration"``, …; None: any).
        """
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InputError(key, f"expected a number or a value with a unit, got {shown(value)}")
        try:
            result = units.to_solver_units(
                value,
                expect,
                max_length=self.limits.unit_length,
                max_digits=self.limits.number_digits,
            )
        except units.UnitError as err:
            raise InputError(key, str(err)) from None
        if not math.isfinite(result):
            raise InputError(key, f"expected a finite value, got {shown(value)}")
        return result

    def integer(self, key: str, value: Any, allowed: tuple[int, ...]) -> int:
        """An integer (not a float such as ``1.0``, not a boolean) among ``allowed``."""
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            raise InputError(
                key,
                f"expected an integer, one of {', '.join(map(str, allowed))}, got {shown(value)}",
            )
        return value

    def flag(self, key: str, value: Any) -> bool:
        """``true`` or ``false``."""
        if not isinstance(value, bool):
            raise InputError(key, f"expected true or false, got {shown(value)}")
        return value

    def choice(self, key: str, value: Any, allowed: tuple[str, ...]) -> str:
        """A string among ``allowed``."""
        if not isinstance(value, str) or value not in allowed:
            raise InputError(key, f"expected one of {', '.join(allowed)}, got {shown(value)}")
        return value

    def path(self, key: str, value: Any) -> Path:
        """A path (a non-empty string), relative to :attr:`base_dir` unless absolute."""
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise InputError(key, f"expected a path (a non-empty string), got {shown(value)}")
        path = Path(value)
        return path if path.is_absolute() else self.base_dir / path

    def vector(
        self, key: str, value: Any, expect: str | None, n: tuple[int, ...] = (2, 3)
    ) -> tuple[float, ...]:
        """A list of 2 or 3 values (a point or a direction), each converted like a quantity."""
        if not isinstance(value, list) or len(value) not in n:
            got = f"{len(value)} numbers" if isinstance(value, list) else shown(value)
            raise InputError(
                key, f"expected a list of {' or '.join(map(str, n))} numbers, got {got}"
            )
        return tuple(self.quantity(f"{key}[{i}]", v, expect) for i, v in enumerate(value))

    def positive(self, key: str, value: Any, expect: str | None) -> float:
        """A quantity that must be positive."""
        result = self.quantity(key, value, expect)
        if result <= 0:
            raise InputError(key, f"expected a positive value, got {shown(value)}")
        return result

    def parse(self, key: str, text: Any) -> Expression:
        """Parse an expression within the limits, without checking its names."""
        if isinstance(text, bool) or not isinstance(text, int | float | str):
            raise InputError(
                key, f"expected an expression (a string) or a number, got {shown(text)}"
            )
        if isinstance(text, int) and abs(text) >= 10**self.limits.number_digits:
            raise InputError(key, self.limits.exceeded("number_digits", "a number too long"))
        try:
            return parse_expression(
                str(text),
                max_length=self.limits.expression_length,
                max_nodes=self.limits.expression_nodes,
            )
        except ExpressionError as err:
            raise InputError(key, _expression_message(err, self.limits)) from None

    def expression(self, key: str, text: Any, known: set[str]) -> Expression:
        """An expression whose names are all in ``known`` (or reserved).

        Its constant subexpressions (numbers, ``pi`` and :attr:`constants`) are folded,
        and one that is not a finite real number (``log(0)``) is refused.
        """
        expr = self.parse(key, text)
        bad = expr.undefined(known)
        if bad:
            name, col = bad[0]
            names = sorted(known - RESERVED)
            listed = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
            raise InputError(
                key,
                f"undefined name '{name}' (column {col} of {shown(str(text))}); known names: "
                f"{listed or 'none'}, x, y, z, t",
            )
        self.fold(key, expr)
        return expr

    def fold(self, key: str, expr: Expression) -> None:
        """Refuse ``expr`` if a constant subexpression of it is not a finite real number."""
        try:
            expr.check_constants(self.constants)
        except ExpressionError as err:
            raise InputError(key, str(err)) from None

    def name(self, section: str, name: str) -> str:
        """The name as expressions read it (NFKC); refuse a non-identifier or a reserved one."""
        key = f"{section}.{name}"
        if len(name) > 100:
            raise InputError(
                f"{section}.{name[:40]}...", "expected a name of at most 100 characters"
            )
        normal = normalise(name)
        if not normal.isidentifier() or normal.startswith("_"):
            raise InputError(
                key, "expected a name of letters, digits and '_' that starts with a letter"
            )
        if normal in RESERVED:
            same = "" if normal == name else f" ({describe(name)} reads as '{normal}')"
            raise InputError(key, f"'{normal}' is reserved for expressions{same}")
        return normal

    def value_or_expression(
        self, key: str, value: Any, expect: str, known: set[str]
    ) -> float | Expression:
        """A number with a unit, or an expression whose names are all known."""
        if isinstance(value, str) and not isinstance(value, bool):
            try:
                expr = parse_expression(
                    value,
                    max_length=self.limits.expression_length,
                    max_nodes=self.limits.expression_nodes,
                )
            except ExpressionError as err:
                if err.message.startswith(("expression too long", "expression too large")):
                    raise InputError(key, _expression_message(err, self.limits)) from None
                expr = None
            if expr is not None and not expr.is_constant() and not expr.undefined(known):
                self.fold(key, expr)
                return expr
            try:
                return self.quantity(key, value, expect)
            except InputError:
                if expr is not None and not expr.is_constant():
                    self.expression(key, value, known)  # names the undefined symbol
                if expr is not None:
                    self.fold(key, expr)  # names a constant that cannot be evaluated
                raise
        return self.quantity(key, value, expect)


def _expression_message(err: ExpressionError, limits: Limits) -> str:
    """The message of ``err``, with the limit to raise when it is one of the limits."""
    text = str(err)
    if err.message.startswith("expression too long"):
        return f"{text}; raise [limits] expression_length to allow more"
    if err.message.startswith("expression too large"):
        return f"{text}; raise [limits] expression_nodes to allow more"
    return text
