"""A sweep as a Slurm job array: one member per array task, then a collection job.

The array's script is the package's batch template filled for a sweep
(:func:`solver.batch.scripts.array_script`): the same wall-time stop and requeue as the
job of a case.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from solver.batch.scripts import Limits, array_script, slurm_seconds
from solver.sweep.plan import SweepPlan

__all__ = ["slurm_seconds", "write_slurm"]


def write_slurm(
    plan: SweepPlan,
    out: Path,
    ranks: int = 1,
    wall_time: str = "01:00:00",
    extra: Sequence[str] = (),
) -> tuple[Path, Path, Path]:
    """Write the scripts that run a sweep as a Slurm job array.

    ``sweep.sbatch`` is the job array, one member per task on ``ranks`` ranks, each task
    stopping with a checkpoint before its limit and requeueing itself until its member
    ends; ``collect.sbatch`` builds the table; ``submit.sh`` submits both, the second
    after the first. Paths in the scripts are absolute; the Python is this one.

    Args:
        plan: The sweep.
        out: Its output folder (prepared), where the scripts are written.
        ranks: MPI ranks per array task.
        wall_time: Time limit per array task, as sbatch reads it.
        extra: More ``#SBATCH`` lines, in both job scripts.

    Returns:
        The paths of ``sweep.sbatch``, ``collect.sbatch`` and ``submit.sh``.

    Raises:
        InputError: ``wall_time`` is not a Slurm time.
    """
    out = out.resolve()
    py = Path(sys.executable)
    mpiexec = py.parent / "mpiexec"
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
    slurm_seconds(wall_time)  # InputError for a malformed --time
    array = out / "sweep.sbatch"
    array.write_text(
        array_script(
            base,
            plan.size,
            Limits(ntasks=ranks, time=wall_time, job_name="polarity-sweep"),
            output=f"{out}/slurm-%A_%a.out",
            launcher=str(mpiexec) if mpiexec.exists() else None,
            extra=extra,
        )
    )
    gather = _write_collect(out / "collect.sbatch", header, command)
    return array, gather, _write_submit(out / "submit.sh", array, gather)


def _write_collect(gather: Path, header: list[str], command: str) -> Path:
    """Write the job that gathers the members' records into ``sweep.csv``; its path."""
    out = gather.parent
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
    return gather


def _write_submit(submit: Path, array: Path, gather: Path) -> Path:
    """Write ``submit.sh``: the job array, then the collection after it; its path."""
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
    return submit
