"""The shipped runs with a solved chemokine field: they validate, and a short run already
has its front on the expected side.

* ``runs/micropipette``: the PIP3 front faces the pipette tip (the read-outs' direction,
  ``stimulus.pipette_axis``, points from the cell centre to the tip).
* ``runs/self_generated_gradient``: the front faces the channel's open end (+x), away
  from the cell's own depletion zone behind it; without the breakdown there is none.

Measured read-outs of the full runs are in each case's README (section 6).
"""

from __future__ import annotations

from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest

from solver import cli, config
from solver.simulation import Simulation
from solver.time.loop import integrate

RUNS = Path(__file__).resolve().parents[2] / "runs"
MICROPIPETTE = RUNS / "micropipette" / "config.toml"
SELF_GENERATED = RUNS / "self_generated_gradient" / "config.toml"


def run(path: Path, overrides: list[str]) -> list[dict]:
    """Run in memory (no files) and return the metrics rows."""
    cfg = config.load(path, overrides)
    with Simulation(cfg, MPI.COMM_WORLD) as sim:
        result = integrate(sim, None)
        assert result.status == "completed", result.reason
        return sim.history


@pytest.mark.parametrize("path", [MICROPIPETTE, SELF_GENERATED], ids=lambda p: p.parent.name)
def test_run_file_validates(path):
    """`polarity check` (no capsys: the command's log handler would outlive its buffer)."""
    assert cli.main(["check", str(path)]) == 0
    cfg = config.load(path)
    assert {"medium", "boundary"} <= set(cfg.model.declared)
    assert cfg.model.species["L"].compartment == "medium"


def _front(row: dict, name: str) -> np.ndarray:
    return np.array([row[f"front_x_{name}"], row[f"front_y_{name}"]])


def test_micropipette_front_faces_the_pipette():
    """40 s of the 300-s run: the field has nearly built up (t90 of PI(P) is 40 s)."""
    last = run(MICROPIPETTE, ["time.end=40"])[-1]
    tip = np.array([15.972, 12.036])  # parameters.px, py
    for name in ("P", "Rac_m"):
        assert last[f"angle_{name}"] < 5, last
        assert _front(last, name) @ tip / np.linalg.norm(tip) > 0.99, last
        assert last[f"FB_{name}"] > 5 and last[f"PI_{name}"] > 0.3, last
    assert last["FB_T_m"] < 0.5 and last["angle_T_m"] > 175, last  # PTEN at the back
    assert last["FB_E"] > 1.3  # the occupancy at the front exceeds the back's by > 30 %


def test_self_generated_gradient_front_faces_the_open_end():
    """60 s of the 300-s run: the depletion zone is steady, the front is forming."""
    last = run(SELF_GENERATED, ["time.end=60"])[-1]
    assert last["FB_E"] > 1.1, last  # the cell's depletion: more attractant at the front
    for name in ("P", "Rac_m"):
        assert last[f"angle_{name}"] < 5, last
        assert last[f"front_x_{name}"] > 0.99, last  # +x: towards the open end
        assert last[f"FB_{name}"] > 2, last
    assert last["angle_T_m"] > 175, last


@pytest.mark.serial
def test_self_generated_gradient_needs_the_breakdown():
    """The control: without the breakdown the attractant stays uniform, no front forms
    (20 s: by then the breakdown's front has FB[P] 1.24; the control's PI(P) is 2.7e-7)."""
    history = run(SELF_GENERATED, ["time.end=20", "parameters.V_max=0"])
    assert max(row["PI_P"] for row in history[1:]) < 1e-5
    assert history[-1]["total_L"] == pytest.approx(history[0]["total_L"], rel=1e-9)
