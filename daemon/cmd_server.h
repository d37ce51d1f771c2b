/* daemon/cmd_server.h - the server commands: PING, STATS, AUTH, QUIT (the
 * Redis connection commands are in cmd_compat.h).
 *
 * Owns: these handlers, which commands.c's table calls.  Does not own:
 * dispatch (commands.c) or HELP, which lists that table and so lives
 * with it.
 */
#ifndef CACHIFY_DAEMON_CMD_SERVER_H
#define CACHIFY_DAEMON_CMD_SERVER_H

#include "proto/reader.h"

struct conn;

/* Each appends exactly one reply to c for req, whose argument count
 * commands.c has already checked. */
void cmd_ping(struct conn *c, const struct proto_request *req);
void cmd_stats(struct conn *c, const struct proto_request *req);
void cmd_auth(struct conn *c, const struct proto_request *req);
void cmd_quit(struct conn *c, const struct proto_request *req);

/* Checks a password (user NULL: the one-argument AUTH form) against
 * requirepass in constant time; 1 and c authenticated, or 0 with the
 * failure counted and logged.  requirepass must be set. */
int cmd_authenticate(struct conn *c, const char *user, size_t user_len,
                     const char *pass, size_t pass_len);

#endif
