/* daemon/args.h - a request's arguments, as every command reads them.
 *
 * Owns: the argument syntax that more than one command shares (a keyword,
 * an unsigned decimal number, milliseconds within bounds) and the -ERR
 * line that quotes a client's bad argument, shortened so a huge argument
 * cannot make a huge error.  Does not own: what an argument means to a
 * command (cmd_lock.c, cmd_server.c) or the command word (commands.c).
 */
#ifndef CACHIFY_DAEMON_ARGS_H
#define CACHIFY_DAEMON_ARGS_H

#include <stddef.h>

struct conn;

/* 1 when arg (len bytes) is word, compared case-insensitively; word is
 * upper case. */
int arg_is(const char *arg, size_t len, const char *word);

/* Parses a decimal integer argument (digits only, no sign) into *out.
 * Returns 0, or -1 when it is not a number or above max. */
int parse_uint_arg(const char *arg, size_t len, unsigned long long max,
                   unsigned long long *out);

/* Parses a signed decimal integer as Redis does (an optional '-', then
 * digits; no '+', blanks or leading zeros rule) into *out.  0, or -1 when
 * it is not one or does not fit a long long. */
int parse_int_arg(const char *arg, size_t len, long long *out);

/* Checks a key argument: replies -ERR (empty) or -LIMIT (longer than
 * max_key_len) on c and returns -1, else 0. */
int arg_check_key(struct conn *c, const char *key, size_t len);

/* Parses a milliseconds argument in [min, max] into *out.  Returns 0, or
 * -1 after replying -ERR on c naming `what` and the range (and FOREVER
 * when forever_ok: the caller would have taken that word instead). */
int parse_ms_arg(struct conn *c, const char *what, const char *arg,
                 size_t len, unsigned long long min, unsigned long long max,
                 int forever_ok, unsigned long long *out);

/* Quotes a client's argument into an -ERR line on c:
 * "-ERR <before><arg, escaped><after>", arg shortened to 128 bytes (with
 * "...") so a huge argument cannot make a huge error. */
void reply_error_arg(struct conn *c, const char *before, const char *arg,
                     size_t len, const char *after);

#endif
