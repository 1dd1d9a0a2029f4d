"""Run-time faults name the place: source file:line and text (.BTF.ext line info), the eBPF
instruction, the region and offset, and the packet of a batch; on both engines."""
from __future__ import annotations

from pathlib import Path

import pytest

import ebpfjit
from ebpfjit.errors import ExecutionError

OBJ = Path(__file__).parent / "progs" / "fault_source.o"
ENGINES = ("interp", "jit")


@pytest.fixture(scope="module")
def obj():
    return ebpfjit.load(OBJ)


def _fault(call) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        call()
    return info.value


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_bounds_check_names_source_insn_and_packet_offset(obj, engine):
    prog = obj.program("missing_check")
    err = _fault(lambda: prog.run(bytearray(14), engine=engine))
    assert (err.kind, err.size) == ("oob_load", 1)
    assert (err.source_file, err.line) == ("./tests/progs/fault_source.c", 23)
    assert err.source_text.strip().startswith("if (ip->protocol == 17)")
    assert err.insn_text == "r1 = *(u8 *)(r1 + 0x17)"
    # ip->protocol is byte 23 of the frame: past the 14-byte packet.
    assert (err.region, err.offset) == ("packet", 23)
    lines = str(err).splitlines()
    assert lines[0] == f"pc {err.pc}: out-of-bounds load of 1 bytes at packet offset 23 of 14 bytes"
    assert lines[1] == f"  insn {err.pc}: r1 = *(u8 *)(r1 + 0x17)"
    assert lines[2].startswith("  ; if (ip->protocol == 17)")
    assert lines[2].endswith(" @ ./tests/progs/fault_source.c:23")
    assert f"{err.addr:x}" not in str(err)      # no host address
    assert err.packet_index is None


@pytest.mark.parametrize("engine", ENGINES)
def test_test_run_fault_names_packet_offset(obj, engine):
    prog = obj.program("missing_check")
    err = _fault(lambda: prog.test_run(bytes(20), engine=engine))
    assert (err.region, err.offset, err.line) == ("packet", 23, 23)
    assert "at packet offset 23 of 20 bytes" in str(err)


@pytest.mark.parametrize("engine", ENGINES)
def test_map_value_overrun_names_map_and_value_offset(obj, engine):
    prog = obj.program("value_overrun")
    err = _fault(lambda: prog.run(bytearray(64), engine=engine))
    assert (err.region, err.offset) == ("map 'counts' value", 12)
    assert err.insn_text == "r0 = *(u32 *)(r1 + 0xc)"
    assert err.line == 36
    assert str(err).splitlines()[0].endswith(
        "out-of-bounds load of 4 bytes at map 'counts' value offset 12 of 8 bytes")


@pytest.mark.parametrize("engine", ENGINES)
def test_run_batch_names_the_packet_index(obj, engine):
    prog = obj.program("missing_check")
    packets = [bytes(60), bytes(60), bytes(14), bytes(60)]
    err = _fault(lambda: prog.run_batch(packets, engine=engine))
    assert err.packet_index == 2 and err.batch_index == 2
    assert str(err).startswith(f"packet 2: pc {err.pc}: out-of-bounds load of 1 bytes at "
                               "packet offset 23 of 14 bytes")


def test_stack_fault_names_frame_and_offset():
    prog = ebpfjit.Program.from_asm("ldxdw %r0, [%r10-520]\nexit")
    for engine in ENGINES:
        err = _fault(lambda engine=engine: prog.run(b"", engine=engine))
        assert (err.region, err.offset) == ("stack", -520)
        assert str(err) == ("pc 0: out-of-bounds load of 8 bytes at stack offset -520 of frame 0 "
                            "(512 bytes)\n  insn 0: r0 = *(u64 *)(r10 - 0x208)")


def test_far_address_is_not_printed():
    prog = ebpfjit.Program.from_asm("lddw %r1, 0x123456789000\nldxb %r0, [%r1+0]\nexit")
    for engine in ENGINES:
        err = _fault(lambda engine=engine: prog.run(b"", engine=engine))
        assert err.region is None and err.offset is None
        assert "not in stack, memory or any map" in str(err)
        assert "123456789" not in str(err)


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_run_pcap_fault_names_packet_index_and_source(tmp_path, capsys, engine):
    from ebpfjit.capture import pcap
    from ebpfjit.cli import commands as cli
    path = tmp_path / "in.pcap"
    pcap.write_file(path, [bytes(60), bytes(14), bytes(60)])
    status = cli.main(["run", str(OBJ), "--program", "missing_check", "--engine", engine,
                       "--pcap", str(path)])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("ebpfjit: error: packet 1: pc ")
    assert "out-of-bounds load of 1 bytes at packet offset 23 of 14 bytes" in err
    assert "r1 = *(u8 *)(r1 + 0x17)" in err
    assert "@ ./tests/progs/fault_source.c:23" in err
