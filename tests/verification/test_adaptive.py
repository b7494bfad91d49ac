"""Adaptive time stepping: the tolerance is met, and transients cost fewer steps.

The error of a run is measured in the controller's own norm, the weighted
root-mean-square ‖(U − U_ref)/(atol + rtol·|U_ref|)‖ over all unknowns, against a
reference solved with a fixed step 100× below the tolerance's step on the same mesh
(so only the time error is measured). See README.md in this folder.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest

from solver.config.runfile import from_dict, load
from solver.simulation import Simulation
from solver.time.loop import integrate
from tests.verification.common import COMM, restart_and_step, say
from tests.verification.test_coupled_parabolic import v2_document


def _state(sim: Simulation) -> list[np.ndarray]:
    return [b.u.x.array[: b.u.x.index_map.size_local * b.u.x.block_size].copy() for b in sim.blocks]


def _weighted(a: list[np.ndarray], b: list[np.ndarray], rtol: float, atol: float) -> float:
    pairs = zip(a, b, strict=True)
    total = sum(float(np.sum(((x - y) / (atol + rtol * np.abs(y))) ** 2)) for x, y in pairs)
    count = sum(x.size for x in a)
    total, count = COMM.allreduce(np.array([total, count]), op=MPI.SUM)
    return math.sqrt(total / count)


def _with_time(sim: Simulation, **changes) -> None:
    """Change ``[time]`` values of a built simulation (the mesh and forms stay)."""
    sim.config = dataclasses.replace(
        sim.config, time=dataclasses.replace(sim.config.time, **changes)
    )


def test_adaptive_v2_meets_its_tolerance():
    """V2 on the disk (h = 0.2) to T = 1: final error within a factor 3 of the tolerance."""
    doc = v2_document("disk", "bdf2", size=0.2)
    doc["time"].update(end=1.0, dt=1e-3, adaptive=True, reject_negative=False)
    doc["output"]["every"] = 1.0
    with Simulation(from_dict(doc), COMM) as sim:
        restart_and_step(sim, 1 / 256, 1.0)
        reference = _state(sim)
        lines = ["== V2 disk h = 0.2, adaptive BDF2 to T = 1: weighted final error =="]
        lines.append(f"{'tol':>8} {'steps':>6} {'error/tol':>10}")
        for tol in (1e-3, 1e-4):
            _with_time(sim, rtol=tol, atol=tol)
            sim.set_initial()
            result = integrate(sim, None)
            assert result.status == "completed", result.reason
            error = _weighted(_state(sim), reference, tol, tol)
            lines.append(f"{tol:8.0e} {result.steps:6d} {error:10.3f}")
            assert 1 / 10 <= error <= 3, (tol, error)
        say("\n".join(lines))


CASE = Path(__file__).parents[2] / "runs" / "chemotaxis_2d" / "config.toml"
SWITCH = 10.0  # s: the chemokine is switched on
END = 40.0


def _trajectory(sim: Simulation) -> list[list[np.ndarray]]:
    """Run ``sim`` from its initial values; its states at the output times."""
    states = []
    observe = sim.observe

    def record():
        states.append(_state(sim))
        return observe()

    sim.observe = record
    sim.set_initial()
    try:
        result = integrate(sim, None)
    finally:
        del sim.observe
    assert result.status == "completed", result.reason
    return states, result.steps


@pytest.mark.slow
def test_a_switched_on_stimulus_costs_fewer_steps_than_fixed_steps_of_equal_accuracy():
    """The 2-D chemotaxis model, chemokine switched on at t = 10 s (τ_E = 1 s).

    Error: the largest weighted norm (rtol = 1e-3, atol = 1e-4) over the output times
    (every 2 s) against a fixed-step reference (dt = 1/128 s). The fixed step is halved
    from 1 s until it is as accurate as the adaptive run.
    """
    rtol, atol = 1e-3, 1e-4
    overrides = [
        "mesh.size=2",
        f"time.end={END}",
        "output.every=2",
        "stimulus.chemokine.mean=0",
        f'stimulus.chemokine.events=[{{at = "{SWITCH} s", mean = "25 nM"}}]',
        "time.adaptive=true",
        f"time.rtol={rtol}",
        f"time.atol={atol}",
        "time.dt=0.01",
    ]
    with Simulation(load(CASE, overrides), COMM) as sim:
        _with_time(sim, adaptive=False, dt=1 / 128)
        reference, _ = _trajectory(sim)

        def error(states) -> float:
            return max(_weighted(a, b, rtol, atol) for a, b in zip(states, reference, strict=True))

        _with_time(sim, adaptive=True, dt=0.01)
        states, adaptive_steps = _trajectory(sim)
        target = error(states)
        lines = [
            f"== chemokine on at {SWITCH:g} s, 2-D: steps to equal accuracy ==",
            f"adaptive (rtol {rtol:g}, atol {atol:g}): {adaptive_steps} steps, error {target:.3f}",
        ]
        dt, fixed_steps = 1.0, None
        while dt >= 1 / 64:
            _with_time(sim, adaptive=False, dt=dt)
            states, steps = _trajectory(sim)
            e = error(states)
            lines.append(f"fixed dt = {dt:g} s: {steps} steps, error {e:.3f}")
            if e <= target:
                fixed_steps = steps
                break
            dt /= 2
        say("\n".join(lines))
        assert target <= 3, "the adaptive run misses its tolerance"
        assert fixed_steps is not None, "no fixed step down to 1/64 s was as accurate"
        assert adaptive_steps < fixed_steps
