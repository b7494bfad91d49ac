"""The Slurm batch jobs of runs/*/job.sbatch and of sweeps (the job arrays of
``polarity sweep --slurm``), both filled from solver/batch/job.sbatch.in, on a real
single-node Slurm cluster.

The test starts its own cluster: munged, slurmctld and slurmd from Debian's
``slurm-wlm`` (one node with 2 CPUs on the loopback, ports picked free, every file in
a temporary folder), submits jobs with ``sbatch --wait`` and stops the daemons at the
end. Skipped where slurm-wlm is not installed or not run as root (slurmd must be).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from solver.io.metrics import load_metrics
from tests.cases import exchange_disk

ROOT = Path(__file__).resolve().parents[2]
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue")
MISSING = [d for d in DAEMONS if shutil.which(d) is None]
MPIEXEC = Path(sys.executable).parent / "mpiexec"

CASES = sorted(p.parent for p in (ROOT / "runs").glob("*/config.toml"))
pytestmark = pytest.mark.serial
needs_slurm = [
    pytest.mark.slurm,
    pytest.mark.skipif(bool(MISSING), reason=f"slurm-wlm not installed ({', '.join(MISSING)})"),
    pytest.mark.skipif(os.geteuid() != 0, reason="slurmd of the test cluster needs root"),
]


def slurm_test(function):
    for mark in needs_slurm:
        function = mark(function)
    return function


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_every_case_has_a_batch_job_that_requeues(case):
    script = case / "job.sbatch"
    text = script.read_text()
    options = re.findall(r"^#SBATCH (--[\w-]+)(?:=(\S+))?", text, re.M)
    names = [name for name, _ in options]
    assert {"--ntasks", "--time", "--requeue", "--open-mode"} <= set(names)
    first_command = next(
        i for i, line in enumerate(text.splitlines()) if line and not line.startswith("#")
    )
    assert all(
        i < first_command for i, line in enumerate(text.splitlines()) if line.startswith("#SBATCH")
    ), "sbatch reads options only before the first command"
    assert f"CASE=runs/{case.name}\n" in text
    assert "--wall-time" in text and "--restart" in text and "scontrol requeue" in text
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize(
    "left, seconds",
    [("1-02:03:04", 93784), ("02:00:00", 7200), ("59:00", 3540), ("0:30", 30), ("08:09", 489)],
)
def test_batch_job_reads_the_time_left(left, seconds):
    text = (ROOT / "runs" / "chemotaxis" / "job.sbatch").read_text()
    function = re.search(r"^seconds\(\) \{.*?^\}", text, re.S | re.M).group(0)
    done = subprocess.run(
        ["bash", "-c", f"{function}\nseconds {left}"], capture_output=True, text=True, check=True
    )
    assert int(done.stdout) == seconds


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class LocalSlurm:
    """A one-node Slurm cluster (2 CPUs) living in ``folder``; daemons started by us."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.node = socket.gethostname().split(".")[0]
        self.conf = folder / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.munge_socket = folder / "munge.socket"

    def start(self) -> None:
        d = self.folder
        for sub in ("state", "spool"):
            (d / sub).mkdir(parents=True)
        d.chmod(0o700)
        subprocess.run(["mungekey", "--create", f"--keyfile={d / 'munge.key'}"], check=True)
        subprocess.run(
            [
                "munged",
                "--force",
                f"--key-file={d / 'munge.key'}",
                f"--socket={self.munge_socket}",
                f"--pid-file={d / 'munged.pid'}",
                f"--log-file={d / 'munged.log'}",
                f"--seed-file={d / 'munge.seed'}",
            ],
            check=True,
        )
        ctld_port, d_port = _free_ports(2)
        self.conf.write_text(
            f"""ClusterName=polaritytest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={d / "state"}
SlurmdSpoolDir={d / "spool"}
SlurmctldPidFile={d / "slurmctld.pid"}
SlurmdPidFile={d / "slurmd.pid"}
SlurmctldLogFile={d / "slurmctld.log"}
SlurmdLogFile={d / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
JobRequeue=1
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
NodeName={self.node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        )
        subprocess.run(["slurmctld", "-i"], check=True, env=self.env)
        subprocess.run(["slurmd", "-N", self.node], check=True, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.scontrol("show", "node", self.node)
            if re.search(r"State=IDLE", state):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the test node did not become idle:\n{state}")

    def scontrol(self, *args: str) -> str:
        done = subprocess.run(
            ["scontrol", *args], env=self.env, capture_output=True, text=True, check=False
        )
        return done.stdout + done.stderr

    def job(self, job_id: int) -> dict[str, str]:
        """``scontrol show job`` as a dictionary (JobState, Restarts, ExitCode, ...)."""
        text = self.scontrol("show", "job", "-o", str(job_id))
        return dict(re.findall(r"(\w+)=(\S*)", text))

    def stop(self) -> None:
        """Cancel every job, wait for it to end (Slurm kills its processes), stop the daemons."""
        subprocess.run(["scancel", "--full", "--partition=test"], env=self.env, check=False)
        deadline = time.monotonic() + 90  # KillWait (30 s) and the step's clean-up
        while time.monotonic() < deadline:
            left = subprocess.run(
                ["squeue", "-h", "-t", "all"], env=self.env, capture_output=True, text=True
            )
            if left.returncode != 0 or not re.search(r"\b(R|CG|PD)\b", left.stdout):
                break
            time.sleep(1)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.folder / f"{name}.pid"
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    slurm = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        slurm.start()
        yield slurm
    finally:
        slurm.stop()


_FINAL_STATES = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY"}


def wait_for(
    cluster: LocalSlurm, job_id: int, tasks: int, timeout: float
) -> tuple[list[dict[str, str]], list[str]]:
    """Wait until the job (or each of the ``tasks`` tasks of a job array) has ended.

    Returns each task's ``scontrol show job`` record and the states seen. A state must
    hold for two polls 2 s apart (a requeue passes through ending states). A requeued
    task waits for its begin time (Slurm holds it for about two minutes); the test
    moves that time to 5 s after the requeue, once per restart. Not to "now": slurmd
    refuses a credential issued in the second its job's old credential was revoked
    ("Job credential revoked"), and the job fails with exit 1.
    """
    deadline = time.monotonic() + timeout
    seen = None
    released: set[tuple[str, str]] = set()
    states: list[str] = []  # the tasks' states as seen, for the failure messages
    while True:
        if time.monotonic() > deadline:
            subprocess.run(["scancel", str(job_id)], env=cluster.env, check=False)
            pytest.fail(f"job {job_id} did not finish in {timeout} s: {states}")
        text = cluster.scontrol("show", "job", "-o", str(job_id))
        records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in text.splitlines()]
        records = [r for r in records if "JobState" in r]
        now = tuple(
            (r.get("ArrayTaskId", ""), r["JobState"], r.get("Restarts", "0")) for r in records
        )
        entry = " ".join(
            f"{r.get('ArrayTaskId', '')}:{r['JobState']}/{r.get('Restarts')}/"
            f"{r.get('Reason')}/{r.get('ExitCode')}"
            for r in records
        )
        if not states or states[-1] != entry:
            states.append(entry)
        for r in records:
            key = (r["JobId"], r.get("Restarts", "0"))
            if r["JobState"] == "PENDING" and int(key[1]) > 0 and key not in released:
                released.add(key)
                cluster.scontrol("update", f"JobId={r['JobId']}", "StartTime=now+5")
        ended = len(records) == tasks and all(r["JobState"] in _FINAL_STATES for r in records)
        if ended and seen == now:
            return sorted(records, key=lambda r: r.get("ArrayTaskId", "")), states
        seen = now if ended else None
        time.sleep(2)


def submit(
    cluster: LocalSlurm,
    script: Path,
    folder: Path,
    args: list[str],
    export: dict[str, str],
    options: tuple[str, ...] = (),
    timeout: float = 600,
) -> tuple[int, int, str]:
    """``sbatch`` from the repository root, then wait for the job's end; (exit code, id, log).

    The end is read from the job's own state, not from ``sbatch --wait``, which may return
    when a requeued run ends (:func:`wait_for`).
    """
    env = {
        **cluster.env,
        "POLARITY": f"{sys.executable} -m solver",
        "MPIEXEC": str(MPIEXEC),
        **export,
    }
    log = folder / "slurm-%j.out"
    command = ["sbatch", "--parsable", f"--output={log}", *options, str(script), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    job_id = int(done.stdout.split(";")[0])
    (info,), states = wait_for(cluster, job_id, 1, timeout)
    code = int(info.get("ExitCode", "1:0").split(":")[0])
    text = Path(str(log).replace("%j", str(job_id))).read_text()
    return code, job_id, f"{text}\njob states (state/restarts/reason/exit): {states}"


@slurm_test
def test_a_two_rank_batch_job_completes(cluster, tmp_path):
    out = tmp_path / "out"
    script = ROOT / "runs" / "chemotaxis_2d" / "job.sbatch"
    code, job_id, log = submit(
        cluster,
        script,
        tmp_path,
        ["--set", "time.end=2"],
        {"OUT": str(out)},
    )
    assert code == 0, log
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["mpi_ranks"] == 2, log
    assert record["t"] == pytest.approx(2.0)
    assert "polarity exited with 0" in log
    info = cluster.job(job_id)
    assert info["JobState"] == "COMPLETED" and info["NumTasks"] == "2"


@slurm_test
def test_a_job_stopped_by_its_wall_time_completes_after_requeue(cluster, tmp_path):
    """A 1-minute job stops well before its limit (MARGIN = 45 s), requeues itself and
    restarts from the checkpoint until done; the result equals an uninterrupted run."""
    out = tmp_path / "out"
    # 6000 fixed steps: about 40 s on a quiet machine here (1800 took 13 s once Newton
    # stopped at the time error), more on a loaded one; the stop comes at 15 s, so the
    # job is stopped and requeued at least once on either
    settings = ["--set", "time.end=3000", "--set", "time.adaptive=false"]
    script = ROOT / "runs" / "chemotaxis_2d" / "job.sbatch"
    code, job_id, log = submit(
        cluster,
        script,
        tmp_path,
        settings,
        {"OUT": str(out), "MARGIN": "45"},
        options=("--time=00:01:00",),
    )
    assert code == 0, log
    info = cluster.job(job_id)
    assert info["JobState"] == "COMPLETED", info
    assert int(info["Restarts"]) >= 1, log
    assert "polarity exited with 75" in log and " --restart " in log, log
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["t"] == pytest.approx(3000.0), log

    direct = tmp_path / "direct"
    subprocess.run(
        [
            str(MPIEXEC),
            "-n",
            "2",
            sys.executable,
            "-m",
            "solver",
            "run",
            str(ROOT / "runs" / "chemotaxis_2d" / "config.toml"),
            "-o",
            str(direct),
            *settings,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    a, b = load_metrics(out), load_metrics(direct)
    assert a["t"] == pytest.approx(b["t"], rel=1e-12)
    for key in b:
        if key.startswith(("total_", "pool_", "PI_")):
            assert all(
                math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12)
                for x, y in zip(a[key], b[key], strict=True)
            ), key


SWEEP_FILE = exchange_disk(size="0.3 um", end="0.4 s", dt="0.1 s", every="0.2 s")


@slurm_test
def test_a_sweep_as_a_job_array_gives_one_table(cluster, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(SWEEP_FILE)
    out = tmp_path / "sweep"
    subprocess.run(
        [sys.executable, "-m", "solver", "sweep", str(config), "--vary", "parameters.k=1,2,-1x"]
        + ["--vary", "species.m.D=0.1,0.2", "-o", str(out), "--slurm", "--time", "00:05:00"],
        check=True,
        capture_output=True,
    )
    env = {**cluster.env, "OMP_NUM_THREADS": "1"}
    array = subprocess.run(
        ["sbatch", "--wait", str(out / "sweep.sbatch")], env=env, capture_output=True, text=True
    )
    # the members with k = -1x do not validate: their tasks exit 1, the others 0
    assert "Submitted batch job" in array.stdout, array.stdout + array.stderr
    collect = subprocess.run(
        ["sbatch", "--wait", str(out / "collect.sbatch")], env=env, capture_output=True, text=True
    )
    assert collect.returncode == 1, collect.stdout + collect.stderr  # not all completed
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["status"] for r in rows] == ["completed"] * 4 + ["invalid"] * 2
    assert all(float(r["total_m"]) > 0 for r in rows[:4])
    assert "parameters.k" in rows[4]["reason"]


@slurm_test
def test_a_sweep_task_stopped_by_its_time_limit_completes_after_requeue(cluster, tmp_path):
    """Array tasks of 1 minute stop their members at 15 s (a quarter of the limit),
    requeue themselves and continue from the checkpoints until the members complete."""
    out = tmp_path / "sweep"
    config = ROOT / "runs" / "chemotaxis_2d" / "config.toml"
    # 6000 fixed steps: 40 s or more here (never done before the stop at 15 s; 1200
    # steps took 9 s once Newton stopped at the time error)
    fixed = ["--set", "time.end=3000", "--set", "time.adaptive=false"]
    subprocess.run(
        [sys.executable, "-m", "solver", "sweep", str(config), *fixed]
        + ["--vary", "output.every=20,30", "-o", str(out), "--slurm", "--time", "1"],
        check=True,
        capture_output=True,
    )
    assert "#SBATCH --time=1\n" in (out / "sweep.sbatch").read_text()
    env = {**cluster.env, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["sbatch", "--parsable", str(out / "sweep.sbatch")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    tasks, states = wait_for(cluster, int(done.stdout.split(";")[0]), 2, timeout=900)
    logs = "\n".join(p.read_text() for p in sorted(out.glob("slurm-*.out")))
    assert all(t["JobState"] == "COMPLETED" for t in tasks), f"{states}\n{logs}"
    assert all(int(t["Restarts"]) >= 1 for t in tasks), f"{states}\n{logs}"
    # the wall time is read from squeue: 60 s left or a little less, a quarter of it
    for member in (0, 1):
        stop = rf"--member {member} --restart --wall-time 0:00:1[45] "
        assert re.search(stop, logs) and "polarity exited with 75" in logs, logs
    collect = subprocess.run(
        [sys.executable, "-m", "solver", "sweep", str(config), *fixed]
        + ["--vary", "output.every=20,30", "-o", str(out), "--collect"],
        capture_output=True,
        text=True,
    )
    assert collect.returncode == 0, collect.stdout + collect.stderr
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["status"] for r in rows] == ["completed"] * 2
    assert [float(r["t"]) for r in rows] == [3000.0, 3000.0]
    # the output interval changes nothing but the outputs: the members agree
    assert float(rows[0]["PI_P"]) == pytest.approx(float(rows[1]["PI_P"]), rel=1e-8)
    for member in (0, 1):
        record = json.loads((out / f"member_{member:03d}" / "run.json").read_text())
        assert record["status"] == "completed" and len(record["restarts"]) >= 1
