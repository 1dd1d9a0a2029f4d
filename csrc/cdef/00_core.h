/* cffi declarations of csrc/ebpfjit_rt.h (types and core prototypes). Keep in step with it. */
#define EBPFJIT_STACK_SIZE 512
#define EBPFJIT_MAX_FRAMES 8
#define EBPFJIT_MAX_HELPERS 512
#define EBPFJIT_MAX_RUN_REGIONS 8
#define EBPFJIT_MAX_ENV_REGIONS 256
#define EBPFJIT_MAX_TAIL_CALLS 33
#define EBPFJIT_MAX_VCPUS 256
#define EBPFJIT_DEFAULT_BUDGET ...
#define EBPFJIT_MAX_HELD_LOCKS 4
#define EBPFJIT_BUDGET_CHUNK ...
#define EBPFJIT_MAX_INSNS ...
#define EBPFJIT_ENGINE_INTERP 0
#define EBPFJIT_ENGINE_JIT 1
#define EBPFJIT_ENGINE_JIT_CODE 2

enum ebpfjit_status {
    EBPFJIT_OK = 0,
    EBPFJIT_ERR_OOB_LOAD = 1,
    EBPFJIT_ERR_OOB_STORE = 2,
    EBPFJIT_ERR_UNKNOWN_HELPER = 3,
    EBPFJIT_ERR_CALL_DEPTH = 4,
    EBPFJIT_ERR_BUDGET = 5,
    EBPFJIT_ERR_HELPER = 6,
    EBPFJIT_ERR_FALL_OFF = 7,
    EBPFJIT_ERR_BAD_INSN = 8,
    EBPFJIT_ERR_TIMEOUT = 9,
    EBPFJIT_TAIL_CALL = 100,
};

typedef uint64_t (*ebpfjit_helper_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
struct ebpfjit_state;
typedef int32_t (*ebpfjit_jit_fn)(struct ebpfjit_state *st, uint64_t r1, uint64_t r2);
typedef uint64_t (*ebpfjit_jit_callback_fn)(struct ebpfjit_state *st, uint64_t pc, uint64_t r1,
                                            uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
#define EBPFJIT_CALLBACK_TAG ...
#define EBPFJIT_CALLBACK_PC_MASK ...

struct ebpfjit_region {
    uint64_t base;
    uint64_t len;
    uint64_t writable;
};

struct ebpfjit_map_base {
    uint32_t type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t flags;
    uint32_t index;
    uint8_t *values;
};

struct ebpfjit_env {
    ebpfjit_helper_fn helpers[512];
    void **maps;
    uint32_t nmaps;
    uint32_t nregions;
    struct ebpfjit_region regions[256];
    void *user;
    uint32_t ncpus;
    uint8_t vcpu_busy[256];
    uint32_t refs;
    uint64_t region_dead[256];
};

struct ebpfjit_prog {
    const uint8_t *code;
    uint32_t nslots;
    uint32_t prog_type;
    void *interp;
    ebpfjit_jit_fn jit_fn;
    struct ebpfjit_env *env;
    ebpfjit_jit_callback_fn jit_callback;
};

struct ebpfjit_state {
    uint64_t r0;
    int32_t status;
    int32_t fault_pc;
    uint64_t fault_addr;
    uint64_t fault_size;
    uint64_t fault_info;
    uint64_t budget;
    uint32_t depth;
    uint32_t tail_calls;
    uint64_t mem_base;
    uint64_t mem_len;
    uint64_t mem_writable;
    uint64_t frame_lo[8];
    uint32_t nregions;
    uint32_t cpu;
    struct ebpfjit_region regions[8];
    struct ebpfjit_env *env;
    struct ebpfjit_prog *tail_target;
    void *run_ctx;
    uint64_t user;
    struct ebpfjit_prog *prog;
    int32_t engine;
    uint32_t nlocks;
    uint64_t locks[4];
    uint64_t fault_mem_base, fault_mem_len, fault_ctx_base, fault_ctx_len;
    uint64_t fault_frame_lo[8];
    uint32_t fault_depth;
    uint32_t lock_depth[4];
    uint64_t budget_rest;
};

struct ebpfjit_state *ebpfjit_current(void);
void ebpfjit_set_current(struct ebpfjit_state *st);
int32_t ebpfjit_fault(struct ebpfjit_state *st, int32_t status, int32_t pc, uint64_t addr,
                      uint64_t size);
int ebpfjit_access_ok(const struct ebpfjit_state *st, uint64_t addr, uint64_t size, int write);
uint64_t ebpfjit_call_helper(struct ebpfjit_state *st, uint64_t id, uint64_t r1, uint64_t r2,
                             uint64_t r3, uint64_t r4, uint64_t r5);
struct ebpfjit_env *ebpfjit_env_new(void);
void ebpfjit_env_free(struct ebpfjit_env *env);
int ebpfjit_env_add_region(struct ebpfjit_env *env, uint64_t base, uint64_t len, int writable);
int ebpfjit_env_remove_region(struct ebpfjit_env *env, uint64_t base, uint64_t len);
int ebpfjit_env_set_ncpus(struct ebpfjit_env *env, uint32_t ncpus);
uint64_t ebpfjit_budget_refill(struct ebpfjit_state *st, uint64_t left, uint64_t charge,
                               int32_t pc);
int ebpfjit_budget_charge(struct ebpfjit_state *st, uint64_t n);
void ebpfjit_state_reset(struct ebpfjit_state *st, struct ebpfjit_env *env, uint64_t budget);
int32_t ebpfjit_run(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                    uint64_t r1, uint64_t r2);
int ebpfjit_interp_prepare(struct ebpfjit_prog *prog);
void ebpfjit_interp_release(struct ebpfjit_prog *prog);
int ebpfjit_interp_is_callback(const struct ebpfjit_prog *prog, uint32_t pc);
uint64_t ebpfjit_interp_call(struct ebpfjit_prog *prog, struct ebpfjit_state *st, uint32_t pc,
                             uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
int32_t ebpfjit_interp_exec(struct ebpfjit_prog *prog, struct ebpfjit_state *st,
                            uint64_t r1, uint64_t r2);
