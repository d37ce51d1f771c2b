/* cachify_decorate.h - libcachify-client's decorator macros for the sync
 * API: py-cachify's @lock and @once (CACHIFY_LOCKED_FN*, CACHIFY_ONCE_FN*)
 * and @pooled (CACHIFY_POOLED_FN*), with the cachify_impl_ functions they
 * expand to and the key bound CACHIFY_KEY_MAX.
 *
 * Owns the macros and the declarations of their runtime in client/scoped.c
 * and client/pool.c.  Does not own the guards the macros use (cachify.h)
 * nor the async decorators (cachify_async_decorate.h, which reuses this
 * file's CACHIFY_IMPL_UNPAREN, cachify_impl_use and CACHIFY_IMPL_OP_*).
 * Not included on its own: cachify.h includes it, and user code includes
 * <cachify.h> alone.
 */
#ifndef CACHIFY_DECORATE_H
#define CACHIFY_DECORATE_H

#ifndef CACHIFY_H
#error "include <cachify.h>, which includes cachify_decorate.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ decorators
 *
 * py-cachify's @lock(key='sleep_for_lock-{arg}') and @once(...) as macros
 * that declare, in one place, a function whose every call runs under a lock
 * keyed by its arguments, and its companions <name>_is_locked(args...) and
 * <name>_release(args...) that format the key the same way.  See
 * docs/client.md for why they have this shape.
 */

/* Longest key, prefix included (cachifyd's largest max_key_len).  A longer
 * key is CACHIFY_ERR_ARG on every backend; the server may set a lower bound
 * (its default is 1024 bytes), which is CACHIFY_ERR_SERVER. */
#define CACHIFY_KEY_MAX 65536

/* What py-cachify 3.x adds to a decorated function's formatted key (its
 * operation postfix), used on handles with pycachify_keys. */
#define CACHIFY_IMPL_OP_LOCK "-lock"
#define CACHIFY_IMPL_OP_ONCE "-once"

/* Support for the macros below, not for direct use: each formats a key
 * from fmt (printf-style, into a buffer of any size up to CACHIFY_KEY_MAX),
 * adds op (CACHIFY_IMPL_OP_*) when the handle has pycachify_keys, and
 * acquires it into *g / asks whether it is held / force-releases it.
 * The format attribute makes the compiler check the key format against the
 * function's parameters. */
int cachify_impl_lock_fmt(struct cachify_guard *g, struct cachify *c,
                          const struct cachify_lock_opts *opts,
                          const char *op, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int cachify_impl_is_locked_fmt(struct cachify *c, const char *op,
                               const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cachify_impl_release_fmt(struct cachify *c, const char *op,
                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* (int a, const char *b) -> int a, const char *b */
#define CACHIFY_IMPL_UNPAREN(...) __VA_ARGS__

/* Marks parameters a key spec may leave out as used (-Wunused-parameter),
 * portably: passing them to a function that ignores them. */
static inline void cachify_impl_use(int n, ...)
{
    (void)n;
}

/* The companions every decorated function gets: 1/0 or an error, and the
 * forced release (1 freed, 0 not held), with the key formatted as the
 * function formats it (op: the function's CACHIFY_IMPL_OP_*). */
#define CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, op)              \
    int name##_is_locked(struct cachify *cachify_c_,                          \
                         CACHIFY_IMPL_UNPAREN params)                         \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_is_locked_fmt(cachify_c_, op,                     \
                                          CACHIFY_IMPL_UNPAREN keyspec);      \
    }                                                                         \
    int name##_release(struct cachify *cachify_c_,                            \
                       CACHIFY_IMPL_UNPAREN params)                           \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_release_fmt(cachify_c_, op,                       \
                                        CACHIFY_IMPL_UNPAREN keyspec);        \
    }

/* Declarations of what CACHIFY_LOCKED_FN / CACHIFY_ONCE_FN define, for a
 * header (use the _VOID one for the _VOID macros). */
#define CACHIFY_LOCKED_FN_DECL(ret, name, params)                             \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params);                                    \
    int name##_is_locked(struct cachify *cachify_c_,                          \
                         CACHIFY_IMPL_UNPAREN params);                        \
    int name##_release(struct cachify *cachify_c_,                            \
                       CACHIFY_IMPL_UNPAREN params)
#define CACHIFY_LOCKED_FN_VOID_DECL(name, params)                             \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params);        \
    int name##_is_locked(struct cachify *cachify_c_,                          \
                         CACHIFY_IMPL_UNPAREN params);                        \
    int name##_release(struct cachify *cachify_c_,                            \
                       CACHIFY_IMPL_UNPAREN params)

/* py-cachify's @lock(key=..., nowait=..., timeout=..., exp=...).
 *
 *     static const struct cachify_lock_opts job_opts = CACHIFY_LOCK_OPTS_DEFAULT;
 *     CACHIFY_LOCKED_FN(int, job, (int id, const char *what), (id, what),
 *                       ("job-%d-%s", id, what), &job_opts)
 *     {
 *         return do_job(id, what);
 *     }
 *
 * defines
 *     int job(struct cachify *c, int *result, int id, const char *what);
 *     int job_is_locked(struct cachify *c, int id, const char *what);
 *     int job_release(struct cachify *c, int id, const char *what);
 * job() formats the key with the key spec, a parenthesised printf argument
 * list over the parameters (py-cachify's 'job-{id}-{what}'; a constant key
 * is just ("job")), checked by the compiler; acquires it with opts (a
 * const struct cachify_lock_opts *, NULL for the defaults; evaluated at each
 * call); runs the body with *result set (result may be NULL); releases the
 * lock with its token and returns CACHIFY_OK, or CACHIFY_LOST when the
 * release found the lock no longer held by its token (the body outlived
 * exp, or the lock was force-released; *result is still set).  Or it
 * returns the acquire's status (CACHIFY_LOCKED, ...) without running the
 * body.  On a handle with pycachify_keys the key is py-cachify's: the
 * formatted key plus "-lock" ("-once" for the once macros), so messages
 * read "job-1-x-lock is already locked!" as py-cachify 3.x's do.  args
 * repeats the parameter names, to call the body.  ret must be a plain type
 * name (typedef arrays and function pointers); the function needs at least
 * one parameter.  The functions have external linkage like any function
 * definition.  The body runs with cachify_errstr(c) "" and the handle free
 * for other calls (it is not reentrant on the same key). */
#define CACHIFY_LOCKED_FN(ret, name, params, args, keyspec, opts)             \
    CACHIFY_LOCKED_FN_DECL(ret, name, params);                                \
    static ret name##_body params;                                            \
    CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, CACHIFY_IMPL_OP_LOCK) \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params)                                     \
    CACHIFY_IMPL_SYNC_CALL(keyspec, CACHIFY_IMPL_OP_LOCK, (opts),             \
                           CACHIFY_IMPL_RUN_STORE(ret, name, args), 0,        \
                           (void)0)                                           \
    static ret name##_body params

/* The one function body of every sync decorator: take the lock (keyspec,
 * op) with opts, run `run` (the body) and release with the token
 * (CACHIFY_LOST when the lock was gone by then; a failed release is not
 * the body's failure, and its message stays in cachify_errstr); when the
 * key is held and `skip` is true (once without raise_on_locked), run
 * `on_skip` and answer 1 instead of CACHIFY_LOCKED. */
#define CACHIFY_IMPL_SYNC_CALL(keyspec, op, opts, run, skip, on_skip)         \
    {                                                                         \
        struct cachify_guard cachify_g_;                                      \
        int cachify_st_ =                                                     \
            cachify_impl_lock_fmt(&cachify_g_, cachify_c_, opts, op,          \
                                  CACHIFY_IMPL_UNPAREN keyspec);              \
        if (cachify_st_ == CACHIFY_OK) {                                      \
            run;                                                              \
            if (cachify_guard_release(&cachify_g_) == CACHIFY_LOST)           \
                cachify_st_ = CACHIFY_LOST;                                   \
        } else if (cachify_st_ == CACHIFY_LOCKED && (skip)) {                 \
            on_skip;                                                          \
            cachify_st_ = 1;                                                  \
        }                                                                     \
        return cachify_st_;                                                   \
    }

/* Runs the body and stores what it returns in *result (when not NULL). */
#define CACHIFY_IMPL_RUN_STORE(ret, name, args)                               \
    do {                                                                      \
        ret cachify_r_ = name##_body args;                                    \
        if (cachify_result_ != NULL)                                          \
            *cachify_result_ = cachify_r_;                                    \
    } while (0)

/* The same for a function returning nothing:
 *     int name(struct cachify *c, params...);   plus the two companions. */
#define CACHIFY_LOCKED_FN_VOID(name, params, args, keyspec, opts)             \
    CACHIFY_LOCKED_FN_VOID_DECL(name, params);                                \
    static void name##_body params;                                           \
    CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, CACHIFY_IMPL_OP_LOCK) \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)         \
    CACHIFY_IMPL_SYNC_CALL(keyspec, CACHIFY_IMPL_OP_LOCK, (opts),             \
                           name##_body args, 0, (void)0)                      \
    static void name##_body params

/* py-cachify's @once(key=..., raise_on_locked=..., return_on_locked=...):
 * one attempt with the default lock options.  name() returns CACHIFY_OK
 * when the body ran (*result set; CACHIFY_LOST as for CACHIFY_LOCKED_FN
 * when the lock was gone at its release); when another call holds the key
 * it returns CACHIFY_LOCKED if raise_on_locked, else 1 with *result =
 * return_on_locked (evaluated then); or another error.  Same companions. */
#define CACHIFY_ONCE_FN(ret, name, params, args, keyspec, raise_on_locked,    \
                        return_on_locked)                                     \
    CACHIFY_LOCKED_FN_DECL(ret, name, params);                                \
    static ret name##_body params;                                            \
    CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, CACHIFY_IMPL_OP_ONCE) \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params)                                     \
    CACHIFY_IMPL_SYNC_CALL(keyspec, CACHIFY_IMPL_OP_ONCE, NULL,               \
                           CACHIFY_IMPL_RUN_STORE(ret, name, args),           \
                           !(raise_on_locked),                                \
                           if (cachify_result_ != NULL)                       \
                               *cachify_result_ = (return_on_locked))         \
    static ret name##_body params

/* once for a function returning nothing: CACHIFY_OK when it ran, 1 when
 * skipped (or CACHIFY_LOCKED if raise_on_locked), or an error. */
#define CACHIFY_ONCE_FN_VOID(name, params, args, keyspec, raise_on_locked)    \
    CACHIFY_LOCKED_FN_VOID_DECL(name, params);                                \
    static void name##_body params;                                           \
    CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, CACHIFY_IMPL_OP_ONCE) \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)         \
    CACHIFY_IMPL_SYNC_CALL(keyspec, CACHIFY_IMPL_OP_ONCE, NULL,               \
                           name##_body args, !(raise_on_locked), (void)0)     \
    static void name##_body params

/* py-cachify's @pooled(key=..., max_size=..., on_full=..., raise_on_full=...,
 * slot_exp=...): every call of name runs in a slot of the pool keyed by
 * its arguments, at most max_size at once across processes.
 *
 *     static const struct cachify_lock_opts slot = { .nowait = 1,
 *                                                    .exp_ms = 60000 };
 *     CACHIFY_POOLED_FN_VOID(worker, (const char *name), (name),
 *                            ("concurrent-pool"), 2, &slot, 0,
 *                            report_full(name))
 *     {
 *         ... at most 2 run this at once ...
 *     }
 *
 * defines
 *     int worker(struct cachify *c, const char *name);
 *     int worker_size(struct cachify *c, const char *name);  slots held
 * worker() formats the key from keyspec (as the lock macros; no "-lock"
 * op is added: these pools are not py-cachify's stored ones), takes a slot
 * with opts (NULL: one attempt, the handle's default lifetime), runs the
 * body, frees the slot by its token and returns CACHIFY_OK (CACHIFY_LOST
 * when the slot was gone by then).  When the pool is full (CACHIFY_FULL,
 * or CACHIFY_TIMEOUT after a wait): with raise_on_full, that status;
 * without, it evaluates on_full (an expression over the parameters,
 * py-cachify's on_full(*args); (void)0 for none) and returns 1.  Other
 * errors are returned as they are. */
int cachify_impl_pool_fmt(struct cachify_pool_guard *g, struct cachify *c,
                          unsigned max_size,
                          const struct cachify_lock_opts *opts,
                          const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int cachify_impl_pool_size_fmt(struct cachify *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define CACHIFY_POOLED_FN_DECL(ret, name, params)                             \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params);                                    \
    int name##_size(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)
#define CACHIFY_POOLED_FN_VOID_DECL(name, params)                             \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params);        \
    int name##_size(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)

#define CACHIFY_IMPL_POOL_SIZE_FN(name, params, args, keyspec)                \
    int name##_size(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)  \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_pool_size_fmt(cachify_c_,                         \
                                          CACHIFY_IMPL_UNPAREN keyspec);      \
    }

/* The body of every pooled function: slot, run, free; on_full when full. */
#define CACHIFY_IMPL_POOL_CALL(keyspec, max_size, opts, run, raise_on_full,   \
                               on_full)                                       \
    {                                                                         \
        struct cachify_pool_guard cachify_g_;                                 \
        int cachify_st_ =                                                     \
            cachify_impl_pool_fmt(&cachify_g_, cachify_c_, (max_size), opts,  \
                                  CACHIFY_IMPL_UNPAREN keyspec);              \
        if (cachify_st_ == CACHIFY_OK) {                                      \
            run;                                                              \
            if (cachify_pool_guard_release(&cachify_g_) == CACHIFY_LOST)      \
                cachify_st_ = CACHIFY_LOST;                                   \
        } else if ((cachify_st_ == CACHIFY_FULL ||                            \
                    cachify_st_ == CACHIFY_TIMEOUT) && !(raise_on_full)) {    \
            on_full;                                                          \
            cachify_st_ = 1;                                                  \
        }                                                                     \
        return cachify_st_;                                                   \
    }

/* With a result: *result gets the body's value, or on_full's when full. */
#define CACHIFY_POOLED_FN(ret, name, params, args, keyspec, max_size, opts,   \
                          raise_on_full, on_full)                             \
    CACHIFY_POOLED_FN_DECL(ret, name, params);                                \
    static ret name##_body params;                                            \
    CACHIFY_IMPL_POOL_SIZE_FN(name, params, args, keyspec)                    \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params)                                     \
    CACHIFY_IMPL_POOL_CALL(keyspec, max_size, (opts),                         \
                           CACHIFY_IMPL_RUN_STORE(ret, name, args),           \
                           raise_on_full,                                     \
                           if (cachify_result_ != NULL)                       \
                               *cachify_result_ = (on_full))                  \
    static ret name##_body params

#define CACHIFY_POOLED_FN_VOID(name, params, args, keyspec, max_size, opts,   \
                               raise_on_full, on_full)                        \
    CACHIFY_POOLED_FN_VOID_DECL(name, params);                                \
    static void name##_body params;                                           \
    CACHIFY_IMPL_POOL_SIZE_FN(name, params, args, keyspec)                    \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)         \
    CACHIFY_IMPL_POOL_CALL(keyspec, max_size, (opts), name##_body args,       \
                           raise_on_full, (void)(on_full))                    \
    static void name##_body params

#ifdef __cplusplus
}
#endif

#endif
