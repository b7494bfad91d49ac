"""Make the test suite safe to run serially and under ``mpiexec -n N python -m pytest``.

Under MPI every rank runs the whole session. Ranks > 0 keep quiet (their terminal
reporter writes to os.devnull); at the end the ranks exchange their outcomes, rank 0
prints what failed elsewhere, and every rank exits with the same status, so neither a
failure on rank 1 nor a mix of exit codes (mpiexec ORs them: 1 | 5 == 5) is lost.
After each test: garbage collection, then a barrier, so PETSc objects are destroyed
collectively.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from pathlib import Path

try:  # must precede any dolfinx/petsc4py import; absent with a dolfinx of one's own
    import dolfinx_solver  # noqa: F401
except ImportError:
    pass

from mpi4py import MPI

import pytest

WORLD = MPI.COMM_WORLD


def _launcher_size() -> int | None:
    """Number of processes the launcher started (MPICH/Hydra, Slurm PMI, Open MPI)."""
    for key in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return None


class _RankReport:
    """Under MPI: collect this rank's failures; at the end agree on one exit status."""

    def __init__(self, comm: MPI.Intracomm) -> None:
        self.comm = comm  # a private duplicate: never matched against a test's collectives
        self.failures: list[tuple[str, str]] = []  # (test and phase, traceback)
        self.elsewhere: list[tuple[str, str]] = []  # rank 0: (where, what) from other ranks

    def _record(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        if report.failed:
            when = getattr(report, "when", "collect")
            self.failures.append((f"{report.nodeid} ({when})", report.longreprtext))

    pytest_runtest_logreport = _record
    pytest_collectreport = _record

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.INTERRUPTED:  # ranks may be anywhere: no collective
            return
        gathered = self.comm.gather((int(exitstatus), self.failures), root=0)
        agreed = None
        if self.comm.rank == 0:
            statuses = [status for status, _ in gathered]
            on_root = {test for test, _ in self.failures}
            for rank, (_, failures) in enumerate(gathered[1:], start=1):
                for test, text in failures:  # rank 0 printed its own traceback already
                    text = "failed on rank 0 too" if test in on_root else text
                    self.elsewhere.append((f"rank {rank}", f"{test}\n{text}"))
            agreed = statuses[0]
            if len(set(statuses)) > 1:
                ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
                worse = [status for status in statuses if status not in ok]
                agreed = max(worse, default=int(pytest.ExitCode.TESTS_FAILED))
                self.elsewhere.append(("all ranks", f"exit statuses by rank: {statuses}"))
        session.exitstatus = self.comm.bcast(agreed, root=0)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.elsewhere:
            return
        terminalreporter.section("failures on other MPI ranks", sep="=", red=True, bold=True)
        for where, text in self.elsewhere:
            terminalreporter.write_sep("_", where, red=True)
            terminalreporter.write_line(text)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under MPI: check the launcher, report per rank, keep ranks > 0 quiet."""
    launched = _launcher_size()
    if launched is not None and launched != WORLD.size:
        raise pytest.UsageError(
            f"mpiexec started {launched} processes but mpi4py sees COMM_WORLD of size "
            f"{WORLD.size}: that mpiexec is not from mpi4py's MPI. Use the venv's own: "
            f".venv/bin/mpiexec -n {launched} .venv/bin/python -m pytest"
        )
    if WORLD.size > 1:
        config.pluginmanager.register(_RankReport(WORLD.Dup()), "polarity-rank-report")
    if WORLD.rank > 0:
        # tryfirst: this runs before the builtin terminal plugin's pytest_configure,
        # which creates TerminalReporter(config, sys.stdout); that reporter (all of
        # pytest's terminal output) then writes to os.devnull for the whole session.
        sys.stdout = open(os.devnull, "w")


def pytest_report_header(config: pytest.Config) -> str | None:
    if WORLD.size == 1:
        return None
    library = " ".join(MPI.Get_library_version().splitlines()[0].split())
    return (
        f"MPI: {WORLD.size} ranks ({library}); only rank 0 reports, "
        "failures on other ranks are listed at the end"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if WORLD.size == 1:
        return
    skip = pytest.mark.skip(reason=f"marked serial: not run under MPI ({WORLD.size} ranks)")
    for item in items:
        if item.get_closest_marker("serial"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _collective_teardown():
    """After each test: collect garbage (PETSc objects), then wait for every rank."""
    yield
    gc.collect()
    WORLD.barrier()


@pytest.fixture
def comm() -> MPI.Intracomm:
    return WORLD


@pytest.fixture
def tmp_shared(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A fresh temporary directory, made on rank 0; every rank gets the same path."""
    path, error = None, None
    if WORLD.rank == 0:
        try:
            path = tmp_path_factory.mktemp(re.sub(r"\W", "_", request.node.name)[:30])
        except Exception as exc:  # every rank must still leave the bcast, then fail
            error = f"{type(exc).__name__}: {exc}"
    path, error = WORLD.bcast((path, error), root=0)
    if error is not None:
        raise RuntimeError(f"rank 0 could not create the shared temporary directory: {error}")
    return path
