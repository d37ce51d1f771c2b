/* cachify_lock.c - main() of cachify-lock, a networked flock(1): runs a
 * command while holding a cachifyd lock, or asks about or releases one.
 *
 * Owns the order of things: parse the command line (lock_args.c), open a
 * libcachify-client handle on the URL, then one of the three modes; in the
 * run mode, take the lock (-n, -w or waiting without bound) and hand over
 * to lock_run.c, which runs COMMAND and releases the lock.  Every failure
 * before COMMAND starts ends here with one line on stderr and a documented
 * exit code (lock_cli.h), and COMMAND does not run.
 *
 * The handle's timeouts come from the TTL: a renewal that hangs must give
 * up while there is still time to retry before the lock would expire.
 */
#include "tools/lock_cli.h"

#include "client/cachify.h"
#include <string.h>

/* Bounds on one connect or reply: a fifteenth of the TTL, so that a
 * renewal on the handle, which may take up to RENEW_STEPS (lock_run.c: 5)
 * of them when it has to reconnect, ends within a third of the TTL and
 * leaves time for another; but not below a round trip on a busy host nor
 * above the library's own default. */
#define IO_TIMEOUT_DIVISOR 15
#define IO_TIMEOUT_MIN_MS 250
#define IO_TIMEOUT_MAX_MS 5000

long long lock_io_timeout_ms(long long ttl_ms)
{
    long long io = ttl_ms / IO_TIMEOUT_DIVISOR;
    if (io < IO_TIMEOUT_MIN_MS)
        io = IO_TIMEOUT_MIN_MS;
    if (io > IO_TIMEOUT_MAX_MS)
        io = IO_TIMEOUT_MAX_MS;
    return io;
}

/* The exit code for a library status that is not a lock outcome. */
static int exit_for(int status)
{
    switch (status) {
    case CACHIFY_ERR_ARG:
        return LOCK_EXIT_USAGE;
    case CACHIFY_ERR_NOMEM:
        return LOCK_EXIT_OSERR;
    default:
        return LOCK_EXIT_UNAVAILABLE;
    }
}

/* Maps a yes/no answer (1 or 0) to exit 0 or 1, or reports the error. */
static int answer(struct cachify *c, int rc)
{
    if (rc == 1)
        return 0;
    if (rc == 0)
        return 1;
    lock_say("%s", cachify_errstr(c));
    return exit_for(rc);
}

/* Takes the lock and runs COMMAND under it. */
static int run_mode(struct cachify *c, const struct lock_args *a)
{
    struct cachify_lock_opts lo;
    memset(&lo, 0, sizeof(lo));
    lo.exp_ms = a->ttl_ms;
    if (a->nonblock || a->timeout_ms == 0) {
        lo.nowait = 1;
    } else {
        lo.nowait = 0;
        lo.timeout_ms = a->timeout_ms < 0 ? CACHIFY_FOREVER : a->timeout_ms;
    }
    /* Signals keep their usual effect while the acquire waits, so Ctrl-C
     * ends a wait (the daemon drops a closed connection's wait).  A signal
     * in the moment between the grant and lock_run blocking it kills
     * cachify-lock with the lock held until its TTL, as kill -9 would. */
    long long sent = lock_now_ms();
    uint64_t token = 0;
    int rc = cachify_acquire(c, a->key, &lo, &token);
    if (rc == CACHIFY_LOCKED || rc == CACHIFY_TIMEOUT) {
        if (!a->quiet)
            lock_say("%s", cachify_errstr(c));
        return a->conflict_code;
    }
    if (rc != CACHIFY_OK) {
        lock_say("%s", cachify_errstr(c));
        return exit_for(rc);
    }
    return lock_run(c, a, token, sent, !lo.nowait);
}

int main(int argc, char **argv)
{
    struct lock_args a;
    int rc = lock_args_parse(&a, argc, argv);
    if (rc >= 0)
        return rc;

    struct cachify_options o;
    memset(&o, 0, sizeof(o));
    long long io = lock_io_timeout_ms(a.ttl_ms);
    o.connect_timeout_ms = (int)io;
    o.io_timeout_ms = (int)io;
    o.default_exp_ms = a.ttl_ms;

    char err[512];
    struct cachify *c = NULL;
    rc = cachify_open(&c, a.url, &o, err, sizeof(err));
    if (rc != CACHIFY_OK) {
        lock_say("%s", err);
        return exit_for(rc);
    }
    if (strcmp(a.url, "mem:") == 0 && a.mode == LOCK_MODE_RUN && !a.quiet)
        lock_say("warning: mem: is a lock table inside this process; it "
                 "keeps no other process out");

    switch (a.mode) {
    case LOCK_MODE_IS_LOCKED:
        rc = answer(c, cachify_is_locked(c, a.key));
        break;
    case LOCK_MODE_RELEASE:
        rc = answer(c, a.has_token ? cachify_release(c, a.key, a.token)
                                   : cachify_force_release(c, a.key));
        break;
    default:
        rc = run_mode(c, &a);
        break;
    }
    cachify_close(c);
    return rc;
}
