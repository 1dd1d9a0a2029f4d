#!/bin/sh
# Build the benchmark suite's eBPF objects: bench/progs/*.c -> *.o (committed, so the benchmarks
# never need clang for the eBPF side; the native side is compiled at benchmark time by
# bench/native.py).
#
# Flags: clang -O2 -g -target bpf -mcpu=v3. -g emits BTF, which the .maps definition in
# map_lookup.c needs. Environment: CLANG (default clang-19).
#
# `build.sh --check` (for CI) builds into a temporary directory and fails if any committed .o
# differs from what its .c builds to.
set -eu

CLANG=${CLANG:-clang-19}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# Compile from the checkout root with relative paths and a fixed compilation directory, so the
# objects are byte-identical wherever the checkout lives and whatever the caller's cwd.
cd "$ROOT"
check=0
if [ "${1:-}" = --check ]; then
	check=1
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi
status=0
for src in bench/progs/*.c; do
	obj=${src%.c}.o
	[ "$check" = 1 ] && obj="$out/$(basename "$obj")"
	echo "  CC $(basename "$src")"
	"$CLANG" -O2 -g -target bpf -mcpu=v3 -fdebug-compilation-dir=. \
		-Wall -Werror -c "$src" -o "$obj"
	if [ "$check" = 1 ] && ! cmp -s "$obj" "${src%.c}.o"; then
		echo "  STALE ${src%.c}.o: rerun bench/progs/build.sh and commit the object" >&2
		status=1
	fi
done
exit "$status"
