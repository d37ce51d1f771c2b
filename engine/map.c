/* engine/map.c - the incrementally resized intrusive hash map of map.h.
 *
 * Owns: the two bucket arrays and the policy for resizing them.  Does not
 * own: nodes, key bytes, or the choice of seed.
 *
 * Layout.  Each table is a power-of-two array of singly linked chains; a
 * node lives in bucket (hash & (size - 1)) of exactly one table, hash being
 * the 32-bit hash stored in the node (so a table never needs more than
 * MAP_MAX_BUCKETS buckets).  A chain is searched by hash, then length, then
 * the key bytes, which are read at the map's key_offset from each node.
 * Chain links and bucket heads are slab references (4 bytes, where a
 * pointer is 8); following one is slab_ptr, a table load and an add.
 * Normally only t[0] exists.  A resize allocates t[1] and from then on:
 *   - inserts go to t[1], so t[0] only ever empties;
 *   - every find/insert/remove first runs rehash_step() (via
 *     map_maintain), which moves the chains of at most REHASH_MOVES
 *     non-empty t[0] buckets into t[1] and looks at no more than
 *     REHASH_EMPTY_VISITS empty ones, so its cost is bounded whatever the
 *     table size;
 *   - lookups check t[0] then t[1];
 *   - once t[0] holds no node, its array is freed and t[1] becomes t[0].
 * Each step advances rehash_idx by at least REHASH_MOVES buckets (or
 * finishes), so a resize of an S-bucket table ends within S / REHASH_MOVES
 * operations.  A doubling started at load 1 therefore completes before the
 * new table's load can pass about 0.6.
 *
 * Policy.  Grow when a node is inserted while count > buckets (load > 1), to
 * the smallest power of two above count (at most MAP_MAX_BUCKETS).  Shrink
 * when a removal leaves count < buckets / 8, to the smallest power of two
 * holding count at load 1/2, never below MAP_MIN_BUCKETS; shrinking to load
 * 1/2, not 1, keeps a following insert from growing straight back.  A
 * resize starts only when none is running and no iterator is live; the
 * check is repeated at the start of every find/insert/remove, so a resize
 * that was refused (out of memory, iterator live, another resize running)
 * is picked up later.  If the new array cannot be allocated the map just
 * keeps its table: chains get longer and nothing is lost.
 *
 * Iterators pause rehash_step (m->iterators > 0) so no node changes tables
 * under a walk; the walk scans t[0] then t[1] and saves the next node before
 * returning the current one, so the caller may unlink what it was given.
 */
#include "engine/map.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine/siphash.h"

/* Per operation: chains moved, and empty buckets skipped, by a rehash step.
 * Both small constants; together they bound the work added to each call. */
#define REHASH_MOVES 4
#define REHASH_EMPTY_VISITS 40

/* Shrink below this load factor (1 / MAP_SHRINK_RATIO). */
#define MAP_SHRINK_RATIO 8

/* Gives t a zeroed array of size (a power of two) buckets; 0, or -1 on OOM
 * (t untouched). */
static int table_alloc(struct map_table *t, size_t size)
{
    uint32_t *b;

    if (size > SIZE_MAX / sizeof(*b))
        return -1;
    b = cfy_calloc(size, sizeof(*b));
    if (b == NULL)
        return -1;
    t->buckets = b;
    t->size = size;
    t->used = 0;
    return 0;
}

static void table_reset(struct map_table *t)
{
    t->buckets = NULL;
    t->size = 0;
    t->used = 0;
}

/* The chain head n belongs in, in table t. */
static uint32_t *table_slot(const struct map_table *t, uint32_t hash)
{
    return &t->buckets[hash & (t->size - 1)];
}

/* The node ref names. */
static inline struct map_node *node_of(const struct map *m, uint32_t ref)
{
    return slab_ptr(m->slab, ref);
}

int map_rehashing(const struct map *m)
{
    return m->t[1].buckets != NULL;
}

/* Smallest power of two >= n and >= MAP_MIN_BUCKETS, capped at
 * MAP_MAX_BUCKETS. */
static size_t bucket_count_for(size_t n)
{
    size_t size = MAP_MIN_BUCKETS;

    while (size < n) {
        if (size >= MAP_MAX_BUCKETS)
            return MAP_MAX_BUCKETS;
        size *= 2;
    }
    return size;
}

/* Moves every node of t[0] bucket i to t[1]. */
static void move_bucket(struct map *m, size_t i)
{
    uint32_t ref = m->t[0].buckets[i];

    while (ref != SLAB_REF_NONE) {
        struct map_node *n = node_of(m, ref);
        uint32_t next = n->next;
        uint32_t *slot = table_slot(&m->t[1], n->hash);

        n->next = *slot;
        *slot = ref;
        m->t[0].used--;
        m->t[1].used++;
        ref = next;
    }
    m->t[0].buckets[i] = SLAB_REF_NONE;
}

/* One bounded slice of a pending resize; a no-op when none is pending or an
 * iterator is live.  Finishes the resize once t[0] is empty. */
static void rehash_step(struct map *m)
{
    unsigned moved = 0, empty = 0;

    if (!map_rehashing(m) || m->iterators > 0)
        return;
    while (m->t[0].used > 0 && moved < REHASH_MOVES) {
        /* Nodes remain, so some bucket at or after rehash_idx is non-empty. */
        assert(m->rehash_idx < m->t[0].size);
        if (m->t[0].buckets[m->rehash_idx] == SLAB_REF_NONE) {
            m->rehash_idx++;
            if (++empty >= REHASH_EMPTY_VISITS)
                return;
            continue;
        }
        move_bucket(m, m->rehash_idx++);
        moved++;
    }
    if (m->t[0].used == 0) {
        cfy_free(m->t[0].buckets);
        m->t[0] = m->t[1];
        table_reset(&m->t[1]);
        m->rehash_idx = 0;
    }
}

/* Starts moving to a table of size buckets. */
static void rehash_start(struct map *m, size_t size)
{
    if (size == m->t[0].size)
        return;
    if (table_alloc(&m->t[1], size) != 0)
        return; /* keep the current table; a later call retries */
    m->rehash_idx = 0;
}

/* Starts a grow or shrink if the load asks for one and none can be running
 * (no resize under way, no live iterator).  Cheap when nothing is due. */
static void resize_if_needed(struct map *m)
{
    size_t count = map_count(m), size = m->t[0].size;

    if (map_rehashing(m) || m->iterators > 0)
        return;
    if (count > size)
        rehash_start(m, bucket_count_for(count + 1));
    else if (size > MAP_MIN_BUCKETS && count < size / MAP_SHRINK_RATIO)
        rehash_start(m, bucket_count_for(count * 2));
}

/* The bounded housekeeping every find/insert/remove does first: a slice of
 * the running resize, or else a check whether one is due (a resize refused
 * earlier, for memory or for an iterator, is retried here). */
static void map_maintain(struct map *m)
{
    if (map_rehashing(m))
        rehash_step(m);
    else
        resize_if_needed(m);
}

int map_init(struct map *m, const uint8_t seed[16], const struct slab *slab,
             size_t key_offset)
{
    m->slab = slab;
    table_reset(&m->t[0]);
    table_reset(&m->t[1]);
    m->rehash_idx = 0;
    m->key_offset = key_offset;
    m->iterators = 0;
    memcpy(m->seed, seed, sizeof(m->seed));
    return table_alloc(&m->t[0], MAP_MIN_BUCKETS);
}

void map_free(struct map *m)
{
    cfy_free(m->t[0].buckets);
    cfy_free(m->t[1].buckets);
    table_reset(&m->t[0]);
    table_reset(&m->t[1]);
    m->rehash_idx = 0;
}

uint32_t map_hash(const struct map *m, const void *key, size_t len)
{
    return (uint32_t)siphash24(m->seed, key, len);
}

/* The node of m with this key in the chain from ref, or NULL.  Cheapest
 * test first: the hash rejects nearly every other node before its key is
 * touched.  Inline: called twice in map_find, and not inlined otherwise
 * since it resolves references (callgrind: ~55 instructions an ACQUIRE). */
static inline struct map_node *chain_find(const struct map *m, uint32_t ref,
                                          const void *key, size_t len,
                                          uint32_t hash)
{
    while (ref != SLAB_REF_NONE) {
        struct map_node *n = node_of(m, ref);
        if (n->hash == hash && n->keylen == len &&
            (len == 0 || memcmp(map_node_key(m, n), key, len) == 0))
            return n;
        ref = n->next;
    }
    return NULL;
}

struct map_node *map_find(struct map *m, const void *key, size_t len, uint32_t hash)
{
    struct map_node *n;

    map_maintain(m);
    /* t[0] buckets already moved are empty, so checking them is harmless.
     * A key longer than any node's keylen can hold finds nothing. */
    n = chain_find(m, *table_slot(&m->t[0], hash), key, len, hash);
    if (n == NULL && map_rehashing(m))
        n = chain_find(m, *table_slot(&m->t[1], hash), key, len, hash);
    return n;
}

void map_insert(struct map *m, struct map_node *n, uint32_t ref)
{
    struct map_table *t;
    uint32_t *slot;

    assert(m->iterators == 0);
    assert(ref != SLAB_REF_NONE); /* that it names n: the caller's word */
    map_maintain(m);
    t = map_rehashing(m) ? &m->t[1] : &m->t[0];
    slot = table_slot(t, n->hash);
    n->next = *slot;
    *slot = ref;
    t->used++;
    resize_if_needed(m);
}

/* Unlinks n from the chain at *slot of t; 1 if it was there. */
static int chain_unlink(const struct map *m, struct map_table *t,
                        uint32_t *slot, struct map_node *n)
{
    while (*slot != SLAB_REF_NONE) {
        struct map_node *c = node_of(m, *slot); /* resolved once a step */
        if (c == n) {
            *slot = n->next;
            n->next = SLAB_REF_NONE;
            t->used--;
            return 1;
        }
        slot = &c->next;
    }
    return 0;
}

void map_remove(struct map *m, struct map_node *n)
{
    int found;

    map_maintain(m);
    found = chain_unlink(m, &m->t[0], table_slot(&m->t[0], n->hash), n);
    if (!found && map_rehashing(m))
        found = chain_unlink(m, &m->t[1], table_slot(&m->t[1], n->hash), n);
    assert(found); /* n must be in m */
    (void)found;
    resize_if_needed(m);
}

size_t map_count(const struct map *m)
{
    return m->t[0].used + m->t[1].used;
}

size_t map_buckets(const struct map *m)
{
    return map_rehashing(m) ? m->t[1].size : m->t[0].size;
}

void map_iter_init(struct map *m, struct map_iter *it)
{
    m->iterators++;
    it->map = m;
    it->table = 0;
    it->bucket = 0;
    it->next = SLAB_REF_NONE;
}

struct map_node *map_iter_next(struct map_iter *it)
{
    struct map *m = it->map;
    struct map_node *n;

    if (m == NULL)
        return NULL;
    while (it->next == SLAB_REF_NONE) {
        const struct map_table *t = &m->t[it->table];

        if (it->bucket < t->size) {
            it->next = t->buckets[it->bucket++];
        } else if (it->table == 0 && map_rehashing(m)) {
            it->table = 1;
            it->bucket = 0;
        } else {
            return NULL;
        }
    }
    n = node_of(m, it->next);
    it->next = n->next; /* saved now, so the caller may unlink n */
    return n;
}

void map_iter_done(struct map_iter *it)
{
    if (it->map == NULL)
        return;
    assert(it->map->iterators > 0);
    it->map->iterators--;
    it->map = NULL;
}
