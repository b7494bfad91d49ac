"""Output folders that cannot be one: one line, exit code 2, before anything is built.

A file, a folder under a file, a system folder (``/proc``, ``/sys``), a read-only
filesystem or a folder without write permission: the run is refused before the mesh
is built, on every rank with the same error, and nothing is left behind. ``polarity
check`` validates the mesh before it prints anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import pytest

from solver import cli
from solver.errors import InputError
from tests.cases import exchange_disk, mount_tmpfs

WORLD = MPI.COMM_WORLD


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    if WORLD.rank == 0:
        path.write_text(text)
    WORLD.barrier()
    return path


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def no_setup(monkeypatch):
    """Fail the test if a run gets as far as building its mesh."""

    def refuse(*args, **kwargs):
        raise AssertionError("the mesh was built before the output folder was checked")

    monkeypatch.setattr("solver.run.Simulation", refuse)


def _one_error_line(capsys, *fragments: str) -> str:
    captured = capsys.readouterr()
    if WORLD.rank != 0:
        assert captured.err == "" and captured.out == ""  # only rank 0 prints
        return ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.out == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "out, fragment",
    [
        ("a_file", "is a file, not a folder"),
        ("a_file/sub/out", "is a file, not a folder"),
        ("/proc/polarity-out", "under /proc"),
        ("/sys/polarity-out", "under /sys"),
    ],
    ids=["file", "under-a-file", "proc", "sys"],
)
def test_unusable_output_folder_one_line_before_setup(tmp_shared, capsys, no_setup, out, fragment):
    cfg = _write(tmp_shared, "config.toml", exchange_disk())
    _write(tmp_shared, "a_file", "not a folder\n")
    before = _tree(tmp_shared)
    target = out if out.startswith("/") else str(tmp_shared / out)
    assert cli.main(["run", str(cfg), "-o", target]) == cli.EXIT_INPUT
    _one_error_line(capsys, fragment, target)
    assert _tree(tmp_shared) == before
    assert (tmp_shared / "a_file").read_text() == "not a folder\n"


def test_unwritable_folder_is_refused_and_what_was_created_removed(
    tmp_shared, capsys, no_setup, monkeypatch
):
    """A folder where no file can be created (as a read-only filesystem or a missing
    permission answers): refused, and the folders the check made are removed again."""
    cfg = _write(tmp_shared, "config.toml", exchange_disk())
    real_open = os.open

    def denied(path, flags, *args, **kwargs):
        if str(path).endswith(".polarity.lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("solver.io.claim.os.open", denied)
    target = tmp_shared / "new" / "out"
    assert cli.main(["run", str(cfg), "-o", str(target)]) == cli.EXIT_INPUT
    _one_error_line(capsys, "Permission denied", str(target))
    assert not (tmp_shared / "new").exists()


@pytest.mark.serial  # mounts a filesystem
def test_read_only_filesystem(tmp_path, capsys, no_setup):
    cfg = _write(tmp_path, "config.toml", exchange_disk())
    ro = tmp_path / "ro"
    ro.mkdir()
    why = mount_tmpfs(ro, "ro,size=64k")
    if why:
        pytest.skip(f"no read-only filesystem to test on ({why})")
    try:
        for target in (ro, ro / "out"):
            assert cli.main(["run", str(cfg), "-o", str(target)]) == cli.EXIT_INPUT
            _one_error_line(capsys, "Read-only file system", str(target))
        assert list(ro.iterdir()) == []
    finally:
        subprocess.run(["umount", str(ro)], check=False)


@pytest.mark.serial  # changes permissions
def test_folder_without_write_permission(tmp_path, capsys, no_setup):
    if os.geteuid() != 0:
        cfg = _write(tmp_path, "config.toml", exchange_disk())
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            assert cli.main(["run", str(cfg), "-o", str(locked / "out")]) == cli.EXIT_INPUT
            _one_error_line(capsys, "Permission denied")
        finally:
            locked.chmod(0o700)
        return
    # root may write anywhere: run without the capabilities that let it ignore
    # permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so the folder's mode applies
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
    caps = "-dac_override,-dac_read_search"
    cfg = _write(tmp_path, "config.toml", exchange_disk())
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = locked / "out"
    try:
        proc = subprocess.run(
            [setpriv, "--bounding-set", caps, "--inh-caps", caps, "--"]
            + [sys.executable, "-m", "solver", "run", str(cfg), "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    finally:
        locked.chmod(0o700)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == cli.EXIT_INPUT, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Permission denied" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()


def test_check_reports_a_mesh_error_before_printing_anything(tmp_shared, capsys, monkeypatch):
    cfg = _write(tmp_shared, "config.toml", exchange_disk())

    def broken(*args, **kwargs):
        raise InputError(f"{cfg}: mesh", "the mesh has no membrane")

    monkeypatch.setattr("solver.mesh.meshing.cell_mesh", broken)
    assert cli.main(["check", str(cfg)]) == cli.EXIT_INPUT
    line = _one_error_line(capsys, "no membrane")
    assert "valid" not in line


@pytest.mark.serial  # starts its own two ranks
def test_two_ranks_give_one_line_and_no_abort(tmp_path):
    """``mpiexec -n 2 polarity run ... -o FILE``: one line, exit 2, no MPI_Abort."""
    cfg = _write(tmp_path, "config.toml", exchange_disk())
    target = _write(tmp_path, "a_file", "not a folder\n")
    local = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(local) if local.exists() else "mpiexec"
    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_", "MPI"))}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([root, env.get("PYTHONPATH", "")]))
    command = [mpiexec, "-n", "2", sys.executable, "-m", "solver", "run", str(cfg), "-o"]
    proc = subprocess.run(
        [*command, str(target)], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == cli.EXIT_INPUT, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: output folder {str(target)!r}: is a file, not a folder; choose another with -o"
    ]
    assert proc.stdout == ""
