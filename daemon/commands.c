/* daemon/commands.c - command lookup and dispatch (see commands.h).
 *
 * Order of checks, as Redis clients expect: unknown command, then argument
 * count, then authentication.  The table is small and scanned linearly by
 * length first; a hash would not be faster for fourteen names.
 */
#include "daemon/commands.h"

#include <string.h>

#include "daemon/args.h"
#include "daemon/cmd_lock.h"
#include "daemon/cmd_server.h"
#include "daemon/conn.h"
#include "daemon/reply.h"

typedef void (*command_fn)(struct conn *c, const struct proto_request *req);

struct command {
    const char *name;     /* upper case, as HELP shows it */
    int min_argc;         /* counting the command word */
    int max_argc;         /* -1: no upper bound */
    int before_auth;      /* allowed before AUTH when requirepass is set */
    command_fn run;
    const char *usage;    /* one HELP line */
};

static void cmd_help(struct conn *c, const struct proto_request *req);

static const struct command table[] = {
    { "ACQUIRE", 2, 7, 0, cmd_acquire,
      "ACQUIRE key [TTL ms|TTL FOREVER] [WAIT ms|WAIT FOREVER] [SESSION]" },
    { "RELEASE", 2, 3, 0, cmd_release, "RELEASE key [token]" },
    { "IS_LOCKED", 2, 2, 0, cmd_is_locked, "IS_LOCKED key" },
    { "EXTEND", 4, 4, 0, cmd_extend, "EXTEND key token ms" },
    { "PTTL", 2, 2, 0, cmd_pttl, "PTTL key" },
    { "TTL", 2, 2, 0, cmd_ttl, "TTL key" },
    { "PING", 1, 2, 1, cmd_ping, "PING [message]" },
    { "STATS", 1, 1, 0, cmd_stats, "STATS" },
    { "AUTH", 2, 3, 1, cmd_auth, "AUTH password" },
    { "HELP", 1, 1, 1, cmd_help, "HELP" },
    { "QUIT", 1, 1, 1, cmd_quit, "QUIT" },
    /* Sent by Redis client libraries when they connect. */
    { "COMMAND", 1, -1, 0, cmd_command,
      "COMMAND (Redis compatibility: empty)" },
    { "CLIENT", 2, -1, 0, cmd_client,
      "CLIENT SETNAME|SETINFO ... (Redis compatibility)" },
    { "SELECT", 2, 2, 0, cmd_select, "SELECT 0 (Redis compatibility)" },
};

#define TABLE_SIZE (sizeof(table) / sizeof(table[0]))

/* HELP is answered here because its reply is the table itself: one usage
 * line per command, in table order. */
static void cmd_help(struct conn *c, const struct proto_request *req)
{
    (void)req;
    reply_array(c, TABLE_SIZE);
    for (size_t i = 0; i < TABLE_SIZE; i++)
        reply_bulk(c, table[i].usage, strlen(table[i].usage));
}

static const struct command *lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < TABLE_SIZE; i++)
        if (arg_is(name, len, table[i].name))
            return &table[i];
    return NULL;
}

void commands_execute(struct conn *c, const struct proto_request *req)
{
    const struct command *cmd = lookup(req->argv[0], req->argvlen[0]);
    if (!cmd) {
        reply_error_arg(c, "unknown command '", req->argv[0], req->argvlen[0],
                        "'");
        return;
    }
    if ((int)req->argc < cmd->min_argc ||
        (cmd->max_argc >= 0 && (int)req->argc > cmd->max_argc)) {
        reply_error(c, "ERR", "wrong number of arguments for '%s'",
                    cmd->name);
        return;
    }
    if (!c->authenticated && !cmd->before_auth) {
        reply_error(c, "NOAUTH", "Authentication required.");
        return;
    }
    cmd->run(c, req);
}
