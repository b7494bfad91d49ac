"""The package's structure: imports flow one way, modules stay small, documents cited exist.

The import graph is read from the source with ``ast`` (every import, also those inside
functions and under ``TYPE_CHECKING``), so a cycle is found before it bites at run time.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "solver"
MAX_LINES = 500
SUBPACKAGES = ("cli", "config", "fem", "inspect", "io", "mesh", "model", "sbml", "sweep", "time")

pytestmark = pytest.mark.serial


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (a name imported from a package that
    is itself a module counts as that module)."""
    found = set()
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1]])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
                elif base in known:
                    found.add(base)
    found.discard(this)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a list of nodes (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_among_the_package_modules():
    mods = modules()
    graph = {name: imports_of(path, set(mods)) for name, path in mods.items()}
    assert sum(len(v) for v in graph.values()) > 100  # the walk sees the imports
    assert "solver.time.stepper" in graph["solver.simulation"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_package_is_in_subpackages_and_no_module_is_long():
    tracked = subprocess.run(
        ["git", "ls-files", "solver"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    folders = {Path(p).parts[1] for p in tracked if len(Path(p).parts) > 2}
    assert set(SUBPACKAGES) <= folders
    top = [p for p in tracked if len(Path(p).parts) == 2 and p.endswith(".py")]
    assert len(top) <= 6, top  # __init__, __main__, errors, simulation, run: the rest is in rooms
    long = {p: n for p in tracked if p.endswith(".py") and (n := _lines(ROOT / p)) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


# -- documents ---------------------------------------------------------------------
_LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
_OUTSIDE = re.compile(r"(?<![\w/])(models\.md|DESIGN\.md|DESIGN §|/work/shared|STYLE\.md)")


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    keep = (".py", ".md", ".toml", ".sbatch", ".cfg", ".txt", "")
    return [ROOT / n for n in names if Path(n).suffix in keep and (ROOT / n).is_file()]


def test_no_file_cites_a_document_that_is_not_in_the_repository():
    offenders = []
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue  # this file names the patterns it looks for
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for m in _OUTSIDE.finditer(line):
                before = line[: m.start()]
                if m.group(1) == "models.md" and (
                    before.endswith("docs/") or before.endswith("[") or before.endswith("(")
                ):
                    continue  # docs/models.md, or a link checked below
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def _anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_every_relative_markdown_link_resolves():
    broken = []
    for path in _tracked_text_files():
        if path.suffix != ".md":
            continue
        for m in _LINK.finditer(path.read_text()):
            target, anchor = m.group(1), m.group(2)
            if "://" in target or target.startswith("mailto:"):
                continue
            dest = (path.parent / target).resolve()
            if not dest.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", dest.read_text(), re.M)
                if anchor[1:] not in {_anchor(h) for h in headings}:
                    broken.append(f"{path.relative_to(ROOT)}: {target}{anchor}")
    assert not broken, "\n".join(broken)
