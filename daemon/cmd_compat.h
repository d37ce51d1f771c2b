/* daemon/cmd_compat.h - the Redis connection and server commands that
 * client libraries, redis-cli and monitoring send: HELLO, ECHO, SELECT,
 * CLIENT, COMMAND, INFO, DBSIZE, TIME, and the clear refusal of the
 * scripting commands (EVAL and friends).
 *
 * Owns: these replies, in Redis's forms.  Does not own: the key commands
 * (cmd_keys.h), AUTH (cmd_server.h, which HELLO's AUTH option shares),
 * dispatch (commands.c).
 */
#ifndef CACHIFY_DAEMON_CMD_COMPAT_H
#define CACHIFY_DAEMON_CMD_COMPAT_H

#include "proto/reader.h"

struct conn;

/* Each appends exactly one reply to c for req (argument count already
 * checked by commands.c). */
void cmd_hello(struct conn *c, const struct proto_request *req);
void cmd_echo(struct conn *c, const struct proto_request *req);
void cmd_select(struct conn *c, const struct proto_request *req);
void cmd_client(struct conn *c, const struct proto_request *req);
void cmd_command(struct conn *c, const struct proto_request *req);
void cmd_info(struct conn *c, const struct proto_request *req);
void cmd_dbsize(struct conn *c, const struct proto_request *req);
void cmd_time(struct conn *c, const struct proto_request *req);
void cmd_unsupported(struct conn *c, const struct proto_request *req);

/* How many commands the table has, for COMMAND COUNT (commands.c). */
size_t commands_count(void);

#endif
