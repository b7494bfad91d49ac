"""Polarity read-outs against their exact values on the unit sphere and circle.

P1 interpolants of smooth fields and a polyhedral surface: the integral read-outs
(PI, front direction) carry an O(h²) error; the nodal caps and cap fraction an O(h)
one (which nodes fall inside a cap), hence the tolerances below.
"""

from __future__ import annotations

import math

from mpi4py import MPI

import numpy as np
import pytest
from dolfinx import fem

from solver.fem.geometry import CellGeometry
from solver.fem.readouts import MembraneReadouts
from solver.mesh import meshing

SIZE = 0.1


@pytest.fixture(scope="module", params=["sphere", "disk"])
def readouts(request):
    tagged = meshing.generate(request.param, MPI.COMM_WORLD, radius=1.0, size=SIZE)
    geometry = CellGeometry.from_tagged(tagged)
    space = fem.functionspace(geometry.membrane, ("Lagrange", 1))
    r = MembraneReadouts(geometry, space, np.zeros(3), cap_angle=15.0)
    return request.param, r, space


def nodal(space, f):
    u = fem.Function(space)
    u.interpolate(lambda x: f(x))
    return u.x.array[: space.dofmap.index_map.size_local]


def test_polarisation_index_and_front_of_a_linear_profile(readouts):
    shape, r, space = readouts
    d = np.array([0.6, 0.8, 0.0])
    u = nodal(space, lambda x: 1 + 0.5 * (d[0] * x[0] + d[1] * x[1]))
    out = r.of(u, d)
    # ∫(1 + a x·d) ν = a ∫ (x·d) x = a |Γ|/dim · d on the unit sphere (dim 3) or circle (dim 2)
    dim = 3 if shape == "sphere" else 2
    assert out["PI"] == pytest.approx(0.5 / dim, rel=3 * SIZE**2)
    front = np.array([out[f"front_{a}"] for a in "xyz"[: r.gdim]])
    assert np.allclose(front, d[: r.gdim], atol=3 * SIZE**2)
    assert out["angle"] < math.degrees(3 * SIZE**2)


def test_front_back_ratio_of_caps(readouts):
    shape, r, space = readouts
    d = np.array([0.0, 1.0, 0.0])
    u = nodal(space, lambda x: 1 + 0.5 * x[1])
    a = math.radians(15.0)
    # mean of cos θ over the cap θ ≤ α: sphere (1 + cos α)/2, circle sin α/α
    m = (1 + math.cos(a)) / 2 if shape == "sphere" else math.sin(a) / a
    exact = (1 + 0.5 * m) / (1 - 0.5 * m)
    assert r.front_back(u, d) == pytest.approx(exact, rel=0.02)


def test_cap_fraction_and_correlations(readouts):
    _, r, space = readouts
    x = nodal(space, lambda p: p[0])
    y = nodal(space, lambda p: p[1])
    assert r.of(x, None)["cap_fraction"] == pytest.approx(0.5, abs=2 * SIZE)
    assert r.correlation(x, -2 * x + 3) == pytest.approx(-1.0, abs=1e-12)
    assert abs(r.correlation(x, y)) < 3 * SIZE**2


def test_uniform_field_is_unpolarised(readouts):
    _, r, space = readouts
    u = nodal(space, lambda p: 2.0 + 0 * p[0])
    out = r.of(u, np.array([1.0, 0, 0]))
    assert out["PI"] < 1e-12 and out["FB"] == pytest.approx(1.0, rel=1e-12)
    assert out["cap_fraction"] == 0.0
    # no front: its direction and angle are undefined (NaN), whatever the round-off
    assert all(math.isnan(out[f"front_{a}"]) for a in "xyz"[: r.gdim])
    assert math.isnan(out["angle"])
    assert math.isnan(r.correlation(u, nodal(space, lambda p: p[0])))
