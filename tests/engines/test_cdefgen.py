"""The cffi declarations generated from the real headers (csrc/cdefgen.py, csrc/build_rt.py).

The generated cdef must declare everything the Python side calls in the C module, declare the
runtime structs exactly as C lays them out, and refuse what it cannot translate with file:line.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import re

import pytest
from cffi import FFI

from tests.support.paths import ROOT as PROJECT_ROOT

ROOT = str(PROJECT_ROOT)
CSRC = os.path.join(ROOT, "csrc")


def _load_cdefgen():
    spec = importlib.util.spec_from_file_location("cdefgen", os.path.join(CSRC, "cdefgen.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cdefgen = _load_cdefgen()


@pytest.fixture(scope="module")
def generated() -> str:
    return cdefgen.generate(sorted(glob.glob(os.path.join(CSRC, "*.h"))))


def _python_uses(prefix: str) -> set[str]:
    """Names `lib.<prefix>...` that the package's Python code reads from the C module."""
    names = set()
    for path in glob.glob(os.path.join(ROOT, "ebpfjit", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            names.update(re.findall(rf"\blib\.({prefix}\w+)", f.read()))
    return names


def test_declares_every_function_python_calls(generated):
    called = _python_uses("ebpfjit_")
    assert len(called) > 40                       # the scan found the call sites
    declared = set(re.findall(r"\b(ebpfjit_\w+)\s*\(", generated))
    assert called - declared == set()


def test_declares_every_constant_python_reads(generated):
    read = _python_uses("EBPFJIT_")
    assert read
    declared = set(re.findall(r"#define (EBPFJIT_\w+)", generated))
    declared |= set(re.findall(r"\b(EBPFJIT_\w+)\s*=", generated))      # enum members
    assert read - declared == set()


def test_built_module_matches_the_generated_cdef(generated):
    runtime = pytest.importorskip("ebpfjit.runtime")
    lib, ffi = runtime.lib, runtime.ffi
    for name in _python_uses("ebpfjit_") | _python_uses("EBPFJIT_"):
        assert hasattr(lib, name), name
    # The real struct, fields the old hand-written copy lacked included, sized as C sizes it.
    fields = dict(ffi.typeof("struct ebpfjit_state").fields)
    assert ffi.typeof("struct ebpfjit_state").kind == "struct"
    assert fields["fault_frame_lo"].type.length == lib.EBPFJIT_MAX_FRAMES
    assert fields["lock_depth"].type.length == lib.EBPFJIT_MAX_HELD_LOCKS
    assert dict(ffi.typeof("struct ebpfjit_env").fields)["regions"].type.length == \
        lib.EBPFJIT_MAX_ENV_REGIONS
    # `(1ULL << n)` in the header: the extractor evaluates the suffixed shift to C's value.
    chunk = re.search(r"#define EBPFJIT_BUDGET_CHUNK \(1ULL << (\d+)\)",
                      open(os.path.join(CSRC, "ebpfjit_rt.h")).read())
    assert chunk and lib.EBPFJIT_BUDGET_CHUNK == 1 << int(chunk.group(1))
    assert lib.EBPFJIT_PKT_FAULT == -1
    assert lib.EBPFJIT_XDP_MAX_DATA == 4096 - 256 - 320


def _gen(tmp_path, text, name="t.h"):
    path = tmp_path / name
    path.write_text(text)
    return cdefgen.generate([str(path)])


def test_translates_what_headers_contain(tmp_path):
    out = _gen(tmp_path, """#include <stdint.h>
/* outside: not declared */
int hidden(void);
/* cffi:begin */
#include <stdint.h>
#define N 4                 /* a comment */
#define BIG 0xffffffffffffffffULL
#define SHIFTED (1U << 3)
#define SUM (N * 2 + SHIFTED)
#define LIMIT UINT32_MAX
struct s {
    _Atomic uint64_t a;
    uint32_t arr[N / 2];
    uint8_t b[SUM] __attribute__((aligned(8)));
};
static inline int twice(int x)
{
    return 2 * x;
}
static inline int once(int x) { return x; }
int f(char *restrict p, const struct s *q) __attribute__((nonnull(1)));
/* cffi:extern "Python+C" */ uint64_t cb(uint64_t a);
/* cffi:end */
int also_hidden(void);
""")
    assert "hidden" not in out and "twice" not in out and "once" not in out
    for line in ("#define N 4", f"#define BIG {2**64 - 1}", "#define SHIFTED 8",
                 "#define SUM 16", "#define LIMIT ..."):
        assert line in out
    assert "arr[2]" in out and "b[16]" in out
    assert "_Atomic" not in out and "restrict" not in out and "__attribute__" not in out
    assert 'extern "Python+C" uint64_t cb(' in out
    FFI().cdef(out)                                 # cffi takes it as it is


@pytest.mark.parametrize("body, what", [
    ("#define SQ(x) ((x) * (x))", "function-like"),
    ("#ifdef X", "#ifdef"),
    ('#define NAME "text"', "not an integer"),
    ("int g(void) { return 1; }", "function body"),
    ("struct t { int a[UNKNOWN]; };", "array size"),
    ("/* cffi:begin */", "inside a cffi section"),
])
def test_rejects_what_it_cannot_translate_naming_file_and_line(tmp_path, body, what):
    with pytest.raises(cdefgen.CdefError) as exc:
        _gen(tmp_path, f"#include <stdint.h>\n/* cffi:begin */\nint ok(void);\n{body}\n"
                       "/* cffi:end */\n", name="bad.h")
    message = str(exc.value)
    assert message.startswith("bad.h:4: ") and what in message


def test_rejects_unbalanced_markers(tmp_path):
    with pytest.raises(cdefgen.CdefError, match=r"^open\.h:2: cffi:begin without cffi:end"):
        _gen(tmp_path, "int a;\n/* cffi:begin */\nint b;\n", name="open.h")
    with pytest.raises(cdefgen.CdefError, match=r"^close\.h:1: cffi:end without"):
        _gen(tmp_path, "/* cffi:end */\n", name="close.h")


def test_includes_come_first(tmp_path):
    (tmp_path / "a.h").write_text('#include "b.h"\n/* cffi:begin */\nmy_t use(void);\n'
                                  "/* cffi:end */\n")
    (tmp_path / "b.h").write_text("/* cffi:begin */\ntypedef int my_t;\n/* cffi:end */\n")
    out = cdefgen.generate([str(tmp_path / "a.h"), str(tmp_path / "b.h")])
    assert out.index("typedef int my_t") < out.index("my_t use")
    FFI().cdef(out)
