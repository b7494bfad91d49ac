"""Running a sweep's members (:mod:`solver.sweep.plan`) and the table of their results.

Two ways to run them:

* an **ensemble** inside one ``mpiexec``: the world communicator is split into groups
  of ``group_size`` ranks, member ``i`` runs on group ``i mod n_groups`` through
  ``run_case(..., comm=group_comm)``. Members are assigned statically and only the group's
  own communicator is used while they run, so groups of unequal run length never wait
  for each other until the final gather;
* a **Slurm job array** (:func:`solver.sweep.slurm.write_slurm`), one member per array
  task (``--member``), then a collection step that builds the table.

Each member writes its outputs to ``OUT/member_NNN/`` and its result record to
``OUT/members/NNN.json``; ``OUT/sweep.csv`` has one row per member: index, varied
values (as given), status (``completed``, ``failed``, ``invalid`` for a member whose
run file does not validate, ``stopped`` for one stopped by the wall-time limit or a
signal, ``missing`` for one that never reported), reason, steps, wall time (s) and the
final read-outs (``metrics.csv`` columns, solver units).

**Stopping and continuing.** With a wall-time limit (``--wall-time``) or on SIGTERM /
SIGUSR1, the running members stop at a step boundary with a checkpoint (as ``polarity
run`` does) and the members not started yet are not started; all are ``stopped``.
Run the same sweep again with ``--restart``: members with a final status (completed,
failed, invalid) are kept, stopped members continue from their checkpoints and the
others start. A Slurm array task does the same for its member and requeues itself.
"""

from __future__ import annotations

import csv
import json
import logging
import time as wallclock
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mpi4py import MPI

from solver.errors import InputError
from solver.io.files import write_json
from solver.sweep.plan import SweepPlan
from solver.time.stops import Deadline

log = logging.getLogger(__name__)

COMPLETED, FAILED, INVALID, MISSING = "completed", "failed", "invalid", "missing"
STOPPED = "stopped"
FINAL = (COMPLETED, FAILED, INVALID)  # statuses a restarted sweep keeps
START_MARGIN = 5.0  # s: a member is not started with less wall time than this left
TABLE = "sweep.csv"
RECORDS = "members"


@dataclass
class MemberResult:
    """What one member reports: status, why not completed, final read-outs."""

    member: int
    values: dict[str, str]
    status: str
    reason: str = ""
    steps: int = 0
    wall_time: float = 0.0  # s, set-up and run
    out: str = ""
    final: dict[str, float] = field(default_factory=dict)


def member_dir(out: Path, index: int) -> Path:
    """The output folder of member ``index`` of the sweep in ``out``: ``member_NNN``."""
    return out / f"member_{index:03d}"


def start_refusal(deadline: Deadline, comm: MPI.Comm) -> str | None:
    """Why a member may not start now (a stop signal, too little wall time), or None."""
    return deadline.reason(comm, START_MARGIN)


def run_member(
    plan: SweepPlan,
    index: int,
    out: Path,
    comm: MPI.Comm,
    deadline: Deadline | None = None,
    resume: bool = False,
) -> MemberResult:
    """Run member ``index`` on ``comm`` into ``out/member_NNN`` (collective on ``comm``).

    A run file that does not validate gives status ``invalid``; a run that fails (Newton,
    or an error raised on every rank of ``comm``) gives ``failed``; a run stopped by the
    ``deadline`` or a signal gives ``stopped``; none raises. With ``resume``, a member
    with a checkpoint continues from it.
    """
    from solver.run import run_case

    deadline = deadline or Deadline(started=wallclock.perf_counter())
    values = plan.values(index)
    folder = member_dir(out, index)
    result = MemberResult(index, values, INVALID, out=folder.name)
    start = wallclock.perf_counter()
    why_not = start_refusal(deadline, comm)
    if why_not:
        result.status, result.reason = STOPPED, f"not started: {why_not}"
        return result
    try:
        run = run_case(
            plan.config,
            folder,
            plan.overrides(index),
            restart="auto" if resume else False,
            overwrite=not resume,
            wall_time=deadline.wall_time,
            started=deadline.started,
            comm=comm,
            announce=False,
        )
    except InputError as err:
        result.reason = str(err)
    except Exception as err:  # recorded: the other members go on
        log.debug("member %d raised", index, exc_info=True)
        result.status, result.reason = FAILED, f"{type(err).__name__}: {err}"
    else:
        result.status = run.status if run.status in (COMPLETED, STOPPED) else FAILED
        result.reason, result.steps = run.reason, run.steps
        result.final = {k: float(v) for k, v in run.final.items()}
        result.wall_time = run.earlier_wall_time  # the member's total, over its segments
    if result.status != INVALID:
        result.wall_time += wallclock.perf_counter() - start
    return result


def read_record(out: Path, index: int) -> MemberResult | None:
    """The member's record from an earlier run of the sweep, or None."""
    path = out / RECORDS / f"{index:03d}.json"
    if not path.is_file():
        return None
    return MemberResult(**json.loads(path.read_text()))


def final_record(out: Path, index: int, comm: MPI.Comm) -> MemberResult | None:
    """The member's record if it has a final status (a restart keeps it), else None.

    Read on rank 0 of ``comm``, returned on all its ranks.
    """
    record = read_record(out, index) if comm.rank == 0 else None
    return comm.bcast(record if record is not None and record.status in FINAL else None)


def write_record(out: Path, result: MemberResult) -> None:
    """``out/members/NNN.json`` (atomic): the member's result, for :func:`collect`."""
    folder = out / RECORDS
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / f"{result.member:03d}.json", asdict(result))


def run_ensemble(
    plan: SweepPlan,
    out: Path,
    comm: MPI.Comm,
    group_size: int = 1,
    deadline: Deadline | None = None,
    resume: bool = False,
) -> list[MemberResult] | None:
    """Run every member on groups of ``group_size`` ranks of ``comm`` (collective).

    Returns the results, ordered by member, on rank 0 of ``comm`` (None elsewhere), after
    writing each member's record and ``out/sweep.csv``. With ``resume``, members with a
    final record are kept and the others run (continued from a checkpoint if they have
    one); ``deadline`` stops members as a wall-time limit or a signal requires.
    """
    if group_size < 1 or comm.size % group_size:
        raise InputError(
            "--group-size",
            f"expected a divisor of the number of ranks ({comm.size}), got {group_size}",
        )
    groups = comm.size // group_size
    color = comm.rank // group_size
    group = comm.Split(color, comm.rank)
    leader = group.rank == 0
    mine = []
    try:
        for index in range(color, plan.size, groups):
            if comm.rank == 0:
                log.info("member %d of %d: %s", index, plan.size, _describe(plan.values(index)))
            kept = final_record(out, index, group) if resume else None
            if kept is not None:
                mine.append(kept)
                continue
            result = run_member(plan, index, out, group, deadline, resume)
            if leader:
                write_record(out, result)
            mine.append(result)
    finally:
        group.Free()
    gathered = comm.gather(mine if leader else [], root=0)
    if comm.rank != 0:
        return None
    assert gathered is not None  # gathered on rank 0
    results = sorted((r for part in gathered for r in part), key=lambda r: r.member)
    write_table(out / TABLE, plan, results)
    return results


def collect(plan: SweepPlan, out: Path) -> list[MemberResult]:
    """Read ``out/members/*.json`` (e.g. after a job array) and write ``out/sweep.csv``.

    Members without a record are listed with status ``missing``.
    """
    results = []
    for index in range(plan.size):
        path = out / RECORDS / f"{index:03d}.json"
        record = read_record(out, index)
        if record is not None:
            results.append(record)
        else:
            results.append(
                MemberResult(
                    index,
                    plan.values(index),
                    MISSING,
                    reason=f"no record {path.relative_to(out)}: not run, or still running",
                    out=member_dir(out, index).name,
                )
            )
    write_table(out / TABLE, plan, results)
    return results


def write_table(path: Path, plan: SweepPlan, results: Sequence[MemberResult]) -> None:
    """One row per member: index, varied values, status, reason, steps, wall time, finals."""
    fixed = ["member", *plan.keys, "status", "reason", "steps", "wall_time"]
    finals: list[str] = []
    for r in results:
        finals += [k for k in r.final if k not in finals and k not in fixed]
    header = [*fixed, *finals]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in results:
            writer.writerow(
                [
                    r.member,
                    *(r.values.get(k, "") for k in plan.keys),
                    r.status,
                    r.reason,
                    r.steps,
                    f"{r.wall_time:.3f}",
                    *(repr(r.final[k]) if k in r.final else "" for k in finals),
                ]
            )


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a ``sweep.csv`` as dictionaries of strings."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def summary(results: Sequence[MemberResult], keys: Sequence[str]) -> list[str]:
    """Lines of a short report: one per member."""
    lines = []
    for r in results:
        line = f"  {r.member:>4}  {_describe(r.values):<40} {r.status}"
        if r.reason:
            line += f": {r.reason}"
        lines.append(line)
    return lines


def _describe(values: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())
