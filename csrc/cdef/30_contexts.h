/* cffi declarations of csrc/contexts.h (program contexts, builtin helpers, trace log). */
#define EBPFJIT_PAGE_SIZE 4096
#define EBPFJIT_XDP_HEADROOM 256
#define EBPFJIT_XDP_FRAME_HDR 40
#define EBPFJIT_SHINFO_SIZE 320
#define EBPFJIT_XDP_METALEN_MAX 252
#define EBPFJIT_SKB_HEADROOM 64
#define EBPFJIT_ETH_HLEN 14
#define EBPFJIT_XDP_SHADOW_SIZE 48
#define EBPFJIT_SKB_SHADOW_SIZE 216
#define EBPFJIT_SKB_UAPI_SIZE 192
#define EBPFJIT_XDP_MAX_DATA ...
#define EBPFJIT_SKB_MAX_DATA ...

struct ebpfjit_xdp_md {
    uint32_t data;
    uint32_t data_end;
    uint32_t data_meta;
    uint32_t ingress_ifindex;
    uint32_t rx_queue_index;
    uint32_t egress_ifindex;
};

struct ebpfjit_xdp {
    uint32_t kind;
    uint32_t meta, data, end;
    uint32_t ingress_ifindex, rx_queue_index;
    uint64_t shadow[6];
    uint8_t frame[4096];
};

struct ebpfjit_skb {
    uint32_t kind;
    uint32_t data;
    uint32_t len;
    uint32_t is_l2;
    uint64_t shadow[27];
    uint8_t buf[4096];
};

int ebpfjit_xdp_init(struct ebpfjit_xdp *x, const uint8_t *pkt, uint32_t len,
                     const struct ebpfjit_xdp_md *ctx_in);
int32_t ebpfjit_xdp_run(struct ebpfjit_prog *prog, int engine, uint64_t budget,
                        struct ebpfjit_xdp *x, uint64_t repeat, uint32_t *retval, double *ns);
int ebpfjit_skb_init(struct ebpfjit_skb *s, const uint8_t *pkt, uint32_t len, int is_l2,
                     const uint8_t *ctx_in);
int32_t ebpfjit_skb_run(struct ebpfjit_prog *prog, int engine, uint64_t budget,
                        struct ebpfjit_skb *s, uint64_t repeat, uint32_t *retval, double *ns);
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
#define EBPFJIT_PKT_FAULT -1
#define EBPFJIT_PKT_REFUSED -2
#define EBPFJIT_PKT_RESIZED -3
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

void ebpfjit_install_builtin_helpers(struct ebpfjit_env *env);
int ebpfjit_trace_enable(struct ebpfjit_env *env);
int64_t ebpfjit_trace_read(struct ebpfjit_env *env, char *buf, uint64_t len);
void ebpfjit_trace_disable(struct ebpfjit_env *env);
int64_t ebpfjit_format(struct ebpfjit_state *st, char *out, uint64_t out_len, const char *fmt,
                       uint64_t fmt_len, const uint64_t *args, uint32_t nargs);
