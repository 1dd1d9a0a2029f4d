#!/usr/bin/env bash
# Fetch and build the Linux BPF selftests' verifier corpus (tools/testing/selftests/bpf/progs/
# verifier_*.c) into a cache folder; print that folder's build directory on stdout.
#
# The corpus is GPL-2.0: it is fetched and built here, at test time, and never committed.
# Source: Debian's linux-source-6.12 package of the trixie suite, found through a private apt
# configuration (a sources file copied from the machine's own Debian entry with the suite
# changed, its own lists and archive folders), so the machine's apt state is never touched.
# Only tools/testing/selftests/bpf, tools/lib/bpf, tools/include and scripts/bpf_doc.py are
# extracted. bpf_helper_defs.h is generated with bpf_doc.py; the files that include vmlinux.h
# get one dumped from the running kernel's BTF (bpftool btf dump file /sys/kernel/btf/vmlinux
# format c); without it those files are listed in build/failed.txt and the rest still build.
#
# Idempotent and quick when warm: the fetch is skipped once src/.version exists, an object is
# rebuilt only when missing or older than its source, and a warm run does no network access.
#
# Environment: EBPFJIT_SELFTESTS_DIR (default ${XDG_CACHE_HOME:-~/.cache}/ebpfjit-selftests),
# CLANG (default clang-19), BPFTOOL (default bpftool), LINUX_SOURCE_PACKAGE (default
# linux-source-6.12), SUITE (default trixie), JOBS (default: the number of CPUs).
# Exit status: 0 built (some files may have failed: build/failed.txt), 3 the corpus is not
# available here (the reason on stderr, starting "unavailable:"), anything else a bug.
set -euo pipefail

DIR=${EBPFJIT_SELFTESTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ebpfjit-selftests}
CLANG=${CLANG:-clang-19}
BPFTOOL=${BPFTOOL:-bpftool}
PKG=${LINUX_SOURCE_PACKAGE:-linux-source-6.12}
SUITE=${SUITE:-trixie}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
SRC=$DIR/src
BUILD=$DIR/build

unavailable() {
	echo "unavailable: $*" >&2
	exit 3
}

command -v "$CLANG" >/dev/null || unavailable "$CLANG is not installed"
mkdir -p "$DIR"

fetch() {
	command -v apt-get >/dev/null || unavailable "no apt-get to fetch $PKG"
	command -v dpkg-deb >/dev/null || unavailable "no dpkg-deb to unpack $PKG"
	local apt=$DIR/apt
	rm -rf "$apt"
	mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/archives/partial" "$apt/deb"
	# The machine's own Debian entry (deb822 or one-line), suite replaced; security and
	# third-party entries are left out.
	local base=/etc/apt/sources.list.d/debian.sources
	if [ -f "$base" ]; then
		awk -v suite="$SUITE" 'BEGIN { RS = ""; ORS = "\n\n" }
			/URIs:[^\n]*debian\/?(\n|$)/ && !/debian-security/ {
				gsub(/Suites:[^\n]*/, "Suites: " suite); print }' "$base" \
			>"$apt/parts/$SUITE.sources"
	elif [ -f /etc/apt/sources.list ]; then
		awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /security/ && $0 ~ /debian/ {
			for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) { $(i + 1) = suite; break }
			print; exit }' /etc/apt/sources.list >"$apt/parts/$SUITE.list"
	fi
	[ -s "$apt/parts/$SUITE.sources" ] || [ -s "$apt/parts/$SUITE.list" ] ||
		unavailable "no Debian entry in the machine's apt sources to copy"
	local opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/parts"
		-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::Archives=$apt/archives"
		-o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root"
		-o "Debug::NoLocking=1" -qq)
	echo "selftests: apt-get update ($SUITE, private lists)" >&2
	apt-get "${opts[@]}" update >&2 || unavailable "apt-get update of $SUITE failed (network?)"
	(cd "$apt/deb" && apt-get "${opts[@]}" download "$PKG" >&2) ||
		unavailable "apt-get download $PKG failed"
	local deb
	deb=$(ls "$apt"/deb/*.deb)
	local version
	version=$(dpkg-deb -f "$deb" Version)
	echo "selftests: extracting $PKG $version" >&2
	local tmp=$DIR/src.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	local top=${PKG}
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$top.tar.xz" | xz -dc |
		tar -x -C "$tmp" --strip-components=1 \
			"$top/tools/testing/selftests/bpf" "$top/tools/lib/bpf" "$top/tools/include" \
			"$top/scripts/bpf_doc.py"
	echo "$PKG $version" >"$tmp/.version"
	rm -rf "$SRC" "$apt"
	mv "$tmp" "$SRC"
}

[ -f "$SRC/.version" ] || fetch

SELF=$SRC/tools/testing/selftests/bpf
INC=$BUILD/include
mkdir -p "$INC/bpf" "$BUILD/obj"
# libbpf's headers as the selftests' Makefile installs them (<bpf/bpf_helpers.h> ...).
for h in "$SRC"/tools/lib/bpf/*.h; do
	[ "$INC/bpf/$(basename "$h")" -nt "$h" ] || cp "$h" "$INC/bpf/"
done
if [ ! -s "$INC/bpf/bpf_helper_defs.h" ]; then
	python3 "$SRC/scripts/bpf_doc.py" --header --file "$SRC/tools/include/uapi/linux/bpf.h" \
		>"$INC/bpf/bpf_helper_defs.h.tmp"
	mv "$INC/bpf/bpf_helper_defs.h.tmp" "$INC/bpf/bpf_helper_defs.h"
fi
if [ ! -s "$INC/vmlinux.h" ] && [ -r /sys/kernel/btf/vmlinux ] && command -v "$BPFTOOL" >/dev/null; then
	"$BPFTOOL" btf dump file /sys/kernel/btf/vmlinux format c >"$INC/vmlinux.h.tmp" &&
		mv "$INC/vmlinux.h.tmp" "$INC/vmlinux.h" || rm -f "$INC/vmlinux.h.tmp"
fi

# The selftests' BPF_CFLAGS and CLANG_BPF_BUILD_RULE (test_progs flavour), without -Werror:
# a vmlinux.h from a newer kernel than the sources can add warnings.
ARCH=$(uname -m)
case $ARCH in x86_64) TARGET_ARCH=x86 ;; aarch64) TARGET_ARCH=arm64 ;; *) TARGET_ARCH=$ARCH ;; esac
export CLANG SELF INC BUILD TARGET_ARCH ARCH
build_one() {
	local src=$1 name obj
	name=$(basename "$src" .c)
	obj=$BUILD/obj/$name.o
	[ "$obj" -nt "$src" ] && return 0
	if "$CLANG" -g -Wall -D__TARGET_ARCH_"$TARGET_ARCH" -mlittle-endian -I"$INC" -I"$SELF" \
		-I"$SELF/../../../include/uapi" -I"$SELF/../../../include" \
		-Wno-compare-distinct-pointer-types -idirafter "/usr/include/$ARCH-linux-gnu" \
		-idirafter /usr/include -DENABLE_ATOMICS_TESTS -O2 --target=bpf -mcpu=v3 \
		-c "$src" -o "$obj.tmp" 2>"$BUILD/obj/$name.err"; then
		mv "$obj.tmp" "$obj"
		rm -f "$BUILD/obj/$name.err"
	else
		rm -f "$obj.tmp"
		echo "$name"
	fi
}
export -f build_one
ls "$SELF"/progs/verifier_*.c | xargs -P "$JOBS" -I{} bash -c 'build_one "$@"' _ {} \
	| sort >"$BUILD/failed.txt"
if [ -s "$BUILD/failed.txt" ]; then
	echo "selftests: $(wc -l <"$BUILD/failed.txt") files did not build (build/obj/*.err):" \
		"$(tr '\n' ' ' <"$BUILD/failed.txt")" >&2
fi
cp "$SRC/.version" "$BUILD/version"
echo "$BUILD"
