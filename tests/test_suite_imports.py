"""The suite's own layout rule: no test module imports another test module or conftest.

What tests share lives in tests/support/ (paths, the conformance gate, packets, harnesses) and
fixtures in tests/conftest.py; a test module importing another would run that module's
collection-time code twice and tie unrelated tests together. Imports are read with ast, including
those inside functions.
"""
from __future__ import annotations

import ast
import sys

import pytest

from tests.support.paths import TESTS_DIR

TEST_MODULES = sorted(p for p in TESTS_DIR.rglob("*.py")
                      if p.name.startswith("test_") or p.name == "conftest.py")


def _forbidden(module: str) -> bool:
    """Whether a dotted module name is a test module or a conftest (absolute, or as the test
    folder's sys.path entry would name it)."""
    return any(part.startswith("test_") or part == "conftest" for part in module.split("."))


def imported_modules(path) -> list[tuple[int, str]]:
    """(line, module) for every import in `path`, relative imports resolved against its package."""
    package = path.relative_to(TESTS_DIR.parent).with_suffix("").parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            # `from tests.engines import test_runtime` names the module in the alias.
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return out


def test_finds_the_suite():
    assert len(TEST_MODULES) > 30
    assert TESTS_DIR / "conftest.py" in TEST_MODULES


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda p: str(p.relative_to(TESTS_DIR)))
def test_no_test_module_imports_another_or_conftest(path):
    bad = [f"line {line}: {module}" for line, module in imported_modules(path) if _forbidden(module)]
    assert not bad, f"{path.relative_to(TESTS_DIR)} imports test code; move it to tests/support/: {bad}"


@pytest.mark.parametrize("source, bad", [
    ("from conftest import PROGS_DIR", True),
    ("import conftest", True),
    ("from test_objects import PACKETS", True),
    ("from tests.engines.test_runtime import U64", True),
    ("from tests.engines import test_runtime", True),
    ("from .test_runtime import U64", True),
    ("def f():\n    from tests.conftest import kernel", True),
    ("from tests.support.packets import PACKETS", False),
    ("from ebpfjit.fuzzgen import random_insn", False),
    ("import ebpfjit.testdata", False),
])
def test_the_check_sees_every_form(tmp_path, monkeypatch, source, bad):
    folder = tmp_path / "tests" / "engines"
    folder.mkdir(parents=True)
    path = folder / "test_example.py"
    path.write_text(source + "\n")
    monkeypatch.setattr(sys.modules[__name__], "TESTS_DIR", tmp_path / "tests")
    found = [m for _, m in imported_modules(path) if _forbidden(m)]
    assert bool(found) is bad, found
