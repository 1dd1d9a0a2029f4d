/* contexts.h: program-type contexts modelled on the kernel's BPF_PROG_TEST_RUN (net/bpf/test_run.c)
 * and the helpers that act on them.
 *
 * A program never sees these structs. It sees a *shadow context* (ebpfjit/ctx.py): the uapi
 * struct (xdp_md / __sk_buff) followed by u64 data/data_end/data_meta slots, because ctx.py
 * rewrote its pointer-field loads into 64-bit loads from those slots at load time. Every helper
 * that moves the packet (adjust_head/meta/tail) updates the model, the slots and the run's hot
 * memory region (st->mem_*) together, so both engines see the new packet bounds at once.
 *
 * Sizes follow x86-64 with 4 KiB pages, as the kernel oracle runs: the test-run frame is one
 * page, XDP_PACKET_HEADROOM is 256, sizeof(struct xdp_frame) is 40, and the tailroom reserved
 * for struct skb_shared_info is SKB_DATA_ALIGN(320) = 320.
 *
 * Its cffi section is declared to cffi as written (csrc/cdefgen.py generates the cdef).
 */
#ifndef EBPFJIT_CONTEXTS_H
#define EBPFJIT_CONTEXTS_H

#include <stdint.h>

#include "ebpfjit_rt.h"
#include "runtime_api.h"
/* cffi:begin */

#define EBPFJIT_PAGE_SIZE 4096
#define EBPFJIT_XDP_HEADROOM 256        /* XDP_PACKET_HEADROOM */
#define EBPFJIT_XDP_FRAME_HDR 40        /* sizeof(struct xdp_frame): adjust_head's lower bound */
#define EBPFJIT_SHINFO_SIZE 320         /* SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) */
#define EBPFJIT_XDP_METALEN_MAX 252     /* xdp_metalen_invalid: u8 meta_len, 4-byte aligned */
#define EBPFJIT_SKB_HEADROOM 64         /* NET_SKB_PAD + NET_IP_ALIGN (x86) */
#define EBPFJIT_ETH_HLEN 14
#define EBPFJIT_XDP_SHADOW_SIZE 48
#define EBPFJIT_SKB_SHADOW_SIZE 216
#define EBPFJIT_SKB_UAPI_SIZE 192

enum ebpfjit_ctx_kind {
    EBPFJIT_CTX_XDP = 0x58445031,       /* distinguishes models behind st->run_ctx */
    EBPFJIT_CTX_SKB = 0x534b4231,
};

/* uapi struct xdp_md. */
struct ebpfjit_xdp_md {
    uint32_t data;
    uint32_t data_end;
    uint32_t data_meta;
    uint32_t ingress_ifindex;
    uint32_t rx_queue_index;
    uint32_t egress_ifindex;
};

/* The kernel's test-run xdp_buff: one page frame; offsets are from the frame start
 * (data_hard_start). */
struct ebpfjit_xdp {
    uint32_t kind;
    uint32_t meta, data, end;           /* data_meta, data, data_end */
    uint32_t ingress_ifindex, rx_queue_index;
    uint64_t shadow[EBPFJIT_XDP_SHADOW_SIZE / 8];
    uint8_t frame[EBPFJIT_PAGE_SIZE];
};

/* The kernel's test-run sk_buff, reduced to what programs and helpers observe. The uapi
 * fields (len, protocol, mark, cb, ...) live in the shadow itself; `data`/`len` are the truth
 * and the shadow's len and slots mirror them. */
struct ebpfjit_skb {
    uint32_t kind;
    uint32_t data;                      /* offset of skb->data in buf */
    uint32_t len;                       /* skb->len (linear: headlen) */
    uint32_t is_l2;                     /* tc: data at the MAC header; socket filter: at L3 */
    uint64_t shadow[EBPFJIT_SKB_SHADOW_SIZE / 8];
    uint8_t buf[EBPFJIT_PAGE_SIZE];
};

/* Largest packet a test run accepts linearly (larger XDP packets would need frags). */
#define EBPFJIT_XDP_MAX_DATA (EBPFJIT_PAGE_SIZE - EBPFJIT_XDP_HEADROOM - EBPFJIT_SHINFO_SIZE)
#define EBPFJIT_SKB_MAX_DATA (EBPFJIT_PAGE_SIZE - EBPFJIT_SKB_HEADROOM - EBPFJIT_SHINFO_SIZE)

/* bpf_prog_test_run_xdp's setup: `pkt` is data_in (metadata first when ctx_in->data > 0).
 * ctx_in may be NULL. Returns 0, -EINVAL (as the kernel) or -E2BIG (would need frags). */
int ebpfjit_xdp_init(struct ebpfjit_xdp *x, const uint8_t *pkt, uint32_t len,
                     const struct ebpfjit_xdp_md *ctx_in);
/* The test runs (xdp, skb, ctx) run on this thread's state one level deeper (ebpfjit_enter), so
 * a Python helper may start a nested run; Python reads a fault from ebpfjit_thread_state()
 * right after the call.
 * Runs `repeat` times on the same buffer (changes accumulate, as in the kernel), r1 = the
 * shadow. Returns the status of the last run; *retval = its r0 as u32; *ns = mean ns per run. */
int32_t ebpfjit_xdp_run(struct ebpfjit_prog *prog, int engine, uint64_t budget,
                        struct ebpfjit_xdp *x, uint64_t repeat, uint32_t *retval, double *ns);

/* bpf_prog_test_run_skb's setup. is_l2: tc (data at the Ethernet header) or socket filter
 * (Ethernet header pulled). ctx_in: a 192-byte struct __sk_buff or NULL. Returns 0 or -EINVAL. */
int ebpfjit_skb_init(struct ebpfjit_skb *s, const uint8_t *pkt, uint32_t len, int is_l2,
                     const uint8_t *ctx_in);
int32_t ebpfjit_skb_run(struct ebpfjit_prog *prog, int engine, uint64_t budget,
                        struct ebpfjit_skb *s, uint64_t repeat, uint32_t *retval, double *ns);

/* Runs with r1 = ctx (registered as a run region) and the mem region [mem, mem+len):
 * raw programs and tracing programs whose context is a user buffer or an args array.
 * extra/extra_len/extra_writable: up to EBPFJIT_MAX_RUN_REGIONS - 1 more regions. */
int32_t ebpfjit_ctx_run(struct ebpfjit_prog *prog, int engine, uint64_t budget,
                        uint64_t ctx, uint64_t ctx_len, int ctx_writable,
                        uint64_t mem, uint64_t mem_len, int mem_writable,
                        const struct ebpfjit_region *extra, uint32_t nextra, uint64_t repeat,
                        double *ns);

/* Fast per-packet runs (ObjectProgram.run / run_batch): the test-run model named by rn->ctx,
 * without ctx_in, a fresh context per packet, on this thread's state (ebpfjit_enter).
 * ebpfjit_pkt_run returns the verdict (r0 as u32) or:
 *   EBPFJIT_PKT_FAULT: the run faulted (ebpfjit_thread_state()->status says how);
 *   EBPFJIT_PKT_REFUSED: the model refused the packet, as a test run would (nothing ran);
 *   EBPFJIT_PKT_RESIZED (only with `inplace`): the run succeeded (verdict: the state's r0 as
 *   u32) but the output packet's length differs from len: it is in ebpfjit_thread_out().
 * With `inplace` and no resize, pkt (len bytes, writable) receives the output packet.
 * ebpfjit_pkt_run_batch runs n packets laid end to end in `data` (lengths `lens`), storing
 * verdicts; it returns how many ran OK: fewer than n means packet [return] faulted (the state's
 * status != 0) or was refused (status 0). */
#define EBPFJIT_RUNNER_XDP 1
#define EBPFJIT_RUNNER_SKB_L2 2         /* tc: data at the Ethernet header */
#define EBPFJIT_RUNNER_SKB_L3 3         /* socket filter: Ethernet header pulled */
#define EBPFJIT_PKT_FAULT (-1)
#define EBPFJIT_PKT_REFUSED (-2)
#define EBPFJIT_PKT_RESIZED (-3)
int64_t ebpfjit_pkt_run(const struct ebpfjit_runner *rn, char *pkt, uint64_t len, int inplace);
/* The same with inplace 0 / 1 (one argument less for cffi to convert). */
int64_t ebpfjit_pkt_run_copy(const struct ebpfjit_runner *rn, const char *pkt, uint64_t len);
int64_t ebpfjit_pkt_run_inplace(const struct ebpfjit_runner *rn, char *pkt, uint64_t len);
int64_t ebpfjit_pkt_run_batch(const struct ebpfjit_runner *rn, const char *data,
                              const uint32_t *lens, uint64_t n, uint32_t *verdicts);
/* The same, also appending each output packet (as a test run's data_out) to `out` (out_lens[i]
 * its length; *out_used the bytes written). It stops early, with status 0, before a packet when
 * fewer than EBPFJIT_PKT_OUT_MAX bytes of `out` are left: the caller drains and continues. */
#define EBPFJIT_PKT_OUT_MAX 4110
int64_t ebpfjit_pkt_run_batch_out(const struct ebpfjit_runner *rn, const char *data,
                                  const uint32_t *lens, uint64_t n, uint32_t *verdicts,
                                  char *out, uint64_t out_cap, uint32_t *out_lens,
                                  uint64_t *out_used);

/* Classic-pcap records run straight from the file's bytes (`ebpfjit run --pcap` without output):
 * the complete records at the start of buf[0..len) (headers in the file's byte order, swap != 0
 * when it is not the host's), at most max_n, each packet on a fresh model as in
 * ebpfjit_pkt_run_batch, its verdict stored in verdicts[i] and counted in counts[verdict] when
 * below EBPFJIT_COUNTED_VERDICTS (counts[EBPFJIT_COUNTED_VERDICTS]: the others). Returns the
 * records run; *consumed: the bytes they occupied. *stop says why it stopped early: 0 the end of
 * the complete records (or max_n), 1 a record longer than max_rec (not consumed), 2 the next
 * packet faulted (the state's status says how; not consumed), 3 the model refused it. */
int64_t ebpfjit_pkt_run_pcap(const struct ebpfjit_runner *rn, const uint8_t *buf, uint64_t len,
                             int swap, uint32_t max_rec, uint64_t max_n, uint32_t *verdicts,
                             uint64_t *counts, uint64_t *consumed, int *stop);

/* Context helpers (both engines; reached through env->helpers). */
uint64_t ebpfjit_helper_xdp_adjust_head(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_xdp_adjust_meta(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_xdp_adjust_tail(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_skb_load_bytes(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_skb_store_bytes(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_l3_csum_replace(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_l4_csum_replace(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_csum_diff(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/* --- helpers_misc.c --- */

/* Installs every builtin helper (misc, contexts, and the maps engineer's map helpers). */
void ebpfjit_install_builtin_helpers(struct ebpfjit_env *env);

/* bpf_trace_printk output, per env: enable before running, drain into buf (lines separated by
 * '\n'; returns bytes copied, or the size needed if buf is too small, nothing consumed), and
 * disable (frees) before the env dies. */
int ebpfjit_trace_enable(struct ebpfjit_env *env);
int64_t ebpfjit_trace_read(struct ebpfjit_env *env, char *buf, uint64_t len);
void ebpfjit_trace_disable(struct ebpfjit_env *env);

/* bpf_snprintf/bpf_trace_printk formatting (kernel bpf_bprintf_prepare subset) for tests:
 * returns the formatted length (vsnprintf semantics) or a negative errno. */
int64_t ebpfjit_format(struct ebpfjit_state *st, char *out, uint64_t out_len, const char *fmt,
                       uint64_t fmt_len, const uint64_t *args, uint32_t nargs);

uint64_t ebpfjit_helper_ktime_get_ns(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_ktime_get_boot_ns(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_ktime_get_coarse_ns(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_get_prandom_u32(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_get_smp_processor_id(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_trace_printk(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_snprintf(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_strncmp(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_get_current_pid_tgid(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_get_current_comm(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_probe_read(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_probe_read_str(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_probe_read_kernel(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_probe_read_kernel_str(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t ebpfjit_helper_loop(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/* cffi:end */
/* Callback values (`lddw rX, func`, src=4): EBPFJIT_CALLBACK_TAG | absolute pc of the
 * callback's first instruction in the running program. A constant, so jitted code stays
 * process-independent; see ebpfjit_invoke_callback (maps.h) for how it is called. */
#ifndef EBPFJIT_CALLBACK_TAG   /* the engine patch moves these into ebpfjit_rt.h */
#define EBPFJIT_CALLBACK_TAG 0xcb0fca11b0000000ULL
#define EBPFJIT_CALLBACK_PC_MASK 0x0fffffffULL
#endif

#endif
