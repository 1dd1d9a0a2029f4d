"""Write the generated LLVM IR of every conformance program and test object to a folder.

A refactor of the lowering that must not change generated code is checked by a snapshot before
and after, compared byte for byte:

    python ci/ir_snapshot.py /tmp/ir_before          # on the old tree
    python ci/ir_snapshot.py /tmp/ir_after           # on the new tree
    diff -r /tmp/ir_before /tmp/ir_after             # nothing: the IR is byte-identical

Inputs: the conformance vectors (`$EBPFJIT_CONFORMANCE_DIR/tests/*.data`, see DEVELOPERS.md) and
the clang-built objects of `tests/progs`, `bench/progs` and `ebpfjit/examples`. Each program is
lowered (not optimised: the lowering is what a refactor touches) at O0 and at O2 (O2 versions the
entry), with and without bounds checks. A program that fails to lower or load writes its error
text instead, so a change in what fails shows up too.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ebpfjit import load  # noqa: E402
from ebpfjit.cli import testdata  # noqa: E402
from ebpfjit.jit.compile import llvm_ir  # noqa: E402

# (file suffix, opt_level, bounds_checks)
VARIANTS = (("O0", 0, True), ("O2", 2, True), ("O2.nobc", 2, False))
OBJECT_DIRS = ("tests/progs", "bench/progs", "ebpfjit/examples")


def _ir(code: bytes, opt_level: int, bounds_checks: bool, maps) -> str:
    try:
        return llvm_ir(code, opt_level=opt_level, bounds_checks=bounds_checks, maps=maps)
    except Exception as exc:  # the error is part of the snapshot
        return f"error: {type(exc).__name__}: {exc}\n"


def _write(out: Path, stem: str, code: bytes, maps) -> int:
    for suffix, opt_level, bounds_checks in VARIANTS:
        (out / f"{stem}.{suffix}.ll").write_text(_ir(code, opt_level, bounds_checks, maps))
    return len(VARIANTS)


def snapshot(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    conformance = testdata.CONFORMANCE_DIR / "tests"
    paths = sorted(conformance.glob("*.data"))
    if not paths:
        raise SystemExit(f"no conformance vectors in {conformance}: {testdata.CONFORMANCE_HOWTO}")
    for path in paths:
        stem = f"conformance__{path.stem}"
        try:
            code = testdata.load(path).code
        except Exception as exc:
            (out / f"{stem}.error").write_text(f"{type(exc).__name__}: {exc}\n")
            continue
        written += _write(out, stem, code, None)
    for folder in OBJECT_DIRS:
        for path in sorted((ROOT / folder).glob("*.o")):
            prefix = f"{folder.replace('/', '_')}__{path.stem}"
            try:
                obj = load(path)
            except Exception as exc:
                (out / f"{prefix}.error").write_text(f"{type(exc).__name__}: {exc}\n")
                continue
            for name, prog in sorted(obj.programs.items()):
                written += _write(out, f"{prefix}__{name}", prog.code, prog._jit_maps())
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the .ll files into")
    args = parser.parse_args()
    count = snapshot(args.out)
    print(f"{count} IR files written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
