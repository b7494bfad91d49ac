"""Rates checked dimensionally at load; species units and descriptions."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from solver import cli, config
from solver.errors import InputError
from solver.model.dimensions import Kind, Value, dimension, unit_text
from solver.model.expressions import parse_expression

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "mesh": {"shape": "disk", "radius": "1 um", "size": "0.5 um"},
    "time": {"end": "1 s", "dt": "0.1 s"},
    "stimulus": {
        "chemokine": {
            "kind": "linear",
            "mean": "25 nM",
            "steepness": "10 %",
            "direction": [1, 0],
            "K_D": "25 nM",
        }
    },
    "parameters": {
        "h": "1 um",
        "k_on": "1 um/s",
        "k_off": "0.5 1/s",
        "k": "2 1/s",
        "k2": "1 1/(uM*s)",
        "K": "0.5 uM",
        "Km": "0.5 uM*um",
        "L": "2 um",
        "tau": "10 s",
        "bare": 3,
        "n": 2,
    },
    "species": {
        "c": {"compartment": "cytosol", "initial": "1 uM", "D": "1 um^2/s"},
        "m": {"compartment": "membrane", "initial": 0.2},
        "E": {"compartment": "membrane", "unit": "1", "description": "local excitor"},
        "P": {"compartment": "membrane", "unit": "uM", "description": "PIP3"},
        "I": {"compartment": "cytosol", "unit": "1"},
    },
    "definitions": {"m_conc": "m/h"},
    "reactions": {},
}


def run_file(rate: str, equation: str, on: str | None = None, **parameters) -> dict:
    data = copy.deepcopy(BASE)
    data["parameters"].update(parameters)
    data["reactions"]["r"] = {"equation": equation, "rate": rate}
    if on:
        data["reactions"]["r"]["on"] = on
    return data


GOOD = [
    ("k_on*c - k_off*m", "c -> m"),  # binding: uM*um/s
    ("k_on*c*(1 + m**2/(Km**2 + m**2)) - k_off*m", "c -> m"),
    ("h*(k*c - k_off*m_conc)", "c -> m"),  # through a definition
    ("k*c", "c ->"),  # cytosol decay: uM/s
    ("k2*c**2", "2 c ->"),
    ("K/tau", "-> c"),
    ("k*(chemokine_occupancy - E)", "-> E"),  # a fraction: 1/s
    ("k*E*K", "-> P"),  # a volume-equivalent concentration: uM/s
    ("k*P*exp(-t/tau)", "P ->"),
    ("k*P/(1 + (P/K)**2)", "P ->"),
    ("h*k*chemokine_occupancy", "-> I"),  # a cytosol species made at the membrane: um/s
    ("k*I", "I ->"),
    ("k*c*exp(-(x**2 + y**2)/L**2)", "c ->"),
    ("k*max(c - K, 0)", "c ->"),
    ("k*sqrt(c*K)", "c ->"),
    ("h*(k*min(c, K) + K/tau*log(1 + m/Km))", "-> c", "membrane"),
    ("bare*c", "c ->"),  # a bare parameter takes the dimension its use requires
    ("bare*c - k_off*m", "c -> m"),
    ("k_on*c*(m/Km)**n", "c -> m"),  # a bare exponent, constant
    ("k_on*chemokine/K*c", "c -> m"),
    ("k*P*abs(sin(pi*x/L))", "P ->"),
]


@pytest.mark.parametrize(("rate", "equation", "on"), [(*g, None)[:3] for g in GOOD])
def test_dimensionally_sound_rates_pass(rate, equation, on):
    model = config.from_dict(run_file(rate, equation, on)).model
    assert model.reactions["r"].rate.text


BAD = [
    # (rate, equation, overrides, fragments the one-line message must hold)
    ("k_on*c - k_off*m", "c -> m", {"k_on": "1 1/s"}, ["cannot subtract", "uM/s", "uM*um/s"]),
    ("k*c", "c ->", {"k": "2 nM"}, ["'k*c' is in uM**2", "uM/s", "k = '2 nM'"]),
    ("k*c", "c ->", {"k": "1 um/s"}, ["'k*c' is in uM*um/s", "rate in uM/s"]),
    ("k*P", "P ->", {"k": "1 um/s"}, ["changes P (uM)", "uM/s"]),
    ("exp(c)*k*c", "c ->", {}, ["exp() needs a dimensionless argument", "'c' is in uM"]),
    ("exp(-t)*k*c", "c ->", {}, ["exp()", "'-t' is in s"]),
    ("log(x)*k*c", "c ->", {}, ["log()", "um"]),
    ("c + k", "c ->", {}, ["cannot add 'c' (uM) and 'k' (1/s)"]),
    ("k*c + K", "c ->", {}, ["cannot add", "'K' (uM)", "uM/s"]),
    ("k*(chemokine_occupancy - m)", "-> m", {}, ["cannot subtract", "(1)", "(uM*um)"]),
    ("k*c", "c -> m", {}, ["'k*c' is in uM/s", "uM*um/s", "membrane reaction"]),
    ("k_on*c", "c ->", {}, ["is in uM*um/s", "cytosol reaction", "uM/s"]),
    ("k*E", "-> E", {"k": "1 uM*um/s"}, ["uM*um/s", "changes E (1)", "rate in 1/s"]),
    ("k*(1 + (P/K)**2)", "P ->", {"K": "1 1/s"}, ["cannot add '1' (1)", "uM**2*s**2"]),
    ("k*c*x**c", "c ->", {}, ["exponent", "'c'", "uM"]),
    ("k*c*max(c, K, x)", "c ->", {}, ["max() of", "'x' (um)"]),
    ("k*c*L**E", "c ->", {}, ["a power of 'L' (um) needs a constant exponent"]),
    ("k_off*m", "c -> P", {}, ["one rate cannot change c (uM, cytosol), P (uM, membrane)"]),
    ("h*k*chemokine_occupancy", "-> c", {}, ["'h*k*chemokine_occupancy' is in um/s", "uM*um/s"]),
    ("k*chemokine", "-> E", {}, ["'k*chemokine' is in uM/s", "rate in 1/s"]),
    ("sin(tau)*k*c", "c ->", {}, ["sin() needs a dimensionless argument", "'tau' is in s"]),
    ("k*m_conc", "m ->", {}, ["'k*m_conc' is in uM/s", "uM*um/s"]),
]


@pytest.mark.parametrize(("rate", "equation", "overrides", "fragments"), BAD)
def test_dimensionally_wrong_rates_fail_on_one_line(rate, equation, overrides, fragments):
    with pytest.raises(InputError) as info:
        config.from_dict(run_file(rate, equation, **overrides), source="run.toml")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("run.toml: reactions.r."), text
    for fragment in fragments:
        assert fragment in text, (fragment, text)


def test_rates_in_bare_numbers_are_taken_as_written():
    """A rate with no name of a declared unit is in solver units: not checked."""
    data = copy.deepcopy(BASE)
    data["reactions"] = {
        "a": {"equation": "m ->", "rate": "m"},
        "b": {"equation": "c -> m", "rate": "c*chemokine_occupancy - 0.5*m"},
        "c": {"equation": "-> c", "rate": "-0.5*(x**2 - y**2)*exp(-t)"},
        "d": {"equation": "c ->", "rate": "bare*c + 1"},
    }
    model = config.from_dict(data).model
    assert set(model.reactions) == {"a", "b", "c", "d"}


def test_a_definition_is_checked_where_it_is_written():
    data = run_file("k*c", "c ->")
    data["definitions"]["wrong"] = "K + tau"
    with pytest.raises(InputError, match=r"definitions\.wrong: cannot add 'K' \(uM\)"):
        config.from_dict(data)


def test_an_expression_stimulus_has_the_dimension_of_its_expression():
    data = run_file("k*s*E", "-> E")
    data["stimulus"] = {"s": {"kind": "expression", "expression": "exp(-x**2/L**2)"}}
    assert config.from_dict(data).model.reactions["r"]
    data["stimulus"]["s"]["expression"] = "exp(-x**2)*L"  # exp of an area
    with pytest.raises(InputError, match=r"stimulus\.s\.expression: exp\(\)"):
        config.from_dict(data)


@pytest.mark.parametrize(
    ("unit", "fragment"),
    [
        ("molecule/um^2", "1 molecule/um^2 = 0.00166054 uM*um"),
        ("nM", "1 nM = 0.001 uM"),
        ("%", "1 % = 0.01 1"),
        ("s", "a species is a concentration (uM), a surface density (uM*um) or a dimensionless"),
        ("wibble", "cannot read 'wibble' as a unit"),
        (3, "expected a unit such as"),
    ],
)
def test_species_units_that_would_rescale_or_make_no_sense_are_refused(unit, fragment):
    data = run_file("k*c", "c ->")
    data["species"]["m"]["unit"] = unit
    with pytest.raises(InputError) as info:
        config.from_dict(data)
    assert "species.m.unit" in str(info.value) and fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_species_units_and_descriptions_are_read():
    data = run_file("k*c", "c ->")
    data["species"]["m"]["unit"] = "nmol/m^2"  # = 1 uM*um: the compartment's unit
    data["species"]["c"]["description"] = "  Rac-GDP \t GDI "
    species = config.from_dict(data).model.species
    assert species["m"].unit == "" and species["m"].units == "uM*um"
    assert species["P"].units == "uM" and species["P"].description == "PIP3"
    assert species["E"].units == "1" and species["I"].units == "1"
    assert species["c"].description == "Rac-GDP GDI"


def test_initial_values_are_in_the_declared_unit():
    data = run_file("k*c", "c ->")
    data["species"]["P"]["initial"] = "50 nM"
    data["species"]["E"]["initial"] = "20 %"
    species = config.from_dict(data).model.species
    assert species["P"].initial == pytest.approx(0.05)
    assert species["E"].initial == pytest.approx(0.2)
    data["species"]["P"]["initial"] = "50 molecule/um^2"
    with pytest.raises(InputError, match=r"species\.P\.initial: expected a concentration"):
        config.from_dict(data)


@pytest.mark.parametrize("bad", [7, "x" * 81, "bell\x07"])
def test_bad_descriptions_are_refused(bad):
    data = run_file("k*c", "c ->")
    data["species"]["c"]["description"] = bad
    with pytest.raises(InputError, match=r"species\.c\.description"):
        config.from_dict(data)


@pytest.mark.serial  # the message is printed on rank 0
def test_a_parameter_of_the_wrong_unit_set_from_the_command_line(capsys):
    run = str(ROOT / "runs" / "chemotaxis" / "config.toml")
    assert cli.main(["check", run, "--set", "parameters.k_P=2 nM"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "reactions.pip3_synthesis.rate" in err[0] and "k_P = '2 nM'" in err[0]
    assert "uM**2" in err[0] and "uM/s" in err[0]


@pytest.mark.parametrize("case", sorted(p.parent.name for p in ROOT.glob("runs/*/config.toml")))
def test_shipped_run_files_are_dimensionally_sound(case):
    path = ROOT / "runs" / case / "config.toml"
    data = tomllib.loads(path.read_text())
    assert config.from_dict(data, source=str(path), base_dir=path.parent).model.reactions


def test_shipped_chemotaxis_declares_what_its_species_are():
    model = config.load(ROOT / "runs" / "chemotaxis" / "config.toml").model
    s = model.species
    assert (s["P"].units, s["P"].description) == ("uM", "PIP3")
    assert s["E"].units == "1" and s["I"].units == "1"
    assert (s["Rac_m"].units, s["Rac_m"].description) == ("uM*um", "Rac-GTP")
    assert all(sp.description for sp in s.values())


def test_dimension_algebra():
    um, s = Value.fixed(parse_dim("um")), Value.fixed(parse_dim("s"))
    names = {"x": um, "t": s, "k": Value(Kind.FREE)}
    assert unit_text(dimension(parse_expression("x**2/t"), names).dim) == "um**2/s"
    assert unit_text(dimension(parse_expression("sqrt(x)"), names).dim) == "um**(1/2)"
    assert dimension(parse_expression("k*x"), names).kind is Kind.FREE
    assert dimension(parse_expression("2*pi"), names).kind is Kind.NUMBER
    assert dimension(parse_expression("x + 0"), names).dim == um.dim


def parse_dim(unit):
    from solver.config.units import read_unit

    return read_unit(unit)[0]


def test_a_number_multiplying_a_whole_term_of_a_rate_is_a_rate_constant():
    data = run_file("k_on*c - 0.5*m", "c -> m")
    assert config.from_dict(data).model.reactions["r"]
    for rate in ("k_on*c*exp(2*c)", "k_on*c*(1 + c)"):  # elsewhere a number is a pure number
        with pytest.raises(InputError, match="reactions.r.rate"):
            config.from_dict(run_file(rate, "c -> m"))
