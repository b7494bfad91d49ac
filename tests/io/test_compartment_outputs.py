"""Outputs of a run of several compartments: a series per compartment, amounts, restarts.

The cell of the run has a nucleus and sits in a medium (2-D, coarse): volumes
``cytosol``, ``nucleus`` and ``medium``, surfaces ``membrane`` (between the cytosol and
the medium), ``envelope`` (around the nucleus) and ``boundary`` (of the medium). The
restart tests use three compartments that hold species (cytosol, nucleus, membrane),
coupled on the membrane and across the envelope, and check that a run stopped and
continued (on the same or another number of ranks) ends with the fields of the
uninterrupted run, as tests/io/test_restart.py does for the cytosol and membrane.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from mpi4py import MPI

import h5py
import numpy as np
import pytest

from solver import cli, config_from_dict
from solver.config.runfile import load
from solver.io import checkpoint, restart
from solver.io.annotate import amount_table, field_table
from solver.io.folder import read_results
from solver.io.results import read_series
from solver.simulation import Simulation
from solver.time.loop import RunLoop, integrate
from tests.cases import KRYLOV_AGREEMENT

WORLD = MPI.COMM_WORLD

MEDIUM = """
[mesh]
shape = "disk"
radius = 1.0
size = 0.2
[mesh.inner.nucleus]
shape = "disk"
radius = 0.4
surface = "envelope"
[mesh.outside]
shape = "disk"
radius = 2.0
size = 0.4

[time]
end = 0.1
dt = 0.01

[output]
every = 0.05

[compartments.cytosol]
kind = "volume"
[compartments.nucleus]
kind = "volume"
[compartments.medium]
kind = "volume"
[compartments.membrane]
kind = "surface"
inside = "cytosol"
outside = "medium"
[compartments.envelope]
kind = "surface"
inside = "nucleus"
outside = "cytosol"
[compartments.boundary]
kind = "surface"
inside = "medium"

[species.L]
compartment = "medium"
D = 10.0
initial = "1 + x"
[species.R]
compartment = "membrane"
D = 0.01
initial = 1.0
[species.LR]
compartment = "membrane"
D = 0.01
initial = 0.0
[species.C]
compartment = "cytosol"
D = 1.0
initial = 0.5
[species.N]
compartment = "nucleus"
D = 1.0
initial = 0.1

[reactions.bind]
equation = "L + R -> LR"
rate = "2*L*R - 0.5*LR"
[reactions.signal]
equation = "LR -> C + R"
rate = "0.3*LR"
[reactions.import]
equation = "C -> N"
rate = "C - 0.5*N"
"""

#: the species of each compartment with a series, and its cells (volumes) or segments
SERIES = {
    "cytosol": (["C"], 3),
    "nucleus": (["N"], 3),
    "medium": (["L"], 3),
    "membrane": (["R", "LR"], 2),
}
#: exact measures: areas (µm²) of the volumes, length (µm) of the membrane
MEASURES = {"cytosol": np.pi * 0.84, "nucleus": np.pi * 0.16, "medium": np.pi * 3.0}
MEASURES["membrane"] = 2 * np.pi


def _shared(factory: pytest.TempPathFactory, name: str) -> Path:
    path = factory.mktemp(name) if WORLD.rank == 0 else None
    return WORLD.bcast(path, root=0)


def _write(path: Path, text: str) -> Path:
    if WORLD.rank == 0:
        path.write_text(text)
    WORLD.barrier()
    return path


@pytest.fixture(scope="module")
def medium(tmp_path_factory) -> Path:
    """The output folder of the run of a cell with a nucleus in a medium."""
    folder = _shared(tmp_path_factory, "medium")
    config = _write(folder / "config.toml", MEDIUM)
    assert cli.main(["run", str(config), "-o", str(folder / "out")]) == 0
    return folder / "out"


# -- the series ------------------------------------------------------------------------
def test_a_series_per_compartment_with_species_named_after_it(medium):
    record = json.loads((medium / "run.json").read_text())
    written = {p.stem for p in medium.glob("*.xdmf")}
    assert written == set(SERIES)  # envelope and boundary hold no species: no series
    for name, (species, per_cell) in SERIES.items():
        assert (medium / f"{name}.h5").is_file() and (medium / name).is_dir()
        assert sorted(p.name for p in (medium / name).iterdir()) == [
            "000000.h5",
            "000001.h5",
            "000002.h5",
        ]
        root = ET.parse(medium / f"{name}.xdmf").getroot()
        grids = root.findall("Domain/Grid/Grid")
        assert {g.get("Name") for g in grids} == {name}
        assert [float(g.find("Time").get("Value")) for g in grids] == pytest.approx(
            [0.0, 0.05, 0.1]
        )
        for grid in grids:
            assert {a.get("Name") for a in grid.findall("Attribute")} == set(species)
            for item in grid.iter("DataItem"):  # every file named is in the folder
                assert (medium / item.text.split(":")[0]).is_file()
        series = read_series(medium / f"{name}.xdmf")
        assert set(series.fields) == set(species) and series.cells.shape[1] == per_cell
        assert len(series.cells) == record["mesh"]["compartments"][name]
        # polygons inscribed in the circles: the 13-gon of the nucleus is 4 % short
        assert series.node_weights().sum() == pytest.approx(MEASURES[name], rel=0.05)
        with h5py.File(medium / name / "000001.h5") as f:
            assert f.attrs["compartment"] == name and f.attrs["t"] == pytest.approx(0.05)
            for n in species:
                field = record["fields"][n]
                assert f[n].attrs["compartment"] == name == field["compartment"]
                assert f[n].attrs["units"] == field["units"]
        with h5py.File(medium / f"{name}.h5") as f:
            assert f.attrs["compartment"] == name and f.attrs["length_units"] == "um"


def test_the_initial_values_are_in_their_compartments(medium):
    results = read_results(medium)
    medium_series = results.series("medium")
    _, values = medium_series.values("L")
    assert np.allclose(values[0], 1.0 + medium_series.points[:, 0])
    radius = np.linalg.norm(medium_series.points, axis=1)
    assert radius.min() == pytest.approx(1.0) and radius.max() == pytest.approx(2.0)
    for compartment, name, value in (("cytosol", "C", 0.5), ("nucleus", "N", 0.1)):
        assert np.allclose(results.series(compartment).values(name)[1][0], value)
    assert np.linalg.norm(results.series("nucleus").points, axis=1).max() == pytest.approx(0.4)
    membrane = results.series("membrane")
    assert np.allclose(membrane.values("R")[1][0], 1.0)
    assert np.allclose(membrane.values("LR")[1][0], 0.0)
    assert np.allclose(np.linalg.norm(membrane.points, axis=1), 1.0)


def test_results_know_the_compartments(medium):
    results = read_results(medium)
    places = results.compartments
    assert list(places) == ["cytosol", "nucleus", "medium", "membrane", "envelope", "boundary"]
    assert places["membrane"].species == ("R", "LR")
    assert (places["membrane"].inside, places["membrane"].outside) == ("cytosol", "medium")
    assert places["envelope"].species == () and places["boundary"].where == "surface around medium"
    with pytest.raises(KeyError, match="no envelope series; series: cytosol, nucleus"):
        results.series("envelope")


# -- run.json and metrics.csv ------------------------------------------------------------
def test_run_json_records_the_compartments_and_metrics_the_amounts(medium):
    record = json.loads((medium / "run.json").read_text())
    resolved = record["resolved"]
    assert resolved["compartments"] == {
        "cytosol": {"kind": "volume"},
        "nucleus": {"kind": "volume"},
        "medium": {"kind": "volume"},
        "membrane": {"kind": "surface", "inside": "cytosol", "outside": "medium"},
        "envelope": {"kind": "surface", "inside": "nucleus", "outside": "cytosol"},
        "boundary": {"kind": "surface", "inside": "medium"},
    }
    assert {n: s["compartment"] for n, s in resolved["species"].items()} == {
        "L": "medium",
        "R": "membrane",
        "LR": "membrane",
        "C": "cytosol",
        "N": "nucleus",
    }
    assert record["amounts"] == {
        "cytosol": {"species": ["C"], "units": "uM*um^2"},
        "nucleus": {"species": ["N"], "units": "uM*um^2"},
        "medium": {"species": ["L"], "units": "uM*um^2"},
        "membrane": {"species": ["R", "LR"], "units": "uM*um^2"},
    }
    with (medium / "metrics.csv").open() as f:
        header, *rows = list(csv.reader(f))
    table = {h: np.array([float(r[k]) for r in rows]) for k, h in enumerate(header)}
    amounts = [h for h in header if h.startswith("amount_")]
    assert amounts == [f"amount_{c}" for c in record["amounts"]]
    last_pool = max(k for k, h in enumerate(header) if h.startswith("pool_"))
    assert header.index(amounts[0]) == last_pool + 1  # right after the totals and pools
    for c, amount in record["amounts"].items():
        total = sum(table[f"total_{n}"] for n in amount["species"])
        assert np.allclose(table[f"amount_{c}"], total, rtol=1e-14)
        assert record["final"][f"amount_{c}"] == pytest.approx(total[-1], rel=1e-14)
    # R + LR and L - R + C + N are conserved: the transfers between compartments balance
    pools = [h for h in header if h.startswith("pool_")]
    assert len(pools) == 2
    for p in pools:
        assert np.abs(table[p] / table[p][0] - 1).max() < 1e-12
    assert np.allclose(table["amount_membrane"], table["amount_membrane"][0], rtol=1e-12)
    assert table["amount_nucleus"][-1] > table["amount_nucleus"][0]  # C is imported


def test_runs_of_the_cytosol_and_membrane_have_no_amount_columns():
    cfg = config_from_dict(
        {
            "mesh": {"shape": "disk", "radius": 1.0, "size": 0.5},
            "time": {"end": 1.0, "dt": 0.1},
            "species": {
                "c": {"compartment": "cytosol", "initial": 1.0},
                "m": {"compartment": "membrane", "initial": 1.0},
            },
        }
    )
    assert amount_table(cfg.model, field_table(cfg.model, [], 2)) == {}


def test_no_amount_when_the_totals_of_a_compartment_differ_in_units():
    document = {
        "mesh": {"shape": "disk", "radius": 1.0, "size": 0.5},
        "time": {"end": 1.0, "dt": 0.1},
        "compartments": {
            "cytosol": {"kind": "volume"},
            "nucleus": {"kind": "volume"},
            "membrane": {"kind": "surface", "inside": "cytosol"},
        },
        "species": {
            "a": {"compartment": "cytosol", "initial": 1.0},
            "b": {"compartment": "cytosol", "initial": 1.0, "unit": "1"},
            "n": {"compartment": "nucleus", "initial": 1.0},
        },
    }
    cfg = config_from_dict(document)
    table = amount_table(cfg.model, field_table(cfg.model, [], 2))
    assert table == {"nucleus": {"species": ["n"], "units": "uM*um^2"}}


# -- ParaView opens every series -------------------------------------------------------
READERS = """
import json
from paraview import servermanager
from paraview.simple import XDMFReader, Xdmf3ReaderT

result = {}
for name in @NAMES@:
    path = "@FOLDER@/" + name + ".xdmf"
    for kind, make in (("xdmf3", lambda p: Xdmf3ReaderT(FileName=[p])),
                       ("legacy", lambda p: XDMFReader(FileNames=[p]))):
        reader = make(path)
        times = list(reader.TimestepValues)
        reader.UpdatePipeline(time=times[-1])
        data = servermanager.Fetch(reader)
        blocks = [data]
        while blocks and blocks[0].IsA("vtkMultiBlockDataSet"):
            blocks = [d.GetBlock(i) for d in blocks for i in range(d.GetNumberOfBlocks())]
            blocks = [b for b in blocks if b is not None]
        arrays = {}
        for block in blocks:
            point_data = block.GetPointData()
            for i in range(point_data.GetNumberOfArrays()):
                array = point_data.GetArray(i)
                arrays[array.GetName()] = sorted(
                    array.GetValue(k) for k in range(array.GetNumberOfTuples()))
        result[name + "/" + kind] = {
            "times": times,
            "points": sum(b.GetNumberOfPoints() for b in blocks),
            "cells": sum(b.GetNumberOfCells() for b in blocks),
            "arrays": arrays,
        }
print("RESULT " + json.dumps(result))
"""


@pytest.mark.paraview
@pytest.mark.serial
def test_paraview_opens_every_series(medium, tmp_path):
    from tests.inspect.test_inspect import _run_paraview

    script = tmp_path / "readers.py"
    text = READERS.replace("@NAMES@", repr(sorted(SERIES))).replace("@FOLDER@", str(medium))
    script.write_text(text)
    line = next(s for s in _run_paraview(script).splitlines() if s.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    for name, (species, _) in SERIES.items():
        series = read_series(medium / f"{name}.xdmf")
        for kind in ("xdmf3", "legacy"):
            found = result[f"{name}/{kind}"]
            assert found["times"] == pytest.approx([0.0, 0.05, 0.1]), (name, kind)
            assert found["points"] == len(series.points), (name, kind)
            assert found["cells"] == len(series.cells), (name, kind)
            assert set(found["arrays"]) == set(species), (name, kind)
            for n in species:
                last = np.sort(series.values(n)[1][-1])
                assert np.allclose(found["arrays"][n], last), (name, kind, n)


# -- restarts ----------------------------------------------------------------------------
THREE = """
[mesh]
shape = "disk"
radius = 1.0
size = 0.2
[mesh.inner.nucleus]
shape = "disk"
radius = 0.4
surface = "envelope"

[time]
end = 0.4
dt = 0.01

[output]
every = 0.05

[compartments.cytosol]
kind = "volume"
[compartments.nucleus]
kind = "volume"
[compartments.membrane]
kind = "surface"
inside = "cytosol"
[compartments.envelope]
kind = "surface"
inside = "nucleus"
outside = "cytosol"

[species.R]
compartment = "membrane"
D = 0.01
initial = "1 + x"
[species.C]
compartment = "cytosol"
D = 1.0
initial = "0.5 + 0.5*y"
[species.N]
compartment = "nucleus"
D = 1.0
initial = 0.1

[reactions.release]
equation = "R -> C"
rate = "0.3*R - 0.1*C*C"
[reactions.import]
equation = "C -> N"
rate = "C - 0.5*N"
"""
BLOCKS = ("cytosol", "nucleus", "membrane")


def _states(out: Path) -> dict[str, np.ndarray]:
    with h5py.File(checkpoint.path_in(out)) as f:
        assert set(BLOCKS) <= set(f)
        return {c: f[c]["state0"][()] for c in BLOCKS}


def _times(out: Path, compartment: str) -> list[float]:
    text = (out / f"{compartment}.xdmf").read_text()
    return [float(v) for v in re.findall(r'Time Value="([^"]+)"', text)]


def _rows(out: Path) -> tuple[list[str], np.ndarray]:
    with (out / "metrics.csv").open() as f:
        header, *rows = list(csv.reader(f))
    return header, np.array([[float(v) for v in r] for r in rows])


def _assert_same_run(a: Path, b: Path, tol: float) -> None:
    """The states, the series' output times and the metrics of two runs agree."""
    if WORLD.rank != 0:
        return
    for name, values in _states(a).items():
        other = _states(b)[name]
        assert np.abs(values - other).max() <= tol * max(1.0, np.abs(values).max()), name
    for c in BLOCKS:
        assert _times(a, c) == _times(b, c) == pytest.approx(np.arange(9) * 0.05)
        series_a, series_b = read_series(a / f"{c}.xdmf"), read_series(b / f"{c}.xdmf")
        for n in series_a.fields:
            values, other = series_a.values(n)[1], series_b.values(n)[1]
            assert np.abs(values - other).max() <= tol * max(1.0, np.abs(values).max()), n
    header, rows_a = _rows(a)
    other_header, rows_b = _rows(b)
    assert header == other_header and rows_a.shape == rows_b.shape
    keep = [i for i, h in enumerate(header) if h != "linear_iterations"]
    assert np.allclose(rows_a[:, keep], rows_b[:, keep], rtol=100 * tol, atol=100 * tol)


def _stopped_at(config: Path, out: Path, steps: int):
    """Run ``config`` into ``out``, stopped before step ``steps + 1`` as a batch stop is."""
    cfg = load(config, [])
    original = RunLoop._stop_reason

    def stop(loop):
        original(loop)
        return "test stop" if loop.steps >= steps else None

    RunLoop._stop_reason = stop
    try:
        with Simulation(cfg, WORLD) as sim:
            return integrate(sim, out)
    finally:
        RunLoop._stop_reason = original


def test_three_compartments_stopped_and_continued_give_the_same_run(tmp_shared):
    config = _write(tmp_shared / "config.toml", THREE)
    with Simulation(load(config, []), WORLD) as sim:
        assert [b.name for b in sim.blocks] == list(BLOCKS)
        assert integrate(sim, tmp_shared / "full").status == "completed"
    stopped = _stopped_at(config, tmp_shared / "part", 13)
    assert stopped.status == "stopped" and 0 < stopped.t < 0.4
    cfg, stored = restart.load(config, tmp_shared / "part", [], WORLD)
    assert set(stored.blocks) == set(BLOCKS)
    assert stored.blocks["membrane"].species == ["R"]
    with Simulation(cfg, WORLD) as sim:
        sim.load_checkpoint(stored)
        again = integrate(sim, tmp_shared / "part", restart=stored)
    assert again.status == "completed" and again.t == pytest.approx(0.4)
    # the continued run's Krylov solves take other paths (measured 4e-9)
    _assert_same_run(tmp_shared / "full", tmp_shared / "part", KRYLOV_AGREEMENT)
    record = json.loads((tmp_shared / "part" / "run.json").read_text())
    assert record["restarts"][0]["t"] == stopped.t
    assert record["resolved"]["compartments"]["envelope"]["outside"] == "cytosol"


def _polarity(*args: str, ranks: int = 1) -> subprocess.CompletedProcess:
    from tests.io.test_restart import _command, _environment

    return subprocess.run(
        ["timeout", "600", *_command(*args, ranks=ranks)],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=660,
    )


@pytest.mark.serial
@pytest.mark.slow
@pytest.mark.parametrize("first, then", [(1, 2), (2, 1)])
def test_three_compartments_continue_on_any_number_of_ranks(tmp_path, first, then):
    """Run to 0.2 s on ``first`` ranks, continue to 0.4 s on ``then`` ranks.

    (Stopped and continued on the same 2 ranks: the test above, in the MPI pass.)
    """
    if shutil.which("timeout") is None:
        pytest.skip("needs coreutils' timeout")
    config = tmp_path / "config.toml"
    config.write_text(THREE)
    full = _polarity("run", str(config), "-o", str(tmp_path / "full"), ranks=first)
    assert full.returncode == 0, full.stdout + full.stderr
    part = str(tmp_path / "part")
    half = _polarity("run", str(config), "-o", part, "--set", "time.end=0.2", ranks=first)
    assert half.returncode == 0, half.stdout + half.stderr
    assert json.loads((tmp_path / "part" / "run.json").read_text())["t"] == pytest.approx(0.2)
    rest = _polarity(
        "run", str(config), "-o", part, "--restart", "--set", "time.end=0.4", ranks=then
    )
    assert rest.returncode == 0, rest.stdout + rest.stderr
    # the Krylov solves on another partition take other paths
    _assert_same_run(tmp_path / "full", tmp_path / "part", KRYLOV_AGREEMENT)
    record = json.loads((tmp_path / "part" / "run.json").read_text())
    assert record["restarts"][0]["mpi_ranks"] == then and record["mpi_ranks"] == then
    assert list(record["restarts"][0]["changes"]) == ["time.end"]
