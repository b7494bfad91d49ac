"""Slurm batch scripts filled from one template, ``job.sbatch.in`` beside this module.

The template is a shell script whose lines ``#@DESCRIPTION@``, ``#@SBATCH@``,
``#@SETTINGS@`` and ``#@COMMAND@`` are replaced by the lines of one kind of job:

* :func:`case_script`: ``polarity run CONFIG -o OUT`` (with ``--restart`` once a
  checkpoint exists), the script of ``polarity job`` and of ``runs/*/job.sbatch``;
* :func:`array_script`: one member of a sweep per task of a job array
  (``... sweep ... --member "$SLURM_ARRAY_TASK_ID" --restart``), the script of
  ``polarity sweep --slurm``.

Everything else comes from the template, the same for both: the wall time left
(``squeue``) minus ``MARGIN`` as ``--wall-time``, the ``mpiexec`` line and the requeue
on exit code 75 (``scontrol requeue``, else a new job after this one).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from solver.errors import InputError

TEMPLATE = "job.sbatch.in"
PLACEHOLDERS = ("DESCRIPTION", "SBATCH", "SETTINGS", "COMMAND")
DEFAULT_TIME = "01:00:00"
_SBATCH_LINE = re.compile(r"^#SBATCH (--[\w-]+)(?:=(\S*))?\s*$", re.M)


@dataclass(frozen=True)
class Limits:
    """What Slurm grants one job (or each task of a job array).

    Attributes:
        ntasks: MPI ranks (``#SBATCH --ntasks``).
        time: The time limit as sbatch reads it (``#SBATCH --time``), e.g. ``02:00:00``.
        job_name: ``#SBATCH --job-name``.
    """

    ntasks: int = 1
    time: str = DEFAULT_TIME
    job_name: str = "polarity"

    def check(self) -> None:
        """Raise :class:`InputError` (naming the option) unless sbatch would accept these."""
        if self.ntasks < 1:
            raise InputError("--ntasks", f"expected a positive number of ranks, got {self.ntasks}")
        slurm_seconds(self.time)
        if not self.job_name or any(c.isspace() for c in self.job_name):
            raise InputError("--job-name", f"expected a name without spaces, got {self.job_name!r}")

    def lines(self) -> list[str]:
        """The ``#SBATCH`` lines of the job name, ranks and time limit."""
        return [
            f"#SBATCH --job-name={self.job_name}",
            f"#SBATCH --ntasks={self.ntasks}",
            f"#SBATCH --time={self.time}",
        ]


def slurm_seconds(text: str) -> int:
    """Seconds in an sbatch ``--time``: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S.

    Args:
        text: The time limit; a bare number is minutes.

    Returns:
        The limit in seconds, 0 for no limit (``0``, ``UNLIMITED``, ``INFINITE``).

    Raises:
        InputError: ``text`` is not a Slurm time.
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


def template() -> str:
    """The text of the job template shipped with the package."""
    return resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")


def fill(
    description: Sequence[str],
    sbatch: Sequence[str],
    settings: Sequence[str],
    command: Sequence[str],
) -> str:
    """The template with each placeholder line replaced by the given lines.

    Args:
        description: Comment lines at the top (each starting with ``#``).
        sbatch: ``#SBATCH`` lines; ``--requeue`` and ``--open-mode=append`` are in the template.
        settings: Shell lines run first: variables with their defaults, ``MPIEXEC`` (the
            MPI launcher) among them.
        command: Shell lines that set the array ``run``: the command of one segment,
            without ``--wall-time`` (added by the template).

    Returns:
        The script.
    """
    parts = dict(zip(PLACEHOLDERS, (description, sbatch, settings, command), strict=True))
    lines: list[str] = []
    for line in template().splitlines():
        name = line[2:-1] if line.startswith("#@") and line.endswith("@") else None
        lines.extend(parts[name] if name in parts else [line])
    return "\n".join(lines) + "\n"


def limits_of(script: str) -> Limits:
    """The :class:`Limits` in a script's ``#SBATCH`` lines (defaults for those absent).

    Args:
        script: The text of a batch script.

    Returns:
        Its ranks, time limit and job name.
    """
    options = {name: value for name, value in _SBATCH_LINE.findall(script)}
    default = Limits()
    return Limits(
        ntasks=int(options.get("--ntasks") or default.ntasks),
        time=options.get("--time") or default.time,
        job_name=options.get("--job-name") or default.job_name,
    )


def submit_path(path: Path, cwd: Path | None = None) -> Path:
    """``path`` as the script names it: relative to ``cwd`` (the submit directory) if inside.

    Args:
        path: A file or folder, relative to ``cwd`` or absolute.
        cwd: The folder ``sbatch`` will be run in (default: the current one).

    Returns:
        A relative path for a place inside ``cwd``, else the absolute path.
    """
    cwd = (cwd or Path.cwd()).resolve()
    full = (cwd / path).resolve()
    return full.relative_to(cwd) if full.is_relative_to(cwd) else full


def case_script(
    config: Path,
    limits: Limits,
    out: Path | None = None,
    script: Path | None = None,
) -> str:
    """The batch job of one case: ``polarity run CONFIG -o OUT`` until it completes.

    Paths are used as given, so relative ones are relative to the submit directory
    (the script changes to ``$SLURM_SUBMIT_DIR``); see :func:`submit_path`.

    Args:
        config: The run file.
        limits: Ranks, time limit and job name.
        out: The default output folder (default ``<case>/out``).
        script: Where the script is written, for the usage comment (default
            ``<case>/job.sbatch``).

    Returns:
        The script.
    """
    case = config.parent
    name = shlex.quote(config.name)
    usage = script or case / "job.sbatch"
    description = [
        f"# Slurm batch job of `polarity run {config}` on {limits.ntasks} MPI rank"
        + ("s." if limits.ntasks > 1 else "."),
        "# Submit it from the folder that relative paths here start from; extra arguments go",
        "# to `polarity run`:",
        f"#   sbatch {usage} [--set time.end=600 ...]",
        f"#   sbatch --time=08:00:00 --ntasks=8 {usage}     # other limits",
        "# Settings (sbatch --export=ALL,NAME=value): CONFIG, OUT, POLARITY (the command, e.g. a",
        '# venv\'s bin/polarity or "apptainer exec polarity.sif polarity").',
    ]
    settings = [
        f"CASE={shlex.quote(str(case))}",
        f"CONFIG=${{CONFIG:-$CASE/{name}}}",
        f"OUT=${{OUT:-{shlex.quote(str(out)) if out is not None else '$CASE/out'}}}",
        "POLARITY=${POLARITY:-polarity}",
        "MPIEXEC=${MPIEXEC:-mpiexec}",
    ]
    command = [
        "mode=()",
        "if [[ -f $OUT/checkpoint/state.h5 ]]; then",
        "    mode=(--restart)",
        "fi",
        "# shellcheck disable=SC2206  # POLARITY may be a command with arguments",
        'run=($POLARITY run "$CONFIG" -o "$OUT" "${mode[@]}")',
    ]
    sbatch = [*limits.lines(), "#SBATCH --output=slurm-%x-%j.out"]
    return fill(description, sbatch, settings, command)


def array_script(
    command: Sequence[str],
    size: int,
    limits: Limits,
    output: str,
    launcher: str | None = None,
    extra: Sequence[str] = (),
) -> str:
    """The job array of a sweep: task ``i`` runs (or continues) member ``i``.

    Args:
        command: The ``sweep`` command of the members, e.g. ``[python, "-m", "solver",
            "sweep", CONFIG, "--vary", ..., "-o", OUT]``; each task adds ``--member
            "$SLURM_ARRAY_TASK_ID" --restart``.
        size: Number of members (tasks ``0`` to ``size - 1``).
        limits: Ranks, time limit and job name of each task.
        output: The ``#SBATCH --output`` pattern of the tasks' logs.
        launcher: The default of ``MPIEXEC`` (default: ``mpiexec`` on the ``PATH``).
        extra: More ``#SBATCH`` lines.

    Returns:
        The script.
    """
    quoted = " ".join(shlex.quote(str(a)) for a in command)
    description = [
        f"# Slurm job array: one member of a sweep per array task, {size} members;",
        "# extra arguments go to `polarity sweep`.",
    ]
    sbatch = [
        limits.lines()[0],
        *extra,
        f"#SBATCH --array=0-{size - 1}",
        *limits.lines()[1:],
        f"#SBATCH --output={output}",
    ]
    settings = [f"MPIEXEC=${{MPIEXEC:-{shlex.quote(launcher or 'mpiexec')}}}"]
    run = [f'run=({quoted} --member "$SLURM_ARRAY_TASK_ID" --restart)']
    return fill(description, sbatch, settings, run)
