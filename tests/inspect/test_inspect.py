"""Inspecting results: readers of the outputs, ``polarity info``, ``plot`` and ``paraview``.

One short polarised 2-D run of runs/chemotaxis_2d (coarse mesh, 60 s) and one tiny
3-D run are shared by the tests of this module. The inspection commands run on
rank 0 only; under mpiexec the runs are written by 2 ranks.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest

from solver import cli
from solver.io.metrics import load_metrics
from solver.io.results import load_record, read_series, series_of

ROOT = Path(__file__).resolve().parents[2]
CHEMOTAXIS_2D = ROOT / "runs" / "chemotaxis_2d" / "config.toml"
EXCHANGE_3D = ROOT / "runs" / "exchange_3d" / "config.toml"
WORLD = MPI.COMM_WORLD


def _shared_dir(factory: pytest.TempPathFactory, name: str) -> Path:
    path = factory.mktemp(name) if WORLD.rank == 0 else None
    return WORLD.bcast(path, root=0)


@pytest.fixture(scope="module")
def run2d(tmp_path_factory) -> Path:
    """A 2-D run that polarises towards the gradient within 60 s."""
    out = _shared_dir(tmp_path_factory, "run2d") / "out"
    args = ["run", str(CHEMOTAXIS_2D), "-o", str(out), "--set", "mesh.size=1"]
    args += ["--set", "time.end=60", "--set", "output.every=20"]
    assert cli.main(args) == 0
    return out


@pytest.fixture(scope="module")
def run3d(tmp_path_factory) -> Path:
    out = _shared_dir(tmp_path_factory, "run3d") / "out"
    args = ["run", str(EXCHANGE_3D), "-o", str(out), "--set", "mesh.size=0.5"]
    args += ["--set", "time.end=0.2", "--set", "output.every=0.1"]
    assert cli.main(args) == 0
    return out


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _image(path: Path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)


# -- the outputs open with the usual readers ------------------------------------------
def test_outputs_open_with_meshio_h5py_and_pyvista(run2d):
    import meshio

    pv = pytest.importorskip("pyvista")
    membrane = read_series(run2d / "membrane.xdmf")
    times, rac = membrane.values("Rac_m")
    assert times == pytest.approx([0.0, 20.0, 40.0, 60.0])
    assert membrane.points.shape[1] == 2 and rac.shape == (4, len(membrane.points))
    # meshio: the same mesh and values
    with meshio.xdmf.TimeSeriesReader(run2d / "membrane.xdmf") as reader:
        points, cells = reader.read_points_cells()
        assert reader.num_steps == 4
        t, point_data, _ = reader.read_data(reader.num_steps - 1)
    assert t == pytest.approx(60.0)
    assert np.allclose(points[:, :2], membrane.points)
    assert np.allclose(np.ravel(point_data["Rac_m"]), rac[-1])
    # pyvista (VTK's XDMF reader): same times, same values at the last time
    reader = pv.XdmfReader(str(run2d / "membrane.xdmf"))
    assert reader.time_values == pytest.approx(list(times))
    reader.set_active_time_value(60.0)
    data = reader.read()
    blocks = [data] if not isinstance(data, pv.MultiBlock) else list(data)
    with_rac = [b for b in blocks if b is not None and "Rac_m" in b.point_data]
    assert with_rac, "pyvista found no Rac_m"
    assert np.allclose(np.sort(with_rac[0].point_data["Rac_m"]), np.sort(rac[-1]))
    cytosol = read_series(run2d / "cytosol.xdmf")
    assert set(cytosol.fields) == {"I", "K_c", "T_c", "Rac_c", "Rho_c"}
    area = cytosol.node_weights().sum()
    assert area == pytest.approx(np.pi * 25.0, rel=0.05)  # the disk of radius 5 um


# -- polarity info ----------------------------------------------------------------------
def test_info_text_and_json(run2d, capsys):
    assert cli.main(["info", str(run2d)]) == 0
    text = capsys.readouterr().out
    assert cli.main(["info", str(run2d), "--json"]) == 0
    printed = capsys.readouterr().out
    if WORLD.rank > 0:
        assert text == printed == ""  # only rank 0 prints
        return
    assert text.splitlines()[0] == f"{run2d}: completed"
    assert "Rac_m" in text and "membrane facets" in text and "uM*um^2" in text
    summary = json.loads(printed)
    metrics = load_metrics(run2d)
    record = load_record(run2d)
    assert summary["status"] == "completed" and summary["mpi_ranks"] == WORLD.size
    assert summary["model"]["species"]["membrane"] == ["E", "K_m", "T_m", "P", "Rac_m", "Rho_m"]
    assert summary["model"]["stimuli"] == {"chemokine": "linear"}
    assert summary["mesh"]["dim"] == 2 and summary["steps"] == record["steps"]
    final = summary["final"]
    assert final["t"] == pytest.approx(60.0)
    assert final["readouts"]["Rac_m"]["PI"] == pytest.approx(metrics["PI_Rac_m"][-1])
    assert final["readouts"]["Rac_m"]["angle"] < 5.0
    assert final["totals"]["P"] == pytest.approx(metrics["total_P"][-1])


@pytest.mark.serial
def test_info_of_a_run_still_running(tmp_path, capsys):
    """A run killed early leaves run.json with status running and no metrics yet."""
    out = tmp_path / "out"
    out.mkdir()
    record = {"status": "running", "source": "case.toml", "mpi_ranks": 4, "unknowns": 10}
    (out / "run.json").write_text(json.dumps(record))
    assert cli.main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{out}: running") and "4 rank(s)" in text and "final" not in text
    assert cli.main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "running" and summary["final"] is None and summary["t"] is None
    (out / "metrics.csv").write_text("t,dt,total_c,PI_m\n0.0,0.0,2.5,nan\n")
    assert cli.main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final"]["totals"] == {"c": 2.5}
    assert summary["final"]["readouts"] == {"m": {"PI": None}}


@pytest.mark.serial
def test_bad_folders_and_names_exit_2_with_one_line(run2d, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    cases = [
        (["info", str(tmp_path / "missing")], "does not exist"),
        (["info", str(tmp_path / "empty")], "no run.json"),
        (["info", str(tmp_path / "broken")], "unreadable"),
        (["plot", str(tmp_path / "empty")], "no run.json"),
        (["plot", str(run2d), "--species", "nope"], "no membrane field 'nope'"),
        (["paraview", str(run2d), "--species", "nope"], "no membrane field 'nope'"),
        (["paraview", str(run2d), "--cytosol-species", "P"], "no cytosol field 'P'"),
        (["paraview", str(run2d), "--times", "33"], "no output at t = 33 s"),
        (["paraview", str(run2d), "--size", "big"], "WIDTHxHEIGHT"),
    ]
    for argv, fragment in cases:
        capsys.readouterr()
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], (argv, err)


# -- polarity plot ----------------------------------------------------------------------
def test_plot_writes_the_figures(run2d, tmp_shared):
    from solver.inspect.plotting import SIZES

    figures = tmp_shared / "figures"
    assert cli.main(["plot", str(run2d), "-o", str(figures), "--species", "Rac_m"]) == 0
    expected = {
        "readouts.png": SIZES["readouts"],
        "kymograph_Rac_m.png": SIZES["kymograph"],
        "membrane_Rac_m.png": SIZES["membrane_2d"],
    }
    assert {p.name for p in figures.iterdir()} == set(expected)
    for name, size in expected.items():
        path = figures / name
        assert path.stat().st_size > 10_000, name
        assert _png_size(path) == size, name
        pixels = _image(path)[..., :3]
        assert pixels.std() > 0.05, f"{name} is blank"


def test_plot_writes_vector_figures_and_a_movie(run2d, tmp_shared):
    from PIL import Image

    figures = tmp_shared / "figures_vector"
    argv = ["plot", str(run2d), "-o", str(figures), "--species", "P", "--format", "png,pdf,svg"]
    assert cli.main([*argv, "--movie"]) == 0
    names = {p.name for p in figures.iterdir()}
    for stem in ("readouts", "kymograph_P", "membrane_P"):
        assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.svg"} <= names, names
    assert (figures / "readouts.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (figures / "kymograph_P.svg").read_bytes()[:2000]
    movie = Image.open(figures / "membrane_P.gif")
    frames = getattr(movie, "n_frames", 1)
    assert frames == len(series_of(run2d, "membrane").times("P")) > 1
    first = np.asarray(movie.convert("RGB"), dtype=float)
    movie.seek(frames - 1)
    last = np.asarray(movie.convert("RGB"), dtype=float)
    assert np.abs(first - last).mean() > 0.5  # the membrane changes colour over time


@pytest.mark.serial  # the message is printed on rank 0
def test_plot_refuses_an_unknown_format(run2d, tmp_shared, capsys):
    out = tmp_shared / "figures_bad"
    assert cli.main(["plot", str(run2d), "-o", str(out), "--format", "png,jpeg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--format" in err[0] and "jpeg" in err[0]


def test_kymograph_has_its_maximum_at_the_front(run2d):
    from solver.inspect.plotting import kymograph

    record, metrics = load_record(run2d), load_metrics(run2d)
    membrane, cytosol = series_of(run2d, "membrane"), series_of(run2d, "cytosol")
    center = cytosol.centroid()
    assert np.linalg.norm(center) < 0.05  # the disk is centred at the origin
    for name, at in (("Rac_m", 0.0), ("P", 0.0), ("Rho_m", 180.0)):
        k = kymograph(membrane, name, record, metrics, center)
        assert k.signed and k.reference == "gradient"
        assert k.values.shape == (len(k.times), len(k.angles))
        final = k.values[-1]
        peak = k.angles[np.argmax(final)]
        assert min(abs(peak - at), 360 - abs(peak - at)) < 20.0, (name, peak)
        # the profile interpolates the nodal values: within their range, close to its ends
        _, values = membrane.values(name)
        lo, hi = values[-1].min(), values[-1].max()
        assert lo * (1 - 1e-12) <= final.min() <= final.max() <= hi * (1 + 1e-12)
        assert final.max() == pytest.approx(hi, rel=0.01)
        assert final.min() == pytest.approx(lo, rel=0.01)
        # the front rises over time (Rac, PIP3) or the back does (Rho)
        front = k.values[:, np.argmin(np.abs(k.angles - at))]
        assert front[-1] > front[1]


def test_membrane_view_3d_with_pyvista(run3d, tmp_shared):
    pytest.importorskip("pyvista")
    from solver.inspect.plotting import SIZES

    figures = tmp_shared / "figures"
    assert cli.main(["plot", str(run3d), "-o", str(figures)]) == 0
    assert {p.name for p in figures.iterdir()} == {
        "readouts.png",
        "kymograph_m.png",
        "membrane_m.png",
    }
    view = figures / "membrane_m.png"
    assert _png_size(view) == SIZES["membrane"]
    pixels = _image(view)[..., :3]
    assert pixels.std() > 0.05
    # a 3-D kymograph is over the polar angle, from the front (0) to the back (180)
    from solver.inspect.plotting import kymograph

    membrane = series_of(run3d, "membrane")
    k = kymograph(membrane, "m", load_record(run3d), load_metrics(run3d), membrane.centroid())
    assert not k.signed and k.angles.min() > 0 and k.angles.max() < 180
    assert np.all(np.isfinite(k.values))


# -- ParaView -------------------------------------------------------------------------
def _pvbatch() -> list[str]:
    pvbatch = shutil.which("pvbatch")
    if pvbatch is None:
        pytest.skip("ParaView is not installed (apt-get install paraview python3-paraview xvfb)")
    if os.environ.get("DISPLAY"):
        return [pvbatch]
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        pytest.skip("pvbatch needs an X server: install xvfb (xvfb-run)")
    # a random first display number: parallel xvfb-run -a calls race for the same one
    first = str(random.randrange(100, 30000))
    return [xvfb, "-a", "-n", first, "-s", "-screen 0 1024x768x24", pvbatch]


def _run_paraview(script: Path) -> str:
    """Run ``script`` with pvbatch; retried (twice) only if the X server was not usable."""
    for _ in range(3):
        proc = subprocess.run(
            [*_pvbatch(), str(script)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=script.parent,
        )
        if "bad X server connection" not in proc.stdout + proc.stderr:
            break
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


READERS = """
import json
from paraview import servermanager
from paraview.simple import XDMFReader, Xdmf3ReaderT

result = {}
for name, make in (("xdmf3", lambda p: Xdmf3ReaderT(FileName=[p])),
                   ("legacy", lambda p: XDMFReader(FileNames=[p]))):
    reader = make("@PATH@")
    reader.UpdatePipeline(time=60.0)
    data = servermanager.Fetch(reader)
    blocks = [data]
    while blocks and blocks[0].IsA("vtkMultiBlockDataSet"):
        blocks = [b for d in blocks for b in (d.GetBlock(i) for i in range(d.GetNumberOfBlocks()))
                  if b is not None]
    found = {}
    total = sum(block.GetNumberOfPoints() for block in blocks)
    for block in blocks:
        array = block.GetPointData().GetArray("Rac_m")
        if array is not None:
            found = {"points": block.GetNumberOfPoints(),
                     "values": [array.GetValue(i) for i in range(array.GetNumberOfTuples())],
                     "times": list(reader.TimestepValues), "total_points": total}
    result[name] = found
print("RESULT " + json.dumps(result))
"""


def test_the_paraview_state_is_a_complete_script_without_paraview(run2d, tmp_shared):
    """Every name the state script uses at its top level is defined or imported there."""
    import ast
    import builtins

    out = tmp_shared / "pv_out"
    if WORLD.rank == 0:
        shutil.copytree(run2d, out, dirs_exist_ok=True)
    WORLD.barrier()
    assert cli.main(["paraview", str(out)]) == 0
    tree = ast.parse((out / "polarity_view.py").read_text())
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
    assert used <= defined, used - defined
    assert 'SETTINGS = json.loads(r"""' in (out / "polarity_view.py").read_text()


@pytest.mark.paraview
@pytest.mark.serial
def test_paraview_xdmf3_and_legacy_readers_open_the_outputs(run2d, tmp_path):
    script = tmp_path / "readers.py"
    script.write_text(READERS.replace("@PATH@", str(run2d / "membrane.xdmf")))
    line = next(s for s in _run_paraview(script).splitlines() if s.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    _, rac = read_series(run2d / "membrane.xdmf").values("Rac_m")
    for reader in ("xdmf3", "legacy"):
        found = result[reader]
        assert found, f"ParaView's {reader} reader found no Rac_m"
        assert found["times"] == pytest.approx([0.0, 20.0, 40.0, 60.0])
        assert found["points"] == rac.shape[1]
        assert found["total_points"] == rac.shape[1]  # no extra block (a mesh-only grid)
        assert np.allclose(sorted(found["values"]), np.sort(rac[-1]))


@pytest.mark.paraview
@pytest.mark.serial
def test_paraview_state_renders_pngs_under_pvbatch(run2d, run3d):
    for out, species, sides in ((run2d, "Rac_m", ["front"]), (run3d, "m", ["front", "back"])):
        last = float(load_metrics(out)["t"][-1])
        assert cli.main(["paraview", str(out), "--species", species, "--size", "640x480"]) == 0
        state = out / "polarity_view.py"
        text = state.read_text()
        assert "Xdmf3ReaderT" in text and "AnnotateTime" in text
        _run_paraview(state)
        for side in sides:
            png = out / "figures" / f"paraview_{species}_{side}_t{last:g}.png"
            assert png.is_file(), png
            assert _png_size(png) == (640, 480)
            assert _image(png)[..., :3].std() > 0.05, f"{png.name} is blank"
