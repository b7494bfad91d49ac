"""Parameter sweeps: the Cartesian product of ``--vary`` values, run as an ensemble.

A sweep is a run file, fixed overrides (``--set``) and varied keys, each with a list
of values; its members are the Cartesian product of those lists, numbered in
row-major order (the last ``--vary`` changes fastest). Two ways to run them:

* an **ensemble** inside one ``mpiexec``: the world communicator is split into groups
  of ``group_size`` ranks, member ``i`` runs on group ``i mod n_groups`` through
  ``Simulation(cfg, group_comm)``. Members are assigned statically and only the group's
  own communicator is used while they run, so groups of unequal run length never wait
  for each other until the final gather;
* a **Slurm job array** (:func:`write_slurm`), one member per array task (``--member``),
  then a collection step that builds the table.

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
import itertools
import json
import logging
import os
import shlex
import sys
import time as wallclock
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mpi4py import MPI

from solver import config as run_config
from solver.errors import InputError

log = logging.getLogger(__name__)

COMPLETED, FAILED, INVALID, MISSING = "completed", "failed", "invalid", "missing"
STOPPED = "stopped"
FINAL = (COMPLETED, FAILED, INVALID)  # statuses a restarted sweep keeps
START_MARGIN = 5.0  # s: a member is not started with less wall time than this left
STOP_MARGIN = 300  # s: array tasks stop this long before their limit (at most 3/4 of it)
TABLE = "sweep.csv"
PLAN = "sweep.json"
RECORDS = "members"


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` at commas outside brackets and quotes (``[1,0],[0,1]``)."""
    values, current, depth, quote = [], [], 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    values.append("".join(current).strip())
    return values


def parse_vary(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["a.b=1,2", "c.d=x,y"]`` → ``[("a.b", ["1", "2"]), ("c.d", ["x", "y"])]``."""
    if not items:
        raise InputError("--vary", "expected at least one --vary key=v1,v2,...")
    varied: list[tuple[str, list[str]]] = []
    for item in items:
        if "=" not in item:
            raise InputError("--vary", f"expected key=v1,v2,..., got {item!r}")
        key, raw = (s.strip() for s in item.split("=", 1))
        if not key or not all(key.split(".")):
            raise InputError("--vary", f"malformed key {key!r} in {item!r} (dotted, as for --set)")
        if any(key == k for k, _ in varied):
            raise InputError("--vary", f"key {key!r} is varied twice; give all its values once")
        values = split_values(raw)
        if not all(values):
            raise InputError("--vary", f"{key}: empty value in {raw!r}")
        varied.append((key, values))
    return varied


@dataclass(frozen=True)
class SweepPlan:
    """A run file, fixed overrides and varied keys; members in row-major order."""

    config: Path
    sets: tuple[str, ...]
    varied: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def from_args(cls, config: Path, sets: Sequence[str], vary: Sequence[str]) -> SweepPlan:
        varied = tuple((k, tuple(v)) for k, v in parse_vary(vary))
        for item in sets:
            if "=" not in item:
                raise InputError("--set", f"expected key=value, got {item!r}")
        return cls(Path(config), tuple(sets), varied)

    @property
    def keys(self) -> list[str]:
        return [k for k, _ in self.varied]

    @property
    def size(self) -> int:
        n = 1
        for _, values in self.varied:
            n *= len(values)
        return n

    def values(self, index: int) -> dict[str, str]:
        """Varied values of member ``index`` (as given on the command line)."""
        if not 0 <= index < self.size:
            raise InputError("--member", f"expected 0 <= member < {self.size}, got {index}")
        combos = itertools.product(*(v for _, v in self.varied))
        return dict(zip(self.keys, next(itertools.islice(combos, index, None)), strict=True))

    def overrides(self, index: int) -> list[str]:
        """``--set`` items of member ``index``: the fixed ones, then its varied values."""
        return [*self.sets, *(f"{k}={v}" for k, v in self.values(index).items())]

    def validate(self) -> list[str | None]:
        """Load every member's run file: its error message, or None if it is valid.

        Raises InputError if no member is valid (an unknown key, a missing run file):
        that is a mistake in the sweep, not in one of its values.
        """
        errors: list[str | None] = []
        for i in range(self.size):
            try:
                run_config.load(self.config, self.overrides(i))
                errors.append(None)
            except InputError as err:
                errors.append(str(err))
        if errors and all(errors):
            raise InputError("sweep", f"no member is valid; member 0: {errors[0]}")
        return errors

    def to_json(self) -> dict[str, Any]:
        return {
            "config": str(self.config),
            "sets": list(self.sets),
            "vary": {k: list(v) for k, v in self.varied},
            "members": self.size,
        }


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
    return out / f"member_{index:03d}"


@dataclass(frozen=True)
class Budget:
    """When members must stop: a wall-time limit (s after ``started``) and signals."""

    wall_time: float | None = None
    started: float = 0.0

    def exhausted(self, comm: MPI.Comm) -> str | None:
        """Why no member may start now (agreed on ``comm``), or None."""
        from solver.time.loop import stop_requested

        reason = stop_requested()
        if reason is None and self.wall_time is not None:
            used = wallclock.perf_counter() - self.started
            if used + START_MARGIN >= self.wall_time:
                reason = f"wall-time limit: {used:.0f} s used of {self.wall_time:.0f} s"
        reasons = comm.allgather(reason)
        return next((r for r in reasons if r), None)


def run_member(
    plan: SweepPlan,
    index: int,
    out: Path,
    comm: MPI.Comm,
    budget: Budget | None = None,
    resume: bool = False,
) -> MemberResult:
    """Run member ``index`` on ``comm`` into ``out/member_NNN`` (collective on ``comm``).

    A run file that does not validate gives status ``invalid``; a run that fails (Newton,
    or an error raised on every rank of ``comm``) gives ``failed``; a run stopped by the
    ``budget`` gives ``stopped``; none raises. With ``resume``, a member with a
    checkpoint continues from it.
    """
    from solver.io import checkpoint, restart
    from solver.simulation import Simulation

    budget = budget or Budget(started=wallclock.perf_counter())
    values = plan.values(index)
    folder = member_dir(out, index)
    result = MemberResult(index, values, INVALID, out=folder.name)
    start = wallclock.perf_counter()
    why_not = budget.exhausted(comm)
    if why_not:
        result.status, result.reason = STOPPED, f"not started: {why_not}"
        return result
    stored = None
    try:
        cfg = run_config.load(plan.config, plan.overrides(index))
        if resume and comm.bcast(checkpoint.path_in(folder).is_file() if comm.rank == 0 else None):
            cfg, stored = restart.load(plan.config, folder, [], comm)
    except InputError as err:
        result.reason = str(err)
        return result
    try:
        with Simulation(cfg, comm) as sim:
            if stored is not None:
                meta = stored.meta
                sim.load_states(stored, meta["t"], meta["dt_prev"], meta["past_times"])
            run = sim.run(
                folder,
                overwrite=stored is None,
                restart=stored,
                wall_time=budget.wall_time,
                started=budget.started,
                overrides=plan.overrides(index) if stored is None else [],
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
    result.wall_time = wallclock.perf_counter() - start
    if stored is not None:  # the member's total, over its segments
        result.wall_time += float(stored.meta.get("wall_time", 0.0))
    return result


def read_record(out: Path, index: int) -> MemberResult | None:
    """The member's record from an earlier run of the sweep, or None."""
    path = out / RECORDS / f"{index:03d}.json"
    if not path.is_file():
        return None
    return MemberResult(**json.loads(path.read_text()))


def final_record(out: Path, index: int, comm: MPI.Comm) -> MemberResult | None:
    """The member's record if it has a final status (a restart keeps it), else None;
    read on rank 0 of ``comm``, returned on all its ranks."""
    record = read_record(out, index) if comm.rank == 0 else None
    return comm.bcast(record if record is not None and record.status in FINAL else None)


def write_record(out: Path, result: MemberResult) -> None:
    """``out/members/NNN.json`` (atomic): the member's result, for :func:`collect`."""
    folder = out / RECORDS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.member:03d}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")
    os.replace(tmp, path)


def run_ensemble(
    plan: SweepPlan,
    out: Path,
    comm: MPI.Comm,
    group_size: int = 1,
    budget: Budget | None = None,
    resume: bool = False,
) -> list[MemberResult] | None:
    """Run every member on groups of ``group_size`` ranks of ``comm`` (collective).

    Returns the results, ordered by member, on rank 0 of ``comm`` (None elsewhere), after
    writing each member's record and ``out/sweep.csv``. With ``resume``, members with a
    final record are kept and the others run (continued from a checkpoint if they have
    one); ``budget`` stops members as a wall-time limit or a signal requires.
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
            result = run_member(plan, index, out, group, budget, resume)
            if leader:
                write_record(out, result)
            mine.append(result)
    finally:
        group.Free()
    gathered = comm.gather(mine if leader else [], root=0)
    if comm.rank != 0:
        return None
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


def slurm_seconds(text: str) -> int:
    """Seconds in an sbatch ``--time``: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S.

    As :func:`solver.config.units.parse_duration`, except that a bare number is minutes; 0 for
    no limit (``0``, ``UNLIMITED``, ``INFINITE``).
    """
    from solver.config.units import UnitError, parse_duration

    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE"):
        return 0
    try:
        if text.isdigit():
            return int(text) * 60
        if ":" not in text and "-" not in text:
            raise UnitError("not a Slurm time")
        return int(parse_duration(text))
    except UnitError:
        raise InputError(
            "--time", f"expected a Slurm time such as 02:00:00, 90 or 1-12, got {text!r}"
        ) from None


def write_slurm(
    plan: SweepPlan,
    out: Path,
    ranks: int = 1,
    wall_time: str = "01:00:00",
    extra: Sequence[str] = (),
) -> tuple[Path, Path, Path]:
    """Write ``sweep.sbatch`` (a job array, one member per task on ``ranks`` ranks),
    ``collect.sbatch`` (builds the table) and ``submit.sh`` (submits both, the second
    after the first). Paths in the scripts are absolute; the Python is this one.
    """
    out = out.resolve()
    py = Path(sys.executable)
    mpiexec = py.parent / "mpiexec"
    launcher = shlex.quote(str(mpiexec)) if mpiexec.exists() else "mpiexec"
    base = [
        str(py),
        "-m",
        "solver",
        "sweep",
        str(plan.config.resolve()),
        *(a for s in plan.sets for a in ("--set", s)),
        *(a for k, v in plan.varied for a in ("--vary", f"{k}={','.join(v)}")),
        "-o",
        str(out),
    ]
    command = " ".join(shlex.quote(a) for a in base)
    header = ["#!/bin/bash", "#SBATCH --job-name=polarity-sweep", *extra]
    limit = slurm_seconds(wall_time)
    stop = max(limit - STOP_MARGIN, limit // 4)  # s: the member stops here, checkpointed
    stopping = f" --wall-time {stop}s" if limit else ""
    array = out / "sweep.sbatch"
    array.write_text(
        "\n".join(
            [
                *header,
                f"#SBATCH --array=0-{plan.size - 1}",
                f"#SBATCH --ntasks={ranks}",
                f"#SBATCH --time={wall_time}",
                "#SBATCH --requeue",
                "#SBATCH --open-mode=append",
                f"#SBATCH --output={out}/slurm-%A_%a.out",
                "# One sweep member per array task: " + f"{plan.size} members of {plan.config}.",
                (
                    f"# The member stops {limit - stop} s before the task's limit (or on SIGTERM)"
                    if limit
                    else "# No time limit; on SIGTERM (preemption) the member stops"
                ),
                "# with a checkpoint (exit 75); the task then requeues itself and continues",
                "# the member from it (--restart).",
                "set -uo pipefail",
                "export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1",
                f'{launcher} -n "$SLURM_NTASKS" {command} --member "$SLURM_ARRAY_TASK_ID" '
                f"--restart{stopping}",
                "status=$?",
                'if ((status == 75)) && scontrol requeue "$SLURM_JOB_ID"; then',
                "    sleep 600 # the requeue ends this script",
                "fi",
                'exit "$status"',
                "",
            ]
        )
    )
    gather = out / "collect.sbatch"
    gather.write_text(
        "\n".join(
            [
                *header,
                "#SBATCH --ntasks=1",
                "#SBATCH --time=00:10:00",
                f"#SBATCH --output={out}/slurm-collect-%j.out",
                "# Gathers the members' records into sweep.csv (after the array).",
                "set -euo pipefail",
                f"{command} --collect",
                "",
            ]
        )
    )
    submit = out / "submit.sh"
    submit.write_text(
        "\n".join(
            [
                "#!/bin/bash",
                "# Submit the job array, then the collection once every task has ended.",
                "set -euo pipefail",
                f"array=$(sbatch --parsable {shlex.quote(str(array))})",
                "sbatch --parsable --dependency=afterany:${array%%;*} " + shlex.quote(str(gather)),
                'echo "submitted job array ${array%%;*}"',
                "",
            ]
        )
    )
    submit.chmod(0o755)
    return array, gather, submit


def write_plan(out: Path, plan: SweepPlan) -> None:
    (out / PLAN).write_text(json.dumps(plan.to_json(), indent=2) + "\n")


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
