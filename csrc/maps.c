/* maps.c: creation and validation of every map type, arrays, hash maps (plain, per-CPU, LRU),
 * queues/stacks, PROG_ARRAY and map-in-map, the live-map registry and env attachment.
 *
 * Errno choices follow the kernel (kernel/bpf/arraymap.c, hashtab.c, queue_stack_maps.c,
 * map_in_map.c, syscall.c); comments cite the kernel rule where it is not obvious.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "epoch.h"
#include "maps.h"

#define ROUND8(x) (((uint64_t)(x) + 7) & ~(uint64_t)7)
#define KMALLOC_MAX_SIZE (1ULL << 22)
#define PCPU_MIN_UNIT_SIZE (32U * 1024)
#define ACCESS_MASK (EBPFJIT_F_RDONLY | EBPFJIT_F_WRONLY | EBPFJIT_F_RDONLY_PROG | EBPFJIT_F_WRONLY_PROG)
#define ARRAY_FLAGS (EBPFJIT_F_NUMA_NODE | EBPFJIT_F_MMAPABLE | ACCESS_MASK | EBPFJIT_F_PRESERVE_ELEMS | \
                     EBPFJIT_F_INNER_MAP)
#define HTAB_FLAGS (EBPFJIT_F_NO_PREALLOC | EBPFJIT_F_NO_COMMON_LRU | EBPFJIT_F_NUMA_NODE | ACCESS_MASK | \
                    EBPFJIT_F_ZERO_SEED)
#define QS_FLAGS (EBPFJIT_F_NUMA_NODE | ACCESS_MASK)
#define LPM_FLAGS (EBPFJIT_F_NO_PREALLOC | EBPFJIT_F_NUMA_NODE | ACCESS_MASK)
#define ARENA_LIMIT (1ULL << 40)

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() do { } while (0)
#endif

/* --- locks ------------------------------------------------------------------------------ */

/* A test-and-test-and-set spinlock: critical sections are a few hundred instructions, but a
 * holder can be preempted (2 cores, Python threads), so long waits yield the CPU. */
void ebpfjit_map_lock(uint32_t *lock)
{
    unsigned spins = 0;

    for (;;) {
        if (!__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
            return;
        while (__atomic_load_n(lock, __ATOMIC_RELAXED)) {
            if (++spins > 256) {
                sched_yield();
                spins = 0;
            } else {
                cpu_relax();
            }
        }
    }
}

void ebpfjit_map_unlock(uint32_t *lock)
{
    __atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

/* --- value locks (struct bpf_spin_lock) ------------------------------------------------- */

/* A value's lock word holds the thread id of its holder: bpf_spin_lock in a program and the
 * BPF_F_LOCK copies of programs and of the host alike. So a thread that meets its own id
 * would deadlock (a BPF_F_LOCK update from a program holding that lock, or from a Python helper
 * it called) and gets -EDEADLK instead; a word naming no live thread (a program overwrote it)
 * gets -EOWNERDEAD; and every wait has a time limit, so no lock word can hang a thread. */
uint32_t ebpfjit_lock_token(void)
{
    static __thread uint32_t token;

    if (!token)
        token = (uint32_t)syscall(SYS_gettid);
    return token;
}

static int holder_alive(uint32_t holder)
{
    return syscall(SYS_tgkill, getpid(), (pid_t)holder, 0) == 0 || errno != ESRCH;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int ebpfjit_value_trylock(uint32_t *word)
{
    uint32_t cur = 0, me = ebpfjit_lock_token();

    if (__atomic_compare_exchange_n(word, &cur, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 0;
    return cur == me ? -EDEADLK : -EBUSY;
}

int ebpfjit_value_lock_wait(const uint32_t *word, uint64_t limit_ns)
{
    uint32_t cur, me = ebpfjit_lock_token();
    unsigned spins = 0, yields = 0;
    uint64_t start = now_ns();

    for (;;) {
        cur = __atomic_load_n(word, __ATOMIC_RELAXED);
        if (!cur)
            return 0;
        if (cur == me)
            return -EDEADLK;
        if (++spins <= 256) {
            cpu_relax();
            continue;
        }
        spins = 0;
        sched_yield();
        if (++yields % 16)
            continue;
        if (!holder_alive(cur))
            return -EOWNERDEAD;
        if (now_ns() - start >= limit_ns)
            return -ETIMEDOUT;
    }
}

int ebpfjit_value_lock(uint32_t *word, uint64_t limit_ns)
{
    int rc;

    while ((rc = ebpfjit_value_trylock(word)) == -EBUSY)
        if ((rc = ebpfjit_value_lock_wait(word, limit_ns)))
            return rc;
    return rc;
}

/* --- memory accounting ----------------------------------------------------------------- */

struct ebpfjit_mem_account *ebpfjit_mem_account_new(uint64_t limit)
{
    struct ebpfjit_mem_account *a = calloc(1, sizeof(*a));

    if (a) {
        a->limit = limit;
        a->refs = 1;
    }
    return a;
}

void ebpfjit_mem_account_put(struct ebpfjit_mem_account *a)
{
    if (a && __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(a);
}

int ebpfjit_mem_charge(struct ebpfjit_mem_account *a, uint64_t n)
{
    uint64_t cur;

    if (!a)
        return 0;
    cur = __atomic_load_n(&a->used, __ATOMIC_RELAXED);
    do {
        if (n > a->limit || cur > a->limit - n)
            return -ENOMEM;
    } while (!__atomic_compare_exchange_n(&a->used, &cur, cur + n, 1, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return 0;
}

void ebpfjit_mem_uncharge(struct ebpfjit_mem_account *a, uint64_t n)
{
    if (a)
        __atomic_sub_fetch(&a->used, n, __ATOMIC_RELAXED);
}

/* Charges n bytes to the map's account and remembers them for map_free. */
static int map_charge(struct ebpfjit_map *m, uint64_t n)
{
    int rc = ebpfjit_mem_charge(m->acct, n);

    if (!rc)
        m->charged += n;
    return rc;
}

/* Hash pools are reserved address space (MAP_NORESERVE): the kernel backs a page only when an
 * element on it is first used, and elements are charged then, so a map declaring 2^30 entries
 * costs nothing until it fills. calloc would depend on glibc's mmap threshold for that. */
static void *pool_alloc(uint64_t n, int *ok)
{
    void *p;

    if (!*ok)
        return NULL;
    if (n > ARENA_LIMIT) {
        *ok = 0;
        return NULL;
    }
    p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
    if (p == MAP_FAILED) {
        *ok = 0;
        return NULL;
    }
    return p;
}

static void pool_free(void *p, uint64_t n)
{
    if (p)
        munmap(p, n ? n : 1);
}

/* --- live-map registry ---------------------------------------------------------------- */

/* Helpers accept map pointers that are in env->maps (fast path) or live maps reached through a
 * map-in-map; the registry lets them reject anything else without dereferencing it. */
static pthread_rwlock_t reg_lock = PTHREAD_RWLOCK_INITIALIZER;
static uintptr_t *reg_tab;      /* open addressing; 0 = empty, 1 = deleted */
static size_t reg_cap, reg_used;

static size_t reg_slot(uintptr_t p, size_t cap)
{
    uint64_t h = (uint64_t)p * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 20) & (cap - 1);
}

static int reg_add(uintptr_t p)
{
    size_t i;
    int rc = 0;

    pthread_rwlock_wrlock(&reg_lock);
    if ((reg_used + 1) * 2 > reg_cap) {
        size_t ncap = reg_cap ? reg_cap * 2 : 64, j;
        uintptr_t *nt = calloc(ncap, sizeof(*nt));
        if (!nt) {
            rc = -ENOMEM;
            goto out;
        }
        reg_used = 0;
        for (j = 0; j < reg_cap; j++) {
            if (reg_tab[j] > 1) {
                for (i = reg_slot(reg_tab[j], ncap); nt[i]; i = (i + 1) & (ncap - 1))
                    ;
                nt[i] = reg_tab[j];
                reg_used++;
            }
        }
        free(reg_tab);
        reg_tab = nt;
        reg_cap = ncap;
    }
    for (i = reg_slot(p, reg_cap); reg_tab[i] > 1; i = (i + 1) & (reg_cap - 1))
        ;
    if (!reg_tab[i])
        reg_used++;
    reg_tab[i] = p;
out:
    pthread_rwlock_unlock(&reg_lock);
    return rc;
}

static void reg_del(uintptr_t p)
{
    size_t i;

    pthread_rwlock_wrlock(&reg_lock);
    if (reg_cap)
        for (i = reg_slot(p, reg_cap); reg_tab[i]; i = (i + 1) & (reg_cap - 1))
            if (reg_tab[i] == p) {
                reg_tab[i] = 1;
                break;
            }
    pthread_rwlock_unlock(&reg_lock);
}

int ebpfjit_map_is_live(const void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    size_t i;
    int found = 0;

    if (p <= 1)
        return 0;
    pthread_rwlock_rdlock(&reg_lock);
    if (reg_cap)
        for (i = reg_slot(p, reg_cap); reg_tab[i]; i = (i + 1) & (reg_cap - 1))
            if (reg_tab[i] == p) {
                found = 1;
                break;
            }
    pthread_rwlock_unlock(&reg_lock);
    return found;
}

/* May a program running with `env` use the map at `ptr`? Only its own maps (env->maps) and
 * maps attached to env since (inner maps set into its map-in-maps): a map of another object,
 * or any other address, is refused without being dereferenced (only registered maps are read). */
int ebpfjit_map_reachable(const struct ebpfjit_env *env, const void *ptr)
{
    const struct ebpfjit_map *m = ptr;
    uint32_t i, n;

    if (!env || !ptr)
        return 0;
    if (env->maps)
        for (i = 0; i < env->nmaps; i++)
            if (env->maps[i] == m)
                return 1;
    if (!ebpfjit_map_is_live(ptr))
        return 0;
    n = __atomic_load_n(&m->nenvs, __ATOMIC_ACQUIRE);
    for (i = 0; i < n && i < EBPFJIT_MAP_MAX_ENVS; i++)
        if (m->envs[i] == env)
            return 1;
    return 0;
}

/* --- small predicates ------------------------------------------------------------------- */

static inline int is_percpu(const struct ebpfjit_map *m)
{
    uint32_t t = m->base.type;
    return t == EBPFJIT_MAP_PERCPU_ARRAY || t == EBPFJIT_MAP_PERCPU_HASH ||
           t == EBPFJIT_MAP_LRU_PERCPU_HASH;
}

static inline int is_htab(uint32_t t)
{
    return t == EBPFJIT_MAP_HASH || t == EBPFJIT_MAP_PERCPU_HASH || t == EBPFJIT_MAP_LRU_HASH ||
           t == EBPFJIT_MAP_LRU_PERCPU_HASH || t == EBPFJIT_MAP_HASH_OF_MAPS;
}

static inline int is_lru(const struct ebpfjit_map *m)
{
    return m->base.type == EBPFJIT_MAP_LRU_HASH || m->base.type == EBPFJIT_MAP_LRU_PERCPU_HASH;
}

static inline int is_array(uint32_t t)
{
    return t == EBPFJIT_MAP_ARRAY || t == EBPFJIT_MAP_PERCPU_ARRAY;
}

static inline int is_fd_array(uint32_t t)
{
    return t == EBPFJIT_MAP_PROG_ARRAY || t == EBPFJIT_MAP_ARRAY_OF_MAPS;
}

static inline int is_ptr_map(uint32_t t)
{
    return is_fd_array(t) || t == EBPFJIT_MAP_HASH_OF_MAPS;
}

static inline uint8_t *slot(const struct ebpfjit_map *m, uint32_t idx, uint32_t cpu)
{
    return m->arena + (uint64_t)idx * m->value_stride + (uint64_t)cpu * m->elem_size;
}

static inline uint32_t cpu_of(const struct ebpfjit_map *m, uint32_t cpu)
{
    return cpu < m->ncpus ? cpu : cpu % m->ncpus;
}

/* --- value copies ----------------------------------------------------------------------- */

/* The kernel never copies a bpf_spin_lock between userspace/programs and a map value
 * (copy_map_value skips it), so the lock word of a value stays the map's own. */
static void copy_in(const struct ebpfjit_map *m, uint8_t *dst, const uint8_t *src, uint32_t n)
{
    int32_t off = m->spin_lock_off;

    if (off < 0) {
        memcpy(dst, src, n);
        return;
    }
    memcpy(dst, src, (size_t)off);
    memcpy(dst + off + 4, src + off + 4, n - (uint32_t)off - 4);
}

/* A BPF_F_LOCK copy waits this long per call: a program's copy (cpu >= 0) as long as
 * bpf_spin_lock waits, a host copy one slice, after which Map.lookup/update (which loops
 * until its own timeout) can see Ctrl-C. */
static inline uint64_t lock_limit(int cpu)
{
    return cpu < 0 ? EBPFJIT_HOST_LOCK_SLICE_NS : EBPFJIT_PROG_LOCK_LIMIT_NS;
}

static inline uint32_t *lock_word(const struct ebpfjit_map *m, uint32_t idx)
{
    return (uint32_t *)(slot(m, idx, 0) + m->spin_lock_off);
}

static int copy_out(const struct ebpfjit_map *m, uint8_t *dst, const uint8_t *src, uint32_t n,
                    int locked)
{
    int32_t off = m->spin_lock_off;
    int rc;

    if (locked && (rc = ebpfjit_value_lock((uint32_t *)(src + off), lock_limit(-1))))
        return rc;
    memcpy(dst, src, n);
    if (locked)
        ebpfjit_map_unlock((uint32_t *)(src + off));
    if (off >= 0)
        memset(dst + off, 0, 4);
    return 0;
}

/* Writes a value into entry idx. cpu < 0: userspace buffer holding every slot at
 * round_up(value_size, 8) strides; otherwise a program's value for that slot only. A new
 * per-CPU element from a program gets the other slots zeroed (kernel pcpu_init_value).
 * `locked` (BPF_F_LOCK) only tries the value's lock: -EBUSY tells the caller to wait for it
 * (ebpfjit_value_lock_wait, after dropping any map lock) and retry; -EDEADLK: this thread
 * holds it. */
static int write_value(struct ebpfjit_map *m, uint32_t idx, const uint8_t *value, int cpu,
                       int locked, int fresh)
{
    uint32_t vs = is_ptr_map(m->base.type) ? 8 : m->base.value_size;
    uint32_t c;
    int rc;

    if (is_percpu(m)) {
        if (cpu < 0) {
            for (c = 0; c < m->ncpus; c++)
                memcpy(slot(m, idx, c), value + (uint64_t)c * m->elem_size, m->elem_size);
            return 0;
        }
        if (fresh)
            memset(slot(m, idx, 0), 0, m->value_stride);
        memcpy(slot(m, idx, cpu_of(m, (uint32_t)cpu)), value, vs);
        return 0;
    }
    if (locked) {
        if ((rc = ebpfjit_value_trylock(lock_word(m, idx))))
            return rc;
        copy_in(m, slot(m, idx, 0), value, vs);
        ebpfjit_map_unlock(lock_word(m, idx));
        return 0;
    }
    copy_in(m, slot(m, idx, 0), value, vs);
    if (fresh && m->spin_lock_off >= 0)
        memset(slot(m, idx, 0) + m->spin_lock_off, 0, 4);
    return 0;
}

static int read_value(struct ebpfjit_map *m, uint32_t idx, uint8_t *out, int locked)
{
    if (is_percpu(m)) {
        memcpy(out, slot(m, idx, 0), m->value_stride);
        return 0;
    }
    return copy_out(m, out, slot(m, idx, 0), m->base.value_size, locked);
}

/* Shared flag rules of update: (flags & ~F_LOCK) > BPF_EXIST is -EINVAL, and F_LOCK needs a
 * spin lock in the value (per-CPU maps never have one). */
static int check_update_flags(const struct ebpfjit_map *m, uint64_t flags)
{
    if ((flags & ~(uint64_t)EBPFJIT_BPF_F_LOCK) > EBPFJIT_BPF_EXIST)
        return -EINVAL;
    if ((flags & EBPFJIT_BPF_F_LOCK) && (is_percpu(m) || m->spin_lock_off < 0))
        return -EINVAL;
    return 0;
}

/* --- hash tables ------------------------------------------------------------------------ */

/* Fibonacci hashing: the high bits of key * 2^64/phi pick the bucket (bucket_shift), which
 * spreads sequential keys perfectly and costs one multiply for u32/u64 keys, the benchmark's
 * case. Longer keys are folded word by word first. */
#define FIB64 0x9E3779B97F4A7C15ULL

static inline uint32_t htab_hash(const struct ebpfjit_map *m, const void *key)
{
    uint32_t ks = m->base.key_size, i;
    const uint8_t *k = key;
    uint64_t h, w;

    if (ks == 4) {
        uint32_t v;
        memcpy(&v, k, 4);
        return (uint32_t)(((uint64_t)v * FIB64) >> 32);
    }
    if (ks == 8) {
        memcpy(&h, k, 8);
        return (uint32_t)((h * FIB64) >> 32);
    }
    h = ks;
    for (i = 0; i + 8 <= ks; i += 8) {
        memcpy(&w, k + i, 8);
        h = (h ^ w) * FIB64;
        h ^= h >> 29;
    }
    if (i < ks) {
        w = 0;
        memcpy(&w, k + i, ks - i);
        h = (h ^ w) * FIB64;
        h ^= h >> 29;
    }
    return (uint32_t)((h * FIB64) >> 32);
}

static inline uint32_t bucket_of(const struct ebpfjit_map *m, uint32_t h)
{
    return (uint32_t)((uint64_t)h >> m->bucket_shift);
}

static inline int key_eq(const struct ebpfjit_map *m, const uint8_t *a, const uint8_t *b)
{
    uint32_t ks = m->base.key_size;

    if (ks == 4) {
        uint32_t x, y;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        return x == y;
    }
    if (ks == 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        return x == y;
    }
    return memcmp(a, b, ks) == 0;
}

static inline uint8_t *elem_key(const struct ebpfjit_map *m, uint32_t idx)
{
    return m->keys + (uint64_t)idx * m->key_stride;
}

/* Walks a bucket chain. Readers run this without the lock, so every link is loaded atomically
 * and the walk is bounded: a chain mutated under us can point anywhere in the (always valid)
 * element pool, and the sequence check then discards the result. */
static inline __attribute__((always_inline)) uint32_t
htab_walk(const struct ebpfjit_map *m, const void *key, uint32_t h)
{
    uint32_t idx = __atomic_load_n(&m->buckets[bucket_of(m, h)], __ATOMIC_RELAXED);
    uint32_t steps = m->capacity + 1;

    while (idx != EBPFJIT_NIL && idx < m->capacity && steps--) {
        const struct ebpfjit_htab_elem *e = &m->elems[idx];
        if (__atomic_load_n(&e->hash, __ATOMIC_RELAXED) == h && key_eq(m, elem_key(m, idx), key))
            return idx;
        idx = __atomic_load_n(&e->next, __ATOMIC_RELAXED);
    }
    return EBPFJIT_NIL;
}

static inline __attribute__((always_inline)) uint32_t
htab_lookup_idx(const struct ebpfjit_map *m, const void *key)
{
    uint32_t h = htab_hash(m, key), s, idx;

    for (;;) {
        s = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
        if (s & 1) {
            cpu_relax();
            continue;
        }
        idx = htab_walk(m, key, h);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&m->seq, __ATOMIC_RELAXED) == s)
            return idx;
    }
}

static void seq_begin(struct ebpfjit_map *m)
{
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void seq_end(struct ebpfjit_map *m)
{
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELEASE);
}

static void lru_unlink(struct ebpfjit_map *m, uint32_t idx)
{
    struct ebpfjit_htab_elem *e = &m->elems[idx];

    if (e->lru_prev != EBPFJIT_NIL)
        m->elems[e->lru_prev].lru_next = e->lru_next;
    else
        m->lru_head = e->lru_next;
    if (e->lru_next != EBPFJIT_NIL)
        m->elems[e->lru_next].lru_prev = e->lru_prev;
    else
        m->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = EBPFJIT_NIL;
}

static void lru_push_head(struct ebpfjit_map *m, uint32_t idx)
{
    struct ebpfjit_htab_elem *e = &m->elems[idx];

    e->lru_prev = EBPFJIT_NIL;
    e->lru_next = m->lru_head;
    if (m->lru_head != EBPFJIT_NIL)
        m->elems[m->lru_head].lru_prev = idx;
    m->lru_head = idx;
    if (m->lru_tail == EBPFJIT_NIL)
        m->lru_tail = idx;
}

/* Removes idx from its bucket chain; lock held. */
static void htab_unlink(struct ebpfjit_map *m, uint32_t idx)
{
    struct ebpfjit_htab_elem *e = &m->elems[idx];
    uint32_t *link = &m->buckets[bucket_of(m, e->hash)];

    while (*link != EBPFJIT_NIL && *link != idx)
        link = &m->elems[*link].next;
    if (*link == idx) {
        seq_begin(m);
        __atomic_store_n(link, e->next, __ATOMIC_RELAXED);
        seq_end(m);
    }
    e->used = 0;
    m->count--;
}

/* The kernel's LRU (bpf_lru_list.c) is a two-list clock: lookups set a ref bit and the
 * shrinker gives referenced nodes a second chance. One list with the same rule evicts the same
 * victims in the common cases (oldest unreferenced first) without the per-CPU free batches, so
 * eviction here only starts when the map is full. */
static uint32_t lru_evict(struct ebpfjit_map *m)
{
    uint32_t rounds = m->count, idx;

    while (rounds-- && m->lru_tail != EBPFJIT_NIL) {
        idx = m->lru_tail;
        if (!__atomic_load_n(&m->elems[idx].ref, __ATOMIC_RELAXED))
            break;
        __atomic_store_n(&m->elems[idx].ref, 0, __ATOMIC_RELAXED);
        lru_unlink(m, idx);
        lru_push_head(m, idx);
    }
    idx = m->lru_tail;
    if (idx == EBPFJIT_NIL)
        return EBPFJIT_NIL;
    lru_unlink(m, idx);
    htab_unlink(m, idx);
    return idx;
}

/* A free element, or EBPFJIT_NIL with *rc = -E2BIG (max_entries reached) or -ENOMEM (the
 * object's memory limit reached first, as a kernel memcg charge failing). LRU pools are
 * charged in full at creation (the kernel always preallocates them). */
static uint32_t htab_alloc(struct ebpfjit_map *m, int *rc)
{
    uint32_t idx;

    if (m->nfree)
        return m->free_stack[--m->nfree];
    if (m->fresh < m->capacity) {
        if (!is_lru(m) && ebpfjit_mem_charge(m->acct, m->elem_cost)) {
            *rc = -ENOMEM;
            return EBPFJIT_NIL;
        }
        if (!is_lru(m))
            m->charged += m->elem_cost;
        idx = m->fresh++;
        m->elems[idx].lru_prev = m->elems[idx].lru_next = EBPFJIT_NIL;
        return idx;
    }
    if (is_lru(m)) {
        idx = lru_evict(m);
        if (idx == EBPFJIT_NIL)
            *rc = -E2BIG;
        return idx;
    }
    *rc = m->capacity < m->base.max_entries ? -ENOMEM : -E2BIG;
    return EBPFJIT_NIL;
}

static int htab_update(struct ebpfjit_map *m, const void *key, const void *value,
                       uint64_t flags, int cpu)
{
    uint64_t f = flags & ~(uint64_t)EBPFJIT_BPF_F_LOCK;
    uint32_t h, idx, b;
    int rc = check_update_flags(m, flags);

    if (rc)
        return rc;
    h = htab_hash(m, key);
retry:
    ebpfjit_map_lock(&m->lock);
    idx = htab_walk(m, key, h);
    if (idx != EBPFJIT_NIL) {
        if (f == EBPFJIT_BPF_NOEXIST) {
            rc = -EEXIST;
            goto out;
        }
        rc = write_value(m, idx, value, cpu, !!(flags & EBPFJIT_BPF_F_LOCK), 0);
        if (rc == -EBUSY) {
            /* Never wait for a value lock under the map lock: its holder may be about to
             * update this map. The element may go meanwhile; the retry looks it up again. */
            ebpfjit_map_unlock(&m->lock);
            if ((rc = ebpfjit_value_lock_wait(lock_word(m, idx), lock_limit(cpu))))
                return rc;
            goto retry;
        }
        if (rc)
            goto out;
        if (is_lru(m)) {
            lru_unlink(m, idx);
            lru_push_head(m, idx);
        }
        goto out;
    }
    if (f == EBPFJIT_BPF_EXIST) {
        rc = -ENOENT;
        goto out;
    }
    idx = htab_alloc(m, &rc);
    if (idx == EBPFJIT_NIL)
        goto out;
    memcpy(elem_key(m, idx), key, m->base.key_size);
    (void)write_value(m, idx, value, cpu, 0, 1);     /* unlocked: cannot fail */
    m->elems[idx].hash = h;
    m->elems[idx].ref = 0;
    m->elems[idx].used = 1;
    b = bucket_of(m, h);
    /* seq_begin's release fence publishes key and value before the link. */
    seq_begin(m);
    __atomic_store_n(&m->elems[idx].next, m->buckets[b], __ATOMIC_RELAXED);
    __atomic_store_n(&m->buckets[b], idx, __ATOMIC_RELAXED);
    seq_end(m);
    if (is_lru(m))
        lru_push_head(m, idx);
    m->count++;
out:
    ebpfjit_map_unlock(&m->lock);
    return rc;
}

static int htab_delete(struct ebpfjit_map *m, const void *key)
{
    uint32_t idx;
    int rc = 0;

    ebpfjit_map_lock(&m->lock);
    idx = htab_walk(m, key, htab_hash(m, key));
    if (idx == EBPFJIT_NIL) {
        rc = -ENOENT;
    } else {
        htab_unlink(m, idx);
        if (is_lru(m))
            lru_unlink(m, idx);
        m->free_stack[m->nfree++] = idx;
    }
    ebpfjit_map_unlock(&m->lock);
    return rc;
}

/* Kernel order: the rest of the key's chain, then the following buckets; a missing key
 * restarts from the first bucket. */
static int htab_get_next_key(struct ebpfjit_map *m, const void *key, void *next)
{
    uint32_t b = 0, idx;
    int rc = -ENOENT;

    ebpfjit_map_lock(&m->lock);
    if (key) {
        uint32_t h = htab_hash(m, key);
        idx = htab_walk(m, key, h);
        if (idx != EBPFJIT_NIL) {
            if (m->elems[idx].next != EBPFJIT_NIL) {
                memcpy(next, elem_key(m, m->elems[idx].next), m->base.key_size);
                rc = 0;
                goto out;
            }
            b = bucket_of(m, h) + 1;
        }
    }
    for (; b < m->nbuckets; b++) {
        if (m->buckets[b] != EBPFJIT_NIL) {
            memcpy(next, elem_key(m, m->buckets[b]), m->base.key_size);
            rc = 0;
            break;
        }
    }
out:
    ebpfjit_map_unlock(&m->lock);
    return rc;
}

/* --- queue / stack (kernel queue_stack_maps.c: a ring of max_entries + 1 slots) ---------- */

static int qs_push(struct ebpfjit_map *m, const void *value, uint64_t flags)
{
    int rc = 0;

    if ((flags & EBPFJIT_BPF_NOEXIST) || flags > EBPFJIT_BPF_EXIST)
        return -EINVAL;
    ebpfjit_map_lock(&m->lock);
    if ((m->qhead + 1) % m->qsize == m->qtail) {
        if (!(flags & EBPFJIT_BPF_EXIST)) {
            rc = -E2BIG;
            goto out;
        }
        /* BPF_EXIST on a full queue/stack drops the oldest element. */
        m->qtail = (m->qtail + 1) % m->qsize;
        m->count--;
    }
    memcpy(m->arena + (uint64_t)m->qhead * m->base.value_size, value, m->base.value_size);
    m->qhead = (m->qhead + 1) % m->qsize;
    m->count++;
out:
    ebpfjit_map_unlock(&m->lock);
    return rc;
}

static int qs_pop(struct ebpfjit_map *m, void *value, int remove)
{
    uint32_t idx;
    int rc = 0;

    ebpfjit_map_lock(&m->lock);
    if (m->qhead == m->qtail) {
        memset(value, 0, m->base.value_size);   /* as __queue_map_get */
        rc = -ENOENT;
        goto out;
    }
    if (m->base.type == EBPFJIT_MAP_QUEUE) {
        idx = m->qtail;
        if (remove)
            m->qtail = (m->qtail + 1) % m->qsize;
    } else {
        idx = m->qhead ? m->qhead - 1 : m->qsize - 1;
        if (remove)
            m->qhead = idx;
    }
    memcpy(value, m->arena + (uint64_t)idx * m->base.value_size, m->base.value_size);
    if (remove)
        m->count--;
out:
    ebpfjit_map_unlock(&m->lock);
    return rc;
}

/* --- creation --------------------------------------------------------------------------- */

static int access_flags_ok(uint32_t flags)
{
    return !((flags & EBPFJIT_F_RDONLY) && (flags & EBPFJIT_F_WRONLY)) &&
           !((flags & EBPFJIT_F_RDONLY_PROG) && (flags & EBPFJIT_F_WRONLY_PROG));
}

static int alloc_check(uint32_t type, uint32_t ks, uint32_t vs, uint32_t max, uint32_t flags,
                       const struct ebpfjit_map *tmpl)
{
    int percpu = type == EBPFJIT_MAP_PERCPU_ARRAY || type == EBPFJIT_MAP_PERCPU_HASH ||
                 type == EBPFJIT_MAP_LRU_PERCPU_HASH;
    int lru = type == EBPFJIT_MAP_LRU_HASH || type == EBPFJIT_MAP_LRU_PERCPU_HASH;

    if (tmpl && (is_ptr_map(tmpl->base.type)))
        return -EINVAL;     /* kernel: no map-in-map inside map-in-map */
    switch (type) {
    case EBPFJIT_MAP_PROG_ARRAY:
    case EBPFJIT_MAP_ARRAY_OF_MAPS:
        /* fd_array_map_alloc_check */
        if (vs != 4 || (flags & (EBPFJIT_F_RDONLY_PROG | EBPFJIT_F_WRONLY_PROG)))
            return -EINVAL;
        /* fall through */
    case EBPFJIT_MAP_ARRAY:
    case EBPFJIT_MAP_PERCPU_ARRAY:
        if (max == 0 || ks != 4 || vs == 0 || (flags & ~ARRAY_FLAGS) || !access_flags_ok(flags))
            return -EINVAL;
        if (type != EBPFJIT_MAP_ARRAY && (flags & (EBPFJIT_F_MMAPABLE | EBPFJIT_F_INNER_MAP)))
            return -EINVAL;
        if (flags & EBPFJIT_F_PRESERVE_ELEMS)
            return -EINVAL;     /* only PERF_EVENT_ARRAY */
        if (vs > INT32_MAX)
            return -E2BIG;
        if (percpu && ROUND8(vs) > PCPU_MIN_UNIT_SIZE)
            return -E2BIG;
        return 0;
    case EBPFJIT_MAP_HASH_OF_MAPS:
        if (vs != 4)
            return -EINVAL;
        /* fall through */
    case EBPFJIT_MAP_HASH:
    case EBPFJIT_MAP_PERCPU_HASH:
    case EBPFJIT_MAP_LRU_HASH:
    case EBPFJIT_MAP_LRU_PERCPU_HASH:
        /* htab_map_alloc_check */
        if ((flags & ~HTAB_FLAGS) || !access_flags_ok(flags))
            return -EINVAL;
        if (!lru && (flags & EBPFJIT_F_NO_COMMON_LRU))
            return -EINVAL;
        if (lru && (flags & EBPFJIT_F_NO_PREALLOC))
            return -524;        /* ENOTSUPP, as the kernel leaks it */
        if (max == 0 || ks == 0 || vs == 0)
            return -EINVAL;
        if ((uint64_t)ks + vs >= KMALLOC_MAX_SIZE - 64)
            return -E2BIG;
        if (percpu && ROUND8(vs) > PCPU_MIN_UNIT_SIZE)
            return -E2BIG;
        return 0;
    case EBPFJIT_MAP_LPM_TRIE:
        if (max == 0 || !(flags & EBPFJIT_F_NO_PREALLOC) || (flags & ~LPM_FLAGS) ||
            !access_flags_ok(flags) || ks < 5 || ks > 4 + 256 || vs < 1 ||
            vs > KMALLOC_MAX_SIZE - 256 - 32)
            return -EINVAL;
        return 0;
    case EBPFJIT_MAP_QUEUE:
    case EBPFJIT_MAP_STACK:
        if (max == 0 || ks != 0 || vs == 0 || (flags & ~QS_FLAGS) || !access_flags_ok(flags))
            return -EINVAL;
        if (vs > KMALLOC_MAX_SIZE)
            return -E2BIG;
        return 0;
    case EBPFJIT_MAP_RINGBUF:
        if ((flags & ~EBPFJIT_F_NUMA_NODE) || ks || vs || max == 0 || (max & (max - 1)) ||
            (max & 4095))
            return -EINVAL;
        return 0;
    default:
        return -EINVAL;
    }
}

static void *zalloc(uint64_t n, int *ok)
{
    void *p;

    if (n > ARENA_LIMIT) {
        *ok = 0;
        return NULL;
    }
    p = calloc(1, n ? n : 1);
    if (!p)
        *ok = 0;
    return p;
}

/* Hash pools: how many elements they reserve. Without an account, max_entries; with one, no
 * more than the limit could ever pay for, so even the address space a map reserves is bounded
 * by the limit (and so are its buckets, sized for that capacity). */
static uint32_t htab_capacity(const struct ebpfjit_map *m)
{
    uint64_t fit;

    if (!m->acct)
        return m->base.max_entries;
    fit = m->acct->limit / m->elem_cost;
    return fit < m->base.max_entries ? (uint32_t)fit : m->base.max_entries;
}

static int htab_init(struct ebpfjit_map *m, int *ok)
{
    uint64_t nb = 1, cap;
    uint32_t bits = 0;
    int rc;

    m->key_stride = (uint32_t)ROUND8(m->base.key_size);
    m->elem_cost = (uint32_t)(sizeof(*m->elems) + 4 + m->key_stride + m->value_stride);
    m->capacity = htab_capacity(m);
    if (!m->capacity || (is_lru(m) && m->capacity < m->base.max_entries))
        return -ENOMEM;     /* nothing fits the limit, or an LRU pool cannot be preallocated */
    cap = m->capacity;
    while (nb < cap) {
        nb <<= 1;
        bits++;
    }
    m->nbuckets = (uint32_t)nb;
    m->bucket_shift = 32 - bits;     /* 32 for one bucket: (u64)h >> 32 == 0 */
    /* Buckets are written at creation (every chain starts empty), so they are charged now;
     * LRU pools too, as the kernel preallocates them. */
    rc = map_charge(m, nb * 4 + (is_lru(m) ? cap * m->elem_cost : 0));
    if (rc)
        return rc;
    m->buckets = zalloc(nb * 4, ok);
    if (*ok)
        memset(m->buckets, 0xff, nb * 4);
    m->elems = pool_alloc(cap * sizeof(*m->elems), ok);
    m->free_stack = pool_alloc(cap * 4, ok);
    m->keys_len = cap * m->key_stride;
    m->keys = pool_alloc(m->keys_len, ok);
    m->arena_len = cap * m->value_stride;
    m->arena = pool_alloc(m->arena_len, ok);
    return 0;
}

/* Bytes an array, fd array, queue/stack or ring buffer allocates at creation. */
static uint64_t eager_cost(const struct ebpfjit_map *m)
{
    uint32_t t = m->base.type;
    uint64_t max = m->base.max_entries;

    if (is_array(t))
        return max * m->value_stride + max * 4;     /* values + the key table for for_each */
    if (is_fd_array(t))
        return max * m->value_stride;
    if (t == EBPFJIT_MAP_QUEUE || t == EBPFJIT_MAP_STACK)
        return (max + 1) * m->base.value_size;
    if (t == EBPFJIT_MAP_LPM_TRIE)
        return ebpfjit_lpm_cost(m);
    if (t == EBPFJIT_MAP_RINGBUF)
        return sizeof(struct ebpfjit_ringbuf) + max;    /* the data pages are mapped twice */
    return 0;
}

struct ebpfjit_map *ebpfjit_map_create(uint32_t type, uint32_t key_size, uint32_t value_size,
                                       uint32_t max_entries, uint32_t flags, uint32_t ncpus,
                                       const struct ebpfjit_map *tmpl, int *err)
{
    return ebpfjit_map_create_in(type, key_size, value_size, max_entries, flags, ncpus, tmpl,
                                 NULL, err);
}

struct ebpfjit_map *ebpfjit_map_create_in(uint32_t type, uint32_t key_size, uint32_t value_size,
                                          uint32_t max_entries, uint32_t flags, uint32_t ncpus,
                                          const struct ebpfjit_map *tmpl,
                                          struct ebpfjit_mem_account *acct, int *err)
{
    struct ebpfjit_map *m;
    int rc, ok = 1;
    uint32_t i, slots;

    rc = alloc_check(type, key_size, value_size, max_entries, flags, tmpl);
    if (rc)
        goto fail;
    rc = ebpfjit_mem_charge(acct, sizeof(*m));
    if (rc)
        goto fail;
    m = calloc(1, sizeof(*m));
    if (!m) {
        ebpfjit_mem_uncharge(acct, sizeof(*m));
        rc = -ENOMEM;
        goto fail;
    }
    if (acct) {
        __atomic_add_fetch(&acct->refs, 1, __ATOMIC_ACQ_REL);
        m->acct = acct;
        m->charged = sizeof(*m);
    }
    m->base.type = type;
    m->base.key_size = key_size;
    m->base.value_size = value_size;
    m->base.max_entries = max_entries;
    m->base.flags = flags;
    m->ncpus = ncpus ? ncpus : 1;
    m->spin_lock_off = -1;
    m->elem_size = is_ptr_map(type) ? 8 : (uint32_t)ROUND8(value_size);
    slots = is_percpu(m) ? m->ncpus : 1;
    m->value_stride = m->elem_size * slots;
    m->lru_head = m->lru_tail = EBPFJIT_NIL;
    if (tmpl) {
        m->has_inner_tmpl = 1;
        m->inner_type = tmpl->base.type;
        m->inner_key_size = tmpl->base.key_size;
        m->inner_value_size = tmpl->base.value_size;
        m->inner_max_entries = tmpl->base.max_entries;
        m->inner_flags = tmpl->base.flags;
    }
    rc = map_charge(m, eager_cost(m));
    if (rc)
        goto fail_free;

    if (is_array(type) || is_fd_array(type)) {
        m->arena_len = (uint64_t)max_entries * m->value_stride;
        m->arena = zalloc(m->arena_len, &ok);
        if (is_array(type)) {
            /* for_each_map_elem hands callbacks a key pointer, which must be readable memory. */
            m->keys_len = (uint64_t)max_entries * 4;
            m->keys = zalloc(m->keys_len, &ok);
            for (i = 0; ok && i < max_entries; i++)
                memcpy(m->keys + (uint64_t)i * 4, &i, 4);
            m->base.values = m->arena;
        }
    } else if (is_htab(type)) {
        rc = htab_init(m, &ok);
        if (rc)
            goto fail_free;
    } else if (type == EBPFJIT_MAP_QUEUE || type == EBPFJIT_MAP_STACK) {
        m->qsize = max_entries + 1;
        m->arena_len = (uint64_t)m->qsize * value_size;
        m->arena = zalloc(m->arena_len, &ok);
    } else if (type == EBPFJIT_MAP_LPM_TRIE) {
        rc = ebpfjit_lpm_init(m);
        if (rc)
            goto fail_free;
    } else if (type == EBPFJIT_MAP_RINGBUF) {
        rc = ebpfjit_ringbuf_init(m);
        if (rc)
            goto fail_free;
    }
    if (!ok) {
        rc = -ENOMEM;
        goto fail_free;
    }
    rc = reg_add((uintptr_t)m);
    if (rc)
        goto fail_free;
    if (err)
        *err = 0;
    return m;

fail_free:
    ebpfjit_map_free(m);
fail:
    if (err)
        *err = rc;
    return NULL;
}

static void map_unregister(struct ebpfjit_map *m);

/* The memory itself: once no run can reach it (ebpfjit_map_free defers this). */
static void map_destroy(void *p)
{
    struct ebpfjit_map *m = p;
    uint64_t cap;

    if (m->base.type == EBPFJIT_MAP_LPM_TRIE)
        ebpfjit_lpm_free(m);
    if (m->base.type == EBPFJIT_MAP_RINGBUF)
        ebpfjit_ringbuf_free(m);
    if (is_htab(m->base.type)) {
        cap = m->capacity;
        pool_free(m->arena, m->arena_len);
        pool_free(m->keys, m->keys_len);
        pool_free(m->elems, cap * sizeof(*m->elems));
        pool_free(m->free_stack, cap * 4);
    } else {
        free(m->arena);
        free(m->keys);
    }
    free(m->buckets);
    if (m->acct) {
        ebpfjit_mem_uncharge(m->acct, m->charged);
        ebpfjit_mem_account_put(m->acct);
    }
    free(m);
}

/* A run may still hold the map or one of its value pointers (an inner map replaced while a
 * program runs, a pointer a program saved): helpers stop accepting it and its regions are
 * unregistered now, the memory goes after a grace period (epoch.h). */
void ebpfjit_map_free(struct ebpfjit_map *m)
{
    if (!m)
        return;
    reg_del((uintptr_t)m);
    map_unregister(m);
    ebpfjit_defer(map_destroy, m);
}

int ebpfjit_map_set_spin_lock(struct ebpfjit_map *m, int32_t off)
{
    if (off < 0) {
        m->spin_lock_off = -1;
        return 0;
    }
    /* The kernel allows bpf_spin_lock only in plain (non per-CPU) array/hash values. */
    if (is_percpu(m) || !(is_array(m->base.type) || m->base.type == EBPFJIT_MAP_HASH ||
                          m->base.type == EBPFJIT_MAP_LRU_HASH))
        return -EINVAL;
    if ((off & 3) || (uint64_t)off + 4 > m->base.value_size)
        return -EINVAL;
    m->spin_lock_off = off;
    return 0;
}

/* --- env attachment --------------------------------------------------------------------- */

/* Serializes attach/detach/free bookkeeping (m->envs, and the inner maps of an outer map being
 * attached while set_inner publishes one). Lock order: attach_lock, then the env region lock. */
static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;

/* The program-visible memory of a map (what attach registers and free unregisters). */
static uint32_t map_regions(const struct ebpfjit_map *m, struct ebpfjit_region out[2])
{
    uint32_t t = m->base.type, n = 0;

    if (is_array(t) || (is_htab(t) && t != EBPFJIT_MAP_HASH_OF_MAPS) || t == EBPFJIT_MAP_LPM_TRIE) {
        out[n++] = (struct ebpfjit_region){(uint64_t)(uintptr_t)m->arena, m->arena_len,
                                           !(m->base.flags & EBPFJIT_F_RDONLY_PROG)};
        out[n++] = (struct ebpfjit_region){(uint64_t)(uintptr_t)m->keys, m->keys_len, 0};
    } else if (t == EBPFJIT_MAP_RINGBUF && m->rb) {
        out[n++] = (struct ebpfjit_region){(uint64_t)(uintptr_t)m->rb->data, 2 * m->rb->size, 1};
    }
    return n;
}

static void regions_remove(struct ebpfjit_env *env, const struct ebpfjit_map *m)
{
    struct ebpfjit_region r[2];
    uint32_t i, n = map_regions(m, r);

    for (i = 0; i < n; i++)
        if (r[i].base)
            ebpfjit_env_remove_region(env, r[i].base, r[i].len);
}

static void map_unregister(struct ebpfjit_map *m)
{
    struct ebpfjit_env *envs[EBPFJIT_MAP_MAX_ENVS];
    uint32_t i, n;

    pthread_mutex_lock(&attach_lock);
    n = m->nenvs;
    for (i = 0; i < n; i++) {
        envs[i] = m->envs[i];
        regions_remove(envs[i], m);
    }
    m->nenvs = 0;
    pthread_mutex_unlock(&attach_lock);
    for (i = 0; i < n; i++)
        ebpfjit_env_release(envs[i]);
}

static void for_each_inner(struct ebpfjit_map *m, void (*fn)(struct ebpfjit_map *, void *),
                           void *arg)
{
    uint32_t i;

    if (m->base.type == EBPFJIT_MAP_ARRAY_OF_MAPS) {
        for (i = 0; i < m->base.max_entries; i++) {
            struct ebpfjit_map *in = *(struct ebpfjit_map **)slot(m, i, 0);
            if (in)
                fn(in, arg);
        }
    } else if (m->base.type == EBPFJIT_MAP_HASH_OF_MAPS) {
        for (i = 0; i < m->capacity; i++) {
            if (m->elems[i].used) {
                struct ebpfjit_map *in = *(struct ebpfjit_map **)slot(m, i, 0);
                if (in)
                    fn(in, arg);
            }
        }
    }
}

static int attach_locked(struct ebpfjit_env *env, struct ebpfjit_map *m);

struct attach_walk {
    struct ebpfjit_env *env;
    int rc;
};

static void attach_inner(struct ebpfjit_map *in, void *arg)
{
    struct attach_walk *w = arg;

    if (!w->rc)
        w->rc = attach_locked(w->env, in);
}

/* The env is recorded (and held) before any region is registered, so whatever got registered
 * is unregistered when the map is freed, even if a later step fails. */
static int attach_locked(struct ebpfjit_env *env, struct ebpfjit_map *m)
{
    struct ebpfjit_region r[2];
    struct attach_walk w = {env, 0};
    uint32_t i, n;

    for (i = 0; i < m->nenvs && m->envs[i] != env; i++)
        ;
    if (i == m->nenvs) {
        if (m->nenvs == EBPFJIT_MAP_MAX_ENVS)
            return -EMLINK;
        ebpfjit_env_hold(env);
        m->envs[m->nenvs++] = env;
    }
    n = map_regions(m, r);
    for (i = 0; i < n; i++)
        if (r[i].base && ebpfjit_env_add_region_once(env, r[i].base, r[i].len, (int)r[i].writable))
            return -EMFILE;     /* the env's region table is full */
    if (is_ptr_map(m->base.type))
        for_each_inner(m, attach_inner, &w);
    return w.rc;
}

int ebpfjit_map_attach(struct ebpfjit_env *env, struct ebpfjit_map *m)
{
    int rc;

    pthread_mutex_lock(&attach_lock);
    rc = attach_locked(env, m);
    pthread_mutex_unlock(&attach_lock);
    return rc;
}

void ebpfjit_map_detach(struct ebpfjit_env *env, struct ebpfjit_map *m)
{
    uint32_t i;
    int found = 0;

    pthread_mutex_lock(&attach_lock);
    for (i = 0; i < m->nenvs; i++) {
        if (m->envs[i] == env) {
            m->envs[i] = m->envs[--m->nenvs];
            regions_remove(env, m);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&attach_lock);
    if (found)
        ebpfjit_env_release(env);
}

/* --- public operations ------------------------------------------------------------------ */

uint32_t ebpfjit_map_user_value_size(const struct ebpfjit_map *m)
{
    return is_percpu(m) ? m->value_stride : m->base.value_size;
}

static inline uint32_t array_index(const void *key)
{
    uint32_t idx;
    memcpy(&idx, key, 4);
    return idx;
}

int ebpfjit_map_lookup(struct ebpfjit_map *m, const void *key, void *value, uint64_t flags)
{
    uint32_t t = m->base.type, idx;
    int locked = !!(flags & EBPFJIT_BPF_F_LOCK);
    void *v;

    /* Syscall lookup accepts only BPF_F_LOCK, and only with a spin lock in the value. */
    if (flags & ~(uint64_t)EBPFJIT_BPF_F_LOCK)
        return -EINVAL;
    if (locked && m->spin_lock_off < 0)
        return -EINVAL;
    if (is_array(t)) {
        idx = array_index(key);
        if (idx >= m->base.max_entries)
            return -ENOENT;
        return read_value(m, idx, value, locked);
    }
    if (is_htab(t) && t != EBPFJIT_MAP_HASH_OF_MAPS) {
        /* Syscall lookups do not mark LRU elements (htab_lru_map_lookup_elem_sys). */
        idx = htab_lookup_idx(m, key);
        if (idx == EBPFJIT_NIL)
            return -ENOENT;
        return read_value(m, idx, value, locked);
    }
    switch (t) {
    case EBPFJIT_MAP_LPM_TRIE:
        ebpfjit_map_lock(&m->lock);
        v = ebpfjit_lpm_lookup(m, key);
        if (v)
            memcpy(value, v, m->base.value_size);
        ebpfjit_map_unlock(&m->lock);
        return v ? 0 : -ENOENT;
    case EBPFJIT_MAP_QUEUE:
    case EBPFJIT_MAP_STACK:
        return qs_pop(m, value, 0);
    case EBPFJIT_MAP_RINGBUF:
        return -ENOTSUP;
    default:
        /* PROG_ARRAY/map-in-map hold objects, not bytes: see ebpfjit_map_get_ptr. */
        return -EOPNOTSUPP;
    }
}

static int array_update(struct ebpfjit_map *m, const void *key, const void *value,
                        uint64_t flags, int cpu)
{
    uint32_t idx = array_index(key);
    int rc = check_update_flags(m, flags);

    if (rc)
        return rc;
    if (idx >= m->base.max_entries)
        return -E2BIG;
    if ((flags & ~(uint64_t)EBPFJIT_BPF_F_LOCK) == EBPFJIT_BPF_NOEXIST)
        return -EEXIST;     /* every array element always exists */
    while ((rc = write_value(m, idx, value, cpu, !!(flags & EBPFJIT_BPF_F_LOCK), 0)) == -EBUSY)
        if ((rc = ebpfjit_value_lock_wait(lock_word(m, idx), lock_limit(cpu))))
            break;
    return rc;
}

int ebpfjit_map_update(struct ebpfjit_map *m, const void *key, const void *value, uint64_t flags)
{
    uint32_t t = m->base.type;

    if (is_array(t))
        return array_update(m, key, value, flags, -1);
    if (is_htab(t) && t != EBPFJIT_MAP_HASH_OF_MAPS)
        return htab_update(m, key, value, flags, -1);
    switch (t) {
    case EBPFJIT_MAP_LPM_TRIE:
        return ebpfjit_lpm_update(m, key, value, flags);
    case EBPFJIT_MAP_QUEUE:
    case EBPFJIT_MAP_STACK:
        return qs_push(m, value, flags);
    case EBPFJIT_MAP_RINGBUF:
        return -ENOTSUP;
    default:
        /* the kernel takes fds here; ebpfjit takes objects through set_prog/set_inner */
        return -EINVAL;
    }
}

int ebpfjit_map_delete(struct ebpfjit_map *m, const void *key)
{
    uint32_t t = m->base.type, idx;

    if (is_array(t))
        return -EINVAL;
    if (is_htab(t))
        return htab_delete(m, key);
    if (is_fd_array(t)) {
        idx = array_index(key);
        if (idx >= m->base.max_entries)
            return -E2BIG;
        return __atomic_exchange_n((void **)slot(m, idx, 0), NULL, __ATOMIC_ACQ_REL) ? 0 : -ENOENT;
    }
    switch (t) {
    case EBPFJIT_MAP_LPM_TRIE:
        return ebpfjit_lpm_delete(m, key);
    case EBPFJIT_MAP_RINGBUF:
        return -ENOTSUP;
    default:
        return -EINVAL;
    }
}

int ebpfjit_map_get_next_key(struct ebpfjit_map *m, const void *key, void *next)
{
    uint32_t t = m->base.type, idx;

    if (is_array(t) || is_fd_array(t)) {
        idx = key ? array_index(key) : UINT32_MAX;
        if (idx >= m->base.max_entries) {
            idx = 0;
        } else if (idx == m->base.max_entries - 1) {
            return -ENOENT;
        } else {
            idx++;
        }
        memcpy(next, &idx, 4);
        return 0;
    }
    if (is_htab(t))
        return htab_get_next_key(m, key, next);
    if (t == EBPFJIT_MAP_LPM_TRIE)
        return ebpfjit_lpm_get_next_key(m, key, next);
    return t == EBPFJIT_MAP_RINGBUF ? -ENOTSUP : -EINVAL;
}

uint64_t ebpfjit_map_count(struct ebpfjit_map *m)
{
    uint32_t t = m->base.type;

    if (is_array(t) || is_fd_array(t))
        return m->base.max_entries;
    if (t == EBPFJIT_MAP_RINGBUF)
        return ebpfjit_ringbuf_query(m, EBPFJIT_RB_AVAIL_DATA);
    return __atomic_load_n(&m->count, __ATOMIC_RELAXED);
}

int ebpfjit_map_push(struct ebpfjit_map *m, const void *value, uint64_t flags)
{
    if (m->base.type != EBPFJIT_MAP_QUEUE && m->base.type != EBPFJIT_MAP_STACK)
        return -ENOTSUP;
    return qs_push(m, value, flags);
}

int ebpfjit_map_pop(struct ebpfjit_map *m, void *value)
{
    if (m->base.type != EBPFJIT_MAP_QUEUE && m->base.type != EBPFJIT_MAP_STACK)
        return -ENOTSUP;
    return qs_pop(m, value, 1);
}

int ebpfjit_map_peek(struct ebpfjit_map *m, void *value)
{
    if (m->base.type != EBPFJIT_MAP_QUEUE && m->base.type != EBPFJIT_MAP_STACK)
        return -ENOTSUP;
    return qs_pop(m, value, 0);
}

int ebpfjit_map_set_prog(struct ebpfjit_map *m, uint32_t index, struct ebpfjit_prog *prog)
{
    if (m->base.type != EBPFJIT_MAP_PROG_ARRAY)
        return -EINVAL;
    if (index >= m->base.max_entries)
        return -E2BIG;
    __atomic_store_n((struct ebpfjit_prog **)slot(m, index, 0), prog, __ATOMIC_RELEASE);
    return 0;
}

/* kernel bpf_map_meta_equal: same type, sizes and flags; same max_entries unless the template
 * says BPF_F_INNER_MAP. */
static int inner_ok(const struct ebpfjit_map *m, const struct ebpfjit_map *in)
{
    if (is_ptr_map(in->base.type))
        return 0;
    if (!m->has_inner_tmpl)
        return 1;
    return in->base.type == m->inner_type && in->base.key_size == m->inner_key_size &&
           in->base.value_size == m->inner_value_size && in->base.flags == m->inner_flags &&
           ((m->inner_flags & EBPFJIT_F_INNER_MAP) || in->base.max_entries == m->inner_max_entries);
}

int ebpfjit_map_set_inner(struct ebpfjit_map *m, const void *key, struct ebpfjit_map *in,
                          uint64_t flags)
{
    uint32_t t = m->base.type, idx = 0, i;
    int rc;

    if (t != EBPFJIT_MAP_ARRAY_OF_MAPS && t != EBPFJIT_MAP_HASH_OF_MAPS)
        return -EINVAL;
    if (!in)
        return ebpfjit_map_delete(m, key);
    if (!ebpfjit_map_is_live(in))
        return -EBADF;
    if (!inner_ok(m, in))
        return -EINVAL;
    if (t == EBPFJIT_MAP_ARRAY_OF_MAPS) {
        if (flags != EBPFJIT_BPF_ANY)
            return -EINVAL;     /* bpf_fd_array_map_update_elem */
        idx = array_index(key);
        if (idx >= m->base.max_entries)
            return -E2BIG;
    }
    /* Register the inner map's memory with every env of the outer map before a program can
     * reach it; if that fails, it is not published. The lock keeps an attach of the outer map
     * to a new env from missing it. The old inner map (the caller's) is not freed here. */
    pthread_mutex_lock(&attach_lock);
    for (i = 0, rc = 0; i < m->nenvs && !rc; i++)
        rc = attach_locked(m->envs[i], in);
    if (!rc && t == EBPFJIT_MAP_ARRAY_OF_MAPS)
        __atomic_store_n((struct ebpfjit_map **)slot(m, idx, 0), in, __ATOMIC_SEQ_CST);
    else if (!rc)
        rc = htab_update(m, key, &in, flags, -1);
    pthread_mutex_unlock(&attach_lock);
    return rc;
}

void *ebpfjit_map_get_ptr(struct ebpfjit_map *m, const void *key)
{
    uint32_t idx;

    if (is_fd_array(m->base.type)) {
        idx = array_index(key);
        return idx < m->base.max_entries
                   ? __atomic_load_n((void **)slot(m, idx, 0), __ATOMIC_ACQUIRE) : NULL;
    }
    if (m->base.type == EBPFJIT_MAP_HASH_OF_MAPS) {
        idx = htab_lookup_idx(m, key);
        return idx == EBPFJIT_NIL ? NULL : __atomic_load_n((void **)slot(m, idx, 0), __ATOMIC_ACQUIRE);
    }
    return NULL;
}

/* --- program view ----------------------------------------------------------------------- */

void *ebpfjit_map_lookup_prog(struct ebpfjit_map *m, const void *key, uint32_t cpu)
{
    uint32_t t = m->base.type, idx;
    void *v;

    if (is_array(t)) {
        idx = array_index(key);
        if (idx >= m->base.max_entries)
            return NULL;
        return slot(m, idx, t == EBPFJIT_MAP_PERCPU_ARRAY ? cpu_of(m, cpu) : 0);
    }
    if (is_htab(t)) {
        idx = htab_lookup_idx(m, key);
        if (idx == EBPFJIT_NIL)
            return NULL;
        if (t == EBPFJIT_MAP_HASH_OF_MAPS)
            return __atomic_load_n((void **)slot(m, idx, 0), __ATOMIC_ACQUIRE);
        if (is_lru(m) && !__atomic_load_n(&m->elems[idx].ref, __ATOMIC_RELAXED))
            __atomic_store_n(&m->elems[idx].ref, 1, __ATOMIC_RELAXED);
        return slot(m, idx, is_percpu(m) ? cpu_of(m, cpu) : 0);
    }
    switch (t) {
    case EBPFJIT_MAP_ARRAY_OF_MAPS:
        return ebpfjit_map_get_ptr(m, key);
    case EBPFJIT_MAP_LPM_TRIE:
        ebpfjit_map_lock(&m->lock);
        v = ebpfjit_lpm_lookup(m, key);
        ebpfjit_map_unlock(&m->lock);
        return v;
    default:
        return NULL;    /* the verifier forbids lookups in the other types */
    }
}

/* The lock word of key's value (array/hash maps with a spin lock), or NULL: for fault reports. */
uint32_t *ebpfjit_map_lock_word(struct ebpfjit_map *m, const void *key)
{
    uint32_t idx = EBPFJIT_NIL;

    if (m->spin_lock_off < 0 || is_percpu(m))
        return NULL;
    if (is_array(m->base.type) && array_index(key) < m->base.max_entries)
        idx = array_index(key);
    else if (is_htab(m->base.type) && m->base.type != EBPFJIT_MAP_HASH_OF_MAPS)
        idx = htab_lookup_idx(m, key);
    return idx == EBPFJIT_NIL ? NULL : lock_word(m, idx);
}

int ebpfjit_map_update_prog(struct ebpfjit_map *m, const void *key, const void *value,
                            uint64_t flags, uint32_t cpu)
{
    uint32_t t = m->base.type;

    if (is_array(t))
        return array_update(m, key, value, flags, (int)cpu_of(m, cpu));
    if (is_htab(t) && t != EBPFJIT_MAP_HASH_OF_MAPS)
        return htab_update(m, key, value, flags, (int)cpu_of(m, cpu));
    switch (t) {
    case EBPFJIT_MAP_LPM_TRIE:
        return ebpfjit_lpm_update(m, key, value, flags);
    case EBPFJIT_MAP_QUEUE:
    case EBPFJIT_MAP_STACK:
        return qs_push(m, value, flags);
    default:
        return -EINVAL;     /* programs cannot store programs or maps */
    }
}

/* bpf_for_each_map_elem: arrays in index order, hash maps in pool order (the kernel walks
 * buckets; the order is unspecified either way). No lock is held while the callback runs, so
 * it may update or delete elements of the same map, as in the kernel. */
int64_t ebpfjit_map_for_each(struct ebpfjit_map *m, struct ebpfjit_state *st, uint64_t callback,
                             uint64_t ctx)
{
    uint32_t t = m->base.type, i, n, cpu;
    int64_t num = 0;
    uint64_t ret;

    if (!is_array(t) && !(is_htab(t) && t != EBPFJIT_MAP_HASH_OF_MAPS))
        return -EINVAL;
    cpu = is_percpu(m) ? cpu_of(m, st->cpu) : 0;
    n = is_array(t) ? m->base.max_entries : __atomic_load_n(&m->fresh, __ATOMIC_RELAXED);
    for (i = 0; i < n; i++) {
        if (!is_array(t) && !__atomic_load_n(&m->elems[i].used, __ATOMIC_ACQUIRE))
            continue;
        num++;
        ret = ebpfjit_invoke_callback(st, callback, (uint64_t)(uintptr_t)m,
                                      (uint64_t)(uintptr_t)(is_array(t) ? m->keys + (uint64_t)i * 4
                                                                        : elem_key(m, i)),
                                      (uint64_t)(uintptr_t)slot(m, i, cpu), ctx);
        if (st->status != EBPFJIT_OK)
            return 0;
        if (ret)
            break;      /* callback returned 1: stop */
    }
    return num;
}
