/* engine/heap.c - the deadline min-heap declared in engine/heap.h.
 *
 * Owns: the growable arrays of items and the ordering rule.  Does not own:
 * the nodes (callers embed them) or any clock.  The array is a binary heap in
 * the usual layout (children of i at 2i+1 and 2i+2).  Each item carries its
 * node's deadline beside its object's reference, so sifting compares one
 * contiguous array of deadlines and never loads a node; a node is written
 * only when its item moves (its index field is rewritten then, through
 * slab_ptr), which lets heap_remove, heap_update and heap_deadline find a
 * node's item in O(1).  The items are split in two arrays, 64-bit deadlines
 * and 32-bit references, so an item is 12 bytes with every deadline kept
 * whole; both live in one allocation (the references after the cap-th
 * deadline), moved into place when the capacity changes.
 *
 * Order is by deadline alone; equal deadlines come out in whatever order the
 * sifts leave them (no insertion counter: 12 bytes per item instead of 20,
 * and nothing in the daemon needs FIFO among equal deadlines).
 *
 * The array grows by doubling, up to HEAP_MAX_LEN items (the 32-bit index
 * and its HEAP_NOT_IN_HEAP sentinel), and halves when a removal leaves it
 * under a quarter full (never below HEAP_INITIAL_CAP).  Keeping the peak
 * would cost 12 bytes per timer for good: a million locks taken once and
 * released leave 12 MiB the daemon never uses again.  Halving at a quarter,
 * not at a half, is the hysteresis: after either resize the array is half
 * full, so it takes len doubling or halving again before the next one, and
 * a heap hovering at a boundary does not reallocate on every push and pop.
 * A shrinking realloc is the only cost and is amortised O(1) per removal:
 * the references are moved down to their new place first (one memmove of
 * len of them), then glibc shrinks in place (a split chunk, or mremap for a
 * large mapping).  A failed shrink keeps the larger block, laid out for the
 * smaller capacity, which is just as valid.
 */
#include "engine/heap.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* First allocation: enough for a quiet daemon without early regrowth. */
#define HEAP_INITIAL_CAP 16

/* Bytes of one item: a deadline and a reference. */
#define ITEM_BYTES (sizeof(uint64_t) + sizeof(uint32_t))

/* The node of the object ref names. */
static inline struct heap_node *node_of(const struct heap *h, uint32_t ref)
{
    return (struct heap_node *)((char *)slab_ptr(h->slab, ref) +
                                h->node_offset);
}

/* Puts the item (deadline, ref) at slot i and records the slot in its
 * node, the one place index is set for nodes inside the heap. */
static void heap_place(struct heap *h, size_t i, uint64_t deadline,
                       uint32_t ref)
{
    h->deadlines[i] = deadline;
    h->refs[i] = ref;
    node_of(h, ref)->index = (uint32_t)i;
}

/* Moves the item at i towards the root while it is due before its parent. */
static void heap_sift_up(struct heap *h, size_t i)
{
    uint64_t deadline = h->deadlines[i];
    uint32_t ref = h->refs[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (deadline >= h->deadlines[parent])
            break;
        heap_place(h, i, h->deadlines[parent], h->refs[parent]);
        i = parent;
    }
    heap_place(h, i, deadline, ref);
}

/* Moves the item at i towards the leaves while a child is due before it. */
static void heap_sift_down(struct heap *h, size_t i)
{
    uint64_t deadline = h->deadlines[i];
    uint32_t ref = h->refs[i];

    for (;;) {
        size_t left = 2 * i + 1;
        size_t best;

        if (left >= h->len)
            break;
        best = left;
        if (left + 1 < h->len && h->deadlines[left + 1] < h->deadlines[left])
            best = left + 1;
        if (h->deadlines[best] >= deadline)
            break;
        heap_place(h, i, h->deadlines[best], h->refs[best]);
        i = best;
    }
    heap_place(h, i, deadline, ref);
}

/* Restores order around slot i after its item changed or was replaced;
 * only one of the two directions can be needed. */
static void heap_fix(struct heap *h, size_t i)
{
    if (i > 0 && h->deadlines[i] < h->deadlines[(i - 1) / 2])
        heap_sift_up(h, i);
    else
        heap_sift_down(h, i);
}

/* Points h's arrays into block, laid out for cap items. */
static void heap_lay_out(struct heap *h, void *block, size_t cap)
{
    h->deadlines = block;
    h->refs = block ? (uint32_t *)(h->deadlines + cap) : NULL;
    h->cap = cap;
}

/* Makes room for one more item; 0, or -1 when the array cannot grow. */
static int heap_reserve(struct heap *h)
{
    char *grown;
    size_t cap;

    if (h->len >= HEAP_MAX_LEN)
        return -1;
    if (h->len < h->cap)
        return 0;
    cap = h->cap ? h->cap : HEAP_INITIAL_CAP / 2;
    if (cap > SIZE_MAX / 2 / ITEM_BYTES)
        return -1;
    cap *= 2;
    if (cap > HEAP_MAX_LEN)
        cap = HEAP_MAX_LEN;
    grown = cfy_realloc(h->deadlines, cap * ITEM_BYTES);
    if (grown == NULL)
        return -1; /* the old block is still valid and still ours */
    /* The references sat after the old cap's deadlines: move them up. */
    memmove(grown + cap * sizeof(uint64_t),
            grown + h->cap * sizeof(uint64_t), h->len * sizeof(uint32_t));
    heap_lay_out(h, grown, cap);
    return 0;
}

/* Halves the array once len is under a quarter of it; see the top. */
static void heap_shrink_if_sparse(struct heap *h)
{
    if (h->cap <= HEAP_INITIAL_CAP || h->len >= h->cap / 4)
        return;
    size_t cap = h->cap / 2;
    char *block = (char *)h->deadlines;
    memmove(block + cap * sizeof(uint64_t), h->refs,
            h->len * sizeof(uint32_t));
    char *smaller = cfy_realloc(block, cap * ITEM_BYTES);
    /* On failure the larger block is still ours, laid out for cap. */
    heap_lay_out(h, smaller ? smaller : block, cap);
}

void heap_init(struct heap *h, const struct slab *slab, size_t node_offset)
{
    h->deadlines = NULL;
    h->refs = NULL;
    h->len = 0;
    h->cap = 0;
    h->slab = slab;
    h->node_offset = node_offset;
}

void heap_free(struct heap *h)
{
    /* Queued nodes are not touched: at shutdown their owners may already
     * be gone.  Their index fields are stale from here on. */
    cfy_free(h->deadlines);
    heap_init(h, h->slab, h->node_offset);
}

void heap_node_init(struct heap_node *n)
{
    n->index = HEAP_NOT_IN_HEAP;
}

int heap_push(struct heap *h, struct heap_node *n, uint32_t ref,
              uint64_t deadline)
{
    /* That ref names n is the caller's word: checking it here would cost
     * every push a resolve (asserts are on in the shipped build). */
    assert(n->index == HEAP_NOT_IN_HEAP && ref != SLAB_REF_NONE);
    (void)n;
    if (heap_reserve(h) != 0)
        return -1;
    heap_place(h, h->len, deadline, ref);
    h->len++;
    heap_sift_up(h, h->len - 1);
    return 0;
}

int heap_move(struct heap *from, struct heap *to, struct heap_node *n)
{
    assert(from->slab == to->slab && from->node_offset == to->node_offset);
    if (heap_reserve(to) != 0)
        return -1;
    uint64_t deadline = heap_deadline(from, n);
    uint32_t ref = from->refs[n->index];
    heap_remove(from, n);
    return heap_push(to, n, ref, deadline); /* room was made: cannot fail */
}

struct heap_node *heap_node_at(const struct heap *h, size_t i)
{
    return i < h->len ? node_of(h, h->refs[i]) : NULL;
}

void heap_remove(struct heap *h, struct heap_node *n)
{
    size_t i = n->index;

    if (n->index == HEAP_NOT_IN_HEAP)
        return;
    assert(i < h->len && node_of(h, h->refs[i]) == n);
    n->index = HEAP_NOT_IN_HEAP;
    if (i != --h->len) {
        /* The last item fills the hole; it may belong above or below it. */
        heap_place(h, i, h->deadlines[h->len], h->refs[h->len]);
        heap_fix(h, i);
    }
    heap_shrink_if_sparse(h);
}

void heap_update(struct heap *h, struct heap_node *n, uint64_t deadline)
{
    assert(n->index < h->len && node_of(h, h->refs[n->index]) == n);
    h->deadlines[n->index] = deadline;
    heap_fix(h, n->index);
}

uint64_t heap_deadline(const struct heap *h, const struct heap_node *n)
{
    assert(n->index < h->len && node_of(h, h->refs[n->index]) == n);
    return h->deadlines[n->index];
}

struct heap_node *heap_peek(const struct heap *h)
{
    return h->len ? node_of(h, h->refs[0]) : NULL;
}

uint64_t heap_peek_deadline(const struct heap *h)
{
    return h->len ? h->deadlines[0] : UINT64_MAX;
}

struct heap_node *heap_pop(struct heap *h)
{
    struct heap_node *top = heap_peek(h);

    if (top != NULL)
        heap_remove(h, top);
    return top;
}
