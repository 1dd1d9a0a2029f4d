"""The Linux BPF selftests' verifier corpus (progs/verifier_*.c, Linux 6.12, GPL-2.0: fetched and
built at test time by ci/selftests.sh, never committed) against ebpfjit's verifier, with the
selftests' test_loader rules (ebpfjit/oracle/selftests.py). Fails when a number drops below its
recorded floor (selftests_floors.json; raise the floors when the verifier improves). Where the
corpus cannot be fetched or built (no network, apt or clang-19) the corpus tests skip, saying
why; the rule tests below run everywhere."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from ebpfjit.oracle import selftests as st

FLOORS = json.loads((Path(__file__).with_name("selftests_floors.json")).read_text())
NETWORK = {t.name for t in st.NETWORK_TYPES.values()}


@pytest.fixture(scope="module")
def corpus():
    try:
        build_dir = st.build()
    except st.CorpusUnavailable as exc:
        pytest.skip(f"selftests corpus unavailable: {exc}")
    return build_dir, st.run_corpus(build_dir)


def _check(label: str, results, corpus_table: str, version: str) -> None:
    got = asdict(st.summarize(results))
    low = {k: (got[k], floor) for k, floor in FLOORS[label].items() if got[k] < floor}
    assert not low, (f"{label} ({version}): below the recorded floors (got, floor): {low}\n"
                     f"{st.summary_line(label, st.summarize(results))}\n{corpus_table}")


@pytest.mark.selftests
def test_network_programs_meet_their_floors(corpus):
    build_dir, c = corpus
    version = (build_dir / "version").read_text().strip()
    _check("socket/tc/xdp", [r for r in c.results if r.prog_type in NETWORK], st.table(c), version)


@pytest.mark.selftests
def test_whole_corpus_meets_its_floors(corpus):
    build_dir, c = corpus
    version = (build_dir / "version").read_text().strip()
    _check("all", c.results, st.table(c), version)
    assert not c.load_errors.keys() - set(FLOORS["objects_not_loading"]), c.load_errors


@pytest.mark.selftests
def test_no_accepted_program_faults(corpus):
    _, c = corpus
    unsound = [(r.file, r.name, r.unsound) for r in c.results if r.unsound]
    assert not unsound


# --- test_loader's rules, without the corpus -------------------------------------------------

def test_messages_match_in_order_after_the_previous_match():
    log = "0: R1=ctx() R10=fp0\n1: (b7) r0 = 0\nR0 invalid mem access 'scalar'\n"
    assert st.match_msgs(log, ["R1=ctx()", "r0 = 0", "invalid mem access"]) == 3
    assert st.match_msgs(log, ["r0 = 0", "R1=ctx()"]) == 1          # order matters
    assert st.match_msgs(log, ["r0 = 0", "r0 = 0"]) == 1            # each match consumes


def test_regex_parts_are_extended_posix_and_the_rest_verbatim():
    log = "5: (85) call bpf_map_lookup_elem#1\nR0=map_value_or_null(id=1,off=0,ks=4,vs=8)\n"
    assert st.match_msgs(log, ["call bpf_map_lookup_elem#{{[0-9]+}}"]) == 1
    assert st.match_msgs(log, ["R0=map_value_or_null(id={{[0-9]}},off=0"]) == 1
    assert st.match_msgs(log, ["(85) call{{.*}}elem#1"]) == 1        # "(" is verbatim
    assert st.match_msgs(log, ["lookup{{.*}}R0"]) == 0              # REG_NEWLINE: . stops at \n
    assert st.compile_pattern("plain (text)") is None


def test_retval_forms():
    assert st._parse_retval("0x7fffffff") == 0x7FFFFFFF
    assert st._parse_retval("0xffffffff") == -1                      # a C int
    assert st._parse_retval("INT_MIN") == -(1 << 31)
    assert st._parse_retval("POINTER_VALUE") == st.POINTER_VALUE
    assert st._parse_retval("TEST_DATA_LEN") == 64
    assert st.program_type("?tc").name == "SCHED_CLS"
    assert st.program_type("socket").name == "SOCKET_FILTER"
