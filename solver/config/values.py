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
from solver.errors import InputError
from solver.model.expressions import (
    CONSTANTS,
    FUNCTIONS,
    Expression,
    ExpressionError,
    parse_expression,
)
from solver.model.model import COORDINATES, TIME

#: names that expressions reserve: coordinates, time, constants and functions
RESERVED = frozenset(COORDINATES) | {TIME} | CONSTANTS | FUNCTIONS


class Values:
    """Readers of single values of a run file whose relative paths start at ``base_dir``."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir

    def table(self, key: str, value: Any) -> Mapping[str, Any]:
        """``value`` if it is a table."""
        if not isinstance(value, Mapping):
            raise InputError(key, f"expected a table, got {value!r}")
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
            raise InputError(key, f"expected a number or a value with a unit, got {value!r}")
        try:
            result = units.to_solver_units(value, expect)
        except units.UnitError as err:
            raise InputError(key, str(err)) from None
        if not math.isfinite(result):
            raise InputError(key, f"expected a finite value, got {value!r}")
        return result

    def vector(
        self, key: str, value: Any, expect: str | None, n: tuple[int, ...] = (2, 3)
    ) -> tuple[float, ...]:
        """A list of 2 or 3 values (a point or a direction), each converted like a quantity."""
        if not isinstance(value, list) or len(value) not in n:
            raise InputError(key, f"expected a list of {' or '.join(map(str, n))} numbers")
        return tuple(self.quantity(f"{key}[{i}]", v, expect) for i, v in enumerate(value))

    def positive(self, key: str, value: Any, expect: str | None) -> float:
        """A quantity that must be positive."""
        result = self.quantity(key, value, expect)
        if result <= 0:
            raise InputError(key, f"expected a positive value, got {value!r}")
        return result

    def expression(self, key: str, text: Any, known: set[str]) -> Expression:
        """An expression whose names are all in ``known`` (or reserved)."""
        if isinstance(text, bool) or not isinstance(text, int | float | str):
            raise InputError(key, f"expected an expression (a string) or a number, got {text!r}")
        try:
            expr = parse_expression(str(text))
        except ExpressionError as err:
            raise InputError(key, str(err)) from None
        bad = expr.undefined(known)
        if bad:
            name, col = bad[0]
            raise InputError(
                key,
                f"undefined name '{name}' (column {col} of {str(text)!r}); known names: "
                f"{', '.join(sorted(known - RESERVED)) or 'none'}, x, y, z, t",
            )
        return expr

    def name(self, section: str, name: str) -> None:
        """Refuse a table name that is no identifier, or that expressions reserve."""
        if not name.isidentifier() or name.startswith("_"):
            raise InputError(
                f"{section}.{name}",
                "expected a name of letters, digits and '_' that starts with a letter",
            )
        if name in RESERVED:
            raise InputError(f"{section}.{name}", f"'{name}' is reserved for expressions")

    def value_or_expression(
        self, key: str, value: Any, expect: str, known: set[str]
    ) -> float | Expression:
        """A number with a unit, or an expression whose names are all known."""
        if isinstance(value, str) and not isinstance(value, bool):
            try:
                expr = parse_expression(value)
            except ExpressionError:
                expr = None
            if expr is not None and not expr.is_constant() and not expr.undefined(known):
                return expr
            try:
                return self.quantity(key, value, expect)
            except InputError:
                if expr is not None and not expr.is_constant():
                    self.expression(key, value, known)  # names the undefined symbol
                raise
        return self.quantity(key, value, expect)
