/* alloc.c - the allocator seam and its fault injector (see alloc.h).
 *
 * State is a few counters.  `budget` is how many more allocations may
 * succeed before injection starts (-1: never), and `sticky` says whether
 * injection stops after the first failure (alloc_fail_nth) or lasts
 * (alloc_fail_after).  cfy_free never counts: freeing cannot fail, and a
 * failure path must always be able to clean up.
 */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static long budget = -1;       /* allocations left before failing; -1 = off */
static int sticky;             /* keep failing once started */
static unsigned long attempts; /* every call that could allocate */
static unsigned long failed;   /* calls the injector turned into NULL */
static int held;               /* alloc_fail_hold depth */

/* 1 when this allocation must fail. */
static int inject(void)
{
    if (held > 0)
        return 0;
    attempts++;
    if (budget < 0)
        return 0;
    if (budget > 0) {
        budget--;
        return 0;
    }
    failed++;
    if (!sticky)
        budget = -1;
    return 1;
}

void *cfy_malloc(size_t size)
{
    return inject() ? NULL : malloc(size);
}

void *cfy_calloc(size_t n, size_t size)
{
    return inject() ? NULL : calloc(n, size);
}

void *cfy_realloc(void *ptr, size_t size)
{
    return inject() ? NULL : realloc(ptr, size);
}

char *cfy_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = cfy_malloc(len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}

void *cfy_aligned_alloc(size_t align, size_t size)
{
    void *p;

    if (inject() || posix_memalign(&p, align, size) != 0)
        return NULL;
    return p;
}

void cfy_free(void *ptr)
{
    free(ptr);
}

void alloc_fail_after(long n)
{
    budget = n < 0 ? -1 : n;
    sticky = 1;
}

void alloc_fail_nth(long n)
{
    /* The nth allocation fails: n - 1 succeed first. */
    budget = n < 1 ? -1 : n - 1;
    sticky = 0;
}

void alloc_fail_hold(int on)
{
    held += on ? 1 : -1;
}

void alloc_fail_reset(void)
{
    budget = -1;
    sticky = 0;
}

unsigned long alloc_count(void)
{
    return attempts;
}

unsigned long alloc_failures(void)
{
    return failed;
}
