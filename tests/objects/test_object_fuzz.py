"""Mutated real objects that still load must still run safely: random changes to the
instruction bytes of clang-built programs give a result or an EbpfError on both engines, never a
crash, a hang or another exception type."""
from __future__ import annotations

import io
import random

import pytest
from elftools.elf.elffile import ELFFile

import ebpfjit
from ebpfjit.errors import EbpfError
from tests.support.paths import PROGS_DIR

OBJECTS = ["xdp_parser_counters", "xdp_tx_rewrite", "subprog_calls", "atomics", "tc_classifier",
           "socket_filter", "isa_v4", "map_in_map", "bpf_loop", "tail_calls"]
PACKET = bytes.fromhex("020000000002020000000001080045000028000100004006000000000a0000010a000002"
                       "04d2005000000000000000005002040000000000") + bytes(16)


def _code_ranges(blob: bytes) -> list[tuple[int, int]]:
    elf = ELFFile(io.BytesIO(blob))
    return [(s["sh_offset"], s["sh_size"]) for s in elf.iter_sections()
            if s["sh_flags"] & 0x4 and s["sh_size"]]          # SHF_EXECINSTR


def _mutate(blob: bytes, rng: random.Random) -> bytes:
    data = bytearray(blob)
    ranges = _code_ranges(blob)
    for _ in range(rng.randint(1, 4)):
        off, size = rng.choice(ranges)
        slot = off + 8 * rng.randrange(size // 8)
        choice = rng.random()
        if choice < 0.4:                     # one random byte of a slot
            data[slot + rng.randrange(8)] = rng.randrange(256)
        elif choice < 0.7:                   # the offset field: stray jumps and memory offsets
            data[slot + 2:slot + 4] = rng.randrange(-600, 600).to_bytes(2, "little", signed=True)
        else:                                # the registers: pointers swapped for scalars
            data[slot + 1] = rng.randrange(256)
    return bytes(data)


@pytest.mark.parametrize("engine, count", [("interp", 40), ("jit", 8)])
@pytest.mark.parametrize("name", OBJECTS)
def test_mutated_programs_run_safely(name, engine, count):
    blob = (PROGS_DIR / f"{name}.o").read_bytes()
    rng = random.Random(f"{name}-{engine}")
    ran = 0
    for _ in range(count * 20):
        if ran >= count:
            break
        mutated = _mutate(blob, rng)
        try:
            obj = ebpfjit.load(mutated)
        except EbpfError:
            continue
        for prog in obj.programs.values():
            prog.opt_level = 1
            try:
                prog.test_run(PACKET, engine=engine, budget=200_000)
                ran += 1
            except EbpfError:
                ran += 1
    assert ran >= count // 2, f"only {ran} of the mutants loaded: the test exercised too little"
