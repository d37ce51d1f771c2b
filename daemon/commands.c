/* daemon/commands.c - command lookup and dispatch (see commands.h).
 *
 * Order of checks, as Redis clients expect: unknown command, then argument
 * count, then authentication.  The table is scanned linearly, comparing
 * the stored name length before any bytes, so a lookup costs a few dozen
 * integer compares and one case-insensitive compare; the commands sent
 * most (the lock commands, SET, GET, DEL) come first.
 */
#include "daemon/commands.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daemon/args.h"
#include "daemon/cmd_compat.h"
#include "daemon/cmd_keys.h"
#include "daemon/cmd_lock.h"
#include "daemon/cmd_pool.h"
#include "daemon/cmd_server.h"
#include "daemon/conn.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "daemon/users.h"

typedef void (*command_fn)(struct conn *c, const struct proto_request *req);

/* For named users (users.h): which arguments are keys ... */
enum key_args {
    KEY_NONE,  /* none */
    KEY_FIRST, /* argv[1] */
    KEY_ALL,   /* argv[1] to the end */
};

/* ... and what the command does to them. */
enum key_access {
    ACCESS_READ,    /* looks only */
    ACCESS_WRITE,   /* takes, extends or releases with the holder's token */
    ACCESS_FORCE,   /* ends or changes a lock without its token */
    ACCESS_RELEASE, /* RELEASE: forced when no token is given */
    ACCESS_SET,     /* SET: forced (overwrites a holder) unless NX */
};

struct command {
    const char *name;     /* upper case, as HELP shows it */
    size_t len;           /* strlen(name) */
    int min_argc;         /* counting the command word */
    int max_argc;         /* -1: no upper bound */
    int before_auth;      /* allowed before AUTH when requirepass is set */
    command_fn run;
    const char *usage;    /* one HELP line */
    enum key_args keys;   /* which arguments are keys, for named users */
    enum key_access access; /* what the command does to them */
    int lock_only;        /* its keys must not be pools: -WRONGTYPE */
};

static void cmd_help(struct conn *c, const struct proto_request *req);

#define NAME(s) s, sizeof(s) - 1

static const struct command table[] = {
    { NAME("ACQUIRE"), 2, 7, 0, cmd_acquire,
      "ACQUIRE key [TTL ms|TTL FOREVER] [WAIT ms|WAIT FOREVER] [SESSION]",
      KEY_FIRST, ACCESS_WRITE, 1 },
    { NAME("RELEASE"), 2, 3, 0, cmd_release, "RELEASE key [token]",
      KEY_FIRST, ACCESS_RELEASE, 1 },
    { NAME("IS_LOCKED"), 2, 2, 0, cmd_is_locked, "IS_LOCKED key",
      KEY_FIRST, ACCESS_READ, 0 },
    { NAME("EXTEND"), 4, 4, 0, cmd_extend, "EXTEND key token ms",
      KEY_FIRST, ACCESS_WRITE, 1 },
    { NAME("PTTL"), 2, 2, 0, cmd_pttl, "PTTL key", KEY_FIRST, ACCESS_READ, 1 },
    { NAME("TTL"), 2, 2, 0, cmd_ttl, "TTL key", KEY_FIRST, ACCESS_READ, 1 },
    /* Pools (counting semaphores) on the same keyspace. */
    { NAME("POOL_ACQUIRE"), 3, 8, 0, cmd_pool_acquire,
      "POOL_ACQUIRE key max_size [TTL ms|TTL FOREVER] [WAIT ms|WAIT FOREVER] "
      "[SESSION]", KEY_FIRST, ACCESS_WRITE, 0 },
    { NAME("POOL_RELEASE"), 2, 3, 0, cmd_pool_release,
      "POOL_RELEASE key [token]", KEY_FIRST, ACCESS_RELEASE, 0 },
    { NAME("POOL_SIZE"), 2, 2, 0, cmd_pool_size, "POOL_SIZE key",
      KEY_FIRST, ACCESS_READ, 0 },
    { NAME("POOL_EXTEND"), 4, 4, 0, cmd_pool_extend,
      "POOL_EXTEND key token ms", KEY_FIRST, ACCESS_WRITE, 0 },
    /* Redis key commands (docs/redis-compat.md): one keyspace with the
     * locks. */
    { NAME("SET"), 3, 9, 0, cmd_set,
      "SET key value [NX|XX] [GET] [EX s|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]",
      KEY_FIRST, ACCESS_SET, 1 },
    { NAME("GET"), 2, 2, 0, cmd_get, "GET key", KEY_FIRST, ACCESS_READ, 1 },
    { NAME("DEL"), 2, -1, 0, cmd_del, "DEL key [key ...]",
      KEY_ALL, ACCESS_FORCE, 1 },
    { NAME("EXISTS"), 2, -1, 0, cmd_exists, "EXISTS key [key ...]",
      KEY_ALL, ACCESS_READ, 0 },
    { NAME("MGET"), 2, -1, 0, cmd_mget, "MGET key [key ...]",
      KEY_ALL, ACCESS_READ, 0 },
    { NAME("SETNX"), 3, 3, 0, cmd_setnx, "SETNX key value",
      KEY_FIRST, ACCESS_WRITE, 1 },
    { NAME("SETEX"), 4, 4, 0, cmd_setex, "SETEX key seconds value",
      KEY_FIRST, ACCESS_FORCE, 1 },
    { NAME("PSETEX"), 4, 4, 0, cmd_psetex, "PSETEX key ms value",
      KEY_FIRST, ACCESS_FORCE, 1 },
    { NAME("GETDEL"), 2, 2, 0, cmd_getdel, "GETDEL key",
      KEY_FIRST, ACCESS_FORCE, 1 },
    { NAME("UNLINK"), 2, -1, 0, cmd_del, "UNLINK key [key ...]",
      KEY_ALL, ACCESS_FORCE, 1 },
    { NAME("EXPIRE"), 3, 7, 0, cmd_expire,
      "EXPIRE key seconds [NX|XX|GT|LT]", KEY_FIRST, ACCESS_FORCE, 1 },
    { NAME("PEXPIRE"), 3, 7, 0, cmd_pexpire, "PEXPIRE key ms [NX|XX|GT|LT]",
      KEY_FIRST, ACCESS_FORCE, 1 },
    { NAME("EXPIREAT"), 3, 7, 0, cmd_expireat,
      "EXPIREAT key unix-s [NX|XX|GT|LT]", KEY_FIRST, ACCESS_FORCE, 1 },
    { NAME("PEXPIREAT"), 3, 7, 0, cmd_pexpireat,
      "PEXPIREAT key unix-ms [NX|XX|GT|LT]", KEY_FIRST, ACCESS_FORCE, 1 },
    { NAME("PERSIST"), 2, 2, 0, cmd_persist, "PERSIST key",
      KEY_FIRST, ACCESS_FORCE, 1 },
    { NAME("PING"), 1, 2, 1, cmd_ping, "PING [message]",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("STATS"), 1, 1, 0, cmd_stats, "STATS", KEY_NONE, ACCESS_READ, 0 },
    { NAME("AUTH"), 2, 3, 1, cmd_auth, "AUTH [default] password",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("HELP"), 1, 1, 1, cmd_help, "HELP", KEY_NONE, ACCESS_READ, 0 },
    { NAME("QUIT"), 1, 1, 1, cmd_quit, "QUIT", KEY_NONE, ACCESS_READ, 0 },
    /* Sent by Redis client libraries, redis-cli and monitoring. */
    { NAME("HELLO"), 1, 7, 1, cmd_hello,
      "HELLO [2 [AUTH default password] [SETNAME name]]",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("ECHO"), 2, 2, 0, cmd_echo, "ECHO message",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("SELECT"), 2, 2, 0, cmd_select, "SELECT 0",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("CLIENT"), 2, -1, 0, cmd_client,
      "CLIENT SETNAME name|GETNAME|ID|SETINFO attr value",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("COMMAND"), 1, -1, 0, cmd_command,
      "COMMAND [COUNT|DOCS] (empty but for COUNT)", KEY_NONE, ACCESS_READ, 0 },
    { NAME("INFO"), 1, -1, 0, cmd_info, "INFO [section ...]",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("DBSIZE"), 1, 1, 0, cmd_dbsize, "DBSIZE",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("TIME"), 1, 1, 0, cmd_time, "TIME", KEY_NONE, ACCESS_READ, 0 },
    /* Refused with the reason and the alternative. */
    { NAME("EVAL"), 1, -1, 0, cmd_unsupported, "EVAL (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("EVALSHA"), 1, -1, 0, cmd_unsupported, "EVALSHA (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("EVAL_RO"), 1, -1, 0, cmd_unsupported, "EVAL_RO (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("EVALSHA_RO"), 1, -1, 0, cmd_unsupported,
      "EVALSHA_RO (not supported)", KEY_NONE, ACCESS_READ, 0 },
    { NAME("SCRIPT"), 1, -1, 0, cmd_unsupported, "SCRIPT (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("FCALL"), 1, -1, 0, cmd_unsupported, "FCALL (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("FUNCTION"), 1, -1, 0, cmd_unsupported,
      "FUNCTION (not supported)", KEY_NONE, ACCESS_READ, 0 },
    { NAME("INCR"), 1, -1, 0, cmd_unsupported, "INCR (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("INCRBY"), 1, -1, 0, cmd_unsupported, "INCRBY (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("DECR"), 1, -1, 0, cmd_unsupported, "DECR (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
    { NAME("DECRBY"), 1, -1, 0, cmd_unsupported, "DECRBY (not supported)",
      KEY_NONE, ACCESS_READ, 0 },
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

size_t commands_count(void)
{
    return TABLE_SIZE;
}

/* Whether cmd ends or changes a lock without its holder's token. */
static int forces(const struct command *cmd, const struct proto_request *req)
{
    if (cmd->access == ACCESS_FORCE)
        return 1;
    if (cmd->access == ACCESS_RELEASE)
        return req->argc == 2;
    if (cmd->access == ACCESS_SET) {
        for (size_t i = 3; i < req->argc; i++)
            if (arg_is(req->argv[i], req->argvlen[i], "NX"))
                return 0;
        return 1;
    }
    return 0;
}

/* A named user (users.h) may only touch keys under its prefixes, only
 * look when readonly, and force only with `force`: otherwise -NOPERM,
 * counted in STATS noperm.  The user is looked up for every request, so a
 * reload that changes or removes it applies at once.  Returns 1 when
 * refused (replied). */
static int refused_for_user(struct conn *c, const struct command *cmd,
                            const struct proto_request *req)
{
    const struct user *u = users_find(c->srv->users, c->user,
                                      strlen(c->user));
    if (!u && !cmd->before_auth) {
        c->srv->stats.noperm++;
        reply_error(c, "NOPERM", "user '%s' is no longer defined (the "
                    "config was reloaded): AUTH again", c->user);
        return 1;
    }
    if (!u || cmd->keys == KEY_NONE)
        return 0;
    size_t last = cmd->keys == KEY_ALL ? req->argc - 1 : 1;
    for (size_t i = 1; i <= last; i++) {
        if (user_may_access(u, req->argv[i], req->argvlen[i]))
            continue;
        char before[USER_NAME_MAX + 48];
        snprintf(before, sizeof(before), "user '%s' has no access to key '",
                 u->name);
        c->srv->stats.noperm++;
        reply_error_quoted(c, "NOPERM", before, req->argv[i],
                           req->argvlen[i], "'");
        return 1;
    }
    if (cmd->access != ACCESS_READ && u->readonly) {
        c->srv->stats.noperm++;
        reply_error(c, "NOPERM", "user '%s' is read-only: %s changes keys",
                    u->name, cmd->name);
        return 1;
    }
    if (forces(cmd, req) && !u->force) {
        c->srv->stats.noperm++;
        reply_error(c, "NOPERM", "user '%s' may not end or change a lock "
                    "without its token (%s needs the force permission)",
                    u->name, cmd->name);
        return 1;
    }
    return 0;
}

static const struct command *lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < TABLE_SIZE; i++)
        if (table[i].len == len && strncasecmp(name, table[i].name, len) == 0)
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
    if (c->user && refused_for_user(c, cmd, req))
        return;
    if (cmd->lock_only &&
        cmd_check_not_pool(c, req, 1,
                           cmd->keys == KEY_ALL ? req->argc - 1 : 1) != 0)
        return;
    cmd->run(c, req);
}
