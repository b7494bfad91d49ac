"""polarity: bulk–surface reaction–diffusion for chemotactic cell polarity.

Species live in the cytosol (a volume mesh) and on the membrane (its boundary
surface), coupled by binding fluxes, and are solved with dolfinx on one mesh split
over MPI ranks. Units inside the solver: µm, s, µM (cytosol) and µM·µm (membrane
surface densities).

The public API (every name is imported on first use, so ``import solver`` is cheap)::

    import solver

    result = solver.run_case("runs/chemotaxis_2d/config.toml", "out", ["time.end=60"])
    results = solver.read_results("out")        # run.json, metrics.csv, field series
    print(results.status, results.metrics["PI_P"][-1])

    cfg = solver.load_config("runs/exchange_3d/config.toml", ["mesh.size=0.4"])
    with solver.Simulation(cfg) as sim:         # build the discrete system
        sim.step(0.1)                           # one step of 0.1 s, or:
        outcome = solver.integrate(sim)         # to time.end, in memory (no files)
        print(sim.totals())

Subpackages, one concept each: :mod:`solver.config` (run files, units),
:mod:`solver.model` (species, reactions, stimuli), :mod:`solver.mesh` (cell meshes),
:mod:`solver.fem` (forms, Newton problem, read-outs), :mod:`solver.time` (schemes,
stepper, run loop), :mod:`solver.io` (output files, checkpoints, readers),
:mod:`solver.inspect` (summary, figures, ParaView), :mod:`solver.sweep` (parameter
sweeps) and :mod:`solver.cli` (the ``polarity`` command).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way (conda, spack, docker images)
    pass

from solver.version import __version__

if TYPE_CHECKING:
    from solver.config import RunConfig
    from solver.config import from_dict as config_from_dict
    from solver.config import load as load_config
    from solver.errors import InputError
    from solver.io.folder import Results, read_results
    from solver.run import run_case
    from solver.simulation import Simulation
    from solver.time.loop import RunResult, integrate

#: public name -> (module, attribute)
_API = {
    "InputError": ("solver.errors", "InputError"),
    "RunConfig": ("solver.config", "RunConfig"),
    "RunResult": ("solver.time.loop", "RunResult"),
    "Results": ("solver.io.folder", "Results"),
    "Simulation": ("solver.simulation", "Simulation"),
    "config_from_dict": ("solver.config", "from_dict"),
    "integrate": ("solver.time.loop", "integrate"),
    "load_config": ("solver.config", "load"),
    "read_results": ("solver.io.folder", "read_results"),
    "run_case": ("solver.run", "run_case"),
}

__all__ = [
    "InputError",
    "Results",
    "RunConfig",
    "RunResult",
    "Simulation",
    "__version__",
    "config_from_dict",
    "integrate",
    "load_config",
    "read_results",
    "run_case",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    if name not in _API:
        raise AttributeError(f"module 'solver' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
