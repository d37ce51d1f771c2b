/* cachify_async_decorate.h - libcachify-client's decorator macros for the
 * async API: CACHIFY_ASYNC_LOCKED_FN, CACHIFY_ASYNC_ONCE_FN and
 * CACHIFY_ASYNC_POOLED_FN, the decorated call's handle (struct
 * cachify_async_call) and the cachify_impl_async_ functions the macros
 * expand to.
 *
 * Owns the macros and the declarations of their runtime in
 * client/async_deco.c.  Does not own the async calls (cachify_async.h) nor
 * the key spec convention shared with the sync macros (cachify_decorate.h:
 * a parenthesised printf argument list over the function's parameters,
 * CACHIFY_IMPL_UNPAREN, cachify_impl_use).  Not included on its own:
 * cachify.h includes it, and user code includes <cachify.h> alone.
 */
#ifndef CACHIFY_ASYNC_DECORATE_H
#define CACHIFY_ASYNC_DECORATE_H

#ifndef CACHIFY_H
#error "include <cachify.h>, which includes cachify_async_decorate.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- async decorator (runtime in client/async_deco.c)
 *
 * py-cachify's @lock on an `async def`, for a struct cachify_async, in the
 * shape of CACHIFY_LOCKED_FN_VOID in cachify_decorate.h (name, params,
 * args, keyspec, opts):
 *
 *     static const struct cachify_lock_opts sleep_opts = CACHIFY_LOCK_OPTS_DEFAULT;
 *     CACHIFY_ASYNC_LOCKED_FN(sleep_for, (int arg), (arg),
 *                             ("sleep_for_lock-%d", arg), &sleep_opts)
 *     {
 *         struct task *t = cachify_async_call_ctx(call);
 *         ... start the work; when it has ended: cachify_async_call_done(call);
 *     }
 *
 * defines (external linkage; CACHIFY_ASYNC_LOCKED_FN_DECL declares them)
 *     int sleep_for(struct cachify_async *ac, void *ctx, cachify_done_cb done,
 *                   int arg);
 *     int sleep_for_is_locked(struct cachify_async *ac, cachify_value_cb cb,
 *                             void *cbarg, int arg);   1/0 through cb
 *     int sleep_for_release(struct cachify_async *ac, cachify_value_cb cb,
 *                           void *cbarg, int arg);     forced: 1/0 through cb
 * sleep_for() formats the key with keyspec (a printf argument list over the
 * parameters, as for the sync macros), acquires it with opts (NULL: the
 * defaults; evaluated at each call) without blocking, runs the body once
 * the lock is held, releases the lock with its token when the body calls
 * cachify_async_call_done(call), then calls done(status, errstr, ctx).  It returns CACHIFY_OK (done will be
 * called exactly once, never inside this call) or an error (done is not
 * called), like every async call.
 *
 * Why this shape: the same signature-once, keyspec and companion
 * conventions as the sync macros, so a function moves between the two by
 * changing the macro and the body.  C has no closures, and an async body
 * runs after the call returned, so the macro stores a copy of the arguments
 * (a struct made from the parameter list: each parameter must be a plain
 * declaration, so typedef function pointers and arrays; `args` must be the
 * parameter names, 1 to 8) and hands them to the body by name, as Python
 * would.  The body's work is itself
 * asynchronous, so returning from it is not the end: it receives `call`,
 * this call's handle, and ends by passing it to cachify_async_call_done
 * (from any later callback).  Results travel in the caller's ctx pointer
 * (cachify_async_call_ctx), which comes back to `done`.  Pointer arguments
 * are copied as pointers: what they point to must outlive the call.
 *
 * done's status: CACHIFY_OK when the body ran and the lock was released;
 * CACHIFY_LOST when the body ran but the release found the lock no longer
 * held by its token (it expired or was force-released meanwhile; the
 * token kept a later holder's lock safe); the
 * acquire's failure when the body did not run -- CACHIFY_LOCKED /
 * CACHIFY_TIMEOUT with "<key> is already locked!", py-cachify's
 * CachifyLockError; or the release's error (CACHIFY_ERR_IO,
 * CACHIFY_ERR_CLOSED) after the body ran.
 *
 * CACHIFY_ASYNC_ONCE_FN, at the end, is @once in the same shape.
 */

struct cachify_async_call;

/* The callback of the renewals that opts.renew starts for ac's decorated
 * calls (NULL: none).  In the async API a decorated call with .renew
 * sends EXTEND key token exp_ms every exp_ms / 3 on ac's own connection,
 * from ac's event loop, while its body runs; a failure (the server's 0, or
 * no renewal through before the lease ran out) is reported once, from the
 * loop, and the call completes with CACHIFY_LOST. */
void cachify_async_set_renew_cb(struct cachify_async *ac, cachify_renew_cb cb,
                                void *arg);

/* Completion of one decorated call (see above): status CACHIFY_OK, 1 for a
 * once call that skipped, or < 0; errstr is never NULL. */
typedef void (*cachify_done_cb)(int status, const char *errstr, void *ctx);

/* The body's work is over: releases the lock with its token, then calls
 * the call's done (never from inside this function).  Exactly once per
 * body; call is freed after done returns. */
void cachify_async_call_done(struct cachify_async_call *call);

/* The caller's ctx; the fencing token the body runs under; the formatted
 * key (without the handle's prefix; with "-lock" / "-once" on a handle
 * with pycachify_keys).  Valid until cachify_async_call_done. */
void *cachify_async_call_ctx(const struct cachify_async_call *call);
uint64_t cachify_async_call_token(const struct cachify_async_call *call);
const char *cachify_async_call_key(const struct cachify_async_call *call);

/* Support for the macros below, not for direct use: start formats the key,
 * copies args[0..argsize) and acquires; once_start does the same with the
 * default options and, when the key is held, reports done(1, ...) (skipped)
 * unless raise_on_locked; the others format the key and ask /
 * force-release.  On a handle with pycachify_keys, start adds
 * CACHIFY_IMPL_OP_LOCK to the key, once_start CACHIFY_IMPL_OP_ONCE, and
 * the others their op.  Return values as the async calls. */
int cachify_impl_async_call_start(struct cachify_async *ac,
                                  const struct cachify_lock_opts *opts,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
int cachify_impl_async_once_start(struct cachify_async *ac,
                                  int raise_on_locked,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
int cachify_impl_async_is_locked_fmt(struct cachify_async *ac,
                                     cachify_value_cb cb, void *arg,
                                     const char *op, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int cachify_impl_async_release_fmt(struct cachify_async *ac,
                                   cachify_value_cb cb, void *arg,
                                   const char *op, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Applies m(a, item) to each of 1 to 8 comma-separated items, joined by
 * nothing (SEQ) or by commas (LIST). */
#define CACHIFY_IMPL_CAT(a, b) CACHIFY_IMPL_CAT2(a, b)
#define CACHIFY_IMPL_CAT2(a, b) a##b
#define CACHIFY_IMPL_NARGS(...)                                               \
    CACHIFY_IMPL_NARGS2(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define CACHIFY_IMPL_NARGS2(a1, a2, a3, a4, a5, a6, a7, a8, n, ...) n
#define CACHIFY_IMPL_SEQ(m, a, ...)                                           \
    CACHIFY_IMPL_CAT(CACHIFY_IMPL_SEQ, CACHIFY_IMPL_NARGS(__VA_ARGS__))       \
    (m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ1(m, a, x) m(a, x)
#define CACHIFY_IMPL_SEQ2(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ1(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ3(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ2(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ4(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ3(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ5(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ4(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ6(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ5(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ7(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ6(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ8(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ7(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST(m, a, ...)                                          \
    CACHIFY_IMPL_CAT(CACHIFY_IMPL_LIST, CACHIFY_IMPL_NARGS(__VA_ARGS__))      \
    (m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST1(m, a, x) m(a, x)
#define CACHIFY_IMPL_LIST2(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST1(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST3(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST2(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST4(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST3(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST5(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST4(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST6(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST5(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST7(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST6(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST8(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST7(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_FIELD(a, decl) decl;
#define CACHIFY_IMPL_MEMBER(a, name) (a)->name

#define CACHIFY_ASYNC_LOCKED_FN_DECL(name, params)                            \
    int name(struct cachify_async *cachify_ac_, void *cachify_ctx_,           \
             cachify_done_cb cachify_done_, CACHIFY_IMPL_UNPAREN params);     \
    int name##_is_locked(struct cachify_async *cachify_ac_,                   \
                         cachify_value_cb cachify_cb_, void *cachify_arg_,    \
                         CACHIFY_IMPL_UNPAREN params);                        \
    int name##_release(struct cachify_async *cachify_ac_,                     \
                       cachify_value_cb cachify_cb_, void *cachify_arg_,      \
                       CACHIFY_IMPL_UNPAREN params)

/* The async companions, as CACHIFY_IMPL_COMPANIONS but answering through
 * cb. */
#define CACHIFY_IMPL_ASYNC_COMPANIONS(name, params, args, keyspec, op)        \
    int name##_is_locked(struct cachify_async *cachify_ac_,                   \
                         cachify_value_cb cachify_cb_, void *cachify_arg_,    \
                         CACHIFY_IMPL_UNPAREN params)                         \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_async_is_locked_fmt(                              \
            cachify_ac_, cachify_cb_, cachify_arg_, op,                       \
            CACHIFY_IMPL_UNPAREN keyspec);                                    \
    }                                                                         \
    int name##_release(struct cachify_async *cachify_ac_,                     \
                       cachify_value_cb cachify_cb_, void *cachify_arg_,      \
                       CACHIFY_IMPL_UNPAREN params)                           \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_async_release_fmt(                                \
            cachify_ac_, cachify_cb_, cachify_arg_, op,                       \
            CACHIFY_IMPL_UNPAREN keyspec);                                    \
    }

/* What the two async macros share: the argument struct, the function that
 * hands its members to the body, name() starting the call through
 * start(ac, how, ...) (one of the start functions above), the companions
 * (whose keys take op, the suffix start adds), and the body's
 * declaration. */
#define CACHIFY_IMPL_ASYNC_FN(name, params, args, keyspec, start, how, op)    \
    CACHIFY_ASYNC_LOCKED_FN_DECL(name, params);                               \
    CACHIFY_IMPL_ASYNC_CORE(name, params, args, keyspec, start, how)          \
    CACHIFY_IMPL_ASYNC_COMPANIONS(name, params, args, keyspec, op)            \
    static void name##_body(struct cachify_async_call *call,                  \
                            CACHIFY_IMPL_UNPAREN params)

/* The argument struct, the runner and name() of every async decorator. */
#define CACHIFY_IMPL_ASYNC_CORE(name, params, args, keyspec, start, how)      \
    static void name##_body(struct cachify_async_call *call,                  \
                            CACHIFY_IMPL_UNPAREN params);                     \
    struct name##_cachify_args_ {                                             \
        CACHIFY_IMPL_SEQ(CACHIFY_IMPL_FIELD, 0, CACHIFY_IMPL_UNPAREN params)  \
    };                                                                        \
    static void name##_cachify_run_(struct cachify_async_call *cachify_call_, \
                                    void *cachify_args_)                      \
    {                                                                         \
        struct name##_cachify_args_ *cachify_a_ = cachify_args_;              \
        name##_body(cachify_call_,                                            \
                    CACHIFY_IMPL_LIST(CACHIFY_IMPL_MEMBER, cachify_a_,        \
                                      CACHIFY_IMPL_UNPAREN args));            \
    }                                                                         \
    int name(struct cachify_async *cachify_ac_, void *cachify_ctx_,           \
             cachify_done_cb cachify_done_, CACHIFY_IMPL_UNPAREN params)      \
    {                                                                         \
        struct name##_cachify_args_ cachify_a_ = {                            \
            CACHIFY_IMPL_UNPAREN args };                                      \
        return start(cachify_ac_, how, &cachify_a_, sizeof cachify_a_,        \
                     name##_cachify_run_, cachify_ctx_, cachify_done_,        \
                     CACHIFY_IMPL_UNPAREN keyspec);                           \
    }

#define CACHIFY_ASYNC_LOCKED_FN(name, params, args, keyspec, opts)            \
    CACHIFY_IMPL_ASYNC_FN(name, params, args, keyspec,                        \
                          cachify_impl_async_call_start, (opts),              \
                          CACHIFY_IMPL_OP_LOCK)

/* py-cachify's @once(key=..., raise_on_locked=..., return_on_locked=...) on
 * an `async def`: CACHIFY_ASYNC_LOCKED_FN's parameters, signatures, body
 * (`call`, ended by cachify_async_call_done) and companions, with
 * raise_on_locked (an int expression, evaluated at each call) where opts
 * was, in the shape of CACHIFY_ONCE_FN_VOID:
 *
 *     CACHIFY_ASYNC_ONCE_FN(import_file, (const char *src), (src),
 *                           ("import-%s", src), 0)
 *     {
 *         ... start the work; when it has ended: cachify_async_call_done(call);
 *     }
 *
 * One attempt with the default lock options (nowait, the handle's default
 * exp).  When the key is free the body runs and done gets what
 * CACHIFY_ASYNC_LOCKED_FN's done gets.  When another call (any handle, any
 * process) holds it, the body does not run and done gets
 *   - raise_on_locked:  CACHIFY_LOCKED, "<key> is already locked!";
 *   - otherwise:        1 (skipped), errstr "<key> is already locked!"
 *                       (the reason; not an error).
 * 1 is what the sync CACHIFY_ONCE_FN returns when it skips, so
 * done(status): 0 ran, 1 skipped, < 0 error, on both flavours.  There is
 * no return_on_locked parameter: an async body returns nothing (its
 * results go into ctx), so the caller's done applies return_on_locked to
 * ctx when it sees status 1 -- the skipped call never touched ctx.
 * CACHIFY_ASYNC_ONCE_FN_DECL declares the three functions. */
#define CACHIFY_ASYNC_ONCE_FN(name, params, args, keyspec, raise_on_locked)   \
    CACHIFY_IMPL_ASYNC_FN(name, params, args, keyspec,                        \
                          cachify_impl_async_once_start,                      \
                          ((raise_on_locked) ? 1 : 0), CACHIFY_IMPL_OP_ONCE)
#define CACHIFY_ASYNC_ONCE_FN_DECL(name, params)                              \
    CACHIFY_ASYNC_LOCKED_FN_DECL(name, params)

/* py-cachify's @pooled on an `async def`: CACHIFY_ASYNC_LOCKED_FN's shape
 * (parameters, body with `call`, ended by cachify_async_call_done) with a
 * slot of the pool keyed by keyspec (max_size slots; opts as
 * CACHIFY_POOLED_FN's, .renew included) instead of a lock:
 *
 *     CACHIFY_ASYNC_POOLED_FN(fetch, (int id), (id), ("fetchers"), 4,
 *                             NULL, 0)
 *     { ... cachify_async_call_done(call); }
 *
 * defines int fetch(ac, ctx, done, id) and the size companion
 * int fetch_size(ac, cb, cbarg, id) (slots held, through cb).  When the
 * pool is full (or a wait ran out) the body does not run and done gets
 * CACHIFY_FULL / CACHIFY_TIMEOUT with "<key> pool is full" when
 * raise_on_full, else 1 with that message: the caller's done is where
 * py-cachify's on_full runs (ctx has what it needs).  Otherwise done gets
 * what CACHIFY_ASYNC_LOCKED_FN's done gets (CACHIFY_LOST when the slot was
 * gone at its release). */
struct cachify_impl_pool_how {
    unsigned max_size;
    const struct cachify_lock_opts *opts;
    int raise_on_full;
};
int cachify_impl_async_pool_start(struct cachify_async *ac,
                                  const struct cachify_impl_pool_how *how,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
int cachify_impl_async_pool_size_fmt(struct cachify_async *ac,
                                     cachify_value_cb cb, void *arg,
                                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CACHIFY_ASYNC_POOLED_FN_DECL(name, params)                            \
    int name(struct cachify_async *cachify_ac_, void *cachify_ctx_,           \
             cachify_done_cb cachify_done_, CACHIFY_IMPL_UNPAREN params);     \
    int name##_size(struct cachify_async *cachify_ac_,                        \
                    cachify_value_cb cachify_cb_, void *cachify_arg_,         \
                    CACHIFY_IMPL_UNPAREN params)

#define CACHIFY_ASYNC_POOLED_FN(name, params, args, keyspec, max_size, opts,  \
                                raise_on_full)                                \
    CACHIFY_ASYNC_POOLED_FN_DECL(name, params);                               \
    CACHIFY_IMPL_ASYNC_CORE(name, params, args, keyspec,                      \
                            cachify_impl_async_pool_start,                    \
                            (&(const struct cachify_impl_pool_how){           \
                                (max_size), (opts),                           \
                                (raise_on_full) ? 1 : 0}))                    \
    int name##_size(struct cachify_async *cachify_ac_,                        \
                    cachify_value_cb cachify_cb_, void *cachify_arg_,         \
                    CACHIFY_IMPL_UNPAREN params)                              \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_async_pool_size_fmt(                              \
            cachify_ac_, cachify_cb_, cachify_arg_,                           \
            CACHIFY_IMPL_UNPAREN keyspec);                                    \
    }                                                                         \
    static void name##_body(struct cachify_async_call *call,                  \
                            CACHIFY_IMPL_UNPAREN params)

#ifdef __cplusplus
}
#endif

#endif
