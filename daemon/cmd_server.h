/* daemon/cmd_server.h - the server commands: PING, STATS, AUTH, QUIT, and
 * the connection commands Redis client libraries send on connect (COMMAND,
 * CLIENT SETNAME/SETINFO, SELECT 0).
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
void cmd_command(struct conn *c, const struct proto_request *req);
void cmd_client(struct conn *c, const struct proto_request *req);
void cmd_select(struct conn *c, const struct proto_request *req);

#endif
