"""Load-time verification (`verify=True`, opt-in this session) and the `ebpfjit verify` command."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import ebpfjit
from ebpfjit.cli.commands import main
from ebpfjit.errors import EbpfError, VerifierError
from ebpfjit.isa.asm import assemble

PROGS = Path(__file__).resolve().parent.parent / "progs"
NO_DATA_END_CHECK = "ldxw %r2, [%r1+0]\nldxb %r0, [%r2+14]\nmov %r0, 2\nexit"


def test_load_rejects_missing_bounds_check_with_source_line():
    with pytest.raises(VerifierError) as info:
        ebpfjit.load(str(PROGS / "fault_source.o"), programs=["missing_check"], verify=True)
    text = str(info.value)
    assert text.splitlines()[:2] == [
        "invalid access to packet, off=23 size=1, R1(id=0,off=23,r=14)",
        "R1 offset is outside of the packet"]
    assert "insn 6: (71) r1 = *(u8 *)(r1 +23)" in text
    assert "@ fault_source.c:23" in text
    assert info.value.log.splitlines()[-1].startswith("processed ")


def test_load_accepts_and_runs_a_checked_program():
    obj = ebpfjit.load(str(PROGS / "xdp_drop_ip.o"), verify=True)
    assert obj.programs["xdp_drop_ip"].run(bytes(64)) in (1, 2)


def test_verify_stays_opt_in():
    # verify=False is the default this session: the unchecked program loads (run-time checked).
    ebpfjit.load(str(PROGS / "fault_source.o"), programs=["missing_check"])
    ebpfjit.Program.from_bytes(assemble(NO_DATA_END_CHECK), type="xdp")


def test_from_bytes_xdp_without_data_end_check_is_rejected():
    with pytest.raises(VerifierError, match="R2 offset is outside of the packet"):
        ebpfjit.Program.from_bytes(assemble(NO_DATA_END_CHECK), type="xdp", verify=True)


def test_from_bytes_raw_cannot_be_verified():
    with pytest.raises(EbpfError, match="needs a program type"):
        ebpfjit.Program.from_bytes(assemble("mov %r0, 0\nexit"), verify=True)


def test_cli_single_program_accepted(capsys):
    assert main(["verify", str(PROGS / "xdp_drop_ip.o")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("processed ") and "(limit 1000000) max_states_per_insn" in out


def test_cli_rejection_exits_1_with_the_kernel_log(capsys):
    rc = main(["verify", str(PROGS / "fault_source.o"), "--program", "value_overrun"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "invalid access to map value, value_size=8 off=12 size=4" in out.splitlines()
    assert "10: (61) r0 = *(u32 *)(r1 +12)" in out.splitlines()


def test_cli_log_level_2_prints_states(capsys):
    assert main(["verify", str(PROGS / "xdp_drop_ip.o"), "--log-level", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "0: R1=ctx() R10=fp0" in lines
    assert any(line.startswith("2: ") and "R2=pkt_end()" in line for line in lines)


def test_cli_table_for_several_objects(capsys):
    rc = main(["verify", str(PROGS / "xdp_drop_ip.o"), str(PROGS / "fault_source.o")])
    out = capsys.readouterr().out.splitlines()
    assert rc == 1
    assert out[0].split() == ["File", "Program", "Verdict", "Insns", "Processed", "States", "ms"]
    rows = {line.split()[1]: line.split() for line in out[2:5]}
    assert rows["xdp_drop_ip"][2] == "success" and rows["missing_check"][2] == "failure"


def test_cli_json(capsys):
    rc = main(["verify", str(PROGS / "xdp_drop_ip.o"), str(PROGS / "fault_source.o"), "-j"])
    recs = json.loads(capsys.readouterr().out)
    assert rc == 1
    by = {r["program"]: r for r in recs}
    assert by["xdp_drop_ip"]["verdict"] == "success" and by["xdp_drop_ip"]["processed"] > 0
    assert by["value_overrun"]["verdict"] == "failure" and by["value_overrun"]["pc"] == 10


def test_cli_unknown_program(capsys):
    assert main(["verify", str(PROGS / "xdp_drop_ip.o"), "--program", "nope"]) == 1
    assert "no program 'nope'" in capsys.readouterr().err
