/* daemon/commands.c - command lookup and dispatch (see commands.h).
 *
 * Order of checks, as Redis clients expect: unknown command, then argument
 * count, then authentication.  The table is small and scanned linearly by
 * length first; a hash would not be faster for fourteen names.
 */
#include "daemon/commands.h"

#include <string.h>
#include <strings.h>

#include "daemon/conn.h"
#include "daemon/output.h"
#include "daemon/server.h"

/* How much of a client's argument an error line shows. */
#define ERROR_ARG_SHOWN 128

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
    { "COMMAND", 1, -1, 0, cmd_command, "COMMAND (Redis compatibility: empty)" },
    { "CLIENT", 2, -1, 0, cmd_client, "CLIENT SETNAME|SETINFO ... (Redis compatibility)" },
    { "SELECT", 2, 2, 0, cmd_select, "SELECT 0 (Redis compatibility)" },
};

const struct command *commands_table(size_t *count)
{
    *count = sizeof(table) / sizeof(table[0]);
    return table;
}

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

static const struct command *lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
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
