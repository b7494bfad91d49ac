"""The ``[limits]`` table: bounds that stop a careless run file before it costs hours.

Each limit has a default that every sensible run file stays far below; a run file that
really needs more raises it in its own ``[limits]`` table (or with ``--set
limits.KEY=VALUE``). Every limit is checked when the run file is read, so ``polarity
check`` reports it too, before anything is meshed or solved.

========================  =========  ===================================================
key                       default    what it bounds
========================  =========  ===================================================
``depth``                 16         nesting of tables and arrays in the run file
                                     (at most 100)
``number_digits``         40         digits of one number: a TOML integer, or a number
                                     in a value with a unit (at most 4000)
``unit_length``           200        characters of a value with a unit (``"10 um^2/s"``)
``expression_length``     2000       characters of one expression as written
``expression_nodes``      1000       syntax-tree nodes of one expression as written
``expanded_nodes``        20000      nodes of a rate, initial value or definition once
                                     the ``[definitions]`` it uses are substituted
``mesh_elements``         2000000    cells of a generated mesh, estimated from the
                                     shape's volume and area and ``size``/``inner_size``
``time_steps``            1000000    fixed time steps, ``time.end / time.dt``
``outputs``               10000      outputs, ``time.end / output.every`` (and
                                     checkpoints, ``time.end / output.checkpoint_every``)
========================  =========  ===================================================

Values are positive integers (``2e6`` is read as 2000000).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from solver.errors import InputError


@dataclass(frozen=True)
class Limits:
    """The bounds of :mod:`solver.config.limits` (defaults as in its table)."""

    depth: int = 16
    number_digits: int = 40
    unit_length: int = 200
    expression_length: int = 2000
    expression_nodes: int = 1000
    expanded_nodes: int = 20_000
    mesh_elements: int = 2_000_000
    time_steps: int = 1_000_000
    outputs: int = 10_000

    def exceeded(self, key: str, what: str) -> str:
        """The end of a message: ``what`` is over the limit ``key``, and how to raise it."""
        return f"{what} (limit {getattr(self, key)}; raise [limits] {key} to allow more)"


#: largest value a limit may be raised to (beyond it the reader itself would fail:
#: Python's recursion limit, its 4300-digit limit of integer conversion)
CEILINGS = {"depth": 100, "number_digits": 4000}
KEYS = tuple(f.name for f in fields(Limits))


def read_limits(table: Any) -> Limits:
    """Read the ``[limits]`` table (missing keys keep their defaults).

    Args:
        table: The ``[limits]`` table of the run file.

    Returns:
        The limits.

    Raises:
        InputError: The table is not a table, a key is unknown, or a value is no
            positive integer (or above its ceiling).
    """
    if not isinstance(table, Mapping):
        raise InputError("limits", "expected a table of limits")
    values: dict[str, int] = {}
    for key, value in table.items():
        if key not in KEYS:
            raise InputError(f"limits.{key}", f"unknown key; expected one of: {', '.join(KEYS)}")
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number != int(number) or not 1 <= number:
            raise InputError(f"limits.{key}", f"expected a positive integer, got {_short(value)}")
        ceiling = CEILINGS.get(key)
        if ceiling is not None and number > ceiling:
            raise InputError(f"limits.{key}", f"expected at most {ceiling}, got {int(number)}")
        values[key] = int(number)
    return Limits(**values)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, Mapping | list) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
