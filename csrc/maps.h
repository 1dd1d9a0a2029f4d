/* maps.h: eBPF maps with the kernel's semantics, shared by both engines, the helpers and Python.
 *
 * Every function returns 0 or a negative errno exactly where the kernel's bpf(2) (or the helper)
 * would, so ebpfjit/maps.py and the kernel tests compare codes, not prose. Values live in one
 * preallocated arena per map, so every pointer a program can obtain from map_lookup_elem is
 * inside a region registered with the env (ebpfjit_map_attach) and the engines' bounds checks
 * accept it without special cases.
 *
 * Thread safety: arrays are lock-free (the kernel's semantics: values are not copied atomically);
 * hash maps take a per-map spinlock for writes and are read lock-free under a sequence count;
 * LPM tries, queues/stacks and ring buffers take a per-map spinlock for every operation.
 *
 * The public part (its cffi section) is declared to cffi as written (csrc/cdefgen.py).
 */
#ifndef EBPFJIT_MAPS_H
#define EBPFJIT_MAPS_H

#include <stddef.h>
#include <stdint.h>

#include "ebpfjit_rt.h"
/* cffi:begin */

/* uapi names carry an EBPFJIT_ prefix: the cffi module also includes <linux/bpf.h> users. */
#define EBPFJIT_BPF_ANY 0
#define EBPFJIT_BPF_NOEXIST 1
#define EBPFJIT_BPF_EXIST 2
#define EBPFJIT_BPF_F_LOCK 4
/* How long a BPF_F_LOCK copy or bpf_spin_lock waits for a value lock held by another live
 * thread: a program, 5 s (then its run faults); the host, 10 ms per C call (Map.lookup/update
 * retry until their own timeout, so Ctrl-C gets through between calls). */
#define EBPFJIT_PROG_LOCK_LIMIT_NS 5000000000ull
#define EBPFJIT_HOST_LOCK_SLICE_NS 10000000ull

#define EBPFJIT_F_NO_PREALLOC (1U << 0)
#define EBPFJIT_F_NO_COMMON_LRU (1U << 1)
#define EBPFJIT_F_NUMA_NODE (1U << 2)
#define EBPFJIT_F_RDONLY (1U << 3)
#define EBPFJIT_F_WRONLY (1U << 4)
#define EBPFJIT_F_ZERO_SEED (1U << 6)
#define EBPFJIT_F_RDONLY_PROG (1U << 7)
#define EBPFJIT_F_WRONLY_PROG (1U << 8)
#define EBPFJIT_F_MMAPABLE (1U << 10)
#define EBPFJIT_F_PRESERVE_ELEMS (1U << 11)
#define EBPFJIT_F_INNER_MAP (1U << 12)

/* bpf_ringbuf_* flags and query selectors */
#define EBPFJIT_RB_NO_WAKEUP 1
#define EBPFJIT_RB_FORCE_WAKEUP 2
#define EBPFJIT_RB_AVAIL_DATA 0
#define EBPFJIT_RB_RING_SIZE 1
#define EBPFJIT_RB_CONS_POS 2
#define EBPFJIT_RB_PROD_POS 3
#define EBPFJIT_RINGBUF_BUSY_BIT (1U << 31)
#define EBPFJIT_RINGBUF_DISCARD_BIT (1U << 30)
#define EBPFJIT_RINGBUF_HDR_SZ 8

#define EBPFJIT_MAP_MAX_ENVS 16

/* enum bpf_map_type values this file implements. */
enum ebpfjit_map_type {
    EBPFJIT_MAP_HASH = 1,
    EBPFJIT_MAP_ARRAY = 2,
    EBPFJIT_MAP_PROG_ARRAY = 3,
    EBPFJIT_MAP_PERCPU_HASH = 5,
    EBPFJIT_MAP_PERCPU_ARRAY = 6,
    EBPFJIT_MAP_LRU_HASH = 9,
    EBPFJIT_MAP_LRU_PERCPU_HASH = 10,
    EBPFJIT_MAP_LPM_TRIE = 11,
    EBPFJIT_MAP_ARRAY_OF_MAPS = 12,
    EBPFJIT_MAP_HASH_OF_MAPS = 13,
    EBPFJIT_MAP_QUEUE = 22,
    EBPFJIT_MAP_STACK = 23,
    EBPFJIT_MAP_RINGBUF = 27,
};

/* Hash element bookkeeping (the key lives in the key pool, the value in the arena). */
struct ebpfjit_htab_elem {
    uint32_t next;                  /* bucket chain (EBPFJIT_NIL ends it) */
    uint32_t hash;
    uint32_t lru_prev, lru_next;    /* LRU list, most recent at lru_head */
    uint8_t used;
    uint8_t ref;                    /* set by program lookups: second chance before eviction */
    uint8_t pad[2];
};

#define EBPFJIT_NIL UINT32_MAX

struct ebpfjit_ringbuf {
    uint8_t *data;                  /* double-mapped: data[i] == data[i + size], records never wrap */
    uint64_t size, mask;
    uint64_t consumer_pos;          /* atomics: producer release, consumer acquire (as the kernel) */
    uint64_t producer_pos;
    uint64_t pending_pos;           /* oldest record that may still be busy */
    uint32_t lock;
    uint32_t consumer_lock;
    uint64_t wakeups;               /* notifications the kernel would have sent */
};

struct ebpfjit_map {
    struct ebpfjit_map_base base;
    uint32_t ncpus;
    uint32_t elem_size;             /* per-CPU stride: round_up(value_size, 8) (8 for pointer maps) */
    uint32_t value_stride;          /* distance between entries: elem_size * ncpus */
    uint32_t key_stride;
    int32_t spin_lock_off;          /* struct bpf_spin_lock inside the value, or -1 */
    uint32_t lock;                  /* spinlock for writers (every op for lpm/queue/ringbuf) */
    uint32_t seq;                   /* hash maps: odd while the bucket structure changes */
    uint32_t count;                 /* hash/lpm/queue: live entries */
    uint8_t *arena;                 /* values: the program-visible region */
    uint64_t arena_len;
    uint8_t *keys;                  /* hash: key pool; arrays: u32 index table (for_each keys) */
    uint64_t keys_len;
    /* hash */
    uint32_t nbuckets, bucket_shift;   /* bucket = hash >> bucket_shift */
    uint32_t *buckets;
    struct ebpfjit_htab_elem *elems;
    uint32_t *free_stack;
    uint32_t nfree, fresh;          /* fresh: elements never used yet (no O(n) init at create) */
    uint32_t lru_head, lru_tail;
    /* queue/stack: ring of max_entries + 1 slots */
    uint32_t qhead, qtail, qsize;
    /* lpm trie (lpm.c) */
    void *lpm;
    /* ringbuf (ringbuf.c) */
    struct ebpfjit_ringbuf *rb;
    /* map-in-map: the inner map template (kernel bpf_map_meta_equal) */
    int has_inner_tmpl;
    uint32_t inner_type, inner_key_size, inner_value_size, inner_max_entries, inner_flags;
    /* envs this map is attached to, so inner maps set later get their regions registered */
    struct ebpfjit_env *envs[EBPFJIT_MAP_MAX_ENVS];
    uint32_t nenvs;
    /* memory accounting: bytes charged to acct (NULL = unaccounted), given back at free */
    struct ebpfjit_mem_account *acct;
    uint64_t charged;
    /* hash: elements the (lazily touched) pools hold, <= max_entries; each costs elem_cost,
     * charged when first used */
    uint32_t capacity;
    uint32_t elem_cost;
};

/* --- memory accounting ------------------------------------------------------------------ */

/* A per-object memory limit, shared by every map created against it (kernel: the memcg charge
 * of bpf_map_area_alloc). Eager memory (arrays, buckets, queues, tries, rings, LRU pools) is
 * charged at creation, hash elements when first used; a charge over the limit is -ENOMEM.
 * Reference counted: each map holds a reference, so the account outlives its maps. */
struct ebpfjit_mem_account {
    uint64_t limit;
    uint64_t used;                  /* atomic */
    uint32_t refs;                  /* atomic */
};

struct ebpfjit_mem_account *ebpfjit_mem_account_new(uint64_t limit);
void ebpfjit_mem_account_put(struct ebpfjit_mem_account *acct);
int ebpfjit_mem_charge(struct ebpfjit_mem_account *acct, uint64_t bytes);
void ebpfjit_mem_uncharge(struct ebpfjit_mem_account *acct, uint64_t bytes);

/* --- creation and lifetime ------------------------------------------------------------- */

/* Creates a map after the kernel's validation (map_alloc_check). ncpus = per-CPU slots (0 = 1).
 * inner_template: map-in-map template (kernel: inner_map_fd) or NULL = accept any inner map.
 * Returns NULL with *err = -errno on failure. */
struct ebpfjit_map *ebpfjit_map_create(uint32_t type, uint32_t key_size, uint32_t value_size,
                                       uint32_t max_entries, uint32_t flags, uint32_t ncpus,
                                       const struct ebpfjit_map *inner_template, int *err);
/* ebpfjit_map_create with the map's memory charged to acct (NULL = unaccounted). */
struct ebpfjit_map *ebpfjit_map_create_in(uint32_t type, uint32_t key_size, uint32_t value_size,
                                          uint32_t max_entries, uint32_t flags, uint32_t ncpus,
                                          const struct ebpfjit_map *inner_template,
                                          struct ebpfjit_mem_account *acct, int *err);
void ebpfjit_map_free(struct ebpfjit_map *map);
/* Declares a struct bpf_spin_lock at `off` in each value (from BTF), enabling BPF_F_LOCK. */
int ebpfjit_map_set_spin_lock(struct ebpfjit_map *map, int32_t off);
/* Is `p` a map created here and not yet freed? (validates map arguments of helpers) */
int ebpfjit_map_is_live(const void *p);
int ebpfjit_map_reachable(const struct ebpfjit_env *env, const void *p);
/* Registers the map's program-visible memory (values read-only for BPF_F_RDONLY_PROG, keys
 * read-only, ring data) with `env`, recursively for inner maps, and remembers `env` so inner
 * maps set later are registered too. Call detach before freeing the env. */
int ebpfjit_map_attach(struct ebpfjit_env *env, struct ebpfjit_map *map);
void ebpfjit_map_detach(struct ebpfjit_env *env, struct ebpfjit_map *map);

/* --- bpf(2)-like operations (userspace view) -------------------------------------------- */

/* Bytes a userspace value buffer holds: value_size, or round_up(value_size, 8) * ncpus for
 * per-CPU maps (slot i at i * round_up(value_size, 8), as the kernel's syscall). */
uint32_t ebpfjit_map_user_value_size(const struct ebpfjit_map *map);
int ebpfjit_map_lookup(struct ebpfjit_map *map, const void *key, void *value, uint64_t flags);
int ebpfjit_map_update(struct ebpfjit_map *map, const void *key, const void *value,
                       uint64_t flags);
int ebpfjit_map_delete(struct ebpfjit_map *map, const void *key);
/* key NULL (or missing) -> first key; -ENOENT after the last. */
int ebpfjit_map_get_next_key(struct ebpfjit_map *map, const void *key, void *next_key);
/* Live entries (hash, lpm, queue/stack), max_entries (arrays), unconsumed bytes (ringbuf). */
uint64_t ebpfjit_map_count(struct ebpfjit_map *map);
int ebpfjit_map_push(struct ebpfjit_map *map, const void *value, uint64_t flags);
int ebpfjit_map_pop(struct ebpfjit_map *map, void *value);
int ebpfjit_map_peek(struct ebpfjit_map *map, void *value);
/* PROG_ARRAY: prog NULL clears the slot. */
int ebpfjit_map_set_prog(struct ebpfjit_map *map, uint32_t index, struct ebpfjit_prog *prog);
/* ARRAY_OF_MAPS / HASH_OF_MAPS: inner must match the template (-EINVAL otherwise). */
int ebpfjit_map_set_inner(struct ebpfjit_map *map, const void *key, struct ebpfjit_map *inner,
                          uint64_t flags);
/* The pointer a PROG_ARRAY/map-in-map holds at key, or NULL. */
void *ebpfjit_map_get_ptr(struct ebpfjit_map *map, const void *key);

/* --- program view (helpers, both engines) ----------------------------------------------- */

/* Value pointer for slot `cpu` (inner map pointer for map-in-map), NULL if missing. LRU
 * lookups mark the element referenced, as the kernel's program-side lookup does. */
void *ebpfjit_map_lookup_prog(struct ebpfjit_map *map, const void *key, uint32_t cpu);
/* Per-CPU maps update only slot `cpu` (new elements get the other slots zeroed). */
int ebpfjit_map_update_prog(struct ebpfjit_map *map, const void *key, const void *value,
                            uint64_t flags, uint32_t cpu);

/* --- ring buffer (ringbuf.c) ----------------------------------------------------------- */

void *ebpfjit_ringbuf_reserve(struct ebpfjit_map *map, uint64_t size, uint64_t flags);
void ebpfjit_ringbuf_commit(struct ebpfjit_map *map, void *sample, uint64_t flags, int discard);
int ebpfjit_ringbuf_output(struct ebpfjit_map *map, const void *data, uint64_t size,
                           uint64_t flags);
uint64_t ebpfjit_ringbuf_query(struct ebpfjit_map *map, uint64_t flags);
/* Is `sample` a reserved, not yet committed record of this ring? */
int ebpfjit_ringbuf_owns(struct ebpfjit_map *map, const void *sample);
/* Copies the next committed record into buf and consumes it (discarded records are skipped).
 * 1 = a record (*len set), 0 = nothing ready (empty, or the oldest record is still busy),
 * -ENOSPC = buf too small (nothing consumed). */
int ebpfjit_ringbuf_consume(struct ebpfjit_map *map, void *buf, uint32_t buflen, uint32_t *len);

/* --- helpers (helpers_maps.c) ---------------------------------------------------------- */

/* Installs every map helper (ids 1-3, 12, 87-89, 93-94, 130-134, 164) into env->helpers. */
void ebpfjit_install_map_helpers(struct ebpfjit_env *env);

/* Provided by the engines: runs the BPF function `callback` (the value `lddw rX, func`,
 * src=4, produced) with r1..r4 = a1..a4 in a new frame and returns its r0. On a fault it sets
 * st->status; callers stop iterating when st->status != 0. */
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

/* cffi:end */
/* --- internal, shared by maps.c, lpm.c, ringbuf.c -------------------------------------- */

void ebpfjit_map_lock(uint32_t *lock);
int64_t ebpfjit_map_for_each(struct ebpfjit_map *map, struct ebpfjit_state *st, uint64_t callback,
                             uint64_t ctx);
void ebpfjit_map_unlock(uint32_t *lock);
/* Value locks (struct bpf_spin_lock words, holding the holder's thread id): trylock is 0,
 * -EBUSY or -EDEADLK (this thread holds it); lock_wait waits until the word is free: 0, or
 * -EDEADLK, -EOWNERDEAD (it names no live thread), -ETIMEDOUT (after limit_ns); lock is both. */
uint32_t ebpfjit_lock_token(void);
int ebpfjit_value_trylock(uint32_t *word);
int ebpfjit_value_lock_wait(const uint32_t *word, uint64_t limit_ns);
int ebpfjit_value_lock(uint32_t *word, uint64_t limit_ns);
uint32_t *ebpfjit_map_lock_word(struct ebpfjit_map *m, const void *key);
int ebpfjit_lpm_init(struct ebpfjit_map *map);
/* Bytes ebpfjit_lpm_init allocates (the node and value pools for max_entries prefixes). */
uint64_t ebpfjit_lpm_cost(const struct ebpfjit_map *map);
void ebpfjit_lpm_free(struct ebpfjit_map *map);
void *ebpfjit_lpm_lookup(struct ebpfjit_map *map, const void *key);
int ebpfjit_lpm_update(struct ebpfjit_map *map, const void *key, const void *value,
                       uint64_t flags);
int ebpfjit_lpm_delete(struct ebpfjit_map *map, const void *key);
int ebpfjit_lpm_get_next_key(struct ebpfjit_map *map, const void *key, void *next_key);
int ebpfjit_ringbuf_init(struct ebpfjit_map *map);
void ebpfjit_ringbuf_free(struct ebpfjit_map *map);

#endif
