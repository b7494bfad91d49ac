"""The preset cases (docs/models.md, Presets) reproduce their known behaviour (Expected behaviours).

- P1 wave pinning (runs/wave_pinning): a transient local rise of k0 launches a front that
  pins; the pinned state persists after the stimulus is gone, PI(end)/PI(switch) >= 0.9.
- P2 bulk-surface wave pinning (runs/bulk_surface_wave_pinning): the initial bump spreads
  into a cap that pins and persists.
- P3 LEGI (runs/legi): perfect adaptation to a uniform step c: 0 -> K_D (AE < 0.02, peak of
  the mean R_m within 3-10 s), and no amplification of a 10 % gradient (log-gain <= 1).
- Every conserved pool is constant to 1e-10 relative over every run.

Each test runs the shipped run file in memory, made cheaper by ``--set``-style overrides
(coarser mesh, shorter end, coarser output) where the physics stays the same. All run
serially and under ``mpiexec -n 2``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from solver import config
from solver.simulation import Simulation
from solver.time.loop import integrate

RUNS = Path(__file__).resolve().parents[2] / "runs"
WAVE_PINNING = RUNS / "wave_pinning" / "config.toml"
BULK_SURFACE = RUNS / "bulk_surface_wave_pinning" / "config.toml"
LEGI = RUNS / "legi" / "config.toml"

MASS_RTOL = 1e-10  # docs/numerics.md, Invariants (V5)


def run(path: Path, overrides: list[str], comm) -> tuple[list[dict[str, float]], float]:
    """Run ``path`` with ``overrides`` in memory: the metrics rows and the membrane area."""
    cfg = config.load(path, overrides)
    with Simulation(cfg, comm) as sim:
        result = integrate(sim)
        assert result.status == "completed", result.reason
        area = sim.readouts.area if sim.readouts is not None else float("nan")
        return sim.history, area


def column(history: list[dict[str, float]], name: str) -> np.ndarray:
    return np.array([row[name] for row in history])


def at(history: list[dict[str, float]], name: str, t: float) -> float:
    """Value of column ``name`` at output time ``t``."""
    times = column(history, "t")
    i = int(np.argmin(np.abs(times - t)))
    assert abs(times[i] - t) < 1e-9, f"no output at t = {t}"
    return history[i][name]


def assert_pools_conserved(history: list[dict[str, float]]) -> None:
    pools = [k for k in history[0] if k.startswith("pool_")]
    assert pools, "no conserved pool found"
    for name in pools:
        values = column(history, name)
        drift = np.max(np.abs(values - values[0])) / abs(values[0])
        assert drift <= MASS_RTOL, f"{name} drifts by {drift:.3g} (relative)"


# -- P1 wave pinning ---------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol, switch, end",
    [
        # the run file's own protocol: k0 raised near x = +R for 0-20 s, then removed
        ("transient", 20.0, 150.0),
        # docs/models.md, Expected behaviours: polarise (stimulus on until pinned), then remove
        ("pinned_then_removed", 100.0, 200.0),
    ],
)
def test_wave_pinning_front_persists_after_stimulus(protocol, switch, end, comm):
    history, _ = run(
        WAVE_PINNING,
        [
            "mesh.size=0.2",
            f"time.end={end}",
            "output.every=10",
            f"stimulus.stim.events=[{{at={switch}, washout=true}}]",
        ],
        comm,
    )
    pi_switch = at(history, "PI_u", switch)
    pi_end = history[-1]["PI_u"]
    assert pi_switch > 0.3, f"no front at the switch: PI = {pi_switch:.3g}"
    assert pi_end / pi_switch >= 0.9, f"PI(end)/PI(switch) = {pi_end / pi_switch:.3f}"
    # pinned: the front no longer moves over the last 50 s
    assert abs(pi_end - at(history, "PI_u", end - 50)) <= 1e-3 * pi_end
    assert_pools_conserved(history)


def test_wave_pinning_subthreshold_stimulus_decays(comm):
    """A too-short rise of k0 (5 s) does not launch a front: the homogeneous state is stable."""
    history, _ = run(
        WAVE_PINNING,
        [
            "mesh.size=0.2",
            "time.end=100",
            "output.every=10",
            "stimulus.stim.events=[{at=5, washout=true}]",
        ],
        comm,
    )
    assert history[-1]["PI_u"] < 1e-3
    assert_pools_conserved(history)


# -- P2 bulk-surface wave pinning -------------------------------------------------------


def test_bulk_surface_wave_pinning_cap_pins_and_persists(comm):
    history, _ = run(BULK_SURFACE, ["mesh.size=0.2", "time.dt=0.5", "output.every=10"], comm)
    pi = column(history, "PI_a")
    cap = column(history, "cap_fraction_a")
    # the cap first spreads (a front) ...
    assert cap[-1] > 2 * at(history, "cap_fraction_a", 10.0)
    # ... then pins and persists: PI stays within 10 % over the last 40 time units
    assert pi[-1] / at(history, "PI_a", 60.0) >= 0.9
    assert abs(pi[-1] - at(history, "PI_a", 90.0)) <= 1e-2 * pi[-1]
    assert pi[-1] > 0.1
    assert_pools_conserved(history)


# -- P3 LEGI -------------------------------------------------------------------------


def test_legi_adapts_to_uniform_step(comm):
    """Uniform step c: 0 -> K_D at t = 0 (no gradient): AE < 0.02, peak of mean R_m in 3-10 s."""
    history, area = run(
        LEGI,
        [
            "stimulus.chemokine.steepness=0",
            "time.end=100",
            "output.every=0.5",
        ],
        comm,
    )
    t = column(history, "t")
    mean_rm = column(history, "total_R_m") / area
    rest, final = mean_rm[0], mean_rm[-1]
    i = int(np.argmax(mean_rm))
    peak = mean_rm[i]
    assert peak > 1.5 * rest, "no transient response"
    ae = abs(final - rest) / (peak - rest)
    assert ae < 0.02, f"adaptation error AE = {ae:.4f}"
    assert 3.0 <= t[i] <= 10.0, f"peak of mean R_m at t = {t[i]} s"
    assert history[-1]["PI_R_m"] < 1e-3  # uniform stimulus: no polarity
    assert_pools_conserved(history)


def test_legi_does_not_amplify_gradient(comm):
    """s = 10 % at c0 = K_D: log-gain of R_m <= 1 at steady state, front towards the source."""
    history, _ = run(LEGI, ["time.end=100", "output.every=10"], comm)
    last = history[-1]
    assert last["FB_R_m"] > 1.0  # R_m follows the gradient ...
    assert last["loggain_R_m"] <= 1.0, f"log-gain {last['loggain_R_m']:.3f}"  # ... without gain
    assert abs(last["loggain_E"] - 1.0) < 1e-3  # the excitor is the occupancy: gain 1
    assert last["angle_R_m"] < 5.0
    assert_pools_conserved(history)


# -- conservation on every preset, on its own mesh and time step --------------------------


@pytest.mark.parametrize("path", [WAVE_PINNING, BULK_SURFACE, LEGI], ids=lambda p: p.parent.name)
def test_preset_pools_conserved(path, comm):
    dt = config.load(path).time.dt
    history, _ = run(path, [f"time.end={20 * dt!r}", f"output.every={dt!r}"], comm)
    assert len(history) == 21
    assert_pools_conserved(history)
