/* jit_support.c: fast paths for JIT-compiled code (see jit_support.h). */
#include "jit_support.h"
#include "maps.h"
#include "runtime_api.h"

uint64_t ebpfjit_jit_map_lookup(struct ebpfjit_state *st, uint64_t map, uint64_t key,
                                uint64_t key_room)
{
    struct ebpfjit_map *m = (struct ebpfjit_map *)(uintptr_t)map;

    /* The lowering picked this path from its dataflow facts (r1 is a map, r2 points into the
     * frame with key_room bytes); memory safety does not rest on them: the map must be the
     * run's and the key readable, else the helper faults exactly as the interpreter's does. */
    if (!ebpfjit_map_reachable(st->env, m))
        return ebpfjit_helper_map_lookup_elem(map, key, 0, 0, 0);
    if (m->base.key_size <= key_room && ebpfjit_access_ok(st, key, m->base.key_size, 0))
        return (uint64_t)(uintptr_t)ebpfjit_map_lookup_prog(m, (const void *)(uintptr_t)key,
                                                            st->cpu);
    /* The key runs past the frame or fails its check: the helper decides (and faults). */
    return ebpfjit_helper_map_lookup_elem(map, key, 0, 0, 0);
}

/* The one list of runtime functions JIT-compiled code imports, with their real addresses
 * (cffi's ffi.addressof yields its own wrappers: one more jump per call, and an address that
 * differs from what env->helpers[] holds). The lowering declares each name it calls with its
 * LLVM signature (lower/context.py RUNTIME_DECLS) and jit.py binds it from this table. */
static const struct ebpfjit_jit_import jit_imports[] = {
    {"ebpfjit_fault", (const void *)ebpfjit_fault},
    {"ebpfjit_access_ok", (const void *)ebpfjit_access_ok},
    {"ebpfjit_call_helper", (const void *)ebpfjit_call_helper},
    {"ebpfjit_helper_status", (const void *)ebpfjit_helper_status},
    {"ebpfjit_budget_refill", (const void *)ebpfjit_budget_refill},
    {"ebpfjit_ld_packet", (const void *)ebpfjit_ld_packet},
    {"ebpfjit_current", (const void *)ebpfjit_current},
    {"ebpfjit_jit_map_lookup", (const void *)ebpfjit_jit_map_lookup},
    {"ebpfjit_helper_map_lookup_elem", (const void *)ebpfjit_helper_map_lookup_elem},
};

const struct ebpfjit_jit_import *ebpfjit_jit_imports(uint32_t *count)
{
    *count = (uint32_t)(sizeof(jit_imports) / sizeof(jit_imports[0]));
    return jit_imports;
}
