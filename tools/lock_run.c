/* lock_run.c - cachify-lock's COMMAND under a held lock: start it, keep
 * the lock alive while it runs, pass signals on, answer a lost lock, and
 * release the lock with its token once COMMAND has ended.
 *
 * Owns the child process and the one loop that watches it.  The loop
 * needs no signal handlers: the signals it cares about are blocked and
 * taken with sigtimedwait(), whose timeout is the next renewal, so
 * "COMMAND ended", "a signal to pass on" and "time to EXTEND" arrive one
 * at a time, in order, with no race between a check and a sleep.  The
 * renewals are the sync client's EXTEND, each bounded by the handle's
 * io_timeout (set from the TTL by main).  Does not parse options or take
 * the lock (cachify_lock.c does), and never runs COMMAND unless the lock
 * is held when it starts.
 *
 * A lock is lost when EXTEND answers 0 (the token no longer holds the key:
 * it expired, or someone force-released it) or when no renewal has
 * succeeded for a whole TTL (the daemon is gone or unreachable; after that
 * someone else may hold the key, so COMMAND is no longer protected).
 */
#include "tools/lock_cli.h"

#include "client/cachify.h"
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The signals an operator sends to stop or poke a job: passed on to
 * COMMAND, which decides what they mean.  SIGCHLD is taken too: COMMAND
 * ended. */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* Renewal retries after a failed EXTEND: a tenth of the TTL, so several
 * happen before the lock could expire, but not faster than 20 a second
 * nor slower than one a second. */
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 1000
/* Longest error message kept for the "lost" line. */
#define WHY_MAX 256
/* The steps of a renewal that may each wait a whole timeout: connect,
 * AUTH sent and answered (with a password), EXTEND sent and answered. */
#define RENEW_STEPS 5
/* Less time than this per step before the lock would expire: no renewal
 * is tried, the deadline comes first. */
#define STEP_MIN_MS 5

struct run_state {
    struct cachify *c;
    const struct lock_args *a;
    uint64_t token;
    pid_t child;
    long long deadline;   /* the lock expires then unless renewed */
    long long next_renew; /* when to send the next EXTEND */
    long long interval;   /* a third of the TTL */
    long long retry;      /* after a failed EXTEND */
    int lost;             /* the lock is gone; no more renewals */
    int failing;          /* the last EXTEND failed (reported once) */
    int after_wait;       /* granted after a wait and not renewed since */
    char why[WHY_MAX];    /* the last renewal error */
};

long long lock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Only so that SIGCHLD is not discarded before sigtimedwait takes it: a
 * signal whose action is to ignore may be dropped even while blocked. */
static void on_sigchld(int sig)
{
    (void)sig;
}

/* In the child: the signal mask and SIGPIPE action cachify-lock started
 * with (an ignored signal stays ignored across exec), then COMMAND.
 * Never returns; 126 or 127 (the shell's codes) when exec fails. */
static void exec_command(const struct lock_args *a, const sigset_t *oldmask,
                         const struct sigaction *oldpipe)
{
    sigaction(SIGPIPE, oldpipe, NULL);
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    if (a->shell_cmd != NULL) {
        char *sh_argv[] = {"sh", "-c", (char *)a->shell_cmd, NULL};
        execv("/bin/sh", sh_argv);
    } else {
        execvp(a->command[0], a->command);
    }
    int err = errno;
    lock_say("cannot run %s: %s", a->shell_cmd ? "/bin/sh" : a->command[0],
             strerror(err));
    _exit(err == ENOENT ? LOCK_EXIT_NOT_FOUND : LOCK_EXIT_CANNOT_RUN);
}

/* The lock is gone: say so (even with -q: COMMAND was not protected to
 * its end) and stop COMMAND as --on-lost says. */
static void lose(struct run_state *rs, const char *why)
{
    int sig = rs->a->on_lost == LOCK_LOST_TERM   ? SIGTERM
              : rs->a->on_lost == LOCK_LOST_KILL ? SIGKILL
                                                 : 0;
    rs->lost = 1;
    lock_say("lost the lock on %s: %s; %s", rs->a->key, why,
             sig == SIGTERM   ? "sending SIGTERM to COMMAND"
             : sig == SIGKILL ? "sending SIGKILL to COMMAND"
                              : "COMMAND runs on (--on-lost ignore)");
    if (sig != 0)
        kill(rs->child, sig);
}

/* One EXTEND by the token that ends by rs->deadline: past it the lock
 * may be someone else's, and a call still waiting on a silent daemon then
 * would leave COMMAND running unprotected until the call gave up.  So the
 * handle is used while its timeouts (RENEW_STEPS of them, when it has to
 * reconnect) fit in the time left; closer to the deadline, the EXTEND
 * goes over a connection of its own whose timeouts do (mem: never waits,
 * and no other connection reaches its table).  Returns what
 * cachify_extend does; on an error, the reason is in rs->why. */
static int extend_in_time(struct run_state *rs)
{
    const struct lock_args *a = rs->a;
    long long left = rs->deadline - lock_now_ms();
    long long step = left / RENEW_STEPS;
    struct cachify *own = NULL;
    struct cachify_options o;
    int rc;

    /* The first renewal after a wait goes over the handle whatever the
     * deadline says: that deadline counts from when the ACQUIRE was sent,
     * maybe long before the grant, and only the daemon's answer tells
     * (if it does not come, the deadline has passed: the lock is lost). */
    int first_after_wait = rs->after_wait;
    rs->after_wait = 0;
    if (strcmp(a->url, "mem:") == 0 || first_after_wait ||
        step >= lock_io_timeout_ms(a->ttl_ms)) {
        rc = cachify_extend(rs->c, a->key, rs->token, a->ttl_ms);
        if (rc < 0)
            snprintf(rs->why, sizeof(rs->why), "%s", cachify_errstr(rs->c));
        return rc;
    }
    if (step < STEP_MIN_MS) {
        snprintf(rs->why, sizeof(rs->why), "no time left for a renewal");
        return CACHIFY_ERR_IO;
    }
    memset(&o, 0, sizeof(o));
    o.connect_timeout_ms = (int)step;
    o.io_timeout_ms = (int)step;
    o.default_exp_ms = a->ttl_ms;
    rc = cachify_open(&own, a->url, &o, rs->why, sizeof(rs->why));
    if (rc != CACHIFY_OK)
        return rc;
    rc = cachify_extend(own, a->key, rs->token, a->ttl_ms);
    if (rc < 0)
        snprintf(rs->why, sizeof(rs->why), "%s", cachify_errstr(own));
    cachify_close(own);
    return rc;
}

/* One EXTEND by the token.  Success moves the deadline to a TTL after the
 * request was sent (the server's clock starts no earlier than that). */
static void renew(struct run_state *rs)
{
    long long sent = lock_now_ms();
    int rc = extend_in_time(rs);
    if (rc == 1) {
        rs->deadline = sent + rs->a->ttl_ms;
        rs->next_renew = sent + rs->interval;
        if (rs->failing && !rs->a->quiet)
            lock_say("renewed the lock on %s again", rs->a->key);
        rs->failing = 0;
        return;
    }
    if (rc == 0) {
        lose(rs, "the daemon says its token no longer holds it (it expired "
                 "or was released by someone else)");
        return;
    }
    if (!rs->failing && !rs->a->quiet)
        lock_say("could not renew the lock on %s (%s); retrying until it "
                 "would expire", rs->a->key, rs->why);
    rs->failing = 1;
    rs->next_renew = lock_now_ms() + rs->retry;
}

/* Waits for COMMAND to end, renewing and passing signals on meanwhile.
 * Returns its wait status, or -1 when it cannot be waited for. */
static int supervise(struct run_state *rs, const sigset_t *set)
{
    for (;;) {
        int status;
        pid_t p = waitpid(rs->child, &status, WNOHANG);
        if (p == rs->child)
            return status;
        if (p < 0 && errno != EINTR) {
            lock_say("waitpid: %s", strerror(errno));
            return -1;
        }
        long long now = lock_now_ms();
        if (!rs->lost && now >= rs->next_renew) {
            renew(rs);
            now = lock_now_ms();
        }
        if (!rs->lost && now >= rs->deadline) {
            char why[WHY_MAX + 64];
            snprintf(why, sizeof(why), "not renewed for its whole TTL (%s)",
                     rs->why[0] ? rs->why : "no answer");
            lose(rs, why);
        }
        struct timespec ts, *tsp = NULL;
        if (!rs->lost) {
            long long until = rs->next_renew < rs->deadline ? rs->next_renew
                                                            : rs->deadline;
            long long ms = until > now ? until - now : 0;
            ts.tv_sec = (time_t)(ms / 1000);
            ts.tv_nsec = (long)(ms % 1000) * 1000000L;
            tsp = &ts;
        }
        int sig = sigtimedwait(set, NULL, tsp);
        if (sig > 0 && sig != SIGCHLD)
            kill(rs->child, sig);
        /* EAGAIN (time to renew), EINTR, SIGCHLD: round again. */
    }
}

/* The exit code for COMMAND's wait status, as a shell reports it. */
static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return LOCK_EXIT_OSERR;
}

/* Releases the lock with its token.  Returns nonzero when the daemon says
 * the token no longer held it: COMMAND was not protected to its end. */
static int release(struct run_state *rs)
{
    int rc = cachify_release(rs->c, rs->a->key, rs->token);
    if (rc == 1)
        return 0;
    if (rc == 0) {
        if (!rs->lost)
            lock_say("the lock on %s was no longer held by its token when "
                     "COMMAND ended (it expired or was released by someone "
                     "else)", rs->a->key);
        return 1;
    }
    lock_say("could not release the lock on %s (%s); it expires by itself "
             "within %lld.%03lld s", rs->a->key, cachify_errstr(rs->c),
             rs->a->ttl_ms / 1000, rs->a->ttl_ms % 1000);
    return 0;
}

/* Blocks the watched signals into *old (the mask COMMAND gets back),
 * installs the SIGCHLD no-op, and ignores SIGPIPE into *oldpipe: with
 * standard error a pipe whose reader has gone, the "lost the lock" line
 * must not kill cachify-lock before COMMAND gets its signal (a failed
 * write is harmless).  0, or -1 with errno. */
static int take_signals(sigset_t *set, sigset_t *old, struct sigaction *oldpipe)
{
    struct sigaction sa, ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGPIPE, &ign, oldpipe) < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(set);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaddset(set, forwarded[i]);
    sigaddset(set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, set, old) < 0)
        return -1;
    return sigaction(SIGCHLD, &sa, NULL);
}

int lock_run(struct cachify *c, const struct lock_args *a, uint64_t token,
             long long acquired_at_ms, int waited)
{
    struct run_state rs;
    memset(&rs, 0, sizeof(rs));
    rs.c = c;
    rs.a = a;
    rs.token = token;
    rs.interval = a->ttl_ms / 3;
    rs.retry = a->ttl_ms / 10;
    if (rs.retry < RETRY_MIN_MS)
        rs.retry = RETRY_MIN_MS;
    if (rs.retry > RETRY_MAX_MS)
        rs.retry = RETRY_MAX_MS;
    /* The grant happened between sending the acquire and its reply; after
     * a wait that can be long before the reply, so renew at once. */
    rs.deadline = acquired_at_ms + a->ttl_ms;
    rs.next_renew = waited ? lock_now_ms() : acquired_at_ms + rs.interval;
    rs.after_wait = waited;

    char tokbuf[24];
    snprintf(tokbuf, sizeof(tokbuf), "%" PRIu64, token);
    sigset_t set, old;
    struct sigaction oldpipe;
    int code = LOCK_EXIT_OSERR;
    if (setenv("CACHIFY_KEY", a->key, 1) < 0 ||
        setenv("CACHIFY_TOKEN", tokbuf, 1) < 0) {
        lock_say("setenv: %s", strerror(errno));
        goto out;
    }
    if (take_signals(&set, &old, &oldpipe) < 0) {
        lock_say("signals: %s", strerror(errno));
        goto out;
    }
    fflush(NULL); /* nothing buffered is written twice by the child */
    rs.child = fork();
    if (rs.child < 0) {
        lock_say("fork: %s", strerror(errno));
        goto out;
    }
    if (rs.child == 0)
        exec_command(a, &old, &oldpipe);
    int status = supervise(&rs, &set);
    if (status != -1)
        code = status_code(status);
out:
    if (release(&rs) || rs.lost)
        code = LOCK_EXIT_LOST;
    return code;
}
