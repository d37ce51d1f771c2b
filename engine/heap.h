/* engine/heap.h - a min-heap of deadlines whose nodes know their index.
 *
 * Owns: an array of items { 64-bit deadline, 32-bit object reference },
 * ordered by deadline.  Does not own the nodes: callers embed a struct
 * heap_node (4 bytes: the node's slot in the array) in their own objects (a
 * lock, a waiter), all at one offset per heap (given to heap_init), and
 * recover the object with container_of-style arithmetic.  An item names its
 * object by its slab reference (slab.h: a slab slot, or an object
 * registered with slab_enter), 12 bytes an item where a pointer made 16;
 * the heap resolves it with slab_ptr when it writes the node's index.  The
 * deadline lives in the array, not in the node, so ordering the heap never
 * reads the callers' objects, and a caller asks heap_deadline() for a
 * node's deadline, exact to the unit it was given in.
 * Because each node keeps its index, removing or re-keying any node is
 * O(log n), with no search.
 *
 * Nodes with equal deadlines leave in no particular order: whoever needs
 * first-come first-served order among equals keeps it elsewhere (the lock
 * engine's waiters are a FIFO list per key; the heap only times them).
 * A heap holds at most HEAP_MAX_LEN nodes: the index is 32 bits.
 */
#ifndef CACHIFY_ENGINE_HEAP_H
#define CACHIFY_ENGINE_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/slab.h"

#define HEAP_NOT_IN_HEAP UINT32_MAX

/* Most nodes one heap holds; heap_push refuses the next one. */
#define HEAP_MAX_LEN ((size_t)UINT32_MAX - 1)

struct heap_node {
    uint32_t index;    /* position in the heap, HEAP_NOT_IN_HEAP when out */
};

/* Visible so it can be embedded; fields are private by convention.  Item i
 * is deadlines[i] (when it is due, on the caller's clock) and refs[i] (its
 * object), two arrays in one allocation: refs starts right after cap
 * deadlines, so neither needs padding. */
struct heap {
    uint64_t *deadlines;
    uint32_t *refs;
    size_t len;
    size_t cap;
    const struct slab *slab;   /* resolves refs */
    size_t node_offset;        /* the heap_node's offset in each object */
};

/* Makes an empty heap (no allocation until the first push) of objects
 * named by references of slab (which must outlive h), each with its
 * struct heap_node node_offset bytes from its start. */
void heap_init(struct heap *h, const struct slab *slab, size_t node_offset);

/* Frees the array; the nodes themselves belong to the caller. */
void heap_free(struct heap *h);

/* Marks a node as out of any heap.  Call once before its first push. */
void heap_node_init(struct heap_node *n);

/* Adds n (not in a heap), the node of the object whose reference is ref,
 * due at deadline.  Returns 0, or -1 when out of memory or h holds
 * HEAP_MAX_LEN nodes (then n is not in the heap). */
int heap_push(struct heap *h, struct heap_node *n, uint32_t ref,
              uint64_t deadline);

/* Removes n from h; a node not in the heap is a no-op.  The array shrinks
 * when it falls under a quarter full (a failed shrink keeps it as it is). */
void heap_remove(struct heap *h, struct heap_node *n);

/* Moves n, with its deadline, from `from` (where it must be) to `to`, a
 * heap of the same slab and node offset.  Returns 0, or -1 when `to` could
 * not grow (n then stays in `from`). */
int heap_move(struct heap *from, struct heap *to, struct heap_node *n);

/* The node in slot i (0 <= i < heap_len), in no particular order, or NULL
 * past the end: for visiting every node without popping any. */
struct heap_node *heap_node_at(const struct heap *h, size_t i);

/* Changes n's deadline and restores order; n must be in h. */
void heap_update(struct heap *h, struct heap_node *n, uint64_t deadline);

/* The deadline n was pushed or last updated with; n must be in h. */
uint64_t heap_deadline(const struct heap *h, const struct heap_node *n);

/* The earliest node, or NULL when empty. */
struct heap_node *heap_peek(const struct heap *h);

/* The earliest node's deadline, or UINT64_MAX when h is empty (which a
 * caller that queues UINT64_MAX deadlines tells apart with heap_len). */
uint64_t heap_peek_deadline(const struct heap *h);

/* Removes and returns the earliest node, or NULL when empty. */
struct heap_node *heap_pop(struct heap *h);

static inline size_t heap_len(const struct heap *h) { return h->len; }

static inline int heap_node_queued(const struct heap_node *n)
{
    return n->index != HEAP_NOT_IN_HEAP;
}

#endif
