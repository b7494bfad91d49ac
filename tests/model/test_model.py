"""The model description: equations, stoichiometry, conserved pools."""

from __future__ import annotations

from fractions import Fraction

import pytest

from solver.errors import InputError
from solver.model.expressions import parse_expression
from solver.model.model import Model, Reaction, Species, parse_equation


def test_parse_equation_coefficients_and_empty_sides():
    assert parse_equation("A + 2 B -> C", "k") == ({"A": 1, "B": 2}, {"C": 1})
    assert parse_equation("2*A -> ", "k") == ({"A": 2}, {})
    assert parse_equation(" -> X", "k") == ({}, {"X": 1})
    assert parse_equation("A + A -> B", "k") == ({"A": 2}, {"B": 1})


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("A => B", "one '->'"),
        ("A -> B -> C", "one '->'"),
        ("->", "no species"),
        ("A + -> B", "cannot read"),
        ("2.5 A -> B", "cannot read"),
        ("0 A -> B", "zero"),
    ],
)
def test_parse_equation_rejects(text, fragment):
    with pytest.raises(InputError) as err:
        parse_equation(text, "reactions.r.equation")
    assert fragment in str(err.value)
    assert "reactions.r.equation" in str(err.value)


def _model(equations: dict[str, str], compartments: dict[str, str]) -> Model:
    species = {n: Species(n, c, 0.0, 0.0) for n, c in compartments.items()}
    reactions = {}
    for name, eq in equations.items():
        left, right = parse_equation(eq, name)
        reactions[name] = Reaction(name, left, right, parse_expression("1"), "membrane")
    return Model(species, reactions)


def test_stoichiometry_is_net_change():
    left, right = parse_equation("A + B -> 2 A", "k")
    r = Reaction("r", left, right, parse_expression("1"), "cytosol")
    assert r.stoichiometry == {"A": 1, "B": -1}


def test_conserved_pools_of_exchange_pairs():
    model = _model(
        {"bind": "K_c -> K_m", "rac": "Rac_c -> Rac_m", "make": "-> P", "drop": "P ->"},
        {
            "K_c": "cytosol",
            "K_m": "membrane",
            "Rac_c": "cytosol",
            "Rac_m": "membrane",
            "P": "membrane",
        },
    )
    pools = {p.name: dict(p.weights) for p in model.conserved_pools()}
    assert pools == {"K_c+K_m": {"K_c": 1, "K_m": 1}, "Rac_c+Rac_m": {"Rac_c": 1, "Rac_m": 1}}


def test_conserved_pool_with_stoichiometry_two():
    model = _model({"dimerise": "2 A -> D"}, {"A": "cytosol", "D": "membrane"})
    (pool,) = model.conserved_pools()
    assert pool.weights == {"A": Fraction(1), "D": Fraction(2)}


def test_untouched_species_are_not_listed_as_pools():
    model = _model({"bind": "c -> m"}, {"c": "cytosol", "m": "membrane", "s": "cytosol"})
    assert [p.name for p in model.conserved_pools()] == ["c+m"]


def test_sources_break_conservation():
    model = _model({"bind": "c -> m", "src": "-> c"}, {"c": "cytosol", "m": "membrane"})
    assert model.conserved_pools() == []
