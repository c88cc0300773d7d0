"""A fresh clone is self-contained: no tracked file reads or points at a path outside the repository.

A public clone has nothing beside it. The golden agentops tests once read their fixtures from a
`shared` folder next to the team's checkout, so they passed in CI and failed for everyone else.
Pure file checks: no database, no Django.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Built from parts so this file does not match itself.
FORBIDDEN = ["../" + "shared", "shared/" + "fixtures", "shared/" + "docs", "/work" + "/"]
# `../a/b` chains in any text file: resolved against the file's own folder, they must stay inside.
RELATIVE_CLIMB = re.compile(r"(?:\.\./)+[\w.-]*")
# Path(__file__)...parents[N] and .parent chains in Python: how many folders they climb.
FILE_ANCESTOR = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parents\[\d+\]|\.parent)+)")
BINARY_SUFFIXES = {".bin", ".png", ".ico", ".woff", ".woff2", ".gz", ".pb"}


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    paths = [REPO / name.decode() for name in names if name]
    return [p for p in paths if p.suffix not in BINARY_SUFFIXES and p.is_file()]


def levels_climbed(chain: str) -> int:
    """`.parents[2].parent` climbs 4 folders from the file: 3 for parents[2], 1 for .parent."""
    climbed = 0
    for index in re.findall(r"\.parents\[(\d+)\]|\.parent\b", chain):
        climbed += int(index) + 1 if index else 1
    return climbed


def escapes(path: Path, chain: str) -> bool:
    target = (path.parent / chain).resolve()
    return target != REPO and REPO not in target.parents


def outside_references(path: Path, text: str) -> list[str]:
    found = [f"names {word!r}" for word in FORBIDDEN if word in text]
    found += [
        f"climbs to {m.group(0)!r}"
        for m in RELATIVE_CLIMB.finditer(text)
        if escapes(path, m.group(0))
    ]
    if path.suffix == ".py":
        depth = len(path.relative_to(REPO).parts)  # climbing this many folders reaches the root
        found += [
            f"Path(__file__){m.group(1)} leaves the repository"
            for m in FILE_ANCESTOR.finditer(text)
            if levels_climbed(m.group(1)) > depth
        ]
    return found


def test_no_tracked_file_refers_to_a_path_outside_the_repository() -> None:
    problems = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        problems += [f"{path.relative_to(REPO)}: {p}" for p in outside_references(path, text)]
    assert not problems, "copy what is needed into the repository:\n" + "\n".join(problems)


def test_the_check_catches_a_fixture_read_from_beside_the_clone() -> None:
    test_file = REPO / "tests" / "ingest" / "test_example.py"
    # The line that broke fresh clones, spelled in parts so this file does not hold it.
    bad = "FIXTURES = Path(__file__).resolve().parents[2].parent / " + '"sha' + 'red" / "fixtures"'
    good = 'FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agentops"'
    assert outside_references(test_file, bad)
    assert not outside_references(test_file, good)
    assert outside_references(REPO / "docs" / "x.md", "see ../../elsewhere/notes.md")
    assert not outside_references(REPO / "tests" / "fixtures" / "x.md", "see ../../docs/a.md")


SERVER_APPS = ("config", "ingest", "analytics", "api", "dashboard")


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    return modules


def test_the_server_never_imports_the_sdk_so_production_does_not_install_it() -> None:
    importers = [
        str(path.relative_to(REPO))
        for app in SERVER_APPS
        for path in (REPO / app).rglob("*.py")
        if "observatory_sdk" in imported_modules(path.read_text())
    ]
    assert importers == []
    assert "sdk" not in (REPO / "requirements.txt").read_text()
    assert "-e ./sdk" in (REPO / "requirements-demo.txt").read_text()


def test_the_import_check_sees_an_sdk_import_inside_a_function() -> None:
    source = "def seed():\n    from observatory_sdk.records import new_id\n"
    assert "observatory_sdk" in imported_modules(source)


# Each app imports only the ones before it (docs/architecture.md, "Layers"); demo/ is a client of
# the product, above them all.
LAYERS = ("config", "ingest", "analytics", "api", "dashboard", "demo")


def upward_imports(app: str, source: str) -> set[str]:
    """The apps above `app` that this source imports, at module level or inside a function."""
    above = set(LAYERS[LAYERS.index(app) + 1 :])
    return imported_modules(source) & above


def test_no_app_imports_a_layer_above_it() -> None:
    problems = [
        f"{path.relative_to(REPO)} imports {', '.join(sorted(found))}"
        for app in LAYERS
        for path in (REPO / app).rglob("*.py")
        if (found := upward_imports(app, path.read_text()))
    ]
    assert problems == [], "a lower layer must not know a higher one:\n" + "\n".join(problems)


def test_the_layer_check_sees_an_upward_import_inside_a_function() -> None:
    source = "def land():\n    from analytics.tasks import enqueue_session_summaries\n"
    assert upward_imports("ingest", source) == {"analytics"}
    assert upward_imports("dashboard", source) == set()
    assert upward_imports("analytics", "import api.views\n") == {"api"}
