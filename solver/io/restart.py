"""Continuing a run from its checkpoint: what may change, and what is refused.

A restart reads ``OUT/checkpoint/state.h5`` and the run file again, with the
``--set`` overrides of the original run followed by those given now. Any value
that then differs from the checkpoint's run file must be named by a ``--set`` of
this invocation: a run file edited by accident is refused (with the list of
differences), an explicit change is allowed and recorded in ``run.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mpi4py import MPI

from solver import config as run_config
from solver.errors import InputError
from solver.io import checkpoint

_MISSING = "(absent)"


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": value}`` for every leaf of nested tables."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two run-file documents: (old, new)."""
    a, b = flatten(old), flatten(new)
    return {
        k: (a.get(k, _MISSING), b.get(k, _MISSING))
        for k in sorted(set(a) | set(b))
        if a.get(k, _MISSING) != b.get(k, _MISSING)
    }


def _key(item: str) -> str:
    return item.split("=", 1)[0].strip()


#: what a restart cannot change: the state comes from the checkpoint, on its mesh, and
#: metrics.csv continues with its columns
FIXED = {
    "mesh": "the checkpoint holds the state on its mesh",
    "species": "the checkpoint holds the state of its species",
    "metrics.species": "metrics.csv continues with its columns",
    "metrics.correlations": "metrics.csv continues with its columns",
    "metrics.stimulus": "metrics.csv continues with its columns",
}
#: the parts of a species a restart may change (its initial values and compartment not)
SPECIES_VARIABLE = ("D",)


def has_checkpoint(out_dir: Path, comm: MPI.Comm) -> bool:
    """Whether ``out_dir`` holds a checkpoint (looked at on rank 0, known on all)."""
    path = checkpoint.path_in(out_dir)
    return bool(comm.bcast(path.is_file() if comm.rank == 0 else None))


def require_checkpoint(out_dir: Path, comm: MPI.Comm) -> None:
    """Raise InputError (on every rank) unless ``out_dir`` holds a checkpoint."""
    if not has_checkpoint(out_dir, comm):
        path = checkpoint.path_in(out_dir)
        raise InputError(
            str(out_dir),
            f"no checkpoint to restart from ({path} does not exist); "
            "run without --restart to start the run",
        )


def unchangeable(key: str, old: Any, new: Any) -> str | None:
    """Why a restart cannot honour a change of ``key`` from ``old`` to ``new``, or None."""
    parts = key.split(".")
    if parts[0] == "species":
        if old == _MISSING or new == _MISSING or len(parts) < 3:
            return "the checkpoint holds the state of its species (none can be added or removed)"
        if parts[2] in SPECIES_VARIABLE:
            return None
        if parts[2] in ("initial", "noise"):
            return "initial values apply at t = 0 only; the state comes from the checkpoint"
    for prefix, why in FIXED.items():
        if key == prefix or key.startswith(prefix + "."):
            return why
    return None


def load(
    config_path: Path, out_dir: Path, overrides: list[str], comm: MPI.Comm
) -> tuple[run_config.RunConfig, checkpoint.Stored]:
    """The run configuration and the checkpoint of a run to continue (collective).

    Raises InputError without a checkpoint, when the run file differs from the
    checkpoint's in a value that no ``--set`` of ``overrides`` names, or when a named
    change cannot be honoured by a restart (:func:`unchangeable`: the mesh, the
    species, the columns of metrics.csv).
    """
    require_checkpoint(out_dir, comm)
    path = checkpoint.path_in(out_dir)
    try:
        stored = checkpoint.read(path, comm)
    except ValueError as err:
        raise InputError(str(path), str(err)) from None
    meta = stored.meta
    cfg = run_config.load(config_path, [*meta.get("overrides", []), *overrides])
    named = {_key(item) for item in overrides}
    changed = differences(meta["document"], cfg.document)
    unnamed = {
        k: v for k, v in changed.items() if not any(k == n or k.startswith(n + ".") for n in named)
    }
    if unnamed:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in unnamed.items())
        raise InputError(
            str(config_path),
            f"differs from the run in the checkpoint ({listed}); to continue with the new "
            "values, name each with --set KEY=VALUE, or restore the run file",
        )
    for key, (old, new) in changed.items():
        why = unchangeable(key, old, new)
        if why is not None:
            raise InputError(
                "--restart",
                f"{key} cannot change when a run continues ({why}); "
                "start a new run in another folder instead",
            )
    return cfg, stored


def changes(stored: checkpoint.Stored, cfg: run_config.RunConfig) -> dict[str, list[Any]]:
    """What an explicit ``--set`` changed at a restart: ``{key: [old, new]}`` (for run.json)."""
    return {k: [a, b] for k, (a, b) in differences(stored.meta["document"], cfg.document).items()}
