"""The output folder is the run's alone: its lock, the rule of --overwrite, restart --set.

- ``--overwrite`` replaces an empty folder or a previous run's outputs, nothing else:
  never a folder of other files, the folder of the run file, the current folder;
- ``OUT/.polarity.lock`` is taken before set-up: a second run into the folder is
  refused at once, naming the holder; the lock of a dead process is taken over; the
  lock is gone when the run ends, however it ends; ``--restart`` takes it too;
- ``--restart --set`` honours what it records (``time.dt``, ``time.end``) and refuses
  what it cannot (the mesh, the species' initial values, the columns of metrics.csv).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import pytest

from solver import cli
from solver.io import claim
from solver.io.metrics import load_metrics
from solver.time.loop import RunLoop
from tests.cases import exchange_disk

WORLD = MPI.COMM_WORLD
RUN_FILE = exchange_disk(end="0.5 s", dt="0.05 s", every="0.1 s")


def _write(path: Path, text: str) -> Path:
    if WORLD.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    WORLD.barrier()
    return path


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content (on every rank: from rank 0)."""
    files = None
    if WORLD.rank == 0:
        found = (p for p in folder.rglob("*") if p.is_file())
        files = {str(p.relative_to(folder)): p.read_bytes() for p in found}
    return WORLD.bcast(files, root=0)


def _error(capsys, *fragments: str) -> None:
    captured = capsys.readouterr()
    if WORLD.rank != 0:
        return
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _run(cfg: Path, out: Path, *extra: str) -> int:
    code = cli.main(["run", str(cfg), "-o", str(out), *extra])
    WORLD.barrier()  # rank 0 releases the folder (lock, folders made) as it returns
    return code


def _record(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


# -- --overwrite ------------------------------------------------------------------
def test_overwrite_replaces_a_previous_run_and_nothing_else(tmp_shared, capsys):
    cfg = _write(tmp_shared / "config.toml", RUN_FILE)
    out = tmp_shared / "out"
    assert _run(cfg, out) == cli.EXIT_OK
    _write(out / "membrane" / "000099.h5", "debris of the earlier run")
    assert _run(cfg, out, "--overwrite") == cli.EXIT_OK
    assert not (out / "membrane" / "000099.h5").exists()
    assert _record(out)["status"] == "completed"
    assert not (out / claim.LOCK).exists()
    # an empty folder may be used too
    _write(tmp_shared / "empty" / ".keep", "")
    if WORLD.rank == 0:
        (tmp_shared / "empty" / ".keep").unlink()
    WORLD.barrier()
    assert _run(cfg, tmp_shared / "empty", "--overwrite") == cli.EXIT_OK


@pytest.mark.parametrize("content", ["notes", "foreign run.json"])
def test_overwrite_refuses_a_folder_of_other_files(tmp_shared, capsys, content):
    cfg = _write(tmp_shared / "config.toml", RUN_FILE)
    out = tmp_shared / "data"
    if content == "notes":
        _write(out / "notes.txt", "my notes\n")
    else:
        _write(out / "run.json", json.dumps({"status": "completed", "by": "another tool"}))
    before = _tree(tmp_shared)
    assert _run(cfg, out, "--overwrite") == cli.EXIT_INPUT
    _error(capsys, "--overwrite refused", "does not hold the outputs of a polarity run")
    assert _tree(tmp_shared) == before


def test_overwrite_refuses_the_folder_of_the_run_file(tmp_shared, capsys):
    out = tmp_shared / "out"
    cfg = _write(out / "config.toml", RUN_FILE)
    assert _run(cfg, out) == cli.EXIT_INPUT  # not empty: it holds the run file
    _error(capsys, "not empty")
    before = _tree(tmp_shared)
    _write(out / "run.json", json.dumps({"status": "completed", "versions": {"solver": "1"}}))
    assert _run(cfg, out, "--overwrite") == cli.EXIT_INPUT
    _error(capsys, "--overwrite refused", "holds the run file")
    assert set(_tree(tmp_shared)) == {*before, "out/run.json"}


def test_overwrite_refuses_the_current_folder_and_its_parents(tmp_shared, capsys, monkeypatch):
    cfg = _write(tmp_shared / "config.toml", RUN_FILE)
    out = tmp_shared / "out"
    assert _run(cfg, out) == cli.EXIT_OK
    inside = out / "checkpoint"
    monkeypatch.chdir(inside)
    before = _tree(tmp_shared)
    for target in (".", "..", str(out)):
        assert cli.main(["run", str(cfg), "-o", target, "--overwrite"]) == cli.EXIT_INPUT
        _error(capsys, "--overwrite refused", "current folder")
    assert _tree(tmp_shared) == before


# -- the lock -----------------------------------------------------------------------
def _lock(out: Path, **info) -> None:
    _write(out / claim.LOCK, json.dumps(info))


def _live_pid() -> int:
    return WORLD.bcast(os.getpid() if WORLD.rank == 0 else None, root=0)


def _dead_pid() -> int:
    pid = None
    if WORLD.rank == 0:
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        pid = proc.pid
    return WORLD.bcast(pid, root=0)


def test_a_folder_in_use_is_refused_at_once_naming_the_holder(tmp_shared, capsys, monkeypatch):
    cfg = _write(tmp_shared / "config.toml", RUN_FILE)
    out = tmp_shared / "out"
    pid = _live_pid()
    _lock(out, host=socket.gethostname(), pid=pid, start=claim._start_of(pid), since="now")

    def refuse(*args, **kwargs):
        raise AssertionError("set up although the folder is in use")

    monkeypatch.setattr("solver.run.Simulation", refuse)
    before = _tree(tmp_shared)
    assert _run(cfg, out) == cli.EXIT_INPUT
    _error(capsys, "in use by another run", f"pid {pid}", socket.gethostname())
    assert _run(cfg, out, "--overwrite") == cli.EXIT_INPUT
    _error(capsys, "in use by another run")
    assert _tree(tmp_shared) == before  # the lock is still the holder's


def test_a_lock_of_another_host_is_refused_with_how_to_remove_it(tmp_shared, capsys):
    cfg = _write(tmp_shared / "config.toml", RUN_FILE)
    out = tmp_shared / "out"
    _lock(out, host="elsewhere.example", pid=1, since="yesterday")
    assert _run(cfg, out) == cli.EXIT_INPUT
    _error(capsys, "in use by another run", "elsewhere.example", "delete")


def test_a_stale_lock_is_taken_over(tmp_shared, capsys):
    cfg = _write(tmp_shared / "config.toml", RUN_FILE)
    out = tmp_shared / "out"
    _lock(out, host=socket.gethostname(), pid=_dead_pid(), since="before a crash")
    assert _run(cfg, out) == cli.EXIT_OK
    assert _record(out)["status"] == "completed"
    assert not (out / claim.LOCK).exists()
    assert not list(out.glob(claim.LOCK + "*"))


def test_the_lock_is_gone_after_a_stop_a_failure_and_a_set_up_error(
    tmp_shared, capsys, monkeypatch
):
    cfg, out = _stopped(tmp_shared, monkeypatch)
    assert not (out / claim.LOCK).exists()
    # a failure (Newton) on the restart
    from solver.fem.problem import Problem

    solve = Problem.solve

    def failing(problem, *args, **kwargs):
        info = solve(problem, *args, **kwargs)
        info.converged = False
        return info

    monkeypatch.setattr(Problem, "solve", failing)
    assert _run(cfg, out, "--restart") == cli.EXIT_FAILED
    assert _record(out)["status"] == "failed"
    assert not (out / claim.LOCK).exists()
    monkeypatch.undo()
    # an error while setting up a new run: the folder it created is gone with the lock

    def broken(*args, **kwargs):
        raise cli_input_error()

    monkeypatch.setattr("solver.mesh.meshing.cell_mesh", broken)
    fresh = tmp_shared / "new" / "out"
    assert _run(cfg, fresh) == cli.EXIT_INPUT
    assert not (tmp_shared / "new").exists()


def cli_input_error():
    from solver.errors import InputError

    return InputError("mesh", "a mesh error found while setting up")


def test_restart_takes_the_lock_too(tmp_shared, capsys, monkeypatch):
    cfg, out = _stopped(tmp_shared, monkeypatch)
    pid = _live_pid()
    _lock(out, host=socket.gethostname(), pid=pid, start=claim._start_of(pid), since="now")
    assert _run(cfg, out, "--restart") == cli.EXIT_INPUT
    _error(capsys, "in use by another run")
    if WORLD.rank == 0:
        (out / claim.LOCK).unlink()
    WORLD.barrier()
    assert _run(cfg, out, "--restart") == cli.EXIT_OK


def _environment() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_", "MPI"))}
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.serial  # two real processes
def test_two_runs_started_together_into_one_folder(tmp_path):
    """Exactly one runs; the other is refused with one line (never both, never a crash)."""
    cfg = _write(tmp_path / "config.toml", exchange_disk(end="2 s", dt="0.01 s", every="0.1 s"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "solver", "run", str(cfg), "-o", str(out)]
    procs = [
        subprocess.Popen(
            command, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [cli.EXIT_OK, cli.EXIT_INPUT], results
    _, _, err = next(r for r in results if r[0] == cli.EXIT_INPUT)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "in use by another run" in lines[0] or "not empty" in lines[0], err
    assert _record(out)["status"] == "completed"
    assert not (out / claim.LOCK).exists()


# -- restart --set ------------------------------------------------------------------
def _stopped(tmp_shared: Path, monkeypatch, steps: int = 3) -> tuple[Path, Path]:
    cfg = _write(tmp_shared / "config.toml", RUN_FILE)
    out = tmp_shared / "out"
    original = RunLoop._stop_reason
    monkeypatch.setattr(
        RunLoop,
        "_stop_reason",
        lambda loop: original(loop) or ("test" if loop.steps >= steps else None),
    )
    assert _run(cfg, out) == cli.EXIT_STOPPED
    monkeypatch.setattr(RunLoop, "_stop_reason", original)
    return cfg, out


def test_restart_set_time_dt_sets_the_next_steps(tmp_shared, capsys, monkeypatch):
    cfg, out = _stopped(tmp_shared, monkeypatch)  # 3 steps of 0.05 s: t = 0.15 s
    assert _run(cfg, out, "--restart", "--set", "time.dt=0.025 s") == cli.EXIT_OK
    record = _record(out)
    assert record["status"] == "completed" and record["t"] == pytest.approx(0.5)
    assert record["steps"] == 3 + 14  # 0.35 s left in steps of 0.025 s
    assert record["dt"]["min"] == pytest.approx(0.025)
    assert record["dt"]["max"] == pytest.approx(0.05)
    assert record["restarts"][0]["changes"] == {"time.dt": ["0.05 s", "0.025 s"]}
    metrics = load_metrics(out)
    assert metrics["dt"][-1] == pytest.approx(0.025)
    # time.end extends a completed run
    assert _run(cfg, out, "--restart", "--set", "time.end=0.7 s") == cli.EXIT_OK
    record = _record(out)
    assert record["t"] == pytest.approx(0.7) and record["steps"] == 17 + 8
    assert list(load_metrics(out)["t"]) == pytest.approx([0.1 * k for k in range(8)])


@pytest.mark.parametrize(
    "item, fragment",
    [
        ("mesh.size=0.2 um", "mesh.size"),
        ("species.c.initial=2", "species.c.initial"),
        ("metrics.species=['m']", "metrics.species"),
    ],
    ids=["mesh", "initial", "metrics"],
)
def test_restart_refuses_what_it_cannot_honour(tmp_shared, capsys, monkeypatch, item, fragment):
    cfg, out = _stopped(tmp_shared, monkeypatch)
    capsys.readouterr()
    before = _tree(out)

    def refuse(*args, **kwargs):
        raise AssertionError("set up although the change is refused")

    monkeypatch.setattr("solver.run.Simulation", refuse)
    assert _run(cfg, out, "--restart", "--set", item) == cli.EXIT_INPUT
    _error(capsys, fragment, "cannot change when a run continues")
    assert _tree(out) == before
