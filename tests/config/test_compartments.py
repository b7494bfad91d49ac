"""``[compartments]``: what is read, where reactions are integrated, and every refusal.

Bad input goes through ``polarity check`` in-process: exit 2, one line on standard
error (rank 0) naming the run file and the key, nothing written.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from mpi4py import MPI

import pytest

from solver import config_from_dict
from solver.cli.app import main
from tests.cases import with_changes
from tests.config.test_bad_input_corpus import to_toml

WORLD = MPI.COMM_WORLD

NESTED: dict[str, Any] = {
    "mesh": {
        "shape": "disk",
        "radius": 1.0,
        "size": 0.3,
        "inner": {"nucleus": {"shape": "disk", "radius": 0.4, "surface": "envelope"}},
        "outside": {"shape": "disk", "radius": 2.0, "size": 0.6},
    },
    "time": {"end": 1.0, "dt": 0.1},
    "compartments": {
        "cytosol": {"kind": "volume"},
        "nucleus": {"kind": "volume"},
        "medium": {"kind": "volume"},
        "membrane": {"kind": "surface", "inside": "cytosol", "outside": "medium"},
        "envelope": {"kind": "surface", "inside": "nucleus", "outside": "cytosol"},
        "boundary": {"kind": "surface", "inside": "medium"},
    },
    "species": {
        "L": {"compartment": "medium", "D": 10.0, "initial": 1.0},
        "R": {"compartment": "membrane", "D": 0.01, "initial": 1.0},
        "C": {"compartment": "cytosol", "D": 1.0, "initial": 0.5},
        "N": {"compartment": "nucleus", "D": 1.0, "initial": 0.1},
    },
    "reactions": {
        "bind": {"equation": "L + R -> C + R", "rate": "L*R"},
        "import": {"equation": "C -> N", "rate": "C - N"},
        "feed": {"equation": "-> L", "rate": "0.1", "on": "boundary"},
        "decay": {"equation": "N ->", "rate": "N"},
    },
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """NESTED with the value at ``a.b.c`` replaced (``None`` deletes it)."""
    return with_changes(NESTED, {path: value}, separator=".")


def test_reactions_are_integrated_where_their_species_meet():
    model = config_from_dict(NESTED).model
    where = {name: r.location for name, r in model.reactions.items()}
    assert where == {
        "bind": "membrane",
        "import": "envelope",
        "feed": "boundary",
        "decay": "nucleus",
    }
    assert [c.name for c in model.compartments] == ["cytosol", "nucleus", "medium", "membrane"]
    assert model.declared["envelope"].sides == ("nucleus", "cytosol")
    assert model.species["R"].units == "uM*um" and model.species["L"].units == "uM"


def test_a_field_split_option_of_a_declared_compartment_is_allowed():
    doc = changed("solver", {"petsc": {"fieldsplit_nucleus_pc_type": "lu"}})
    assert config_from_dict(doc).solver.petsc["fieldsplit_nucleus_pc_type"] == "lu"


def test_without_the_table_the_cell_is_cytosol_and_membrane():
    doc = copy.deepcopy(NESTED)
    doc["mesh"] = {"shape": "disk", "radius": 1.0, "size": 0.3}
    del doc["compartments"]
    doc["species"] = {"c": {"compartment": "cytosol"}, "m": {"compartment": "membrane"}}
    doc["reactions"] = {"bind": {"equation": "c -> m", "rate": "c"}}
    model = config_from_dict(doc).model
    assert [c.name for c in model.compartments] == ["cytosol", "membrane"]
    assert model.reactions["bind"].location == "membrane"


# (key named in the error, document, a piece of the message)
REFUSED = [
    # the tables themselves
    ("compartments", changed("compartments", {}), "no compartment declared"),
    ("compartments.cytosol.kind", changed("compartments.cytosol.kind", "region"), "volume"),
    ("compartments.cytosol.kind", changed("compartments.cytosol.kind", None), "volume"),
    ("compartments.cytosol.inside", changed("compartments.cytosol.inside", "x"), "no sides"),
    ("compartments.envelope.inside", changed("compartments.envelope.inside", None), "missing"),
    ("compartments.envelope.inside", changed("compartments.envelope.inside", "er"), "volume"),
    ("compartments.envelope.outside", changed("compartments.envelope.outside", 3), "volume"),
    (
        "compartments.envelope.outside",
        changed("compartments.envelope.outside", "nucleus"),
        "two different volumes",
    ),
    ("compartments.cytosol.colour", changed("compartments.cytosol.colour", "red"), "colour"),
    # species and reactions
    ("species.C.compartment", changed("species.C.compartment", "er"), "expected"),
    ("species.C.compartment", changed("species.C.compartment", None), "expected"),
    (
        "reactions.bind.equation",
        changed("reactions.bind", {"equation": "L + N -> C", "rate": "L*N"}),
        "never meet",
    ),
    (
        "reactions.bind.equation",
        changed("reactions.bind", {"equation": "R -> N", "rate": "R"}),
        "does not touch",
    ),
    ("reactions.feed.on", changed("reactions.feed.on", "golgi"), "expected a compartment"),
    ("reactions.import.on", changed("reactions.import.on", "membrane"), "cannot be integrated"),
    (
        "reactions.import.on",
        changed("reactions.import", {"equation": "C -> N", "rate": "C", "on": "cytosol"}),
        "cannot be integrated",
    ),
    # what only the mesh can say
    ("compartments.er", changed("compartments.er", {"kind": "volume"}), "no volume named 'er'"),
    (
        "compartments.gap",
        changed("compartments.gap", {"kind": "surface", "inside": "nucleus", "outside": "medium"}),
        "no facets between nucleus and medium",
    ),
    (
        "reactions.import.equation",
        changed("compartments.envelope.outside", "medium"),
        "no surface lies between cytosol and nucleus",
    ),
    (
        "compartments.envelope",
        {
            **changed("compartments.envelope.outside", "medium"),
            "reactions": {"decay": {"equation": "N ->", "rate": "N"}},
        },
        "do not lie on nucleus and medium",
    ),
]


@pytest.mark.parametrize(("key", "doc", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_compartments_are_one_line(tmp_shared: Path, capsys, key, doc, message):
    path = tmp_shared / "config.toml"
    if WORLD.rank == 0:
        path.write_text(to_toml(doc))
    WORLD.barrier()
    before = sorted(p.name for p in tmp_shared.iterdir())
    capsys.readouterr()
    code = main(["check", str(path)])
    out, err = capsys.readouterr()
    WORLD.barrier()
    assert code == 2, (code, out, err)
    assert sorted(p.name for p in tmp_shared.iterdir()) == before
    if WORLD.rank > 0:
        return
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0] and key in lines[0] and message in lines[0], lines[0]
