"""A sweep's plan: a run file, fixed ``--set`` overrides and ``--vary`` keys with values.

Its members are the Cartesian product of those values, numbered in row-major order
(the last ``--vary`` changes fastest).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver import config as run_config
from solver.errors import InputError

PLAN = "sweep.json"


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` at commas outside brackets and quotes (``[1,0],[0,1]``)."""
    values: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    values.append("".join(current).strip())
    return values


def parse_vary(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["a.b=1,2", "c.d=x,y"]`` → ``[("a.b", ["1", "2"]), ("c.d", ["x", "y"])]``."""
    if not items:
        raise InputError("--vary", "expected at least one --vary key=v1,v2,...")
    varied: list[tuple[str, list[str]]] = []
    for item in items:
        if "=" not in item:
            raise InputError("--vary", f"expected key=v1,v2,..., got {item!r}")
        key, raw = (s.strip() for s in item.split("=", 1))
        if not key or not all(key.split(".")):
            raise InputError("--vary", f"malformed key {key!r} in {item!r} (dotted, as for --set)")
        if any(key == k for k, _ in varied):
            raise InputError("--vary", f"key {key!r} is varied twice; give all its values once")
        values = split_values(raw)
        if not all(values):
            raise InputError("--vary", f"{key}: empty value in {raw!r}")
        varied.append((key, values))
    return varied


@dataclass(frozen=True)
class SweepPlan:
    """A run file, fixed overrides and varied keys; members in row-major order."""

    config: Path
    sets: tuple[str, ...]
    varied: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def from_args(cls, config: Path, sets: Sequence[str], vary: Sequence[str]) -> SweepPlan:
        """The plan of ``polarity sweep CONFIG --set ... --vary ...``."""
        varied = tuple((k, tuple(v)) for k, v in parse_vary(vary))
        for item in sets:
            if "=" not in item:
                raise InputError("--set", f"expected key=value, got {item!r}")
        return cls(Path(config), tuple(sets), varied)

    @property
    def keys(self) -> list[str]:
        """The varied keys, in the order given."""
        return [k for k, _ in self.varied]

    @property
    def size(self) -> int:
        """The number of members."""
        n = 1
        for _, values in self.varied:
            n *= len(values)
        return n

    def values(self, index: int) -> dict[str, str]:
        """Varied values of member ``index`` (as given on the command line)."""
        if not 0 <= index < self.size:
            raise InputError("--member", f"expected 0 <= member < {self.size}, got {index}")
        combos = itertools.product(*(v for _, v in self.varied))
        return dict(zip(self.keys, next(itertools.islice(combos, index, None)), strict=True))

    def overrides(self, index: int) -> list[str]:
        """``--set`` items of member ``index``: the fixed ones, then its varied values."""
        return [*self.sets, *(f"{k}={v}" for k, v in self.values(index).items())]

    def validate(self) -> list[str | None]:
        """Load every member's run file: its error message, or None if it is valid.

        Raises InputError if no member is valid (an unknown key, a missing run file):
        that is a mistake in the sweep, not in one of its values.
        """
        errors: list[str | None] = []
        for i in range(self.size):
            try:
                run_config.load(self.config, self.overrides(i))
                errors.append(None)
            except InputError as err:
                errors.append(str(err))
        if errors and all(errors):
            raise InputError("sweep", f"no member is valid; member 0: {errors[0]}")
        return errors

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        return {
            "config": str(self.config),
            "sets": list(self.sets),
            "vary": {k: list(v) for k, v in self.varied},
            "members": self.size,
        }


def write_plan(out: Path, plan: SweepPlan) -> None:
    """``out/sweep.json``: the plan, to check that a restart continues the same sweep."""
    (out / PLAN).write_text(json.dumps(plan.to_json(), indent=2) + "\n")
