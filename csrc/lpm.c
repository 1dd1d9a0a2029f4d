/* lpm.c: BPF_MAP_TYPE_LPM_TRIE, the kernel's algorithm (kernel/bpf/lpm_trie.c) over a
 * preallocated node pool, so lookups, errnos and get_next_key order match the kernel.
 *
 * Keys are `struct bpf_lpm_trie_key`: u32 prefixlen (host order) + data bytes, compared most
 * significant bit first (network order). Intermediate nodes (no value) join two subtries; every
 * intermediate node has exactly two children, so at most max_entries - 1 of them exist.
 * All entry points run with map->lock held (taken by maps.c or here).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "maps.h"

#define LPM_IM 1U

struct lpm_node {
    uint32_t child[2];
    uint32_t prefixlen;
    uint32_t flags;
    uint32_t vslot;         /* value slot in map->arena, EBPFJIT_NIL for intermediate nodes */
    uint8_t data[];
};

struct lpm_trie {
    uint32_t root;
    uint32_t data_size, max_prefixlen;
    uint32_t node_stride;
    uint32_t nnodes, fresh_nodes, nfree_nodes;
    uint32_t fresh_vals, nfree_vals;
    uint8_t *nodes;
    uint32_t *free_nodes;
    uint32_t *free_vals;
};

static inline struct lpm_node *N(const struct lpm_trie *t, uint32_t i)
{
    return (struct lpm_node *)(t->nodes + (uint64_t)i * t->node_stride);
}

static inline int extract_bit(const uint8_t *data, uint32_t index)
{
    return (data[index / 8] >> (7 - (index % 8))) & 1;
}

static uint32_t longest_prefix_match(const struct lpm_trie *t, const struct lpm_node *node,
                                     uint32_t key_prefixlen, const uint8_t *kdata)
{
    uint32_t limit = node->prefixlen < key_prefixlen ? node->prefixlen : key_prefixlen;
    uint32_t prefixlen = 0, i;

    for (i = 0; i < t->data_size; i++) {
        uint8_t x = node->data[i] ^ kdata[i];
        if (x) {
            prefixlen += (uint32_t)__builtin_clz(x) - 24;
            break;
        }
        prefixlen += 8;
        if (prefixlen >= limit)
            return limit;
    }
    return prefixlen < limit ? prefixlen : limit;
}

static uint32_t node_stride_of(const struct ebpfjit_map *m)
{
    return (uint32_t)((sizeof(struct lpm_node) + (m->base.key_size - 4) + 7) & ~7ULL);
}

/* The trie's pools are sized for the worst case (2 * max_entries nodes), and charged so. */
uint64_t ebpfjit_lpm_cost(const struct ebpfjit_map *m)
{
    uint64_t max = m->base.max_entries;

    return sizeof(struct lpm_trie) + 2 * max * (node_stride_of(m) + 4) + max * 4 +
           max * m->value_stride;
}

int ebpfjit_lpm_init(struct ebpfjit_map *m)
{
    struct lpm_trie *t = calloc(1, sizeof(*t));
    uint64_t nn = 2ULL * m->base.max_entries;

    if (!t)
        return -ENOMEM;
    m->lpm = t;
    t->root = EBPFJIT_NIL;
    t->data_size = m->base.key_size - 4;
    t->max_prefixlen = t->data_size * 8;
    t->node_stride = node_stride_of(m);
    t->nnodes = (uint32_t)nn;
    t->nodes = calloc(nn, t->node_stride);
    t->free_nodes = calloc(nn, 4);
    t->free_vals = calloc(m->base.max_entries, 4);
    m->arena_len = (uint64_t)m->base.max_entries * m->value_stride;
    m->arena = calloc(1, m->arena_len);
    if (!t->nodes || !t->free_nodes || !t->free_vals || !m->arena)
        return -ENOMEM;
    return 0;
}

void ebpfjit_lpm_free(struct ebpfjit_map *m)
{
    struct lpm_trie *t = m->lpm;

    if (!t)
        return;
    free(t->nodes);
    free(t->free_nodes);
    free(t->free_vals);
    free(t);
    m->lpm = NULL;
}

static uint32_t node_alloc(struct lpm_trie *t)
{
    uint32_t i = t->nfree_nodes ? t->free_nodes[--t->nfree_nodes] : t->fresh_nodes++;
    struct lpm_node *n = N(t, i);

    n->child[0] = n->child[1] = EBPFJIT_NIL;
    n->flags = 0;
    n->vslot = EBPFJIT_NIL;
    return i;
}

static void node_free(struct lpm_trie *t, uint32_t i)
{
    t->free_nodes[t->nfree_nodes++] = i;
}

static uint32_t val_alloc(struct lpm_trie *t)
{
    return t->nfree_vals ? t->free_vals[--t->nfree_vals] : t->fresh_vals++;
}

static void val_free(struct lpm_trie *t, uint32_t v)
{
    if (v != EBPFJIT_NIL)
        t->free_vals[t->nfree_vals++] = v;
}

static void set_value(struct ebpfjit_map *m, struct lpm_node *n, const void *value)
{
    memcpy(m->arena + (uint64_t)n->vslot * m->value_stride, value, m->base.value_size);
}

void *ebpfjit_lpm_lookup(struct ebpfjit_map *m, const void *key)
{
    struct lpm_trie *t = m->lpm;
    const uint8_t *kdata = (const uint8_t *)key + 4;
    uint32_t prefixlen, ni, found = EBPFJIT_NIL;

    memcpy(&prefixlen, key, 4);
    for (ni = t->root; ni != EBPFJIT_NIL;) {
        struct lpm_node *node = N(t, ni);
        uint32_t matchlen = longest_prefix_match(t, node, prefixlen, kdata);
        if (matchlen == t->max_prefixlen) {
            found = ni;
            break;
        }
        if (matchlen < node->prefixlen)
            break;
        if (!(node->flags & LPM_IM))
            found = ni;
        ni = node->child[extract_bit(kdata, node->prefixlen)];
    }
    if (found == EBPFJIT_NIL)
        return NULL;
    return m->arena + (uint64_t)N(t, found)->vslot * m->value_stride;
}

/* trie_check_add_elem: a new entry needs !BPF_EXIST and room. */
static int check_add(struct ebpfjit_map *m, uint64_t flags)
{
    if (flags == EBPFJIT_BPF_EXIST)
        return -ENOENT;
    if (m->count == m->base.max_entries)
        return -ENOSPC;
    m->count++;
    return 0;
}

static uint32_t new_leaf(struct ebpfjit_map *m, uint32_t prefixlen, const uint8_t *kdata,
                         const void *value)
{
    struct lpm_trie *t = m->lpm;
    uint32_t ni = node_alloc(t);
    struct lpm_node *n = N(t, ni);

    n->prefixlen = prefixlen;
    memcpy(n->data, kdata, t->data_size);
    n->vslot = val_alloc(t);
    set_value(m, n, value);
    return ni;
}

int ebpfjit_lpm_update(struct ebpfjit_map *m, const void *key, const void *value, uint64_t flags)
{
    struct lpm_trie *t = m->lpm;
    const uint8_t *kdata = (const uint8_t *)key + 4;
    uint32_t prefixlen, ni, matchlen = 0, *slotp, nn, im;
    struct lpm_node *node = NULL;
    int rc = 0;

    if (flags > EBPFJIT_BPF_EXIST)
        return -EINVAL;
    memcpy(&prefixlen, key, 4);
    if (prefixlen > t->max_prefixlen)
        return -EINVAL;
    ebpfjit_map_lock(&m->lock);
    slotp = &t->root;
    while ((ni = *slotp) != EBPFJIT_NIL) {
        node = N(t, ni);
        matchlen = longest_prefix_match(t, node, prefixlen, kdata);
        if (node->prefixlen != matchlen || node->prefixlen == prefixlen)
            break;
        slotp = &node->child[extract_bit(kdata, node->prefixlen)];
    }
    if (ni == EBPFJIT_NIL) {
        rc = check_add(m, flags);
        if (!rc)
            *slotp = new_leaf(m, prefixlen, kdata, value);
        goto out;
    }
    if (node->prefixlen == matchlen) {
        /* Exact prefix: replace the value, or turn an intermediate node into an entry. */
        if (!(node->flags & LPM_IM)) {
            if (flags == EBPFJIT_BPF_NOEXIST)
                rc = -EEXIST;
            else
                set_value(m, node, value);
            goto out;
        }
        rc = check_add(m, flags);
        if (rc)
            goto out;
        node->flags &= ~LPM_IM;
        memcpy(node->data, kdata, t->data_size);
        node->vslot = val_alloc(t);
        set_value(m, node, value);
        goto out;
    }
    rc = check_add(m, flags);
    if (rc)
        goto out;
    nn = new_leaf(m, prefixlen, kdata, value);
    if (matchlen == prefixlen) {
        /* The new prefix covers node: insert it as node's parent. */
        N(t, nn)->child[extract_bit(node->data, matchlen)] = ni;
        *slotp = nn;
        goto out;
    }
    im = node_alloc(t);
    N(t, im)->prefixlen = matchlen;
    N(t, im)->flags = LPM_IM;
    memcpy(N(t, im)->data, node->data, t->data_size);
    if (extract_bit(kdata, matchlen)) {
        N(t, im)->child[0] = ni;
        N(t, im)->child[1] = nn;
    } else {
        N(t, im)->child[0] = nn;
        N(t, im)->child[1] = ni;
    }
    *slotp = im;
out:
    ebpfjit_map_unlock(&m->lock);
    return rc;
}

int ebpfjit_lpm_delete(struct ebpfjit_map *m, const void *key)
{
    struct lpm_trie *t = m->lpm;
    const uint8_t *kdata = (const uint8_t *)key + 4;
    uint32_t prefixlen, ni, matchlen = 0, *trim, *trim2, parent = EBPFJIT_NIL;
    struct lpm_node *node = NULL;
    int rc = 0;

    memcpy(&prefixlen, key, 4);
    if (prefixlen > t->max_prefixlen)
        return -EINVAL;
    ebpfjit_map_lock(&m->lock);
    trim = trim2 = &t->root;
    while ((ni = *trim) != EBPFJIT_NIL) {
        node = N(t, ni);
        matchlen = longest_prefix_match(t, node, prefixlen, kdata);
        if (node->prefixlen != matchlen || node->prefixlen == prefixlen)
            break;
        parent = ni;
        trim2 = trim;
        trim = &node->child[extract_bit(kdata, node->prefixlen)];
    }
    if (ni == EBPFJIT_NIL || node->prefixlen != prefixlen || node->prefixlen != matchlen ||
        (node->flags & LPM_IM)) {
        rc = -ENOENT;
        goto out;
    }
    m->count--;
    val_free(t, node->vslot);
    node->vslot = EBPFJIT_NIL;
    if (node->child[0] != EBPFJIT_NIL && node->child[1] != EBPFJIT_NIL) {
        node->flags |= LPM_IM;
        goto out;
    }
    /* A leaf under an intermediate parent takes the parent with it: its sibling moves up,
     * keeping "every intermediate node has two children". */
    if (parent != EBPFJIT_NIL && (N(t, parent)->flags & LPM_IM) &&
        node->child[0] == EBPFJIT_NIL && node->child[1] == EBPFJIT_NIL) {
        struct lpm_node *p = N(t, parent);
        *trim2 = p->child[0] == ni ? p->child[1] : p->child[0];
        node_free(t, parent);
        node_free(t, ni);
        goto out;
    }
    if (node->child[0] != EBPFJIT_NIL)
        *trim = node->child[0];
    else if (node->child[1] != EBPFJIT_NIL)
        *trim = node->child[1];
    else
        *trim = EBPFJIT_NIL;
    node_free(t, ni);
out:
    ebpfjit_map_unlock(&m->lock);
    return rc;
}

/* Postorder (children before parents, left first), exactly as trie_get_next_key; a missing or
 * NULL key starts from the leftmost entry. */
int ebpfjit_lpm_get_next_key(struct ebpfjit_map *m, const void *key, void *next_key)
{
    struct lpm_trie *t = m->lpm;
    uint32_t stack[2049 + 1];
    int sp = -1, rc = 0;
    uint32_t search_root, ni, next = EBPFJIT_NIL, matchlen = 0, prefixlen = 0;
    const uint8_t *kdata = key ? (const uint8_t *)key + 4 : NULL;
    struct lpm_node *node = NULL;

    ebpfjit_map_lock(&m->lock);
    search_root = t->root;
    if (search_root == EBPFJIT_NIL) {
        rc = -ENOENT;
        goto out;
    }
    if (key)
        memcpy(&prefixlen, key, 4);
    if (!key || prefixlen > t->max_prefixlen)
        goto find_leftmost;
    for (ni = search_root; ni != EBPFJIT_NIL;) {
        node = N(t, ni);
        stack[++sp] = ni;
        matchlen = longest_prefix_match(t, node, prefixlen, kdata);
        if (node->prefixlen != matchlen || node->prefixlen == prefixlen)
            break;
        ni = node->child[extract_bit(kdata, node->prefixlen)];
    }
    if (ni == EBPFJIT_NIL || node->prefixlen != matchlen || (node->flags & LPM_IM))
        goto find_leftmost;
    ni = stack[sp];
    while (sp > 0) {
        uint32_t parent = stack[sp - 1];
        struct lpm_node *p = N(t, parent);
        if (p->child[0] == ni) {
            search_root = p->child[1];
            if (search_root != EBPFJIT_NIL)
                goto find_leftmost;
        }
        if (!(p->flags & LPM_IM)) {
            next = parent;
            goto copy;
        }
        ni = parent;
        sp--;
    }
    rc = -ENOENT;
    goto out;

find_leftmost:
    for (ni = search_root; ni != EBPFJIT_NIL;) {
        node = N(t, ni);
        if (node->flags & LPM_IM) {
            ni = node->child[0];
        } else {
            next = ni;
            ni = node->child[0];
            if (ni == EBPFJIT_NIL)
                ni = node->child[1];
        }
    }
copy:
    node = N(t, next);
    memcpy(next_key, &node->prefixlen, 4);
    memcpy((uint8_t *)next_key + 4, node->data, t->data_size);
out:
    ebpfjit_map_unlock(&m->lock);
    return rc;
}
