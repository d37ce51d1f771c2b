/* lock_cli.h - what the parts of cachify-lock share: its exit codes, its
 * parsed command line, and the calls between its files.
 *
 * cachify-lock is a program on libcachify-client alone (client/cachify.h);
 * nothing here reaches into the daemon.  lock_args.c turns argv into a
 * struct lock_args and owns --help; lock_run.c runs COMMAND under a held
 * lock (fork, exec, renewal, signals, release); cachify_lock.c is main():
 * it opens the handle, takes the lock and picks the mode.  The exit codes
 * are written down here, in --help and in docs/cachify-lock.1, and those
 * three must agree.
 */
#ifndef CACHIFY_LOCK_CLI_H
#define CACHIFY_LOCK_CLI_H

#include <stdint.h>

struct cachify;

/* Exit codes of cachify-lock itself.  Otherwise it exits with COMMAND's
 * status, or 128+N when COMMAND was killed by signal N (as shells report
 * it).  The sysexits.h values follow flock(1)'s habit for usage errors;
 * 126/127 are the shell's for a command that cannot run. */
enum lock_exit {
    LOCK_EXIT_CONFLICT = 1,     /* default of -E: held, or -w ran out */
    LOCK_EXIT_USAGE = 64,       /* bad option, value or URL (EX_USAGE) */
    LOCK_EXIT_UNAVAILABLE = 69, /* daemon unreachable or refusing (EX_UNAVAILABLE) */
    LOCK_EXIT_OSERR = 71,       /* fork, signals, memory (EX_OSERR) */
    LOCK_EXIT_LOST = 75,        /* the lock was lost while COMMAND ran (EX_TEMPFAIL) */
    LOCK_EXIT_CANNOT_RUN = 126, /* COMMAND found but not executable */
    LOCK_EXIT_NOT_FOUND = 127,  /* COMMAND not found */
};

enum lock_mode {
    LOCK_MODE_RUN,       /* KEY COMMAND...: run under the lock */
    LOCK_MODE_IS_LOCKED, /* --is-locked KEY */
    LOCK_MODE_RELEASE,   /* --release KEY [--token T] */
};

/* What COMMAND gets when the lock is lost while it runs. */
enum lock_on_lost {
    LOCK_LOST_TERM, /* SIGTERM (the default) */
    LOCK_LOST_KILL, /* SIGKILL */
    LOCK_LOST_IGNORE, /* nothing: it runs on, cachify-lock still exits 75 */
};

/* Bounds on the times given in seconds, explained where they are checked
 * (lock_args.c): below LOCK_TTL_MIN_MS a renewal every third of the TTL
 * would be shorter than a round trip on a loaded host; above
 * LOCK_SECONDS_MAX_MS (about 31 years) no lock or wait is meant. */
#define LOCK_TTL_MIN_MS 100LL
#define LOCK_SECONDS_MAX_MS 1000000000000LL
#define LOCK_TTL_DEFAULT_MS 30000LL /* py-cachify's default exp */

struct lock_args {
    enum lock_mode mode;
    const char *url;        /* -u, else $CACHIFY_URL, else the default */
    const char *key;        /* points into argv */
    char **command;         /* argv tail, NULL-terminated; NULL with -c */
    const char *shell_cmd;  /* -c STRING, or NULL */
    int nonblock;           /* -n */
    long long timeout_ms;   /* -w; -1: wait forever (no -n, no -w) */
    long long ttl_ms;       /* --ttl */
    int conflict_code;      /* -E, 0..255 */
    int quiet;              /* -q */
    enum lock_on_lost on_lost;
    int has_token;          /* --token given (release mode) */
    uint64_t token;
};

/* Parses argv into *a.  Returns -1 when cachify-lock is to go on, or the
 * exit code to end with now: 0 after --help / --version (printed on
 * stdout), LOCK_EXIT_USAGE after one line on stderr. */
int lock_args_parse(struct lock_args *a, int argc, char **argv);

/* Prints "cachify-lock: " and the formatted message on stderr, one line. */
void lock_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a->command (or sh -c a->shell_cmd) while c holds a->key with
 * token: renews it every third of a->ttl_ms, passes INT, TERM, HUP, QUIT,
 * USR1 and USR2 on to COMMAND, answers a lost lock per a->on_lost, and
 * releases the lock with its token once COMMAND has ended, whatever
 * happened.  acquired_at_ms is the monotonic time (lock_now_ms) the
 * acquire was sent, waited is nonzero when it may have queued.  Returns
 * the exit code for cachify-lock (see enum lock_exit). */
int lock_run(struct cachify *c, const struct lock_args *a, uint64_t token,
             long long acquired_at_ms, int waited);

/* Milliseconds on the monotonic clock. */
long long lock_now_ms(void);

/* The handle's connect and reply timeout for a lock of ttl_ms (see
 * lock_run.c, which must know it to keep a renewal inside the TTL). */
long long lock_io_timeout_ms(long long ttl_ms);

#endif
