"""``[stimulus.NAME] kind = "field"``: a solved chemokine, shorthand for its reactions."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from mpi4py import MPI

import pytest

from solver import config_from_dict
from solver.cli.app import main
from solver.simulation import Simulation
from tests.cases import with_changes
from tests.config.test_bad_input_corpus import to_toml

WORLD = MPI.COMM_WORLD

BASE: dict[str, Any] = {
    "mesh": {
        "shape": "disk",
        "radius": 1.0,
        "size": 0.2,
        "outside": {"shape": "disk", "radius": 4.0, "size": 0.5},
    },
    "time": {"end": 1.0, "dt": 0.1},
    "compartments": {
        "cytosol": {"kind": "volume"},
        "medium": {"kind": "volume"},
        "membrane": {"kind": "surface", "inside": "cytosol", "outside": "medium"},
        "boundary": {"kind": "surface", "inside": "medium"},
    },
    "species": {"R": {"compartment": "membrane", "initial": 0.0}},
    "reactions": {"respond": {"equation": "-> R", "rate": "L_occupancy - R"}},
    "metrics": {"species": ["R"]},
}
FIELD = {
    "kind": "field",
    "D": "10 um^2/s",
    "K_D": "0.5 uM",
    "decay": "0.1 1/s",
    "source": {"position": [2.5, 0], "radius": "0.5 um", "rate": "2 uM*um^2/s"},
    "bath": {"concentration": "0.1 uM", "exchange": "1 um/s"},
    "uptake": {"rate": "0.2 um/s"},
}


def with_field(**changes: Any) -> dict[str, Any]:
    """BASE with the field stimulus L, its ``a__b=value`` set (None: removed)."""
    doc = copy.deepcopy(BASE)
    doc["stimulus"] = {"L": with_changes(FIELD, changes)}
    return doc


def by_hand() -> dict[str, Any]:
    """The same model written out: the species, its reactions and the occupancy."""
    doc = copy.deepcopy(BASE)
    bump = 2.0 / (math.pi * 0.5**4 / 2)  # rate over the integral of the bump (2-D)
    doc["species"]["L"] = {"compartment": "medium", "D": 10.0, "initial": 0.0}
    doc["definitions"] = {"L_occupancy": "L/(L + 0.5)"}
    doc["reactions"].update(
        {
            "decay": {"equation": "L ->", "rate": "0.1*L"},
            "source": {
                "equation": "-> L",
                "rate": f"{bump!r}*max(0, 0.25 - ((x - 2.5)**2 + y**2))",
                "on": "medium",
            },
            "bath": {"equation": "-> L", "rate": "1.0*(0.1 - L)", "on": "boundary"},
            "uptake": {"equation": "L ->", "rate": "0.2*L", "on": "membrane"},
        }
    )
    return doc


def test_a_field_adds_its_species_reactions_and_occupancy():
    model = config_from_dict(with_field()).model
    assert model.species["L"].compartment == "medium" and model.species["L"].D == 10.0
    where = {n: r.location for n, r in model.reactions.items()}
    assert where == {
        "respond": "membrane",
        "L_decay": "medium",
        "L_source": "medium",
        "L_bath": "boundary",
        "L_uptake": "membrane",
    }
    assert model.solved == {"L": (2.5, 0.0)} and not model.stimuli


def test_a_field_solves_what_its_reactions_written_out_solve():
    """Same totals to round-off, and the read-outs refer to the source's direction."""
    results = []
    for doc in (with_field(), by_hand()):
        with Simulation(config_from_dict(doc), WORLD) as sim:
            for _ in range(10):
                assert sim.step(0.1).converged
            results.append(sim.totals())
            if doc.get("stimulus"):
                assert sim.direction(1.0)[:2].tolist() == pytest.approx([1.0, 0.0])
                assert abs(sim.observe()["angle_R"]) < 1.0  # degrees: R faces the source
    field, hand = results
    for name in ("total_L", "total_R"):
        assert field[name] == pytest.approx(hand[name], rel=1e-12)
    assert field["total_L"] > 0.5


def test_the_source_releases_its_rate():
    """∫ source over the medium → the release rate (the bump resolved, O(h²))."""
    doc = with_field(decay=None, bath=None, uptake=None)
    doc["mesh"]["outside"]["size"] = 0.1
    doc["mesh"]["size"] = 0.1
    with Simulation(config_from_dict(doc), WORLD) as sim:
        sim.step(0.01)
        released = sim.totals()["total_L"] / 0.01
    assert released == pytest.approx(2.0, rel=0.01)


REFUSED = [
    ("stimulus.L.in", {"in": "membrane"}, "is a surface"),
    ("stimulus.L.in", {"in": "nucleus"}, "expected a declared volume"),
    ("stimulus.L.source.radius", {"source__radius": None}, "missing"),
    ("stimulus.L.source.rate", {"source__rate": "-1 uM*um^2/s"}, "cannot be negative"),
    ("stimulus.L.source.rate", {"source__rate": "1 uM/s"}, "L.source.rate"),
    ("stimulus.L.bath.surface", {"bath__surface": "golgi"}, "expected a surface of medium"),
    ("stimulus.L.bath.flux", {"bath__flux": "1 uM*um/s"}, "a flux, or a bath"),
    ("stimulus.L.bath.exchange", {"bath__exchange": None}, "missing"),
    ("stimulus.L.K_D", {"K_D": "0 nM"}, "positive"),
    ("stimulus.L.D", {"D": "-1 um^2/s"}, "negative"),
    ("stimulus.L.colour", {"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("key", "changes", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_fields_are_one_line(tmp_shared: Path, capsys, key, changes, message):
    path = tmp_shared / "config.toml"
    if WORLD.rank == 0:
        path.write_text(to_toml(with_field(**changes)))
    WORLD.barrier()
    capsys.readouterr()
    code = main(["check", str(path)])
    _, err = capsys.readouterr()
    WORLD.barrier()
    assert code == 2
    if WORLD.rank == 0:
        lines = err.splitlines()
        assert len(lines) == 1 and key in lines[0] and message in lines[0], err


def test_a_field_needs_a_volume_and_a_free_name():
    doc = with_field()
    del doc["compartments"]
    doc["mesh"] = {"shape": "disk", "radius": 1.0, "size": 0.3}
    with pytest.raises(Exception, match="stimulus.L.in: missing"):
        config_from_dict(doc)
    doc = with_field()
    doc["species"]["L"] = {"compartment": "medium"}
    with pytest.raises(Exception, match="species.L"):
        config_from_dict(doc)
