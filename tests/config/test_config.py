"""Run files: units converted once, every error names the file and the key."""

from __future__ import annotations

import pytest

from solver import config
from solver.errors import InputError
from solver.model.expressions import Expression
from tests.cases import with_changes

BASE = {
    "mesh": {"shape": "disk", "radius": "5 um", "size": "1 um"},
    "time": {"end": "2 min", "dt": "0.5 s", "scheme": "euler"},
    "parameters": {"k_on": "60 1/min", "K": "602.214076 molecule/um^2", "h": "5/3 um"},
    "species": {
        "c": {"compartment": "cytosol", "D": "10 um^2/s", "initial": "25 nM"},
        "m": {"compartment": "membrane", "D": 0.1, "initial": "0.2 + 0.01*x"},
    },
    "reactions": {"bind": {"equation": "c -> m", "rate": "h*k_on*c - k_on*m*(m/K)"}},
}


def doc(**changes):
    """BASE with ``a__b=value`` set (None: removed)."""
    return with_changes(BASE, changes)


def test_units_are_converted_once_at_load():
    cfg = config.from_dict(doc(), "case.toml")
    assert cfg.time.end == pytest.approx(120.0)
    assert cfg.time.dt == 0.5
    assert cfg.mesh["radius"] == 5.0 and cfg.mesh["size"] == 1.0
    p = cfg.model.parameters
    assert p["k_on"] == pytest.approx(1.0)
    assert p["K"] == pytest.approx(1.0)  # 602.2 molecules/um^2 = 1 uM*um
    assert p["h"] == pytest.approx(5 / 3)
    c, m = cfg.model.species["c"], cfg.model.species["m"]
    assert c.initial == pytest.approx(0.025) and c.D == 10.0
    assert isinstance(m.initial, Expression) and m.compartment == "membrane"
    assert cfg.model.reactions["bind"].location == "membrane"
    assert cfg.output.every == pytest.approx(1.2)  # default: 100 outputs


def test_reaction_location_rules():
    d = doc()
    d["species"]["s"] = {"compartment": "cytosol", "D": 1}
    d["reactions"]["decay"] = {"equation": "s ->", "rate": "s"}
    d["reactions"]["src"] = {"equation": "-> s", "rate": "1", "on": "membrane"}
    d["reactions"]["seen"] = {"equation": "-> s", "rate": "m"}  # rate reads a membrane species
    r = config.from_dict(d).model.reactions
    assert r["decay"].location == "cytosol"
    assert r["src"].location == "membrane"
    assert r["seen"].location == "membrane"


def test_override_reads_toml_values_and_unit_strings():
    d = doc()
    config.apply_override(d, "mesh.size=0.5")
    config.apply_override(d, "parameters.k_on=2 1/s")
    config.apply_override(d, 'time.scheme="bdf2"')
    cfg = config.from_dict(d)
    assert cfg.mesh["size"] == 0.5
    assert cfg.model.parameters["k_on"] == 2.0
    assert cfg.time.scheme == "bdf2"


def test_petsc_flags_and_values():
    cfg = config.from_dict(doc(solver={"petsc": {"snes_monitor": True, "ksp_rtol": 1e-6}}))
    assert cfg.solver.petsc == {"snes_monitor": "", "ksp_rtol": "1e-06"}


@pytest.mark.parametrize(
    "changes, key, fragment",
    [
        ({"time__stop": 3}, "time.stop", "unknown key"),
        ({"colour": {}}, "colour", "unknown key"),
        ({"species__c__D": "-1 um^2/s"}, "species.c.D", "cannot be negative"),
        ({"species__c__D": "3 nM"}, "species.c.D", "diffusivity"),
        ({"time__dt": "2 um"}, "time.dt", "time"),
        ({"species__c__initial": "5 um"}, "species.c.initial", "concentration"),
        ({"species__m__initial": "K_tot"}, "species.m.initial", "undefined name 'K_tot'"),
        ({"reactions__bind__rate": "k_of*c"}, "reactions.bind.rate", "undefined name 'k_of'"),
        ({"reactions__bind__rate": "__import__('os').system('true')"}, "reactions.bind.rate", ""),
        ({"reactions__bind__equation": "c -> p"}, "reactions.bind.equation", "unknown species 'p'"),
        ({"reactions__bind__equation": "->"}, "reactions.bind.equation", "no species"),
        ({"reactions__bind__on": "cytosol"}, "reactions.bind.on", "membrane"),
        (
            {"species__c__compartment": "nucleus"},
            "species.c.compartment",
            "'cytosol' or 'membrane'",
        ),
        ({"species": {}}, "species", "no species"),
        ({"mesh__shape": "cube"}, "mesh.shape", "sphere"),
        ({"mesh__size": None}, "mesh.size", "missing"),
        ({"time__scheme": "rk4"}, "time.scheme", "euler"),
        ({"time__adaptive": "yes"}, "time.adaptive", "true or false"),
        ({"time__rtol": -1e-3}, "time.rtol", "positive"),
        ({"time__wall_time": "soon"}, "time.wall_time", "duration"),
        ({"output": {"checkpoint_every": "2 um wall"}}, "output.checkpoint_every", "time"),
        ({"solver": {"mass": "heavy"}}, "solver.mass", "lumped"),
        ({"parameters__x": 1}, "parameters.x", "reserved"),
        ({"parameters__c": 1}, "species.c", "same name"),
        ({"solver": {"linear": "magic"}}, "solver.linear", "iterative"),
    ],
)
def test_bad_input_names_file_key_and_expectation(changes, key, fragment):
    with pytest.raises(InputError) as err:
        config.from_dict(doc(**changes), "runs/case/config.toml")
    text = str(err.value)
    assert text.startswith(f"runs/case/config.toml: {key}"), text
    assert fragment in text


def test_missing_mesh_file(tmp_path):
    with pytest.raises(InputError) as err:
        config.from_dict(doc(mesh={"file": "cell.msh"}), "c.toml", tmp_path)
    assert "mesh.file" in str(err.value) and "does not exist" in str(err.value)


def test_malformed_toml_names_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[mesh]\nshape = \n")
    with pytest.raises(InputError) as err:
        config.load(path)
    assert str(path) in str(err.value) and "line 2" in str(err.value)


def test_adaptive_settings_stay_valid_with_fixed_steps():
    """`--set time.adaptive=false` on an adaptive run file gives fixed steps."""
    d = doc()
    d["time"].update(adaptive=True, rtol=1e-4, atol="1e-5 uM", dt_max="2 s")
    assert config.from_dict(d).time.adaptive
    config.apply_override(d, "time.adaptive=false")
    t = config.from_dict(d).time
    assert not t.adaptive and t.rtol == 1e-4 and t.atol == 1e-5 and t.dt_max == 2.0
