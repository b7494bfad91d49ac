"""Parameter sweeps: members equal separate runs, failures are recorded, array mode."""

from __future__ import annotations

import json
import math

from mpi4py import MPI

import pytest

from solver import cli
from solver import config as run_config
from solver.errors import InputError
from solver.simulation import Simulation
from solver.sweep import ensemble as sweep
from solver.sweep.plan import SweepPlan, parse_vary, split_values
from solver.sweep.slurm import slurm_seconds
from solver.time.loop import integrate
from tests.cases import KRYLOV_AGREEMENT, exchange_disk

WORLD = MPI.COMM_WORLD

# A 2-D cell (disk of radius 1 µm) with a nonlinear exchange: cheap, and the final
# state depends on both varied values.
RUN_FILE = exchange_disk(
    size="0.3 um",
    end="0.4 s",
    dt="0.1 s",
    every="0.2 s",
    rate="k*c*K/(K + c) - 0.5*m",  # Michaelis-Menten binding, k in um/s
    parameters='K = "0.5 uM"',
    tables='[metrics]\nspecies = ["m"]',
)

K_VALUES = ["0.5", "1", "2", "4"]


def write_config(folder):
    path = folder / "config.toml"
    if WORLD.rank == 0:
        path.write_text(RUN_FILE)
    WORLD.barrier()
    return path


def test_values_split_at_top_level_commas_only():
    assert split_values("0.5,1, 2") == ["0.5", "1", "2"]
    assert split_values("[1,0],[0,1]") == ["[1,0]", "[0,1]"]
    assert split_values("'2 1/s',\"3, 4\"") == ["'2 1/s'", '"3, 4"']


@pytest.mark.parametrize(
    "items, expected",
    [
        ([], "at least one --vary"),
        (["parameters.k"], "expected key=v1,v2"),
        (["parameters..k=1,2"], "malformed key"),
        (["parameters.k=1,,2"], "empty value"),
        (["parameters.k=1", "parameters.k=2"], "varied twice"),
    ],
)
def test_malformed_vary_is_an_input_error(items, expected):
    with pytest.raises(InputError, match=expected):
        parse_vary(items)


def test_members_are_the_cartesian_product_in_row_major_order(tmp_path):
    plan = SweepPlan.from_args(tmp_path / "c.toml", ["time.end=1"], ["a.x=1,2,3", "b.y=u,v"])
    assert plan.size == 6
    assert plan.values(0) == {"a.x": "1", "b.y": "u"}
    assert plan.values(1) == {"a.x": "1", "b.y": "v"}
    assert plan.values(5) == {"a.x": "3", "b.y": "v"}
    assert plan.overrides(3) == ["time.end=1", "a.x=2", "b.y=v"]
    with pytest.raises(InputError, match="member"):
        plan.values(6)


def _separate_run(path, k: str) -> dict[str, float]:
    cfg = run_config.load(path, [f"parameters.k={k}"])
    with Simulation(cfg, WORLD) as sim:
        result = integrate(sim, None)
    assert result.status == "completed"
    return result.final


@pytest.mark.parametrize("group_size", sorted({1, WORLD.size}))
def test_ensemble_equals_separate_runs(tmp_shared, group_size):
    """Serially one group runs all 4 members; on 2 ranks, 2 groups of 1 or 1 group of 2."""
    path = write_config(tmp_shared)
    out = tmp_shared / "sweep"
    argv = ["sweep", str(path), "--vary", f"parameters.k={','.join(K_VALUES)}", "-o", str(out)]
    assert cli.main([*argv, "--group-size", str(group_size)]) == 0
    rows = sweep.read_table(out / sweep.TABLE)
    assert [r["member"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["parameters.k"] for r in rows] == K_VALUES
    assert {r["status"] for r in rows} == {"completed"}
    # on 2 ranks a group of 1 solves on another partition than the separate run: the
    # Krylov solves take other paths (tests.cases.KRYLOV_AGREEMENT); the read-outs are
    # contrasts of order 0.01, which take that difference relative to themselves
    compared = 0
    for row, k in zip(rows, K_VALUES, strict=True):
        expected = _separate_run(path, k)
        for key, value in expected.items():
            if key.startswith(("total_", "pool_", "PI_", "FB_")) or key == "t":
                tol = KRYLOV_AGREEMENT * (100 if key.startswith(("PI_", "FB_")) else 1)
                assert math.isclose(float(row[key]), value, rel_tol=tol, abs_tol=1e-12), key
                compared += 1
    assert compared >= 4 * 4
    # the members differ: the sweep did vary k
    assert len({round(float(r["total_m"]), 10) for r in rows}) == 4
    for i in range(4):
        assert (out / f"member_{i:03d}" / "run.json").is_file()
        record = json.loads((out / "members" / f"{i:03d}.json").read_text())
        assert record["status"] == "completed" and record["values"] == {"parameters.k": K_VALUES[i]}


def test_members_of_unequal_length_all_complete(tmp_shared):
    """On 2 ranks, group 0 gets 1 + 2 steps and group 1 gets 8 + 4: neither waits."""
    path = write_config(tmp_shared)
    out = tmp_shared / "sweep"
    argv = ["sweep", str(path), "--vary", "time.end=0.1,0.8,0.2,0.4", "-o", str(out)]
    assert cli.main([*argv, "--set", "output.every=0.1"]) == 0
    rows = sweep.read_table(out / sweep.TABLE)
    assert [float(r["t"]) for r in rows] == pytest.approx([0.1, 0.8, 0.2, 0.4])
    assert [r["status"] for r in rows] == ["completed"] * 4


def test_a_bad_member_is_recorded_and_the_others_complete(tmp_shared, capsys):
    path = write_config(tmp_shared)
    out = tmp_shared / "sweep"
    argv = ["sweep", str(path), "--vary", "parameters.k=1,2", "--vary", "species.m.D=0.1,-1"]
    assert cli.main([*argv, "-o", str(out)]) == cli.EXIT_FAILED
    rows = sweep.read_table(out / sweep.TABLE)
    status = {(r["parameters.k"], r["species.m.D"]): r["status"] for r in rows}
    assert status == {
        ("1", "0.1"): "completed",
        ("1", "-1"): "invalid",
        ("2", "0.1"): "completed",
        ("2", "-1"): "invalid",
    }
    for r in rows:
        if r["status"] == "invalid":
            assert "species.m.D" in r["reason"] and "negative" in r["reason"]
            assert r["total_m"] == ""
        else:
            assert r["reason"] == "" and float(r["total_m"]) > 0
    assert not (out / "member_001").exists()
    if WORLD.rank == 0:
        assert "invalid: " in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--vary", "parameters.k=1,2", "--group-size", "3"], "--group-size"),
        (["--vary", "parameters.k"], "--vary"),
        (["--vary", "nosuchtable.k=1,2"], "no member is valid"),
    ],
)
def test_a_malformed_sweep_exits_2_and_writes_nothing(tmp_shared, capsys, extra, expected):
    path = write_config(tmp_shared)
    out = tmp_shared / "sweep"
    assert cli.main(["sweep", str(path), *extra, "-o", str(out)]) == cli.EXIT_INPUT
    assert not out.exists()
    if WORLD.rank == 0:
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err and err.count("\n") == 1


def test_an_occupied_output_folder_is_refused(tmp_shared):
    path = write_config(tmp_shared)
    out = tmp_shared / "sweep"
    if WORLD.rank == 0:
        out.mkdir()
        (out / "keep").write_text("x")
    WORLD.barrier()
    assert cli.main(["sweep", str(path), "--vary", "parameters.k=1", "-o", str(out)]) == 2
    assert (out / "keep").is_file()


def test_slurm_array_scripts_member_tasks_and_collection(tmp_shared):
    path = write_config(tmp_shared)
    out = tmp_shared / "sweep"
    argv = ["sweep", str(path), "--vary", "parameters.k=1,2,4", "-o", str(out)]
    slurm = ["--slurm", "--ranks", "2", "--time", "00:20:00", "--sbatch=--partition=debug"]
    assert cli.main([*argv, *slurm]) == 0
    script = (out / "sweep.sbatch").read_text()
    assert "#SBATCH --array=0-2" in script and "#SBATCH --ntasks=2" in script
    assert "#SBATCH --time=00:20:00" in script and "#SBATCH --partition=debug" in script
    assert '--member "$SLURM_ARRAY_TASK_ID"' in script and "parameters.k=1,2,4" in script
    assert "--collect" in (out / "collect.sbatch").read_text()
    assert "--dependency=afterany:" in (out / "submit.sh").read_text()
    assert not (out / sweep.TABLE).exists()
    # what one array task does, then the collection before the others have run
    assert cli.main([*argv, "--member", "1"]) == 0
    assert (out / "member_001" / "run.json").is_file()
    assert cli.main([*argv, "--collect"]) == cli.EXIT_FAILED
    rows = sweep.read_table(out / sweep.TABLE)
    assert [r["status"] for r in rows] == ["missing", "completed", "missing"]
    assert float(rows[1]["total_m"]) > 0


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 5400), ("1:30", 90), ("02:00:00", 7200), ("1-12", 129600), ("1-2:03:04", 93784)],
)
def test_slurm_time_limits(text, seconds):
    assert slurm_seconds(text) == seconds


@pytest.mark.parametrize("text", ["2h", "x", "1:2:3:4", "-5"])
def test_a_malformed_slurm_time_is_an_input_error(text):
    with pytest.raises(InputError, match="--time"):
        slurm_seconds(text)


def test_a_stopped_sweep_continues_to_the_same_table(tmp_shared, monkeypatch):
    """Members stopped after 2 steps (as by --wall-time) and members never started
    (the budget gone) are continued by --restart; an invalid member stays invalid; the
    table equals that of an uninterrupted sweep."""
    from solver.time.loop import RunLoop

    path = write_config(tmp_shared)
    argv = ["sweep", str(path), "--vary", "parameters.k=1,2,-1x,4", "-o"]
    assert cli.main([*argv, str(tmp_shared / "full")]) == cli.EXIT_FAILED  # -1x is invalid
    full = sweep.read_table(tmp_shared / "full" / sweep.TABLE)

    original = RunLoop._stop_reason

    def stop_after_two_steps(loop):
        original(loop)
        return "test stop" if loop.restart is None and loop.steps >= 2 else None

    calls = []

    def one_member_per_rank(deadline, comm):
        calls.append(1)
        return "test budget" if len(calls) > 1 else None

    monkeypatch.setattr(RunLoop, "_stop_reason", stop_after_two_steps)
    monkeypatch.setattr(sweep, "start_refusal", one_member_per_rank)
    out = tmp_shared / "part"
    assert cli.main([*argv, str(out)]) == cli.EXIT_STOPPED
    rows = sweep.read_table(out / sweep.TABLE)
    assert {r["status"] for r in rows} == {"stopped"}
    started = [r for r in rows if not r["reason"].startswith("not started")]
    assert len(started) == WORLD.size and all(r["steps"] == "2" for r in started)
    assert all(float(r["t"]) == pytest.approx(0.2) for r in started)
    monkeypatch.undo()

    # another sweep in the same folder is refused; the same one continues
    assert (
        cli.main(["sweep", str(path), "--vary", "parameters.k=1,2", "--restart", "-o", str(out)])
        == 2
    )
    assert cli.main([*argv, str(out), "--restart"]) == cli.EXIT_FAILED
    rows = sweep.read_table(out / sweep.TABLE)
    assert [r["status"] for r in rows] == [r["status"] for r in full]
    assert [r["status"] for r in rows] == ["completed", "completed", "invalid", "completed"]
    # a continued member sets its preconditioner up anew where the uninterrupted one
    # kept its own: its fields, totals and pools agree to the linear solves' accuracy;
    # a polarity index, a contrast of order 0.03, takes that difference relative to
    # itself
    for a, b in zip(rows, full, strict=True):
        assert a["steps"] == b["steps"]
        for key in b:
            if key.startswith(("total_", "pool_", "PI_")) and b[key]:
                tol = KRYLOV_AGREEMENT * (100 if key.startswith("PI_") else 1)
                assert math.isclose(float(a[key]), float(b[key]), rel_tol=tol), key
    for i in (0, 1, 3):
        record = json.loads((out / f"member_{i:03d}" / "run.json").read_text())
        assert record["status"] == "completed"
    # nothing left to do: the finished members are kept as they are
    assert cli.main([*argv, str(out), "--restart"]) == cli.EXIT_FAILED
    assert sweep.read_table(out / sweep.TABLE) == rows


def test_an_array_task_continues_its_member(tmp_shared, monkeypatch):
    """A task stopped with exit 75 runs again with --restart (as after its requeue)."""
    from solver.time.loop import RunLoop

    path = write_config(tmp_shared)
    out = tmp_shared / "sweep"
    argv = ["sweep", str(path), "--vary", "parameters.k=1,2", "-o", str(out)]
    assert cli.main([*argv, "--slurm", "--time", "00:20:00"]) == 0
    script = (out / "sweep.sbatch").read_text()
    assert '--member "$SLURM_ARRAY_TASK_ID" --restart)' in script and "#SBATCH --requeue" in script
    assert 'scontrol requeue "$job"' in script and '"${stop[@]}"' in script
    original = RunLoop._stop_reason
    monkeypatch.setattr(
        RunLoop,
        "_stop_reason",
        lambda loop: original(loop) or ("test stop" if loop.steps >= 1 else None),
    )
    task = [*argv, "--member", "1", "--restart", "--wall-time", "900s"]
    assert cli.main(task) == cli.EXIT_STOPPED
    monkeypatch.undo()
    assert cli.main(task) == 0
    record = json.loads((out / "member_001" / "run.json").read_text())
    assert record["status"] == "completed" and len(record["restarts"]) == 1
    assert cli.main(task) == 0  # a task run again after completion does nothing
    assert len(json.loads((out / "member_001" / "run.json").read_text())["restarts"]) == 1
