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


def load(
    config_path: Path, out_dir: Path, overrides: list[str], comm: MPI.Comm
) -> tuple[run_config.RunConfig, checkpoint.Stored]:
    """The run configuration and the checkpoint of a run to continue (collective).

    Raises InputError without a checkpoint, or when the run file differs from the
    checkpoint's in a value that no ``--set`` of ``overrides`` names.
    """
    path = checkpoint.path_in(out_dir)
    exists = comm.bcast(path.is_file() if comm.rank == 0 else None)
    if not exists:
        raise InputError(
            str(out_dir),
            f"no checkpoint to restart from ({path} does not exist); "
            "run without --restart to start the run",
        )
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
    return cfg, stored


def changes(stored: checkpoint.Stored, cfg: run_config.RunConfig) -> dict[str, list[Any]]:
    """What an explicit ``--set`` changed at a restart: ``{key: [old, new]}`` (for run.json)."""
    return {k: [a, b] for k, (a, b) in differences(stored.meta["document"], cfg.document).items()}
