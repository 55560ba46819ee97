"""The house rules that code review would otherwise have to catch: the product never imports the
lab, and nothing in the package finds data through where a checkout keeps it."""

from __future__ import annotations

import ast
from pathlib import Path

import kube_engine

PACKAGE = Path(kube_engine.__file__).resolve().parent
LAB = PACKAGE / "bench"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_the_product_never_imports_the_lab() -> None:
    product = [p for p in PACKAGE.rglob("*.py") if LAB not in p.parents]
    assert len(product) > 10
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(
            i for i in _imports(p) if i.startswith("kube_engine.bench")
        )
        for p in product
    }
    assert {p: i for p, i in offenders.items() if i} == {}


def test_no_module_finds_data_through_the_checkout() -> None:
    for p in PACKAGE.rglob("*.py"):
        text = p.read_text()
        assert "parents[" not in text and '"shared"' not in text, p.relative_to(PACKAGE)


def test_the_package_ships_no_data_files() -> None:
    shipped = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyi", ".so", ".pyc", ".typed"}
    }
    assert {s for s in shipped if "__pycache__" not in s} == {"schemas/plan.v1alpha1.json"}
