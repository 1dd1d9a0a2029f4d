"""Tests of ebpfjit.kernel against the running kernel (bpf(2)); they skip when it is not usable.

Programs are encoded here from raw instructions so these tests depend on nothing but the
kernel module itself.
"""
from __future__ import annotations

import errno
import glob
import importlib.util
import os
import struct

import pytest

from ebpfjit.errors import KernelError, KernelUnavailable, MapError
from ebpfjit.objects.spec import BPF_F_RDONLY_PROG, MapSpec, MapType, ObjectSpec, ProgramSpec, ProgType
from ebpfjit.oracle import kernel

XDP_DROP, XDP_PASS = 1, 2
HELPER_MAP_LOOKUP_ELEM = 1
PROGS = os.path.join(os.path.dirname(__file__), "progs")


# -- a tiny encoder (opcode, dst, src, off, imm), enough for the programs below -------------

def insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, dst | src << 4, off, imm)


def lddw(dst: int, imm: int, src: int = 0, imm2: int = 0) -> bytes:
    return insn(0x18, dst, src, 0, imm) + insn(0, 0, 0, 0, imm2)


def mov64_imm(dst, imm): return insn(0xb7, dst, imm=imm)
def mov64_reg(dst, src): return insn(0xbf, dst, src)
def add64_imm(dst, imm): return insn(0x07, dst, imm=imm)
def ldxw(dst, src, off): return insn(0x61, dst, src, off)
def ldxb(dst, src, off): return insn(0x71, dst, src, off)
def ldxdw(dst, src, off): return insn(0x79, dst, src, off)
def stw(dst, off, imm): return insn(0x62, dst, 0, off, imm)
def jgt_reg(dst, src, off): return insn(0x2d, dst, src, off)
def jne_imm(dst, imm, off): return insn(0x55, dst, 0, off, imm)
def jeq_imm(dst, imm, off): return insn(0x15, dst, 0, off, imm)
def atomic_add64(dst, src, off): return insn(0xdb, dst, src, off, 0x00)
def call(imm): return insn(0x85, imm=imm)
def exit_(): return insn(0x95)


def program(*insns: bytes) -> bytes:
    return b"".join(insns)


# XDP: drop when packet byte 14 (the first byte after the Ethernet header) is 0x42.
XDP_BYTE_FILTER = program(
    mov64_imm(0, XDP_PASS),
    ldxw(2, 1, 0),              # r2 = ctx->data
    ldxw(3, 1, 4),              # r3 = ctx->data_end
    mov64_reg(4, 2),
    add64_imm(4, 15),
    jgt_reg(4, 3, 3),           # packet shorter than 15 bytes: pass
    ldxb(5, 2, 14),
    jne_imm(5, 0x42, 1),
    mov64_imm(0, XDP_DROP),
    exit_(),
)


def count_in_map(map_index: int) -> bytes:
    """Look up key 0 of map `map_index`; when present, atomically add 1 to its u64 value."""
    return program(
        stw(10, -4, 0),
        mov64_reg(2, 10),
        add64_imm(2, -4),
        lddw(1, map_index, src=1),
        call(HELPER_MAP_LOOKUP_ELEM),
        jeq_imm(0, 0, 2),
        mov64_imm(1, 1),
        atomic_add64(0, 1, 0),
    )


COUNTER = program(count_in_map(0), count_in_map(1), mov64_imm(0, XDP_PASS), exit_())

# Socket filter returning skb->len (accept the whole packet).
SOCKET_LEN = program(ldxw(0, 1, 0), exit_())

PACKET = bytes(14) + b"\x45" + bytes(49)


@pytest.fixture(scope="module")
def bpf():
    """Skip with the kernel's reason when this process cannot use bpf(2)."""
    try:
        kernel.check(ProgType.XDP, ProgType.SOCKET_FILTER, ProgType.SCHED_CLS, ProgType.RAW_TRACEPOINT)
    except KernelUnavailable as exc:
        pytest.skip(str(exc))
    return kernel


def test_relocate_maps_rewrites_only_map_lddw():
    code = program(lddw(1, 1, src=1), lddw(2, 0, src=2, imm2=8), lddw(3, 7), exit_())
    out = kernel.relocate_maps(code, [100, 200])
    assert struct.unpack_from("<i", out, 4)[0] == 200
    assert struct.unpack_from("<i", out, 16 + 4)[0] == 100
    assert struct.unpack_from("<i", out, 24 + 4)[0] == 8       # MAP_VALUE offset kept
    assert struct.unpack_from("<i", out, 32 + 4)[0] == 7       # plain lddw untouched
    with pytest.raises(KernelError, match="map index 1"):
        kernel.relocate_maps(code, [100])


def test_possible_cpus_matches_sysfs():
    assert kernel.possible_cpus() >= 1


@pytest.mark.kernel
def test_xdp_pass_and_drop(bpf):
    with kernel.KernelProgram(ProgType.XDP, XDP_BYTE_FILTER, name="xdp_byte_filter") as prog:
        assert prog.test_run(PACKET).retval == XDP_PASS
        run = prog.test_run(bytes(14) + b"\x42" + bytes(49))
        assert run.retval == XDP_DROP
        assert run.data_out == bytes(14) + b"\x42" + bytes(49)
        assert "processed" in prog.verifier_log


@pytest.mark.kernel
def test_repeat_reports_a_duration(bpf):
    with kernel.KernelProgram(ProgType.XDP, XDP_BYTE_FILTER) as prog:
        retval, data_out, duration_ns, ctx_out = prog.test_run(PACKET, repeat=1000)
        assert retval == XDP_PASS
        assert duration_ns > 0
        assert ctx_out is None


@pytest.mark.kernel
def test_xdp_ctx_in_and_out(bpf):
    # struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
    ctx = struct.pack("<6I", 0, len(PACKET), 0, 0, 0, 0)
    with kernel.KernelProgram(ProgType.XDP, XDP_BYTE_FILTER) as prog:
        run = prog.test_run(PACKET, ctx_in=ctx)
        assert run.retval == XDP_PASS
        assert run.ctx_out is not None and len(run.ctx_out) == len(ctx)


@pytest.mark.kernel
def test_socket_filter_test_run(bpf):
    with kernel.KernelProgram(ProgType.SOCKET_FILTER, SOCKET_LEN, name="sock_len") as prog:
        # A socket filter sees the skb after eth_type_trans() pulled the Ethernet header.
        assert prog.test_run(PACKET).retval == len(PACKET) - 14


@pytest.mark.kernel
def test_sched_cls_test_run(bpf):
    with kernel.KernelProgram(ProgType.SCHED_CLS, SOCKET_LEN, name="cls_len") as prog:
        # tc runs at L2: the kernel pushes the Ethernet header back for SCHED_CLS.
        assert prog.test_run(PACKET).retval == len(PACKET)


@pytest.mark.kernel
def test_raw_tracepoint_runs_on_ctx_only(bpf):
    with kernel.KernelProgram(ProgType.RAW_TRACEPOINT, program(ldxdw(0, 1, 8), exit_())) as prog:
        run = prog.test_run(None, ctx_in=struct.pack("<QQ", 1, 1234))
        assert run.retval == 1234
        assert run.data_out == b""


@pytest.mark.kernel
def test_rejected_program_carries_the_verifier_log(bpf):
    with pytest.raises(KernelError) as info:
        kernel.KernelProgram(ProgType.XDP, exit_(), name="uninit_r0")   # r0 never written
    assert info.value.errno == errno.EACCES
    assert "R0 !read_ok" in info.value.log
    assert "R0 !read_ok" in str(info.value)
    assert not isinstance(info.value, KernelUnavailable)


@pytest.mark.kernel
def test_explicit_log_level_keeps_the_instruction_trace(bpf):
    with kernel.KernelProgram(ProgType.XDP, XDP_BYTE_FILTER, log_level=2) as prog:
        assert "(95) exit" in prog.verifier_log


@pytest.mark.kernel
def test_counters_in_array_and_hash_maps(bpf):
    array = MapSpec("counts", MapType.ARRAY, 4, 8, 4)
    table = MapSpec("table", MapType.HASH, 4, 8, 16)
    with kernel.KernelMap(array) as amap, kernel.KernelMap(table) as hmap:
        hmap.update(0, struct.pack("<Q", 100))
        with kernel.KernelProgram(ProgType.XDP, COUNTER, map_fds=[amap, hmap.fd]) as prog:
            assert prog.test_run(PACKET, repeat=7).retval == XDP_PASS
            assert prog.info().nr_map_ids == 2
        assert struct.unpack("<Q", amap.lookup(0))[0] == 7
        assert struct.unpack("<Q", hmap.lookup(0))[0] == 107
        assert dict(hmap.items()) == {bytes(4): struct.pack("<Q", 107)}


@pytest.mark.kernel
def test_global_data_rodata_is_frozen_and_readable(bpf):
    data = struct.pack("<QQ", 0x1111, 0xc0ffee)
    spec = ObjectSpec(
        path="/tmp/global_data_object.o",
        maps={".rodata": MapSpec(".rodata", MapType.ARRAY, 4, 16, 1, flags=BPF_F_RDONLY_PROG,
                                 initial=data, section=".rodata")},
        programs={"read_const": ProgramSpec(
            "read_const", "socket", ProgType.SOCKET_FILTER,
            program(lddw(1, 0, src=2, imm2=8), ldxw(0, 1, 0), exit_()), license="GPL")},
    )
    with kernel.KernelObject(spec) as obj:
        rodata = obj.maps[".rodata"]
        assert rodata.name == "global_d_rodata"
        assert len(rodata.name) <= 15
        assert rodata.lookup(0) == data
        assert obj.programs["read_const"].test_run(PACKET).retval == 0xc0ffee
        with pytest.raises(KernelError) as info:
            rodata.update(0, bytes(16))
        assert info.value.errno == errno.EPERM


@pytest.mark.kernel
def test_info_and_jited_disassembly(bpf):
    with kernel.KernelProgram(ProgType.XDP, XDP_BYTE_FILTER, name="xdp_info") as prog:
        info = prog.info()
    assert info.name == "xdp_info"
    assert len(info.tag) == 16
    assert info.xlated and len(info.xlated) % 8 == 0
    assert info.jited
    assert sum(info.jited_func_lens) == len(info.jited)
    funcs = kernel.jited_disassembly(info)
    assert len(funcs) == len(info.jited_func_lens)
    assert funcs[0] and funcs[0][0].startswith("0x0000:")
    assert "function 0" in kernel.format_jited(info)


@pytest.mark.kernel
def test_hash_map_crud_and_update_flags(bpf):
    with kernel.KernelMap(MapSpec("crud_map_with_a_long_name", MapType.HASH, 4, 4, 8)) as m:
        assert m.name == "crud_map_with_a"
        assert m.lookup(1) is None
        m.update(1, b"aaaa", kernel.BPF_NOEXIST)
        with pytest.raises(KernelError) as info:
            m.update(1, b"bbbb", kernel.BPF_NOEXIST)
        assert info.value.errno == errno.EEXIST
        with pytest.raises(KernelError) as info:
            m.update(2, b"bbbb", kernel.BPF_EXIST)
        assert info.value.errno == errno.ENOENT
        m.update(1, b"cccc", kernel.BPF_EXIST)
        m[2] = b"dddd"
        assert m[1] == b"cccc"
        assert sorted(m.keys()) == [struct.pack("<I", 1), struct.pack("<I", 2)]
        assert len(m) == 2
        m.delete(1)
        with pytest.raises(KernelError) as info:
            m.delete(1)
        assert info.value.errno == errno.ENOENT
        assert list(m.items()) == [(struct.pack("<I", 2), b"dddd")]
        with pytest.raises(MapError):
            m.update(3, b"too long")
    assert m.closed


@pytest.mark.kernel
def test_array_map_is_full_and_rejects_delete(bpf):
    with kernel.KernelMap(MapSpec("arr", MapType.ARRAY, 4, 8, 3)) as m:
        assert [k for k, _ in m.items()] == [struct.pack("<I", i) for i in range(3)]
        with pytest.raises(KernelError) as info:
            m.update(3, bytes(8))
        assert info.value.errno == errno.E2BIG
        with pytest.raises(KernelError):
            m.delete(0)


@pytest.mark.kernel
@pytest.mark.parametrize("map_type", [MapType.PERCPU_ARRAY, MapType.PERCPU_HASH,
                                      MapType.LRU_PERCPU_HASH])
def test_percpu_maps_return_one_value_per_possible_cpu(bpf, map_type):
    ncpu = kernel.possible_cpus()
    with kernel.KernelMap(MapSpec("pcpu", map_type, 4, 4, 4)) as m:
        values = [struct.pack("<I", 10 + i) for i in range(ncpu)]
        m.update(1, values)
        assert m.lookup(1) == values
        m.update(2, b"same")
        assert m.lookup(2) == [b"same"] * ncpu
        with pytest.raises(MapError):
            m.update(1, values + values)


@pytest.mark.kernel
def test_percpu_counter_sums_over_cpus(bpf):
    with kernel.KernelMap(MapSpec("pcpu_counts", MapType.PERCPU_ARRAY, 4, 8, 1)) as m, \
            kernel.KernelMap(MapSpec("h", MapType.HASH, 4, 8, 1)) as h:
        with kernel.KernelProgram(ProgType.XDP, COUNTER, map_fds=[m, h]) as prog:
            prog.test_run(PACKET, repeat=5)
        assert sum(struct.unpack("<Q", v)[0] for v in m.lookup(0)) == 5


@pytest.mark.kernel
def test_queue_map_push_and_peek(bpf):
    with kernel.KernelMap(MapSpec("q", MapType.QUEUE, 0, 4, 4)) as q:
        assert q.lookup() is None
        q.update(None, b"one!")
        q.update(None, b"two!")
        assert q.lookup() == b"one!"


@pytest.mark.kernel
def test_map_in_map_with_inner_template(bpf):
    inner = MapSpec("inner", MapType.ARRAY, 4, 4, 2)
    outer = MapSpec("outer", MapType.ARRAY_OF_MAPS, 4, 4, 2, inner=inner)
    with kernel.KernelMap(outer) as o, kernel.KernelMap(inner) as i:
        o.update(0, i)
        assert len(o.lookup(0)) == 4      # the kernel returns the inner map's id


@pytest.mark.kernel
def test_object_fills_prog_array_after_loading(bpf):
    spec = ObjectSpec(
        path="tail.o",
        maps={"jmp": MapSpec("jmp", MapType.PROG_ARRAY, 4, 4, 2, values={1: "target"})},
        programs={"target": ProgramSpec("target", "xdp", ProgType.XDP,
                                        program(mov64_imm(0, XDP_DROP), exit_()), license="GPL")},
    )
    with kernel.KernelObject(spec) as obj:
        assert obj.maps["jmp"].lookup(1) is not None
        assert obj.maps["jmp"].lookup(0) is None
    assert obj.maps["jmp"].closed and obj.programs["target"].closed


@pytest.mark.kernel
def test_failed_object_closes_what_it_created(bpf):
    spec = ObjectSpec(
        path="bad.o",
        maps={"m": MapSpec("m", MapType.ARRAY, 4, 4, 1)},
        programs={"bad": ProgramSpec("bad", "xdp", ProgType.XDP, exit_(), license="GPL")},
    )
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(KernelError):
        kernel.KernelObject(spec)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.kernel
def test_unsupported_map_type_is_a_kernel_error(bpf):
    with pytest.raises(KernelError) as info:
        kernel.KernelMap(MapSpec("bad", MapType.ARRAY, 4, 4, 0))     # max_entries 0
    assert info.value.errno == errno.EINVAL


def _btf_blob() -> bytes:
    """BTF for `int main_prog(void *ctx)` calling the global `int add_one(int x)`."""
    strings = b"\0int\0x\0ctx\0main_prog\0add_one\0"
    off = {name: strings.index(name.encode() + b"\0") for name in ("int", "x", "ctx", "main_prog", "add_one")}

    def head(name, kind, vlen, size_type):
        return struct.pack("<III", off[name] if name else 0, kind << 24 | vlen, size_type)
    types = b"".join([
        head("int", 1, 0, 4) + struct.pack("<I", 1 << 24 | 32),         # [1] int
        head("", 13, 1, 1) + struct.pack("<II", off["x"], 1),           # [2] int (int x)
        head("main_prog", 12, 1, 4),                                    # [3] global func
        head("", 13, 1, 1) + struct.pack("<II", off["ctx"], 5),         # [4] int (void *ctx)
        head("", 2, 0, 0),                                              # [5] void *
        head("add_one", 12, 1, 2),                                      # [6] global func
    ])
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)) \
        + types + strings


@pytest.mark.kernel
def test_object_loads_btf_func_and_line_info(bpf):
    from ebpfjit.objects.btf import Btf
    code = program(mov64_imm(1, 41), insn(0x85, src=1, imm=1), exit_(),
                   mov64_reg(0, 1), add64_imm(0, 1), exit_())
    spec = ObjectSpec(
        path="global_func.o", maps={}, btf=Btf.parse(_btf_blob()),
        programs={"main_prog": ProgramSpec(
            "main_prog", "socket", ProgType.SOCKET_FILTER, code, license="GPL",
            func_offsets={"main_prog": 0, "add_one": 3},
            line_info=[(0, "global_func.c", 3, "return add_one(41);"),
                       (3, "global_func.c", 7, "return x + 1;")])},
    )
    with kernel.KernelObject(spec) as obj:
        prog = obj.programs["main_prog"]
        assert obj.btf is not None and obj.btf.fd >= 0
        assert prog.test_run(PACKET).retval == 42
        info = prog.info()
        assert info.btf_id != 0
        assert len(info.jited_func_lens) == 2
        assert len(info.jited_line_info) == 2
        assert len(kernel.jited_disassembly(info)) == 2
    assert obj.btf.fd < 0


def _progs() -> list[str]:
    # ci/build_testdata.sh's convention: a source saying so faults on purpose (fault_source).
    return sorted(p for p in glob.glob(os.path.join(PROGS, "*.o"))
                  if not open(p[:-2] + ".c").read().startswith("// Not loadable by the kernel"))


@pytest.mark.kernel
@pytest.mark.parametrize("path", _progs(), ids=os.path.basename)
def test_progs_objects_load_in_the_kernel(bpf, path):
    if importlib.util.find_spec("ebpfjit.objects.elf") is None:
        pytest.skip("ebpfjit.objects.elf is not written yet")
    from ebpfjit.objects.elf import load_spec
    spec = load_spec(path)
    # fentry/fexit/lsm/freplace need attach_btf_id resolved in vmlinux BTF, which
    # KernelObject does not do.
    needs_vmlinux = {name for name, p in spec.programs.items()
                     if p.type in (ProgType.TRACING, ProgType.LSM, ProgType.EXT, ProgType.STRUCT_OPS)}
    # A section libbpf does not know gives no program type (UNSPEC): nothing can load it.
    untyped = {name for name, p in spec.programs.items() if p.type == ProgType.UNSPEC}
    chosen = [name for name in spec.programs if name not in needs_vmlinux | untyped]
    with kernel.KernelObject(spec, chosen) as obj:
        assert set(obj.programs) == set(chosen)
        for prog in obj.programs.values():
            assert prog.fd >= 0
    if needs_vmlinux:
        pytest.xfail(f"{sorted(needs_vmlinux)} need attach_btf_id from vmlinux BTF (not implemented)")
