#!/bin/sh
# Rebuild the clang-compiled eBPF objects: tests/progs/*.c, tests/progs/bad/*.c, the hostile
# objects of tests/security/progs/*.c (not loaded by the kernel check) and the bundled
# example ebpfjit/examples/*.c -> *.o.
#
# The .o files are committed so tests never need clang; rerun this after editing a .c file and
# commit the objects with it.
#
# Flags: clang -O2 -g -target bpf -mcpu=v3 (libbpf headers from /usr/include/bpf).
# A file picks another ISA version with a first line of the form `// cpu: v2` (v1..v4).
#
# Environment: CLANG (default clang-19), CHECK_KERNEL=1 also loads every top-level object with
# `bpftool prog loadall` (needs root and bpffs on /sys/fs/bpf); objects whose first lines say
# "Not loadable" / "not for the kernel" are skipped.
set -eu

CLANG=${CLANG:-clang-19}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROGS="$ROOT/tests/progs"
ARCH_INC="/usr/include/$(uname -m)-linux-gnu"

build() {
	src=$1
	obj=${src%.c}.o
	cpu=$(sed -n '1s|^// cpu: \(v[1-4]\)$|\1|p' "$src")
	cpu=${cpu:-v3}
	echo "  CC -mcpu=$cpu $(basename "$src")"
	# -fdebug-prefix-map keeps the build directory out of the objects (reproducible).
	"$CLANG" -O2 -g -target bpf -mcpu="$cpu" -I"$ARCH_INC" -I"$PROGS" \
		-fdebug-prefix-map="$ROOT"=. -Wall -Wno-unused-function \
		-c "$src" -o "$obj"
}

for src in "$PROGS"/*.c "$PROGS"/bad/*.c "$ROOT"/ebpfjit/examples/*.c \
	"$ROOT"/tests/security/progs/*.c; do
	[ -e "$src" ] || continue
	build "$src"
done

if [ "${CHECK_KERNEL:-0}" = 1 ]; then
	for obj in "$PROGS"/*.o; do
		if head -3 "${obj%.o}.c" | grep -qi 'not loadable\|not for the kernel'; then
			echo "  SKIP kernel $(basename "$obj")"
			continue
		fi
		pin=/sys/fs/bpf/ebpfjit_check_$$
		if bpftool prog loadall "$obj" "$pin" >/dev/null 2>&1; then
			echo "  OK   kernel $(basename "$obj")"
		else
			echo "  FAIL kernel $(basename "$obj")" >&2
			status=1
		fi
		rm -rf "$pin"
	done
	exit "${status:-0}"
fi
