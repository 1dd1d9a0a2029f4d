/* runtime_api.h: runtime.c exports beyond the core ABI of ebpfjit_rt.h (owned by the runtime).
 *
 * Declared here (not in ebpfjit_rt.h) because they serve the Python glue and the JIT's calls into
 * C; its cffi section is declared to cffi as written (csrc/cdefgen.py generates the cdef).
 *
 * Conventions both engines follow, so that they fail identically:
 *  - Budget (instructions): code between two charge points is a forward-only segment (it
 *    starts at a function entry, a back-edge target or a local call's return point). A taken
 *    backward jump (target pc <= pc), a local call and an exit each charge their segment's
 *    static worst case c = charge[pc] (the longest forward path from a segment start to pc,
 *    instructions counted, pc included; interp.c segment_step, lower/budget.py) BEFORE
 *    anything else the instruction does (so a call that would also exceed the depth reports
 *    BUDGET): `if (c >= budget) { budget = ebpfjit_budget_refill(st, budget, c, pc); if
 *    (!budget) fail; } else budget -= c`. So every executed instruction is paid for, and
 *    a run with budget B executes fewer than B instructions (+ at most one segment per tail
 *    call). The refill is also where the wall-clock deadline (ebpfjit_set_deadline) is read.
 *  - Local call: then `if (depth == EBPFJIT_MAX_FRAMES) fault(EBPFJIT_ERR_CALL_DEPTH, pc)`.
 *  - Helper faults: helpers do not know the pc, they call ebpfjit_fault(st, ..., pc = -1, ...).
 *    After every helper call (and callx) an engine does
 *        if (st->status) return ebpfjit_helper_status(st, pc);
 *    which fills in the call's pc and returns the status (EBPFJIT_TAIL_CALL included), and it
 *    reloads st->mem_base/mem_len/mem_writable and st->budget (a helper may change them).
 *  - Fall-off: fault_pc is the pc of the function's last instruction (the one that ran past).
 *  - Jump / call target outside the program or into an lddw's second slot: EBPFJIT_ERR_BAD_INSN
 *    at the jump's pc when it executes (decode validation normally rejects these).
 *  - lddw src=1/2 with imm >= env->nmaps or a NULL map (src=2: NULL values):
 *    EBPFJIT_ERR_BAD_INSN, fault_info = the map index; src 3..6: EBPFJIT_ERR_BAD_INSN.
 *  - Stack frames are zeroed on entry (deterministic results without a verifier).
 *  - Registers at a local call: callee entry r0 = r6..r9 = 0 (r1-r5 the arguments); after the
 *    return the caller's r1-r5 = 0 (r6-r9 restored).
 *  - Callbacks (bpf_loop, for_each_map_elem): ebpfjit_invoke_callback spends one unit of budget
 *    and takes a frame (CALL_DEPTH past EBPFJIT_MAX_FRAMES), then runs the target on the
 *    engine running st->prog (JIT: prog->jit_callback, else the interpreter) as a function
 *    entry. A fault inside keeps the callback's pc; a tail call inside is EBPFJIT_ERR_HELPER;
 *    a failing legacy packet load inside ends just the callback, with r0 = 0.
 */
#ifndef EBPFJIT_RUNTIME_API_H
#define EBPFJIT_RUNTIME_API_H

#include "ebpfjit_rt.h"
/* cffi:begin */

/* bpf_spin_lock (id 93) / bpf_spin_unlock (id 94) faults, and those of a BPF_F_LOCK
 * bpf_map_update_elem (id 2: SELF, NO_OWNER, TIMEOUT), are EBPFJIT_ERR_HELPER with
 * fault_addr = the lock and fault_info = id | reason << 32 (helpers_maps.c, ebpfjit_run):
 * a run holds at most EBPFJIT_MAX_HELD_LOCKS locks (st->locks); ebpfjit_run releases every lock
 * still held when the run ends, and a run that ends OK while holding one faults instead
 * (fault_pc -1, id 93, reason HELD_AT_EXIT). Waiting for a lock held by another live thread is
 * fine; a lock this thread already holds, or a lock word no live thread owns, is a fault. */
#define EBPFJIT_LOCK_REASON_SELF 1         /* already held by this thread: would deadlock */
#define EBPFJIT_LOCK_REASON_HELD_AT_EXIT 2 /* run ended holding the lock (released now) */
#define EBPFJIT_LOCK_REASON_NOT_HELD 3     /* unlock of a lock this run does not hold */
#define EBPFJIT_LOCK_REASON_TOO_MANY 4     /* more than EBPFJIT_MAX_HELD_LOCKS held */
#define EBPFJIT_LOCK_REASON_NO_OWNER 5     /* lock word names no live thread (overwritten) */
#define EBPFJIT_LOCK_REASON_NOT_A_LOCK 6   /* not a map value's BTF bpf_spin_lock field */
#define EBPFJIT_LOCK_REASON_TIMEOUT 7      /* held by a live thread for longer than the limit */
#define EBPFJIT_LOCK_REASON_CALL 8         /* a callback invoked while holding a lock */
#define EBPFJIT_LOCK_REASON_CALLBACK_EXIT 9 /* a callback returned holding a lock */

/* Both engines, at every exit (of any function: the program, a callee, a callback) and every
 * local call or callback invocation: if (st->nlocks) fault through this, as the kernel verifier
 * rejects "bpf_spin_unlock is missing" and "function calls are not allowed while holding a
 * lock". Records EBPFJIT_ERR_HELPER at `pc` (fault_addr = the first lock, fault_info = 93 |
 * reason << 32: EBPFJIT_LOCK_REASON_HELD_AT_EXIT or _CALL) and returns st->status; the run's
 * end releases the locks. */
int32_t ebpfjit_lock_held(struct ebpfjit_state *st, int32_t pc, uint32_t reason);

/* Returned by ebpfjit_run_py* when the run did not end with EBPFJIT_OK; the caller then checks
 * st->status (a successful run may legitimately return this value too). */
#define EBPFJIT_RUN_FAILED 0xebf0fa17ebf0fa17ULL

/* Legacy packet load (LD_ABS / LD_IND) on the mem region, for both engines.
 * `offset` is imm (LD_ABS) or src + imm (LD_IND) computed in 64 bits; as in the kernel only its
 * low 32 bits count, as a signed int. size is 1, 2 or 4. Returns the big-endian value
 * zero-extended. When [offset, offset+size) is not inside the mem region it sets *ok = 0 and
 * returns 0: the engine must then end the whole run with r0 = 0 and EBPFJIT_OK (kernel
 * behaviour, not a fault); otherwise *ok = 1. `pc` is accepted for future diagnostics. */
uint64_t ebpfjit_ld_packet(struct ebpfjit_state *st, uint64_t offset, uint32_t size, int32_t pc,
                           int *ok);

/* This thread's run deadline (CLOCK_MONOTONIC ns, 0: none), read when a budget chunk runs out
 * (EBPFJIT_ERR_TIMEOUT). Returns the previous one (a nested run restores it). */
uint64_t ebpfjit_set_deadline(uint64_t deadline_ns);
uint64_t ebpfjit_now_ns(void);

/* After a helper left st->status != 0: sets fault_pc = pc if the helper left it at -1 and
 * returns st->status. */
int32_t ebpfjit_helper_status(struct ebpfjit_state *st, int32_t pc);

/* Defined by cffi (the marker below makes it extern "Python+C" in the generated cdef): calls
 * the Python callable registered for `id` in `env`. */
/* cffi:extern "Python+C" */ uint64_t ebpfjit_py_helper(struct ebpfjit_env *env, uint32_t id, uint64_t r1, uint64_t r2,
                           uint64_t r3, uint64_t r4, uint64_t r5);

/* The C trampoline for helper id (each id has its own, so the 5-argument signature is kept and
 * the id is known), or NULL if id >= EBPFJIT_MAX_HELPERS. */
ebpfjit_helper_fn ebpfjit_py_trampoline(uint32_t id);

/* One run from Python: state reset (budget), mem region = [mem, mem+len) (writable); with
 * `copy` the program gets a private copy of mem. r1 = mem pointer (0 if len == 0), r2 = len.
 * Returns r0, or EBPFJIT_RUN_FAILED with st->status set. */
uint64_t ebpfjit_run_py(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                        uint64_t budget, char *mem, uint64_t len, int copy);
/* Same with r1 (which & 1) and/or r2 (which & 2) given explicitly. */
uint64_t ebpfjit_run_py_regs(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                             uint64_t budget, char *mem, uint64_t len, int copy, int which,
                             uint64_t r1, uint64_t r2);

/* Fast entry from Python: a runner is a (program, engine, budget) triple prepared once, and the
 * state is this thread's (see ebpfjit_thread_state). run_copy gives the program a private copy
 * of mem; run_inplace lets it modify mem; run_empty runs with r1 = r2 = 0 and no mem region.
 * Return r0, or EBPFJIT_RUN_FAILED with ebpfjit_thread_state()->status set. */
struct ebpfjit_runner {
    struct ebpfjit_prog *prog;
    uint64_t budget;
    int32_t engine;
    int32_t ctx;                    /* 0, or EBPFJIT_RUNNER_* (contexts.h) */
};
uint64_t ebpfjit_run_copy(const struct ebpfjit_runner *rn, const char *mem, uint64_t len);
uint64_t ebpfjit_run_inplace(const struct ebpfjit_runner *rn, char *mem, uint64_t len);
uint64_t ebpfjit_run_empty(const struct ebpfjit_runner *rn);

/* This thread's run state at the current nesting level: every Python entry point runs on the
 * state one level deeper while it runs, so a Python helper can start a nested run without
 * clobbering the outer one, and right after an entry point returns this is the state it used.
 * NULL when nesting exceeds EBPFJIT_MAX_PY_NESTING. */
#define EBPFJIT_MAX_PY_NESTING 16
struct ebpfjit_state *ebpfjit_thread_state(void);

/* For entry points outside runtime.c (contexts.c): ebpfjit_enter returns this thread's state at
 * the current level and moves one level deeper (NULL, level unchanged, when too deep: then
 * return ebpfjit_nesting_failed(), which records EBPFJIT_ERR_HELPER where Python looks);
 * ebpfjit_leave goes back. */
struct ebpfjit_state *ebpfjit_enter(void);
void ebpfjit_leave(void);
uint64_t ebpfjit_nesting_failed(void);

/* This thread's output buffer: an entry point leaves a result there that Python reads right
 * after the call returns (e.g. a packet whose length changed). _set copies len bytes in
 * (0, or -1 out of memory). Freed at thread exit. */
struct ebpfjit_out {
    uint8_t *data;
    uint64_t len;
};
const struct ebpfjit_out *ebpfjit_thread_out(void);
int ebpfjit_thread_out_set(const void *data, uint64_t len);

/* Benchmark loop: `repeat` runs over one buffer (a copy of mem made once if `copy`), timed with
 * CLOCK_MONOTONIC. Stops at the first failing run. Returns r0 of the last run (or
 * EBPFJIT_RUN_FAILED with st->status set) and the mean ns per run in *ns_per_run. */
uint64_t ebpfjit_run_repeat(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                            uint64_t budget, char *mem, uint64_t len, int copy, uint64_t repeat,
                            double *ns_per_run);

/* Virtual CPUs. A run occupies one of env->ncpus slots for its duration; a C loop over many runs
 * (test_run's repeat, a packet batch) occupies one for the whole loop, as the kernel's test_run
 * holds its CPU across `repeat`, and the runs inside reuse it. Nested runs on the thread reuse it
 * too. Pair every enter with a leave on the same env. */
struct ebpfjit_vcpu_hold {
    struct ebpfjit_env *prev_env;
    uint32_t prev_cpu;
    int own;
};
void ebpfjit_vcpu_enter(struct ebpfjit_env *env, struct ebpfjit_vcpu_hold *hold);
void ebpfjit_vcpu_leave(struct ebpfjit_env *env, const struct ebpfjit_vcpu_hold *hold);

/* Many runs of one program on one state (a test run's repeat, a packet batch, a benchmark):
 * ebpfjit_loop_begin takes the vCPU and makes `st` the thread's current run once for the whole
 * loop; each ebpfjit_loop_run is then exactly one ebpfjit_run (same results, faults and state
 * afterwards; the caller sets st->budget and the memory regions before it) without that
 * per-run set-up, and with the state reset in full only for the first run and after one that
 * did not end OK; ebpfjit_loop_end gives both back. Between begin and end nothing else may run on `st` (nested
 * runs from Python helpers use their own states). ebpfjit_run is begin + one run + end. */
struct ebpfjit_loop {
    struct ebpfjit_prog *prog;
    struct ebpfjit_state *st;
    struct ebpfjit_state *saved;    /* the thread's current run before the loop */
    struct ebpfjit_vcpu_hold hold;
    int32_t engine;
    int32_t clean;                  /* st is as the previous run, which ended OK, left it */
};
void ebpfjit_loop_begin(struct ebpfjit_loop *lp, struct ebpfjit_prog *prog,
                        struct ebpfjit_state *st, int engine);
int32_t ebpfjit_loop_run(struct ebpfjit_loop *lp, uint64_t r1, uint64_t r2);
void ebpfjit_loop_end(struct ebpfjit_loop *lp);

/* cffi:end */
#endif
