"""The output folder of a run: checked, claimed with a lock file, and released.

Before anything expensive is built, :func:`claim` checks that the output folder can
be a run's (not a file, not under ``/proc``, ``/sys`` or ``/dev``, creatable and
writable), applies the rule of ``--overwrite`` (:func:`replace_refusal`) and takes
the folder's lock: ``OUT/.polarity.lock``, created with ``O_CREAT | O_EXCL`` and
holding the host, pid and start of the run. A second run into the same folder is
refused at once, naming the holder; the lock of a run that no longer exists on this
host is taken over. :meth:`Claim.release` removes the lock at the end of the run,
also after a failure or a stop. Rank 0 decides; every rank raises the same
:class:`~solver.errors.InputError`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpi4py import MPI

from solver.errors import InputError, describe

LOCK = ".polarity.lock"
SYSTEM = (Path("/proc"), Path("/sys"), Path("/dev"))
RUN_RECORD = "run.json"
SWEEP_PLAN = "sweep.json"
_STATUSES = ("running", "completed", "stopped", "failed")


def _label(path: Path) -> str:
    return f"output folder {str(path)!r}"


def location_refusal(path: Path) -> str | None:
    """Why ``path`` can never be an output folder (a file, a system folder), or None."""
    real = path.resolve()
    for system in SYSTEM:
        if real == system or system in real.parents:
            return f"{_label(path)}: is under {system}, a system folder; choose another with -o"
    if path.exists() and not path.is_dir():
        return f"{_label(path)}: is a file, not a folder; choose another with -o"
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        return f"{_label(path)}: {str(parent)!r} is a file, not a folder; choose another with -o"
    return None


def _record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_run_output(path: Path) -> bool:
    """Whether ``path`` holds a run's outputs: a ``run.json`` written by polarity."""
    record = _record(path / RUN_RECORD)
    return (
        record is not None
        and record.get("status") in _STATUSES
        and isinstance(record.get("versions"), dict)
        and "solver" in record["versions"]
    )


def is_sweep_output(path: Path) -> bool:
    """Whether ``path`` holds a sweep's outputs: a ``sweep.json`` written by polarity."""
    plan = _record(path / SWEEP_PLAN)
    return plan is not None and {"config", "vary", "members"} <= plan.keys()


def _occupied(path: Path) -> bool:
    """Whether ``path`` is a folder holding anything but a lock file."""
    return path.is_dir() and any(p.name != LOCK for p in path.iterdir())


def replace_refusal(path: Path, config: Path | None = None) -> str | None:
    """Why ``--overwrite`` may not replace the folder ``path``, or None if it may.

    Only an empty folder or one holding a previous run's (or sweep's) outputs may be
    replaced; never the current folder or one that holds it, nor the folder of the
    run file ``config``.
    """
    if not _occupied(path):
        return None
    real = path.resolve()
    here = Path.cwd().resolve()
    why = None
    if real == here or real in here.parents:
        why = "it is the current folder or holds it"
    elif config is not None and real in Path(config).resolve().parents:
        why = f"it holds the run file {str(config)!r}"
    elif not (is_run_output(real) or is_sweep_output(real)):
        why = (
            "it does not hold the outputs of a polarity run (no run.json written by "
            "polarity); remove it yourself, or choose another with -o"
        )
    return f"{_label(path)}: --overwrite refused: {why}" if why else None


def clear(path: Path) -> None:
    """Delete everything in the folder ``path`` but its lock file (no link is followed)."""
    for entry in path.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _occupied_message(path: Path) -> str:
    return (
        f"{_label(path)}: exists and is not empty; choose another with -o, pass "
        "--overwrite to replace it, or --restart to continue it"
    )


def prepare(path: Path, overwrite: bool, config: Path | None = None) -> str | None:
    """Make ``path`` an empty output folder (this process): why not, or None.

    Raises OSError when a folder cannot be created or emptied.
    """
    why = location_refusal(path)
    if why is None and _occupied(path):
        why = replace_refusal(path, config) if overwrite else _occupied_message(path)
        if why is None:
            clear(path)
    if why is None:
        path.mkdir(parents=True, exist_ok=True)
    return why


# -- the lock ---------------------------------------------------------------------------
def _start_of(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    """Whether the process ``pid`` on this host is the one that started at ``start``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = _start_of(pid)
    return start is None or now is None or now == start


def _holder(info: dict[str, Any] | None) -> str:
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, since {info.get('since')}"


def _stale(info: dict[str, Any] | None) -> bool:
    """Whether a lock (as read) belongs to a process that no longer exists on this host."""
    if info is None or info.get("host") != socket.gethostname():
        return False
    pid = info.get("pid")
    return isinstance(pid, int) and not _alive(pid, info.get("start"))


def _mine() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "start": _start_of(pid),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _create(lock: Path, info: dict[str, Any]) -> bool:
    """Create ``lock`` holding ``info`` if it does not exist: whether it was created."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, (json.dumps(info) + "\n").encode())
    except OSError:
        os.close(fd)
        lock.unlink(missing_ok=True)
        raise
    os.close(fd)
    return True


def _take(lock: Path) -> str | None:
    """Take the lock ``lock`` (this process): None, or why it is held by another run."""
    mine = _mine()
    if _create(lock, mine):
        return None
    info = _record(lock)
    if info is None:  # being written this instant, or not a lock of ours
        time.sleep(0.2)
        info = _record(lock)
    if _stale(info):
        # set the stale lock aside under a name of our own: of two runs taking it over
        # at once, one renames it and the other finds the new lock (or nothing)
        aside = lock.with_name(f"{LOCK}.stale.{mine['pid']}")
        try:
            os.rename(lock, aside)
        except FileNotFoundError:
            pass
        else:
            if _record(aside) != info:  # a live lock taken in between: put it back
                try:
                    os.link(aside, lock)
                except OSError:
                    pass
                aside.unlink(missing_ok=True)
            else:
                aside.unlink(missing_ok=True)
        if _create(lock, mine):
            return None
        info = _record(lock)
    hint = "wait for it to end, or choose another folder with -o"
    if info is not None and info.get("host") != socket.gethostname():
        hint += f"; if no run uses it, delete {str(lock)!r}"
    elif info is None:
        hint = f"if no run uses it, delete {str(lock)!r}"
    return f"{_label(lock.parent)}: in use by another run ({_holder(info)}); {hint}"


@dataclass
class Claim:
    """An output folder claimed by this run: its lock, and the folders it created."""

    out: Path
    comm: MPI.Comm
    created: list[Path] = field(default_factory=list)  # on rank 0, outermost first
    held: bool = False

    def release(self) -> None:
        """Remove the lock (if still this run's) and the folders created if left empty.

        Rank 0 only does anything; not collective, so it is safe in ``finally`` blocks.
        """
        if self.comm.rank != 0:
            return
        if self.held:
            self.held = False
            lock = self.out / LOCK
            info = _record(lock) or {}
            if (info.get("host"), info.get("pid")) == (socket.gethostname(), os.getpid()):
                lock.unlink(missing_ok=True)
        for folder in reversed(self.created):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: outputs were written
        self.created = []

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim(
    out: Path,
    comm: MPI.Comm,
    *,
    restart: bool = False,
    overwrite: bool = False,
    config: Path | None = None,
) -> Claim:
    """Check the output folder ``out`` and take its lock (collective).

    A new run creates the folder (and its parents); it must be empty unless
    ``overwrite`` and :func:`replace_refusal` allows (it is emptied later, once the run
    is set up). A restart needs the folder to exist. Raises InputError on every rank,
    with one line saying why, when the folder is unusable or held by another run.
    """
    out = Path(out)
    result = Claim(out, comm)
    error = None
    if comm.rank == 0:
        try:
            error = _claim(result, restart, overwrite, config)
        except OSError as err:
            error = f"{_label(out)}: cannot write in it: {describe(err)}"
        if error is not None:
            result.release()
    error = comm.bcast(error, root=0)
    if error:
        raise InputError("", error)
    return result


def _claim(result: Claim, restart: bool, overwrite: bool, config: Path | None) -> str | None:
    out = result.out
    why = location_refusal(out)
    if why is not None:
        return why
    if restart:
        if not out.is_dir():
            return f"{_label(out)}: does not exist; run without --restart to start the run"
    elif _occupied(out):
        why = replace_refusal(out, config) if overwrite else _occupied_message(out)
        if why is not None:
            return why
    missing = [p for p in (out.absolute(), *out.absolute().parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        result.created.append(folder)
    why = _take(out / LOCK)
    result.held = why is None
    return why
