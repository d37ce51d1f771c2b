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

/* Checks a password in constant time: user NULL or "default" against
 * requirepass (refused when none is set), another name against that user's
 * (users.h).  1 and c authenticated as that user, 0 with the failure
 * counted and logged, -1 out of memory (nothing changed). */
int cmd_authenticate(struct conn *c, const char *user, size_t user_len,
                     const char *pass, size_t pass_len);

#endif
