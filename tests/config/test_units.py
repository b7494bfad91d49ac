"""Tests for solver.config.units: parsing, dimension checks and conversion to solver units."""

from __future__ import annotations

import math

import pint
import pytest

import solver.config.units as units
from solver.config.units import (
    DIMENSIONS,
    UnitError,
    describe,
    solver_unit_of,
    to_solver_units,
    ureg,
)

N_A = 6.02214076e23
MOLECULES_PER_UM2_PER_UM_UM = N_A * 1e-21  # 1 µM·µm = 1e-21 mol/µm² = 602.214 molecules/µm²


def test_library_imports_no_dolfinx() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(units.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {name.split(".")[0] for name in names} & {"dolfinx", "petsc4py", "ufl"}


def test_registry_units_parse() -> None:
    for text in (
        "molecule",
        "molecules",
        "particle",
        "uM",
        "nM",
        "mM",
        "um",
        "µm",
        "min",
        "%",
        "percent",
    ):
        ureg.Quantity(f"1 {text}")
    assert ureg.Quantity("1 molecule").check("[substance]")
    assert ureg.Quantity("1 molecule").to("mol").magnitude == pytest.approx(1 / N_A, rel=1e-12)
    assert ureg.Quantity("1 %/um").check("1/[length]")


def test_molecule_fallback_registry() -> None:
    registry = units._make_registry(own_molecule=True)
    q = registry.Quantity("602.214076 molecules/um^2").to("uM*um")
    assert q.magnitude == pytest.approx(1.0, rel=1e-12)
    assert registry.Quantity("1 particle").to("mol").magnitude == pytest.approx(1 / N_A)


def test_required_dimensions_present() -> None:
    required = {
        "length",
        "area",
        "volume",
        "time",
        "rate",
        "diffusivity",
        "concentration",
        "density",
        "velocity",
        "dimensionless",
        "inverse_length",
        "amount",
    }
    assert required <= DIMENSIONS.keys()
    for spec in DIMENSIONS.values():
        ureg.get_dimensionality(spec)


def test_molecule_density_factor() -> None:
    # 1 µM·µm = 1e-6 mol/L * 1e-6 m = 1e-9 mol/m² = 1e-21 mol/µm² = 602.214 molecules/µm²
    assert MOLECULES_PER_UM2_PER_UM_UM == pytest.approx(602.214076)
    assert to_solver_units("602.214076 molecule/um^2", "density") == pytest.approx(1.0, rel=1e-12)
    assert to_solver_units("100 molecule/um^2") == pytest.approx(0.16605390671738, rel=1e-12)
    assert to_solver_units("1e-9 mol/m^2", "density") == pytest.approx(1.0, rel=1e-12)
    assert to_solver_units("1 uM*um", "density") == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize(
    ("value", "expect", "result"),
    [
        ("10 %", None, 0.1),
        ("10 percent", "dimensionless", 0.1),
        ("1 %/um", None, 0.01),
        ("1 %/um", "inverse_length", 0.01),
        ("25 nM", "concentration", 0.025),
        ("2 mM", None, 2000.0),
        ("1/min", "rate", 1 / 60),
        ("0.5 um^2/s", "diffusivity", 0.5),
        ("0.5 µm**2/s", None, 0.5),
        ("3e-14 m^2/s", "diffusivity", 0.03),
        ("2 min", "time", 120.0),
        ("1 h", None, 3600.0),
        ("1 mm", "length", 1000.0),
        ("2 um^2", "area", 2.0),
        ("1 pL", "volume", 1000.0),  # 1 pL = 1000 µm³
        ("0.1 um/min", "velocity", 0.1 / 60),
        ("1 mol", "amount", 1e21),
        ("1000 molecule", "amount", 1000 / (N_A * 1e-21)),
        ("-3 um", "length", -3.0),  # signs are the caller's business
        ("1 um**0.5", None, 1.0),
        ("5 furlongs/fortnight", None, 5 * 201.168e6 / (14 * 86400)),
        ("0.1/(uM*s)", "second_order_rate", 0.1),
        ("1 uM*um/s", "flux", 1.0),
    ],
)
def test_conversion(value: str, expect: str | None, result: float) -> None:
    assert to_solver_units(value, expect) == pytest.approx(result, rel=1e-12)


@pytest.mark.parametrize("value", [0.5, 3, -2, " 0.5 ", "1e-3", "7"])
def test_bare_numbers_are_solver_units(value: float | int | str) -> None:
    out = to_solver_units(value, "diffusivity")  # no dimension check possible: accepted
    assert isinstance(out, float) and out == float(value)
    assert to_solver_units(value) == float(value)


def test_wrong_dimension_message() -> None:
    with pytest.raises(UnitError) as info:
        to_solver_units("3 nM", "diffusivity")
    assert info.value.message == (
        "expected a diffusivity (length²/time, e.g. '0.1 um^2/s'), got '3 nM' (concentration)"
    )
    with pytest.raises(UnitError, match=r"expected a rate .* got '10 %' \(dimensionless\)"):
        to_solver_units("10 %", "rate")
    with pytest.raises(UnitError, match=r"got '1 degC' \(\[temperature\]\)"):
        to_solver_units("1 degC", "length")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("3 bananas", "3 bananas"),
        ("1 +* um", "1 +* um"),
        ("1 um + 1 s", "1 um + 1 s"),
        ("3 kg", "[mass]"),
        ("300 K", "[temperature]"),
        ("1 kg*um/s", "[mass]"),
        ("inf um", "finite"),
        ("nan", "finite"),
        ("1e400 um", "finite"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_rejected(value: str, fragment: str) -> None:
    with pytest.raises(UnitError) as info:
        to_solver_units(value)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), True, None, [1.0]])
def test_rejected_non_strings(value: object) -> None:
    with pytest.raises(UnitError):
        to_solver_units(value)  # type: ignore[arg-type]


def test_unknown_dimension_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown dimension name"):
        to_solver_units("1 um", "lenght")
    with pytest.raises(ValueError, match="unknown dimension name"):
        describe("lenght")


def test_describe() -> None:
    assert describe("diffusivity") == "a diffusivity (length²/time, e.g. '0.1 um^2/s')"
    assert describe("density").startswith("a surface density")


@pytest.mark.parametrize("name", sorted(DIMENSIONS))
def test_examples_fit_their_dimension(name: str) -> None:
    example = units._DESCRIPTIONS[name][2]
    assert f"e.g. '{example}'" in describe(name)
    value = to_solver_units(example, name)
    assert math.isfinite(value)
    assert ureg.Quantity(example).check(DIMENSIONS[name])
    assert units._name_of(ureg.get_dimensionality(DIMENSIONS[name])) == name


@pytest.mark.parametrize(
    ("what", "unit"),
    [
        ("length", "um"),
        ("area", "um**2"),
        ("volume", "um**3"),
        ("time", "s"),
        ("rate", "1/s"),
        ("diffusivity", "um**2/s"),
        ("concentration", "uM"),
        ("density", "uM*um"),
        ("velocity", "um/s"),
        ("dimensionless", "1"),
        ("inverse_length", "1/um"),
        ("amount", "uM*um**3"),
        ("flux", "uM*um/s"),
        ("second_order_rate", "1/(uM*s)"),
        ("surface_second_order_rate", "1/(uM*um*s)"),
        ("nM", "uM"),
        ("m^2/s", "um**2/s"),
        ("1 um**0.5", "um**(1/2)"),
    ],
)
def test_solver_unit_of_names_and_strings(what: str, unit: str) -> None:
    assert solver_unit_of(what) == unit


def test_solver_unit_of_quantities() -> None:
    assert solver_unit_of(ureg.Quantity("0.5 um^2/s")) == "um**2/s"
    assert solver_unit_of(ureg.Quantity("3 nM")) == "uM"
    assert solver_unit_of(ureg.Unit("molecule/um^2")) == "uM*um"
    # the named unit really is the one to_solver_units converts into
    q = ureg.Quantity("7 molecule/um^2")
    assert q.to(solver_unit_of(q)).magnitude == pytest.approx(to_solver_units("7 molecule/um^2"))
    with pytest.raises(UnitError, match=r"\[mass\]"):
        solver_unit_of(ureg.Quantity("1 kg"))
    assert isinstance(ureg, pint.UnitRegistry)
