/* engine/slab.h - a size-class allocator for many small objects (lock
 * entries), and the 32-bit references the engine's maps and heaps use.
 *
 * Owns: 1 MiB pages carved into equal slots, one size class per 8 bytes of
 * object size up to SLAB_MAX_SIZE, the lists of each class's pages, and the
 * two tables that number objects (pages, and objects outside them).
 * Does not own: what is stored in the slots, objects above SLAB_MAX_SIZE
 * beyond their reference (cfy_malloc / cfy_free with an 8-byte prefix), or
 * objects registered with slab_enter, which stay their caller's.
 *
 * Why: glibc's malloc puts an 8-byte header on every chunk and rounds chunks
 * to 16 bytes, so a 40-byte lock entry costs 48 and an 85-byte one 96.  Here
 * an object costs its size rounded up to 8 bytes and nothing else: the slot
 * has no header because the caller passes the object's size back to
 * slab_free (the lock engine knows it from the key length), and the page is
 * found from the address alone (pages are aligned to their size).
 *
 * Every slot is 8-byte aligned.  slab_alloc and slab_free are O(1).  Pages
 * come from cfy_aligned_alloc, so the fault injector reaches them; a page
 * whose last object is freed goes back at once, except the last page of its
 * class that has free slots, which is kept so that allocating and freeing
 * one object at a page boundary does not allocate and free a page each time.
 *
 * References.  Every object the slab hands out, and any object a caller
 * registers with slab_enter, has a 32-bit number, its reference, so that
 * the engine's maps and heaps (map.h, heap.h) link a million objects with
 * 4-byte numbers instead of 8-byte pointers.  A slot's reference is its
 * page's number (from a page directory) in bits 17-30 and its offset in the
 * page / 8 in bits 0-16; an object outside the pages (above SLAB_MAX_SIZE,
 * or registered) has SLAB_REF_APART set and its index in a table of such
 * objects below it.  slab_ptr turns a reference back into the address in a
 * few instructions; both ways are O(1).  0 (SLAB_REF_NONE) names nothing:
 * a slot never starts at offset 0, where its page's header is.
 * Not thread-safe.
 */
#ifndef CACHIFY_ENGINE_SLAB_H
#define CACHIFY_ENGINE_SLAB_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of one page; pages are aligned to this (a power of two).  1 MiB,
 * not less: glibc's posix_memalign leaves a free fragment in front of each
 * aligned block, and its headers dirty two 4 KiB pages that nothing else
 * touches, so 64 KiB pages cost 12% more resident memory than their size
 * and 1 MiB pages under 1% (measured).  Only the used part of a page
 * becomes resident: slots are handed out from its start. */
#define SLAB_PAGE_SIZE ((size_t)1024 * 1024)

/* Size classes are multiples of SLAB_STEP up to SLAB_MAX_SIZE. */
#define SLAB_STEP 8
#define SLAB_MAX_SIZE 256
#define SLAB_CLASSES (SLAB_MAX_SIZE / SLAB_STEP)

/* References (see the top).  SLAB_SLOT_BITS hold a slot's offset / 8 in a
 * 1 MiB page; the page number takes the bits above them up to bit 30, so
 * one slab holds at most SLAB_MAX_PAGES pages (16 GiB of slots: 268 million
 * 64-byte entries) and SLAB_MAX_APART objects outside them; past either,
 * allocating fails as out of memory does. */
#define SLAB_REF_NONE 0u
#define SLAB_REF_APART 0x80000000u
#define SLAB_SLOT_BITS 17
#define SLAB_SLOT_MASK ((1u << SLAB_SLOT_BITS) - 1)
#define SLAB_MAX_PAGES ((uint32_t)1 << (31 - SLAB_SLOT_BITS))
#define SLAB_MAX_APART (SLAB_REF_APART - 1)

/* Defined when built with AddressSanitizer: free slots and the bytes of a
 * slot past its object's size are then poisoned (see slab.c; the plain
 * build does the same through valgrind's memcheck client requests). */
#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif

struct slab_page;

/* A table of numbered addresses: the page directory, and the objects
 * outside the pages.  v[i] is an address, or, while number i is free,
 * the next free number shifted left by one with the low bit set (the
 * addresses are at least 2-aligned, so their low bit is 0).  Private. */
struct slab_table {
    uint64_t *v;        /* cap of them; uint64_t holds a pointer anywhere */
    uint32_t cap;       /* numbers allocated */
    uint32_t top;       /* numbers [top, cap) never used */
    uint32_t free;      /* the first free number below top, or UINT32_MAX */
    uint32_t live;      /* numbers in use */
};

/* Visible so it can be embedded; fields are private by convention. */
struct slab {
    struct slab_page *partial[SLAB_CLASSES]; /* pages with a free slot */
    struct slab_page *full[SLAB_CLASSES];    /* pages without one */
    size_t pages;                            /* pages held, for tests/stats */
    struct slab_table dir;                   /* page number -> page */
    struct slab_table apart;                 /* objects outside the pages */
};

/* Makes an empty slab; allocates nothing until the first slab_alloc. */
void slab_init(struct slab *s);

/* Frees every page, and so every object still in one, and both tables
 * (objects above SLAB_MAX_SIZE are the caller's to slab_free, registered
 * ones the caller's to free); s is empty again. */
void slab_destroy(struct slab *s);

/* size bytes (size 0 counts as 1), 8-byte aligned, or NULL when out of
 * memory; *ref (ref not NULL) gets the object's reference.  Objects above
 * SLAB_MAX_SIZE come from cfy_malloc, with 8 bytes in front that hold
 * their reference. */
void *slab_alloc(struct slab *s, size_t size, uint32_t *ref);

/* Frees p (NULL: no-op), which slab_alloc(s, size, ...) returned: size must be
 * the one it was allocated with (or any size of the same class). */
void slab_free(struct slab *s, void *p, size_t size);

/* The reference of p, which slab_alloc(s, size, ...) returned (size as
 * for slab_free). */
uint32_t slab_ref_of(const struct slab *s, const void *p, size_t size);

/* Registers p, an object the caller allocated itself (at least 2-aligned),
 * and returns its reference (SLAB_REF_APART set), or SLAB_REF_NONE when
 * the table cannot grow (out of memory, or SLAB_MAX_APART objects).  The
 * caller frees p itself, after slab_leave. */
uint32_t slab_enter(struct slab *s, void *p);

/* Forgets ref, which slab_enter returned; its number may be reused. */
void slab_leave(struct slab *s, uint32_t ref);

/* The address ref (not SLAB_REF_NONE, not left or freed) names. */
static inline void *slab_ptr(const struct slab *s, uint32_t ref)
{
    if (ref & SLAB_REF_APART)
        return (void *)(uintptr_t)s->apart.v[ref & ~SLAB_REF_APART];
    return (char *)(uintptr_t)s->dir.v[ref >> SLAB_SLOT_BITS] +
           (size_t)(ref & SLAB_SLOT_MASK) * SLAB_STEP;
}

/* Pages s holds now. */
static inline size_t slab_pages(const struct slab *s) { return s->pages; }

/* Objects registered with slab_enter, or allocated above SLAB_MAX_SIZE,
 * and not yet left or freed.  For tests. */
static inline size_t slab_apart(const struct slab *s) { return s->apart.live; }

#endif
