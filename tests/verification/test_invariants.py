"""V5: conserved pools are constant to 1e-10 (relative) at every step.

Two models with a nonlinear membrane exchange and no sources, each with backward
Euler and BDF2, 100 steps:

* ``runs/exchange_3d/config.toml`` (binding with positive feedback, c + m), coarse mesh;
* the bulk–surface wave-pinning model (docs/models.md, Bulk-surface wave pinning;
  Cusseddu et al. 2019): membrane a, cytosol b, f = b (k0 + γ a²/(K² + a²)) − β a, pool a + b.

With the engine's default Newton tolerances (snes_atol 1e-13, snes_rtol 1e-10) the
drift measured per step is ~1e-15; nothing had to be tightened.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.config.runfile import from_dict, load
from solver.simulation import Simulation
from tests.verification.common import COMM, document, relative_pool_change, say

ROOT = Path(__file__).resolve().parents[2]
STEPS = 100
LIMIT = 1e-10


def wave_pinning_document(scheme: str) -> dict:
    """P2 with the BWSP22 parameters (k0 = 0.1, γ = 1, K = 0.3, β = 1, D_a = 0.005), D_b = 1."""
    return document(
        "sphere",
        0.3,
        {
            "a": {
                "compartment": "membrane",
                "D": 0.005,
                "initial": "exp(-10*((x - 0.85)**2 + y**2 + z**2))",
            },
            "b": {"compartment": "cytosol", "D": 1.0, "initial": 1.0},
        },
        {
            "exchange": {
                "equation": "b -> a",
                "rate": "b*(k0 + gamma*a**2/(K**2 + a**2)) - beta*a",
            }
        },
        end=STEPS * 0.05,
        dt=0.05,
        scheme=scheme,
        parameters={"k0": 0.1, "gamma": 1.0, "K": 0.3, "beta": 1.0},
    )


def _config(model: str, scheme: str):
    if model == "exchange_3d":
        path = ROOT / "runs" / "exchange_3d" / "config.toml"
        return load(path, ["mesh.size=0.3", f"time.scheme='{scheme}'"])
    return from_dict(wave_pinning_document(scheme), source="<P2 wave pinning>")


@pytest.mark.parametrize("scheme", ["euler", "bdf2"])
@pytest.mark.parametrize("model", ["exchange_3d", "wave_pinning_P2"])
def test_v5_pools_are_conserved_at_every_step(model, scheme):
    cfg = _config(model, scheme)
    assert cfg.time.scheme == scheme
    sim = Simulation(cfg, COMM)
    start = previous = sim.totals()
    pools = [k for k in start if k.startswith("pool_")]
    assert pools, f"{model}: no conserved pool found in {list(start)}"
    worst = dict.fromkeys(pools, 0.0)
    for k in range(STEPS):
        info = sim.step(cfg.time.dt)
        assert info.converged, f"{model} {scheme}: step {k}: {info.reason}"
        now = sim.totals()
        for pool, change in relative_pool_change(previous, now).items():
            worst[pool] = max(worst[pool], change)
        previous = now
    drift = relative_pool_change(start, previous)
    # not vacuous: the exchange moved a noticeable share of the pool between compartments
    species = sorted(k for k in start if k.startswith("total_"))
    moved = max(abs(previous[k] - start[k]) for k in species) / max(start[p] for p in pools)
    say(
        f"V5 {model} {scheme}, {STEPS} steps of {cfg.time.dt:g} ({COMM.size} rank(s)): "
        f"worst per-step relative change {worst}, over the run {drift}, moved {moved:.3f}"
    )
    sim.problem.destroy()
    assert all(v <= LIMIT for v in worst.values()), worst
    assert all(v <= LIMIT for v in drift.values()), drift
    assert moved > 1e-2, moved
