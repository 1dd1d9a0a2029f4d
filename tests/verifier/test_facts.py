"""The verifier's per-instruction facts (ebpfjit.verifier.facts), which the JIT's check-free
lowering consumes: regions and proven bounds of every access, joined over every verified path
(pruned ones included), bounded back-edges, known maps of helper calls."""
from __future__ import annotations

import pytest

from ebpfjit.errors import VerifierError
from ebpfjit.isa.asm import assemble
from ebpfjit.isa.insn import decode, iter_pcs
from ebpfjit.isa.opcodes import Kind
from ebpfjit.objects.elf import load_spec
from ebpfjit.verifier import verify, verify_spec
from ebpfjit.verifier.facts import Access
from tests.support.paths import PROGS_DIR

MEMORY_KINDS = (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC)


def _facts(name: str, program: str):
    spec = load_spec(str(PROGS_DIR / name))
    return verify_spec(spec.programs[program], spec).facts, spec


def test_every_region_of_a_clang_program():
    facts, spec = _facts("verified_facts.o", "xdp_facts")
    slots = list(spec.maps).index("slots")
    bss = list(spec.maps).index(".bss")
    by_region = {}
    for pc, a in facts.accesses.items():
        by_region.setdefault((a.region, a.frame, a.map), []).append(pc)
    # ctx->data and ctx->data_end, as the program wrote them (before the context rewrite).
    assert sorted((facts.access(pc).lo, facts.access(pc).hi)
                  for pc in by_region[("ctx", None, None)]) == [(0, 4), (4, 8)]
    # The packet reads p[0..15] after `data + 16 > data_end`: proven range 16.
    packet = [facts.access(pc) for pc in by_region[("packet", None, None)]]
    assert min(a.lo for a in packet) == 0 and max(a.hi for a in packet) == 16
    assert {a.limit for a in packet} == {16}
    # buf[i] = ... in a loop: the whole 8-byte buffer at fp-8 joined over the iterations.
    loop_store = [facts.access(pc) for pc in by_region[("stack", 0, None)]
                  if facts.access(pc).write and facts.access(pc).hi - facts.access(pc).lo == 8]
    assert loop_store and loop_store[0].lo == 512 - 8 and loop_store[0].hi == 512
    # sum_bytes reads its caller's buffer through a pointer: frame 1 (one up), same bytes.
    (callee_read,) = by_region[("stack", 1, None)]
    assert facts.access(callee_read) == Access("stack", 504, 512, 512, False, 1, None)
    # val[p[8] & 7]: a variable index into the 64-byte value of `slots`.
    value = [facts.access(pc) for pc in by_region[("map_value", None, slots)]]
    assert {(a.lo, a.hi, a.limit) for a in value} == {(0, 64, 64)}
    assert any(a.write for a in value)
    # packets_seen++ in .bss.
    assert {(a.lo, a.hi) for pc in by_region[("map_value", None, bss)]
            for a in [facts.access(pc)]} == {(0, 8)}
    # Two loops, both simulated to their end; the lookup's map is known.
    insns = dict(iter_pcs(decode(spec.programs["xdp_facts"].code)))
    assert len(facts.bounded_back_edges) == 3
    for pc in facts.bounded_back_edges:
        assert insns[pc].kind in (Kind.JA, Kind.JCOND) and insns[pc].branch_target(pc) <= pc
    calls = [pc for pc, i in insns.items() if i.kind is Kind.CALL and i.src == 0 and i.imm == 1]
    assert [facts.map_arg(pc) for pc in calls] == [slots]
    assert not facts.mixed


def _objects():
    for path in sorted(PROGS_DIR.glob("*.o")):
        spec = load_spec(str(path))
        for name in spec.programs:
            yield pytest.param(path.name, name, id=f"{path.stem}:{name}")


@pytest.mark.parametrize("obj,program", _objects())
def test_facts_are_proofs_on_every_verified_object(obj, program):
    """On every clang-built program the verifier accepts: a fact sits on a memory instruction
    the walk reached, and its bounds lie inside the region size the proof used."""
    spec = load_spec(str(PROGS_DIR / obj))
    try:
        result = verify_spec(spec.programs[program], spec)
    except VerifierError:
        pytest.skip("rejected by the verifier (no facts)")
    facts = result.facts
    insns = dict(iter_pcs(decode(spec.programs[program].code)))
    assert facts.visited <= set(insns)
    for pc, a in facts.accesses.items():
        assert insns[pc].kind in MEMORY_KINDS and pc in facts.visited
        size = insns[pc].info.size
        assert 0 <= a.lo < a.hi and a.hi - a.lo >= size
        if a.region in ("packet", "packet_meta"):
            assert a.lo + size <= a.limit, (pc, a)   # variable offsets: checked per base
        else:
            assert a.hi <= a.limit, (pc, a)
        if a.region == "stack":
            assert a.limit == 512 and a.frame >= 0
        if a.region in ("map_value", "map_key"):
            m = list(spec.maps.values())[a.map] if a.map >= 0 else None
            if m is not None:
                assert a.limit == (m.value_size if a.region == "map_value" else m.key_size)
        if insns[pc].kind in (Kind.ST, Kind.STX, Kind.ATOMIC):
            assert a.write
    for pc in facts.bounded_back_edges:
        assert insns[pc].branch_target(pc) <= pc


# Two paths reach the access at pc 10 + (lines of `second`) with r6 at different places.
def _two_paths(second: str) -> bytes:
    n = len(second.splitlines())
    return assemble(f"""
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r0, 2
        mov %r4, %r2
        add %r4, 8
        jgt %r4, %r3, +{5 + n}
        ldxb %r5, [%r2+0]
        mov %r6, %r2
        stdw [%r10-8], 0
        jeq %r5, 0, +{n}
        {second}
        ldxb %r0, [%r6+0]
        exit""")


def test_paths_touching_one_region_join_their_bounds():
    facts = verify(_two_paths("add %r6, 4"), "xdp").facts
    assert facts.access(11) == Access("packet", 0, 5, 8, False)


def test_paths_touching_different_regions_leave_no_fact():
    facts = verify(_two_paths("mov %r6, %r10\nadd %r6, -8"), "xdp").facts
    assert facts.access(12) is None and 12 in facts.mixed
    assert facts.access(6) == Access("packet", 0, 1, 8, False)


def test_a_pruned_path_is_covered_by_the_state_that_pruned_it():
    """r5 in [0, 7] reaches pc 4 first; the path with r5 = 5 is pruned there (subsumed), and
    the access at pc 6 was walked once: its fact, from the wider state, covers both."""
    code = assemble("""
        ldxb %r5, [%r1+0]
        and %r5, 7
        jeq %r5, 5, +1
        ja +0
        mov %r6, %r1
        add %r6, %r5
        ldxb %r0, [%r6+8]
        exit""")
    result = verify(code, "unspec", mem_size=16, log_level=2)
    walked = [line for line in result.log.splitlines() if line.startswith("6: (71)")]
    assert len(walked) == 1             # the second path stopped at pc 4
    assert result.facts.access(6) == Access("mem", 8, 16, 16, False)


def test_raw_convention_needs_a_memory_size_and_facts_use_it():
    code = assemble("ldxdw %r0, [%r1+8]\nexit")
    assert verify(code, "unspec", mem_size=16).facts.access(0) == Access("mem", 8, 16, 16, False)
    with pytest.raises(VerifierError, match="invalid access to memory, mem_size=12"):
        verify(code, "unspec", mem_size=12)
    with pytest.raises(VerifierError, match="raw"):
        verify(code, "xdp", mem_size=16)


def test_facts_key_changes_with_the_facts():
    a = verify(_two_paths("add %r6, 4"), "xdp").facts
    b = verify(_two_paths("add %r6, 5"), "xdp").facts
    assert a.key() != b.key() and a.key() == verify(_two_paths("add %r6, 4"), "xdp").facts.key()
