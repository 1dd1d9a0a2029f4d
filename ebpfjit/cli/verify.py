"""`ebpfjit verify OBJ... [--program P] [--log-level 1|2] [-j]`: the static verifier from the
command line. One program: its log (level 1: the error, or the stats line on success; level 2:
the state at every instruction). Several: a veristat-like table. Exit status 1 on a rejection.

Imports: ebpfjit.errors, ebpfjit.objects, ebpfjit.verifier
"""
from __future__ import annotations

import json
import sys

from ..errors import VerifierError
from ..objects.elf import load_spec

COLUMNS = ("File", "Program", "Verdict", "Insns", "Processed", "States", "ms")


def add_verify_parser(sub) -> None:
    p = sub.add_parser("verify", help="verify programs statically, with the kernel's log")
    p.add_argument("objects", nargs="+", metavar="OBJ", help="ELF object(s)")
    p.add_argument("--program", help="only this program (function name)")
    p.add_argument("--log-level", type=int, choices=(1, 2), default=1,
                   help="1: the error (default); 2: the register state at every instruction")
    p.add_argument("-j", "--json", action="store_true", help="JSON output, one record per program")
    p.set_defaults(func=cmd_verify)


def _results(args):
    # Lazy: the verifier (~80 ms) only for `ebpfjit verify` (the parser is built at every start).
    from ..verifier import verify_spec
    for path in args.objects:
        spec = load_spec(path)
        names = list(spec.programs)
        if args.program is not None:
            if args.program not in spec.programs:
                raise VerifierError(f"{path}: no program {args.program!r} (have "
                                    f"{', '.join(names)})")
            names = [args.program]
        for name in names:
            try:
                r = verify_spec(spec.programs[name], spec, log_level=args.log_level)
                yield path, name, r, None
            except VerifierError as exc:
                yield path, name, None, exc


def cmd_verify(args) -> int:
    rows = list(_results(args))
    failed = any(exc is not None for *_, exc in rows)
    if args.json:
        out = []
        for path, name, r, exc in rows:
            rec = {"file": path, "program": name, "verdict": "success" if exc is None else "failure"}
            if r is not None:
                rec.update(insns=r.insns, processed=r.processed, states=r.total_states,
                           peak_states=r.peak_states, ms=round(r.ms, 3))
            else:
                rec.update(error=exc.reason, pc=exc.pc, log=exc.log)
            out.append(rec)
        json.dump(out, sys.stdout, indent=2)
        print()
        return 1 if failed else 0
    if len(rows) == 1:
        path, name, r, exc = rows[0]
        if exc is not None:
            print(exc.log or str(exc))
        else:
            print(r.log)
        return 1 if failed else 0
    table = []
    for path, name, r, _exc in rows:
        if r is not None:
            table.append((path, name, "success", str(r.insns), str(r.processed),
                          str(r.total_states), f"{r.ms:.1f}"))
        else:
            table.append((path, name, "failure", "", "", "", ""))
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 3 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    print(line(COLUMNS))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print(line(row))
    for path, name, _r, exc in rows:
        if exc is not None:
            print(f"\n{path} {name}: {exc}")
    return 1 if failed else 0
