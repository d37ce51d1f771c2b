/* client/sync_internal.h - internal: what sync.c shares with scoped.c.
 *
 * Owns nothing; declares the sync.c helpers the guard and decorator code
 * needs: reporting its own errors through the handle's message, and
 * whether the handle's decorated keys are py-cachify's.
 */
#ifndef CACHIFY_CLIENT_SYNC_INTERNAL_H
#define CACHIFY_CLIENT_SYNC_INTERNAL_H

struct cachify;

/* Sets c's message (printf-style; grows the buffer for long keys) and
 * returns status, so callers can write `return cachify_impl_set_err(...)`. */
int cachify_impl_set_err(struct cachify *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when c was opened with pycachify_keys (decorated keys take "-lock" /
 * "-once"), else 0. */
int cachify_impl_pycachify_keys(const struct cachify *c);

#endif
