"""cffi out-of-line API-mode build of the C runtime `ebpfjit._rt`.

Every `csrc/*.h` is #included (sorted; each is self-contained) and every `csrc/*.c` compiled;
every `csrc/cdef/*.h` (sorted) is the cffi declaration text. Adding a C component therefore
means adding files, never editing this script.

`python csrc/build_rt.py` builds the module in place (into ebpfjit/) for development; the build
goes to a temporary name and is renamed into place so concurrent test runs never import a
half-written library. `pip install .` uses `ffibuilder` through setup.py's cffi_modules.
"""
import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _relative(path):
    # setuptools insists on relative source paths inside the project.
    return os.path.relpath(path, os.path.dirname(HERE)) if not os.path.isabs(os.getcwd()) else path


ffibuilder = FFI()
ffibuilder.cdef("\n".join(_read(p) for p in sorted(glob.glob(os.path.join(HERE, "cdef", "*.h")))))
_headers = sorted(os.path.basename(p) for p in glob.glob(os.path.join(HERE, "*.h")))
_sources = sorted(glob.glob(os.path.join(HERE, "*.c")))
_debug = os.environ.get("EBPFJIT_DEBUG_BUILD") == "1"
ffibuilder.set_source(
    "ebpfjit._rt",
    "\n".join(f'#include "{h}"' for h in _headers),
    sources=[os.path.relpath(p, os.getcwd()) for p in _sources],
    include_dirs=[os.path.relpath(HERE, os.getcwd())],
    extra_compile_args=(["-O0", "-g", "-fsanitize=address,undefined"] if _debug
                        else ["-O2", "-g0", "-std=gnu11", "-Wall", "-Wextra",
                              "-Wno-unused-parameter", "-fno-strict-aliasing"]),
    extra_link_args=(["-fsanitize=address,undefined"] if _debug else []),
    libraries=["pthread"],
)


def build_inplace():
    import shutil
    import tempfile
    import sysconfig
    root = os.path.dirname(HERE)
    os.chdir(root)
    tmp = tempfile.mkdtemp(prefix="ebpfjit-build-")
    try:
        built = ffibuilder.compile(tmpdir=tmp, verbose=False)
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
