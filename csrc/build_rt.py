"""cffi out-of-line API-mode build of the C runtime `ebpfjit._rt`.

Every `csrc/*.h` is #included (sorted; each is self-contained) and every `csrc/*.c` compiled;
the cffi declaration text is generated from the headers' `/* cffi:begin */ ... /* cffi:end */`
sections (csrc/cdefgen.py), so C declares each type and prototype once. Adding a C component
therefore means adding files, never editing this script.

`python csrc/build_rt.py` builds the module in place (into ebpfjit/) for development; the build
goes to a temporary name and is renamed into place so concurrent test runs never import a
half-written library. `pip install .` uses `ffibuilder` through setup.py's cffi_modules.
"""
import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
# setup.py's cffi_modules execs this file without csrc/ on sys.path.
sys.path.insert(0, HERE)
import cdefgen  # noqa: E402


def _string_op_flags() -> list[str]:
    """On x86-64, have the compiler call glibc for memset/memcpy instead of inlining `rep
    stos`/`rep movs`: those cost ~50 ns each on the AMD hosts measured (the XDP model clears
    328 bytes and copies the packet per run, bench/README.md), glibc's vector code a few ns.
    Only when the compiler accepts the option (gcc does; clang does not)."""
    import platform
    import shlex
    import subprocess
    import sysconfig
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    flag = "-mstringop-strategy=libcall"
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    try:
        ok = subprocess.run([*cc, flag, "-x", "c", "-c", "-o", os.devnull, "-"], input=b"int x;",
                            capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return [flag] if ok else []


def make_ffibuilder(absolute_paths: bool = False) -> FFI:
    """The builder; setuptools wants project-relative paths, while an in-place build compiles
    inside cffi's temporary directory and so needs absolute ones."""
    root = os.path.dirname(HERE)

    def path(p):
        return os.path.abspath(p) if absolute_paths else os.path.relpath(p, root)

    builder = FFI()
    header_paths = sorted(glob.glob(os.path.join(HERE, "*.h")))
    builder.cdef(cdefgen.generate(header_paths))
    headers = [os.path.basename(p) for p in header_paths]
    debug = os.environ.get("EBPFJIT_DEBUG_BUILD") == "1"
    builder.set_source(
        "ebpfjit._rt",
        "\n".join(f'#include "{h}"' for h in headers),
        sources=[path(p) for p in sorted(glob.glob(os.path.join(HERE, "*.c")))],
        include_dirs=[path(HERE)],
        extra_compile_args=(["-O0", "-g", "-fsanitize=address,undefined"] if debug
                            else ["-O2", "-g0", "-std=gnu11", "-Wall", "-Wextra",
                                  "-Wno-unused-parameter", "-fno-strict-aliasing",
                                  "-fno-semantic-interposition", *_string_op_flags()]),
        extra_link_args=(["-fsanitize=address,undefined"] if debug else []),
        libraries=["pthread"],
    )
    return builder


# setup.py's cffi_modules runs from the project root.
ffibuilder = make_ffibuilder()


def build_inplace():
    import shutil
    import sysconfig
    import tempfile
    root = os.path.dirname(HERE)
    os.chdir(root)
    tmp = tempfile.mkdtemp(prefix="ebpfjit-build-")
    try:
        built = make_ffibuilder(absolute_paths=True).compile(tmpdir=tmp, verbose=False)
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        dest = os.path.join(root, "ebpfjit", "_rt" + suffix)
        staging = dest + f".tmp{os.getpid()}"
        shutil.copyfile(built, staging)
        os.replace(staging, dest)
        print(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    build_inplace()
    sys.exit(0)
