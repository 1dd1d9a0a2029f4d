#!/usr/bin/env bash
# ASan/UBSan job: build the C runtime with EBPFJIT_DEBUG_BUILD=1 into a throw-away copy of the
# tree (the in-place build in ebpfjit/ stays the optimised one), then run the engine, map,
# helper and loader tests against it. Any sanitizer report fails the job.
#
# Python itself is not built with ASan, so the runtime library must be preloaded (the sanitizer
# has to own malloc before the interpreter starts). Leak checking is off: CPython keeps memory
# alive until exit by design.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cc="${CC:-gcc}"
libasan="$("$cc" -print-file-name=libasan.so)"
libubsan="$("$cc" -print-file-name=libubsan.so)"
for lib in "$libasan" "$libubsan"; do
    [ -f "$lib" ] || { echo "asan: $lib not found (install the gcc sanitizer runtimes)" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/ebpfjit-asan.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# A copy of the tracked sources plus the committed test objects; no build products.
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$root" && xargs -0 cp --parents -t "$work" 2>/dev/null || true)
rm -f "$work"/ebpfjit/_rt*.so
(cd "$work" && CC="$cc" EBPFJIT_DEBUG_BUILD=1 python csrc/build_rt.py >/dev/null)

tests=()
for t in engines/test_runtime engines/test_maps engines/test_helpers engines/test_callbacks \
         objects/test_elf objects/test_objects objects/test_object_fuzz engines/test_jit \
         isa/test_edge_cases; do
    [ -f "$work/tests/$t.py" ] && tests+=("tests/$t.py")
done
[ -d "$work/tests/security" ] && tests+=("tests/security")

log="$work/sanitizer"
export LD_PRELOAD="$libasan $libubsan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:log_path=$log.asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$log.ubsan"
# The copy is not beside ../shared: point the tests where the real tree would find the vectors.
export EBPFJIT_SHARED="${EBPFJIT_SHARED:-$(dirname "$root")/shared}"
export EBPFJIT_CONFORMANCE_DIR="${EBPFJIT_CONFORMANCE_DIR:-$EBPFJIT_SHARED/conformance}"
export PYTHONPATH="$work" EBPFJIT_CACHE_DIR="$work/jitcache"
unset PYTHONMALLOC
status=0
# -m "not kernel": the kernel-oracle tests exercise bpf(2), not our C memory handling. The aarch64
# emission test loads capstone, whose dlopen(RTLD_DEEPBIND) the sanitizer runtime refuses.
(cd "$work" && PYTHONMALLOC=malloc python -m pytest -q -p no:cacheprovider -m "not kernel" \
    --deselect tests/engines/test_jit.py::test_emit_object_aarch64_every_conformance_program \
    "${tests[@]}") || status=$?
unset LD_PRELOAD
reports=$(ls "$log".* 2>/dev/null || true)
if [ -n "$reports" ]; then
    echo "asan: sanitizer reports:" >&2
    cat $reports >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "asan: tests failed under the sanitizers (status $status)" >&2
    exit "$status"
fi
echo "asan: clean (${#tests[@]} test files)"
