/* engine/slab.h - a size-class allocator for many small objects (lock entries).
 *
 * Owns: 1 MiB pages carved into equal slots, one size class per 8 bytes of
 * object size up to SLAB_MAX_SIZE, and the lists of each class's pages.
 * Does not own: what is stored in the slots, or objects above SLAB_MAX_SIZE,
 * which it passes to cfy_malloc / cfy_free unchanged.
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
 * Not thread-safe.
 */
#ifndef CACHIFY_ENGINE_SLAB_H
#define CACHIFY_ENGINE_SLAB_H

#include <stddef.h>

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

/* Visible so it can be embedded; fields are private by convention. */
struct slab {
    struct slab_page *partial[SLAB_CLASSES]; /* pages with a free slot */
    struct slab_page *full[SLAB_CLASSES];    /* pages without one */
    size_t pages;                            /* pages held, for tests/stats */
};

/* Makes an empty slab; allocates nothing until the first slab_alloc. */
void slab_init(struct slab *s);

/* Frees every page, and so every object still in one (objects above
 * SLAB_MAX_SIZE are the caller's to slab_free); s is empty again. */
void slab_destroy(struct slab *s);

/* size bytes (size 0 counts as 1), 8-byte aligned, or NULL when out of
 * memory.  Objects above SLAB_MAX_SIZE come from cfy_malloc. */
void *slab_alloc(struct slab *s, size_t size);

/* Frees p (NULL: no-op), which slab_alloc(s, size) returned: size must be
 * the one it was allocated with (or any size of the same class). */
void slab_free(struct slab *s, void *p, size_t size);

/* Pages s holds now. */
static inline size_t slab_pages(const struct slab *s) { return s->pages; }

#endif
