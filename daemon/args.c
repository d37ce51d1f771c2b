/* daemon/args.c - argument parsing shared by the commands (see args.h).
 *
 * Numbers are parsed by hand rather than with strtoull, which would take
 * leading blanks and a sign ("-1" becoming 2^64 - 1): the wire allows
 * digits only.
 */
#include "daemon/args.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daemon/reply.h"

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
