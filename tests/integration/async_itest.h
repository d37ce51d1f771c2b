/* tests/integration/async_itest.h - helpers shared by the async client
 * suites test_client_async.c (every call on both backends, close, the
 * decorator) and test_client_async_net.c (what only a network can do: a
 * daemon that dies, AUTH, broken servers, URLs).  Each suite is its own
 * program, so the state here is static.
 *
 * Owns: the test's event loop and a guard timer that bounds every wait
 * (RUN_UNTIL), records of callbacks (how often each ran, in which order,
 * and whether a public call was running then: the header promises "exactly
 * once, never from inside the call"), the backend of a loop test (_i 0 is
 * cachifyd over TCP, 1 is "mem:"), and one-call helpers.  Bounds are
 * generous (a loaded 2-core box, valgrind); nothing asserts speed.  The
 * backend numbers and traits are tests/integration/backends.h's.  Daemon
 * clean-up on failure comes from itest.h; a fake server (a forked child) is
 * killed by the teardown.
 */
#ifndef CACHIFY_TESTS_ASYNC_ITEST_H
#define CACHIFY_TESTS_ASYNC_ITEST_H

#include "tests/integration/itest.h"

#include <sys/wait.h>

#include <event2/event.h>

#include "client/cachify.h"
#include "tests/integration/backends.h"

/* The backends of a loop test: those of backends.h. */
enum { BE_NET = BK_CACHIFYD, BE_MEM = BK_MEM, BE_ETCD = BK_ETCD,
       BE_COUNT = BK_COUNT };

static struct event_base *g_base;
static struct event *g_guard;
static int g_guard_fired;
static int g_starting; /* a public async call is running */
static int g_seq;      /* order in which callbacks ran */
static char g_url[512];
static pid_t g_fake = -1;

static inline double bound_s(void)
{
    return slow_mode() ? 120.0 : 30.0;
}

static inline void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    g_guard_fired = 1;
}

static inline void guard_arm(double secs)
{
    struct timeval tv = { (time_t)secs,
                          (suseconds_t)((secs - (double)(time_t)secs) * 1e6) };
    g_guard_fired = 0;
    evtimer_add(g_guard, &tv);
}

/* Runs the loop until cond holds (fails the test after the bound). */
#define RUN_UNTIL(cond)                                                      \
    do {                                                                     \
        guard_arm(bound_s());                                                \
        while (!(cond) && !g_guard_fired)                                    \
            event_base_loop(g_base, EVLOOP_ONCE);                            \
        evtimer_del(g_guard);                                                \
        ck_assert_msg((cond), "timed out waiting for %s", #cond);            \
    } while (0)

/* Runs the loop for secs, whatever happens. */
static inline void run_for(double secs)
{
    guard_arm(secs);
    while (!g_guard_fired)
        event_base_loop(g_base, EVLOOP_ONCE);
}

/* A public call that must be accepted. */
#define CALL(expr)                                                           \
    do {                                                                     \
        g_starting = 1;                                                      \
        int call_rc_ = (expr);                                               \
        g_starting = 0;                                                      \
        ck_assert_msg(call_rc_ == CACHIFY_OK, "%s -> %d", #expr, call_rc_);  \
    } while (0)

struct rec {
    int called, status, inside, order;
    uint64_t token;
    long long value;
    char err[300];
};

static inline void rec_note(struct rec *r, int status, const char *errstr)
{
    r->called++;
    r->status = status;
    r->inside |= g_starting;
    r->order = ++g_seq;
    ck_assert_ptr_nonnull(errstr);
    snprintf(r->err, sizeof r->err, "%s", errstr);
}

static inline void rec_tok(struct cachify_async *ac, int status,
                           uint64_t token,
                    const char *errstr, void *arg)
{
    struct rec *r = arg;
    (void)ac;
    r->token = token;
    rec_note(r, status, errstr);
}

static inline void rec_val(struct cachify_async *ac, int status,
                           long long value,
                    const char *errstr, void *arg)
{
    struct rec *r = arg;
    (void)ac;
    r->value = value;
    rec_note(r, status, errstr);
}

/* Each rec called exactly once, never inside a call, with status st. */
static inline void rec_check(const struct rec *r, int st, const char *what)
{
    ck_assert_msg(r->called == 1, "%s: called %d times", what, r->called);
    ck_assert_msg(!r->inside, "%s: called inside the starting call", what);
    ck_assert_msg(r->status == st, "%s: status %d (%s), want %d", what,
                  r->status, r->err, st);
}

/* Checked fixture added after itest_tcase's own (itest_setup and
 * itest_teardown, which handle the daemon). */
static inline void setup(void)
{
    g_base = event_base_new();
    ck_assert_ptr_nonnull(g_base);
    g_guard = evtimer_new(g_base, guard_cb, NULL);
    g_seq = 0;
}

static inline void teardown(void)
{
    if (g_fake > 0) {
        kill(g_fake, SIGKILL);
        waitpid(g_fake, NULL, 0);
        g_fake = -1;
    }
}

/* Starts the backend of a loop test (backends.h, bk_start) and sets
 * g_url. */
static inline void backend_start(int be, const char *const *extra)
{
    bk_start(be, extra, g_url, sizeof g_url);
}

static inline void backend_finish(int be)
{
    event_free(g_guard);
    event_base_free(g_base);
    if (be == BE_NET)
        srv_finish();
}

static inline struct cachify_async *open_h(const char *url, const char *prefix,
                                    int io_timeout_ms)
{
    struct cachify_options o = { 0, io_timeout_ms, 0, prefix, 0 };
    struct cachify_async *ac = NULL;
    char err[256];
    int rc = cachify_async_open(&ac, g_base, url, &o, err, sizeof err);
    ck_assert_msg(rc == CACHIFY_OK, "open %s: %d %s", url, rc, err);
    return ac;
}

/* One call and its result, run to completion. */
static inline long long value_of(int (*fn)(struct cachify_async *, const char *,
                                    cachify_value_cb, void *),
                          struct cachify_async *ac, const char *key)
{
    struct rec r = { 0 };
    CALL(fn(ac, key, rec_val, &r));
    ck_assert_int_eq(r.called, 0);
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, key);
    return r.value;
}

static inline uint64_t take(struct cachify_async *ac, const char *key,
                     const struct cachify_lock_opts *o)
{
    struct rec r = { 0 };
    CALL(cachify_async_acquire(ac, key, o, rec_tok, &r));
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, key);
    ck_assert(r.token > 0);
    return r.token;
}

static inline long long rel(struct cachify_async *ac, const char *key,
                            uint64_t tok)
{
    struct rec r = { 0 };
    CALL(cachify_async_release(ac, key, tok, rec_val, &r));
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, key);
    return r.value;
}

static inline long long ext(struct cachify_async *ac, const char *key,
                            uint64_t tok,
                     long long ms)
{
    struct rec r = { 0 };
    CALL(cachify_async_extend(ac, key, tok, ms, rec_val, &r));
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, key);
    return r.value;
}

#define IS_LOCKED(ac, k) value_of(cachify_async_is_locked, (ac), (k))
#define PTTL(ac, k) value_of(cachify_async_pttl, (ac), (k))
#define FORCE(ac, k) value_of(cachify_async_force_release, (ac), (k))


static inline struct cachify_lock_opts waiting(long long ms)
{
    struct cachify_lock_opts o = { 0, ms, CACHIFY_EXP_DEFAULT, 0, 0 };
    return o;
}

#endif
