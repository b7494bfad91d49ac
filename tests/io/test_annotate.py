"""Units and descriptions of the output fields: the table, and HDF5 attributes."""

from __future__ import annotations

import json
from pathlib import Path

from mpi4py import MPI

import h5py
import numpy as np
import pytest

from solver import cli, config
from solver.inspect.figure import label_of, pretty, units_of
from solver.io.annotate import field_table
from solver.io.results import series_of

RUN_FILE = """
[mesh]
shape = "disk"
radius = "1 um"
size = "0.5 um"

[time]
end = "0.2 s"
dt = "0.1 s"

[output]
every = "0.1 s"

[stimulus.chemokine]
kind = "linear"
mean = "25 nM"
steepness = "10 %"
direction = [1, 0]
K_D = "50 nM"

[parameters]
k_p = "1 1/s"

[species.c]
compartment = "cytosol"
description = "ligand"
D = "1 um^2/s"
initial = 1

[species.p]
compartment = "membrane"
description = "fraction bound"
unit = "1"
initial = "10 %"

[reactions.occupy]
equation = "-> p"
rate = "k_p*(chemokine_occupancy - p)"

[species.m]
compartment = "membrane"
initial = 0.2

[reactions.bind]
equation = "c -> m"
rate = "c*chemokine_occupancy - 0.5*m"
"""


@pytest.fixture
def small_run(tmp_shared: Path) -> tuple[Path, config.RunConfig]:
    path = tmp_shared / "config.toml"
    if MPI.COMM_WORLD.rank == 0:
        path.write_text(RUN_FILE)
    MPI.COMM_WORLD.barrier()
    out = tmp_shared / "out"
    assert cli.main(["run", str(path), "-o", str(out)]) == 0
    return out, config.load(path)


def test_field_table_units_and_descriptions():
    cfg = config.from_dict(__import__("tomllib").loads(RUN_FILE))
    table = field_table(cfg.model, ["chemokine", "chemokine_occupancy"])
    assert set(table) == {"c", "m", "p", "chemokine", "chemokine_occupancy"}
    assert table["c"]["units"] == "uM" and table["c"]["compartment"] == "cytosol"
    assert table["m"]["units"] == "uM*um" and table["m"]["compartment"] == "membrane"
    assert table["chemokine"]["units"] == "uM"
    assert table["chemokine_occupancy"]["units"] == "1"
    assert "0.05" in table["chemokine_occupancy"]["description"]  # K_D in uM
    assert "no diffusion" in table["m"]["description"]
    assert all(v["description"] for v in table.values())


def test_declared_units_and_descriptions_reach_the_table_and_the_labels():
    cfg = config.from_dict(__import__("tomllib").loads(RUN_FILE))
    table = field_table(cfg.model, ["chemokine", "chemokine_occupancy"])
    assert table["p"]["units"] == "1"
    assert table["p"]["description"].startswith("fraction bound: dimensionless membrane species")
    assert table["c"]["description"].startswith("ligand: concentration of cytosol species c")
    assert table["m"]["units"] == "uM*um"
    assert table["c"]["total_units"] == "uM*um^3" and table["m"]["total_units"] == "uM*um^3"
    assert table["p"]["total_units"] == "um^2"
    assert field_table(cfg.model, [], dim=2)["p"]["total_units"] == "um"
    record = {"fields": table, "config": __import__("tomllib").loads(RUN_FILE)}
    assert label_of(record, "p") == "fraction bound (p)"  # dimensionless: no unit
    assert label_of(record, "c") == "ligand (c), µM"
    assert label_of(record, "m") == "m (µM·µm)"
    assert label_of(record, "chemokine_occupancy") == "chemokine_occupancy"
    assert units_of(record, "chemokine") == "µM"


def test_a_volume_equivalent_membrane_species_is_labelled_in_uM():
    data = __import__("tomllib").loads(RUN_FILE)
    data["species"]["p"].update(unit="uM", description="PIP3", initial="50 nM")
    data["parameters"]["K"] = "1 uM"
    data["reactions"]["occupy"]["rate"] = "k_p*(K*chemokine_occupancy - p)"
    model = config.from_dict(data).model
    entry = field_table(model, [])["p"]
    assert entry["units"] == "uM" and "volume-equivalent" in entry["description"]
    assert entry["total_units"] == "uM*um^2"
    assert label_of({"fields": {"p": entry}, "config": data}, "p") == "PIP3 (p), µM"
    assert pretty("uM*um**2/s") == "µM·µm²/s" and pretty("1/s") == "1/s"


def test_outputs_carry_units_and_descriptions(small_run):
    out, cfg = small_run
    membrane = series_of(out, "membrane")
    derived = [n for n in membrane.fields if n not in cfg.model.species]
    assert sorted(derived) == ["chemokine", "chemokine_occupancy"]
    assert label_of(json.loads((out / "run.json").read_text()), "p") == "fraction bound (p)"
    record = json.loads((out / "run.json").read_text())
    table = field_table(cfg.model, derived, dim=record["mesh"]["dim"])  # a 2-D cell
    assert record["mesh"]["dim"] == 2 and table["c"]["total_units"] == "uM*um^2"
    assert record["fields"] == table
    for compartment, names in (("cytosol", ["c"]), ("membrane", ["m", "p", *derived])):
        series = series_of(out, compartment)
        files = {ref.split(":", 1)[0] for name in names for _, ref in series.fields[name]}
        assert len(files) == 3  # t = 0, 0.1, 0.2
        for file in files:
            with h5py.File(out / file, "r") as f:
                assert f.attrs["time_units"] == "s"
                assert f.attrs["compartment"] == compartment
                for name in names:
                    attrs = f[name].attrs
                    assert attrs["units"] == table[name]["units"]
                    assert attrs["description"] == table[name]["description"]
                    assert attrs["compartment"] == compartment
                    assert np.all(np.isfinite(f[name][()]))
        with h5py.File(out / f"{compartment}.h5", "r") as f:
            assert f["Mesh"].attrs["length_units"] == "um"
            assert f["Mesh/geometry"].attrs["length_units"] == "um"
