"""load_spec(per_program=True): a kfunc call, extern or CO-RE relocation in one program's code
marks that program (ProgramSpec.unsupported) instead of failing the object, and a marked
program can be neither loaded nor verified (the selftests corpus runner relies on both)."""
from __future__ import annotations

import pytest

from ebpfjit.api.loader import load_object_spec
from ebpfjit.errors import ElfError, VerifierError
from ebpfjit.objects.elf import load_spec
from ebpfjit.verifier import verify_spec
from tests.support.paths import PROGS_DIR

OBJ = PROGS_DIR / "bad" / "per_program.o"


def test_whole_object_still_refused_by_default():
    with pytest.raises(ElfError, match=r"kernel function 'bpf_rcu_read_lock' \(kfunc\)"):
        load_spec(OBJ)


def test_only_the_programs_using_them_are_marked():
    spec = load_spec(OBJ, per_program=True)
    progs = spec.programs
    assert set(progs) == {"uses_kfunc", "uses_core", "clean"}
    # The kfunc call is in the subprogram lock_it, reached from uses_kfunc only.
    assert "kernel function 'bpf_rcu_read_lock' (kfunc)" in progs["uses_kfunc"].unsupported
    assert "CO-RE relocation" in progs["uses_core"].unsupported
    assert progs["clean"].unsupported == ""
    verify_spec(progs["clean"], spec)
    obj = load_object_spec(spec, programs=["clean"])
    assert obj.programs["clean"].run(bytearray(64), engine="interp") == 2     # XDP_PASS


@pytest.mark.parametrize("name", ["uses_kfunc", "uses_core"])
def test_marked_programs_are_refused(name):
    spec = load_spec(OBJ, per_program=True)
    with pytest.raises(VerifierError, match="not supported"):
        verify_spec(spec.programs[name], spec)
    with pytest.raises(VerifierError, match="not supported"):
        load_object_spec(spec, programs=[name])
