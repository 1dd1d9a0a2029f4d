"""What a program emitted into its ring buffers, decoded through BTF when the record type is
known (`ebpfjit run` prints it after the run).

A ring buffer has no BTF value type in the kernel (BPF_MAP_TYPE_RINGBUF takes key_size =
value_size = 0, and libbpf passes no BTF for it), so a reader learns the record type from the
object. The rule, in order:
1. the map definition's own `__type(value, T)`, where an object has one;
2. a global variable named `<map>_record` whose type is `T` or a pointer to `T` (for example
   `struct event *events_record __attribute__((unused));`, the declaration bpf2go-style tools
   use to keep a type in BTF).
A record is decoded as T (bpftool's JSON value format, `Btf.format_value`) only when its length
is T's size; every other record, and every record of an untyped ring buffer, is shown in hex.

Imports: ebpfjit.errors, ebpfjit.objects.btf
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import EbpfError
from .btf import BtfKind

__all__ = ["Record", "record_type", "decode_records"]


@dataclass
class Record:
    data: bytes
    type_name: str | None = None       # "struct event" when decoded
    value: object = None               # the decoded value (None: shown in hex)

    def to_json(self) -> dict:
        out = {"size": len(self.data), "hex": self.data.hex()}
        if self.type_name is not None:
            out["type"] = self.type_name
            out["value"] = self.value
        return out


def record_type(btf, map_spec) -> int:
    """The BTF type id of the records of ring buffer `map_spec` under the rule above, or 0."""
    if btf is None:
        return 0
    if map_spec.value_type_id:
        return map_spec.value_type_id
    want = f"{map_spec.name}_record"
    for t in btf.types:
        if t.kind is BtfKind.VAR and t.name == want:
            target = btf.type(btf.resolve(t.type))
            tid = btf.resolve(target.type) if target.kind is BtfKind.PTR else target.id
            return tid if btf.type(tid).kind is not BtfKind.UNKN else 0
    return 0


def decode_records(btf, map_spec, records: list[bytes]) -> list[Record]:
    """`records` of one ring buffer, each decoded when its length is the record type's size."""
    tid = record_type(btf, map_spec)
    size, name = None, None
    if tid:
        try:
            size, name = btf.size_of(tid), btf.describe(tid)
        except EbpfError:
            tid = 0
    out = []
    for rec in records:
        rec = bytes(rec)
        if tid and len(rec) == size:
            try:
                out.append(Record(rec, name, btf.format_value(tid, rec)))
                continue
            except EbpfError:
                pass
        out.append(Record(rec))
    return out
