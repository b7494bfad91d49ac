"""Behaviours of the default chemotaxis model, asserted on coarse meshes.

Targets: docs/models.md, Expected behaviours.

The 2-D cross-section (runs/chemotaxis_2d) shows the same physics at a fraction of
the cost; direction sensing is also checked on the 3-D sphere. Targets are those of
docs/models.md (Expected behaviours); the meshes are coarse but resolve the fronts
(h ≈ 0.5 µm, front width ≈ 4 µm), and the time step (1 s, BDF2) is below the fastest time scale's
accuracy limit once the stimulus is on for more than a few seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

from mpi4py import MPI

import pytest

from solver import config
from solver.simulation import Simulation
from solver.time.loop import integrate

RUNS = Path(__file__).resolve().parents[2] / "runs"
CASE_2D = RUNS / "chemotaxis_2d" / "config.toml"
CASE_3D = RUNS / "chemotaxis" / "config.toml"
COARSE = ["mesh.size=0.5", "time.dt=1", "output.every=10"]


def run(path: Path, overrides: list[str], events: list[dict] | None = None) -> list[dict]:
    """Run in memory and return the metrics rows (one per output time)."""
    cfg_doc = config.load(path, overrides).document
    if events is not None:
        cfg_doc["stimulus"]["chemokine"]["events"] = events
    cfg = config.from_dict(cfg_doc, str(path), path.parent)
    with Simulation(cfg, MPI.COMM_WORLD) as sim:
        result = integrate(sim, None)
        assert result.status == "completed", result.reason
        return sim.history


def at(history: list[dict], t: float) -> dict:
    return min(history, key=lambda row: abs(row["t"] - t))


#: the last output before the gradient is removed at 300 s (the step ending at 300 s
#: already sees the uniform stimulus: implicit steps take the stimulus at their end)
BEFORE = 290


@pytest.fixture(scope="module")
def gradient_then_removal():
    """10 % oblique gradient for 300 s, then uniform at the mean for 300 s."""
    return run(CASE_2D, [*COARSE, "time.end=600"], [{"at": "300 s", "remove": True}])


def test_direction_sensing(gradient_then_removal):
    row = at(gradient_then_removal, BEFORE)
    assert row["angle_P"] < 5 and row["angle_Rac_m"] < 5
    assert row["PI_P"] > 0.1  # a real front, not noise


def test_amplification(gradient_then_removal):
    row = at(gradient_then_removal, BEFORE)
    assert row["loggain_P"] >= 10
    assert row["FB_P"] >= 5


def test_pten_excluded_from_the_front(gradient_then_removal):
    row = at(gradient_then_removal, BEFORE)
    assert row["corr_P_T_m"] < -0.8
    assert row["FB_T_m"] < 0.2


def test_rho_at_the_back(gradient_then_removal):
    row = at(gradient_then_removal, BEFORE)
    assert row["corr_Rac_m_Rho_m"] < -0.9
    assert row["FB_Rho_m"] < 0.3


def test_persistence_after_removal(gradient_then_removal):
    before, after = at(gradient_then_removal, BEFORE), at(gradient_then_removal, 600)
    assert after["PI_Rac_m"] / before["PI_Rac_m"] >= 0.9
    assert after["PI_P"] / before["PI_P"] >= 0.9


def test_pools_conserved(gradient_then_removal):
    pools = [k for k in gradient_then_removal[0] if k.startswith("pool_")]
    assert len(pools) == 4
    for k in pools:
        first = gradient_then_removal[0][k]
        drift = max(abs(row[k] - first) for row in gradient_then_removal) / first
        assert drift <= 1e-10, (k, drift)


@pytest.mark.serial
def test_adaptation_to_a_uniform_step():
    """c: 0 → K_D uniformly at 100 s: PIP3 peaks within seconds and returns near rest.

    Adaptation error AE = |X(∞) − X_rest| / (X_peak − X_rest) of the mean PIP3 below
    0.1 (docs/models.md, Expected behaviours; measured 0.06: Rho activation by the global
    inhibitor is not     adaptive, so the mean settles 7 % below rest), and no front (PI < 1e-3).
    """
    history = run(
        CASE_2D,
        [
            *COARSE,
            "time.end=300",
            "output.every=1",
            "stimulus.chemokine.mean=0",
            "stimulus.chemokine.steepness=0",
        ],
        [{"at": "100 s", "mean": "25 nM"}],
    )
    P = [row["total_P"] for row in history]
    rest = at(history, 99)["total_P"]  # the step acts from the step ending at 100 s
    k = max(range(len(P)), key=P.__getitem__)
    peak_time = history[k]["t"] - 100
    assert 1 <= peak_time <= 15, peak_time
    adaptation_error = abs(P[-1] - rest) / (P[k] - rest)
    assert P[k] > 1.5 * rest and adaptation_error < 0.1, adaptation_error
    assert max(row["PI_P"] for row in history) < 1e-3


@pytest.mark.serial
@pytest.mark.parametrize("level", [0.0, 0.025])
def test_no_polarisation_at_rest_with_noise(level):
    """No chemokine, or a uniform K_D, and 5 % noise on every membrane species: the
    sphere stays unpolarised, PI(P) < 1e-3 after 600 s (docs/models.md, Expected behaviours).

    On the sphere (size 1 µm, 306 membrane nodes) the noise gives PI ≈ 1e-3 at t = 0.
    (The 2-D disk's rest state is weakly unstable: see runs/chemotaxis_2d/README.md.)
    """
    noise = [f"species.{s}.noise=0.05" for s in ("K_m", "T_m", "P", "Rac_m", "Rho_m")]
    history = run(
        CASE_3D,
        [
            "mesh.size=1.0",
            "time.adaptive=false",
            "time.dt=2",
            "time.end=600",
            "output.every=100",
            f"stimulus.chemokine.mean={level!r}",
            "stimulus.chemokine.steepness=0",
            *noise,
        ],
    )
    assert history[0]["PI_P"] > 5e-4  # the noise is there at the start
    assert history[-1]["PI_P"] < 1e-3


@pytest.mark.serial
@pytest.mark.parametrize("level, polarises", [(0.1, True), (1.0, True), (10.0, False)])
def test_concentration_window(level, polarises):
    """Polarises at 0.1 and 1 K_D, not at 10 K_D (receptors saturate)."""
    history = run(
        CASE_2D,
        [*COARSE, "time.end=300", "output.every=50", f"stimulus.chemokine.mean={level * 0.025!r}"],
    )
    row = history[-1]
    if polarises:
        assert row["FB_P"] >= 5 and row["angle_P"] < 5
    else:
        assert row["FB_P"] < 2


@pytest.mark.serial
def test_direction_sensing_3d():
    """The 5-µm sphere in a 10 % gradient oblique to every mesh axis: front within 5°."""
    history = run(
        CASE_3D,
        ["mesh.size=1.0", "time.adaptive=false", "time.dt=1", "time.end=300", "output.every=50"],
    )
    row = history[-1]
    assert row["angle_P"] < 5 and row["angle_Rac_m"] < 5
    assert row["FB_P"] >= 5 and row["corr_Rac_m_Rho_m"] < -0.9
    assert not math.isnan(row["loggain_P"]) and row["loggain_P"] >= 10
