/* daemon/cmd_compat.c - the Redis connection and server commands (see
 * cmd_compat.h): what redis-py, redis-cli and monitoring send besides key
 * commands, answered in Redis's forms so they work unchanged.
 *
 * INFO is Redis-style text built from the same counters as STATS.  Its
 * redis_version names the Redis command level these commands follow, so
 * tools that read it pick the right command forms; cachifyd_version is
 * ours.  used_memory is the bytes of keys and values, which is what
 * maxmemory bounds (docs/redis-compat.md).
 */
#include "daemon/cmd_compat.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "daemon/args.h"
#include "daemon/cmd_server.h"
#include "daemon/conn.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "daemon/users.h"
#include "daemon/version.h"

/* The Redis version whose command forms (SET options, HELLO, INFO) these
 * follow. */
#define REDIS_LEVEL "7.0.0"

/* Longest CLIENT SETNAME: names are for log lines and CLIENT GETNAME, and
 * every connection may hold one. */
#define CLIENT_NAME_MAX 128

void cmd_echo(struct conn *c, const struct proto_request *req)
{
    reply_bulk(c, req->argv[1], req->argvlen[1]);
}

void cmd_select(struct conn *c, const struct proto_request *req)
{
    if (arg_is(req->argv[1], req->argvlen[1], "0")) {
        reply_status(c, "OK");
        return;
    }
    reply_error(c, "ERR", "cachifyd has one keyspace: only SELECT 0 works");
}

/* Redis refuses names with spaces or control bytes: they would break
 * CLIENT LIST's one-line-per-client output. */
static int set_name(struct conn *c, const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (name[i] <= ' ' || name[i] > '~') {
            reply_error(c, "ERR", "Client names cannot contain spaces, "
                        "newlines or special characters.");
            return -1;
        }
    if (len > CLIENT_NAME_MAX) {
        reply_error(c, "LIMIT", "client name is longer than %d bytes",
                    CLIENT_NAME_MAX);
        return -1;
    }
    char *copy = NULL;
    if (len && !(copy = cfy_malloc(len + 1))) {
        reply_error(c, "ERR", "out of memory");
        return -1;
    }
    if (copy) {
        memcpy(copy, name, len);
        copy[len] = '\0';
    }
    cfy_free(c->name);
    c->name = copy;
    return 0;
}

void cmd_client(struct conn *c, const struct proto_request *req)
{
    const char *sub = req->argv[1];
    size_t sublen = req->argvlen[1];
    if (arg_is(sub, sublen, "SETNAME") && req->argc == 3) {
        if (set_name(c, req->argv[2], req->argvlen[2]) == 0)
            reply_status(c, "OK");
    } else if (arg_is(sub, sublen, "GETNAME") && req->argc == 2) {
        if (c->name)
            reply_bulk(c, c->name, strlen(c->name));
        else
            reply_nil(c);
    } else if (arg_is(sub, sublen, "ID") && req->argc == 2) {
        reply_int(c, (long long)c->id);
    } else if (arg_is(sub, sublen, "SETINFO") && req->argc == 4) {
        reply_status(c, "OK"); /* library name and version: not kept */
    } else if (arg_is(sub, sublen, "SETNAME") ||
               arg_is(sub, sublen, "GETNAME") || arg_is(sub, sublen, "ID") ||
               arg_is(sub, sublen, "SETINFO")) {
        reply_error_arg(c, "wrong number of arguments for 'CLIENT|", sub,
                        sublen, "'");
    } else {
        reply_error_arg(c, "unknown subcommand '", sub, sublen,
                        "' for 'CLIENT'");
    }
}

/* COMMAND, COMMAND DOCS and COMMAND INFO answer an empty list (clients
 * then fall back to their defaults); COMMAND COUNT the table's size. */
void cmd_command(struct conn *c, const struct proto_request *req)
{
    const char *sub = req->argc > 1 ? req->argv[1] : "";
    size_t sublen = req->argc > 1 ? req->argvlen[1] : 0;
    if (req->argc == 2 && arg_is(sub, sublen, "COUNT"))
        reply_int(c, (long long)commands_count());
    else if (req->argc == 1 || arg_is(sub, sublen, "DOCS") ||
             arg_is(sub, sublen, "INFO"))
        reply_array(c, 0);
    else
        reply_error_arg(c, "unknown subcommand '", sub, sublen,
                        "' for 'COMMAND'");
}

/* HELLO [protover [AUTH user password] [SETNAME name]]: RESP2 only; a
 * client asking for 3 gets -NOPROTO and stays on RESP2, as Redis 5
 * clients expect. */
void cmd_hello(struct conn *c, const struct proto_request *req)
{
    long long proto = 2;
    if (req->argc >= 2 &&
        parse_int_arg(req->argv[1], req->argvlen[1], &proto) != 0) {
        reply_error(c, "ERR", "Protocol version is not an integer or out of "
                    "range");
        return;
    }
    if (proto != 2) {
        reply_error(c, "NOPROTO", "sorry, this protocol version is not "
                    "supported");
        return;
    }
    const char *name = NULL;
    size_t namelen = 0;
    int auth_at = 0;
    for (size_t i = 2; i < req->argc; i++) {
        size_t left = req->argc - i - 1;
        if (arg_is(req->argv[i], req->argvlen[i], "AUTH") && left >= 2) {
            auth_at = (int)i;
            i += 2;
        } else if (arg_is(req->argv[i], req->argvlen[i], "SETNAME") &&
                   left >= 1) {
            name = req->argv[++i];
            namelen = req->argvlen[i];
        } else {
            reply_error_arg(c, "Syntax error in HELLO option '",
                            req->argv[i], req->argvlen[i], "'");
            return;
        }
    }
    if (auth_at) {
        if (c->srv->config->requirepass[0] == '\0' &&
            c->srv->users->n == 0) {
            reply_error(c, "ERR", "no password is set");
            return;
        }
        int r = cmd_authenticate(c, req->argv[auth_at + 1],
                                 req->argvlen[auth_at + 1],
                                 req->argv[auth_at + 2],
                                 req->argvlen[auth_at + 2]);
        if (r <= 0) {
            if (r < 0)
                reply_error(c, "ERR", "out of memory");
            else
                reply_error(c, "WRONGPASS", "invalid password");
            return;
        }
    }
    if (!c->authenticated) {
        reply_error(c, "NOAUTH", "HELLO must be called with the client "
                    "already authenticated, otherwise the HELLO <proto> AUTH "
                    "<user> <pass> option can be used");
        return;
    }
    if (name && set_name(c, name, namelen) != 0)
        return;
    reply_array(c, 14);
    reply_bulk(c, "server", 6);
    reply_bulk(c, "cachifyd", 8);
    reply_bulk(c, "version", 7);
    reply_bulk(c, CACHIFYD_VERSION, strlen(CACHIFYD_VERSION));
    reply_bulk(c, "proto", 5);
    reply_int(c, 2);
    reply_bulk(c, "id", 2);
    reply_int(c, (long long)c->id);
    reply_bulk(c, "mode", 4);
    reply_bulk(c, "standalone", 10);
    reply_bulk(c, "role", 4);
    reply_bulk(c, "master", 6);
    reply_bulk(c, "modules", 7);
    reply_array(c, 0);
}

void cmd_dbsize(struct conn *c, const struct proto_request *req)
{
    struct lock_stats ls;
    (void)req;
    locktable_stats(c->srv->locks, &ls);
    reply_int(c, (long long)ls.held);
}

void cmd_time(struct conn *c, const struct proto_request *req)
{
    const struct lock_clock *clk = c->srv->clock;
    uint64_t us = clk->wall_us(clk->arg);
    char sec[24], usec[24];
    int ns = snprintf(sec, sizeof(sec), "%llu",
                      (unsigned long long)(us / 1000000));
    int nu = snprintf(usec, sizeof(usec), "%llu",
                      (unsigned long long)(us % 1000000));
    (void)req;
    reply_array(c, 2);
    reply_bulk(c, sec, (size_t)ns);
    reply_bulk(c, usec, (size_t)nu);
}

/* Scripting cannot run here (no Lua), and the usual scripts exist only to
 * release or extend a lock by its owner's token, which cachifyd does
 * natively. */
void cmd_unsupported(struct conn *c, const struct proto_request *req)
{
    const char *name = req->argv[0];
    size_t len = req->argvlen[0];
    if (len >= 4 && (strncasecmp(name, "EVAL", 4) == 0 ||
                     arg_is(name, len, "SCRIPT") || arg_is(name, len, "FCALL") ||
                     arg_is(name, len, "FUNCTION")))
        reply_error_arg(c, "", name, len,
                        " is not supported by cachifyd (no scripting): "
                        "release a lock only its holder may release with "
                        "RELEASE key token, extend it with EXTEND key token "
                        "ms; see docs/redis-compat.md");
    else
        reply_error_arg(c, "", name, len,
                        " is not supported by cachifyd; see "
                        "docs/redis-compat.md");
}

/* ---- INFO ---- */

/* INFO's text: Redis's sections, bounded (a few dozen short lines). */
#define INFO_MAX 4096

struct info {
    char text[INFO_MAX];
    size_t len;
    const struct proto_request *req; /* the sections asked for */
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void add(struct info *in, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(in->text + in->len, INFO_MAX - in->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        in->len += (size_t)n < INFO_MAX - in->len ? (size_t)n
                                                  : INFO_MAX - in->len - 1;
}

/* Whether section `name` (lower case) is asked for, and if so starts it:
 * all of them with no argument, "all", "everything" or "default". */
static int section(struct info *in, const char *title, const char *name)
{
    int wanted = in->req->argc == 1;
    for (size_t i = 1; !wanted && i < in->req->argc; i++) {
        const char *a = in->req->argv[i];
        size_t len = in->req->argvlen[i];
        wanted = (len == strlen(name) && strncasecmp(a, name, len) == 0) ||
                 arg_is(a, len, "ALL") || arg_is(a, len, "EVERYTHING") ||
                 arg_is(a, len, "DEFAULT");
    }
    if (wanted)
        add(in, "%s# %s\r\n", in->len ? "\r\n" : "", title);
    return wanted;
}

/* Resident set size in bytes, from /proc (0 when it cannot be read). */
static unsigned long long rss_bytes(void)
{
    unsigned long long pages_total = 0, pages_rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &pages_total, &pages_rss) != 2)
        pages_rss = 0;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return pages_rss * (unsigned long long)(page > 0 ? page : 4096);
}

void cmd_info(struct conn *c, const struct proto_request *req)
{
    struct server *srv = c->srv;
    const struct cachify_config *cf = srv->config;
    struct lock_stats ls;
    struct info *in = cfy_malloc(sizeof(*in));
    if (!in) {
        reply_error(c, "ERR", "out of memory");
        return;
    }
    in->len = 0;
    in->text[0] = '\0';
    in->req = req;
    locktable_stats(srv->locks, &ls);
    uint64_t up_s = (srv->clock->mono_us(srv->clock->arg) - srv->started_us) /
                    1000000;
    if (section(in, "Server", "server"))
        add(in, "redis_version:%s\r\ncachifyd_version:%s\r\n"
            "redis_mode:standalone\r\nprocess_id:%ld\r\ntcp_port:%d\r\n"
            "uptime_in_seconds:%llu\r\nuptime_in_days:%llu\r\n",
            REDIS_LEVEL, CACHIFYD_VERSION, (long)getpid(), cf->port,
            (unsigned long long)up_s, (unsigned long long)(up_s / 86400));
    if (section(in, "Clients", "clients"))
        add(in, "connected_clients:%zu\r\nmaxclients:%lld\r\n"
            "blocked_clients:%llu\r\n", (size_t)srv->nconns, srv->maxclients,
            (unsigned long long)ls.waiters);
    if (section(in, "Memory", "memory"))
        add(in, "used_memory:%llu\r\nused_memory_rss:%llu\r\n"
            "maxmemory:%lld\r\nmaxmemory_policy:noeviction\r\n",
            (unsigned long long)ls.data_bytes, rss_bytes(), cf->maxmemory);
    if (section(in, "Persistence", "persistence"))
        add(in, "loading:%d\r\njournal_syncs:%llu\r\njournal_failures:%llu\r\n",
            locktable_recovering(srv->locks),
            (unsigned long long)srv->stats.journal_syncs,
            (unsigned long long)srv->stats.journal_failures);
    if (section(in, "Stats", "stats"))
        add(in, "total_connections_received:%llu\r\n"
            "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n"
            "expired_keys:%llu\r\nevicted_keys:0\r\nauth_failures:%llu\r\n"
            "locks_acquired:%llu\r\nlocks_released:%llu\r\n"
            "lock_wait_timeouts:%llu\r\nlocks_rejected:%llu\r\n"
            "lock_handoffs:%llu\r\ntls_connections:%llu\r\n"
            "tls_handshake_failures:%llu\r\n",
            (unsigned long long)srv->stats.connections_total,
            (unsigned long long)srv->stats.commands,
            (unsigned long long)srv->stats.rejected_clients,
            (unsigned long long)ls.expired,
            (unsigned long long)srv->stats.auth_failures,
            (unsigned long long)ls.acquired, (unsigned long long)ls.released,
            (unsigned long long)ls.timeouts, (unsigned long long)ls.rejected,
            (unsigned long long)ls.handoffs,
            (unsigned long long)srv->stats.tls_connections,
            (unsigned long long)srv->stats.tls_handshake_failures);
    if (section(in, "Keyspace", "keyspace") && ls.held)
        add(in, "db0:keys=%llu\r\n", (unsigned long long)ls.held);
    reply_bulk(c, in->text, in->len);
    cfy_free(in);
}
