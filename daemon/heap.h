/* daemon/heap.h - a min-heap of deadlines whose nodes know their index.
 *
 * Owns: an array of pointers to heap_node, ordered by deadline.  Does not
 * own the nodes: callers embed a struct heap_node in their own objects (a
 * lock, a waiter) and recover the object with container_of-style arithmetic.
 * Because each node keeps its index, removing or re-keying any node is
 * O(log n), with no search.  Ties are broken by insertion order (seq), so
 * nodes with equal deadlines come out first-in, first-out.
 */
#ifndef CACHIFY_DAEMON_HEAP_H
#define CACHIFY_DAEMON_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_NOT_IN_HEAP ((size_t)-1)

struct heap_node {
    uint64_t deadline; /* when the node is due, on the caller's clock */
    uint64_t seq;      /* insertion order, set by heap_push */
    size_t index;      /* position in the heap, HEAP_NOT_IN_HEAP when out */
};

struct heap {
    struct heap_node **nodes;
    size_t len;
    size_t cap;
    uint64_t next_seq;
};

/* Makes an empty heap (no allocation until the first push). */
void heap_init(struct heap *h);

/* Frees the array; the nodes themselves belong to the caller. */
void heap_free(struct heap *h);

/* Marks a node as out of any heap.  Call once before its first push. */
void heap_node_init(struct heap_node *n);

/* Adds n (not in a heap) with n->deadline already set.  Returns 0, or -1
 * when out of memory (then n is unchanged and not in the heap). */
int heap_push(struct heap *h, struct heap_node *n);

/* Removes n from h; a node not in the heap is a no-op. */
void heap_remove(struct heap *h, struct heap_node *n);

/* Changes n's deadline and restores order; n must be in h. */
void heap_update(struct heap *h, struct heap_node *n, uint64_t deadline);

/* The earliest node, or NULL when empty. */
struct heap_node *heap_peek(const struct heap *h);

/* Removes and returns the earliest node, or NULL when empty. */
struct heap_node *heap_pop(struct heap *h);

static inline size_t heap_len(const struct heap *h) { return h->len; }

static inline int heap_node_queued(const struct heap_node *n)
{
    return n->index != HEAP_NOT_IN_HEAP;
}

#endif
