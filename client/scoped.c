/* client/scoped.c - scoped locks (cachify_with_lock, guards) and the
 * functions behind the decorator macros of cachify_decorate.h.
 *
 * Owns: the guard's copy of its key, and the keys of decorated functions
 * (formatted and checked by wire.c, shared with the async decorators);
 * the acquire of every sync guard, pool.c's pool guards too
 * (cachify_impl_guard_acquire and _fmt, sync_internal.h).
 * Does not own: the lock calls themselves (sync.c), which work the same on
 * every backend, so this file has no backend code at all.
 *
 * A guard releases with its token, so a guard whose lock expired and was
 * taken by someone else releases nothing (py-cachify's context manager
 * deletes the key whoever holds it), and says so: CACHIFY_LOST.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cachify.h"
#include "client/sync_internal.h"
#include "client/wire.h"

/* Formatted keys up to this size need no allocation in the companions;
 * longer ones (up to CACHIFY_KEY_MAX) are allocated. */
#define KEY_STACK 256

/* Releases key with token: CACHIFY_OK; CACHIFY_LOST with c's message when
 * token no longer held it; or the release's error (its message kept). */
static int release_held(struct cachify *c, const char *key, uint64_t token)
{
    int rc = cachify_release(c, key, token);

    if (rc == 1)
        return CACHIFY_OK;
    if (rc == 0)
        return cachify_impl_set_err(c, CACHIFY_LOST, "%s%s", key,
                                    WIRE_LOST_TAIL);
    return rc;
}

/* Stops g's renewer (if any): CACHIFY_LOST when a renewal failed. */
static int stop_renewal(struct cachify_guard *g)
{
    int rc = cachify_renewer_stop(g->renewer);

    g->renewer = NULL;
    return rc;
}

int cachify_with_lock(struct cachify *c, const char *key,
                      const struct cachify_lock_opts *opts,
                      void (*fn)(void *arg, uint64_t token), void *arg)
{
    struct cachify_guard g;

    if (fn == NULL)
        return c ? cachify_impl_set_err(c, CACHIFY_ERR_ARG, "fn is NULL")
                 : CACHIFY_ERR_ARG;
    g = cachify_guard_acquire(c, key, opts);
    if (g.status != CACHIFY_OK)
        return g.status;
    fn(arg, g.token);
    /* A failed release leaves its message in cachify_errstr; the lock then
     * ends with its TTL.  A lost lock is said: fn ran unprotected for a
     * while, which its caller may have to undo. */
    return cachify_guard_release(&g) == CACHIFY_LOST ? CACHIFY_LOST
                                                     : CACHIFY_OK;
}

struct cachify_guard cachify_guard_acquire(struct cachify *c, const char *key,
                                           const struct cachify_lock_opts *opts)
{
    struct cachify_guard g = {c, NULL, 0, CACHIFY_ERR_ARG, NULL};

    if (c != NULL)
        g.status = cachify_impl_guard_acquire(c, key, 0, 0, opts, &g.key,
                                              &g.token, &g.renewer);
    return g;
}

/* Both guard acquires once the guard owns its key (*held, freed and NULL
 * on failure): see cachify_impl_guard_acquire. */
static int guard_take(struct cachify *c, int pool, unsigned max_size,
                      const struct cachify_lock_opts *opts, char **held,
                      uint64_t *token, struct cachify_renewer **renewer)
{
    /* The lease may start as soon as the request leaves. */
    long long began = cachify_impl_now_ms();
    int rc = pool ? cachify_pool_acquire(c, *held, max_size, opts, token)
                  : cachify_acquire(c, *held, opts, token);

    if (rc == CACHIFY_OK)
        rc = cachify_impl_renew_held(c, *held, *token, opts, pool, began,
                                     renewer);
    if (rc != CACHIFY_OK) {
        free(*held);
        *held = NULL;
    }
    return rc;
}

int cachify_impl_guard_acquire(struct cachify *c, const char *key, int pool,
                               unsigned max_size,
                               const struct cachify_lock_opts *opts,
                               char **held, uint64_t *token,
                               struct cachify_renewer **renewer)
{
    /* Copy first: a lock or slot taken that the guard could not remember
     * would be held until its lifetime ends. */
    if (key != NULL && (*held = strdup(key)) == NULL)
        return cachify_impl_set_err(c, CACHIFY_ERR_NOMEM, "out of memory");
    return guard_take(c, pool, max_size, opts, held, token, renewer);
}

int cachify_guard_release(struct cachify_guard *g)
{
    int rc = CACHIFY_OK;

    if (g == NULL || g->key == NULL)
        return CACHIFY_OK; /* failed acquire, or released already */
    if (g->status == CACHIFY_OK) {
        /* Renewals end first, so none runs after the release.  A failed
         * one means the lock may have lapsed meanwhile, even when the
         * release still finds it: CACHIFY_LOST either way. */
        int renewed = stop_renewal(g);

        rc = release_held(g->client, g->key, g->token);
        if (renewed == CACHIFY_LOST && rc != CACHIFY_LOST)
            rc = cachify_impl_set_err(g->client, CACHIFY_LOST,
                                      "%s: a renewal failed while it was "
                                      "held (the renew callback was told)",
                                      g->key);
    }
    free(g->key);
    g->key = NULL;
    g->token = 0;
    return rc;
}

/* The key from fmt/ap (wire_format_key) into buf[cap] or an allocation,
 * with op (CACHIFY_IMPL_OP_*) after it when c has pycachify_keys:
 * CACHIFY_OK with *out, or an error with c's message set. */
int cachify_impl_format_key(struct cachify *c, char *buf, size_t cap,
                            char **out, const char *op, const char *fmt,
                            va_list ap)
{
    const char *suffix = op != NULL && cachify_impl_pycachify_keys(c) ? op
                                                                     : NULL;
    char why[128];
    int rc = wire_format_key(buf, cap, out, suffix, why, sizeof why, fmt, ap);

    if (rc == CACHIFY_ERR_NOMEM)
        return cachify_impl_set_err(c, rc, "out of memory");
    if (rc != CACHIFY_OK)
        return cachify_impl_set_err(c, rc, "%s", why);
    return CACHIFY_OK;
}

int cachify_impl_owned_key(struct cachify *c, char **out, const char *op,
                           const char *fmt, va_list ap)
{
    char buf[KEY_STACK], *key;
    int rc = cachify_impl_format_key(c, buf, sizeof buf, &key, op, fmt, ap);

    if (rc != CACHIFY_OK)
        return rc;
    /* Move an allocated key, copy a stack one. */
    if (key == buf && (key = strdup(buf)) == NULL)
        return cachify_impl_set_err(c, CACHIFY_ERR_NOMEM, "out of memory");
    *out = key;
    return CACHIFY_OK;
}

int cachify_impl_guard_fmt(struct cachify *c, int pool, unsigned max_size,
                           const struct cachify_lock_opts *opts,
                           char **held, uint64_t *token,
                           struct cachify_renewer **renewer, const char *op,
                           const char *fmt, va_list ap)
{
    int rc;

    *held = NULL;
    *token = 0;
    *renewer = NULL;
    if (c == NULL)
        return CACHIFY_ERR_ARG;
    rc = cachify_impl_owned_key(c, held, op, fmt, ap);
    if (rc != CACHIFY_OK)
        return rc;
    return guard_take(c, pool, max_size, opts, held, token, renewer);
}

int cachify_impl_lock_fmt(struct cachify_guard *g, struct cachify *c,
                          const struct cachify_lock_opts *opts,
                          const char *op, const char *fmt, ...)
{
    va_list ap;

    g->client = c;
    va_start(ap, fmt);
    g->status = cachify_impl_guard_fmt(c, 0, 0, opts, &g->key, &g->token,
                                       &g->renewer, op, fmt, ap);
    va_end(ap);
    return g->status;
}

/* The companions' shared body: formats the key, then asks whether it is
 * held (force 0) or force-releases it (force 1). */
static int query_fmt(struct cachify *c, int force, const char *op,
                     const char *fmt, va_list ap)
{
    char buf[KEY_STACK], *key;
    if (c == NULL)
        return CACHIFY_ERR_ARG;
    int rc = cachify_impl_format_key(c, buf, sizeof buf, &key, op, fmt, ap);
    if (rc != CACHIFY_OK)
        return rc;
    rc = force ? cachify_force_release(c, key) : cachify_is_locked(c, key);
    if (key != buf)
        free(key);
    return rc;
}

int cachify_impl_is_locked_fmt(struct cachify *c, const char *op,
                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = query_fmt(c, 0, op, fmt, ap);
    va_end(ap);
    return rc;
}

int cachify_impl_release_fmt(struct cachify *c, const char *op,
                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = query_fmt(c, 1, op, fmt, ap);
    va_end(ap);
    return rc;
}
