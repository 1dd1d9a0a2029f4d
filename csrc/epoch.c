/* epoch.c: epoch-based grace periods (see epoch.h).
 *
 * Each thread that runs programs owns a record holding the global epoch its outermost run
 * started in (0 while it runs none). A removal takes ticket t = global epoch, incremented; runs
 * that started later read an epoch > t and, having read it after the unpublishing store, cannot
 * see the old pointer. So t has passed once no record holds an epoch <= t. The record store and
 * the writer's scan are both sequentially consistent: a run whose store the scan missed loads
 * its pointers after the scan, hence after the unpublishing store.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "epoch.h"

#define EBPFJIT_TLS_IE __attribute__((tls_model("initial-exec")))

struct epoch_rec {
    uint64_t epoch;             /* epoch the thread's outermost run started in; 0 = no run */
    uint32_t nest;              /* runs on the thread (owner only) */
    uint32_t in_use;            /* owned by a live thread (recs_lock) */
    struct epoch_rec *next;     /* the list only grows, so scans take no lock */
    char pad[40];               /* one cache line per record: runs on other threads write theirs */
};

static uint64_t global_epoch = 1;
static struct epoch_rec *recs;
static pthread_mutex_t recs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t rec_key;
static pthread_once_t rec_once = PTHREAD_ONCE_INIT;
/* Runs on threads that could not get a record (out of memory): while any is active, nothing
 * passes. */
static uint32_t anon_runs;

static __thread struct epoch_rec *my_rec EBPFJIT_TLS_IE;
static __thread uint32_t my_anon_nest EBPFJIT_TLS_IE;

struct deferred {
    uint64_t ticket;
    void (*fn)(void *);
    void *arg;
    struct deferred *next;
};

/* In ticket order (tickets are taken under defer_lock). */
static pthread_mutex_t defer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct deferred *defer_head, **defer_tail = &defer_head;
static uint64_t npending;

static void rec_release(void *p)
{
    struct epoch_rec *r = p;

    /* Thread exit: no run is active on it. */
    __atomic_store_n(&r->epoch, 0, __ATOMIC_RELEASE);
    r->nest = 0;
    pthread_mutex_lock(&recs_lock);
    r->in_use = 0;
    pthread_mutex_unlock(&recs_lock);
}

static void rec_key_init(void)
{
    pthread_key_create(&rec_key, rec_release);
}

static struct epoch_rec *rec_get(void)
{
    struct epoch_rec *r;
    void *mem;

    pthread_once(&rec_once, rec_key_init);
    pthread_mutex_lock(&recs_lock);
    for (r = recs; r && r->in_use; r = r->next)
        ;
    if (!r && posix_memalign(&mem, 64, sizeof(*r)) == 0) {
        r = mem;
        memset(r, 0, sizeof(*r));
        r->next = recs;
        __atomic_store_n(&recs, r, __ATOMIC_RELEASE);
    }
    if (r)
        r->in_use = 1;
    pthread_mutex_unlock(&recs_lock);
    if (r) {
        pthread_setspecific(rec_key, r);
        my_rec = r;
    }
    return r;
}

void ebpfjit_epoch_enter(void)
{
    struct epoch_rec *r = my_rec;

    if (__builtin_expect(my_anon_nest != 0, 0)) {
        my_anon_nest++;
        return;
    }
    if (__builtin_expect(!r, 0) && !(r = rec_get())) {
        my_anon_nest = 1;
        __atomic_fetch_add(&anon_runs, 1, __ATOMIC_SEQ_CST);
        return;
    }
    if (r->nest++ == 0) {
        __atomic_store_n(&r->epoch, __atomic_load_n(&global_epoch, __ATOMIC_SEQ_CST),
                         __ATOMIC_SEQ_CST);
        /* Plain loads of the run (engines read slots and regions without atomics) must not
         * move above the store: x86's seq_cst store is already a full barrier. */
#if !defined(__x86_64__) && !defined(__i386__)
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    }
}

static void reclaim(int try_only);

void ebpfjit_epoch_exit(void)
{
    struct epoch_rec *r = my_rec;

    if (__builtin_expect(my_anon_nest != 0, 0)) {
        if (--my_anon_nest == 0)
            __atomic_fetch_sub(&anon_runs, 1, __ATOMIC_SEQ_CST);
        return;
    }
    if (!r || --r->nest)
        return;
    __atomic_store_n(&r->epoch, 0, __ATOMIC_RELEASE);
    /* The run that held work back frees it: memory waits no longer than the runs that could
     * reach it. One relaxed load on the common path. */
    if (__builtin_expect(__atomic_load_n(&npending, __ATOMIC_RELAXED) != 0, 0))
        reclaim(1);
}

uint64_t ebpfjit_epoch_retire(void)
{
    uint64_t t = __atomic_fetch_add(&global_epoch, 1, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return t;
}

/* The epoch of the oldest active run (UINT64_MAX: none; 0: unknown, nothing passes). */
static uint64_t oldest_run(void)
{
    const struct epoch_rec *r;
    uint64_t e, oldest = UINT64_MAX;

    if (__atomic_load_n(&anon_runs, __ATOMIC_SEQ_CST))
        return 0;
    for (r = __atomic_load_n(&recs, __ATOMIC_ACQUIRE); r; r = r->next) {
        e = __atomic_load_n(&r->epoch, __ATOMIC_SEQ_CST);
        if (e && e < oldest)
            oldest = e;
    }
    return oldest;
}

int ebpfjit_epoch_passed(uint64_t ticket)
{
    return ticket < oldest_run();
}

void ebpfjit_defer(void (*fn)(void *), void *arg)
{
    struct deferred *d = malloc(sizeof(*d));

    if (!d)
        return;
    d->fn = fn;
    d->arg = arg;
    d->next = NULL;
    pthread_mutex_lock(&defer_lock);
    d->ticket = ebpfjit_epoch_retire();
    *defer_tail = d;
    defer_tail = &d->next;
    __atomic_fetch_add(&npending, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&defer_lock);
    reclaim(0);
}

/* Takes the due work off the list under the lock and runs it after unlocking (it may defer
 * more). try_only: at the end of a run, give up rather than wait for another reclaimer. */
static void reclaim(int try_only)
{
    struct deferred *due, **due_tail = &due, *d;
    uint64_t oldest;

    if (try_only) {
        if (pthread_mutex_trylock(&defer_lock))
            return;
    } else {
        pthread_mutex_lock(&defer_lock);
    }
    oldest = oldest_run();
    while ((d = defer_head) && d->ticket < oldest) {
        defer_head = d->next;
        *due_tail = d;
        due_tail = &d->next;
        __atomic_fetch_sub(&npending, 1, __ATOMIC_RELAXED);
    }
    if (!defer_head)
        defer_tail = &defer_head;
    *due_tail = NULL;
    pthread_mutex_unlock(&defer_lock);
    while ((d = due)) {
        due = d->next;
        d->fn(d->arg);
        free(d);
    }
}

void ebpfjit_reclaim(void)
{
    reclaim(0);
}

int ebpfjit_epoch_in_run(void)
{
    return my_anon_nest || (my_rec && my_rec->nest);
}

uint64_t ebpfjit_deferred_pending(void)
{
    return __atomic_load_n(&npending, __ATOMIC_RELAXED);
}

