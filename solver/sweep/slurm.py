"""A sweep as a Slurm job array: one member per array task, then a collection job."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from solver.errors import InputError
from solver.sweep.plan import SweepPlan

STOP_MARGIN = 300  # s: array tasks stop this long before their limit (at most 3/4 of it)


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
