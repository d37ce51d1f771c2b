/* engine/map.h - an intrusive hash map from byte-string keys to nodes.
 *
 * Owns: the bucket arrays and the chains threaded through the nodes.  Does
 * not own: the nodes or their key bytes.  Callers embed a struct map_node at
 * the start of their own object (a lock) and keep the key bytes inside the
 * same object at a fixed distance from the node, the map's key_offset
 * (given to map_init, the same for every node of one map): the node stores
 * no key pointer, only the key's length and a 32-bit hash.  Chains and
 * bucket heads are 32-bit slab references (slab.h), not pointers: every
 * object in a map has a reference in the slab given to map_init (a slab
 * slot, or an object registered with slab_enter), which the caller passes
 * to map_insert; the map resolves references with slab_ptr, inline.  So a
 * node is 12 bytes and a bucket 4.  The caller sets hash with map_hash()
 * and keylen, and inserts; nothing is allocated per node, and the object is
 * recovered from the node with container_of-style arithmetic.
 * Keys are arbitrary bytes (NULs allowed, no terminator needed), at most
 * MAP_KEY_MAX of them, compared by length and content.
 *
 * Keys are hashed with SipHash-2-4 under a 16-byte seed given to map_init,
 * truncated to its low 32 bits; the daemon seeds it randomly so clients
 * cannot choose keys that share a bucket.  A bucket is picked by the hash's
 * low bits, so a table has at most MAP_MAX_BUCKETS buckets.  The table
 * resizes itself (grows past one node per bucket, shrinks under one per
 * eight, never below MAP_MIN_BUCKETS) and resizes incrementally: while a
 * resize is under way there are two tables, and every map_find, map_insert
 * and map_remove first moves a few buckets from the old to the new one, so
 * no single call costs O(n) even with millions of keys.
 *
 * Not thread-safe; the daemon is single-threaded.
 */
#ifndef CACHIFY_ENGINE_MAP_H
#define CACHIFY_ENGINE_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/slab.h"

/* Bucket count of a new map, and the floor that shrinking respects. */
#define MAP_MIN_BUCKETS 16

/* Most buckets of one table: a bucket index is taken from the 32-bit hash.
 * Past 2^32 nodes chains just get longer. */
#define MAP_MAX_BUCKETS ((size_t)1 << (SIZE_MAX > UINT32_MAX ? 32 : 31))

/* Longest key: keylen is 32 bits. */
#define MAP_KEY_MAX UINT32_MAX

struct map_node {              /* embed at the start of your object */
    uint32_t next;             /* chain (a reference), owned by the map */
    uint32_t hash;             /* set by the caller via map_hash() before insert */
    uint32_t keylen;           /* the key's bytes sit key_offset bytes from
                                * the node and must not change while in */
};

/* One bucket array.  Private: use the functions below. */
struct map_table {
    uint32_t *buckets;         /* size chain heads (references,
                                * SLAB_REF_NONE: empty); NULL when
                                * unallocated */
    size_t size;               /* a power of two, or 0 */
    size_t used;               /* nodes chained in this table */
};

/* Visible so it can be embedded; fields are private by convention.  t[0] is
 * the table being read; t[1] is allocated only while resizing, and then
 * buckets of t[0] below rehash_idx have all been moved into it. */
struct map {
    struct map_table t[2];
    size_t rehash_idx;         /* next t[0] bucket to move while resizing */
    size_t key_offset;         /* node address + key_offset = its key */
    const struct slab *slab;   /* resolves the references */
    unsigned iterators;        /* live iterators; while > 0 nothing moves */
    uint8_t seed[16];          /* SipHash key */
};

/* Iterator state; fields private.  See map_iter_init. */
struct map_iter {
    struct map *map;           /* NULL once map_iter_done ran */
    int table;                 /* 0 or 1 */
    size_t bucket;             /* next bucket to scan in t[table] */
    uint32_t next;             /* node to return next, saved ahead of time */
};

/* Makes an empty map with MAP_MIN_BUCKETS buckets keyed by a copy of seed,
 * whose nodes have their key bytes key_offset bytes after the node's start
 * and are named by references of slab (which must outlive m).  Returns 0,
 * or -1 when out of memory (then map_free is still safe). */
int map_init(struct map *m, const uint8_t seed[16], const struct slab *slab,
             size_t key_offset);

/* Frees m's bucket arrays, not the nodes, which stay the caller's. */
void map_free(struct map *m);

/* The hash of len bytes at key under m's seed: what map_node.hash and
 * map_find's hash must be. */
uint32_t map_hash(const struct map *m, const void *key, size_t len);

/* The key bytes of n, a node of m (keylen of them, no terminator). */
static inline const char *map_node_key(const struct map *m,
                                       const struct map_node *n)
{
    return (const char *)n + m->key_offset;
}

/* The node whose key is the len bytes at key, or NULL (always NULL past
 * MAP_KEY_MAX).  hash must be map_hash(m, key, len).  May move a few
 * buckets of a pending resize. */
struct map_node *map_find(struct map *m, const void *key, size_t len, uint32_t hash);

/* Adds n, whose reference in m's slab is ref (n is at the start of what
 * ref names), whose key must not be present, whose key bytes are in place
 * and whose hash and keylen are set.  Never fails: when growing cannot
 * allocate, the map keeps its table (chains get longer) and tries again on
 * a later insert.  Not allowed while an iterator is live. */
void map_insert(struct map *m, struct map_node *n, uint32_t ref);

/* Unlinks n, which must be in m; n stays the caller's. */
void map_remove(struct map *m, struct map_node *n);

/* How many nodes m holds. */
size_t map_count(const struct map *m);

/* Buckets in the table new nodes go to (the target table while resizing).
 * For statistics and tests. */
size_t map_buckets(const struct map *m);

/* 1 while a resize is in progress (two tables), else 0.  For tests. */
int map_rehashing(const struct map *m);

/* Starts a walk over m (for shutdown and snapshots).  It returns every node
 * present for the whole walk exactly once, in no set order.  While it is
 * live m moves no buckets (finds and removes still work) and map_insert is
 * not allowed; the node just returned may be removed (and freed) before the
 * next call.  Every map_iter_init needs one map_iter_done. */
void map_iter_init(struct map *m, struct map_iter *it);

/* The next node of the walk, or NULL when every node has been returned. */
struct map_node *map_iter_next(struct map_iter *it);

/* Ends the walk and lets m resume resizing; a second call is a no-op. */
void map_iter_done(struct map_iter *it);

#endif
