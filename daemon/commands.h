/* daemon/commands.h - the command table and request dispatch.
 *
 * Owns: matching a request's command word (case-insensitive, whole word),
 * the argument-count check, the authentication gate, and the error replies
 * for those.  Does not own: the commands themselves, which live by topic in
 * cmd_lock.c (lock commands) and cmd_server.c (PING, AUTH, STATS, ...).
 */
#ifndef CACHIFY_DAEMON_COMMANDS_H
#define CACHIFY_DAEMON_COMMANDS_H

#include <stddef.h>

#include "proto/reader.h"

struct conn;

typedef void (*command_fn)(struct conn *c, const struct proto_request *req);

struct command {
    const char *name;     /* upper case, as HELP shows it */
    int min_argc;         /* counting the command word */
    int max_argc;         /* -1: no upper bound */
    int before_auth;      /* allowed before AUTH when requirepass is set */
    command_fn run;
    const char *usage;    /* one HELP line */
};

/* Executes one parsed request on c; always appends exactly one reply,
 * except for an ACQUIRE that starts waiting (its reply comes later). */
void commands_execute(struct conn *c, const struct proto_request *req);

/* The table, for HELP.  *count receives its length. */
const struct command *commands_table(size_t *count);

/* Handlers (cmd_lock.c, cmd_server.c). */
void cmd_acquire(struct conn *c, const struct proto_request *req);
void cmd_release(struct conn *c, const struct proto_request *req);
void cmd_is_locked(struct conn *c, const struct proto_request *req);
void cmd_extend(struct conn *c, const struct proto_request *req);
void cmd_pttl(struct conn *c, const struct proto_request *req);
void cmd_ttl(struct conn *c, const struct proto_request *req);
void cmd_ping(struct conn *c, const struct proto_request *req);
void cmd_stats(struct conn *c, const struct proto_request *req);
void cmd_auth(struct conn *c, const struct proto_request *req);
void cmd_help(struct conn *c, const struct proto_request *req);
void cmd_quit(struct conn *c, const struct proto_request *req);
void cmd_command(struct conn *c, const struct proto_request *req);
void cmd_client(struct conn *c, const struct proto_request *req);
void cmd_select(struct conn *c, const struct proto_request *req);

/* Quotes a client's argument into an -ERR line, shortened to 128 bytes
 * (with "...") so a huge argument cannot make a huge error. */
void reply_error_arg(struct conn *c, const char *before, const char *arg,
                     size_t len, const char *after);

/* Parses a decimal integer argument (digits only, no sign) into *out.
 * Returns 0, or -1 when it is not a number or above max. */
int parse_uint_arg(const char *arg, size_t len, unsigned long long max,
                   unsigned long long *out);

/* Case-insensitive comparison of an argument with an upper-case word. */
int arg_is(const char *arg, size_t len, const char *word);

#endif
