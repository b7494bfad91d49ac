"""Physical units at load time, with pint.

The solver works in plain floats in fixed units: length µm, time s, cytosol
concentration µM and membrane surface density µM·µm, so the amount unit is
µM·µm³ = 1e-21 mol.  1 µM·µm = 1e-9 mol/m² = 602.214 molecules/µm².

Parameters in a run file may carry units (``"0.5 um^2/s"``, ``"25 nM"``,
``"100 molecule/um^2"``, ``"10 %"``); :func:`to_solver_units` converts them
once, when the file is loaded, so no pint object ever reaches the solver.
"""

from __future__ import annotations

import math
import numbers
import re
from fractions import Fraction
from typing import Any

import pint

from solver.model.dimensions import Dim, unit_text

__all__ = [
    "DIMENSIONS",
    "UnitError",
    "describe",
    "dimension_of",
    "read_unit",
    "solver_unit_of",
    "to_solver_units",
    "ureg",
]

_MOLECULE_WORDS = re.compile(r"\b(?:molecules?|particles?)\b")


def _make_registry(own_molecule: bool | None = None) -> pint.UnitRegistry:
    """The package registry; ``molecule`` must be an amount (1/N_A mol), not a pure number.

    pint 0.26 already defines ``molecule``/``particle`` as 1/N_A mol.  Should a pint
    version make it dimensionless (or drop it), the words are rewritten to a unit of
    our own before parsing (``own_molecule=True`` forces that path, for tests).
    """
    registry = pint.UnitRegistry()
    if own_molecule is None:
        try:
            own_molecule = not registry.Quantity(1, "molecule").check("[substance]")
        except pint.errors.UndefinedUnitError:
            own_molecule = True
    if own_molecule:
        registry = pint.UnitRegistry(
            preprocessors=[lambda s: _MOLECULE_WORDS.sub("solver_molecule", s)]
        )
        registry.define("solver_molecule = mole / avogadro_number")
    return registry


# One registry for the whole package, created once at import.  Conversion to solver
# units happens once, at load time; the solver itself only sees floats.
ureg = _make_registry()

# Named expectations -> pint dimensionality strings.
DIMENSIONS: dict[str, str] = {
    "length": "[length]",  # µm
    "area": "[length]**2",  # µm²
    "volume": "[length]**3",  # µm³
    "time": "[time]",  # s
    "rate": "1/[time]",  # 1/s
    "diffusivity": "[length]**2/[time]",  # µm²/s
    "concentration": "[substance]/[length]**3",  # µM
    "density": "[substance]/[length]**2",  # µM·µm (surface density)
    "velocity": "[length]/[time]",  # µm/s
    "dimensionless": "[]",  # 1
    "inverse_length": "1/[length]",  # 1/µm
    "amount": "[substance]",  # µM·µm³ = 1e-21 mol
    "flux": "[substance]/[length]**2/[time]",  # µM·µm/s (through a surface)
    "second_order_rate": "[length]**3/[substance]/[time]",  # 1/(µM·s)
    "surface_second_order_rate": "[length]**2/[substance]/[time]",  # 1/(µM·µm·s)
}

# name -> (noun phrase, dimensions in words, example)
_DESCRIPTIONS: dict[str, tuple[str, str, str]] = {
    "length": ("a length", "length", "2 um"),
    "area": ("an area", "length²", "1 um^2"),
    "volume": ("a volume", "length³", "1 um^3"),
    "time": ("a time", "time", "2 min"),
    "rate": ("a rate", "1/time", "0.1/s"),
    "diffusivity": ("a diffusivity", "length²/time", "0.1 um^2/s"),
    "concentration": ("a concentration", "amount/length³", "25 nM"),
    "density": ("a surface density", "amount/length²", "100 molecule/um^2"),
    "velocity": ("a velocity", "length/time", "0.01 um/s"),
    "dimensionless": ("a dimensionless number", "no units", "10 %"),
    "inverse_length": ("an inverse length", "1/length", "0.1/um"),
    "amount": ("an amount of substance", "amount", "1000 molecule"),
    "flux": ("a surface flux", "amount/(length²·time)", "1 uM*um/s"),
    "second_order_rate": ("a second-order rate constant", "1/(concentration·time)", "0.1/(uM*s)"),
    "surface_second_order_rate": (
        "a second-order surface rate constant",
        "1/(surface density·time)",
        "0.1/(uM*um*s)",
    ),
}

# Base dimension -> (solver unit, its name in pint, how many µm it also carries).
# The amount unit µM·µm³ is written as uM times µm³ so that µM and µM·µm read naturally.
_BASE = {
    "[substance]": ("uM", "micromolar", 3),
    "[length]": ("um", "micrometer", 0),
    "[time]": ("s", "second", 0),
}


class UnitError(ValueError):
    """A value whose units cannot be read or do not fit what was expected."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def describe(expect: str) -> str:
    """Words for a named expectation, e.g. "a diffusivity (length²/time, e.g. '0.1 um^2/s')".

    ``expect`` may also be a dimension in pint's notation (``"[substance]/[length]**3"``):
    "a value in uM".
    """
    if expect not in DIMENSIONS and expect.startswith("["):
        return f"a value in {solver_unit_of(expect)}"
    noun, words, example = _DESCRIPTIONS[_check_name(expect)]
    return f"{noun} ({words}, e.g. '{example}')"


def _check_name(expect: str) -> str:
    if expect not in DIMENSIONS and not expect.startswith("["):
        raise ValueError(f"unknown dimension name {expect!r}; known: {', '.join(DIMENSIONS)}")
    return expect


def _dimensionality(expect: str) -> Any:
    return ureg.get_dimensionality(DIMENSIONS.get(expect, expect))


def pint_dimension(dim: Dim) -> str:
    """``dim`` in pint's notation (``"[substance]**1*[length]**-2"``; ``"[]"``), for ``expect``."""
    parts = [
        f"{base}**{e}"
        for base, e in zip(_BASE, (dim.amount, dim.length, dim.time), strict=True)
        if e
    ]
    return "*".join(parts) or "[]"


def _dim_of(dimensionality: Any, shown: str) -> Dim:
    powers = _exponents(dimensionality, shown)
    return Dim(
        *(
            Fraction(powers[b]).limit_denominator(1000)
            for b in ("[substance]", "[length]", "[time]")
        )
    )


def dimension_of(value: str | float | int) -> Dim | None:
    """The dimension of a run-file value: None for a bare number (no declared unit).

    ``value`` has already been read by :func:`to_solver_units` (it is valid).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        float(text)
        return None
    except ValueError:
        pass
    return _dim_of(_quantity(text).dimensionality, text)


def read_unit(text: str) -> tuple[Dim, str, float]:
    """A unit (``"uM"``, ``"1"``, ``"molecule/um^2"``), read.

    Returns its dimension, its solver unit, and how many of the solver unit one of it
    is (1 for ``"nmol/m^2"`` = µM·µm, 0.00166 for ``"molecule/um^2"``).

    Raises:
        UnitError: ``text`` is no unit the solver knows.
    """
    shown = text.strip()
    if not shown:
        raise UnitError("empty unit: expected a unit such as 'uM', 'uM*um' or '1'")
    check_text(shown)
    one = "1" if shown == "1" else f"1 {shown}"
    try:
        quantity = _quantity(one)
    except UnitError:
        raise UnitError(f"cannot read '{shown}' as a unit") from None
    dim = _dim_of(quantity.dimensionality, shown)
    return dim, unit_text(dim), to_solver_units(one)


def _name_of(dimensionality: Any) -> str:
    """The DIMENSIONS name of a dimensionality, else pint's own spelling."""
    for name, dims in DIMENSIONS.items():
        if ureg.get_dimensionality(dims) == dimensionality:
            return name
    return str(dimensionality)


def _exponents(dimensionality: Any, shown: str) -> dict[str, float]:
    """Base-dimension exponents; only length, time and amount exist in the solver."""
    extra = sorted(set(dimensionality) - set(_BASE))
    if extra:
        raise UnitError(
            f"unsupported dimension {', '.join(extra)} in '{shown}' "
            f"({dimensionality}): the solver knows only length (um), "
            "time (s) and amount (uM*um^3)"
        )
    return {dim: dimensionality.get(dim, 0) for dim in _BASE}


def _finite(number: float, shown: str) -> float:
    if not math.isfinite(number):
        raise UnitError(f"not a finite number: '{shown}'")
    return number


def _quantity(text: str) -> pint.Quantity:
    try:
        quantity = ureg.Quantity(text)
        _finite(float(quantity.magnitude), text)
    except UnitError:
        raise
    except Exception as exc:  # pint raises many kinds of error for malformed text
        raise UnitError(f"cannot read '{text}' as a number with units: {exc}") from None
    return quantity


MAX_TEXT = 200  # characters of a value with a unit (default of to_solver_units' max_length)
MAX_DIGITS = 40  # digits of one number in it (default of max_digits)
MAX_POWER = 64  # largest exponent of a power in it
_DIGIT_RUNS = re.compile(r"\d+")
_POWER = re.compile(r"\*\*|\^")
_EXPONENT = re.compile(
    r"\s*(?:([+-]?\s*\d+(?:\.\d*)?)|\(\s*([+-]?\s*\d+(?:\.\d*)?)\s*"
    r"(?:/\s*(\d+(?:\.\d*)?)\s*)?\))"
)


def check_text(text: str, max_length: int = MAX_TEXT, max_digits: int = MAX_DIGITS) -> None:
    """Refuse a value with a unit whose reading could take unbounded time or memory.

    pint evaluates powers with Python integers (``"10**10**10 um"`` would not end) and
    grows long strings while it reads them. Accepted: at most ``max_length`` characters,
    numbers of at most ``max_digits`` digits, and powers whose exponent is a number (or
    a fraction in parentheses) of size at most :data:`MAX_POWER`, of a base that holds
    no power itself. Raises :class:`UnitError`.
    """
    if len(text) > max_length:
        raise UnitError(
            f"a value with a unit of {len(text)} characters (limit {max_length}; "
            "raise [limits] unit_length to allow more)"
        )
    longest = max((len(run) for run in _DIGIT_RUNS.findall(text)), default=0)
    if longest > max_digits:
        raise UnitError(
            f"a number of {longest} digits in '{_clip(text)}' (limit {max_digits}; "
            "raise [limits] number_digits to allow more)"
        )
    for power in _POWER.finditer(text):
        exponent = _EXPONENT.match(text, power.end())
        value = None
        if exponent is not None:
            top = exponent.group(1) or exponent.group(2)
            value = float(top.replace(" ", "")) / float(exponent.group(3) or 1)
        follows = text[exponent.end() :].lstrip() if exponent is not None else ""
        if value is None or abs(value) > MAX_POWER or _POWER.match(follows):
            raise UnitError(
                f"in '{_clip(text)}': the exponent of a power must be a number of size "
                f"at most {MAX_POWER} (e.g. 'um^2', 's^-1', 'um^(1/2)'), with no power of it"
            )
        base = text[: power.start()].rstrip()
        if base.endswith(")") and _POWER.search(_group_before(base)):
            raise UnitError(f"in '{_clip(text)}': a power of a power is not allowed")


def _group_before(text: str) -> str:
    """The parenthesised group ``text`` ends with (its closing parenthesis last)."""
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return text[i:]
    return text


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def to_solver_units(
    value: str | float | int,
    expect: str | None = None,
    *,
    max_length: int = MAX_TEXT,
    max_digits: int = MAX_DIGITS,
) -> float:
    """Convert ``value`` to solver units (µm, s, µM, µM·µm, amount µM·µm³) as a float.

    Bare numbers (or strings holding only a number) are taken to be in solver
    units already and returned unchecked.  Strings with units are read by pint;
    with ``expect`` (a :data:`DIMENSIONS` name) the dimensionality must match,
    without it any combination of length, time and amount is converted.
    Percent is dimensionless: ``"10 %"`` gives 0.1.  Strings are first checked by
    :func:`check_text` with ``max_length`` and ``max_digits``.  Raises :class:`UnitError`.
    """
    if expect is not None:
        _check_name(expect)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            shown = repr(value) if isinstance(value, float) else "an integer"
            return _finite(float(value), shown)
        except OverflowError:
            raise UnitError("not a finite number: an integer too large for a float") from None
    if not isinstance(value, str):
        raise UnitError(f"expected a number or a string with units, got {value!r}")
    text = value.strip()
    if not text:
        raise UnitError("empty value: expected a number or a string with units")
    check_text(text, max_length, max_digits)
    try:
        return _finite(float(text), text)
    except ValueError:
        pass  # not a bare number: read the units
    quantity = _quantity(text)
    given = quantity.dimensionality
    if expect is not None and given != _dimensionality(expect):
        raise UnitError(f"expected {describe(expect)}, got '{text}' ({_name_of(given)})")
    powers = _exponents(given, text)
    target = ureg.Unit("dimensionless")
    for dim, power in powers.items():
        _, pint_name, extra_um = _BASE[dim]
        target *= ureg.Unit(pint_name) ** power * ureg.micrometer ** (extra_um * power)
    return _finite(float(quantity.to(target).magnitude), text)


def solver_unit_of(quantity: Any) -> str:
    """The solver unit, as text, for the dimensionality of ``quantity``.

    ``quantity`` is a pint Quantity or Unit, a unit string (``"nM"``) or a
    :data:`DIMENSIONS` name.  Examples: diffusivity -> ``"um**2/s"``,
    concentration -> ``"uM"``, density -> ``"uM*um"``, rate -> ``"1/s"``,
    dimensionless -> ``"1"``.
    """
    if isinstance(quantity, str):
        spec, shown = DIMENSIONS.get(quantity, quantity), quantity
        dims = ureg.get_dimensionality(spec) if "[" in spec else _quantity(spec).dimensionality
    else:
        dims, shown = quantity.dimensionality, str(quantity)
    powers = _exponents(dims, shown)
    dim = Dim(
        amount=Fraction(powers["[substance]"]).limit_denominator(),
        length=Fraction(powers["[length]"]).limit_denominator(),
        time=Fraction(powers["[time]"]).limit_denominator(),
    )
    return unit_text(dim)


# Slurm's time formats: MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_CLOCK = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?$")
_COMPACT = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
    r"(?:(\d+(?:\.\d+)?)s)?$"
)


def parse_duration(value: str | float | int) -> float:
    """A wall-clock duration in seconds.

    Accepts seconds as a number, Slurm's ``MM:SS``, ``HH:MM:SS`` and ``D-HH[:MM[:SS]]``,
    compact ``2h``,
    ``1h30m``, ``90m``, ``45s``, and any pint time (``"2 h"``, ``"90 min"``).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UnitError(f"expected a duration such as '2h', '1:30:00' or '90 min', got {value!r}")
    text = str(value).strip().replace(" ", "") if isinstance(value, str) else None
    seconds = None
    clock = text is not None and (":" in text or "-" in text[1:])
    if clock and text is not None and (m := _CLOCK.match(text)):
        days, first, second, third = m.groups()
        fields = [int(g) for g in (first, second, third) if g is not None]
        if days is None:  # MM:SS or HH:MM:SS
            fields = [0] * (3 - len(fields)) + fields
        else:  # D-HH, D-HH:MM, D-HH:MM:SS
            fields += [0] * (3 - len(fields))
        hours, minutes, secs = fields
        seconds = ((int(days or 0) * 24 + hours) * 60 + minutes) * 60.0 + secs
    elif text and (m := _COMPACT.match(text)) and any(m.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = ((d * 24 + h) * 60 + mi) * 60 + s
    else:
        try:
            seconds = to_solver_units(value, "time")
        except UnitError:
            raise UnitError(
                f"expected a duration such as '2h', '1h30m', '1:30:00' or '90 min', got {value!r}"
            ) from None
    if not seconds > 0:
        raise UnitError(f"expected a positive duration, got {value!r}")
    return seconds
