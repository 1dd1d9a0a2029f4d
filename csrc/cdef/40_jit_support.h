/* cffi declarations of csrc/jit_support.h (JIT-only entry points). */
uint64_t ebpfjit_jit_map_lookup(struct ebpfjit_state *st, uint64_t map, uint64_t key,
                                uint64_t key_room);
const void *ebpfjit_jit_symbol(const char *name);
