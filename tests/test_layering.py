"""The package's layering, read from the code: every module of ebpfjit states in its docstring
what it may import (a line `Imports: ebpfjit.isa, ebpfjit.objects.spec, ...`; a package name
allows its modules; `(nothing)` allows none), and the real imports (read with `ast`, including
those inside functions) must stay within that declaration and never go up a layer.

Layers, lowest first (DEVELOPERS.md draws them): errors/version, isa, objects, runtime, jit,
api/capture, oracle, cli, the package root. Besides: only ebpfjit.runtime imports the C module
ebpfjit._rt, only ebpfjit.objects.elf imports pyelftools, only ebpfjit.jit imports llvmlite, and
only ebpfjit.oracle.jited_disasm imports capstone.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ebpfjit"

LAYERS = [
    ("ebpfjit.errors", "ebpfjit.version", "ebpfjit.engine"),
    ("ebpfjit.isa",),
    ("ebpfjit.objects",),
    ("ebpfjit.verifier",),
    ("ebpfjit._rt", "ebpfjit.runtime"),
    ("ebpfjit.jit",),
    ("ebpfjit.api", "ebpfjit.capture"),
    ("ebpfjit.oracle",),
    ("ebpfjit.cli",),
    ("ebpfjit", "ebpfjit.__main__", "ebpfjit.kernel", "ebpfjit.examples"),
]
# Third-party modules with one home in the package: (import prefix, allowed module prefix).
SOLE_IMPORTERS = [
    ("ebpfjit._rt", "ebpfjit.runtime"),
    ("elftools", "ebpfjit.objects.elf"),
    ("llvmlite", "ebpfjit.jit"),
    ("capstone", "ebpfjit.oracle.jited_disasm"),
]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file, as an absolute dotted name; for `from X
    import name` the name counts as a module when X.name is one (a package's submodule)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for a in node.names:
                sub = f"{target}.{a.name}"
                where = PKG.parent / sub.replace(".", "/")
                # (the C module ebpfjit._rt is a module even before it is built)
                is_module = where.with_suffix(".py").exists() or where.is_dir() or \
                    sub == "ebpfjit._rt"
                found.add(sub if is_module else target)
    return found


def declared_imports(path: Path) -> list[str] | None:
    doc = ast.get_docstring(ast.parse(path.read_text()), clean=True) or ""
    m = re.search(r"^Imports:(.*(?:\n[ \t]+\S.*)*)", doc, re.M)
    if m is None:
        return None
    text = " ".join(m.group(1).split())
    if text.startswith("(nothing)"):
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def layer_of(name: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            # the root package matches only itself, not everything below it
            if (name == p if p == "ebpfjit" else _within(name, p)) and len(p) > best:
                best, rank = len(p), i
    assert rank is not None, f"{name} is in no layer of tests/test_layering.py LAYERS"
    return rank


MODULES = sorted(PKG.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_module_declares_and_keeps_its_imports(path):
    mod = module_name(path)
    declared = declared_imports(path)
    assert declared is not None, f"{mod}: its docstring has no 'Imports: ...' line"
    ours = {t for t in imported_modules(path) if _within(t, "ebpfjit") and t != mod}
    undeclared = sorted(t for t in ours if not any(_within(t, d) for d in declared))
    assert not undeclared, f"{mod} imports {undeclared}, not in its declaration {declared}"
    upward = sorted(t for t in ours if t != "ebpfjit" and layer_of(t) > layer_of(mod))
    assert not upward, f"{mod} (layer {layer_of(mod)}) imports a higher layer: {upward}"
    for d in declared:
        assert d == "ebpfjit" or layer_of(d) <= layer_of(mod), \
            f"{mod} declares a higher layer: {d}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_third_party_modules_have_one_importer(path):
    mod = module_name(path)
    for target in imported_modules(path):
        for lib, home in SOLE_IMPORTERS:
            if _within(target, lib):
                assert _within(mod, home), f"{mod} imports {target}: only {home} may"


def test_the_checker_sees_imports_inside_functions():
    # A lazy import is an import: the rules above must see it, or they could not fail.
    assert "elftools.elf.elffile" in imported_modules(PKG / "objects" / "elf.py")
    lazy = [n for n in ast.walk(ast.parse((PKG / "oracle" / "jited_disasm.py").read_text()))
            if isinstance(n, ast.FunctionDef) and n.name == "capstone_for_host"]
    assert lazy and "capstone" in imported_modules(PKG / "oracle" / "jited_disasm.py")
    assert layer_of("ebpfjit.jit.compile") > layer_of("ebpfjit.objects.elf")
    assert layer_of("ebpfjit") > layer_of("ebpfjit.cli.commands")
