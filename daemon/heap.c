/* daemon/heap.c - the deadline min-heap declared in daemon/heap.h.
 *
 * Owns: the growable array of node pointers and the ordering rule.  Does not
 * own: the nodes (callers embed them) or any clock.  The array is a binary
 * heap in the usual layout (children of i at 2i+1 and 2i+2), and every time a
 * node moves its index field is rewritten, so heap_remove and heap_update
 * find their node in O(1) and repair the order in O(log n).
 *
 * Order is (deadline, seq).  heap_push and heap_update both stamp the node
 * with a fresh seq from h->next_seq, so among equal deadlines nodes leave in
 * the order they were last pushed or re-keyed: an updated node goes behind
 * the nodes already waiting on the same deadline, never ahead of them.  A
 * 64-bit counter cannot wrap in the daemon's lifetime.
 *
 * The array grows by doubling and never shrinks: timers come and go in
 * waves, and holding on to the peak costs one pointer per timer.
 */
#include "daemon/heap.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/alloc.h"

/* First allocation: enough for a quiet daemon without early regrowth. */
#define HEAP_INITIAL_CAP 16

/* True when a must leave the heap before b. */
static int heap_before(const struct heap_node *a, const struct heap_node *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

/* Puts n at slot i and records the slot in n, the one place index is set
 * for nodes inside the heap. */
static void heap_place(struct heap *h, size_t i, struct heap_node *n)
{
    h->nodes[i] = n;
    n->index = i;
}

/* Moves the node at i towards the root while it beats its parent. */
static void heap_sift_up(struct heap *h, size_t i)
{
    struct heap_node *n = h->nodes[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_before(n, h->nodes[parent]))
            break;
        heap_place(h, i, h->nodes[parent]);
        i = parent;
    }
    heap_place(h, i, n);
}

/* Moves the node at i towards the leaves while a child beats it. */
static void heap_sift_down(struct heap *h, size_t i)
{
    struct heap_node *n = h->nodes[i];

    for (;;) {
        size_t left = 2 * i + 1;
        size_t best;

        if (left >= h->len)
            break;
        best = left;
        if (left + 1 < h->len && heap_before(h->nodes[left + 1], h->nodes[left]))
            best = left + 1;
        if (!heap_before(h->nodes[best], n))
            break;
        heap_place(h, i, h->nodes[best]);
        i = best;
    }
    heap_place(h, i, n);
}

/* Restores order around slot i after its node changed or was replaced;
 * only one of the two directions can be needed. */
static void heap_fix(struct heap *h, size_t i)
{
    if (i > 0 && heap_before(h->nodes[i], h->nodes[(i - 1) / 2]))
        heap_sift_up(h, i);
    else
        heap_sift_down(h, i);
}

/* Makes room for one more node; 0, or -1 when the array cannot grow. */
static int heap_reserve(struct heap *h)
{
    struct heap_node **grown;
    size_t cap;

    if (h->len < h->cap)
        return 0;
    cap = h->cap ? h->cap : HEAP_INITIAL_CAP / 2;
    if (cap > SIZE_MAX / 2 / sizeof(*h->nodes))
        return -1;
    cap *= 2;
    grown = cfy_realloc(h->nodes, cap * sizeof(*h->nodes));
    if (grown == NULL)
        return -1; /* the old array is still valid and still ours */
    h->nodes = grown;
    h->cap = cap;
    return 0;
}

void heap_init(struct heap *h)
{
    h->nodes = NULL;
    h->len = 0;
    h->cap = 0;
    h->next_seq = 0;
}

void heap_free(struct heap *h)
{
    /* Queued nodes are not touched: at shutdown their owners may already
     * be gone.  Their index fields are stale from here on. */
    cfy_free(h->nodes);
    heap_init(h);
}

void heap_node_init(struct heap_node *n)
{
    n->deadline = 0;
    n->seq = 0;
    n->index = HEAP_NOT_IN_HEAP;
}

int heap_push(struct heap *h, struct heap_node *n)
{
    assert(n->index == HEAP_NOT_IN_HEAP);
    if (heap_reserve(h) != 0)
        return -1;
    n->seq = h->next_seq++;
    heap_place(h, h->len, n);
    h->len++;
    heap_sift_up(h, h->len - 1);
    return 0;
}

void heap_remove(struct heap *h, struct heap_node *n)
{
    size_t i = n->index;
    struct heap_node *last;

    if (i == HEAP_NOT_IN_HEAP)
        return;
    assert(i < h->len && h->nodes[i] == n);
    n->index = HEAP_NOT_IN_HEAP;
    last = h->nodes[--h->len];
    if (last == n)
        return; /* n was the last slot: nothing moves */
    /* The last node fills the hole; it may belong above or below it. */
    heap_place(h, i, last);
    heap_fix(h, i);
}

void heap_update(struct heap *h, struct heap_node *n, uint64_t deadline)
{
    assert(n->index < h->len && h->nodes[n->index] == n);
    n->deadline = deadline;
    n->seq = h->next_seq++; /* behind equal deadlines, as documented above */
    heap_fix(h, n->index);
}

struct heap_node *heap_peek(const struct heap *h)
{
    return h->len ? h->nodes[0] : NULL;
}

struct heap_node *heap_pop(struct heap *h)
{
    struct heap_node *top = heap_peek(h);

    if (top != NULL)
        heap_remove(h, top);
    return top;
}
