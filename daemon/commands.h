/* daemon/commands.h - the command table and request dispatch.
 *
 * Owns: the table (each command's name, argument counts, whether it may
 * run before AUTH, its handler and its HELP line), matching a request's
 * command word against it (case-insensitive, whole word), the
 * argument-count check, the authentication gate, the error replies for
 * those, and HELP, which lists the table.  Does not own: the commands
 * themselves, which live by topic in cmd_lock.c (lock commands) and
 * cmd_server.c (PING, AUTH, STATS, ...) and never call back in here.
 */
#ifndef CACHIFY_DAEMON_COMMANDS_H
#define CACHIFY_DAEMON_COMMANDS_H

#include "proto/reader.h"

struct conn;

/* Executes one parsed request on c; always appends exactly one reply,
 * except for an ACQUIRE that starts waiting (its reply comes later, from
 * cmd_lock.c). */
void commands_execute(struct conn *c, const struct proto_request *req);

#endif
