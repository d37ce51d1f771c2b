/* engine/slab.c - the size-class allocator of slab.h.
 *
 * Owns: the pages and their bookkeeping, and the reference tables.  Does
 * not own: the contents of the slots, nor objects above SLAB_MAX_SIZE
 * (cfy_malloc, with their reference in 8 bytes in front), nor registered
 * objects.
 *
 * Layout.  A page is SLAB_PAGE_SIZE bytes aligned to SLAB_PAGE_SIZE; its
 * header (struct slab_page) sits at the start, the slots of its one class
 * follow it back to back, and the tail too small for a slot is unused (under
 * one slot: at most 255 bytes of 1 MiB).  slab_free finds the header by
 * masking the object's address.  A page hands out slots first from its free
 * list (slots freed before, linked through their first word), then from its
 * never-used tail (`fresh`), so a new page touches its memory only as far as
 * it is used.
 *
 * Each class keeps its pages on one of two doubly linked lists: `partial`
 * (a slot is free; slab_alloc takes the head) or `full`.  A page moves
 * between them when it fills up or gets its first free slot back, so no
 * operation searches.  A page whose live count falls to zero is freed,
 * unless it is the only page on its class's partial list: then it stays, so
 * that a caller allocating and freeing at a page boundary does not make a
 * page allocation each time.  At most one empty page per class is kept that
 * way.
 *
 * References (slab.h).  The page directory and the table of objects
 * outside the pages are one structure (struct slab_table): an array of
 * addresses whose free numbers are chained through their own cells, so
 * taking or returning a number is O(1); the array doubles when it is full
 * (amortised O(1), through cfy_realloc, so the fault injector reaches it)
 * and is never shrunk.  The directory is at most SLAB_MAX_PAGES cells
 * (128 KiB).  The other table keeps its peak: 8 bytes for every object
 * registered at the busiest moment, still held after they are freed
 * (1,000,000 registered and left keep 1,048,576 cells, 8 MiB), where the
 * map's bucket arrays and the heap's arrays shrink back.  It cannot shrink
 * while a high number is in use, and a number cannot move: the maps and
 * heaps hold it.  A page records its number in its header, so an object's
 * reference comes from its address and size alone.
 *
 * Under AddressSanitizer the free slots and the unused part of each object's
 * slot are poisoned, so a use after slab_free, or a read past the size given
 * to slab_alloc, is reported as it would be for malloc'd memory; so is the
 * reference in front of an object above SLAB_MAX_SIZE.  Under
 * valgrind's memcheck (when its header is there at build time) the same
 * bytes are made inaccessible with its client requests, so the valgrind run
 * of the daemon catches those too; outside valgrind a client request is a
 * few no-op instructions.
 */
#include "engine/slab.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"

#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#elif defined(__has_include) && __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define POISON(p, n) ((void)VALGRIND_MAKE_MEM_NOACCESS((p), (n)))
#define UNPOISON(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A free slot: its first word links it to the next free slot of its page. */
struct slot {
    struct slot *next;
};

struct slab_page {
    struct slab_page *prev, *next; /* in its class's partial or full list */
    struct slot *free;             /* freed slots of this page */
    uint32_t live;                 /* objects handed out and not freed */
    uint32_t fresh;                /* slots [fresh, nslots) never handed out */
    uint32_t nslots;               /* slots of this page */
    uint32_t cls;                  /* size class: (cls + 1) * 8-byte slots */
    uint32_t num;                  /* its number in the page directory */
};

/* Bytes in front of an object above SLAB_MAX_SIZE: its reference, padded
 * so the object stays 8-aligned.  Poisoned while the object lives, as
 * malloc's redzone in front of it would be: a stray write there would
 * renumber the object without a report. */
#define BIG_PREFIX ((size_t)8)

/* Where the first slot starts: the header rounded up to SLAB_STEP. */
#define SLOTS_OFFSET \
    ((sizeof(struct slab_page) + SLAB_STEP - 1) / SLAB_STEP * SLAB_STEP)

_Static_assert((SLAB_PAGE_SIZE & (SLAB_PAGE_SIZE - 1)) == 0,
               "pages are found by masking: a power of two");
_Static_assert(SLAB_PAGE_SIZE / SLAB_STEP == (size_t)1 << SLAB_SLOT_BITS,
               "a reference's low bits hold any offset / 8 of a page");
_Static_assert(SLAB_STEP >= sizeof(struct slot) &&
                   SLAB_MAX_SIZE % SLAB_STEP == 0,
               "a slot holds the free-list link");

static size_t class_of(size_t size)
{
    return size == 0 ? 0 : (size - 1) / SLAB_STEP;
}

static size_t slot_size(size_t cls)
{
    return (cls + 1) * SLAB_STEP;
}

static struct slab_page *page_of(const void *p)
{
    uintptr_t mask = ~(uintptr_t)(SLAB_PAGE_SIZE - 1);
    return (struct slab_page *)((uintptr_t)p & mask);
}

static int page_has_free(const struct slab_page *pg)
{
    return pg->free != NULL || pg->fresh < pg->nslots;
}

static void list_push(struct slab_page **head, struct slab_page *pg)
{
    pg->prev = NULL;
    pg->next = *head;
    if (*head)
        (*head)->prev = pg;
    *head = pg;
}

static void list_unlink(struct slab_page **head, struct slab_page *pg)
{
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        *head = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    pg->prev = pg->next = NULL;
}

#define TABLE_NO_FREE UINT32_MAX
#define TABLE_INITIAL_CAP 16

static void table_init(struct slab_table *tb)
{
    tb->v = NULL;
    tb->cap = tb->top = tb->live = 0;
    tb->free = TABLE_NO_FREE;
}

/* A number for p (low bit 0), below limit; 0 and *num set, or -1 when the
 * array cannot grow (out of memory, or limit numbers in use). */
static int table_put(struct slab_table *tb, const void *p, uint32_t limit,
                     uint32_t *num)
{
    uint32_t i;

    assert(((uintptr_t)p & 1) == 0);
    if (tb->free != TABLE_NO_FREE) {
        i = tb->free;
        tb->free = (uint32_t)(tb->v[i] >> 1);
    } else {
        if (tb->top == tb->cap) {
            uint32_t cap = tb->cap ? tb->cap : TABLE_INITIAL_CAP / 2;
            if (tb->cap >= limit)
                return -1;
            cap = cap > limit / 2 ? limit : cap * 2;
#if SIZE_MAX / 8 < UINT32_MAX /* where size_t is 32 bits */
            if (cap > SIZE_MAX / sizeof(*tb->v))
                return -1;
#endif
            uint64_t *grown = cfy_realloc(tb->v, (size_t)cap * sizeof(*grown));
            if (grown == NULL)
                return -1; /* the old array is still ours */
            tb->v = grown;
            tb->cap = cap;
        }
        i = tb->top++;
    }
    tb->v[i] = (uint64_t)(uintptr_t)p;
    tb->live++;
    *num = i;
    return 0;
}

/* Returns number i to the free chain. */
static void table_drop(struct slab_table *tb, uint32_t i)
{
    assert(i < tb->top && (tb->v[i] & 1) == 0 && tb->live > 0);
    tb->v[i] = ((uint64_t)tb->free << 1) | 1;
    tb->free = i;
    tb->live--;
}

static void table_free(struct slab_table *tb)
{
    cfy_free(tb->v);
    table_init(tb);
}

/* A new empty page of class cls, put on its partial list; NULL on OOM. */
static struct slab_page *page_new(struct slab *s, size_t cls)
{
    struct slab_page *pg = cfy_aligned_alloc(SLAB_PAGE_SIZE, SLAB_PAGE_SIZE);
    uint32_t num;

    if (pg == NULL)
        return NULL;
    if (table_put(&s->dir, pg, SLAB_MAX_PAGES, &num) != 0) {
        cfy_free(pg);
        return NULL;
    }
    pg->num = num;
    pg->free = NULL;
    pg->live = 0;
    pg->fresh = 0;
    pg->nslots = (uint32_t)((SLAB_PAGE_SIZE - SLOTS_OFFSET) / slot_size(cls));
    pg->cls = (uint32_t)cls;
    POISON((char *)pg + SLOTS_OFFSET, SLAB_PAGE_SIZE - SLOTS_OFFSET);
    list_push(&s->partial[cls], pg);
    s->pages++;
    return pg;
}

static void page_free(struct slab *s, struct slab_page *pg)
{
    UNPOISON((char *)pg + SLOTS_OFFSET, SLAB_PAGE_SIZE - SLOTS_OFFSET);
    table_drop(&s->dir, pg->num);
    cfy_free(pg);
    s->pages--;
}

void slab_init(struct slab *s)
{
    memset(s, 0, sizeof(*s));
    table_init(&s->dir);
    table_init(&s->apart);
}

void slab_destroy(struct slab *s)
{
    for (size_t cls = 0; cls < SLAB_CLASSES; cls++) {
        struct slab_page *lists[2] = { s->partial[cls], s->full[cls] };
        for (int l = 0; l < 2; l++) {
            while (lists[l] != NULL) {
                struct slab_page *next = lists[l]->next;
                page_free(s, lists[l]);
                lists[l] = next;
            }
        }
    }
    assert(s->pages == 0);
    table_free(&s->dir);
    table_free(&s->apart);
    slab_init(s);
}

void *slab_alloc(struct slab *s, size_t size, uint32_t *ref)
{
    size_t cls;
    struct slab_page *pg;
    void *p;

    if (size > SLAB_MAX_SIZE) {
        char *big = size <= SIZE_MAX - BIG_PREFIX
                        ? cfy_malloc(BIG_PREFIX + size) : NULL;
        uint32_t r;
        if (big == NULL)
            return NULL;
        if ((r = slab_enter(s, big + BIG_PREFIX)) == SLAB_REF_NONE) {
            cfy_free(big);
            return NULL;
        }
        memcpy(big, &r, sizeof(r));
        POISON(big, BIG_PREFIX);
        if (ref)
            *ref = r;
        return big + BIG_PREFIX;
    }
    cls = class_of(size);
    pg = s->partial[cls];
    if (pg == NULL && (pg = page_new(s, cls)) == NULL)
        return NULL;
    if (pg->free != NULL) {
        struct slot *sl = pg->free;
        UNPOISON(sl, sizeof(*sl));
        pg->free = sl->next;
        POISON(sl, sizeof(*sl));
        p = sl;
    } else {
        p = (char *)pg + SLOTS_OFFSET + (size_t)pg->fresh++ * slot_size(cls);
    }
    if (ref)
        *ref = (pg->num << SLAB_SLOT_BITS) |
               (uint32_t)(((char *)p - (char *)pg) / SLAB_STEP);
    pg->live++;
    if (!page_has_free(pg)) {
        list_unlink(&s->partial[cls], pg);
        list_push(&s->full[cls], pg);
    }
    UNPOISON(p, size ? size : 1);
    return p;
}

void slab_free(struct slab *s, void *p, size_t size)
{
    size_t cls;
    struct slab_page *pg;
    struct slot *sl = p;

    if (p == NULL)
        return;
    if (size > SLAB_MAX_SIZE) {
        slab_leave(s, slab_ref_of(s, p, size));
        UNPOISON((char *)p - BIG_PREFIX, BIG_PREFIX);
        cfy_free((char *)p - BIG_PREFIX);
        return;
    }
    cls = class_of(size);
    pg = page_of(p);
    assert(pg->cls == cls && pg->live > 0);
    assert(((size_t)((char *)p - (char *)pg) - SLOTS_OFFSET) %
               slot_size(cls) == 0);
    if (!page_has_free(pg)) {
        list_unlink(&s->full[cls], pg);
        list_push(&s->partial[cls], pg);
    }
    POISON(p, slot_size(cls));
    UNPOISON(sl, sizeof(*sl));
    sl->next = pg->free;
    POISON(sl, sizeof(*sl));
    pg->free = sl;
    pg->live--;
    /* Empty: give it back, unless it is the class's only page with room. */
    if (pg->live == 0 && (s->partial[cls] != pg || pg->next != NULL)) {
        list_unlink(&s->partial[cls], pg);
        page_free(s, pg);
    }
}

uint32_t slab_ref_of(const struct slab *s, const void *p, size_t size)
{
    uint32_t ref;

    if (size > SLAB_MAX_SIZE) {
        const char *prefix = (const char *)p - BIG_PREFIX;
        UNPOISON(prefix, BIG_PREFIX);
        memcpy(&ref, prefix, sizeof(ref));
        POISON(prefix, BIG_PREFIX);
    } else {
        const struct slab_page *pg = page_of(p);
        size_t off = (size_t)((const char *)p - (const char *)pg);
        ref = (pg->num << SLAB_SLOT_BITS) | (uint32_t)(off / SLAB_STEP);
    }
    (void)s;
    return ref;
}

uint32_t slab_enter(struct slab *s, void *p)
{
    uint32_t i;

    if (table_put(&s->apart, p, SLAB_MAX_APART, &i) != 0)
        return SLAB_REF_NONE;
    return SLAB_REF_APART | i;
}

void slab_leave(struct slab *s, uint32_t ref)
{
    assert(ref & SLAB_REF_APART);
    table_drop(&s->apart, ref & ~SLAB_REF_APART);
}
