/* ringbuf.c: BPF_MAP_TYPE_RINGBUF with the kernel's record format and positions
 * (kernel/bpf/ringbuf.c, consumer side as libbpf's ringbuf.c).
 *
 * Each record is an 8-byte header {u32 len | BUSY | DISCARD, u32 pg_off} followed by the sample,
 * padded to 8 bytes. The data area is mapped twice back to back, as the kernel maps it, so a
 * record crossing the end of the ring is still contiguous for the program and the consumer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "maps.h"

#define RINGBUF_MAX_RECORD_SZ (UINT32_MAX / 4)

struct rb_hdr {
    uint32_t len;
    uint32_t pg_off;
};

int ebpfjit_ringbuf_init(struct ebpfjit_map *m)
{
    struct ebpfjit_ringbuf *rb = calloc(1, sizeof(*rb));
    uint64_t size = m->base.max_entries;
    uint8_t *base;
    int fd;

    if (!rb)
        return -ENOMEM;
    m->rb = rb;
    fd = memfd_create("ebpfjit-ringbuf", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0)
        goto fail_fd;
    base = mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        goto fail_fd;
    if (mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
        mmap(base + size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        munmap(base, 2 * size);
        goto fail_fd;
    }
    close(fd);
    rb->data = base;
    rb->size = size;
    rb->mask = size - 1;
    return 0;

fail_fd:
    close(fd);
    return -ENOMEM;
}

void ebpfjit_ringbuf_free(struct ebpfjit_map *m)
{
    if (!m->rb)
        return;
    if (m->rb->data)
        munmap(m->rb->data, 2 * m->rb->size);
    free(m->rb);
    m->rb = NULL;
}

static inline uint32_t rec_total(uint32_t len)
{
    return ((len & ~(EBPFJIT_RINGBUF_BUSY_BIT | EBPFJIT_RINGBUF_DISCARD_BIT)) +
            EBPFJIT_RINGBUF_HDR_SZ + 7) & ~7U;
}

void *ebpfjit_ringbuf_reserve(struct ebpfjit_map *m, uint64_t size, uint64_t flags)
{
    struct ebpfjit_ringbuf *rb = m->rb;
    uint64_t len, cons, prod, pend, new_prod;
    struct rb_hdr *hdr;

    if (flags || !rb || size > RINGBUF_MAX_RECORD_SZ)
        return NULL;
    len = (size + EBPFJIT_RINGBUF_HDR_SZ + 7) & ~7ULL;
    if (len > rb->size)
        return NULL;
    cons = __atomic_load_n(&rb->consumer_pos, __ATOMIC_ACQUIRE);
    ebpfjit_map_lock(&rb->lock);
    pend = rb->pending_pos;
    prod = rb->producer_pos;
    new_prod = prod + len;
    /* Skip committed records at the front of the pending window (kernel pending_pos). */
    while (pend < prod) {
        uint32_t hl = __atomic_load_n((uint32_t *)(rb->data + (pend & rb->mask)), __ATOMIC_ACQUIRE);
        if (hl & EBPFJIT_RINGBUF_BUSY_BIT)
            break;
        pend += rec_total(hl);
    }
    rb->pending_pos = pend;
    /* The producer may run at most size - 1 bytes ahead of the consumer and of the oldest
     * busy record. */
    if (new_prod - cons > rb->mask || new_prod - pend > rb->mask) {
        ebpfjit_map_unlock(&rb->lock);
        return NULL;
    }
    hdr = (struct rb_hdr *)(rb->data + (prod & rb->mask));
    hdr->len = (uint32_t)size | EBPFJIT_RINGBUF_BUSY_BIT;
    /* The kernel's pg_off locates the ring from a sample; ours is the page of the record. */
    hdr->pg_off = (uint32_t)((prod & rb->mask) >> 12);
    __atomic_store_n(&rb->producer_pos, new_prod, __ATOMIC_RELEASE);
    ebpfjit_map_unlock(&rb->lock);
    return hdr + 1;
}

int ebpfjit_ringbuf_owns(struct ebpfjit_map *m, const void *sample)
{
    struct ebpfjit_ringbuf *rb = m->rb;
    uintptr_t p = (uintptr_t)sample, base;

    if (!rb)
        return 0;
    base = (uintptr_t)rb->data;
    if (p < base + EBPFJIT_RINGBUF_HDR_SZ || p - EBPFJIT_RINGBUF_HDR_SZ - base >= rb->size ||
        (p - base) % 8)
        return 0;
    return !!(__atomic_load_n((uint32_t *)(p - EBPFJIT_RINGBUF_HDR_SZ), __ATOMIC_ACQUIRE) &
              EBPFJIT_RINGBUF_BUSY_BIT);
}

void ebpfjit_ringbuf_commit(struct ebpfjit_map *m, void *sample, uint64_t flags, int discard)
{
    struct ebpfjit_ringbuf *rb = m->rb;
    struct rb_hdr *hdr = (struct rb_hdr *)sample - 1;
    uint32_t new_len = hdr->len ^ EBPFJIT_RINGBUF_BUSY_BIT;
    uint64_t rec_pos, cons_pos;

    if (discard)
        new_len |= EBPFJIT_RINGBUF_DISCARD_BIT;
    __atomic_exchange_n(&hdr->len, new_len, __ATOMIC_ACQ_REL);
    /* Wakeups are only counted: the kernel notifies when the consumer has caught up with this
     * record, unless the flags say otherwise. */
    rec_pos = (uint64_t)((uint8_t *)hdr - rb->data);
    cons_pos = __atomic_load_n(&rb->consumer_pos, __ATOMIC_ACQUIRE) & rb->mask;
    if (flags & EBPFJIT_RB_FORCE_WAKEUP)
        __atomic_fetch_add(&rb->wakeups, 1, __ATOMIC_RELAXED);
    else if (cons_pos == rec_pos && !(flags & EBPFJIT_RB_NO_WAKEUP))
        __atomic_fetch_add(&rb->wakeups, 1, __ATOMIC_RELAXED);
}

int ebpfjit_ringbuf_output(struct ebpfjit_map *m, const void *data, uint64_t size, uint64_t flags)
{
    void *rec;

    if (flags & ~(uint64_t)(EBPFJIT_RB_NO_WAKEUP | EBPFJIT_RB_FORCE_WAKEUP))
        return -EINVAL;
    rec = ebpfjit_ringbuf_reserve(m, size, 0);
    if (!rec)
        return -EAGAIN;
    memcpy(rec, data, size);
    ebpfjit_ringbuf_commit(m, rec, flags, 0);
    return 0;
}

uint64_t ebpfjit_ringbuf_query(struct ebpfjit_map *m, uint64_t flags)
{
    struct ebpfjit_ringbuf *rb = m->rb;
    uint64_t cons, prod;

    if (!rb)
        return 0;
    cons = __atomic_load_n(&rb->consumer_pos, __ATOMIC_ACQUIRE);
    prod = __atomic_load_n(&rb->producer_pos, __ATOMIC_ACQUIRE);
    switch (flags) {
    case EBPFJIT_RB_AVAIL_DATA:
        return prod - cons;
    case EBPFJIT_RB_RING_SIZE:
        return rb->size;
    case EBPFJIT_RB_CONS_POS:
        return cons;
    case EBPFJIT_RB_PROD_POS:
        return prod;
    default:
        return 0;
    }
}

int ebpfjit_ringbuf_consume(struct ebpfjit_map *m, void *buf, uint32_t buflen, uint32_t *len)
{
    struct ebpfjit_ringbuf *rb = m->rb;
    uint64_t cons, prod;
    int rc = 0;

    if (!rb)
        return -EINVAL;
    ebpfjit_map_lock(&rb->consumer_lock);
    cons = rb->consumer_pos;
    for (;;) {
        uint32_t hl, sz;
        prod = __atomic_load_n(&rb->producer_pos, __ATOMIC_ACQUIRE);
        if (cons >= prod)
            break;
        hl = __atomic_load_n((uint32_t *)(rb->data + (cons & rb->mask)), __ATOMIC_ACQUIRE);
        if (hl & EBPFJIT_RINGBUF_BUSY_BIT)
            break;      /* records are consumed in order: a busy one blocks the rest */
        sz = hl & ~(EBPFJIT_RINGBUF_BUSY_BIT | EBPFJIT_RINGBUF_DISCARD_BIT);
        if (!(hl & EBPFJIT_RINGBUF_DISCARD_BIT)) {
            if (sz > buflen) {
                rc = -ENOSPC;
                break;
            }
            memcpy(buf, rb->data + (cons & rb->mask) + EBPFJIT_RINGBUF_HDR_SZ, sz);
            *len = sz;
            rc = 1;
        }
        cons += rec_total(hl);
        __atomic_store_n(&rb->consumer_pos, cons, __ATOMIC_RELEASE);
        if (rc)
            break;
    }
    ebpfjit_map_unlock(&rb->consumer_lock);
    return rc;
}
