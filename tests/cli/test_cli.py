"""The command line: outputs of a run, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from mpi4py import MPI

import pytest

from solver import cli
from solver.cli import app as cli_main
from solver.io.metrics import load_metrics
from tests.cases import exchange_disk

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE = ROOT / "runs" / "exchange_3d" / "config.toml"

RUN_FILE = exchange_disk()


def write(folder: Path, text: str, name: str = "config.toml") -> Path:
    path = folder / name
    if MPI.COMM_WORLD.rank == 0:
        path.write_text(text)
    MPI.COMM_WORLD.barrier()
    return path


def test_run_writes_the_output_contract(tmp_shared):
    cfg = write(tmp_shared, RUN_FILE)
    out = tmp_shared / "out"
    assert cli.main(["run", str(cfg), "-o", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "cytosol.xdmf",
        "cytosol.h5",
        "membrane.xdmf",
        "membrane.h5",
        "metrics.csv",
        "run.json",
    } <= names
    for compartment, species in (("cytosol", "c"), ("membrane", "m")):
        text = (out / f"{compartment}.xdmf").read_text()
        assert "http://www.w3.org/2001/XInclude" in text and "https://www.w3.org" not in text
        root = ET.fromstring(text)
        attributes = {a.get("Name") for a in root.iter("Attribute")}
        assert attributes == {species}
        times = sorted({float(t.get("Value")) for t in root.iter("Time")})
        assert times == pytest.approx([0.0, 0.1, 0.2])
    metrics = load_metrics(out)
    assert metrics["t"] == pytest.approx([0.0, 0.1, 0.2])
    pool = metrics["pool_c+m"]
    assert max(abs(p - pool[0]) for p in pool) <= 1e-12 * pool[0]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["mpi_ranks"] == MPI.COMM_WORLD.size
    assert record["config"]["species"]["c"]["D"] == "1 um^2/s"
    assert {"solver", "dolfinx", "petsc"} <= set(record["versions"])
    # an existing output folder is never overwritten silently
    assert cli.main(["run", str(cfg), "-o", str(out)]) == 2
    assert cli.main(["run", str(cfg), "-o", str(out), "--overwrite"]) == 0


BAD_INPUTS = {
    "unknown key": (
        RUN_FILE.replace('dt = "0.05 s"', 'dt = "0.05 s"\nstep = 3'),
        "time.step",
        "unknown key",
    ),
    "missing species": (
        RUN_FILE.replace('equation = "c -> m"', 'equation = "c -> p"'),
        "reactions.bind.equation",
        "unknown species 'p'",
    ),
    "undefined name": (
        RUN_FILE.replace('rate = "k*c', 'rate = "kk*c'),
        "reactions.bind.rate",
        "undefined name 'kk'",
    ),
    "incompatible units": (
        RUN_FILE.replace('D = "1 um^2/s"', 'D = "1 nM"'),
        "species.c.D",
        "diffusivity",
    ),
    "negative diffusion": (
        RUN_FILE.replace('D = "1 um^2/s"', 'D = "-1 um^2/s"'),
        "species.c.D",
        "negative",
    ),
    "reaction without species": (
        RUN_FILE.replace('equation = "c -> m"', 'equation = " -> "'),
        "reactions.bind.equation",
        "no species",
    ),
    "missing mesh file": (
        RUN_FILE.replace('shape = "disk"', 'shape = "file"\nfile = "no.msh"').replace(
            'radius = "1 um"\nsize = "0.25 um"\n', ""
        ),
        "mesh.file",
        "does not exist",
    ),
    "malformed TOML": (RUN_FILE.replace("[time]", "[time"), "", "malformed TOML"),
    "unsafe expression": (
        RUN_FILE.replace('rate = "k*c - 0.5*m"', "rate = \"__import__('os').system('true')\""),
        "reactions.bind.rate",
        "not allowed",
    ),
}


@pytest.mark.serial
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    text, key, fragment = BAD_INPUTS[case]
    cfg = write(tmp_path, text)
    out = tmp_path / "out"
    code = cli.main(["run", str(cfg), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {cfg}"), err
    assert key in lines[0] and fragment in lines[0], err
    assert not out.exists()
    assert cli.main(["check", str(cfg)]) == 2


@pytest.mark.serial
def test_mesh_without_membrane(tmp_path, capsys):
    import gmsh

    msh = tmp_path / "nomembrane.msh"
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.occ.addDisk(0, 0, 0, 1, 1)
    gmsh.model.occ.synchronize()
    gmsh.model.addPhysicalGroup(2, [1], 1, name="cytosol")
    gmsh.option.setNumber("Mesh.MeshSizeMax", 0.3)
    gmsh.model.mesh.generate(2)
    gmsh.write(str(msh))
    gmsh.finalize()
    text = RUN_FILE.replace('shape = "disk"', f'shape = "file"\nfile = "{msh.name}"').replace(
        'radius = "1 um"\nsize = "0.25 um"\n', ""
    )
    cfg = write(tmp_path, text)
    out = tmp_path / "out"
    assert cli.main(["run", str(cfg), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "membrane" in err and str(msh.name) in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.serial
def test_debug_shows_the_traceback(tmp_path):
    cfg = write(tmp_path, RUN_FILE.replace('D = "1 um^2/s"', 'D = "-1 um^2/s"'))
    with pytest.raises(Exception, match="negative"):
        cli.main(["--debug", "check", str(cfg)])


def test_check_describes_without_solving(tmp_shared, capsys):
    cfg = write(tmp_shared, RUN_FILE)
    assert cli.main(["check", str(cfg)]) == 0
    out = capsys.readouterr().out
    if MPI.COMM_WORLD.rank == 0:
        assert "bind" in out and "membrane" in out and "c -> m" in out
        assert "unknowns:" in out and "conserved pools: c+m" in out
    else:
        assert out == ""  # only rank 0 prints
    assert not (tmp_shared / "out").exists()


def _mpiexec() -> str:
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else "mpiexec"


@pytest.mark.serial
def test_same_metrics_on_one_and_two_ranks(tmp_path):
    """Domain decomposition changes nothing but round-off: metrics agree to 1e-8.

    Every column but the Krylov iteration count, which depends on the partition
    through the block-Jacobi and multigrid preconditioners (Newton counts do not).
    """
    env = dict(os.environ, OMP_NUM_THREADS="1")
    results = {}
    for ranks in (1, 2):
        out = tmp_path / f"out{ranks}"
        cmd = [
            _mpiexec(),
            "-n",
            str(ranks),
            sys.executable,
            "-m",
            "solver",
            "run",
            str(EXCHANGE),
            "-o",
            str(out),
            "--set",
            "mesh.size=0.3",
            "--set",
            "time.end=0.3",
            "--set",
            "output.every=0.05",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results[ranks] = load_metrics(out)
    one, two = results[1], results[2]
    assert one.keys() == two.keys() and len(one["t"]) == 7
    for column in one.keys() - {"linear_iterations"}:
        for a, b in zip(one[column], two[column], strict=True):
            assert abs(a - b) <= 1e-8 * max(abs(a), abs(b), 1e-300) or abs(a - b) < 1e-14, column


class _World:
    """Stands in for MPI.COMM_WORLD of a 2-rank run; records an abort."""

    size, rank = 2, 0
    aborted: list[int] = []

    def Abort(self, code):  # noqa: N802 (mpi4py's name)
        self.aborted.append(code)
        raise SystemExit(code)


def test_unexpected_error_under_mpi_aborts_every_rank(monkeypatch, capsys):
    """Other ranks would wait for ever in their next collective call: abort them all."""

    def broken(argv=None):
        raise RuntimeError("a bug on one rank")

    world = _World()
    monkeypatch.setattr(cli_main, "main", broken)
    monkeypatch.setattr(cli_main, "MPI", type("FakeMPI", (), {"COMM_WORLD": world}))
    with pytest.raises(SystemExit) as stop:
        cli_main.entry()
    assert stop.value.code == cli.EXIT_FAILED and world.aborted == [cli.EXIT_FAILED]
    assert "a bug on one rank" in capsys.readouterr().err


def test_entry_exits_with_the_code_of_main(monkeypatch):
    monkeypatch.setattr(cli_main, "main", lambda argv=None: cli.EXIT_STOPPED)
    with pytest.raises(SystemExit) as stop:
        cli_main.entry()
    assert stop.value.code == cli.EXIT_STOPPED
