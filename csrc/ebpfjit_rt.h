/* ebpfjit_rt.h: the C ABI shared by the interpreter, the JIT-compiled code, maps and helpers.
 *
 * Both engines run a program against one `struct ebpfjit_state` and report faults the same way
 * (status + pc + addr + size in the state), so Python formats one error for both. Anything the
 * generated code needs at run time (helpers, maps, memory regions) is reached through the state,
 * never baked into machine code as an address: compiled code is therefore process-independent
 * and can be cached on disk.
 *
 * Everything inside the cffi section markers below is declared to cffi as written
 * (csrc/cdefgen.py generates the cdef from it at build time): one declaration, in C.
 */
#ifndef EBPFJIT_RT_H
#define EBPFJIT_RT_H

#include <stddef.h>
#include <stdint.h>
/* cffi:begin */

#define EBPFJIT_STACK_SIZE 512
#define EBPFJIT_MAX_FRAMES 8          /* main program + 7 nested bpf-to-bpf calls (kernel) */
/* Unregistered bytes each engine keeps on both sides of every frame (interp.c; the JIT's frame
 * alloca, lower/context.py FRAME_GUARD): a stack pointer off by less than this from its frame
 * faults, whichever frame the engine's layout happens to place next to it. */
#define EBPFJIT_FRAME_GUARD 1024
#define EBPFJIT_MAX_HELPERS 512
#define EBPFJIT_MAX_RUN_REGIONS 8     /* per-run extra regions: ctx struct, packet, metadata */
#define EBPFJIT_MAX_ENV_REGIONS 256   /* per-object regions: map value arenas, ringbuf data */
#define EBPFJIT_MAX_TAIL_CALLS 33
#define EBPFJIT_MAX_VCPUS 256         /* per-CPU slots an env can have (see ebpfjit_env.ncpus) */     /* MAX_TAIL_CALL_CNT */
/* Instruction budget of a run (every executed instruction counts; runtime_api.h). 10^9 is
 * ~0.5 s of JIT code, a few seconds interpreted. */
#define EBPFJIT_DEFAULT_BUDGET 1000000000ULL
/* st->budget holds at most this much; the rest waits in st->budget_rest, so the runtime gets
 * control (the wall-clock timeout is checked then) every 2^20 instructions at least: ~1 ms of
 * JIT code, a few ms interpreted. */
#define EBPFJIT_BUDGET_CHUNK (1ULL << 20)
/* Largest program (instructions, lddw counting 2 slots), BPF_COMPLEXITY_LIMIT_INSNS. */
#define EBPFJIT_MAX_INSNS 1000000
#define EBPFJIT_MAX_HELD_LOCKS 4      /* bpf_spin_locks one run may hold at once */

/* Status codes returned by every engine entry point. */
enum ebpfjit_status {
    EBPFJIT_OK = 0,
    EBPFJIT_ERR_OOB_LOAD = 1,       /* fault_addr/fault_size: the access */
    EBPFJIT_ERR_OOB_STORE = 2,
    EBPFJIT_ERR_UNKNOWN_HELPER = 3, /* fault_info: helper id */
    EBPFJIT_ERR_CALL_DEPTH = 4,     /* more than EBPFJIT_MAX_FRAMES frames */
    EBPFJIT_ERR_BUDGET = 5,         /* instruction budget exhausted */
    EBPFJIT_ERR_HELPER = 6,         /* a helper failed (bad argument, Python exception) */
    EBPFJIT_ERR_FALL_OFF = 7,       /* control ran past the end of a function */
    EBPFJIT_ERR_BAD_INSN = 8,       /* instruction an engine cannot execute (e.g. kfunc call) */
    EBPFJIT_ERR_TIMEOUT = 9,        /* the run's wall-clock timeout passed */
    EBPFJIT_TAIL_CALL = 100,        /* internal: bpf_tail_call() chose st->tail_target */
};

/* Every helper has this signature; helpers that need the run reach it via ebpfjit_current(). */
typedef uint64_t (*ebpfjit_helper_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

struct ebpfjit_state;

/* A compiled program: `int32_t fn(st, r1, r2)` returns a status; r0 is left in st->r0. */
typedef int32_t (*ebpfjit_jit_fn)(struct ebpfjit_state *st, uint64_t r1, uint64_t r2);
/* The JIT's callback entry (`ebpf_callback` in the object): runs the function starting at slot
 * `pc` (a callback target) in frame st->depth - 1 and returns its r0; a fault is left in
 * st->status. Called only by ebpfjit_invoke_callback, which validated pc and counted the frame. */
typedef uint64_t (*ebpfjit_jit_callback_fn)(struct ebpfjit_state *st, uint64_t pc, uint64_t r1,
                                            uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
#define EBPFJIT_HAVE_CALLBACKS 1
/* `lddw rX, func` (src=4, imm = slot offset: target = pc + 1 + imm) yields
 * EBPFJIT_CALLBACK_TAG | the target's absolute slot: a constant, so jitted code stays
 * process-independent. Callable targets are the functions other than pc 0 (targets of local
 * calls and of lddw src=4); ebpfjit_invoke_callback (helpers_misc.c) runs them. */
#define EBPFJIT_CALLBACK_TAG 0xcb0fca11b0000000ULL
#define EBPFJIT_CALLBACK_PC_MASK 0x0fffffffULL

/* A range of memory a program may touch. */
struct ebpfjit_region {
    uint64_t base;
    uint64_t len;
    uint64_t writable;
};

/* Every map object begins with this header (maps.c extends it). `lddw rX, map` (src=1) yields
 * the map pointer itself; `lddw rX, map_value + off` (src=2) yields `values + off`, where
 * `values` is the first element of an array-like map (global data: the section's bytes). */
struct ebpfjit_map_base {
    uint32_t type;                  /* enum bpf_map_type */
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t flags;
    uint32_t index;                 /* position in env->maps */
    uint8_t *values;                /* array-like maps: value i at values + i * round_up(value_size, 8) */
};

/* Per object (shared by its programs and threads). Runs read `regions` without a lock; it
 * changes only as ebpfjit_env_add_region / ebpfjit_env_remove_region describe. */
struct ebpfjit_env {
    ebpfjit_helper_fn helpers[EBPFJIT_MAX_HELPERS];
    void **maps;                    /* lddw src=1/2 imm indexes this (struct ebpfjit_map *) */
    uint32_t nmaps;
    uint32_t nregions;
    struct ebpfjit_region regions[EBPFJIT_MAX_ENV_REGIONS];
    void *user;                     /* owner's handle (Python object for trace output, ...) */
    /* Virtual CPUs: a run occupies one of `ncpus` slots for its whole duration, as a kernel
     * program owns its CPU, so per-CPU map values are never shared by concurrent runs. */
    uint32_t ncpus;
    uint8_t vcpu_busy[EBPFJIT_MAX_VCPUS];
    /* Lifetime: the creator's reference plus one per map attached (maps unregister their
     * regions when freed, so the env must outlive them). Writers only (runtime.c): */
    uint32_t refs;
    uint64_t region_dead[EBPFJIT_MAX_ENV_REGIONS];  /* emptied entry: its epoch ticket, else 0 */
};

/* One program as the runner sees it. The interpreter reads `code`; the JIT fills `jit_fn`. */
struct ebpfjit_prog {
    const uint8_t *code;            /* raw bytecode, nslots * 8 bytes (interpreter predecodes) */
    uint32_t nslots;
    uint32_t prog_type;             /* enum bpf_prog_type */
    void *interp;                   /* interpreter's predecoded form (owned by interp.c) */
    ebpfjit_jit_fn jit_fn;
    struct ebpfjit_env *env;
    ebpfjit_jit_callback_fn jit_callback;   /* with jit_fn; NULL: callbacks run interpreted */
};

/* Per run (per thread). The runner resets the result fields at every run. */
struct ebpfjit_state {
    /* results */
    uint64_t r0;
    int32_t status;
    int32_t fault_pc;
    uint64_t fault_addr;
    uint64_t fault_size;
    uint64_t fault_info;
    /* limits */
    uint64_t budget;                /* instructions left in this chunk (see budget_rest) */
    uint32_t depth;                 /* frames in use (1 while in the entry function) */
    uint32_t tail_calls;
    /* memory the program may touch */
    uint64_t mem_base;              /* the hot region, checked inline by both engines */
    uint64_t mem_len;
    uint64_t mem_writable;
    uint64_t frame_lo[EBPFJIT_MAX_FRAMES];  /* start of each registered 512-byte frame, or 0 */
    uint32_t nregions;
    uint32_t cpu;                   /* per-CPU map slot of this run */
    struct ebpfjit_region regions[EBPFJIT_MAX_RUN_REGIONS];
    struct ebpfjit_env *env;
    /* tail calls and contexts */
    struct ebpfjit_prog *tail_target;
    void *run_ctx;                  /* program-type context (xdp_buff, sk_buff model), or NULL */
    uint64_t user;                  /* free for the embedding application */
    /* what is running now (set by ebpfjit_run, follows tail calls): for callbacks */
    struct ebpfjit_prog *prog;
    int32_t engine;                 /* EBPFJIT_ENGINE_* actually executing prog */
    /* bpf_spin_locks this run holds (helpers_maps.c); ebpfjit_run releases them at the end */
    uint32_t nlocks;
    uint64_t locks[EBPFJIT_MAX_HELD_LOCKS];
    /* the run's mem and ctx regions when it faulted (ebpfjit_fault): the test-run models clear
     * them after the run, fault messages still name offsets into them */
    uint64_t fault_mem_base, fault_mem_len, fault_ctx_base, fault_ctx_len;
    uint64_t fault_frame_lo[EBPFJIT_MAX_FRAMES];
    uint32_t fault_depth;
    uint32_t lock_depth[EBPFJIT_MAX_HELD_LOCKS];   /* frame (st->depth) that took each lock */
    uint64_t budget_rest;           /* instructions of the budget beyond st->budget */
};

/* --- core runtime (runtime.c) --- */

/* The state of the run executing on this thread (for helpers). */
struct ebpfjit_state *ebpfjit_current(void);
void ebpfjit_set_current(struct ebpfjit_state *st);

/* Records a fault in `st` (first fault wins) and returns `status`. */
int32_t ebpfjit_fault(struct ebpfjit_state *st, int32_t status, int32_t pc, uint64_t addr,
                      uint64_t size);

/* Slow path of the bounds check shared by both engines: is [addr, addr+size) entirely inside
 * one registered frame, the mem region, a run region or an env region (writable if `write`)? */
int ebpfjit_access_ok(const struct ebpfjit_state *st, uint64_t addr, uint64_t size, int write);

/* Helper call through a run-time id (callx). Sets st->status on an unknown id. */
uint64_t ebpfjit_call_helper(struct ebpfjit_state *st, uint64_t id, uint64_t r1, uint64_t r2,
                             uint64_t r3, uint64_t r4, uint64_t r5);

struct ebpfjit_env *ebpfjit_env_new(void);
void ebpfjit_env_free(struct ebpfjit_env *env);
/* 0, or -1 when all EBPFJIT_MAX_ENV_REGIONS entries are in use (or emptied too recently: an
 * entry is reused only after a grace period, see epoch.h). len 0 adds nothing. */
int ebpfjit_env_add_region(struct ebpfjit_env *env, uint64_t base, uint64_t len, int writable);
/* Same, but nothing is added if [base, base+len) is already registered (maps). */
int ebpfjit_env_add_region_once(struct ebpfjit_env *env, uint64_t base, uint64_t len,
                                int writable);
/* Unregisters every entry for exactly [base, base+len): runs starting from now on cannot reach
 * it; the memory may be freed after a grace period (ebpfjit_defer). Returns entries removed. */
int ebpfjit_env_remove_region(struct ebpfjit_env *env, uint64_t base, uint64_t len);
/* An env is freed when its last reference goes (ebpfjit_env_free drops the creator's). */
void ebpfjit_env_hold(struct ebpfjit_env *env);
void ebpfjit_env_release(struct ebpfjit_env *env);
/* Per-CPU slots (virtual CPUs) of an env: 1..EBPFJIT_MAX_VCPUS; -1 otherwise. */
int ebpfjit_env_set_ncpus(struct ebpfjit_env *env, uint32_t ncpus);

/* Gives a run `budget` instructions: at most EBPFJIT_BUDGET_CHUNK in st->budget, the rest in
 * st->budget_rest. Every place that starts a run's budget goes through this. */
static inline void ebpfjit_budget_set(struct ebpfjit_state *st, uint64_t budget)
{
    uint64_t chunk = budget < EBPFJIT_BUDGET_CHUNK ? budget : EBPFJIT_BUDGET_CHUNK;
    st->budget = chunk;
    st->budget_rest = budget - chunk;
}

/* The slow path of a charge of `charge` instructions when `left` (the engine's st->budget)
 * does not cover it: takes the next chunk from st->budget_rest and checks the wall-clock
 * deadline. Returns the new st->budget (>= 1), or 0 with the fault recorded at `pc`
 * (EBPFJIT_ERR_BUDGET: the whole budget is spent; EBPFJIT_ERR_TIMEOUT). */
uint64_t ebpfjit_budget_refill(struct ebpfjit_state *st, uint64_t left, uint64_t charge,
                               int32_t pc);
/* For helpers that do work in proportion to an argument: charge `n` instructions to st->budget
 * (0), or record the fault with pc -1 and return -1. */
int ebpfjit_budget_charge(struct ebpfjit_state *st, uint64_t n);

/* Prepare `st` for a run (results cleared, budget, depth 0, env); regions are kept. */
void ebpfjit_state_reset(struct ebpfjit_state *st, struct ebpfjit_env *env, uint64_t budget);

/* Engines: 0 = interpreter, 1 = JIT (prog->jit_fn). Follows tail calls. Returns status. */
#define EBPFJIT_ENGINE_INTERP 0
#define EBPFJIT_ENGINE_JIT 1
#define EBPFJIT_ENGINE_JIT_CODE 2     /* ebpfjit_run_repeat only: time the machine code alone */
int32_t ebpfjit_run(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                    uint64_t r1, uint64_t r2);

/* --- interpreter (interp.c) --- */
int ebpfjit_interp_prepare(struct ebpfjit_prog *prog);    /* 0 on success */
void ebpfjit_interp_release(struct ebpfjit_prog *prog);
int32_t ebpfjit_interp_exec(struct ebpfjit_prog *prog, struct ebpfjit_state *st,
                            uint64_t r1, uint64_t r2);
/* Is slot `pc` a callable callback target (a function start other than pc 0)? */
int ebpfjit_interp_is_callback(const struct ebpfjit_prog *prog, uint32_t pc);
/* Runs the function at slot `pc` with r1..r5 in frame st->depth - 1 (the caller counted it);
 * returns its r0 (0 with st->status set on a fault). */
uint64_t ebpfjit_interp_call(struct ebpfjit_prog *prog, struct ebpfjit_state *st, uint32_t pc,
                             uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

/* cffi:end */
#endif
