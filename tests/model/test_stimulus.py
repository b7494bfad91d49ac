"""Stimuli: time events, and the fields of each kind against their formulas."""

from __future__ import annotations

import math

from mpi4py import MPI

import numpy as np
import pytest
from dolfinx import fem

from solver import config
from solver.errors import InputError
from solver.mesh import meshing
from solver.model.expressions import parse_expression
from solver.model.stimulus import Stimulus, StimulusEvent, StimulusField, state_at


def test_events_switch_rotate_remove_and_wash_out():
    s = Stimulus(
        "c",
        "linear",
        mean=1.0,
        gradient=0.1,
        direction=(1.0, 0.0, 0.0),
        events=(
            StimulusEvent(at=10.0, direction=(0.0, 1.0)),
            StimulusEvent(at=20.0, rotation=math.pi / 20),  # quarter turn in 10 s about z
            StimulusEvent(at=40.0, rotation=0.0),
            StimulusEvent(at=50.0, remove=True),
            StimulusEvent(at=60.0, mean=2.0),
            StimulusEvent(at=70.0, washout=True),
        ),
    )
    assert np.allclose(state_at(s, 5.0).direction, [1, 0, 0])
    assert np.allclose(state_at(s, 10.0).direction, [0, 1, 0])  # an event applies at its time
    assert np.allclose(state_at(s, 30.0).direction, [-1, 0, 0], atol=1e-12)  # rotated 90°
    assert np.allclose(state_at(s, 45.0).direction, [0, -1, 0], atol=1e-12)  # stopped at 180°
    assert state_at(s, 49.0).gradient == 0.1 and state_at(s, 50.0).gradient == 0.0
    assert state_at(s, 65.0).mean == 2.0 and state_at(s, 65.0).scale == 1.0
    assert state_at(s, 70.0).scale == 0.0


@pytest.fixture(scope="module")
def sphere():
    tagged = meshing.generate("sphere", MPI.COMM_WORLD, radius=2.0, size=0.6)
    return tagged.mesh


def _values_at_vertices(mesh, expr):
    """Interpolate a UFL expression at the P1 nodes: values and node coordinates."""
    space = fem.functionspace(mesh, ("Lagrange", 1))
    f = fem.Function(space)
    f.interpolate(fem.Expression(expr, space.element.interpolation_points))
    n = space.dofmap.index_map.size_local
    return f.x.array[:n], space.tabulate_dof_coordinates()[:n]


@pytest.mark.parametrize("kind", ["linear", "exponential", "point_source", "expression"])
def test_each_kind_matches_its_formula(sphere, kind):
    center = np.array([0.1, -0.2, 0.3])
    d = np.array([2.0, 1.0, -2.0]) / 3.0
    p = np.array([6.0, 0.0, 0.0])
    args = {
        "linear": dict(mean=0.025, gradient=0.05, direction=tuple(d)),
        "exponential": dict(mean=0.025, gradient=0.05, direction=tuple(d)),
        "point_source": dict(mean=0.025, position=tuple(p)),
        "expression": dict(expression=parse_expression("k*(1 + x*y) + t")),
    }[kind]
    s = Stimulus("c", kind, K_D=0.025, **args)
    field = StimulusField(s, center, {"k": 0.5})
    exprs = field.expression(sphere)
    field.update(3.0)
    c, x = _values_at_vertices(sphere, exprs["c"])
    rho, _ = _values_at_vertices(sphere, exprs["c_occupancy"])
    r = x - center
    expected = {
        "linear": np.maximum(0.025 * (1 + 0.05 * r @ d), 0),
        "exponential": 0.025 * np.exp(0.05 * r @ d),
        "point_source": 0.025 * np.linalg.norm(center - p) / np.linalg.norm(x - p, axis=1),
        "expression": 0.5 * (1 + x[:, 0] * x[:, 1]) + 3.0,
    }[kind]
    assert np.allclose(c, expected, rtol=1e-12, atol=1e-14)
    assert np.allclose(rho, expected / (expected + 0.025), rtol=1e-12)


def test_washout_zeroes_the_field(sphere):
    s = Stimulus(
        "c", "linear", mean=0.025, gradient=0.05, events=(StimulusEvent(at=1.0, washout=True),)
    )
    field = StimulusField(s, np.zeros(3), {})
    expr = field.expression(sphere)["c"]
    field.update(2.0)
    c, _ = _values_at_vertices(sphere, expr)
    assert np.all(c == 0)


BASE = {
    "mesh": {"shape": "disk", "radius": "5 um", "size": "1 um"},
    "time": {"end": 1, "dt": 0.5},
    "species": {"m": {"compartment": "membrane"}},
}


def _stimulus_doc(table):
    return {**BASE, "stimulus": {"chemokine": table}}


def test_steepness_is_the_difference_across_the_cell():
    cfg = config.from_dict(_stimulus_doc({"kind": "linear", "mean": "10 nM", "steepness": "10 %"}))
    assert cfg.model.stimuli["chemokine"].gradient == pytest.approx(0.1 / 10.0)  # per µm
    cfg = config.from_dict(_stimulus_doc({"kind": "exponential", "steepness": "10 %"}))
    assert cfg.model.stimuli["chemokine"].gradient == pytest.approx(math.log(1.1) / 10.0)
    cfg = config.from_dict(_stimulus_doc({"kind": "linear", "gradient": "1 %/um"}))
    assert cfg.model.stimuli["chemokine"].gradient == pytest.approx(0.01)


@pytest.mark.parametrize(
    "table, key, fragment",
    [
        ({"kind": "cone"}, "stimulus.chemokine.kind", "linear"),
        ({"kind": "linear", "mean": "3 um"}, "stimulus.chemokine.mean", "concentration"),
        ({"kind": "linear", "gradient": "3 nM"}, "stimulus.chemokine.gradient", "1/length"),
        ({"kind": "linear", "direction": [0, 0]}, "stimulus.chemokine.direction", "zero"),
        ({"kind": "point_source"}, "stimulus.chemokine.position", "missing"),
        ({"kind": "expression", "expression": "q*x"}, "stimulus.chemokine.expression", "'q'"),
        ({"kind": "linear", "position": [1, 2]}, "stimulus.chemokine.position", "not used"),
        ({"kind": "linear", "events": [{"at": "5 s"}]}, "stimulus.chemokine.events[0]", "change"),
        (
            {"kind": "linear", "events": [{"at": "5 m", "remove": True}]},
            "stimulus.chemokine.events[0].at",
            "time",
        ),
        ({"kind": "linear", "K_D": "-1 nM"}, "stimulus.chemokine.K_D", "positive"),
    ],
)
def test_bad_stimulus_tables(table, key, fragment):
    with pytest.raises(InputError) as err:
        config.from_dict(_stimulus_doc(table), "case.toml")
    assert str(err.value).startswith(f"case.toml: {key}") and fragment in str(err.value)


def test_occupancy_is_an_expression_name_and_makes_a_membrane_reaction():
    doc = _stimulus_doc({"kind": "linear", "mean": "25 nM", "K_D": "25 nM"})
    doc["species"]["s"] = {"compartment": "cytosol", "D": 1}
    doc["reactions"] = {"make": {"equation": "-> s", "rate": "chemokine_occupancy"}}
    cfg = config.from_dict(doc)
    assert cfg.model.reactions["make"].location == "membrane"
