/* helpers_maps.c: the map helpers of both engines (kernel helper ids), with argument checks.
 *
 * A program compiled without the kernel verifier can pass anything, so every map argument must
 * be a map of this run's env (or a live inner map) and every pointer argument must pass
 * ebpfjit_access_ok for its size; otherwise the helper records EBPFJIT_ERR_HELPER (fault_info =
 * helper id, pc -1 for the engine to fill in) and returns 0. Errors the kernel returns at run
 * time (-ENOENT, -E2BIG, ...) are returned as u64, as the kernel's helpers do.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "maps.h"
#include "runtime_api.h"

#if defined(__x86_64__) || defined(__i386__)
#define ebpfjit_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define ebpfjit_cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define ebpfjit_cpu_relax() do { } while (0)
#endif

enum {
    H_MAP_LOOKUP_ELEM = 1,
    H_MAP_UPDATE_ELEM = 2,
    H_MAP_DELETE_ELEM = 3,
    H_TAIL_CALL = 12,
    H_MAP_PUSH_ELEM = 87,
    H_MAP_POP_ELEM = 88,
    H_MAP_PEEK_ELEM = 89,
    H_SPIN_LOCK = 93,
    H_SPIN_UNLOCK = 94,
    H_RINGBUF_OUTPUT = 130,
    H_RINGBUF_RESERVE = 131,
    H_RINGBUF_SUBMIT = 132,
    H_RINGBUF_DISCARD = 133,
    H_RINGBUF_QUERY = 134,
    H_FOR_EACH_MAP_ELEM = 164,
};

#ifndef EBPFJIT_HAVE_INVOKE_CALLBACK
/* Stand-in until the engines provide callbacks; their strong definition replaces it. */
__attribute__((weak)) uint64_t ebpfjit_invoke_callback(struct ebpfjit_state *st, uint64_t callback,
                                                       uint64_t a1, uint64_t a2, uint64_t a3,
                                                       uint64_t a4)
{
    (void)a1, (void)a2, (void)a3, (void)a4;
    ebpfjit_fault(st, EBPFJIT_ERR_BAD_INSN, -1, callback, 0);
    return 0;
}
#endif

#define NEG(e) ((uint64_t)(int64_t)(e))
#define PTR(p) ((uint64_t)(uintptr_t)(p))

static void helper_fault(struct ebpfjit_state *st, uint32_t id, uint64_t addr, uint64_t size)
{
    int first = st->status == EBPFJIT_OK || st->status == EBPFJIT_TAIL_CALL;

    ebpfjit_fault(st, EBPFJIT_ERR_HELPER, -1, addr, size);
    if (first)
        st->fault_info = id;
}

/* Only maps of the run's env or attached to it (inner maps): never another object's map. */
static struct ebpfjit_map *arg_map(struct ebpfjit_state *st, uint64_t p, uint32_t id)
{
    if (ebpfjit_map_reachable(st->env, (const void *)(uintptr_t)p))
        return (struct ebpfjit_map *)(uintptr_t)p;
    helper_fault(st, id, p, 0);
    return NULL;
}

#define MAP_TYPE_BIT(type) (1ULL << (type))

/* arg_map, and its type must be one of `types` (MAP_TYPE_BIT()s), else the call is bad. */
static struct ebpfjit_map *arg_map_of(struct ebpfjit_state *st, uint64_t p, uint32_t id,
                                      uint64_t types)
{
    struct ebpfjit_map *m = arg_map(st, p, id);

    if (m && (m->base.type >= 64 || !(types & MAP_TYPE_BIT(m->base.type)))) {
        helper_fault(st, id, p, 0);
        return NULL;
    }
    return m;
}

static int arg_mem(struct ebpfjit_state *st, uint64_t p, uint64_t size, int write, uint32_t id)
{
    if (size == 0 || ebpfjit_access_ok(st, p, size, write))
        return 1;
    helper_fault(st, id, p, size);
    return 0;
}

#define STATE_OR_ZERO()                            \
    struct ebpfjit_state *st = ebpfjit_current(); \
    if (!st)                                       \
        return 0

static uint32_t lock_reason(int rc)
{
    return rc == -EDEADLK ? EBPFJIT_LOCK_REASON_SELF
         : rc == -ETIMEDOUT ? EBPFJIT_LOCK_REASON_TIMEOUT : EBPFJIT_LOCK_REASON_NO_OWNER;
}

static void lock_fault(struct ebpfjit_state *st, uint32_t id, uint64_t addr, uint32_t reason)
{
    int first = st->status == EBPFJIT_OK || st->status == EBPFJIT_TAIL_CALL;

    ebpfjit_fault(st, EBPFJIT_ERR_HELPER, -1, addr, 4);
    if (first)
        st->fault_info = id | (uint64_t)reason << 32;
}

uint64_t ebpfjit_helper_map_lookup_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                        uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_map(st, r1, H_MAP_LOOKUP_ELEM)) ||
        !arg_mem(st, r2, m->base.key_size, 0, H_MAP_LOOKUP_ELEM))
        return 0;
    return PTR(ebpfjit_map_lookup_prog(m, (const void *)(uintptr_t)r2, st->cpu));
}

uint64_t ebpfjit_helper_map_update_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                        uint64_t r5)
{
    struct ebpfjit_map *m;
    int rc;
    STATE_OR_ZERO();

    if (!(m = arg_map(st, r1, H_MAP_UPDATE_ELEM)) ||
        !arg_mem(st, r2, m->base.key_size, 0, H_MAP_UPDATE_ELEM) ||
        !arg_mem(st, r3, m->base.value_size, 0, H_MAP_UPDATE_ELEM))
        return 0;
    /* The verifier refuses writes to BPF_F_RDONLY_PROG maps; a run-time refusal is closest. */
    if (m->base.flags & EBPFJIT_F_RDONLY_PROG)
        return NEG(-EPERM);
    rc = ebpfjit_map_update_prog(m, (const void *)(uintptr_t)r2, (const void *)(uintptr_t)r3,
                                 r4, st->cpu);
    /* A BPF_F_LOCK copy into a value whose lock this run holds would deadlock (the kernel
     * verifier refuses helper calls while a lock is held); a lock word no live thread holds,
     * or one held too long, would hang it. Each ends the run naming the value's lock. */
    if ((r4 & EBPFJIT_BPF_F_LOCK) && (rc == -EDEADLK || rc == -EOWNERDEAD || rc == -ETIMEDOUT)) {
        lock_fault(st, H_MAP_UPDATE_ELEM,
                   (uint64_t)(uintptr_t)ebpfjit_map_lock_word(m, (const void *)(uintptr_t)r2),
                   lock_reason(rc));
        return 0;
    }
    return NEG(rc);
}

uint64_t ebpfjit_helper_map_delete_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                        uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_map(st, r1, H_MAP_DELETE_ELEM)) ||
        !arg_mem(st, r2, m->base.key_size, 0, H_MAP_DELETE_ELEM))
        return 0;
    if (m->base.flags & EBPFJIT_F_RDONLY_PROG)
        return NEG(-EPERM);
    return NEG(ebpfjit_map_delete(m, (const void *)(uintptr_t)r2));
}

/* bpf_tail_call(ctx, prog_array, index): on success the runner switches programs when the
 * helper returns (st->status = EBPFJIT_TAIL_CALL); on failure (empty slot, index out of range,
 * 33 tail calls done) the program just continues with r0 = -ENOENT. */
uint64_t ebpfjit_helper_tail_call(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                  uint64_t r5)
{
    struct ebpfjit_map *m;
    struct ebpfjit_prog *prog;
    uint32_t index = (uint32_t)r3;
    STATE_OR_ZERO();

    if (!(m = arg_map_of(st, r2, H_TAIL_CALL, MAP_TYPE_BIT(EBPFJIT_MAP_PROG_ARRAY))))
        return 0;
    prog = ebpfjit_map_get_ptr(m, &index);
    if (!prog || st->tail_calls >= EBPFJIT_MAX_TAIL_CALLS)
        return NEG(-ENOENT);
    /* ebpfjit_run counts the tail call when it switches programs; counting here too would
     * halve the kernel's limit of 33. */
    st->tail_target = prog;
    if (st->status == EBPFJIT_OK)
        st->status = EBPFJIT_TAIL_CALL;
    return 0;
}

static struct ebpfjit_map *arg_qs(struct ebpfjit_state *st, uint64_t p, uint32_t id)
{
    return arg_map_of(st, p, id, MAP_TYPE_BIT(EBPFJIT_MAP_QUEUE) | MAP_TYPE_BIT(EBPFJIT_MAP_STACK));
}

uint64_t ebpfjit_helper_map_push_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                      uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_qs(st, r1, H_MAP_PUSH_ELEM)) ||
        !arg_mem(st, r2, m->base.value_size, 0, H_MAP_PUSH_ELEM))
        return 0;
    return NEG(ebpfjit_map_push(m, (const void *)(uintptr_t)r2, r3));
}

uint64_t ebpfjit_helper_map_pop_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                     uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_qs(st, r1, H_MAP_POP_ELEM)) ||
        !arg_mem(st, r2, m->base.value_size, 1, H_MAP_POP_ELEM))
        return 0;
    return NEG(ebpfjit_map_pop(m, (void *)(uintptr_t)r2));
}

uint64_t ebpfjit_helper_map_peek_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                      uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_qs(st, r1, H_MAP_PEEK_ELEM)) ||
        !arg_mem(st, r2, m->base.value_size, 1, H_MAP_PEEK_ELEM))
        return 0;
    return NEG(ebpfjit_map_peek(m, (void *)(uintptr_t)r2));
}

/* struct bpf_spin_lock is one u32 inside a map value; the kernel's lock is a real spinlock,
 * and so is this one (the word is shared with BPF_F_LOCK copies from userspace, which hold it
 * as 1). A program holds it as its thread's id, so a lock this thread already holds (same run,
 * or an outer run on this thread through a Python helper) is a fault, never a deadlock; the run
 * records what it holds (st->locks) and ebpfjit_run releases whatever is left at its end. We
 * wait (spin, then yield) for a live holder only: a word naming no live thread of this process
 * (a program overwrote it) faults, and a userspace holder (1) gets a generous time bound. */
/* Is `addr` the struct bpf_spin_lock field (BTF) of a value of one of this run's maps? The
 * kernel verifier accepts nothing else (not the stack, a packet or another field), and a lock
 * anywhere else could outlive its memory (a stack frame) or alias program data. */
static int is_map_lock_field(const struct ebpfjit_state *st, uint64_t addr)
{
    const struct ebpfjit_env *env = st->env;
    uint32_t i;

    if (!env || !env->maps)
        return 0;
    for (i = 0; i < env->nmaps; i++) {
        const struct ebpfjit_map *m = env->maps[i];
        uint64_t off;

        if (!m || m->spin_lock_off < 0 || !m->arena || !m->value_stride)
            continue;
        off = addr - (uint64_t)(uintptr_t)m->arena;
        if (addr >= (uint64_t)(uintptr_t)m->arena && off + 4 <= m->arena_len &&
            off % m->value_stride == (uint64_t)m->spin_lock_off)
            return 1;
    }
    return 0;
}

uint64_t ebpfjit_helper_spin_lock(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    int rc;
    STATE_OR_ZERO();

    if ((r1 & 3) || !ebpfjit_access_ok(st, r1, 4, 1)) {
        helper_fault(st, H_SPIN_LOCK, r1, 4);
        return 0;
    }
    if (!is_map_lock_field(st, r1)) {
        lock_fault(st, H_SPIN_LOCK, r1, EBPFJIT_LOCK_REASON_NOT_A_LOCK);
        return 0;
    }
    if (st->nlocks >= EBPFJIT_MAX_HELD_LOCKS) {
        lock_fault(st, H_SPIN_LOCK, r1, EBPFJIT_LOCK_REASON_TOO_MANY);
        return 0;
    }
    rc = ebpfjit_value_lock((uint32_t *)(uintptr_t)r1, EBPFJIT_PROG_LOCK_LIMIT_NS);
    if (rc) {
        lock_fault(st, H_SPIN_LOCK, r1, lock_reason(rc));
        return 0;
    }
    st->locks[st->nlocks++] = r1;
    return 0;
}

uint64_t ebpfjit_helper_spin_unlock(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                    uint64_t r5)
{
    uint32_t i, n;
    STATE_OR_ZERO();

    if ((r1 & 3) || !ebpfjit_access_ok(st, r1, 4, 1)) {
        helper_fault(st, H_SPIN_UNLOCK, r1, 4);
        return 0;
    }
    n = st->nlocks < EBPFJIT_MAX_HELD_LOCKS ? st->nlocks : EBPFJIT_MAX_HELD_LOCKS;
    for (i = 0; i < n && st->locks[i] != r1; i++)
        ;
    if (i == n) {
        lock_fault(st, H_SPIN_UNLOCK, r1, EBPFJIT_LOCK_REASON_NOT_HELD);
        return 0;
    }
    st->locks[i] = st->locks[n - 1];
    st->nlocks = n - 1;
    __atomic_store_n((uint32_t *)(uintptr_t)r1, 0, __ATOMIC_RELEASE);
    return 0;
}

static struct ebpfjit_map *arg_rb(struct ebpfjit_state *st, uint64_t p, uint32_t id)
{
    return arg_map_of(st, p, id, MAP_TYPE_BIT(EBPFJIT_MAP_RINGBUF));
}

uint64_t ebpfjit_helper_ringbuf_output(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                       uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_rb(st, r1, H_RINGBUF_OUTPUT)) || !arg_mem(st, r2, r3, 0, H_RINGBUF_OUTPUT))
        return 0;
    return NEG(ebpfjit_ringbuf_output(m, (const void *)(uintptr_t)r2, r3, r4));
}

uint64_t ebpfjit_helper_ringbuf_reserve(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                        uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_rb(st, r1, H_RINGBUF_RESERVE)))
        return 0;
    return PTR(ebpfjit_ringbuf_reserve(m, r2, r3));
}

/* submit/discard get only the sample: find the ring of this env that has it reserved. */
static uint64_t commit(uint64_t sample, uint64_t flags, int discard, uint32_t id)
{
    const struct ebpfjit_env *env;
    uint32_t i;
    STATE_OR_ZERO();

    env = st->env;
    if (env && env->maps) {
        for (i = 0; i < env->nmaps; i++) {
            struct ebpfjit_map *m = env->maps[i];
            if (m && m->base.type == EBPFJIT_MAP_RINGBUF &&
                ebpfjit_ringbuf_owns(m, (const void *)(uintptr_t)sample)) {
                ebpfjit_ringbuf_commit(m, (void *)(uintptr_t)sample, flags, discard);
                return 0;
            }
        }
    }
    helper_fault(st, id, sample, 0);
    return 0;
}

uint64_t ebpfjit_helper_ringbuf_submit(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                       uint64_t r5)
{
    return commit(r1, r2, 0, H_RINGBUF_SUBMIT);
}

uint64_t ebpfjit_helper_ringbuf_discard(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                        uint64_t r5)
{
    return commit(r1, r2, 1, H_RINGBUF_DISCARD);
}

uint64_t ebpfjit_helper_ringbuf_query(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                      uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_rb(st, r1, H_RINGBUF_QUERY)))
        return 0;
    return ebpfjit_ringbuf_query(m, r2);
}

/* bpf_for_each_map_elem(map, callback, ctx, flags): callback(map, key, value, ctx) returns 0 to
 * continue or 1 to stop; returns the number of callbacks made. */
uint64_t ebpfjit_helper_for_each_map_elem(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,
                                          uint64_t r5)
{
    struct ebpfjit_map *m;
    STATE_OR_ZERO();

    if (!(m = arg_map(st, r1, H_FOR_EACH_MAP_ELEM)))
        return 0;
    if (r4)
        return NEG(-EINVAL);
    return NEG(ebpfjit_map_for_each(m, st, r2, r3));
}

void ebpfjit_install_map_helpers(struct ebpfjit_env *env)
{
    env->helpers[H_MAP_LOOKUP_ELEM] = ebpfjit_helper_map_lookup_elem;
    env->helpers[H_MAP_UPDATE_ELEM] = ebpfjit_helper_map_update_elem;
    env->helpers[H_MAP_DELETE_ELEM] = ebpfjit_helper_map_delete_elem;
    env->helpers[H_TAIL_CALL] = ebpfjit_helper_tail_call;
    env->helpers[H_MAP_PUSH_ELEM] = ebpfjit_helper_map_push_elem;
    env->helpers[H_MAP_POP_ELEM] = ebpfjit_helper_map_pop_elem;
    env->helpers[H_MAP_PEEK_ELEM] = ebpfjit_helper_map_peek_elem;
    env->helpers[H_SPIN_LOCK] = ebpfjit_helper_spin_lock;
    env->helpers[H_SPIN_UNLOCK] = ebpfjit_helper_spin_unlock;
    env->helpers[H_RINGBUF_OUTPUT] = ebpfjit_helper_ringbuf_output;
    env->helpers[H_RINGBUF_RESERVE] = ebpfjit_helper_ringbuf_reserve;
    env->helpers[H_RINGBUF_SUBMIT] = ebpfjit_helper_ringbuf_submit;
    env->helpers[H_RINGBUF_DISCARD] = ebpfjit_helper_ringbuf_discard;
    env->helpers[H_RINGBUF_QUERY] = ebpfjit_helper_ringbuf_query;
    env->helpers[H_FOR_EACH_MAP_ELEM] = ebpfjit_helper_for_each_map_elem;
}
