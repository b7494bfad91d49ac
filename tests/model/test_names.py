"""Names as expressions read them: NFKC normalisation, clashes and look-alikes."""

from __future__ import annotations

import pytest

from solver import config
from solver.errors import InputError
from solver.model.expressions import parse_expression
from solver.model.names import NameClash, Names, describe, normalise, skeleton

MICRO, MU = "\u00b5", "\u03bc"


def test_normalise_as_python_does():
    assert normalise(MICRO) == MU
    assert normalise("\U0001d465") == "x"
    assert normalise("\uff4b_on") == "k_on"
    assert parse_expression(f"{MICRO} + 1").names == {MU}  # Python's own reading


def test_skeleton_maps_look_alikes_only():
    assert skeleton("\u0445") == "x"  # Cyrillic
    assert skeleton("\u03bf") == "o"  # Greek omicron
    for distinct in ("\u03c4", "\u03ba", "\u03c7", "\u03c1", "\u03b1"):  # tau kappa chi rho alpha
        assert skeleton(distinct) == distinct


def test_names_refuse_clashes():
    names = Names({"x": "reserved"})
    assert names.add(MICRO, "a parameter") == MU
    with pytest.raises(NameClash, match="same name"):
        names.add(MU, "a species")
    with pytest.raises(NameClash, match="looks like"):
        names.add("\u0445", "a species")
    assert names.add("tau", "a parameter") == "tau"
    assert describe(MICRO) == "'\u00b5' (U+00B5)"


BASE = {
    "mesh": {"shape": "disk", "radius": "2 um", "size": "0.5 um"},
    "time": {"end": "1 s", "dt": "0.1 s"},
    "parameters": {MICRO: "2 1/s", "\u03c4": "1"},
    "species": {"u": {"compartment": "cytosol", "D": 1, "initial": 1}},
    "reactions": {"decay": {"equation": "u ->", "rate": f"{MU}*u/\u03c4"}},
}


def test_a_single_micro_sign_is_read_as_mu_everywhere():
    cfg = config.from_dict(BASE)
    assert cfg.model.parameters == {MU: 2.0, "\u03c4": 1.0}
    assert cfg.model.reactions["decay"].rate.names == {MU, "u", "\u03c4"}


def test_a_membrane_species_written_with_the_micro_sign_keeps_its_reactions_on_the_membrane():
    d = {
        **BASE,
        "species": {
            "u": {"compartment": "cytosol", "D": 1, "initial": 1},
            MICRO + "m": {"compartment": "membrane", "D": 0.1, "initial": 1},
        },
        "parameters": {"k": 1},
        "reactions": {"r": {"equation": "u ->", "rate": f"k*u*{MU}m"}},
        "metrics": {"species": [MICRO + "m"]},
    }
    cfg = config.from_dict(d)
    assert cfg.model.reactions["r"].location == "membrane"
    assert cfg.metrics.species == (MU + "m",)


@pytest.mark.parametrize(
    ("parameters", "key"),
    [
        ({MICRO: 1, MU: 2}, f"parameters.{MU}"),
        ({"\U0001d465": 1}, "parameters.\U0001d465"),
        ({"\u0443": 1, "y_": 1}, "parameters.\u0443"),
    ],
)
def test_clashing_names_are_refused(parameters, key):
    with pytest.raises(InputError) as err:
        config.from_dict({**BASE, "parameters": parameters}, "case.toml")
    assert str(err.value).startswith(f"case.toml: {key}:")
