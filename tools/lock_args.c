/* lock_args.c - cachify-lock's command line: options, their values, the
 * three modes, --help and --version.
 *
 * Owns turning argv into a struct lock_args and refusing bad input with
 * one line on stderr and LOCK_EXIT_USAGE, before anything connects or
 * runs.  Option names follow flock(1) where they apply (-n, -w, -E, -c);
 * as in flock, options end at KEY, so COMMAND's own options are left
 * alone, and `KEY -c STRING` is accepted as well as `-c STRING KEY`.  In
 * the --is-locked and --release modes options may also follow KEY
 * (`--release KEY --token T`).  Does not talk to the daemon.
 */
#include "tools/lock_cli.h"

#include "client/cachify.h"
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_URL "cachify://127.0.0.1:7379"

static const char usage_text[] =
    "Usage: cachify-lock [options] KEY COMMAND [ARGS...]\n"
    "       cachify-lock [options] KEY -c STRING\n"
    "       cachify-lock [options] --is-locked KEY\n"
    "       cachify-lock [options] --release KEY [--token T]\n"
    "\n"
    "Runs COMMAND while holding the cachifyd lock KEY, across hosts: a\n"
    "networked flock(1).  The lock is renewed every third of its TTL while\n"
    "COMMAND runs and released with its token when COMMAND ends.  COMMAND\n"
    "gets CACHIFY_KEY and CACHIFY_TOKEN (the fencing token) in its\n"
    "environment; INT, TERM, HUP, QUIT, USR1 and USR2 sent to cachify-lock\n"
    "are passed on to it.\n"
    "\n"
    "Options:\n"
    "  -n, --nonblock, --nb      fail at once if KEY is held\n"
    "  -w, --timeout, --wait SECONDS\n"
    "                            wait at most SECONDS (fractions allowed) for\n"
    "                            KEY; without -n or -w, wait as long as needed\n"
    "  -E, --conflict-exit-code N  exit code when KEY is held (default 1)\n"
    "  -c, --command STRING      run STRING with /bin/sh -c\n"
    "  -u, --url URL             cachify://[:password@]host[:port],\n"
    "                            cachifys://host[:port]?ca=FILE (TLS),\n"
    "                            unix:///path or mem: (default $CACHIFY_URL,\n"
    "                            else " DEFAULT_URL ")\n"
    "      --ttl SECONDS         lock lifetime, renewed while COMMAND runs\n"
    "                            (default 30, at least 0.1)\n"
    "      --on-lost term|kill|ignore  what COMMAND gets if the lock is lost\n"
    "                            (default term: SIGTERM)\n"
    "  -q, --quiet               no message when KEY is held or on a\n"
    "                            renewal that failed but may be retried\n"
    "      --is-locked KEY       exit 0 if KEY is held, 1 if it is free\n"
    "      --release KEY         release KEY: with --token T only if T holds\n"
    "                            it, else whoever holds it; exit 0 released,\n"
    "                            1 not held (by T)\n"
    "      --token T             the token for --release\n"
    "  -h, --help                this text\n"
    "  -V, --version             the version\n"
    "\n"
    "Exit status: COMMAND's, or 128+N if a signal N ended it; otherwise\n"
    "  1    KEY is held (-n) or -w ran out (change it with -E)\n"
    "  64   usage error: bad option, value or URL\n"
    "  69   the daemon is unreachable or refused (network, password)\n"
    "  71   system error (fork, memory)\n"
    "  75   the lock was lost while COMMAND ran\n"
    "  126  COMMAND could not be run\n"
    "  127  COMMAND not found\n"
    "COMMAND never runs without the lock.\n";

/* Longest line cachify-lock writes; a longer message is cut, never the
 * newline. */
#define SAY_MAX 1024

void lock_say(const char *fmt, ...)
{
    static const char prefix[] = "cachify-lock: ";
    char line[SAY_MAX];
    size_t n = sizeof(prefix) - 1;
    memcpy(line, prefix, n);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
    line[n++] = '\n';
    /* One write(2): a line from cachify-lock is not torn by COMMAND's
     * output to the same stderr. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

/* Seconds as plain decimal digits with an optional fraction ("2", "0.5",
 * ".25"), into milliseconds, truncating past the millisecond.  strtod
 * would also take "inf", "nan", hex and the locale's decimal point, none
 * of which a script means.  0 and -1 (bad syntax or above max_ms). */
static long long parse_seconds(const char *s, long long max_ms)
{
    long long ms = 0;
    int digits = 0;
    const char *p = s;
    for (; isdigit((unsigned char)*p); p++, digits++) {
        ms = ms * 10 + (*p - '0');
        if (ms > max_ms / 1000)
            return -1;
    }
    ms *= 1000;
    if (*p == '.') {
        long long scale = 100;
        for (p++; isdigit((unsigned char)*p); p++, digits++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (digits == 0 || *p != '\0' || ms > max_ms)
        return -1;
    return ms;
}

/* A whole number in [0, max]; -1 otherwise. */
static long long parse_uint(const char *s, unsigned long long max,
                            unsigned long long *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

enum { OPT_TTL = 256, OPT_ON_LOST, OPT_IS_LOCKED, OPT_RELEASE, OPT_TOKEN };

static const struct option long_opts[] = {
    {"nonblock", no_argument, NULL, 'n'},
    {"nb", no_argument, NULL, 'n'},
    {"timeout", required_argument, NULL, 'w'},
    {"wait", required_argument, NULL, 'w'},
    {"conflict-exit-code", required_argument, NULL, 'E'},
    {"command", required_argument, NULL, 'c'},
    {"url", required_argument, NULL, 'u'},
    {"quiet", no_argument, NULL, 'q'},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"on-lost", required_argument, NULL, OPT_ON_LOST},
    {"is-locked", no_argument, NULL, OPT_IS_LOCKED},
    {"release", no_argument, NULL, OPT_RELEASE},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* "+": stop at the first operand (KEY), as flock(1) does, so COMMAND's
 * options stay COMMAND's.  ":" first: report a missing value ourselves. */
static const char short_opts[] = "+:nw:E:c:u:qhV";

/* One line on stderr; the exit code of a usage error. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lock_say("%s (see cachify-lock --help)", msg);
    return LOCK_EXIT_USAGE;
}

/* Applies option opt with value val.  -1 to go on, else an exit code. */
static int apply_option(struct lock_args *a, int opt, const char *val,
                        const char *arg)
{
    unsigned long long v;
    long long ms;
    switch (opt) {
    case 'n':
        a->nonblock = 1;
        return -1;
    case 'w':
        if ((ms = parse_seconds(val, LOCK_SECONDS_MAX_MS)) < 0)
            return usage_error("bad --timeout '%s': seconds expected", val);
        a->timeout_ms = ms;
        return -1;
    case 'E':
        if (parse_uint(val, 255, &v) < 0)
            return usage_error("bad --conflict-exit-code '%s': 0 to 255", val);
        a->conflict_code = (int)v;
        return -1;
    case 'c':
        a->shell_cmd = val;
        return -1;
    case 'u':
        /* cachify_open takes "" for mem:; here it is a mistake. */
        if (val[0] == '\0')
            return usage_error("%s", "empty --url");
        a->url = val;
        return -1;
    case 'q':
        a->quiet = 1;
        return -1;
    case OPT_TTL:
        ms = parse_seconds(val, LOCK_SECONDS_MAX_MS);
        if (ms < LOCK_TTL_MIN_MS)
            return usage_error("bad --ttl '%s': seconds, at least 0.1", val);
        a->ttl_ms = ms;
        return -1;
    case OPT_ON_LOST:
        if (strcmp(val, "term") == 0)
            a->on_lost = LOCK_LOST_TERM;
        else if (strcmp(val, "kill") == 0)
            a->on_lost = LOCK_LOST_KILL;
        else if (strcmp(val, "ignore") == 0)
            a->on_lost = LOCK_LOST_IGNORE;
        else
            return usage_error("bad --on-lost '%s': term, kill or ignore", val);
        return -1;
    case OPT_IS_LOCKED:
    case OPT_RELEASE:
        if (a->mode != LOCK_MODE_RUN)
            return usage_error("%s", "--is-locked and --release exclude each other");
        a->mode = opt == OPT_IS_LOCKED ? LOCK_MODE_IS_LOCKED : LOCK_MODE_RELEASE;
        return -1;
    case OPT_TOKEN:
        if (parse_uint(val, UINT64_MAX, &v) < 0 || v == 0)
            return usage_error("bad --token '%s': a positive integer", val);
        a->has_token = 1;
        a->token = v;
        return -1;
    case 'h':
        fputs(usage_text, stdout);
        return 0;
    case 'V':
        printf("cachify-lock (libcachify-client) %s\n", CACHIFY_CLIENT_VERSION);
        return 0;
    case ':':
        return usage_error("option '%s' needs a value", arg);
    default:
        return usage_error("unknown option '%s'", arg);
    }
}

/* Runs getopt_long from optind until the first operand or the end.  -1 to
 * go on, else an exit code. */
static int parse_options(struct lock_args *a, int argc, char **argv)
{
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        int rc = apply_option(a, opt, optarg, argv[optind - 1]);
        if (rc >= 0)
            return rc;
    }
    return -1;
}

/* What each mode needs and refuses, once everything is read. */
static int check_mode(const struct lock_args *a, int operands)
{
    if (a->key == NULL)
        return usage_error("%s", "no KEY given");
    if (a->mode != LOCK_MODE_RUN) {
        const char *name = a->mode == LOCK_MODE_RELEASE ? "--release" : "--is-locked";
        if (operands > 1)
            return usage_error("%s takes one KEY and no COMMAND", name);
        if (a->shell_cmd || a->nonblock || a->timeout_ms >= 0)
            return usage_error("%s takes no -c, -n or -w", name);
        if (a->has_token && a->mode != LOCK_MODE_RELEASE)
            return usage_error("%s", "--token goes with --release");
        return -1;
    }
    if (a->has_token)
        return usage_error("%s", "--token goes with --release");
    if (a->shell_cmd == NULL && a->command == NULL)
        return usage_error("%s", "no COMMAND given after KEY");
    if (a->shell_cmd != NULL && a->command != NULL)
        return usage_error("%s", "-c STRING and COMMAND exclude each other");
    if (a->nonblock && a->timeout_ms > 0)
        return usage_error("%s", "-n and -w exclude each other");
    return -1;
}

int lock_args_parse(struct lock_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    a->mode = LOCK_MODE_RUN;
    a->timeout_ms = -1;
    a->ttl_ms = LOCK_TTL_DEFAULT_MS;
    a->conflict_code = LOCK_EXIT_CONFLICT;
    a->on_lost = LOCK_LOST_TERM;

    optind = 1;
    int rc = parse_options(a, argc, argv);
    if (rc >= 0)
        return rc;
    int operands = 0;
    if (optind < argc) {
        a->key = argv[optind++];
        operands = 1;
    }
    if (a->mode != LOCK_MODE_RUN) {
        /* Options may follow KEY here: --release KEY --token T. */
        if ((rc = parse_options(a, argc, argv)) >= 0)
            return rc;
        operands += argc - optind;
    } else if (a->key != NULL && optind < argc) {
        const char *w = argv[optind];
        if (strcmp(w, "-c") == 0 || strcmp(w, "--command") == 0) {
            /* flock(1)'s `KEY -c STRING`: the string and nothing more. */
            if (optind + 2 != argc)
                return usage_error("%s", "-c after KEY takes one STRING and nothing after it");
            a->shell_cmd = argv[optind + 1];
        } else {
            a->command = argv + optind;
        }
    }
    if ((rc = check_mode(a, operands)) >= 0)
        return rc;
    if (a->url == NULL)
        a->url = getenv("CACHIFY_URL");
    if (a->url == NULL || a->url[0] == '\0')
        a->url = DEFAULT_URL;
    return -1;
}
