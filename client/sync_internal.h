/* client/sync_internal.h - internal: what sync.c shares with scoped.c.
 *
 * Owns nothing; declares the sync.c helpers the guard and decorator code
 * needs: reporting its own errors through the handle's message, and
 * whether the handle's decorated keys are py-cachify's; and scoped.c's
 * helpers that pool.c's guard and decorators share.
 */
#ifndef CACHIFY_CLIENT_SYNC_INTERNAL_H
#define CACHIFY_CLIENT_SYNC_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "client/cachify.h"

struct cachify;
struct mem_session;
struct wire_req;
struct wire_result;

/* Sets c's message (printf-style; grows the buffer for long keys) and
 * returns status, so callers can write `return cachify_impl_set_err(...)`. */
int cachify_impl_set_err(struct cachify *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when c was opened with pycachify_keys (decorated keys take "-lock" /
 * "-once"), else 0. */
int cachify_impl_pycachify_keys(const struct cachify *c);

/* The key of a decorated call from fmt/ap (wire_format_key) into
 * buf[cap] or an allocation (*out; the caller frees it when it is not
 * buf), with op (CACHIFY_IMPL_OP_*; NULL: none) after it when c has
 * pycachify_keys: CACHIFY_OK, or an error with c's message set. */
int cachify_impl_format_key(struct cachify *c, char *buf, size_t cap,
                            char **out, const char *op, const char *fmt,
                            va_list ap);

/* The same, always allocated: the key a guard keeps (*out, which the
 * caller frees).  CACHIFY_OK, or an error with c's message set. */
int cachify_impl_owned_key(struct cachify *c, char **out, const char *op,
                           const char *fmt, va_list ap);

/* What a key call of pool.c works with, from cachify_impl_begin: the
 * prefixed key (valid until the next call on the handle), the mem:
 * session (NULL on the network backends), the message buffer for the
 * wire checks, and the handle's default lifetime. */
struct cachify_impl_call {
    const char *key;
    size_t keylen;
    struct mem_session *mem;
    char *err;
    size_t errcap;
    long long default_exp_ms;
};

/* Starts a key call: clears c's message and builds prefix + key into
 * *call.  CACHIFY_OK, or an error (CACHIFY_ERR_ARG for c NULL). */
int cachify_impl_begin(struct cachify *c, const char *key,
                       struct cachify_impl_call *call);

/* Runs q on c's connection (opened, authenticated or replaced as every
 * call does): CACHIFY_OK with *value (value may be NULL), or an error with
 * c's message set; key (the caller's) words the messages. */
int cachify_impl_command(struct cachify *c, const struct wire_req *q,
                         const char *key, long long *value);

/* Sets c's message from res and returns res->status. */
int cachify_impl_result(struct cachify *c, const struct wire_result *res);

/* A new handle on c's URL and options (prefix included) with connect and
 * I/O timeouts of at most timeout_ms, for a renewer.  CACHIFY_OK with
 * *out, or an error with c's message set. */
int cachify_impl_reopen(struct cachify *c, int timeout_ms,
                        struct cachify **out);

/* The renew callback set on c (cachify_set_renew_cb). */
void cachify_impl_renew_cb(const struct cachify *c, cachify_renew_cb *cb,
                           void **arg);

/* CLOCK_MONOTONIC in milliseconds: the renewers' clock. */
long long cachify_impl_now_ms(void);

/* cachify_renewer_start, for a pool slot too (pool 1: POOL_EXTEND), with
 * the lease counted from began_ms (cachify_impl_now_ms() taken before the
 * acquire was sent). */
int cachify_impl_renewer_start(struct cachify_renewer **out,
                               struct cachify *c, const char *key,
                               uint64_t token, long long exp_ms, int pool,
                               long long began_ms, cachify_renew_cb cb,
                               void *arg);

/* For a guard that just took key (a lock, or a pool slot when pool), whose
 * acquire was sent at began_ms (cachify_impl_now_ms): with opts->renew,
 * starts its renewer into *out (else *out NULL); when the renewer cannot
 * start, frees the lock or slot again and returns the status.  CACHIFY_OK
 * otherwise. */
int cachify_impl_renew_held(struct cachify *c, const char *key,
                            uint64_t token,
                            const struct cachify_lock_opts *opts, int pool,
                            long long began_ms, struct cachify_renewer **out);

/* The acquire of every guard, the lock guards (scoped.c) and the pool
 * guards (pool.c) alike: the two public guard structs are distinct types
 * with the same fields, so they share it field by field.  Takes a lock,
 * or a slot of a pool of max_size when pool is set, under a copy of key
 * (NULL is refused by the acquire) kept in *held, with its token in
 * *token, then starts its renewer into *renewer with opts->renew
 * (cachify_impl_renew_held).  CACHIFY_OK; else the status, with *held
 * NULL (nothing to free).  c must not be NULL. */
int cachify_impl_guard_acquire(struct cachify *c, const char *key, int pool,
                               unsigned max_size,
                               const struct cachify_lock_opts *opts,
                               char **held, uint64_t *token,
                               struct cachify_renewer **renewer);

/* The same for a decorated call's guard (cachify_impl_lock_fmt,
 * cachify_impl_pool_fmt), its key formatted from fmt/ap with op
 * (cachify_impl_owned_key); *held, *token and *renewer are cleared
 * first, and c NULL is CACHIFY_ERR_ARG. */
int cachify_impl_guard_fmt(struct cachify *c, int pool, unsigned max_size,
                           const struct cachify_lock_opts *opts,
                           char **held, uint64_t *token,
                           struct cachify_renewer **renewer, const char *op,
                           const char *fmt, va_list ap);

/* c's default_exp_ms. */
long long cachify_impl_default_exp(const struct cachify *c);

#endif
