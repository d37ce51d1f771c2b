/* engine/heap.c - the deadline min-heap declared in engine/heap.h.
 *
 * Owns: the growable array of items and the ordering rule.  Does not own:
 * the nodes (callers embed them) or any clock.  The array is a binary heap in
 * the usual layout (children of i at 2i+1 and 2i+2).  Each item carries its
 * node's deadline next to the node pointer, so sifting compares items of one
 * contiguous array and never loads a node; a node is written only when its
 * item moves (its index field is rewritten then), which lets heap_remove,
 * heap_update and heap_deadline find a node's item in O(1).
 *
 * Order is by deadline alone; equal deadlines come out in whatever order the
 * sifts leave them (no insertion counter: 16 bytes per item instead of 24,
 * and nothing in the daemon needs FIFO among equal deadlines).
 *
 * The array grows by doubling, up to HEAP_MAX_LEN items (the 32-bit index
 * and its HEAP_NOT_IN_HEAP sentinel), and halves when a removal leaves it
 * under a quarter full (never below HEAP_INITIAL_CAP).  Keeping the peak
 * would cost 16 bytes per timer for good: a million locks taken once and
 * released leave 16 MiB the daemon never uses again.  Halving at a quarter,
 * not at a half, is the hysteresis: after either resize the array is half
 * full, so it takes len doubling or halving again before the next one, and
 * a heap hovering at a boundary does not reallocate on every push and pop.
 * A shrinking realloc is the only cost and is amortised O(1) per removal;
 * glibc does it in place (a split chunk, or mremap for a large mapping), so
 * no items are copied there.  A failed shrink just keeps the larger array.
 */
#include "engine/heap.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"

/* First allocation: enough for a quiet daemon without early regrowth. */
#define HEAP_INITIAL_CAP 16

/* Puts item at slot i and records the slot in its node, the one place index
 * is set for nodes inside the heap. */
static void heap_place(struct heap *h, size_t i, struct heap_item item)
{
    h->items[i] = item;
    item.node->index = (uint32_t)i;
}

/* Moves the item at i towards the root while it is due before its parent. */
static void heap_sift_up(struct heap *h, size_t i)
{
    struct heap_item item = h->items[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (item.deadline >= h->items[parent].deadline)
            break;
        heap_place(h, i, h->items[parent]);
        i = parent;
    }
    heap_place(h, i, item);
}

/* Moves the item at i towards the leaves while a child is due before it. */
static void heap_sift_down(struct heap *h, size_t i)
{
    struct heap_item item = h->items[i];

    for (;;) {
        size_t left = 2 * i + 1;
        size_t best;

        if (left >= h->len)
            break;
        best = left;
        if (left + 1 < h->len &&
            h->items[left + 1].deadline < h->items[left].deadline)
            best = left + 1;
        if (h->items[best].deadline >= item.deadline)
            break;
        heap_place(h, i, h->items[best]);
        i = best;
    }
    heap_place(h, i, item);
}

/* Restores order around slot i after its item changed or was replaced;
 * only one of the two directions can be needed. */
static void heap_fix(struct heap *h, size_t i)
{
    if (i > 0 && h->items[i].deadline < h->items[(i - 1) / 2].deadline)
        heap_sift_up(h, i);
    else
        heap_sift_down(h, i);
}

/* Makes room for one more item; 0, or -1 when the array cannot grow. */
static int heap_reserve(struct heap *h)
{
    struct heap_item *grown;
    size_t cap;

    if (h->len >= HEAP_MAX_LEN)
        return -1;
    if (h->len < h->cap)
        return 0;
    cap = h->cap ? h->cap : HEAP_INITIAL_CAP / 2;
    if (cap > SIZE_MAX / 2 / sizeof(*h->items))
        return -1;
    cap *= 2;
    if (cap > HEAP_MAX_LEN)
        cap = HEAP_MAX_LEN;
    grown = cfy_realloc(h->items, cap * sizeof(*h->items));
    if (grown == NULL)
        return -1; /* the old array is still valid and still ours */
    h->items = grown;
    h->cap = cap;
    return 0;
}

/* Halves the array once len is under a quarter of it; see the top. */
static void heap_shrink_if_sparse(struct heap *h)
{
    if (h->cap <= HEAP_INITIAL_CAP || h->len >= h->cap / 4)
        return;
    size_t cap = h->cap / 2;
    struct heap_item *smaller = cfy_realloc(h->items, cap * sizeof(*h->items));
    if (smaller == NULL)
        return; /* nothing lost: the old array is still ours */
    h->items = smaller;
    h->cap = cap;
}

void heap_init(struct heap *h)
{
    h->items = NULL;
    h->len = 0;
    h->cap = 0;
}

void heap_free(struct heap *h)
{
    /* Queued nodes are not touched: at shutdown their owners may already
     * be gone.  Their index fields are stale from here on. */
    cfy_free(h->items);
    heap_init(h);
}

void heap_node_init(struct heap_node *n)
{
    n->index = HEAP_NOT_IN_HEAP;
}

int heap_push(struct heap *h, struct heap_node *n, uint64_t deadline)
{
    assert(n->index == HEAP_NOT_IN_HEAP);
    if (heap_reserve(h) != 0)
        return -1;
    heap_place(h, h->len, (struct heap_item){ deadline, n });
    h->len++;
    heap_sift_up(h, h->len - 1);
    return 0;
}

int heap_move(struct heap *from, struct heap *to, struct heap_node *n)
{
    if (heap_reserve(to) != 0)
        return -1;
    uint64_t deadline = heap_deadline(from, n);
    heap_remove(from, n);
    return heap_push(to, n, deadline); /* room was made: cannot fail */
}

struct heap_node *heap_node_at(const struct heap *h, size_t i)
{
    return i < h->len ? h->items[i].node : NULL;
}

void heap_remove(struct heap *h, struct heap_node *n)
{
    size_t i = n->index;

    if (n->index == HEAP_NOT_IN_HEAP)
        return;
    assert(i < h->len && h->items[i].node == n);
    n->index = HEAP_NOT_IN_HEAP;
    if (i != --h->len) {
        /* The last item fills the hole; it may belong above or below it. */
        heap_place(h, i, h->items[h->len]);
        heap_fix(h, i);
    }
    heap_shrink_if_sparse(h);
}

void heap_update(struct heap *h, struct heap_node *n, uint64_t deadline)
{
    assert(n->index < h->len && h->items[n->index].node == n);
    h->items[n->index].deadline = deadline;
    heap_fix(h, n->index);
}

uint64_t heap_deadline(const struct heap *h, const struct heap_node *n)
{
    assert(n->index < h->len && h->items[n->index].node == n);
    return h->items[n->index].deadline;
}

struct heap_node *heap_peek(const struct heap *h)
{
    return h->len ? h->items[0].node : NULL;
}

uint64_t heap_peek_deadline(const struct heap *h)
{
    return h->len ? h->items[0].deadline : UINT64_MAX;
}

struct heap_node *heap_pop(struct heap *h)
{
    struct heap_node *top = heap_peek(h);

    if (top != NULL)
        heap_remove(h, top);
    return top;
}
