/* cffi declarations of csrc/runtime_api.h (runtime.c exports beyond the core ABI). */
#define EBPFJIT_LOCK_REASON_SELF 1
#define EBPFJIT_LOCK_REASON_HELD_AT_EXIT 2
#define EBPFJIT_LOCK_REASON_NOT_HELD 3
#define EBPFJIT_LOCK_REASON_TOO_MANY 4
#define EBPFJIT_LOCK_REASON_NO_OWNER 5
#define EBPFJIT_LOCK_REASON_NOT_A_LOCK 6
#define EBPFJIT_LOCK_REASON_TIMEOUT 7
#define EBPFJIT_LOCK_REASON_CALL 8
#define EBPFJIT_LOCK_REASON_CALLBACK_EXIT 9
#define EBPFJIT_RUN_FAILED 0xebf0fa17ebf0fa17

extern "Python+C" uint64_t ebpfjit_py_helper(struct ebpfjit_env *env, uint32_t id, uint64_t r1,
                                             uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
ebpfjit_helper_fn ebpfjit_py_trampoline(uint32_t id);
uint64_t ebpfjit_ld_packet(struct ebpfjit_state *st, uint64_t offset, uint32_t size, int32_t pc,
                           int *ok);
int32_t ebpfjit_helper_status(struct ebpfjit_state *st, int32_t pc);
uint64_t ebpfjit_set_deadline(uint64_t deadline_ns);
uint64_t ebpfjit_now_ns(void);
uint64_t ebpfjit_run_py(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                        uint64_t budget, char *mem, uint64_t len, int copy);
uint64_t ebpfjit_run_py_regs(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                             uint64_t budget, char *mem, uint64_t len, int copy, int which,
                             uint64_t r1, uint64_t r2);
uint64_t ebpfjit_run_repeat(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                            uint64_t budget, char *mem, uint64_t len, int copy, uint64_t repeat,
                            double *ns_per_run);
struct ebpfjit_runner {
    struct ebpfjit_prog *prog;
    uint64_t budget;
    int32_t engine;
    int32_t ctx;                    /* 0, or EBPFJIT_RUNNER_* (contexts.h) */
};
uint64_t ebpfjit_run_copy(const struct ebpfjit_runner *rn, const char *mem, uint64_t len);
uint64_t ebpfjit_run_inplace(const struct ebpfjit_runner *rn, char *mem, uint64_t len);
uint64_t ebpfjit_run_empty(const struct ebpfjit_runner *rn);
#define EBPFJIT_MAX_PY_NESTING 16
struct ebpfjit_state *ebpfjit_thread_state(void);
struct ebpfjit_out {
    uint8_t *data;
    uint64_t len;
};
const struct ebpfjit_out *ebpfjit_thread_out(void);
