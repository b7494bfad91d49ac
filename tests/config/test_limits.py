"""The [limits] table: defaults that refuse accidents, raised in the run file when meant."""

from __future__ import annotations

import copy
import math

import pytest

from solver import config
from solver.config import limits
from solver.config.limits import KEYS, Limits, read_limits
from solver.config.numerics import petsc_option_error
from solver.config.units import UnitError, check_text, to_solver_units
from solver.errors import InputError
from solver.mesh.catalog import estimate_cells, measures

BASE = {
    "mesh": {"shape": "sphere", "radius": "2 um", "size": "0.8 um"},
    "time": {"end": "10 s", "dt": "0.5 s"},
    "parameters": {"k": "1 1/s"},
    "species": {"m": {"compartment": "membrane", "D": 0.1, "initial": 1}},
    "reactions": {"decay": {"equation": "m ->", "rate": "k*m"}},
}


def doc(**tables):
    d = copy.deepcopy(BASE)
    for name, table in tables.items():
        d.setdefault(name, {}).update(table)
    return d


def refused(d) -> str:
    with pytest.raises(InputError) as err:
        config.from_dict(d, "case.toml")
    return str(err.value)


def test_defaults_are_documented():
    assert set(KEYS) == set(vars(Limits()))
    for key in KEYS:
        assert f"``{key}``" in limits.__doc__
        assert f" {getattr(Limits(), key)} " in limits.__doc__


def test_read_limits_takes_integral_floats():
    assert read_limits({"mesh_elements": 5e6}).mesh_elements == 5_000_000
    assert read_limits({}) == Limits()


@pytest.mark.parametrize(
    ("tables", "key", "limit"),
    [
        ({"time": {"dt": "1e-6 s"}}, "time.dt", {"time_steps": 10**7}),
        ({"output": {"every": "1e-4 s"}}, "output.every", {"outputs": 10**5}),
        ({"output": {"checkpoint_every": "1e-4 s"}}, "output.checkpoint_every", {"outputs": 10**5}),
        ({"mesh": {"size": "0.02 um"}}, "mesh.size", {"mesh_elements": 10**8}),
        ({"parameters": {"k": "1" + " " * 300 + "1/s"}}, "parameters.k", {"unit_length": 400}),
        ({"parameters": {"k": "1" + "0" * 50 + " 1/s"}}, "parameters.k", {"number_digits": 60}),
        ({"parameters": {"big": 10**50}}, "parameters.big", {"number_digits": 60}),
        (
            {"reactions": {"decay": {"equation": "m ->", "rate": "+".join(["m"] * 800)}}},
            "rate",
            {"expression_nodes": 2000},
        ),
        (
            {"reactions": {"decay": {"equation": "m ->", "rate": "m" + " " * 2500}}},
            "rate",
            {"expression_length": 3000},
        ),
        (
            {
                "definitions": {
                    n: f"{p}*{p}*{p}*{p}" for p, n in zip("mabcdef", "abcdefg", strict=True)
                }
            },
            "definitions.g",
            {"expanded_nodes": 10**5, "expression_nodes": 10**5},
        ),
        (
            {"parameters": {"deep": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}},
            "parameters.deep",
            {"depth": 40},
        ),
    ],
)
def test_a_limit_refuses_and_raising_it_accepts(tables, key, limit):
    d = doc(**tables)
    message = refused(d)
    assert key in message and f"[limits] {next(iter(limit))}" in message
    d["limits"] = limit
    try:
        config.from_dict(d, "case.toml")
    except InputError as err:  # accepted by the limit; refused for what the value is
        assert "[limits]" not in str(err), err
        assert key in str(err)


def test_adaptive_runs_are_not_bounded_by_fixed_steps():
    config.from_dict(doc(time={"dt": "1e-9 s", "adaptive": True, "dt_min": "1e-12 s"}))


def test_unit_strings_that_pint_reads_fast_are_kept():
    for text in ("1 um^2/s", "0.5 um**2/s", "1 (um/s)^2", "1 um^(1/2)", "2 s^-1", "1/(uM*s)"):
        check_text(text)
    assert to_solver_units("602.214076 molecule/um^2", "density") == pytest.approx(1.0)
    with pytest.raises(UnitError, match="power"):
        check_text("2**64**64 um")


def test_mesh_estimate_is_near_gmsh_for_a_sphere():
    volume, area = measures("sphere", {"radius": 1.0})
    assert volume == pytest.approx(4 / 3 * math.pi) and area == pytest.approx(4 * math.pi)
    # gmsh (HXT) meshes a unit sphere with size 0.1 into 17452 tetrahedra
    assert 0.7 < estimate_cells("sphere", {"radius": 1.0}, 0.1) / 17452 < 1.4
    graded = estimate_cells("sphere", {"radius": 5.0}, 0.4, 1.0)
    assert graded < estimate_cells("sphere", {"radius": 5.0}, 0.4)
    for shape in ("disk", "ellipse", "ellipsoid", "spread", "capsule"):
        assert 0 < estimate_cells(shape, {}, 0.5) < math.inf


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("snes_rtol", "1e-12"),
        ("ksp_type", "bcgs"),
        ("pc_type", "hypre"),
        ("pc_hypre_type", "boomeramg"),
        ("ksp_monitor", ""),
        ("snes_converged_reason", ""),
        ("ksp_view", ""),
        ("snes_lag_preconditioner", "3"),
        ("fieldsplit_cytosol_pc_gamg_threshold", "0.02"),
        ("fieldsplit_membrane_sub_pc_type", "ilu"),
        ("fieldsplit_cytosol_mg_levels_ksp_type", "chebyshev"),
        ("mat_mumps_icntl_14", "80"),
        ("ksp_initial_guess_nonzero", ""),
    ],
)
def test_petsc_allow_list(key, value):
    assert petsc_option_error(key, value) is None


def test_petsc_options_reach_the_solver():
    d = doc(solver={"petsc": {"-ksp_type": "bcgs", "snes_monitor": True, "ksp_rtol": 1e-6}})
    assert config.from_dict(d).solver.petsc == {
        "ksp_type": "bcgs",
        "snes_monitor": "",
        "ksp_rtol": "1e-06",
    }
