"""Stopping and continuing runs: wall-time stops, kill -9, other rank counts, changes.

A run stopped anywhere and continued from its checkpoint must end with the fields
of the uninterrupted run, to the accuracy of the linear solves
(``tests.cases.KRYLOV_AGREEMENT``): the continued run sets up anew the
preconditioner the uninterrupted one kept (and on another rank count partitions
it differently), so its Krylov solves take other paths to the same tolerance. The
field series must hold each output time exactly once, and metrics.csv each output
row once.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mpi4py import MPI

import h5py
import numpy as np
import pytest

from solver.cli import EXIT_INPUT, EXIT_OK, EXIT_STOPPED, main
from solver.config.runfile import load
from solver.errors import InputError
from solver.io import checkpoint, restart
from solver.simulation import Simulation
from solver.time.loop import RunLoop, integrate
from tests.cases import KRYLOV_AGREEMENT

WORLD = MPI.COMM_WORLD
CASE = Path(__file__).parents[2] / "runs" / "chemotaxis_2d" / "config.toml"
SMALL = ["mesh.size=2", "time.end=40", "time.dt=1", "output.every=5"]
ADAPTIVE = ["time.adaptive=true", "time.dt=0.05", "time.rtol=1e-4"]


def _config(folder: Path) -> Path:
    """A copy of the 2-D chemotaxis case in ``folder`` (rank 0 writes it)."""
    path = folder / "config.toml"
    if WORLD.rank == 0:
        shutil.copy(CASE, path)
    WORLD.barrier()
    return path


def _run(config: Path, out: Path, overrides: list[str], stop_at: int | None = None, **kw):
    """Run in-process; with ``stop_at``, stop before step ``stop_at + 1`` as a batch stop would."""
    cfg = load(config, overrides)
    with Simulation(cfg, WORLD) as sim:
        if stop_at is None:
            return integrate(sim, out, overrides=overrides, **kw)
        original = RunLoop._stop_reason

        def stop(loop):
            original(loop)
            return "test stop" if loop.steps >= stop_at else None

        RunLoop._stop_reason = stop
        try:
            return integrate(sim, out, overrides=overrides, **kw)
        finally:
            RunLoop._stop_reason = original


def _continue(config: Path, out: Path, overrides: list[str] | None = None):
    cfg, stored = restart.load(config, out, overrides or [], WORLD)
    with Simulation(cfg, WORLD) as sim:
        sim.load_checkpoint(stored)
        return integrate(sim, out, restart=stored, overrides=overrides or [])


def _states(out: Path) -> dict[str, np.ndarray]:
    with h5py.File(checkpoint.path_in(out)) as f:
        return {c: f[c]["state0"][()] for c in ("cytosol", "membrane")}


def _times(out: Path, compartment: str = "membrane") -> list[float]:
    text = (out / f"{compartment}.xdmf").read_text()
    return [float(v) for v in re.findall(r'Time Value="([^"]+)"', text)]


def _metrics(out: Path) -> tuple[list[str], list[list[float]]]:
    with (out / "metrics.csv").open() as f:
        header, *rows = list(csv.reader(f))
    return header, [[float(v) for v in row] for row in rows]


def _assert_same_run(a: Path, b: Path, tol: float) -> None:
    """Fields at the end, the output times and the metrics rows of two runs agree.

    ``tol`` bounds the fields (relative to their largest value). The metrics agree to
    100·tol, except Krylov iteration counts (GAMG rebuilds its interpolation after a
    restart or on another partition, and stops each solve at a relative residual, not
    at a fixed iterate) and front angles (arccos is ill-conditioned near 0° and 180°).
    """
    if WORLD.rank != 0:
        return
    for name, values in _states(a).items():
        other = _states(b)[name]
        scale = max(1.0, np.abs(values).max())
        assert np.abs(values - other).max() <= tol * scale, name
    for c in ("cytosol", "membrane"):
        assert _times(a, c) == _times(b, c)
        assert len(set(_times(b, c))) == len(_times(b, c))
    header, ra = _metrics(a)
    _, rb = _metrics(b)
    assert [r[0] for r in ra] == [r[0] for r in rb]
    keep = [i for i, h in enumerate(header) if h != "linear_iterations" and "angle" not in h]
    x, y = np.array(ra)[:, keep], np.array(rb)[:, keep]
    assert np.allclose(x, y, rtol=100 * tol, atol=100 * tol, equal_nan=True)


@pytest.mark.parametrize("adaptive", [False, True], ids=["fixed", "adaptive"])
def test_stopped_anywhere_and_continued_gives_the_same_run(tmp_shared, adaptive):
    config = _config(tmp_shared)
    overrides = SMALL + (ADAPTIVE if adaptive else [])
    full = _run(config, tmp_shared / "full", overrides)
    assert full.status == "completed"
    stopped = _run(config, tmp_shared / "part", overrides, stop_at=17)
    assert stopped.status == "stopped" and stopped.steps == 17
    assert 0 < stopped.t < 40
    record = json.loads((tmp_shared / "part" / "run.json").read_text())
    assert record["status"] == "stopped"
    again = _continue(config, tmp_shared / "part")
    assert again.status == "completed" and again.t == 40
    assert again.steps == full.steps
    # measured 3e-8 and 7e-9 of the fields' scale
    _assert_same_run(tmp_shared / "full", tmp_shared / "part", KRYLOV_AGREEMENT)
    record = json.loads((tmp_shared / "part" / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["restarts"][0]["t"] == stopped.t
    assert record["overrides"] == overrides
    # V5 (docs/numerics.md, Invariants): the conserved pools hold across adaptive steps
    # and the restart
    header, rows = _metrics(tmp_shared / "part")
    pools = np.array(rows)[:, [i for i, h in enumerate(header) if h.startswith("pool_")]]
    assert pools.shape[1] == 4  # PI3K, PTEN, Rac, Rho: cytosol + membrane
    assert np.abs(pools / pools[0] - 1).max() <= 1e-10


def test_step_below_dt_min_fails_with_last_state_and_checkpoint(tmp_shared, capsys):
    config = _config(tmp_shared)
    out = tmp_shared / "out"
    strict = [*SMALL, "time.adaptive=true", "time.rtol=1e-9", "time.atol=1e-9"]
    args = ["run", str(config), "-o", str(out), *_sets([*strict, "time.dt_min=0.5"])]
    assert main(args) == 1
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "time.dt_min" in record["reason"]
    assert record["rejected_steps"]["error"] >= 1
    stored = checkpoint.read(checkpoint.path_in(out), WORLD)
    assert stored.meta["status"] == "failed" and stored.meta["t"] == record["t"] > 0
    if WORLD.rank == 0:
        assert _times(out)[-1] == record["t"]  # the last good state is in the series
        assert "time.dt_min" in capsys.readouterr().out


def test_changed_run_file_is_refused_unless_named(tmp_shared):
    config = _config(tmp_shared)
    out = tmp_shared / "out"
    assert _run(config, out, SMALL, stop_at=3).status == "stopped"
    if WORLD.rank == 0:
        text = config.read_text()
        config.write_text(re.sub(r'k_P = "[^"]+"', 'k_P = "0.5 1/s"', text, count=1))
    WORLD.barrier()
    with pytest.raises(InputError, match=r"parameters\.k_P"):
        restart.load(config, out, [], WORLD)
    result = _continue(config, out, ["parameters.k_P=0.5 1/s"])
    assert result.status == "completed"
    record = json.loads((out / "run.json").read_text())
    change = record["restarts"][0]["changes"]
    assert list(change) == ["parameters.k_P"] and change["parameters.k_P"][1] == "0.5 1/s"


def test_restart_needs_a_checkpoint_and_excludes_overwrite(tmp_shared, capsys):
    config = _config(tmp_shared)
    args = ["run", str(config), "-o", str(tmp_shared / "none"), *_sets(SMALL)]
    assert main([*args, "--restart"]) == EXIT_INPUT
    assert main([*args, "--restart", "--overwrite"]) == EXIT_INPUT
    if WORLD.rank == 0:
        err = capsys.readouterr().err
        assert "no checkpoint" in err and "--overwrite" in err


def _sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


# -- real processes ------------------------------------------------------------------
def _command(*args: str, ranks: int = 1) -> list[str]:
    python = [sys.executable, "-m", "solver", *args]
    if ranks == 1:
        return python
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
    return [mpiexec, "-n", str(ranks), *python]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_", "MPI"))}
    env["PYTHONPATH"] = os.pathsep.join([str(CASE.parents[2]), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _polarity(*args: str, ranks: int = 1, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(*args, ranks=ranks),
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# 600 steps: the linear solves' differences accumulate over them (up to 1e-6 of the
# fields with the default, forced Krylov tolerance, see tests.cases.KRYLOV_AGREEMENT);
# GMRES solved to 1e-9 at every step, as the error rule's floor, restarts agree to
# round-off on the same ranks and to 1e-8 on others
LONG = [
    "mesh.size=2",
    "time.end=300",
    "time.dt=0.5",
    "output.every=5",
    "solver.petsc.ksp_rtol=1e-9",
]


def _uninterrupted(folder: Path, overrides: list[str]) -> Path:
    """Copy the case into ``folder`` and run it whole into ``folder/full``; the copy's path."""
    config = shutil.copy(CASE, folder / "config.toml")
    reference = _polarity("run", str(config), "-o", str(folder / "full"), *_sets(overrides))
    assert reference.returncode == EXIT_OK, reference.stderr
    return config


def _start_and_signal(command: list[str], out: Path, rows: int, sig: int) -> int:
    """Start ``command``; once metrics.csv has ``rows`` rows, send ``sig``; its exit code."""
    process = subprocess.Popen(
        command, env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    metrics = out / "metrics.csv"
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) > rows:
            break
        time.sleep(0.05)
    process.send_signal(sig)
    return process.wait(timeout=120)


@pytest.mark.serial
@pytest.mark.slow
def test_wall_time_stop_exits_75_and_the_run_completes_after_restarts(tmp_path):
    config = _uninterrupted(tmp_path, LONG)
    out = str(tmp_path / "part")
    first = _polarity("run", str(config), "-o", out, *_sets(LONG), "--wall-time", "1")
    assert first.returncode == EXIT_STOPPED, first.stdout + first.stderr
    assert "wall-time limit" in first.stdout and "--restart" in first.stdout
    assert json.loads((tmp_path / "part" / "run.json").read_text())["status"] == "stopped"
    # a few more segments, each with a short limit, until the run is complete
    for _ in range(20):
        step = _polarity("run", str(config), "-o", out, "--restart", "--wall-time", "8")
        assert step.returncode in (EXIT_OK, EXIT_STOPPED), step.stdout + step.stderr
        if step.returncode == EXIT_OK:
            break
    assert step.returncode == EXIT_OK
    _assert_same_run(tmp_path / "full", tmp_path / "part", 1e-12)
    done = _polarity("run", str(config), "-o", out, "--restart")
    assert done.returncode == EXIT_OK and "already complete" in done.stdout


@pytest.mark.serial
@pytest.mark.slow
def test_killed_run_continues_to_the_same_answer(tmp_path):
    config = _uninterrupted(tmp_path, LONG)
    out = tmp_path / "part"
    command = _command("run", str(config), "-o", str(out), *_sets(LONG))
    code = _start_and_signal(command, out, 7, signal.SIGKILL)
    assert code == -signal.SIGKILL, "the run ended before it could be killed"
    stored = json.loads((out / "run.json").read_text())
    assert stored["status"] == "running"  # as a killed run leaves it
    again = _polarity("run", str(config), "-o", str(out), "--restart")
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    _assert_same_run(tmp_path / "full", out, 1e-12)


@pytest.mark.serial
@pytest.mark.slow
@pytest.mark.parametrize("first, then", [(1, 2), (2, 1)])
def test_restart_on_another_rank_count(tmp_path, first, then):
    """Stopped by SIGTERM (as Slurm does; mpiexec passes it on to every rank)."""
    config = _uninterrupted(tmp_path, LONG)
    out = tmp_path / "part"
    command = _command("run", str(config), "-o", str(out), *_sets(LONG), ranks=first)
    assert _start_and_signal(command, out, 5, signal.SIGTERM) == EXIT_STOPPED
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "stopped" and "SIGTERM" in record["reason"]
    assert 0 < record["t"] < 300
    rest = _polarity("run", str(config), "-o", str(out), "--restart", ranks=then)
    assert rest.returncode == EXIT_OK, rest.stdout + rest.stderr
    _assert_same_run(tmp_path / "full", out, 1e-8)
    record = json.loads((tmp_path / "part" / "run.json").read_text())
    assert record["restarts"][0]["mpi_ranks"] == then


@pytest.mark.parametrize(
    "cadence, expected",
    [
        (None, [0, 5, 10, 15, 20, 25, 30, 35, 40]),  # at every output time, and at the end
        ("7 s", [0, 7, 14, 21, 28, 35, 40]),  # simulated time
        ("1e-9 s wall", [0, *range(1, 41)]),  # wall time: here, after every step
    ],
)
def test_checkpoint_cadence(tmp_shared, monkeypatch, cadence, expected):
    config = _config(tmp_shared)
    times = []
    original = RunLoop.write_checkpoint

    def record(loop, status):
        times.append(loop.sim.t)
        original(loop, status)

    monkeypatch.setattr(RunLoop, "write_checkpoint", record)
    extra = [] if cadence is None else [f'output.checkpoint_every="{cadence}"']
    assert _run(config, tmp_shared / "out", [*SMALL, *extra]).status == "completed"
    assert times == pytest.approx(expected)
