"""``polarity info``, ``plot`` and ``paraview`` of runs with compartments of their own.

One short 2-D run of a cell with a nucleus in a medium (tests/io/test_compartment_outputs.py),
with a species on the nuclear envelope too, is shared by the tests here; a short run of
the cytosol and membrane, with and without ``resolved.compartments`` in its run.json,
shows that older output folders are inspected as before.
"""

from __future__ import annotations

import ast
import builtins
import json
import shutil
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest

from solver import cli
from solver.inspect.figure import SIZES
from solver.inspect.sections import Plane, picture
from solver.io.compartments import compartments, is_default, primary_volume, readout_surface
from solver.io.metrics import load_metrics
from solver.io.results import Series, center_of, load_record, series_of
from tests.inspect.test_inspect import _image, _png_size, _run_paraview
from tests.io.test_compartment_outputs import MEDIUM

ROOT = Path(__file__).resolve().parents[2]
CHEMOTAXIS_2D = ROOT / "runs" / "chemotaxis_2d" / "config.toml"
WORLD = MPI.COMM_WORLD

#: the run of tests/io, with a species on the envelope and read-outs of LR
ENVELOPE = """
[species.E]
compartment = "envelope"
D = 0.1
initial = 0.0

[reactions.dock]
equation = "N -> E"
rate = "0.5*N*(1 + y) - 0.1*E"

[metrics]
species = ["LR"]
"""


def _shared(factory: pytest.TempPathFactory, name: str) -> Path:
    path = factory.mktemp(name) if WORLD.rank == 0 else None
    return WORLD.bcast(path, root=0)


@pytest.fixture(scope="module")
def nested(tmp_path_factory) -> Path:
    folder = _shared(tmp_path_factory, "nested")
    config = folder / "config.toml"
    if WORLD.rank == 0:
        config.write_text(MEDIUM + ENVELOPE)
    WORLD.barrier()
    assert cli.main(["run", str(config), "-o", str(folder / "out")]) == 0
    return folder / "out"


@pytest.fixture(scope="module")
def default(tmp_path_factory) -> Path:
    """A short run of the cytosol and membrane (runs/chemotaxis_2d, coarse)."""
    out = _shared(tmp_path_factory, "default") / "out"
    args = ["run", str(CHEMOTAXIS_2D), "-o", str(out), "--set", "mesh.size=2"]
    assert cli.main([*args, "--set", "time.end=10", "--set", "output.every=5"]) == 0
    return out


# -- the compartments as run.json records them -----------------------------------------
def test_the_compartments_of_a_record(nested):
    record = load_record(nested)
    assert not is_default(record)
    places = compartments(record)
    assert {n: c.species for n, c in places.items()} == {
        "cytosol": ("C",),
        "nucleus": ("N",),
        "medium": ("L",),
        "membrane": ("R", "LR"),
        "envelope": ("E",),
        "boundary": (),
    }
    assert readout_surface(record) == "membrane" and primary_volume(record) == "cytosol"
    old = {"resolved": {"species": {"c": {"compartment": "cytosol"}}}}
    assert is_default(old) and list(compartments(old)) == ["cytosol", "membrane"]
    assert compartments(old)["membrane"].inside == "cytosol"
    assert readout_surface(old) is None and primary_volume(old) == "cytosol"
    # a run without a cytosol: the membrane's inside is the cell
    cell = {
        "compartments": {"cell": {"kind": "volume"}, "pm": {"kind": "surface", "inside": "cell"}}
    }
    cell["species"] = {"u": {"compartment": "pm"}}
    assert (
        primary_volume({"resolved": cell}) == "cell" and readout_surface({"resolved": cell}) == "pm"
    )


# -- polarity info -----------------------------------------------------------------------
def test_info_lists_every_compartment_and_its_amount(nested, capsys):
    assert cli.main(["info", str(nested)]) == 0
    text = capsys.readouterr().out
    assert cli.main(["info", str(nested), "--json"]) == 0
    printed = capsys.readouterr().out
    if WORLD.rank > 0:
        assert text == printed == ""
        return
    lines = text.splitlines()
    assert "  model: cytosol: C; nucleus: N; medium: L; membrane: R, LR; envelope: E; " in text
    assert (
        "  compartments: volumes cytosol, nucleus, medium; surfaces membrane (between cytosol "
        "and medium), envelope (between nucleus and cytosol), boundary (around medium)"
    ) in lines
    counts = next(line for line in lines if line.startswith("  mesh per compartment: "))
    record = load_record(nested)
    for name, count in record["mesh"]["compartments"].items():
        assert f"{name} {count}" in counts
    assert counts.endswith(" facets") and " cells; membrane " in counts
    metrics = load_metrics(nested)
    for c in ("cytosol", "nucleus", "medium", "membrane", "envelope"):
        line = next(line for line in lines if line.split()[0] == f"amount_{c}")
        assert line.split()[1:] == [f"{metrics[f'amount_{c}'][-1]:.6g}", "uM*um^2"], line
    summary = json.loads(printed)
    assert summary["compartments"]["membrane"] == {
        "kind": "surface",
        "inside": "cytosol",
        "outside": "medium",
        "species": ["R", "LR"],
    }
    assert summary["compartments"]["boundary"] == {
        "kind": "surface",
        "inside": "medium",
        "species": [],
    }
    assert summary["model"]["species"]["envelope"] == ["E"]
    assert summary["final"]["amounts"]["membrane"] == pytest.approx(metrics["amount_membrane"][-1])
    assert summary["amount_units"]["nucleus"] == "uM*um^2"
    assert set(summary["final"]["readouts"]) == {"LR"}


# -- polarity plot -----------------------------------------------------------------------
def test_plot_draws_every_compartment(nested, tmp_shared):
    figures = tmp_shared / "figures"
    assert cli.main(["plot", str(nested), "-o", str(figures)]) == 0
    panel_w, panel_h = SIZES["compartment"]
    expected = {
        "readouts.png": SIZES["readouts"],
        "kymograph_LR.png": SIZES["kymograph"],
        "membrane_LR.png": SIZES["membrane_2d"],
        "compartment_cytosol.png": (panel_w, panel_h + 80),
        "compartment_nucleus.png": (panel_w, panel_h + 80),
        "compartment_medium.png": (panel_w, panel_h + 80),
        "compartment_membrane.png": (2 * panel_w, panel_h + 80),
        "compartment_envelope.png": (panel_w, panel_h + 80),
    }
    if WORLD.rank > 0:
        return
    assert {p.name for p in figures.iterdir()} == set(expected)
    for name, size in expected.items():
        assert _png_size(figures / name) == size, name
        assert _image(figures / name)[..., :3].std() > 0.05, f"{name} is blank"


def test_a_species_on_another_surface_is_drawn_about_its_centre(nested, tmp_shared, capsys):
    from solver.inspect.kymograph import kymograph

    figures = tmp_shared / "figures"
    argv = ["plot", str(nested), "-o", str(figures), "--species", "E", "--species", "R"]
    assert cli.main(argv) == 0
    if WORLD.rank == 0:
        names = {p.name for p in figures.iterdir()}
        assert {"kymograph_E.png", "membrane_E.png", "kymograph_R.png", "membrane_R.png"} <= names
    record, metrics = load_record(nested), load_metrics(nested)
    envelope = series_of(nested, "envelope")
    center = center_of(nested, record, "envelope")  # the nucleus' centroid
    assert np.linalg.norm(center - series_of(nested, "nucleus").centroid()) == 0.0
    k = kymograph(envelope, "E", record, metrics, center)
    assert k.surface == "envelope" and k.signed
    # E docks where the nucleus is fed most, at larger y: the profile peaks at +90° (the
    # reference is the final front of LR, along +x: the angle is measured towards +y)
    assert k.reference == "final front of LR"
    peak = k.angles[np.argmax(k.values[-1])]
    assert abs(peak - 90.0) < 30.0, peak
    capsys.readouterr()
    assert cli.main(["plot", str(nested), "-o", str(figures), "--species", "C"]) == 2
    if WORLD.rank == 0:
        err = capsys.readouterr().err
        assert "no surface field 'C'" in err and "membrane: LR, R; envelope: E" in err


def test_sections_show_each_compartment_among_the_others(nested):
    cytosol = series_of(nested, "cytosol")
    shown = picture(cytosol, 2, ["C"], None)
    assert shown.cells.shape[1] == 3 and not shown.surface
    outline = shown.outline().reshape(-1, 2)
    radii = np.unique(np.round(np.linalg.norm(outline, axis=1), 6))
    assert radii.min() == pytest.approx(0.4) and radii.max() == pytest.approx(1.0)
    assert len(radii) == 2  # the envelope and the membrane: no inner edge
    membrane = picture(series_of(nested, "membrane"), 0, ["R"], None)
    assert membrane.surface and np.allclose(membrane.values["R"], 1.0)


def test_a_3d_section_keeps_off_the_nodes():
    """A plane through nodes would cut sliver triangles; it moves a little off them."""
    rng = np.random.default_rng(1)
    points = rng.uniform(-1.0, 1.0, (400, 3))
    points[:50, 2] = 0.0  # a layer of nodes in the plane z = 0
    cells = np.array([rng.choice(400, 4, replace=False) for _ in range(300)])
    series = Series(Path("cell.xdmf"), "Tetrahedron", points, cells)
    plane = Plane.through(np.zeros(3), np.array([1.0, 0.0, 0.0]), [series])
    h = float(np.mean(np.linalg.norm(points[cells[:, 1]] - points[cells[:, 0]], axis=1)))
    height = plane.origin[2]
    assert plane.normal == 2 and plane.axes == (0, 1)
    assert 0 < abs(height) <= 0.2 * h
    assert np.min(np.abs(points[:, 2] - height)) > 0.0
    assert plane.text == f"section z = {round(height, 3) + 0.0:g} µm"
    upright = Plane.through(np.zeros(3), np.array([0.0, 0.1, 1.0]))
    assert upright.normal == 1 and upright.axes == (0, 2) and upright.text == "section y = 0 µm"


# -- polarity paraview -------------------------------------------------------------------
def _settings(state: Path) -> dict:
    text = state.read_text()
    return json.loads(text.split('SETTINGS = json.loads(r"""', 1)[1].split('""")', 1)[0])


def _undefined(state: Path) -> set[str]:
    """Names the state script uses at its top level but never defines or imports."""
    tree = ast.parse(state.read_text())
    defined = set(dir(builtins)) | {"__file__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - defined


def _copy(source: Path, target: Path) -> Path:
    if WORLD.rank == 0:
        shutil.copytree(source, target, dirs_exist_ok=True)
    WORLD.barrier()
    return target


def test_the_paraview_state_loads_every_compartment(nested, tmp_shared, capsys):
    out = _copy(nested, tmp_shared / "out")
    assert cli.main(["paraview", str(out), "--cytosol-species", "N"]) == 0
    state = out / "polarity_view.py"
    settings = _settings(state)
    assert _undefined(state) == set()
    assert (settings["membrane"], settings["cytosol"]) == ("membrane", "cytosol")
    assert settings["species"] == "LR" and settings["cytosol_species"] == "C"
    others = {o["compartment"]: o for o in settings["others"]}
    assert list(others) == ["nucleus", "medium", "envelope"]
    assert [o["volume"] for o in others.values()] == [True, True, False]
    assert others["nucleus"]["species"] == "N"  # named by --cytosol-species
    assert others["envelope"]["label"] == "E (µM·µm)"
    lo, hi = others["medium"]["range"]
    assert lo < hi
    capsys.readouterr()
    assert cli.main(["paraview", str(out), "--cytosol-species", "R"]) == 2
    if WORLD.rank == 0:
        assert "no cytosol field 'R'" in capsys.readouterr().err


LIST_SOURCES = """
import sys
sys.argv = [sys.argv[0], "--png"]
__file__ = "@STATE@"
exec(compile(open(__file__).read(), __file__, "exec"))
from paraview.simple import GetSources
names = sorted({name for name, _ in GetSources()})
print("SOURCES " + "|".join(names))
"""


@pytest.mark.paraview
@pytest.mark.serial
def test_the_paraview_state_renders_every_compartment(nested, tmp_path):
    out = _copy(nested, tmp_path / "out")
    assert cli.main(["paraview", str(out), "--size", "640x480"]) == 0
    script = tmp_path / "list_sources.py"
    script.write_text(LIST_SOURCES.replace("@STATE@", str(out / "polarity_view.py")))
    printed = _run_paraview(script)
    line = next(s for s in printed.splitlines() if s.startswith("SOURCES "))
    sources = set(line.removeprefix("SOURCES ").split("|"))
    for c in ("cytosol", "nucleus", "medium", "membrane", "envelope"):
        assert f"{c}.xdmf" in sources, sources
    png = out / "figures" / "paraview_LR_front_t0.1.png"
    assert _png_size(png) == (640, 480)
    pixels = _image(png)[..., :3]
    assert pixels.std() > 0.05
    # five colour bars: three on the right, two on the left
    for left, rows in ((0.83, 3), (0.11, 2)):
        column = pixels[:, int(left * 640) : int((left + 0.04) * 640)]
        coloured = np.ptp(column, axis=2).max(axis=1) > 0.15
        runs = np.flatnonzero(np.diff(coloured.astype(int)) == 1)  # tops of coloured runs
        assert len(runs) >= rows, (left, runs)


# -- older output folders --------------------------------------------------------------
def test_an_output_folder_without_compartments_is_inspected_as_before(default, tmp_shared):
    old = _copy(default, tmp_shared / "old")
    new = _copy(default, tmp_shared / "new")
    if WORLD.rank == 0:
        record = json.loads((old / "run.json").read_text())
        assert record["resolved"]["compartments"] == {
            "cytosol": {"kind": "volume"},
            "membrane": {"kind": "surface", "inside": "cytosol"},
        }
        del record["resolved"]["compartments"]
        (old / "run.json").write_text(json.dumps(record))
    WORLD.barrier()
    assert "amount_cytosol" not in load_metrics(new)
    from solver.inspect.summary import format_summary, summarize

    for which in (old, new):
        assert cli.main(["plot", str(which), "--species", "Rac_m"]) == 0
        assert cli.main(["paraview", str(which), "--species", "Rac_m"]) == 0
    summaries = [summarize(which) for which in (old, new)]
    texts = [format_summary(s)[1:] for s in summaries]  # the first line names the folder
    assert texts[0] == texts[1]
    assert {k: v for k, v in summaries[0].items() if k != "out"} == {
        k: v for k, v in summaries[1].items() if k != "out"
    }
    assert "compartments" not in summaries[1] and "amounts" not in summaries[1]["final"]
    assert not any(line.startswith("  compartments") for line in texts[1])
    if WORLD.rank == 0:
        names = [sorted(p.name for p in (w / "figures").iterdir()) for w in (old, new)]
        assert names[0] == names[1] == ["kymograph_Rac_m.png", "membrane_Rac_m.png", "readouts.png"]
        for name in names[0]:
            assert np.array_equal(_image(old / "figures" / name), _image(new / "figures" / name))
        settings = [_settings(w / "polarity_view.py") for w in (old, new)]
        for s in settings:
            del s["folder"]
        assert settings[0] == settings[1]
        assert settings[1]["others"] == [] and settings[1]["membrane"] == "membrane"


def _cube(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unit cube in n³ little cubes of 6 tetrahedra each; its boundary triangles."""
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, n + 1)] * 3, indexing="ij"), -1)
    points = grid.reshape(-1, 3)
    index = np.arange(len(points)).reshape(n + 1, n + 1, n + 1)
    tets = []
    paths = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    for i, j, k in np.ndindex(n, n, n):
        for path in paths:  # Kuhn's subdivision: one tetrahedron per order of the axes
            corner = np.array([i, j, k])
            chain = [tuple(corner)]
            for axis in path:
                corner = corner.copy()
                corner[axis] += 1
                chain.append(tuple(corner))
            tets.append([index[c] for c in chain])
    tets = np.array(tets)
    faces = np.sort(tets[:, [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]].reshape(-1, 3), axis=1)
    unique, counts = np.unique(faces, axis=0, return_counts=True)
    return points, tets, unique[counts == 1]


def test_a_3d_section_interpolates_the_fields_exactly(tmp_path):
    """The section of a P1 field is its restriction: exact for a linear field."""
    pytest.importorskip("pyvista")
    import h5py

    points, tets, triangles = _cube(4)
    linear = points @ np.array([1.0, 2.0, 3.0])
    with h5py.File(tmp_path / "u.h5", "w") as f:
        f["u"] = linear
    volume = Series(tmp_path / "cube.xdmf", "Tetrahedron", points, tets, {"u": [(0.0, "u.h5:u")]})
    surface = Series(tmp_path / "box.xdmf", "Triangle", points, triangles, {"u": [(0.0, "u.h5:u")]})
    plane = Plane.through(np.full(3, 0.5), None, [volume])
    height = plane.origin[2]
    assert 0 < abs(height - 0.5) <= 0.2 / 4  # moved off the nodes at z = 1/2
    section = picture(volume, 0, ["u"], plane)
    x = section.points[section.cells]
    a, b = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]
    area = 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()
    assert area == pytest.approx(1.0)
    expected = section.points @ np.array([1.0, 2.0]) + 3.0 * height
    assert np.allclose(section.values["u"], expected)
    outline = section.outline()
    assert np.linalg.norm(outline[:, 1] - outline[:, 0], axis=1).sum() == pytest.approx(4.0)
    curve = picture(surface, 0, ["u"], plane)  # the box cut: the unit square's perimeter
    assert curve.surface
    lengths = np.linalg.norm(np.diff(curve.points[curve.cells], axis=1)[:, 0], axis=1)
    assert lengths.sum() == pytest.approx(4.0)
    assert np.allclose(curve.values["u"], curve.points @ np.array([1.0, 2.0]) + 3.0 * height)
