/* contexts.c: XDP and skb models (the kernel's BPF_PROG_TEST_RUN set-up, net/bpf/test_run.c),
 * their runners, and the helpers that act on them (net/core/filter.c). Return codes are the
 * kernel's, checked against it by tests/test_kernel_compare.py.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "contexts.h"
#include "pcap_scan.h"
#include "runtime_api.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t addr_of(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/* A helper was called with something the kernel verifier would have refused: stop the run. */
static uint64_t bad_call(struct ebpfjit_state *st)
{
    if (st)
        ebpfjit_fault(st, EBPFJIT_ERR_HELPER, -1, 0, 0);
    return 0;
}

/* --- XDP -------------------------------------------------------------------------------- */

static void xdp_sync(struct ebpfjit_xdp *x, struct ebpfjit_state *st)
{
    uint64_t base = addr_of(x->frame);
    uint32_t *md = (uint32_t *)x->shadow;

    md[0] = x->data - x->meta;          /* the uapi view, as xdp_convert_buff_to_md */
    md[1] = x->end - x->meta;
    md[2] = 0;
    x->shadow[3] = base + x->data;
    x->shadow[4] = base + x->end;
    x->shadow[5] = base + x->meta;
    if (st) {
        st->mem_base = base + x->meta;
        st->mem_len = x->end - x->meta;
        st->mem_writable = 1;
    }
}

int ebpfjit_xdp_init(struct ebpfjit_xdp *x, const uint8_t *pkt, uint32_t len,
                     const struct ebpfjit_xdp_md *ctx_in)
{
    uint32_t metalen = 0, headroom = EBPFJIT_XDP_HEADROOM;
    uint32_t *md;

    if (ctx_in) {
        /* There can't be user provided data before the metadata. */
        if (ctx_in->data_meta || ctx_in->data_end != len || ctx_in->data > ctx_in->data_end ||
            (ctx_in->data & 3) || ctx_in->data > EBPFJIT_XDP_METALEN_MAX)
            return -EINVAL;
        if (ctx_in->egress_ifindex)
            return -EINVAL;
        if (!ctx_in->ingress_ifindex && ctx_in->rx_queue_index)
            return -EINVAL;
        metalen = ctx_in->data;
        headroom -= metalen;
    }
    if (len < EBPFJIT_ETH_HLEN)
        return -EINVAL;
    if (len > EBPFJIT_PAGE_SIZE - headroom - EBPFJIT_SHINFO_SIZE)
        return -E2BIG;
    /* Only the headroom can become visible (adjust_head/meta); adjust_tail clears what it
     * grows, so the tail of the frame is never read and need not be cleared per run. */
    memset(x, 0, offsetof(struct ebpfjit_xdp, frame) + headroom);
    x->kind = EBPFJIT_CTX_XDP;
    x->meta = headroom;
    x->data = headroom + metalen;
    x->end = headroom + len;
    memcpy(x->frame + headroom, pkt, len);
    /* Without a device in ctx_in the kernel uses the loopback device's queue 0. */
    x->ingress_ifindex = ctx_in && ctx_in->ingress_ifindex ? ctx_in->ingress_ifindex : 1;
    x->rx_queue_index = ctx_in ? ctx_in->rx_queue_index : 0;
    md = (uint32_t *)x->shadow;
    md[3] = x->ingress_ifindex;
    md[4] = x->rx_queue_index;
    md[5] = 0;
    xdp_sync(x, NULL);
    return 0;
}

static void set_ctx_region(struct ebpfjit_state *st, const void *ctx, uint64_t len, int writable)
{
    st->regions[0].base = addr_of(ctx);
    st->regions[0].len = len;
    st->regions[0].writable = writable ? 1 : 0;
    st->nregions = 1;
}

/* Makes `x` the context of the runs on `st`: its shadow is the one run region (read-only: the
 * ctx rewrite reads it), the packet is the mem region. Returns r1, the shadow's address. */
static uint64_t xdp_bind(struct ebpfjit_xdp *x, struct ebpfjit_state *st)
{
    set_ctx_region(st, x->shadow, EBPFJIT_XDP_SHADOW_SIZE, 0);
    st->run_ctx = x;
    xdp_sync(x, st);
    return addr_of(x->shadow);
}

static void clear_run(struct ebpfjit_state *st)
{
    st->nregions = 0;
    st->run_ctx = NULL;
    st->mem_base = 0;
    st->mem_len = 0;
}

/* Nested too deep through Python helpers: the fault is on the spare state, where Python looks
 * (ebpfjit_thread_state() right after the call). */
static int32_t nesting_failed(uint32_t *retval, double *ns)
{
    *retval = 0;
    *ns = 0;
    ebpfjit_nesting_failed();
    return EBPFJIT_ERR_HELPER;
}

/* A test run's repeat loop over a prepared context: one virtual CPU for the whole loop (as the
 * kernel's test_run holds its CPU), the verdict of the last run, and the mean ns per run. */
static int32_t run_repeated(struct ebpfjit_prog *prog, struct ebpfjit_state *st, int engine,
                            uint64_t budget, uint64_t r1, uint64_t repeat, uint32_t *retval,
                            double *ns)
{
    struct ebpfjit_loop lp;
    int32_t status = EBPFJIT_OK;
    uint64_t i, t0, t1;

    *retval = 0;
    *ns = 0;
    if (!repeat)
        repeat = 1;
    ebpfjit_loop_begin(&lp, prog, st, engine);
    t0 = now_ns();
    for (i = 0; i < repeat; i++) {
        ebpfjit_budget_set(st, budget);
        status = ebpfjit_loop_run(&lp, r1, 0);
        if (status != EBPFJIT_OK)
            break;
        *retval = (uint32_t)st->r0;
    }
    t1 = now_ns();
    ebpfjit_loop_end(&lp);
    if (i)
        *ns = (double)(t1 - t0) / (double)i;
    clear_run(st);
    return status;
}

int32_t ebpfjit_xdp_run(struct ebpfjit_prog *prog, int engine, uint64_t budget,
                        struct ebpfjit_xdp *x, uint64_t repeat, uint32_t *retval, double *ns)
{
    struct ebpfjit_state *st = ebpfjit_enter();
    int32_t status;

    if (!st)
        return nesting_failed(retval, ns);
    status = run_repeated(prog, st, engine, budget, xdp_bind(x, st), repeat, retval, ns);
    ebpfjit_leave();
    return status;
}

/* The current run's context model when it is of `kind` and `ctx` is its shadow (the r1 the
 * program was given), else NULL: a helper handed any other pointer is a bad call. Both models
 * start with `kind`; `shadow_off` is where each keeps its shadow. */
static void *run_ctx_of(struct ebpfjit_state *st, uint64_t ctx, uint32_t kind, size_t shadow_off)
{
    if (!st || !st->run_ctx || *(const uint32_t *)st->run_ctx != kind)
        return NULL;
    return ctx == addr_of((const char *)st->run_ctx + shadow_off) ? st->run_ctx : NULL;
}

static struct ebpfjit_xdp *xdp_of(struct ebpfjit_state *st, uint64_t ctx)
{
    return run_ctx_of(st, ctx, EBPFJIT_CTX_XDP, offsetof(struct ebpfjit_xdp, shadow));
}

uint64_t ebpfjit_helper_xdp_adjust_head(uint64_t ctx, uint64_t offset, uint64_t a3, uint64_t a4,
                                        uint64_t a5)
{
    struct ebpfjit_state *st = ebpfjit_current();
    struct ebpfjit_xdp *x = xdp_of(st, ctx);
    int64_t off = (int32_t)offset, data, metalen;

    if (!x)
        return bad_call(st);
    metalen = (int64_t)x->data - x->meta;
    data = (int64_t)x->data + off;
    if (data < EBPFJIT_XDP_FRAME_HDR + metalen || data > (int64_t)x->end - EBPFJIT_ETH_HLEN)
        return (uint64_t)-EINVAL;
    if (metalen)
        memmove(x->frame + x->meta + off, x->frame + x->meta, (size_t)metalen);
    x->meta = (uint32_t)((int64_t)x->meta + off);
    x->data = (uint32_t)data;
    xdp_sync(x, st);
    return 0;
}

uint64_t ebpfjit_helper_xdp_adjust_meta(uint64_t ctx, uint64_t offset, uint64_t a3, uint64_t a4,
                                        uint64_t a5)
{
    struct ebpfjit_state *st = ebpfjit_current();
    struct ebpfjit_xdp *x = xdp_of(st, ctx);
    int64_t meta, metalen;

    if (!x)
        return bad_call(st);
    meta = (int64_t)x->meta + (int32_t)offset;
    if (meta < EBPFJIT_XDP_FRAME_HDR || meta > (int64_t)x->data)
        return (uint64_t)-EINVAL;
    metalen = (int64_t)x->data - meta;
    if ((metalen & 3) || metalen > EBPFJIT_XDP_METALEN_MAX)
        return (uint64_t)-EACCES;
    x->meta = (uint32_t)meta;
    xdp_sync(x, st);
    return 0;
}

uint64_t ebpfjit_helper_xdp_adjust_tail(uint64_t ctx, uint64_t offset, uint64_t a3, uint64_t a4,
                                        uint64_t a5)
{
    struct ebpfjit_state *st = ebpfjit_current();
    struct ebpfjit_xdp *x = xdp_of(st, ctx);
    int64_t off = (int32_t)offset, end;

    if (!x)
        return bad_call(st);
    end = (int64_t)x->end + off;
    if (end > EBPFJIT_PAGE_SIZE - EBPFJIT_SHINFO_SIZE)
        return (uint64_t)-EINVAL;
    if (end < (int64_t)x->data + EBPFJIT_ETH_HLEN)
        return (uint64_t)-EINVAL;
    /* The kernel clears grown memory: it could hold stale data. */
    if (off > 0)
        memset(x->frame + x->end, 0, (size_t)off);
    x->end = (uint32_t)end;
    xdp_sync(x, st);
    return 0;
}

/* --- skb -------------------------------------------------------------------------------- */

/* __sk_buff offsets (uapi/linux/bpf.h). */
#define SKB_LEN 0
#define SKB_PKT_TYPE 4
#define SKB_MARK 8
#define SKB_PROTOCOL 16
#define SKB_PRIORITY 32
#define SKB_INGRESS_IFINDEX 36
#define SKB_IFINDEX 40
#define SKB_CB 48
#define SKB_HASH 68
#define SKB_TSTAMP 152
#define SKB_WIRE_LEN 160
#define SKB_GSO_SEGS 164
#define SKB_GSO_SIZE 176
#define SKB_HWTSTAMP 184
#define SKB_SLOT_DATA 192

static uint8_t *shadow_bytes(struct ebpfjit_skb *s)
{
    return (uint8_t *)s->shadow;
}

static void put32(uint8_t *p, uint32_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

static uint32_t get32(const uint8_t *p, uint32_t off)
{
    uint32_t v;
    memcpy(&v, p + off, 4);
    return v;
}

static int range_is_zero(const uint8_t *p, uint32_t from, uint32_t to)
{
    uint32_t i;
    for (i = from; i < to; i++)
        if (p[i])
            return 0;
    return 1;
}

static void skb_sync(struct ebpfjit_skb *s, struct ebpfjit_state *st)
{
    uint64_t data = addr_of(s->buf) + s->data;
    uint8_t *sh = shadow_bytes(s);

    put32(sh, SKB_LEN, s->len);
    s->shadow[SKB_SLOT_DATA / 8] = data;
    s->shadow[SKB_SLOT_DATA / 8 + 1] = data + s->len;
    s->shadow[SKB_SLOT_DATA / 8 + 2] = data;   /* no metadata in a test-run skb */
    if (st) {
        st->mem_base = data;
        st->mem_len = s->len;
        st->mem_writable = 1;
    }
}

/* As xdp_bind, for an skb. The shadow is writable as a whole: ctx.py already refused stores
 * to its read-only fields at load. */
static uint64_t skb_bind(struct ebpfjit_skb *s, struct ebpfjit_state *st)
{
    set_ctx_region(st, s->shadow, EBPFJIT_SKB_SHADOW_SIZE, 1);
    st->run_ctx = s;
    skb_sync(s, st);
    return addr_of(s->shadow);
}

int ebpfjit_skb_init(struct ebpfjit_skb *s, const uint8_t *pkt, uint32_t len, int is_l2,
                     const uint8_t *ctx_in)
{
    static const uint8_t zero_mac[6];
    uint8_t *sh;
    const uint8_t *dst;
    uint16_t proto;

    if (len < EBPFJIT_ETH_HLEN || len > EBPFJIT_SKB_MAX_DATA)
        return -EINVAL;
    /* convert___skb_to_skb: only the fields a test run accepts may be non-zero. */
    if (ctx_in && (!range_is_zero(ctx_in, 0, SKB_MARK) ||
                   !range_is_zero(ctx_in, SKB_MARK + 4, SKB_PRIORITY) ||
                   !range_is_zero(ctx_in, SKB_IFINDEX + 4, SKB_CB) ||
                   !range_is_zero(ctx_in, SKB_CB + 20, SKB_TSTAMP) ||
                   !range_is_zero(ctx_in, SKB_GSO_SEGS + 4, SKB_GSO_SIZE) ||
                   !range_is_zero(ctx_in, SKB_GSO_SIZE + 4, SKB_HWTSTAMP) ||
                   !range_is_zero(ctx_in, SKB_HWTSTAMP + 8, EBPFJIT_SKB_UAPI_SIZE)))
        return -EINVAL;
    /* Without a real device we only have the loopback device (ifindex 1). */
    if (ctx_in && get32(ctx_in, SKB_IFINDEX) > 1)
        return -ENODEV;
    /* Programs and helpers reach buf only within [data, data + len): clear up to there. */
    memset(s, 0, offsetof(struct ebpfjit_skb, buf) + EBPFJIT_SKB_HEADROOM);
    s->kind = EBPFJIT_CTX_SKB;
    s->is_l2 = is_l2 ? 1 : 0;
    memcpy(s->buf + EBPFJIT_SKB_HEADROOM, pkt, len);
    sh = shadow_bytes(s);

    /* eth_type_trans() on the loopback device (all-zero address). */
    dst = pkt;
    if (memcmp(dst, zero_mac, 6) == 0)
        put32(sh, SKB_PKT_TYPE, 0);                             /* PACKET_HOST */
    else if (dst[0] & 1)
        put32(sh, SKB_PKT_TYPE, 2);     /* PACKET_MULTICAST: lo's broadcast address is zero */
    else
        put32(sh, SKB_PKT_TYPE, 3);                             /* PACKET_OTHERHOST */
    memcpy(&proto, pkt + 12, 2);
    if (((uint32_t)pkt[12] << 8 | pkt[13]) < 0x600) {
        /* 802.3 length field: raw IPX (0xFFFF) or 802.2 LLC. */
        static const uint8_t be_802_3[2] = {0x00, 0x01}, be_802_2[2] = {0x00, 0x04};
        int raw = len >= 16 && pkt[14] == 0xff && pkt[15] == 0xff;
        memcpy(&proto, raw ? be_802_3 : be_802_2, 2);
    }
    put32(sh, SKB_PROTOCOL, proto);
    put32(sh, SKB_IFINDEX, 1);
    s->data = EBPFJIT_SKB_HEADROOM + (is_l2 ? 0 : EBPFJIT_ETH_HLEN);
    s->len = len - (is_l2 ? 0 : EBPFJIT_ETH_HLEN);
    if (ctx_in) {
        uint32_t wire_len = get32(ctx_in, SKB_WIRE_LEN);
        if (wire_len && (wire_len < s->len || wire_len > 65536))
            return -EINVAL;
        if (get32(ctx_in, SKB_GSO_SEGS) > 65535)
            return -EINVAL;
        memcpy(sh + SKB_MARK, ctx_in + SKB_MARK, 4);
        memcpy(sh + SKB_PRIORITY, ctx_in + SKB_PRIORITY, 4);
        memcpy(sh + SKB_INGRESS_IFINDEX, ctx_in + SKB_INGRESS_IFINDEX, 4);
        memcpy(sh + SKB_CB, ctx_in + SKB_CB, 20);
        memcpy(sh + SKB_TSTAMP, ctx_in + SKB_TSTAMP, 8);
        put32(sh, SKB_WIRE_LEN, wire_len ? wire_len : s->len);
        memcpy(sh + SKB_GSO_SEGS, ctx_in + SKB_GSO_SEGS, 4);
        memcpy(sh + SKB_GSO_SIZE, ctx_in + SKB_GSO_SIZE, 4);
        memcpy(sh + SKB_HWTSTAMP, ctx_in + SKB_HWTSTAMP, 8);
    }
    skb_sync(s, NULL);
    return 0;
}

int32_t ebpfjit_skb_run(struct ebpfjit_prog *prog, int engine, uint64_t budget,
                        struct ebpfjit_skb *s, uint64_t repeat, uint32_t *retval, double *ns)
{
    struct ebpfjit_state *st = ebpfjit_enter();
    int32_t status;

    if (!st)
        return nesting_failed(retval, ns);
    status = run_repeated(prog, st, engine, budget, skb_bind(s, st), repeat, retval, ns);
    ebpfjit_leave();
    return status;
}

/* The slots are read-only to programs but must be reachable by the ctx rewrite's ldxdw. */
int32_t ebpfjit_ctx_run(struct ebpfjit_prog *prog, int engine, uint64_t budget,
                        uint64_t ctx, uint64_t ctx_len, int ctx_writable,
                        uint64_t mem, uint64_t mem_len, int mem_writable,
                        const struct ebpfjit_region *extra, uint32_t nextra, uint64_t repeat,
                        double *ns)
{
    struct ebpfjit_state *st = ebpfjit_enter();
    struct ebpfjit_loop lp;
    int32_t status = EBPFJIT_OK;
    uint64_t i, t0, t1;
    uint32_t k, retval;

    if (!st)
        return nesting_failed(&retval, ns);
    if (nextra > EBPFJIT_MAX_RUN_REGIONS - 1)
        nextra = EBPFJIT_MAX_RUN_REGIONS - 1;
    st->nregions = 0;
    if (ctx_len) {
        set_ctx_region(st, (const void *)(uintptr_t)ctx, ctx_len, ctx_writable);
    }
    for (k = 0; k < nextra; k++)
        st->regions[st->nregions++] = extra[k];
    st->run_ctx = NULL;
    *ns = 0;
    if (!repeat)
        repeat = 1;
    ebpfjit_loop_begin(&lp, prog, st, engine);
    t0 = now_ns();
    for (i = 0; i < repeat; i++) {
        st->mem_base = mem;
        st->mem_len = mem_len;
        st->mem_writable = mem_writable ? 1 : 0;
        ebpfjit_budget_set(st, budget);
        status = ebpfjit_loop_run(&lp, ctx, 0);
        if (status != EBPFJIT_OK)
            break;
    }
    t1 = now_ns();
    ebpfjit_loop_end(&lp);
    if (i)
        *ns = (double)(t1 - t0) / (double)i;
    clear_run(st);
    ebpfjit_leave();
    return status;
}

/* --- fast per-packet entry points (ObjectProgram.run / run_batch) ---------------------- */

union pkt_model {
    struct ebpfjit_xdp xdp;
    struct ebpfjit_skb skb;
};

/* One packet on a fresh model in `m`, as a run of the loop `lp` (begun by the caller on `st`
 * with rn's program and engine): the verdict (r0 as u32) or EBPFJIT_PKT_FAULT /
 * EBPFJIT_PKT_REFUSED. The caller clears the run (clear_run) when done with `st`. */
static int64_t pkt_once(const struct ebpfjit_runner *rn, struct ebpfjit_loop *lp,
                        union pkt_model *m, const uint8_t *pkt, uint64_t len)
{
    struct ebpfjit_state *st = lp->st;
    uint64_t ctx;

    if (rn->ctx == EBPFJIT_RUNNER_XDP) {
        if (len > EBPFJIT_PAGE_SIZE || ebpfjit_xdp_init(&m->xdp, pkt, (uint32_t)len, NULL))
            return EBPFJIT_PKT_REFUSED;
        ctx = xdp_bind(&m->xdp, st);
    } else if (rn->ctx == EBPFJIT_RUNNER_SKB_L2 || rn->ctx == EBPFJIT_RUNNER_SKB_L3) {
        if (len > EBPFJIT_PAGE_SIZE ||
            ebpfjit_skb_init(&m->skb, pkt, (uint32_t)len, rn->ctx == EBPFJIT_RUNNER_SKB_L2, NULL))
            return EBPFJIT_PKT_REFUSED;
        ctx = skb_bind(&m->skb, st);
    } else {
        return EBPFJIT_PKT_REFUSED;
    }
    ebpfjit_budget_set(st, rn->budget);
    if (ebpfjit_loop_run(lp, ctx, 0) != EBPFJIT_OK)
        return EBPFJIT_PKT_FAULT;
    return (int64_t)(uint32_t)st->r0;
}

/* The packet a test run reports (data_out) after pkt_once: `pad` zero bytes (socket filter:
 * the kernel pushes the pulled Ethernet header back as zeroes), then *len bytes at the result. */
static const uint8_t *pkt_output(const struct ebpfjit_runner *rn, const union pkt_model *m,
                                 uint64_t *len, uint64_t *pad)
{
    if (rn->ctx == EBPFJIT_RUNNER_XDP) {
        *pad = 0;
        *len = m->xdp.end - m->xdp.meta;
        return m->xdp.frame + m->xdp.meta;
    }
    *pad = rn->ctx == EBPFJIT_RUNNER_SKB_L3 ? EBPFJIT_ETH_HLEN : 0;
    *len = m->skb.len;
    return m->skb.buf + m->skb.data;
}

int64_t ebpfjit_pkt_run(const struct ebpfjit_runner *rn, char *pkt, uint64_t len, int inplace)
{
    union pkt_model m;
    struct ebpfjit_state *st = ebpfjit_enter();
    struct ebpfjit_loop lp;
    int64_t r;

    if (!st) {
        ebpfjit_nesting_failed();
        return EBPFJIT_PKT_FAULT;
    }
    ebpfjit_loop_begin(&lp, rn->prog, st, rn->engine);
    r = pkt_once(rn, &lp, &m, (const uint8_t *)pkt, len);
    ebpfjit_loop_end(&lp);
    if (r >= 0 && inplace) {
        uint64_t n, pad;
        const uint8_t *out = pkt_output(rn, &m, &n, &pad);
        if (pad + n == len) {
            memset(pkt, 0, pad);
            memcpy(pkt + pad, out, n);
        } else if (!pad && ebpfjit_thread_out_set(out, n) == 0) {
            r = EBPFJIT_PKT_RESIZED;
        } else {
            /* Out of memory (a socket filter never resizes: the skb has no such helper). */
            ebpfjit_fault(st, EBPFJIT_ERR_HELPER, -1, 0, 0);
            r = EBPFJIT_PKT_FAULT;
        }
    }
    clear_run(st);
    ebpfjit_leave();
    return r;
}

int64_t ebpfjit_pkt_run_copy(const struct ebpfjit_runner *rn, const char *pkt, uint64_t len)
{
    return ebpfjit_pkt_run(rn, (char *)pkt, len, 0);
}

int64_t ebpfjit_pkt_run_inplace(const struct ebpfjit_runner *rn, char *pkt, uint64_t len)
{
    return ebpfjit_pkt_run(rn, pkt, len, 1);
}

int64_t ebpfjit_pkt_run_batch(const struct ebpfjit_runner *rn, const char *data,
                              const uint32_t *lens, uint64_t n, uint32_t *verdicts)
{
    union pkt_model m;
    struct ebpfjit_state *st = ebpfjit_enter();
    struct ebpfjit_loop lp;
    uint64_t i, off = 0;
    int64_t r;

    if (!st) {
        ebpfjit_nesting_failed();
        return 0;
    }
    st->status = EBPFJIT_OK;    /* a refused first packet must not look like a fault */
    ebpfjit_loop_begin(&lp, rn->prog, st, rn->engine);
    for (i = 0; i < n; i++) {
        r = pkt_once(rn, &lp, &m, (const uint8_t *)data + off, lens[i]);
        if (r < 0)
            break;
        verdicts[i] = (uint32_t)r;
        off += lens[i];
    }
    ebpfjit_loop_end(&lp);
    clear_run(st);
    ebpfjit_leave();
    return (int64_t)i;
}

_Static_assert(EBPFJIT_PKT_OUT_MAX == EBPFJIT_PAGE_SIZE + EBPFJIT_ETH_HLEN,
               "EBPFJIT_PKT_OUT_MAX: one page plus a pushed-back Ethernet header");

int64_t ebpfjit_pkt_run_batch_out(const struct ebpfjit_runner *rn, const char *data,
                                  const uint32_t *lens, uint64_t n, uint32_t *verdicts,
                                  char *out, uint64_t out_cap, uint32_t *out_lens,
                                  uint64_t *out_used)
{
    union pkt_model m;
    struct ebpfjit_state *st = ebpfjit_enter();
    struct ebpfjit_loop lp;
    uint64_t i, off = 0, used = 0, olen, pad;
    const uint8_t *res;
    int64_t r;

    *out_used = 0;
    if (!st) {
        ebpfjit_nesting_failed();
        return 0;
    }
    st->status = EBPFJIT_OK;
    ebpfjit_loop_begin(&lp, rn->prog, st, rn->engine);
    /* Stop before a packet whose output might not fit: an output packet is at most one page
     * (the model's frame/buffer) plus the socket filter's pushed-back Ethernet header. */
    for (i = 0; i < n && out_cap - used >= EBPFJIT_PKT_OUT_MAX; i++) {
        r = pkt_once(rn, &lp, &m, (const uint8_t *)data + off, lens[i]);
        if (r < 0)
            break;
        verdicts[i] = (uint32_t)r;
        res = pkt_output(rn, &m, &olen, &pad);
        memset(out + used, 0, pad);
        memcpy(out + used + pad, res, olen);
        out_lens[i] = (uint32_t)(pad + olen);
        used += pad + olen;
        off += lens[i];
    }
    ebpfjit_loop_end(&lp);
    clear_run(st);
    ebpfjit_leave();
    *out_used = used;
    return (int64_t)i;
}

static uint32_t rec32(const uint8_t *p, int swap)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

int64_t ebpfjit_pkt_run_pcap(const struct ebpfjit_runner *rn, const uint8_t *buf, uint64_t len,
                             int swap, uint32_t max_rec, uint64_t max_n, uint32_t *verdicts,
                             uint64_t *counts, uint64_t *consumed, int *stop)
{
    union pkt_model m;
    struct ebpfjit_state *st = ebpfjit_enter();
    struct ebpfjit_loop lp;
    uint64_t n = 0, off = 0;
    uint32_t incl, v;
    int64_t r;

    *consumed = 0;
    *stop = 0;
    if (!st) {
        ebpfjit_nesting_failed();
        *stop = 2;
        return 0;
    }
    st->status = EBPFJIT_OK;
    ebpfjit_loop_begin(&lp, rn->prog, st, rn->engine);
    while (n < max_n && len - off >= 16) {
        incl = rec32(buf + off + 8, swap);
        if (incl > max_rec) {
            *stop = 1;
            break;
        }
        if (len - off - 16 < incl)
            break;
        /* The packet is copied into the model by pkt_once: the file's bytes stay read-only. */
        r = pkt_once(rn, &lp, &m, buf + off + 16, incl);
        if (r < 0) {
            *stop = r == EBPFJIT_PKT_REFUSED ? 3 : 2;
            break;
        }
        v = (uint32_t)r;
        verdicts[n++] = v;
        counts[v < EBPFJIT_COUNTED_VERDICTS ? v : EBPFJIT_COUNTED_VERDICTS]++;
        off += 16 + (uint64_t)incl;
    }
    ebpfjit_loop_end(&lp);
    clear_run(st);
    ebpfjit_leave();
    *consumed = off;
    return (int64_t)n;
}

static struct ebpfjit_skb *skb_of(struct ebpfjit_state *st, uint64_t ctx)
{
    return run_ctx_of(st, ctx, EBPFJIT_CTX_SKB, offsetof(struct ebpfjit_skb, shadow));
}

uint64_t ebpfjit_helper_skb_load_bytes(uint64_t ctx, uint64_t offset, uint64_t to, uint64_t len,
                                       uint64_t a5)
{
    struct ebpfjit_state *st = ebpfjit_current();
    struct ebpfjit_skb *s = skb_of(st, ctx);
    uint32_t off = (uint32_t)offset, n = (uint32_t)len;

    if (!s || !n || !ebpfjit_access_ok(st, to, n, 1))
        return bad_call(st);
    if (off > INT32_MAX || n > s->len || off > s->len - n) {
        memset((void *)(uintptr_t)to, 0, n);
        return (uint64_t)-EFAULT;
    }
    memmove((void *)(uintptr_t)to, s->buf + s->data + off, n);
    return 0;
}

#define BPF_F_RECOMPUTE_CSUM (1ULL << 0)
#define BPF_F_INVALIDATE_HASH (1ULL << 1)
#define BPF_F_HDR_FIELD_MASK 0xfULL
#define BPF_F_PSEUDO_HDR (1ULL << 4)
#define BPF_F_MARK_MANGLED_0 (1ULL << 5)
#define BPF_F_MARK_ENFORCE (1ULL << 6)
#define BPF_F_IPV6 (1ULL << 7)

uint64_t ebpfjit_helper_skb_store_bytes(uint64_t ctx, uint64_t offset, uint64_t from, uint64_t len,
                                        uint64_t flags)
{
    struct ebpfjit_state *st = ebpfjit_current();
    struct ebpfjit_skb *s = skb_of(st, ctx);
    uint32_t off = (uint32_t)offset, n = (uint32_t)len;

    if (!s || !n || !ebpfjit_access_ok(st, from, n, 0))
        return bad_call(st);
    if (flags & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH))
        return (uint64_t)-EINVAL;
    if (off > 0xffff)
        return (uint64_t)-EFAULT;
    if ((uint64_t)off + n > s->len)
        return (uint64_t)-EFAULT;
    memmove(s->buf + s->data + off, (const void *)(uintptr_t)from, n);
    if (flags & BPF_F_INVALIDATE_HASH)
        put32(shadow_bytes(s), SKB_HASH, 0);
    return 0;
}

/* Ones'-complement arithmetic as include/net/checksum.h (generic C, same results as x86). */
static uint32_t csum_add(uint32_t a, uint32_t b)
{
    uint32_t r = a + b;
    return r + (r < b);
}

static uint32_t csum_sub(uint32_t a, uint32_t b)
{
    return csum_add(a, ~b);
}

static uint16_t csum_fold(uint32_t sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint16_t csum16_add(uint16_t csum, uint16_t addend)
{
    uint16_t res = (uint16_t)(csum + addend);
    return (uint16_t)(res + (res < addend));
}

static void csum_replace4(uint8_t *p, uint32_t from, uint32_t to)
{
    uint16_t sum;
    uint32_t tmp;
    memcpy(&sum, p, 2);
    tmp = csum_sub(~(uint32_t)sum, from);
    sum = csum_fold(csum_add(tmp, to));
    memcpy(p, &sum, 2);
}

static void csum_replace2(uint8_t *p, uint16_t from, uint16_t to)
{
    uint16_t sum;
    memcpy(&sum, p, 2);
    sum = (uint16_t)~csum16_add(csum16_add((uint16_t)~sum, (uint16_t)~from), to);
    memcpy(p, &sum, 2);
}

static void csum_replace_by_diff(uint8_t *p, uint32_t diff)
{
    uint16_t sum;
    memcpy(&sum, p, 2);
    sum = csum_fold(csum_add(diff, ~(uint32_t)sum));
    memcpy(p, &sum, 2);
}

/* Shared by l3/l4: 0 and the field pointer, or a negative errno. */
static int64_t csum_field(struct ebpfjit_skb *s, uint32_t off, uint8_t **p)
{
    if (off > 0xffff || (off & 1))
        return -EFAULT;
    if ((uint64_t)off + 2 > s->len)
        return -EFAULT;
    *p = s->buf + s->data + off;
    return 0;
}

static int64_t apply_csum(uint8_t *p, uint64_t from, uint64_t to, uint64_t flags)
{
    switch (flags & BPF_F_HDR_FIELD_MASK) {
    case 0:
        if (from != 0)
            return -EINVAL;
        csum_replace_by_diff(p, (uint32_t)to);
        return 0;
    case 2:
        csum_replace2(p, (uint16_t)from, (uint16_t)to);
        return 0;
    case 4:
        csum_replace4(p, (uint32_t)from, (uint32_t)to);
        return 0;
    default:
        return -EINVAL;
    }
}

uint64_t ebpfjit_helper_l3_csum_replace(uint64_t ctx, uint64_t offset, uint64_t from, uint64_t to,
                                        uint64_t flags)
{
    struct ebpfjit_state *st = ebpfjit_current();
    struct ebpfjit_skb *s = skb_of(st, ctx);
    uint8_t *p;
    int64_t rc;

    if (!s)
        return bad_call(st);
    if (flags & ~BPF_F_HDR_FIELD_MASK)
        return (uint64_t)-EINVAL;
    rc = csum_field(s, (uint32_t)offset, &p);
    if (rc)
        return (uint64_t)rc;
    return (uint64_t)apply_csum(p, from, to, flags);
}

uint64_t ebpfjit_helper_l4_csum_replace(uint64_t ctx, uint64_t offset, uint64_t from, uint64_t to,
                                        uint64_t flags)
{
    struct ebpfjit_state *st = ebpfjit_current();
    struct ebpfjit_skb *s = skb_of(st, ctx);
    int mmzero = (flags & BPF_F_MARK_MANGLED_0) != 0, mforce = (flags & BPF_F_MARK_ENFORCE) != 0;
    uint16_t cur;
    uint8_t *p;
    int64_t rc;

    if (!s)
        return bad_call(st);
    if (flags & ~(BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR |
                  BPF_F_HDR_FIELD_MASK | BPF_F_IPV6))
        return (uint64_t)-EINVAL;
    rc = csum_field(s, (uint32_t)offset, &p);
    if (rc)
        return (uint64_t)rc;
    memcpy(&cur, p, 2);
    if (mmzero && !mforce && !cur)
        return 0;
    /* A test-run skb is CHECKSUM_NONE: BPF_F_PSEUDO_HDR changes only skb->csum, which no
     * program can observe, so the field update is the same with or without it. */
    rc = apply_csum(p, from, to, flags);
    if (rc)
        return (uint64_t)rc;
    memcpy(&cur, p, 2);
    if (mmzero && !cur) {
        cur = 0xffff;   /* CSUM_MANGLED_0 */
        memcpy(p, &cur, 2);
    }
    return 0;
}

/* bpf_csum_diff since v6.13 (one algorithm on every architecture, any length): partial sums
 * as x86's csum_partial (little-endian words, end-around carry), folded to 16 bits. */
static uint32_t csum_partial(const uint8_t *p, uint32_t len, uint32_t sum)
{
    uint64_t acc = sum;
    uint32_t i = 0, w;
    uint16_t h;
    for (; i + 4 <= len; i += 4) {
        memcpy(&w, p + i, 4);
        acc += w;
    }
    if (len & 2) {
        memcpy(&h, p + i, 2);
        acc += h;
        i += 2;
    }
    if (len & 1)
        acc += p[i];
    acc = (acc & 0xffffffffULL) + (acc >> 32);
    acc = (acc & 0xffffffffULL) + (acc >> 32);
    return (uint32_t)acc;
}

static uint16_t csum_from32to16(uint32_t sum)
{
    sum += (sum >> 16) | (sum << 16);
    return (uint16_t)(sum >> 16);
}

uint64_t ebpfjit_helper_csum_diff(uint64_t from, uint64_t from_size, uint64_t to, uint64_t to_size,
                                  uint64_t seed)
{
    struct ebpfjit_state *st = ebpfjit_current();
    uint32_t fs = (uint32_t)from_size, ts = (uint32_t)to_size, ret = (uint32_t)seed;

    if ((fs && !ebpfjit_access_ok(st, from, fs, 0)) || (ts && !ebpfjit_access_ok(st, to, ts, 0)))
        return bad_call(st);
    if (fs && ts)
        ret = csum_sub(csum_partial((const uint8_t *)(uintptr_t)to, ts, ret),
                       csum_partial((const uint8_t *)(uintptr_t)from, fs, 0));
    else if (ts)
        ret = csum_partial((const uint8_t *)(uintptr_t)to, ts, ret);
    else if (fs)
        ret = ~csum_partial((const uint8_t *)(uintptr_t)from, fs, ~ret);
    return csum_from32to16(ret);
}
