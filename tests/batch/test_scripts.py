"""The Slurm batch scripts of solver.batch: one template for a case and a sweep's job array.

The scripts are checked with ``bash -n`` and run with stand-ins for ``squeue``,
``mpiexec``, ``scontrol``, ``sbatch`` and ``sleep`` on the ``PATH`` (no Slurm needed);
tests/system/test_slurm.py runs them on a real cluster.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import pytest

from solver import cli
from solver.batch.scripts import (
    PLACEHOLDERS,
    Limits,
    array_script,
    case_script,
    limits_of,
    template,
)
from solver.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "runs").glob("*/job.sbatch"))
CASES = sorted(p.parent for p in (ROOT / "runs").glob("*/config.toml"))
SWEEP = [sys.executable, "-m", "solver", "sweep", "/data/config.toml", "-o", "/data/sweep"]
serial = pytest.mark.serial  # runs bash and writes in the repository's runs/ only on rank 0


def shared_parts() -> tuple[str, str]:
    """The template's parts every script holds: from ``#@SETTINGS@`` to ``#@COMMAND@``
    (the wall time left) and after ``#@COMMAND@`` (the run and the requeue)."""
    text = template()
    shared_head = text.split("#@SETTINGS@\n")[1].split("#@COMMAND@\n")[0]
    shared_tail = text.split("#@COMMAND@\n")[1]
    return shared_head, shared_tail


def test_every_case_has_its_script():
    assert [p.parent for p in SCRIPTS] == CASES


@serial
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.parent.name)
def test_a_committed_script_is_what_polarity_job_writes(script, monkeypatch, capsys):
    """runs/*/job.sbatch are generated: regenerate one with the limits in its #SBATCH lines."""
    text = script.read_text()
    limits = limits_of(text)
    case = script.parent.relative_to(ROOT)
    monkeypatch.chdir(ROOT)
    argv = ["job", str(case / "config.toml"), "--ntasks", str(limits.ntasks)]
    argv += ["--time", limits.time, "--job-name", limits.job_name]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == text, (
        f"{script} differs from the template: regenerate it with polarity {' '.join(argv)} "
        f"-o {case / 'job.sbatch'}"
    )


def test_the_template_is_a_shell_script_with_one_line_per_placeholder():
    text = template()
    assert [m for m in re.findall(r"^#@(\w+)@$", text, re.M)] == list(PLACEHOLDERS)
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


@serial
def test_case_and_array_scripts_share_the_wall_time_and_requeue_logic(tmp_path):
    case = case_script(Path("runs/x/config.toml"), Limits(2, "02:00:00", "polarity-x"))
    array = array_script(SWEEP, 3, Limits(2, "00:20:00", "polarity-sweep"), "/data/s-%A_%a.out")
    head, tail = shared_parts()
    for script in (case, array):
        assert head in script and script.endswith(tail)
        assert "#@" not in script
        assert 'scontrol requeue "$job"' in tail and "--wall-time" in head
        (tmp_path / "job.sbatch").write_text(script)
        subprocess.run(["bash", "-n", str(tmp_path / "job.sbatch")], check=True)
    assert "#SBATCH --array=0-2" in array and '--member "$SLURM_ARRAY_TASK_ID" --restart' in array
    assert "#SBATCH --ntasks=2" in case and "#SBATCH --time=02:00:00" in case
    assert "CASE=runs/x\n" in case and "--array" not in case.split("#SBATCH --open-mode")[0]


def test_sbatch_options_come_before_the_first_command():
    script = case_script(Path("c/config.toml"), Limits(), script=Path("c/job.sbatch"))
    lines = script.splitlines()
    first = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    options = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert options and max(options) < first
    assert {"--requeue", "--open-mode"} <= {lines[i].split("=")[0][8:] for i in options}


def fake_slurm(folder: Path, left: str, status: int, requeue: bool) -> dict[str, str]:
    """Stand-ins on the PATH: squeue prints ``left``, mpiexec logs and exits ``status``,
    scontrol logs (and refuses a requeue unless ``requeue``), sbatch and sleep log."""
    bin_ = folder / "bin"
    bin_.mkdir()
    log = folder / "calls.log"
    tools = {
        "squeue": f'echo "{left}"',
        "mpiexec": f'echo "mpiexec $*" >> {log}; exit {status}',
        "scontrol": (
            f'echo "scontrol $*" >> {log}\n'
            'if [[ $1 == show ]]; then echo "   Command=/jobs/job.sbatch"; exit 0; fi\n'
            f"exit {0 if requeue else 1}"
        ),
        "sbatch": f'echo "sbatch $*" >> {log}',
        "sleep": f'echo "sleep $*" >> {log}',
    }
    for name, body in tools.items():
        (bin_ / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_ / name).chmod(0o755)
    return {"PATH": f"{bin_}:/usr/bin:/bin", "SLURM_JOB_ID": "42", "SLURM_NTASKS": "2"}


def run_script(script: str, folder: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    path = folder / "job.sbatch"
    path.write_text(script)
    env = {**env, "SLURM_SUBMIT_DIR": str(folder)}
    done = subprocess.run(["bash", str(path), *args], env=env, capture_output=True, text=True)
    calls = folder / "calls.log"
    return done.returncode, calls.read_text() if calls.exists() else ""


@serial
@pytest.mark.parametrize(
    "left, wall",
    [("1:00", "0:00:15"), ("2:00:00", "1:55:00"), ("1-00:00:00", "23:55:00"), ("UNLIMITED", None)],
)
def test_a_case_stops_before_the_time_left_and_requeues(tmp_path, left, wall):
    env = fake_slurm(tmp_path, left, status=75, requeue=True)
    script = case_script(Path("case/config.toml"), Limits(2, "01:00:00", "polarity-case"))
    code, calls = run_script(script, tmp_path, env, "--set", "time.end=5")
    assert code == 75, calls
    first = calls.splitlines()[0]
    assert first.startswith("mpiexec -n 2 polarity run case/config.toml -o case/out "), calls
    assert first.endswith(f"--wall-time {wall} --set time.end=5" if wall else "time.end=5")
    assert "--restart" not in first and "scontrol requeue 42" in calls and "sleep 600" in calls
    # with a checkpoint, the next segment continues it
    (tmp_path / "case" / "out" / "checkpoint").mkdir(parents=True)
    (tmp_path / "case" / "out" / "checkpoint" / "state.h5").write_text("")
    (tmp_path / "calls.log").unlink()
    code, calls = run_script(script, tmp_path, env)
    assert "-o case/out --restart" in calls.splitlines()[0]


@serial
def test_a_completed_run_is_not_requeued_and_restarts_are_bounded(tmp_path):
    env = fake_slurm(tmp_path, "10:00", status=0, requeue=True)
    script = case_script(Path("case/config.toml"), Limits())
    code, calls = run_script(script, tmp_path, env)
    assert code == 0 and "scontrol" not in calls
    again = tmp_path / "again"
    again.mkdir()
    env = {**fake_slurm(again, "10:00", 75, True), "SLURM_RESTART_COUNT": "3"}
    code, calls = run_script(script, again, {**env, "MAX_RESTARTS": "3"})
    assert code == 75 and "scontrol" not in calls


@serial
def test_a_refused_requeue_submits_the_array_task_again(tmp_path):
    env = fake_slurm(tmp_path, "1:00", status=75, requeue=False)
    env.update(SLURM_ARRAY_JOB_ID="40", SLURM_ARRAY_TASK_ID="4")
    script = array_script(SWEEP, 6, Limits(2, "00:01:00", "polarity-sweep"), "/d/%A_%a.out")
    code, calls = run_script(script, tmp_path, env)
    assert code == 75, calls
    first = calls.splitlines()[0]
    assert first.endswith("-o /data/sweep --member 4 --restart --wall-time 0:00:15"), first
    assert "scontrol requeue 40_4" in calls and "scontrol show job 40_4" in calls, calls
    assert "sbatch --dependency=afterany:42 --array=4 /jobs/job.sbatch" in calls.splitlines(), calls


@pytest.mark.parametrize(
    "limits, option",
    [
        (Limits(ntasks=0), "--ntasks"),
        (Limits(time="2h"), "--time"),
        (Limits(job_name="a b"), "--job-name"),
    ],
)
def test_bad_limits_are_input_errors(limits, option):
    with pytest.raises(InputError, match=option):
        limits.check()


@serial
def test_polarity_job_writes_paths_relative_to_the_submit_folder(tmp_path, monkeypatch, capsys):
    case = tmp_path / "cases" / "mine"
    case.mkdir(parents=True)
    (case / "config.toml").write_text((ROOT / "runs" / "exchange_3d" / "config.toml").read_text())
    monkeypatch.chdir(tmp_path)
    argv = ["job", str(case / "config.toml"), "--ntasks", "3", "-o", "jobs/mine.sbatch"]
    assert cli.main(argv) == 0
    text = (tmp_path / "jobs" / "mine.sbatch").read_text()
    assert "CASE=cases/mine\n" in text and "#SBATCH --job-name=polarity-mine\n" in text
    assert "#SBATCH --ntasks=3\n" in text and "#SBATCH --time=01:00:00\n" in text
    assert "#   sbatch jobs/mine.sbatch [" in text
    subprocess.run(["bash", "-n", str(tmp_path / "jobs" / "mine.sbatch")], check=True)


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--ntasks", "0"], "--ntasks"),
        (["--time", "soon"], "--time"),
        (["--job-name", "two words"], "--job-name"),
    ],
)
def test_polarity_job_refuses_bad_input_in_one_line(extra, expected, capsys):
    config = ROOT / "runs" / "exchange_3d" / "config.toml"
    assert cli.main(["job", str(config), *extra]) == cli.EXIT_INPUT
    if MPI.COMM_WORLD.rank == 0:
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err and err.count("\n") == 1


def test_polarity_job_refuses_a_missing_run_file(tmp_path, capsys):
    assert cli.main(["job", str(tmp_path / "none.toml")]) == cli.EXIT_INPUT
    if MPI.COMM_WORLD.rank == 0:
        assert "no such run file" in capsys.readouterr().err
