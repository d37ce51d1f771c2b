/* alloc.h - the one allocator seam of the daemon, the lock engine and the
 * protocol codec (the client library links the last two).  It sits at the
 * top of the tree, beside no folder, because all three use it and none of
 * them owns it.
 *
 * Owns: cfy_malloc/cfy_calloc/cfy_realloc/cfy_strdup/cfy_aligned_alloc/
 * cfy_free, thin wrappers over the C library, and a fault injector so tests
 * can make the Nth allocation fail (beanstalkd's falloc idea).  Does not
 * own: libevent's and jansson's allocations; a test routes those through
 * here itself with event_set_mem_functions() / json_set_alloc_funcs() when
 * it wants their failures too (the daemon does not, it keeps their
 * defaults).
 *
 * Every allocation of daemon/, engine/ and proto/ code goes through these, so every
 * out-of-memory path can be reached by a test (tests/unit/test_oom.c, the
 * fuzz_commands target) instead of being dead code nobody ever ran.  The
 * cost in production is one counter increment and one compare per call.
 * Not thread-safe by design: the daemon is single-threaded, and the fault
 * state is only touched by single-threaded tests.
 */
#ifndef CACHIFY_ALLOC_H
#define CACHIFY_ALLOC_H

#include <stddef.h>

/* Same contracts as malloc, calloc, realloc, strdup and free.  When the
 * fault injector says so they return NULL without allocating (and realloc
 * leaves its block untouched, as a real failure would). */
void *cfy_malloc(size_t size);
void *cfy_calloc(size_t n, size_t size);
void *cfy_realloc(void *ptr, size_t size);
char *cfy_strdup(const char *s);
void cfy_free(void *ptr);

/* size bytes aligned to align (a power of two and a multiple of
 * sizeof(void *)), from posix_memalign; freed with cfy_free.  NULL when out
 * of memory, when the injector says so, or when align is not valid. */
void *cfy_aligned_alloc(size_t align, size_t size);

/* Test hooks.  alloc_fail_after(n): the next n allocations succeed and every
 * one after them fails, until alloc_fail_reset().  alloc_fail_nth(n): only
 * the nth allocation from now (1-based) fails, the ones after it succeed
 * again.  n < 0 in either turns injection off, like alloc_fail_reset(). */
void alloc_fail_after(long n);
void alloc_fail_nth(long n);
void alloc_fail_reset(void);

/* alloc_fail_hold(1) ... alloc_fail_hold(0), nestable: allocations in
 * between neither fail nor count toward the injector, so a test harness's
 * own work (its fake client's writes) is never what fails. */
void alloc_fail_hold(int on);

/* Allocations attempted (successful or not, held ones not counted) since the
 * process started, and how many the injector failed: a test measures a scripted session with the
 * first, then replays it failing each allocation in turn. */
unsigned long alloc_count(void);
unsigned long alloc_failures(void);

#endif
