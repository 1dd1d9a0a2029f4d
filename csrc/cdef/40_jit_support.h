/* cffi declarations of csrc/jit_support.h (JIT-only entry points). */
uint64_t ebpfjit_jit_map_lookup(struct ebpfjit_state *st, uint64_t map, uint64_t key,
                                uint64_t key_room);
struct ebpfjit_jit_import {
    const char *name;
    const void *addr;
};
const struct ebpfjit_jit_import *ebpfjit_jit_imports(uint32_t *count);
