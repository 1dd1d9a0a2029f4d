/* runtime.c: what both engines share at run time: state and env management, fault recording,
 * the bounds-check slow path, the thread's current run, helper dispatch (callx, Python
 * trampolines), legacy packet loads, and the runners (tail-call loop, Python entry, timing loop).
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ebpfjit_rt.h"
#include "epoch.h"
#include "runtime_api.h"

/* initial-exec: a plain %fs-relative access instead of a __tls_get_addr call per run and per
 * helper (the library is loaded at start-up by Python; 16 bytes of static TLS). */
#define EBPFJIT_TLS_IE __attribute__((tls_model("initial-exec")))
static __thread struct ebpfjit_state *current_state EBPFJIT_TLS_IE;

struct ebpfjit_state *ebpfjit_current(void)
{
    return current_state;
}

void ebpfjit_set_current(struct ebpfjit_state *st)
{
    current_state = st;
}

int32_t ebpfjit_fault(struct ebpfjit_state *st, int32_t status, int32_t pc, uint64_t addr,
                      uint64_t size)
{
    /* A pending tail call is not a fault: a helper failing after it still reports. */
    if (st->status == EBPFJIT_OK || st->status == EBPFJIT_TAIL_CALL) {
        st->status = status;
        st->fault_pc = pc;
        st->fault_addr = addr;
        st->fault_size = size;
        st->fault_mem_base = st->mem_base;
        st->fault_mem_len = st->mem_len;
        st->fault_ctx_base = st->run_ctx && st->nregions ? st->regions[0].base : 0;
        st->fault_ctx_len = st->run_ctx && st->nregions ? st->regions[0].len : 0;
        memcpy(st->fault_frame_lo, st->frame_lo, sizeof st->fault_frame_lo);
        st->fault_depth = st->depth;
    }
    return status;
}

int32_t ebpfjit_helper_status(struct ebpfjit_state *st, int32_t pc)
{
    if (st->fault_pc < 0 && st->status != EBPFJIT_TAIL_CALL)
        st->fault_pc = pc;
    return st->status;
}

int32_t ebpfjit_lock_held(struct ebpfjit_state *st, int32_t pc, uint32_t reason)
{
    int first = st->status == EBPFJIT_OK || st->status == EBPFJIT_TAIL_CALL;

    ebpfjit_fault(st, EBPFJIT_ERR_HELPER, pc, st->nlocks ? st->locks[0] : 0, 4);
    if (first)
        st->fault_info = 93 | (uint64_t)reason << 32;
    return st->status;
}

/* --- the instruction budget and the wall-clock deadline (runtime_api.h) --- */

static __thread uint64_t run_deadline;

uint64_t ebpfjit_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ebpfjit_set_deadline(uint64_t deadline_ns)
{
    uint64_t prev = run_deadline;

    run_deadline = deadline_ns;
    return prev;
}

uint64_t ebpfjit_budget_refill(struct ebpfjit_state *st, uint64_t left, uint64_t charge,
                               int32_t pc)
{
    uint64_t total = left + st->budget_rest, chunk;

    if (charge >= total) {
        st->budget = 0;
        st->budget_rest = 0;
        ebpfjit_fault(st, EBPFJIT_ERR_BUDGET, pc, 0, 0);
        return 0;
    }
    if (run_deadline && ebpfjit_now_ns() >= run_deadline) {
        st->budget = left;
        ebpfjit_fault(st, EBPFJIT_ERR_TIMEOUT, pc, 0, 0);
        return 0;
    }
    total -= charge;
    chunk = total < EBPFJIT_BUDGET_CHUNK ? total : EBPFJIT_BUDGET_CHUNK;
    st->budget = chunk;
    st->budget_rest = total - chunk;
    return chunk;
}

int ebpfjit_budget_charge(struct ebpfjit_state *st, uint64_t n)
{
    if (n < st->budget) {
        st->budget -= n;
        return 0;
    }
    return ebpfjit_budget_refill(st, st->budget, n, -1) ? 0 : -1;
}

/* Overflow-safe [addr, addr+size) within [base, base+len). */
static inline int inside(uint64_t base, uint64_t len, uint64_t addr, uint64_t size)
{
    uint64_t off = addr - base;
    return addr >= base && off <= len && size <= len - off;
}

int ebpfjit_access_ok(const struct ebpfjit_state *st, uint64_t addr, uint64_t size, int write)
{
    uint32_t i, n;

    n = st->depth < EBPFJIT_MAX_FRAMES ? st->depth : EBPFJIT_MAX_FRAMES;
    for (i = 0; i < n; i++)
        if (st->frame_lo[i] && inside(st->frame_lo[i], EBPFJIT_STACK_SIZE, addr, size))
            return 1;
    if (st->mem_len && (!write || st->mem_writable) && inside(st->mem_base, st->mem_len, addr, size))
        return 1;
    n = st->nregions < EBPFJIT_MAX_RUN_REGIONS ? st->nregions : EBPFJIT_MAX_RUN_REGIONS;
    for (i = 0; i < n; i++) {
        const struct ebpfjit_region *r = &st->regions[i];
        if ((!write || r->writable) && inside(r->base, r->len, addr, size))
            return 1;
    }
    if (st->env) {
        const struct ebpfjit_env *env = st->env;
        n = __atomic_load_n(&env->nregions, __ATOMIC_ACQUIRE);
        n = n < EBPFJIT_MAX_ENV_REGIONS ? n : EBPFJIT_MAX_ENV_REGIONS;
        for (i = 0; i < n; i++) {
            /* len first: see ebpfjit_env_add_region for why base and writable then match it. */
            const struct ebpfjit_region *r = &env->regions[i];
            uint64_t len = __atomic_load_n(&r->len, __ATOMIC_ACQUIRE);
            if (len && (!write || r->writable) && inside(r->base, len, addr, size))
                return 1;
        }
    }
    return 0;
}

uint64_t ebpfjit_call_helper(struct ebpfjit_state *st, uint64_t id, uint64_t r1, uint64_t r2,
                             uint64_t r3, uint64_t r4, uint64_t r5)
{
    ebpfjit_helper_fn fn = NULL;

    if (id < EBPFJIT_MAX_HELPERS && st->env)
        fn = st->env->helpers[id];
    if (!fn) {
        ebpfjit_fault(st, EBPFJIT_ERR_UNKNOWN_HELPER, -1, 0, 0);
        st->fault_info = id;
        return 0;
    }
    return fn(r1, r2, r3, r4, r5);
}

uint64_t ebpfjit_ld_packet(struct ebpfjit_state *st, uint64_t offset, uint32_t size, int32_t pc,
                           int *ok)
{
    int32_t off = (int32_t)(uint32_t)offset;
    const uint8_t *p;
    uint64_t v = 0;
    uint32_t i;

    (void)pc;
    /* Negative offsets are the kernel's SKF_*_OFF ancillary areas, which we do not model. */
    if (off < 0 || size > st->mem_len || (uint64_t)off > st->mem_len - size) {
        *ok = 0;
        return 0;
    }
    p = (const uint8_t *)(uintptr_t)(st->mem_base + (uint64_t)off);
    for (i = 0; i < size; i++)
        v = (v << 8) | p[i];
    *ok = 1;
    return v;
}

/* --- env --- */

struct ebpfjit_env *ebpfjit_env_new(void)
{
    struct ebpfjit_env *env = calloc(1, sizeof(struct ebpfjit_env));
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (env) {
        env->ncpus = n < 1 ? 1 : n > EBPFJIT_MAX_VCPUS ? EBPFJIT_MAX_VCPUS : (uint32_t)n;
        env->refs = 1;
    }
    return env;
}

int ebpfjit_env_set_ncpus(struct ebpfjit_env *env, uint32_t ncpus)
{
    if (ncpus < 1 || ncpus > EBPFJIT_MAX_VCPUS)
        return -1;
    env->ncpus = ncpus;
    return 0;
}

/* The slot this thread used last: trying it first keeps a thread on "its" CPU (warm per-CPU
 * values, and one uncontended exchange per run). */
static __thread uint32_t vcpu_hint EBPFJIT_TLS_IE;

static uint32_t vcpu_acquire(struct ebpfjit_env *env)
{
    uint32_t n = env->ncpus ? env->ncpus : 1, i, tries;
    uint32_t cpu = vcpu_hint < n ? vcpu_hint : 0;

    for (tries = 0;; tries++) {
        /* No `%` here: an integer division was the costliest step of an empty run. */
        for (i = 0; i < n; i++) {
            if (!__atomic_load_n(&env->vcpu_busy[cpu], __ATOMIC_RELAXED) &&
                !__atomic_exchange_n(&env->vcpu_busy[cpu], 1, __ATOMIC_ACQUIRE)) {
                vcpu_hint = cpu;
                return cpu;
            }
            if (++cpu == n)
                cpu = 0;
        }
        /* Every CPU is running a program: wait for one to finish, as a thread would wait
         * for a CPU. Runs are bounded by their budget, so this ends. */
        if (tries < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#elif defined(__aarch64__)
            __asm__ __volatile__("yield" ::: "memory");
#endif
        } else {
            sched_yield();
        }
    }
}

/* The virtual CPU this thread occupies, and in which env (NULL: none). */
static __thread struct ebpfjit_env *held_env EBPFJIT_TLS_IE;
static __thread uint32_t held_cpu EBPFJIT_TLS_IE;

void ebpfjit_vcpu_enter(struct ebpfjit_env *env, struct ebpfjit_vcpu_hold *hold)
{
    hold->prev_env = held_env;
    hold->prev_cpu = held_cpu;
    hold->own = held_env != env;
    if (hold->own) {
        held_cpu = vcpu_acquire(env);
        held_env = env;
    }
}

void ebpfjit_vcpu_leave(struct ebpfjit_env *env, const struct ebpfjit_vcpu_hold *hold)
{
    if (!hold->own)
        return;
    __atomic_store_n(&env->vcpu_busy[held_cpu], 0, __ATOMIC_RELEASE);
    held_env = hold->prev_env;
    held_cpu = hold->prev_cpu;
}

void ebpfjit_env_hold(struct ebpfjit_env *env)
{
    __atomic_fetch_add(&env->refs, 1, __ATOMIC_RELAXED);
}

void ebpfjit_env_release(struct ebpfjit_env *env)
{
    /* A run that reached the env through a freed map may still read it: after a grace period. */
    if (__atomic_sub_fetch(&env->refs, 1, __ATOMIC_ACQ_REL) == 0)
        ebpfjit_defer(free, env);
}

void ebpfjit_env_free(struct ebpfjit_env *env)
{
    ebpfjit_env_release(env);
}

/* --- env region table ---
 * Runs read it without a lock (ebpfjit_access_ok), so an entry changes only in ways a reader
 * cannot misread: it is filled base and writable first, len last (release), and emptied len
 * first (len = 0); readers load len (acquire) before the rest. An emptied entry is reused only
 * once its epoch ticket has passed, when no run that might still read the old base is left;
 * nregions only grows. Writers serialize on region_lock. */
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER;

static int region_add_locked(struct ebpfjit_env *env, uint64_t base, uint64_t len, int writable)
{
    uint32_t i, n = env->nregions;
    struct ebpfjit_region *r = NULL;

    for (i = 0; i < n && !r; i++)
        if (!env->regions[i].len &&
            (!env->region_dead[i] || ebpfjit_epoch_passed(env->region_dead[i])))
            r = &env->regions[i];
    if (!r) {
        if (n >= EBPFJIT_MAX_ENV_REGIONS)
            return -1;
        r = &env->regions[n];
    }
    env->region_dead[r - env->regions] = 0;
    r->base = base;
    r->writable = writable ? 1 : 0;
    __atomic_store_n(&r->len, len, __ATOMIC_RELEASE);
    if (r == &env->regions[n])
        __atomic_store_n(&env->nregions, n + 1, __ATOMIC_RELEASE);
    return 0;
}

int ebpfjit_env_add_region(struct ebpfjit_env *env, uint64_t base, uint64_t len, int writable)
{
    int rc = 0;

    if (!len)
        return 0;
    pthread_mutex_lock(&region_lock);
    rc = region_add_locked(env, base, len, writable);
    pthread_mutex_unlock(&region_lock);
    return rc;
}

int ebpfjit_env_add_region_once(struct ebpfjit_env *env, uint64_t base, uint64_t len,
                                int writable)
{
    uint32_t i;
    int rc = 0, found = 0;

    if (!len)
        return 0;
    pthread_mutex_lock(&region_lock);
    for (i = 0; i < env->nregions && !found; i++)
        found = env->regions[i].len == len && env->regions[i].base == base;
    if (!found)
        rc = region_add_locked(env, base, len, writable);
    pthread_mutex_unlock(&region_lock);
    return rc;
}

int ebpfjit_env_remove_region(struct ebpfjit_env *env, uint64_t base, uint64_t len)
{
    uint32_t i;
    uint64_t ticket;
    int removed = 0;

    if (!len)
        return 0;
    pthread_mutex_lock(&region_lock);
    for (i = 0; i < env->nregions; i++) {
        if (env->regions[i].len == len && env->regions[i].base == base) {
            __atomic_store_n(&env->regions[i].len, 0, __ATOMIC_RELEASE);
            env->region_dead[i] = UINT64_MAX;   /* never passes: the ticket follows */
            removed++;
        }
    }
    if (removed) {
        ticket = ebpfjit_epoch_retire();    /* after the stores: see epoch.h */
        for (i = 0; i < env->nregions; i++)
            if (env->region_dead[i] == UINT64_MAX)
                env->region_dead[i] = ticket;
    }
    pthread_mutex_unlock(&region_lock);
    return removed;
}

/* --- Python helper trampolines: one C function per id, generated as 8 x 8 x 8. --- */

#define PYH(a, b, c)                                                                          \
    static uint64_t pyh_##a##b##c(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4,          \
                                  uint64_t r5)                                                 \
    {                                                                                          \
        struct ebpfjit_state *st = current_state;                                              \
        return ebpfjit_py_helper(st ? st->env : NULL, (a) * 64 + (b) * 8 + (c), r1, r2, r3,    \
                                 r4, r5);                                                      \
    }
#define PYH8(a, b) PYH(a, b, 0) PYH(a, b, 1) PYH(a, b, 2) PYH(a, b, 3) \
                   PYH(a, b, 4) PYH(a, b, 5) PYH(a, b, 6) PYH(a, b, 7)
#define PYH64(a) PYH8(a, 0) PYH8(a, 1) PYH8(a, 2) PYH8(a, 3) \
                 PYH8(a, 4) PYH8(a, 5) PYH8(a, 6) PYH8(a, 7)
PYH64(0) PYH64(1) PYH64(2) PYH64(3) PYH64(4) PYH64(5) PYH64(6) PYH64(7)

#define PYP(a, b, c) pyh_##a##b##c,
#define PYP8(a, b) PYP(a, b, 0) PYP(a, b, 1) PYP(a, b, 2) PYP(a, b, 3) \
                   PYP(a, b, 4) PYP(a, b, 5) PYP(a, b, 6) PYP(a, b, 7)
#define PYP64(a) PYP8(a, 0) PYP8(a, 1) PYP8(a, 2) PYP8(a, 3) \
                 PYP8(a, 4) PYP8(a, 5) PYP8(a, 6) PYP8(a, 7)
static const ebpfjit_helper_fn py_trampolines[EBPFJIT_MAX_HELPERS] = {
    PYP64(0) PYP64(1) PYP64(2) PYP64(3) PYP64(4) PYP64(5) PYP64(6) PYP64(7)
};
_Static_assert(EBPFJIT_MAX_HELPERS == 512, "trampoline table is generated for 512 ids");

ebpfjit_helper_fn ebpfjit_py_trampoline(uint32_t id)
{
    return id < EBPFJIT_MAX_HELPERS ? py_trampolines[id] : NULL;
}

/* --- runners --- */

void ebpfjit_state_reset(struct ebpfjit_state *st, struct ebpfjit_env *env, uint64_t budget)
{
    st->r0 = 0;
    st->status = EBPFJIT_OK;
    st->fault_pc = -1;
    st->fault_addr = 0;
    st->fault_size = 0;
    st->fault_info = 0;
    ebpfjit_budget_set(st, budget);
    st->depth = 0;
    st->tail_calls = 0;
    st->env = env;
    st->tail_target = NULL;
}

/* Marks `prog` as the program running now (callbacks run in it, on the engine actually
 * executing it: a tail-call target without machine code runs in the interpreter). */
static inline void set_running(struct ebpfjit_state *st, struct ebpfjit_prog *prog, int engine)
{
    st->prog = prog;
    st->engine = engine == EBPFJIT_ENGINE_JIT && prog->jit_fn ? EBPFJIT_ENGINE_JIT
                                                              : EBPFJIT_ENGINE_INTERP;
}

/* One program (not its tail calls); set_running(st, prog, engine) was done. */
static int32_t run_once(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                        uint64_t r1, uint64_t r2)
{
    ebpfjit_jit_fn fn = engine == EBPFJIT_ENGINE_JIT ? prog->jit_fn : NULL;

    /* The expected case, so that it is the straight path of the runners' loops. */
    if (__builtin_expect(fn != NULL, 1))
        return fn(st, r1, r2);
    /* A tail-call target without machine code still runs, in the interpreter. */
    if (prog->interp && (engine == EBPFJIT_ENGINE_INTERP || engine == EBPFJIT_ENGINE_JIT))
        return ebpfjit_interp_exec(prog, st, r1, r2);
    ebpfjit_fault(st, EBPFJIT_ERR_BAD_INSN, 0, 0, 0);
    st->fault_info = (uint64_t)engine;
    return EBPFJIT_ERR_BAD_INSN;
}

/* What every run starts from (the budget and the memory regions are the caller's). */
static void run_reset(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine)
{
    st->r0 = 0;
    st->status = EBPFJIT_OK;
    st->fault_pc = -1;
    st->fault_addr = st->fault_size = st->fault_info = 0;
    st->depth = 0;
    st->tail_calls = 0;
    st->tail_target = NULL;
    st->env = prog->env;
    st->nlocks = 0;
    set_running(st, prog, engine);
}

/* The end of a run that did not simply end OK (run_next's fast path): follows tail calls, then
 * ends the run as every run ends. Out of line: the common run never comes here. */
static __attribute__((noinline, cold)) int32_t run_finish(struct ebpfjit_prog *prog,
                                                         struct ebpfjit_state *st, int engine,
                                                         uint64_t r1, uint64_t r2,
                                                         int32_t status)
{
    /* A tail call continues with the target: the caller's effects are never redone. */
    while (status == EBPFJIT_TAIL_CALL) {
        if (!st->tail_target || st->tail_calls >= EBPFJIT_MAX_TAIL_CALLS) {
            /* bpf_tail_call must refuse these itself; never loop or jump to nowhere. */
            st->status = EBPFJIT_OK;
            ebpfjit_fault(st, EBPFJIT_ERR_HELPER, st->fault_pc, 0, 0);
            status = EBPFJIT_ERR_HELPER;
            break;
        }
        prog = st->tail_target;
        st->tail_target = NULL;
        st->tail_calls++;
        st->status = EBPFJIT_OK;
        st->fault_pc = -1;
        st->depth = 0;
        st->env = prog->env;
        set_running(st, prog, engine);
        status = run_once(prog, st, engine, r1, r2);
    }
    if (status != EBPFJIT_OK && st->status == EBPFJIT_OK)
        st->status = status;   /* an engine returned a status without recording it */
    if (st->nlocks) {
        /* Never leave a bpf_spin_lock held past the run (the next taker would spin forever);
         * ending OK with one held is a fault, as the kernel verifier rejects it. */
        uint64_t first = st->locks[0];
        uint32_t i, n = st->nlocks < EBPFJIT_MAX_HELD_LOCKS ? st->nlocks : EBPFJIT_MAX_HELD_LOCKS;
        for (i = 0; i < n; i++)
            __atomic_store_n((uint32_t *)(uintptr_t)st->locks[i], 0, __ATOMIC_RELEASE);
        st->nlocks = 0;
        if (st->status == EBPFJIT_OK) {
            ebpfjit_fault(st, EBPFJIT_ERR_HELPER, -1, first, 4);
            st->fault_info = 93 | (uint64_t)EBPFJIT_LOCK_REASON_HELD_AT_EXIT << 32;
        }
    }
    if (st->status == EBPFJIT_OK)
        st->depth = 0;   /* on a fault the frames stay described, for the error message */
    return st->status;
}

void ebpfjit_loop_begin(struct ebpfjit_loop *lp, struct ebpfjit_prog *prog,
                        struct ebpfjit_state *st, int engine)
{
    lp->prog = prog;
    lp->st = st;
    lp->engine = engine;
    lp->clean = 0;
    lp->saved = current_state;      /* a Python helper may start a nested run */
    ebpfjit_epoch_enter();          /* first: what the run reaches stays alive until it ends */
    ebpfjit_vcpu_enter(prog->env, &lp->hold);   /* tail calls may switch prog (and env) */
    st->cpu = held_cpu;
    current_state = st;
}

void ebpfjit_loop_end(struct ebpfjit_loop *lp)
{
    ebpfjit_vcpu_leave(lp->prog->env, &lp->hold);
    current_state = lp->saved;
    ebpfjit_epoch_exit();
}

/* Did the run end OK with nothing left for run_finish to do? An engine's status and the state's
 * agree by convention, but the state's is the one reported, so both are checked. */
static inline int ended_ok(const struct ebpfjit_state *st, int32_t status)
{
    return status == EBPFJIT_OK && st->status == EBPFJIT_OK && !st->nlocks;
}

/* One run inside a loop: the state is reset in full only when the previous run did not end OK
 * on the fast path (*clean). A run that ends OK there changes, of what run_reset sets, only r0
 * (written by every OK exit) and depth: status OK and no lock held mean no fault was recorded
 * (faults set status, first fault wins), no tail call happened (it ends the run with
 * EBPFJIT_TAIL_CALL, so tail_calls, tail_target, env and prog are untouched) and nothing is
 * left to release. r0 is still cleared first, as a failing run must not show a stale one.
 * The flag is passed apart from the loop so that, inlined, it stays in a register. */
static inline int32_t run_next(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                               int32_t *clean, uint64_t r1, uint64_t r2)
{
    int32_t status;

    if (__builtin_expect(*clean, 1))
        st->r0 = 0;
    else
        run_reset(prog, st, engine);
    status = run_once(prog, st, engine, r1, r2);
    if (__builtin_expect(ended_ok(st, status), 1)) {
        st->depth = 0;
        *clean = 1;
        return EBPFJIT_OK;
    }
    *clean = 0;
    return run_finish(prog, st, engine, r1, r2, status);
}

int32_t ebpfjit_loop_run(struct ebpfjit_loop *lp, uint64_t r1, uint64_t r2)
{
    return run_next(lp->prog, lp->st, lp->engine, &lp->clean, r1, r2);
}

int32_t ebpfjit_run(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                    uint64_t r1, uint64_t r2)
{
    struct ebpfjit_loop lp;
    int32_t clean = 0, status;

    ebpfjit_loop_begin(&lp, prog, st, engine);
    status = run_next(prog, st, engine, &clean, r1, r2);
    ebpfjit_loop_end(&lp);
    return status;
}

/* Copies up to this size go on the C stack, so nested runs (from Python helpers) stay apart. */
#define STACK_COPY_MAX 4096

/* The states live on the heap (one block per thread, freed at thread exit): in static TLS
 * they would not fit the space glibc reserves for initial-exec variables of a dlopen'ed library.
 * The block also holds the thread's output buffer (ebpfjit_thread_out). */
struct thread_block {
    struct ebpfjit_state states[EBPFJIT_MAX_PY_NESTING + 1];
    struct ebpfjit_out out;
    uint64_t out_cap;
};
static __thread struct thread_block *py_block EBPFJIT_TLS_IE;
static __thread uint32_t py_level EBPFJIT_TLS_IE;
static pthread_key_t py_states_key;
static pthread_once_t py_states_once = PTHREAD_ONCE_INIT;

static void thread_block_free(void *p)
{
    struct thread_block *b = p;
    free(b->out.data);
    free(b);
}

static void py_states_key_init(void)
{
    pthread_key_create(&py_states_key, thread_block_free);
}

static struct thread_block *thread_block(void)
{
    if (__builtin_expect(!py_block, 0)) {
        pthread_once(&py_states_once, py_states_key_init);
        py_block = calloc(1, sizeof(struct thread_block));
        if (py_block)
            pthread_setspecific(py_states_key, py_block);
    }
    return py_block;
}

static struct ebpfjit_state *thread_states(void)
{
    struct thread_block *b = thread_block();
    return b ? b->states : NULL;
}

struct ebpfjit_state *ebpfjit_thread_state(void)
{
    struct ebpfjit_state *states = thread_states();
    return states && py_level < EBPFJIT_MAX_PY_NESTING ? &states[py_level] : NULL;
}

struct ebpfjit_state *ebpfjit_enter(void)
{
    struct ebpfjit_state *st = ebpfjit_thread_state();
    if (st)
        py_level++;
    return st;
}

void ebpfjit_leave(void)
{
    py_level--;
}

const struct ebpfjit_out *ebpfjit_thread_out(void)
{
    struct thread_block *b = thread_block();
    return b ? &b->out : NULL;
}

int ebpfjit_thread_out_set(const void *data, uint64_t len)
{
    struct thread_block *b = thread_block();

    if (!b)
        return -1;
    if (len > b->out_cap) {
        uint8_t *p = realloc(b->out.data, len);
        if (!p)
            return -1;
        b->out.data = p;
        b->out_cap = len;
    }
    if (len)
        memcpy(b->out.data, data, len);
    b->out.len = len;
    return 0;
}

/* Runs with mem as the (writable) mem region; `buf` is what the program gets. */
static uint64_t run_region(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                           uint64_t budget, uint8_t *buf, uint64_t len, int which, uint64_t r1,
                           uint64_t r2)
{
    int32_t status;

    if (!len)
        buf = NULL;
    ebpfjit_budget_set(st, budget);
    st->mem_base = (uint64_t)(uintptr_t)buf;
    st->mem_len = len;
    st->mem_writable = 1;
    if (!(which & 1))
        r1 = (uint64_t)(uintptr_t)buf;
    if (!(which & 2))
        r2 = len;
    py_level++;
    status = ebpfjit_run(prog, st, engine, r1, r2);
    py_level--;
    /* mem_base/mem_len stay (the buffer may be gone) only so Python can describe a fault. */
    return status == EBPFJIT_OK ? st->r0 : EBPFJIT_RUN_FAILED;
}

uint64_t ebpfjit_nesting_failed(void)
{
    /* Too deep: report on the spare state one past the last level (out of memory: a shared
     * spare; Python then sees EBPFJIT_ERR_HELPER either way). */
    static struct ebpfjit_state oom_spare;
    struct ebpfjit_state *states = thread_states();
    struct ebpfjit_state *st = states ? &states[EBPFJIT_MAX_PY_NESTING] : &oom_spare;
    memset(st, 0, sizeof(*st));
    st->status = EBPFJIT_ERR_HELPER;
    st->fault_pc = -1;
    return EBPFJIT_RUN_FAILED;
}

static uint64_t run_py(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                       uint64_t budget, const char *mem, uint64_t len, int copy, int which,
                       uint64_t r1, uint64_t r2)
{
    uint8_t local[STACK_COPY_MAX] __attribute__((aligned(16)));
    uint8_t *buf = (uint8_t *)mem, *heap = NULL;
    uint64_t r0;

    if (!st)
        return ebpfjit_nesting_failed();
    if (len && copy) {
        if (len <= STACK_COPY_MAX) {
            buf = local;
        } else {
            heap = malloc(len);
            if (!heap) {
                ebpfjit_state_reset(st, prog->env, budget);
                st->status = EBPFJIT_ERR_HELPER;
                return EBPFJIT_RUN_FAILED;
            }
            buf = heap;
        }
        memcpy(buf, mem, len);
    }
    r0 = run_region(prog, st, engine, budget, buf, len, which, r1, r2);
    free(heap);
    return r0;
}

uint64_t ebpfjit_run_py(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                        uint64_t budget, char *mem, uint64_t len, int copy)
{
    return run_py(prog, st, engine, budget, mem, len, copy, 0, 0, 0);
}

uint64_t ebpfjit_run_py_regs(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                             uint64_t budget, char *mem, uint64_t len, int copy, int which,
                             uint64_t r1, uint64_t r2)
{
    return run_py(prog, st, engine, budget, mem, len, copy, which, r1, r2);
}

uint64_t ebpfjit_run_copy(const struct ebpfjit_runner *rn, const char *mem, uint64_t len)
{
    return run_py(rn->prog, ebpfjit_thread_state(), rn->engine, rn->budget, mem, len, 1, 0, 0, 0);
}

uint64_t ebpfjit_run_inplace(const struct ebpfjit_runner *rn, char *mem, uint64_t len)
{
    struct ebpfjit_state *st = ebpfjit_thread_state();
    if (!st)
        return ebpfjit_nesting_failed();
    return run_region(rn->prog, st, rn->engine, rn->budget, (uint8_t *)mem, len, 0, 0, 0);
}

uint64_t ebpfjit_run_empty(const struct ebpfjit_runner *rn)
{
    struct ebpfjit_state *st = ebpfjit_thread_state();
    if (!st)
        return ebpfjit_nesting_failed();
    return run_region(rn->prog, st, rn->engine, rn->budget, NULL, 0, 0, 0, 0);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A direct call of run_repeat_code that did not end OK at once: ended as a full run would end
 * it (a tail call is continued, nothing is redone). If more calls follow, the state is then
 * reset for them, as a tail call changed what they rely on (prog, env, tail_calls). */
static __attribute__((noinline, cold)) int32_t code_finish(struct ebpfjit_loop *lp, uint64_t r1,
                                                          uint64_t r2, int32_t status, int more)
{
    status = run_finish(lp->prog, lp->st, EBPFJIT_ENGINE_JIT, r1, r2, status);
    if (status == EBPFJIT_OK && more)
        run_reset(lp->prog, lp->st, EBPFJIT_ENGINE_JIT);
    return status;
}

/* The benchmark loops below are functions of their own, aligned so that where their code falls
 * in the 64-byte instruction fetch windows depends on nothing else in this file: a loop that
 * straddled two windows measured ~0.3 ns more per run (an empty program takes 1.5 ns). The
 * direct-call loop is small enough to start at a window and fit in it: ALIGN_TIMED_LOOP, placed
 * just before it (the padding runs once). */
#define TIMED_LOOP __attribute__((noinline, aligned(64)))
#define ALIGN_TIMED_LOOP() __asm__ volatile(".p2align 6")

/* `repeat` full runs (ebpfjit_run_repeat), all counted but a failing last one; returns the
 * status of the last. */
static TIMED_LOOP int32_t run_repeat_full(struct ebpfjit_loop *lp, uint64_t budget, uint64_t r1,
                                          uint64_t r2, uint64_t repeat, double *ns_per_run)
{
    struct ebpfjit_prog *prog = lp->prog;
    struct ebpfjit_state *st = lp->st;
    int engine = lp->engine;
    int32_t clean = 0, status = EBPFJIT_OK;
    uint64_t i, t0, t1;

    t0 = now_ns();
    for (i = 0; i < repeat; i++) {
        ebpfjit_budget_set(st, budget);
        status = run_next(prog, st, engine, &clean, r1, r2);
        if (status != EBPFJIT_OK)
            break;
    }
    t1 = now_ns();
    if (i)
        *ns_per_run = (double)(t1 - t0) / (double)i;
    return status;
}

/* The timed part of run_repeat_code: up to n direct calls, stopping after the first that does
 * not return EBPFJIT_OK (its status in *status). Returns the number of calls made. */
static TIMED_LOOP uint64_t code_calls(ebpfjit_jit_fn fn, struct ebpfjit_state *st,
                                      uint64_t budget, uint64_t r1, uint64_t r2, uint64_t n,
                                      int32_t *status)
{
    uint64_t left;
    int32_t s = EBPFJIT_OK;

    /* Counting down keeps every value of the loop in a callee-saved register. */
    ALIGN_TIMED_LOOP();
    for (left = n; left; left--) {
        ebpfjit_budget_set(st, budget);
        s = fn(st, r1, r2);
        if (__builtin_expect(s != EBPFJIT_OK, 0)) {
            left--;
            break;
        }
    }
    *status = s;
    return n - left;
}

/* EBPFJIT_ENGINE_JIT_CODE (benchmarks): the machine code alone. The first run is a full one,
 * which prepares the state; the rest call the compiled function directly, resetting only the
 * budget and checking only the status it returns, as a peer JIT's benchmark calls its
 * function pointer. A call returning another status (fault, tail call) is ended as a full run
 * would end it: a tail call is continued, nothing is redone; only r0, which the direct calls
 * do not clear, may then still be the previous run's (nothing reads the r0 of a failed run).
 * What a call may leave without saying so in its status (a spin lock held at exit) is dealt
 * with after the loop: such a lock stays held across the later calls (one that takes it again
 * faults, as a lock this thread holds) and is released, with its fault, at the end. */
static int32_t run_repeat_code(struct ebpfjit_loop *lp, uint64_t budget, uint64_t r1,
                               uint64_t r2, uint64_t repeat, double *ns_per_run)
{
    struct ebpfjit_state *st = lp->st;
    ebpfjit_jit_fn fn = lp->prog->jit_fn;
    uint64_t todo, done = 0, t0, t1;
    int32_t status;

    ebpfjit_budget_set(st, budget);
    if (!fn) {
        run_reset(lp->prog, st, EBPFJIT_ENGINE_JIT);
        ebpfjit_fault(st, EBPFJIT_ERR_BAD_INSN, 0, 0, 0);
        st->fault_info = EBPFJIT_ENGINE_JIT_CODE;
        return EBPFJIT_ERR_BAD_INSN;
    }
    status = ebpfjit_loop_run(lp, r1, r2);
    todo = status == EBPFJIT_OK && repeat > 1 ? repeat - 1 : 0;
    t0 = now_ns();
    while (done < todo) {
        done += code_calls(fn, st, budget, r1, r2, todo - done, &status);
        if (status != EBPFJIT_OK) {
            status = code_finish(lp, r1, r2, status, done < todo);
            if (status != EBPFJIT_OK)
                break;
        }
    }
    t1 = now_ns();
    if (done)
        *ns_per_run = (double)(t1 - t0) / (double)done;
    if (status == EBPFJIT_OK && !ended_ok(st, status))
        return run_finish(lp->prog, st, EBPFJIT_ENGINE_JIT, r1, r2, status);
    if (status == EBPFJIT_OK)
        st->depth = 0;      /* as a full run leaves it (the direct calls do not reset it) */
    return status;
}

uint64_t ebpfjit_run_repeat(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                            uint64_t budget, char *mem, uint64_t len, int copy, uint64_t repeat,
                            double *ns_per_run)
{
    struct ebpfjit_loop lp;
    uint8_t *buf = (uint8_t *)mem, *heap = NULL;
    uint64_t r0, r1;
    int32_t status;

    *ns_per_run = 0;
    if (!st)
        return ebpfjit_nesting_failed();
    if (len && copy) {
        heap = malloc(len);
        if (!heap) {
            ebpfjit_state_reset(st, prog->env, budget);
            st->status = EBPFJIT_ERR_HELPER;
            return EBPFJIT_RUN_FAILED;
        }
        memcpy(heap, mem, len);
        buf = heap;
    }
    if (!len)
        buf = NULL;
    r1 = (uint64_t)(uintptr_t)buf;
    st->mem_base = r1;
    st->mem_len = len;
    st->mem_writable = 1;
    py_level++;
    /* One vCPU and one current run for the whole loop, as the kernel's test_run holds its CPU:
     * each run then costs only what run_next does. */
    if (engine == EBPFJIT_ENGINE_JIT_CODE) {
        ebpfjit_loop_begin(&lp, prog, st, EBPFJIT_ENGINE_JIT);
        status = run_repeat_code(&lp, budget, r1, len, repeat, ns_per_run);
    } else {
        ebpfjit_loop_begin(&lp, prog, st, engine);
        status = run_repeat_full(&lp, budget, r1, len, repeat, ns_per_run);
    }
    r0 = st->r0;    /* the last run's: if it failed, EBPFJIT_RUN_FAILED is returned instead */
    ebpfjit_loop_end(&lp);
    py_level--;
    free(heap);
    return status == EBPFJIT_OK ? r0 : EBPFJIT_RUN_FAILED;
}
