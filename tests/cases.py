"""Small run files shared by the tests of the command line, sweeps, batch jobs and meshes.

A disk of radius 1 µm with one cytosol species c and one membrane species m
exchanged through the membrane: cheap (a few hundred unknowns), and conserving
c + m, so every run can be checked for mass as well as for its outputs.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: How closely two runs of one problem agree, relative to the fields' scale, when
#: their Krylov solves take different paths: a run continued from a checkpoint sets
#: up anew the preconditioner the uninterrupted run kept, and another rank count
#: partitions it differently. Each linear solve is exact to 1 % of Newton's
#: allowance (solver.fem.newton.Forcing): 1e-7 of the fields per step at the
#: default tolerances (rtol 1e-3, Newton fraction 0.01, T/dt = 5); measured at most
#: 5e-8 over the restart tests' runs of up to 40 steps (longer runs accumulate more,
#: 1.1e-6 over 600 steps). A wrong restart (history, time, step size) errs by the
#: time error, 1e-4 or more.
KRYLOV_AGREEMENT = 1e-6

_EXCHANGE_DISK = """
[mesh]
shape = "disk"
radius = "1 um"
size = "{size}"

[time]
end = "{end}"
dt = "{dt}"

[output]
every = "{every}"

[parameters]
k = "1 um/s"{parameters}

[species.c]
compartment = "cytosol"
D = "1 um^2/s"
initial = "1 + 0.5*x"

[species.m]
compartment = "membrane"
D = "0.1 um^2/s"
initial = 0.2

[reactions.bind]
equation = "c -> m"
rate = "{rate}"
{tables}"""


def exchange_disk(
    size: str = "0.25 um",
    end: str = "0.2 s",
    dt: str = "0.05 s",
    every: str = "0.1 s",
    rate: str = "k*c - 0.5*m",
    parameters: str = "",
    tables: str = "",
) -> str:
    """The text of the exchange run file; ``parameters`` and ``tables`` are added lines."""
    return _EXCHANGE_DISK.format(
        size=size,
        end=end,
        dt=dt,
        every=every,
        rate=rate,
        parameters=f"\n{parameters}" if parameters else "",
        tables=f"\n{tables}\n" if tables else "",
    )


_EXCHANGE_FILE = """
[mesh]
shape = "file"
file = "{mesh}"

[time]
end = "{end}"
dt = "0.01 s"
scheme = "euler"

[output]
every = "0.01 s"

[parameters]
k_on = "1 um/s"
k_off = "0.5 1/s"

[species.c]
compartment = "cytosol"
D = "{D}"
initial = "{c0}"

[species.m]
compartment = "membrane"
D = "0.1 um^2/s"
initial = "{m0}"

[reactions.binding]
equation = "c -> m"
rate = "k_on*c - k_off*m"
"""


def exchange_file(
    mesh: str, end: str, D: str = "1 um^2/s", c0: str = "1 + 0.1*x", m0: str = "0.2"
) -> str:
    """The same exchange on a mesh file (``mesh``: its path as the run file gives it),
    backward Euler with steps and outputs of 0.01 s to ``end``."""
    return _EXCHANGE_FILE.format(mesh=mesh, end=end, D=D, c0=c0, m0=m0)


def mount_tmpfs(folder: Path, options: str) -> str | None:
    """Mount a tmpfs with ``options`` (e.g. ``"size=400k"``, ``"ro,size=64k"``) on
    ``folder``: None, or why it cannot be done (not root, no mount command)."""
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"cannot run mount: {err}"
    return None if proc.returncode == 0 else f"mount failed: {proc.stderr.strip()}"


def with_changes(
    document: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    separator: str = "__",
    delete: Any = None,
) -> dict[str, Any]:
    """A deep copy of a run-file ``document`` with each ``a__b__c: value`` set.

    Missing tables on the way are created; a value that *is* ``delete`` removes the
    key instead. ``separator`` joins the keys of a path (``"."`` for dotted paths).
    """
    doc = copy.deepcopy(dict(document))
    for path, value in changes.items():
        *parents, last = path.split(separator)
        table = doc
        for key in parents:
            table = table.setdefault(key, {})
        if value is delete:
            del table[last]
        else:
            table[last] = value
    return doc
