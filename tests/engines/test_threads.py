"""Programs running in several threads on one object: consistent maps, and per-CPU maps whose
slots are never shared by two runs at once (each run occupies one of the object's CPUs)."""
from __future__ import annotations

import struct
import threading

import pytest

import ebpfjit
from tests.support.paths import PROGS_DIR

OBJ = PROGS_DIR / "percpu_threads.o"
RUNS_PER_THREAD = 3000
PACKET = bytes(64)


def _hammer(prog, engine, threads, batch=False):
    errors = []

    def worker():
        try:
            if batch:    # a batch occupies one virtual CPU from its first packet to its last
                for _ in range(RUNS_PER_THREAD // 100):
                    assert prog.run_batch([PACKET] * 100, engine=engine) == [2] * 100
            else:
                for _ in range(RUNS_PER_THREAD):
                    assert prog.run(PACKET, engine=engine) == 2     # XDP_PASS
        except Exception as exc:      # surfaced in the main thread
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("batch", (False, True), ids=("run", "run_batch"))
@pytest.mark.parametrize("engine", ("interp", "jit"))
@pytest.mark.parametrize("ncpus, threads", [(2, 4), (1, 3), (4, 2)])
def test_percpu_slots_are_exclusive(engine, ncpus, threads, batch):
    obj = ebpfjit.load(OBJ, ncpus=ncpus)
    prog = obj.programs["count_runs"]
    _hammer(prog, engine, threads, batch)
    total = threads * RUNS_PER_THREAD
    slots = obj.maps["runs"].lookup(0)
    assert len(slots) == ncpus
    # 64 non-atomic increments per run: any two concurrent runs sharing a slot lose updates.
    assert sum(struct.unpack("<Q", s)[0] for s in slots) == 64 * total
    seen = {struct.unpack("<I", k)[0]: struct.unpack("<Q", v)[0]
            for k, v in obj.maps["cpus_seen"].items()}
    assert set(seen) <= set(range(ncpus))
    assert sum(seen.values()) == total


def test_default_cpu_count_is_the_hosts():
    import os
    obj = ebpfjit.load(OBJ)
    assert obj.env.ncpus == (os.cpu_count() or 1)
    assert len(obj.maps["runs"].lookup(0)) == obj.env.ncpus


def test_bad_cpu_count_is_rejected():
    with pytest.raises(ebpfjit.EbpfError, match="ncpus"):
        ebpfjit.load(OBJ, ncpus=0)
