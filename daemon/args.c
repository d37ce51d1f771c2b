/* daemon/args.c - argument parsing shared by the commands (see args.h).
 *
 * Numbers are parsed by hand rather than with strtoull, which would take
 * leading blanks and a sign ("-1" becoming 2^64 - 1): the wire allows
 * digits only.
 */
#include "daemon/args.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daemon/conn.h"
#include "daemon/reply.h"
#include "daemon/server.h"

/* How much of a client's argument an error line shows (args.h). */
#define ERROR_ARG_SHOWN 128

int arg_is(const char *arg, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(arg, word, len) == 0;
}

int parse_uint_arg(const char *arg, size_t len, unsigned long long max,
                   unsigned long long *out)
{
    unsigned long long v = 0;
    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)arg[i] - '0';
        if (d > 9 || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int parse_int_arg(const char *arg, size_t len, long long *out)
{
    int negative = len > 0 && arg[0] == '-';
    unsigned long long v;
    /* LLONG_MIN's magnitude is one more than LLONG_MAX's. */
    unsigned long long max = negative ? (unsigned long long)LLONG_MAX + 1
                                      : (unsigned long long)LLONG_MAX;
    if (parse_uint_arg(arg + negative, len - (size_t)negative, max, &v) != 0)
        return -1;
    *out = negative ? (long long)(0 - v) : (long long)v;
    return 0;
}

int arg_check_key(struct conn *c, const char *key, size_t len)
{
    long long max = c->srv->config->max_key_len;
    (void)key;
    if (len == 0) {
        reply_error(c, "ERR", "empty key");
        return -1;
    }
    if ((long long)len > max) {
        reply_error(c, "LIMIT", "key is longer than max_key_len (%lld bytes)",
                    max);
        return -1;
    }
    return 0;
}

int parse_ms_arg(struct conn *c, const char *what, const char *arg,
                 size_t len, unsigned long long min, unsigned long long max,
                 int forever_ok, unsigned long long *out)
{
    char before[64], after[96];
    if (parse_uint_arg(arg, len, ~0ULL, out) == 0 && *out >= min &&
        *out <= max)
        return 0;
    snprintf(before, sizeof(before), "invalid %s '", what);
    snprintf(after, sizeof(after), "': expected milliseconds (%llu..%llu)%s",
             min, max, forever_ok ? " or FOREVER" : "");
    reply_error_arg(c, before, arg, len, after);
    return -1;
}

void reply_error_arg(struct conn *c, const char *before, const char *arg,
                     size_t len, const char *after)
{
    if (len <= ERROR_ARG_SHOWN) {
        reply_error_quoted(c, "ERR", before, arg, len, after);
        return;
    }
    char tail[128];
    snprintf(tail, sizeof(tail), "...%s", after);
    reply_error_quoted(c, "ERR", before, arg, ERROR_ARG_SHOWN, tail);
}
