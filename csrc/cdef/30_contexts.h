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
int32_t ebpfjit_xdp_run(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                        uint64_t budget, struct ebpfjit_xdp *x, uint64_t repeat,
                        uint32_t *retval, double *ns);
int ebpfjit_skb_init(struct ebpfjit_skb *s, const uint8_t *pkt, uint32_t len, int is_l2,
                     const uint8_t *ctx_in);
int32_t ebpfjit_skb_run(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                        uint64_t budget, struct ebpfjit_skb *s, uint64_t repeat,
                        uint32_t *retval, double *ns);
int32_t ebpfjit_ctx_run(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                        uint64_t budget, uint64_t ctx, uint64_t ctx_len, int ctx_writable,
                        uint64_t mem, uint64_t mem_len, int mem_writable,
                        const struct ebpfjit_region *extra, uint32_t nextra, uint64_t repeat,
                        double *ns);

void ebpfjit_install_builtin_helpers(struct ebpfjit_env *env);
int ebpfjit_trace_enable(struct ebpfjit_env *env);
int64_t ebpfjit_trace_read(struct ebpfjit_env *env, char *buf, uint64_t len);
void ebpfjit_trace_disable(struct ebpfjit_env *env);
int64_t ebpfjit_format(struct ebpfjit_state *st, char *out, uint64_t out_len, const char *fmt,
                       uint64_t fmt_len, const uint64_t *args, uint32_t nargs);
