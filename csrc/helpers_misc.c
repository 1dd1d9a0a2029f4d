/* helpers_misc.c: the builtin helpers that are neither map nor packet helpers (time, random,
 * cpu, task identity, probe reads, trace_printk / snprintf / strncmp, bpf_loop), the per-env
 * trace_printk log, callback invocation, and the installer of every builtin helper.
 *
 * Memory rule: a helper reads or writes program memory only after ebpfjit_access_ok. Where the
 * kernel verifier would have rejected the call (a destination the program cannot write) the run
 * stops with EBPFJIT_ERR_HELPER; where the kernel checks at run time (probe reads of arbitrary
 * addresses) the helper returns the kernel's errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "contexts.h"
#include "maps.h"
#include "runtime_api.h"

/* The maps engineer's installer may not be linked in every build (weak: NULL then). */
#pragma weak ebpfjit_install_map_helpers

#define BPF_MAX_LOOPS (8 * 1024 * 1024)
#define MAX_BPRINTF_BUF 1024
#define FIELD_WIDTH_MAX ((1 << 23) - 1)   /* lib/vsprintf.c: widths are clamped to this */
#define MAX_BPRINTF_VARARGS 12
#define MAX_TRACE_PRINTK_VARARGS 3

static uint64_t bad_call(struct ebpfjit_state *st)
{
    if (st)
        ebpfjit_fault(st, EBPFJIT_ERR_HELPER, -1, 0, 0);
    return 0;
}

static void *ptr(uint64_t a)
{
    return (void *)(uintptr_t)a;
}

/* --- time, random, identity --------------------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t ebpfjit_helper_ktime_get_ns(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                     uint64_t a5)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t ebpfjit_helper_ktime_get_boot_ns(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                          uint64_t a5)
{
    return clock_ns(CLOCK_BOOTTIME);
}

uint64_t ebpfjit_helper_ktime_get_coarse_ns(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                            uint64_t a5)
{
    return clock_ns(CLOCK_MONOTONIC_COARSE);
}

/* Per-thread xoshiro-style generator (the kernel's is per-CPU prandom_u32_state). */
static __thread uint64_t rng_state;

uint64_t ebpfjit_helper_get_prandom_u32(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                        uint64_t a5)
{
    uint64_t z;
    if (!rng_state)
        rng_state = clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)syscall(SYS_gettid) << 32) ^
                    0x9e3779b97f4a7c15ULL;
    z = (rng_state += 0x9e3779b97f4a7c15ULL);   /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

uint64_t ebpfjit_helper_get_smp_processor_id(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                             uint64_t a5)
{
    struct ebpfjit_state *st = ebpfjit_current();
    return st ? st->cpu : 0;
}

uint64_t ebpfjit_helper_get_current_pid_tgid(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                             uint64_t a5)
{
    return ((uint64_t)(uint32_t)getpid() << 32) | (uint32_t)syscall(SYS_gettid);
}

uint64_t ebpfjit_helper_get_current_comm(uint64_t buf, uint64_t size, uint64_t a3, uint64_t a4,
                                         uint64_t a5)
{
    struct ebpfjit_state *st = ebpfjit_current();
    char comm[17] = {0};
    uint32_t n = (uint32_t)size;

    if (!n)
        return 0;
    if (!st || !ebpfjit_access_ok(st, buf, n, 1))
        return bad_call(st);
    prctl(PR_GET_NAME, comm, 0, 0, 0);
    /* strscpy_pad: truncate, NUL-terminate, zero the rest. */
    memset(ptr(buf), 0, n);
    memcpy(ptr(buf), comm, strnlen(comm, n - 1));
    return 0;
}

/* --- probe reads ---------------------------------------------------------------------------- */

/* What the kernel returns for an unreadable source: the _kernel variants refuse user-half
 * addresses with -ERANGE before trying (copy_from_kernel_nofault_allowed), everything else
 * faults with -EFAULT. */
static uint64_t unreadable(uint64_t src, int kernel)
{
    return kernel && src < 0xffff800000000000ULL ? (uint64_t)-ERANGE : (uint64_t)-EFAULT;
}

static uint64_t probe_read(uint64_t dst, uint64_t size, uint64_t src, int kernel)
{
    struct ebpfjit_state *st = ebpfjit_current();
    uint32_t n = (uint32_t)size;

    if (!st || (n && !ebpfjit_access_ok(st, dst, n, 1)))
        return bad_call(st);
    if (!n)
        return 0;
    /* Only memory the runtime knows is "mapped"; anything else faults as in the kernel. */
    if (!ebpfjit_access_ok(st, src, n, 0)) {
        memset(ptr(dst), 0, n);
        return unreadable(src, kernel);
    }
    memmove(ptr(dst), ptr(src), n);
    return 0;
}

static uint64_t probe_read_str_walk(uint64_t dst, uint64_t size, uint64_t src, int kernel)
{
    struct ebpfjit_state *st = ebpfjit_current();
    uint32_t n = (uint32_t)size, i;
    uint8_t *d = ptr(dst);

    if (!st || (n && !ebpfjit_access_ok(st, dst, n, 1)))
        return bad_call(st);
    if (!n)
        return 0;
    for (i = 0; i + 1 < n; i++) {
        uint8_t c;
        if (!ebpfjit_access_ok(st, src + i, 1, 0)) {
            memset(d, 0, n);
            return unreadable(src, kernel);
        }
        c = *(const uint8_t *)ptr(src + i);
        d[i] = c;
        if (!c)
            return i + 1;
    }
    d[n - 1] = 0;
    return n;
}

/* String helpers are charged to the budget a unit per byte they walk, as an instruction of a
 * loop doing the same would be: a program looping over them is stopped by its budget. */
static uint64_t probe_read_str(uint64_t dst, uint64_t size, uint64_t src, int kernel)
{
    uint64_t r = probe_read_str_walk(dst, size, src, kernel);
    struct ebpfjit_state *st = ebpfjit_current();

    if (st && (int64_t)r > 0 && ebpfjit_budget_charge(st, r))
        return 0;
    return r;
}

uint64_t ebpfjit_helper_probe_read(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4,
                                   uint64_t a5)
{
    return probe_read(dst, size, src, 0);
}

uint64_t ebpfjit_helper_probe_read_str(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4,
                                       uint64_t a5)
{
    return probe_read_str(dst, size, src, 0);
}

uint64_t ebpfjit_helper_probe_read_kernel(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4,
                                          uint64_t a5)
{
    return probe_read(dst, size, src, 1);
}

uint64_t ebpfjit_helper_probe_read_kernel_str(uint64_t dst, uint64_t size, uint64_t src,
                                              uint64_t a4, uint64_t a5)
{
    return probe_read_str(dst, size, src, 1);
}

/* --- bpf_bprintf_prepare + bstr_printf ------------------------------------------------------ */

static int is_print_or_space(int c)
{
    return (c >= 0x20 && c < 0x7f) || (c >= 9 && c <= 13);
}

static int is_space_or_punct(int c)
{
    return c == 0 || (c >= 9 && c <= 13) || c == ' ' ||
           (c > 0x20 && c < 0x7f && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                                      (c >= 'A' && c <= 'Z')));
}

struct outbuf {
    char *p;
    uint64_t cap, len;   /* len counts what would have been written (vsnprintf semantics) */
};

/* Appends n bytes (only what fits is copied: the work is bounded by the buffer, not by n). */
static void out_str(struct outbuf *o, const char *s, size_t n)
{
    uint64_t room = o->cap && o->len < o->cap - 1 ? o->cap - 1 - o->len : 0;
    if (room)
        memcpy(o->p + o->len, s, n < room ? n : room);
    o->len += n;
}

/* A string argument: copied only from memory the runtime knows; a bad pointer prints "" (the
 * kernel's bpf_trace_copy_string failure). */
static void copy_arg_string(struct ebpfjit_state *st, uint64_t src, char *dst, size_t cap)
{
    size_t i;
    for (i = 0; i + 1 < cap; i++) {
        if (!st || !ebpfjit_access_ok(st, src + i, 1, 0)) {
            i = 0;
            break;
        }
        dst[i] = *(const char *)ptr(src + i);
        if (!dst[i])
            break;
    }
    dst[i] = 0;
}

int64_t ebpfjit_format(struct ebpfjit_state *st, char *out, uint64_t out_len, const char *fmt,
                       uint64_t fmt_len, const uint64_t *args, uint32_t nargs)
{
    struct outbuf o = {out, out_len, 0};
    uint32_t num_spec = 0;
    uint64_t i, n;

    n = strnlen(fmt, fmt_len);
    if (n == fmt_len)
        return -EINVAL;     /* not NUL-terminated within fmt_size */
    if (st && ebpfjit_budget_charge(st, n + 1))     /* the format's bytes (see probe_read_str) */
        return -EINVAL;
    for (i = 0; i < n; i++) {
        char spec[32], piece[MAX_BPRINTF_BUF];
        uint64_t start = i, k, width;
        int is_long = 0, plen;
        char conv;

        if (!is_print_or_space((unsigned char)fmt[i]))
            return -EINVAL;
        if (fmt[i] != '%') {
            out_str(&o, fmt + i, 1);
            continue;
        }
        if (fmt[i + 1] == '%') {
            out_str(&o, "%", 1);
            i++;
            continue;
        }
        if (num_spec >= nargs)
            return -EINVAL;
        i++;
        while (fmt[i] == '0' || fmt[i] == '+' || fmt[i] == '-' || fmt[i] == ' ')
            i++;
        width = 0;
        if (fmt[i] >= '1' && fmt[i] <= '9') {
            while (fmt[i] >= '0' && fmt[i] <= '9') {
                if (width <= FIELD_WIDTH_MAX)
                    width = width * 10 + (uint64_t)(fmt[i] - '0');
                i++;
            }
        }
        /* The flags part verbatim, then the width as the kernel's vsprintf takes it
         * (set_field_width: clamped to FIELD_WIDTH_MAX), for the C library's printf. Padding
         * costs its width in budget, as the work of an instruction each. */
        k = i - start;
        if (k > 20)
            return -EINVAL;
        memcpy(spec, fmt + start, k);
        if (width) {
            size_t flags = 0;
            while (spec[1 + flags] == '0' || spec[1 + flags] == '+' || spec[1 + flags] == '-' ||
                   spec[1 + flags] == ' ')
                flags++;
            if (width > FIELD_WIDTH_MAX)
                width = FIELD_WIDTH_MAX;
            k = 1 + flags + (size_t)snprintf(spec + 1 + flags, sizeof(spec) - 1 - flags, "%llu",
                                             (unsigned long long)width);
            if (st && ebpfjit_budget_charge(st, width))
                return -EINVAL;
        }
        conv = fmt[i];
        if (conv == 'p') {
            char c1 = fmt[i + 1];
            if ((c1 == 'k' || c1 == 'u') && fmt[i + 2] == 's') {
                i += 2;
                conv = 's';
                goto string;
            }
            if (c1 == 'K' || c1 == 'x' || c1 == 's' || c1 == 'S')
                i++;
            else if (!is_space_or_punct((unsigned char)c1))
                return -EINVAL;     /* %pI4 etc. are not modelled */
            /* Raw pointer value: the kernel hashes plain %p, which nobody can reproduce. */
            plen = snprintf(piece, sizeof(piece), "0x%016llx",
                            (unsigned long long)args[num_spec]);
            out_str(&o, piece, (size_t)plen);
            num_spec++;
            continue;
        }
        if (conv == 's') {
string:
            if (!is_space_or_punct((unsigned char)fmt[i + 1]))
                return -EINVAL;
            {
                char s[MAX_BPRINTF_BUF];
                copy_arg_string(st, args[num_spec], s, sizeof(s));
                if (st && ebpfjit_budget_charge(st, strlen(s) + 1))
                    return -EINVAL;
                spec[k] = 's';
                spec[k + 1] = 0;
                plen = snprintf(piece, sizeof(piece), spec, s);
            }
            out_str(&o, piece, plen < 0 ? 0 : (size_t)plen >= sizeof(piece) ? sizeof(piece) - 1
                                                                            : (size_t)plen);
            num_spec++;
            continue;
        }
        if (conv == 'c') {
            spec[k] = 'c';
            spec[k + 1] = 0;
            plen = snprintf(piece, sizeof(piece), spec, (int)(char)args[num_spec]);
            out_str(&o, piece, (size_t)plen);
            num_spec++;
            continue;
        }
        if (fmt[i] == 'l') {
            is_long = 1;
            i++;
        }
        if (fmt[i] == 'l')
            i++;
        conv = fmt[i];
        if (conv != 'i' && conv != 'd' && conv != 'u' && conv != 'x' && conv != 'X')
            return -EINVAL;
        memcpy(spec + k, "ll", 2);
        spec[k + 2] = conv;
        spec[k + 3] = 0;
        if (conv == 'i' || conv == 'd') {
            long long v = is_long ? (long long)args[num_spec]
                                  : (long long)(int32_t)args[num_spec];
            plen = snprintf(piece, sizeof(piece), spec, v);
        } else {
            unsigned long long v = is_long ? (unsigned long long)args[num_spec]
                                           : (unsigned long long)(uint32_t)args[num_spec];
            plen = snprintf(piece, sizeof(piece), spec, v);
        }
        out_str(&o, piece, plen < 0 ? 0 : (size_t)plen);
        num_spec++;
    }
    if (o.cap)
        o.p[o.len < o.cap ? o.len : o.cap - 1] = 0;
    return (int64_t)o.len;
}

/* --- trace_printk log: per env, drained by Python ------------------------------------------ */

struct trace_log {
    struct ebpfjit_env *env;
    char *data;
    size_t len, cap;
    struct trace_log *next;
};

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trace_log *trace_logs;
#define TRACE_LOG_MAX (16u << 20)   /* an undrained log stops growing; lines are then dropped */

int ebpfjit_trace_enable(struct ebpfjit_env *env)
{
    struct trace_log *l;
    int rc = 0;

    pthread_mutex_lock(&trace_lock);
    for (l = trace_logs; l; l = l->next)
        if (l->env == env)
            goto out;
    l = calloc(1, sizeof(*l));
    if (!l) {
        rc = -ENOMEM;
        goto out;
    }
    l->env = env;
    l->next = trace_logs;
    trace_logs = l;
out:
    pthread_mutex_unlock(&trace_lock);
    return rc;
}

void ebpfjit_trace_disable(struct ebpfjit_env *env)
{
    struct trace_log **pp, *l;

    pthread_mutex_lock(&trace_lock);
    for (pp = &trace_logs; (l = *pp); pp = &l->next) {
        if (l->env == env) {
            *pp = l->next;
            free(l->data);
            free(l);
            break;
        }
    }
    pthread_mutex_unlock(&trace_lock);
}

int64_t ebpfjit_trace_read(struct ebpfjit_env *env, char *buf, uint64_t len)
{
    struct trace_log *l;
    int64_t rc = 0;

    pthread_mutex_lock(&trace_lock);
    for (l = trace_logs; l; l = l->next) {
        if (l->env != env)
            continue;
        if (l->len > len) {
            rc = -(int64_t)l->len;
            break;
        }
        memcpy(buf, l->data, l->len);
        rc = (int64_t)l->len;
        l->len = 0;
        break;
    }
    pthread_mutex_unlock(&trace_lock);
    return rc;
}

static void trace_append(struct ebpfjit_env *env, const char *line, size_t n)
{
    struct trace_log *l;

    pthread_mutex_lock(&trace_lock);
    for (l = trace_logs; l; l = l->next) {
        if (l->env != env)
            continue;
        if (l->len + n + 1 > l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 4096;
            char *p;
            while (cap < l->len + n + 1)
                cap *= 2;
            if (cap > TRACE_LOG_MAX || !(p = realloc(l->data, cap)))
                break;
            l->data = p;
            l->cap = cap;
        }
        memcpy(l->data + l->len, line, n);
        l->data[l->len + n] = '\n';
        l->len += n + 1;
        break;
    }
    pthread_mutex_unlock(&trace_lock);
}

uint64_t ebpfjit_helper_trace_printk(uint64_t fmt, uint64_t fmt_size, uint64_t a1, uint64_t a2,
                                     uint64_t a3)
{
    struct ebpfjit_state *st = ebpfjit_current();
    uint64_t args[MAX_TRACE_PRINTK_VARARGS] = {a1, a2, a3};
    char buf[MAX_BPRINTF_BUF];
    uint32_t n = (uint32_t)fmt_size;
    int64_t len;
    size_t shown;

    if (!st || !n || !ebpfjit_access_ok(st, fmt, n, 0))
        return bad_call(st);
    len = ebpfjit_format(st, buf, sizeof(buf), ptr(fmt), n, args, MAX_TRACE_PRINTK_VARARGS);
    if (len < 0)
        return (uint64_t)len;
    shown = strlen(buf);
    /* trace_pipe shows one line per call; a trailing newline in the format is that line's end. */
    if (shown && buf[shown - 1] == '\n')
        shown--;
    if (st->env)
        trace_append(st->env, buf, shown);
    return (uint64_t)len;
}

uint64_t ebpfjit_helper_snprintf(uint64_t str, uint64_t str_size, uint64_t fmt, uint64_t data,
                                 uint64_t data_len)
{
    struct ebpfjit_state *st = ebpfjit_current();
    uint32_t size = (uint32_t)str_size, dlen = (uint32_t)data_len;
    uint64_t args[MAX_BPRINTF_VARARGS] = {0};
    char tmp[MAX_BPRINTF_BUF];
    int64_t len;
    size_t flen;

    if (!st || (size && !ebpfjit_access_ok(st, str, size, 1)))
        return bad_call(st);
    if (dlen % 8 || dlen > MAX_BPRINTF_VARARGS * 8 || (dlen && !data))
        return (uint64_t)-EINVAL;
    if (dlen && !ebpfjit_access_ok(st, data, dlen, 0))
        return bad_call(st);
    /* The verifier requires a NUL-terminated constant string for fmt. */
    for (flen = 0;; flen++) {
        if (!ebpfjit_access_ok(st, fmt + flen, 1, 0))
            return bad_call(st);
        if (!*(const char *)ptr(fmt + flen))
            break;
    }
    memcpy(args, ptr(data), dlen);
    len = ebpfjit_format(st, tmp, sizeof(tmp), ptr(fmt), flen + 1, args, dlen / 8);
    if (len < 0)
        return (uint64_t)len;
    if (size) {
        size_t copy = (size_t)len < size - 1 ? (size_t)len : size - 1;
        if (copy > sizeof(tmp) - 1)
            copy = sizeof(tmp) - 1;
        memcpy(ptr(str), tmp, copy);
        ((char *)ptr(str))[copy] = 0;
    }
    return (uint64_t)(len + 1);
}

uint64_t ebpfjit_helper_strncmp(uint64_t s1, uint64_t s1_sz, uint64_t s2, uint64_t a4, uint64_t a5)
{
    struct ebpfjit_state *st = ebpfjit_current();
    uint32_t n = (uint32_t)s1_sz, i;
    uint64_t r = 0;

    if (!st || (n && !ebpfjit_access_ok(st, s1, n, 0)))
        return bad_call(st);
    /* lib/string.c strncmp: -1/0/1, stops at the first NUL of either string. */
    for (i = 0; i < n; i++) {
        uint8_t c1, c2;
        if (!ebpfjit_access_ok(st, s2 + i, 1, 0))
            return bad_call(st);
        c1 = *(const uint8_t *)ptr(s1 + i);
        c2 = *(const uint8_t *)ptr(s2 + i);
        if (c1 != c2) {
            r = c1 < c2 ? (uint64_t)-1 : 1;
            break;
        }
        if (!c1)
            break;
    }
    /* The bytes compared (see probe_read_str). */
    if (ebpfjit_budget_charge(st, i < n ? i + 1 : n))
        return 0;
    return r;
}

/* --- callbacks ------------------------------------------------------------------------------ */

uint64_t ebpfjit_invoke_callback(struct ebpfjit_state *st, uint64_t callback, uint64_t a1,
                                 uint64_t a2, uint64_t a3, uint64_t a4)
{
#ifdef EBPFJIT_HAVE_CALLBACKS
    struct ebpfjit_prog *prog = st->prog;
    uint32_t pc = (uint32_t)(callback & EBPFJIT_CALLBACK_PC_MASK), depth = st->depth;
    uint64_t r0;

    /* Both engines accept the same targets: the interpreter's functions other than pc 0. */
    if ((callback & ~EBPFJIT_CALLBACK_PC_MASK) != EBPFJIT_CALLBACK_TAG || !prog ||
        pc >= prog->nslots || !ebpfjit_interp_is_callback(prog, pc)) {
        ebpfjit_fault(st, EBPFJIT_ERR_HELPER, -1, 0, 0);
        st->fault_info = callback;
        return 0;
    }
    /* A callback is a call: it spends budget and takes a frame, as a bpf-to-bpf call does,
     * and is not allowed while holding a lock. */
    if (ebpfjit_budget_charge(st, 1))
        return 0;
    if (st->nlocks) {
        ebpfjit_lock_held(st, -1, EBPFJIT_LOCK_REASON_CALL);
        return 0;
    }
    if (depth >= EBPFJIT_MAX_FRAMES) {
        ebpfjit_fault(st, EBPFJIT_ERR_CALL_DEPTH, -1, 0, 0);
        return 0;
    }
    st->depth = depth + 1;
    if (st->engine == EBPFJIT_ENGINE_JIT && prog->jit_callback)
        r0 = prog->jit_callback(st, pc, a1, a2, a3, a4, 0);
    else
        r0 = ebpfjit_interp_call(prog, st, pc, a1, a2, a3, a4, 0);
    if (st->status == EBPFJIT_OK && st->nlocks) {
        /* The callback returned holding a lock (none was held when it was called). */
        ebpfjit_lock_held(st, -1, EBPFJIT_LOCK_REASON_CALLBACK_EXIT);
        return 0;
    }
    if (st->status == EBPFJIT_OK)
        st->depth = depth;   /* on a fault the callback's frames stay described */
    if (st->status == EBPFJIT_TAIL_CALL) {
        /* The verifier forbids tail calls in callbacks. */
        st->status = EBPFJIT_OK;
        ebpfjit_fault(st, EBPFJIT_ERR_HELPER, st->fault_pc, 0, 0);
    }
    return r0;
#else
    /* The engines do not yet yield callback values (lddw src=4): see csrc/contexts.h. */
    ebpfjit_fault(st, EBPFJIT_ERR_BAD_INSN, -1, 0, 0);
    st->fault_info = callback;
    return 0;
#endif
}

uint64_t ebpfjit_helper_loop(uint64_t nr_loops, uint64_t callback, uint64_t ctx, uint64_t flags,
                             uint64_t a5)
{
    struct ebpfjit_state *st = ebpfjit_current();
    uint32_t n = (uint32_t)nr_loops, i;

    if (!st)
        return 0;
    if (flags)
        return (uint64_t)-EINVAL;
    if (n > BPF_MAX_LOOPS)
        return (uint64_t)-E2BIG;
    for (i = 0; i < n; i++) {
        uint64_t ret = ebpfjit_invoke_callback(st, callback, i, ctx, 0, 0);
        if (st->status)
            return 0;
        /* 0: continue, 1: stop (the verifier allows only these two). */
        if (ret)
            return (uint64_t)i + 1;
    }
    return i;
}

/* --- installation --------------------------------------------------------------------------- */

void ebpfjit_install_builtin_helpers(struct ebpfjit_env *env)
{
    static const struct { uint32_t id; ebpfjit_helper_fn fn; } table[] = {
        {4, ebpfjit_helper_probe_read},
        {5, ebpfjit_helper_ktime_get_ns},
        {6, ebpfjit_helper_trace_printk},
        {7, ebpfjit_helper_get_prandom_u32},
        {8, ebpfjit_helper_get_smp_processor_id},
        {9, ebpfjit_helper_skb_store_bytes},
        {10, ebpfjit_helper_l3_csum_replace},
        {11, ebpfjit_helper_l4_csum_replace},
        {14, ebpfjit_helper_get_current_pid_tgid},
        {16, ebpfjit_helper_get_current_comm},
        {26, ebpfjit_helper_skb_load_bytes},
        {28, ebpfjit_helper_csum_diff},
        {44, ebpfjit_helper_xdp_adjust_head},
        {45, ebpfjit_helper_probe_read_str},
        {54, ebpfjit_helper_xdp_adjust_meta},
        {65, ebpfjit_helper_xdp_adjust_tail},
        {112, ebpfjit_helper_probe_read},          /* probe_read_user */
        {113, ebpfjit_helper_probe_read_kernel},
        {114, ebpfjit_helper_probe_read_str},      /* probe_read_user_str */
        {115, ebpfjit_helper_probe_read_kernel_str},
        {125, ebpfjit_helper_ktime_get_boot_ns},
        {160, ebpfjit_helper_ktime_get_coarse_ns},
        {165, ebpfjit_helper_snprintf},
        {181, ebpfjit_helper_loop},
        {182, ebpfjit_helper_strncmp},
    };
    size_t i;

    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        env->helpers[table[i].id] = table[i].fn;
    if (ebpfjit_install_map_helpers)
        ebpfjit_install_map_helpers(env);
}
