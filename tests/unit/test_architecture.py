"""Layering rules that import-linter cannot express on its own."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def imported_top_level_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (SRC / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.name)
    return found


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    modules = imported_top_level_modules("domain")
    foreign = {
        m: files
        for m, files in modules.items()
        if m not in sys.stdlib_module_names and m not in {"domain", "__future__"}
    }
    assert foreign == {}


def test_the_orm_lives_in_exactly_one_module() -> None:
    declaring = [
        p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if "__tablename__" in p.read_text()
    ]
    assert declaring == ["adapters/postgres/orm.py"]
