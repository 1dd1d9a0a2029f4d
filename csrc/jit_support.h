/* jit_support.h: C entry points that only JIT-compiled code calls (owned by the JIT).
 *
 * They take the run's state explicitly (no ebpfjit_current() TLS lookup) and skip the argument
 * re-validation of the generic helpers where the lowering has proved the argument itself.
 * Its cffi section is declared to cffi as written (csrc/cdefgen.py generates the cdef).
 */
#ifndef EBPFJIT_JIT_SUPPORT_H
#define EBPFJIT_JIT_SUPPORT_H

#include <stdint.h>

#include "ebpfjit_rt.h"
/* cffi:begin */

/* bpf_map_lookup_elem(map, key) for a call site where the lowering proved that `map` is
 * st->env->maps[i] as loaded by a `lddw src=1` (so no registry scan), that `key` points into
 * the caller's registered frame with `key_room` bytes up to the frame's end, and checked that
 * env->helpers[1] is the built-in ebpfjit_helper_map_lookup_elem. Looks up directly when
 * key_size <= key_room, else calls that helper (which may fault: the caller checks st->status).
 * Never changes the mem region or the budget. */
uint64_t ebpfjit_jit_map_lookup(struct ebpfjit_state *st, uint64_t map, uint64_t key,
                                uint64_t key_room);

/* The runtime functions JIT-compiled code may import: name and real address (*count entries). */
struct ebpfjit_jit_import {
    const char *name;
    const void *addr;
};
const struct ebpfjit_jit_import *ebpfjit_jit_imports(uint32_t *count);

/* cffi:end */
#endif
