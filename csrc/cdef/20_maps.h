/* cffi declarations of csrc/maps.h (public part). */
#define EBPFJIT_BPF_ANY 0
#define EBPFJIT_BPF_NOEXIST 1
#define EBPFJIT_BPF_EXIST 2
#define EBPFJIT_BPF_F_LOCK 4
#define EBPFJIT_MAP_MAX_ENVS 16
#define EBPFJIT_RB_NO_WAKEUP 1
#define EBPFJIT_RB_FORCE_WAKEUP 2
#define EBPFJIT_RB_AVAIL_DATA 0
#define EBPFJIT_RB_RING_SIZE 1
#define EBPFJIT_RB_CONS_POS 2
#define EBPFJIT_RB_PROD_POS 3

struct ebpfjit_ringbuf {
    uint8_t *data;
    uint64_t size;
    uint64_t wakeups;
    ...;
};

struct ebpfjit_map {
    struct ebpfjit_map_base base;
    uint32_t ncpus;
    uint32_t elem_size;
    uint32_t value_stride;
    int32_t spin_lock_off;
    uint8_t *arena;
    uint64_t arena_len;
    uint8_t *keys;
    uint64_t keys_len;
    struct ebpfjit_ringbuf *rb;
    uint64_t charged;
    uint32_t capacity;
    ...;
};

struct ebpfjit_mem_account {
    uint64_t limit;
    uint64_t used;
    ...;
};

struct ebpfjit_mem_account *ebpfjit_mem_account_new(uint64_t limit);
void ebpfjit_mem_account_put(struct ebpfjit_mem_account *acct);

struct ebpfjit_map *ebpfjit_map_create(uint32_t type, uint32_t key_size, uint32_t value_size,
                                       uint32_t max_entries, uint32_t flags, uint32_t ncpus,
                                       const struct ebpfjit_map *inner_template, int *err);
struct ebpfjit_map *ebpfjit_map_create_in(uint32_t type, uint32_t key_size, uint32_t value_size,
                                          uint32_t max_entries, uint32_t flags, uint32_t ncpus,
                                          const struct ebpfjit_map *inner_template,
                                          struct ebpfjit_mem_account *acct, int *err);
void ebpfjit_map_free(struct ebpfjit_map *map);
int ebpfjit_map_set_spin_lock(struct ebpfjit_map *map, int32_t off);
int ebpfjit_map_is_live(const void *p);
int ebpfjit_map_reachable(const struct ebpfjit_env *env, const void *p);
int ebpfjit_map_attach(struct ebpfjit_env *env, struct ebpfjit_map *map);
void ebpfjit_map_detach(struct ebpfjit_env *env, struct ebpfjit_map *map);
uint32_t ebpfjit_map_user_value_size(const struct ebpfjit_map *map);
int ebpfjit_map_lookup(struct ebpfjit_map *map, const void *key, void *value, uint64_t flags);
int ebpfjit_map_update(struct ebpfjit_map *map, const void *key, const void *value,
                       uint64_t flags);
int ebpfjit_map_delete(struct ebpfjit_map *map, const void *key);
int ebpfjit_map_get_next_key(struct ebpfjit_map *map, const void *key, void *next_key);
uint64_t ebpfjit_map_count(struct ebpfjit_map *map);
int ebpfjit_map_push(struct ebpfjit_map *map, const void *value, uint64_t flags);
int ebpfjit_map_pop(struct ebpfjit_map *map, void *value);
int ebpfjit_map_peek(struct ebpfjit_map *map, void *value);
int ebpfjit_map_set_prog(struct ebpfjit_map *map, uint32_t index, struct ebpfjit_prog *prog);
int ebpfjit_map_set_inner(struct ebpfjit_map *map, const void *key, struct ebpfjit_map *inner,
                          uint64_t flags);
void *ebpfjit_map_get_ptr(struct ebpfjit_map *map, const void *key);
void *ebpfjit_map_lookup_prog(struct ebpfjit_map *map, const void *key, uint32_t cpu);
int ebpfjit_map_update_prog(struct ebpfjit_map *map, const void *key, const void *value,
                            uint64_t flags, uint32_t cpu);
void *ebpfjit_ringbuf_reserve(struct ebpfjit_map *map, uint64_t size, uint64_t flags);
void ebpfjit_ringbuf_commit(struct ebpfjit_map *map, void *sample, uint64_t flags, int discard);
int ebpfjit_ringbuf_output(struct ebpfjit_map *map, const void *data, uint64_t size,
                           uint64_t flags);
uint64_t ebpfjit_ringbuf_query(struct ebpfjit_map *map, uint64_t flags);
int ebpfjit_ringbuf_owns(struct ebpfjit_map *map, const void *sample);
int ebpfjit_ringbuf_consume(struct ebpfjit_map *map, void *buf, uint32_t buflen, uint32_t *len);
void ebpfjit_install_map_helpers(struct ebpfjit_env *env);
uint64_t ebpfjit_invoke_callback(struct ebpfjit_state *st, uint64_t callback, uint64_t a1,
                                 uint64_t a2, uint64_t a3, uint64_t a4);
uint64_t ebpfjit_helper_map_lookup_elem(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_map_update_elem(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_map_delete_elem(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_tail_call(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_map_push_elem(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_map_pop_elem(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_map_peek_elem(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_spin_lock(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_spin_unlock(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_ringbuf_output(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_ringbuf_reserve(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_ringbuf_submit(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_ringbuf_discard(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_ringbuf_query(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_for_each_map_elem(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
