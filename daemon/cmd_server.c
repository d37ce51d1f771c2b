/* daemon/cmd_server.c - server commands: PING, STATS, AUTH, QUIT, and the
 * few connection commands Redis client libraries send on connect (COMMAND,
 * CLIENT SETNAME/SETINFO, SELECT 0), answered harmlessly so those libraries
 * work unchanged (see cmd_server.h).
 *
 * Owns: these replies and the STATS document (built with jansson).  Does
 * not own: HELP (commands.c, beside the table it lists).
 */
#include "daemon/cmd_server.h"

#include <string.h>

#include <jansson.h>

#include "engine/clock.h"
#include "daemon/args.h"
#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "daemon/version.h"

void cmd_ping(struct conn *c, const struct proto_request *req)
{
    if (req->argc == 2)
        reply_bulk(c, req->argv[1], req->argvlen[1]);
    else
        reply_status(c, "PONG");
}

void cmd_stats(struct conn *c, const struct proto_request *req)
{
    struct server *srv = c->srv;
    struct lock_stats ls;
    (void)req;
    locktable_stats(srv->locks, &ls);
    uint64_t uptime_ms = (clock_mono_us(NULL) - srv->started_us) / 1000;
    json_t *doc = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
        " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
        "version", CACHIFYD_VERSION,
        "uptime_ms", (json_int_t)uptime_ms,
        "clients", (json_int_t)srv->nconns,
        "locks_held", (json_int_t)ls.held,
        "waiters", (json_int_t)ls.waiters,
        "acquired", (json_int_t)ls.acquired,
        "released", (json_int_t)ls.released,
        "expired", (json_int_t)ls.expired,
        "timeouts", (json_int_t)ls.timeouts,
        "rejected", (json_int_t)ls.rejected,
        "handoffs", (json_int_t)ls.handoffs,
        "connections_total", (json_int_t)srv->stats.connections_total,
        "rejected_clients", (json_int_t)srv->stats.rejected_clients,
        "commands", (json_int_t)srv->stats.commands,
        "auth_failures", (json_int_t)srv->stats.auth_failures,
        "protocol_errors", (json_int_t)srv->stats.protocol_errors,
        "idle_closed", (json_int_t)srv->stats.idle_closed,
        "request_timeouts", (json_int_t)srv->stats.request_timeouts,
        "stalled_clients", (json_int_t)srv->stats.stalled_clients,
        "denied_clients", (json_int_t)srv->stats.denied_clients,
        "budget_closed_clients", (json_int_t)srv->stats.budget_closed_clients,
        "client_buffer_bytes", (json_int_t)srv->client_bytes,
        "maxclients", (json_int_t)srv->maxclients,
        "recovering", locktable_recovering(srv->locks));
    /* The state file's journal: appends waited for, and appends that
     * failed or were not tried within a second of a failure (each refused
     * a grant or an extend, see docs/protocol.md). */
    if (doc && (json_object_set_new(doc, "journal_syncs", json_integer(
                    (json_int_t)srv->stats.journal_syncs)) != 0 ||
                json_object_set_new(doc, "journal_failures", json_integer(
                    (json_int_t)srv->stats.journal_failures)) != 0 ||
                json_object_set_new(doc, "wait_seconds", wait_hist_json(
                    &srv->stats.wait_time)) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        reply_error(c, "ERR", "out of memory");
        return;
    }
    reply_bulk(c, text, strlen(text));
    free(text);
}

/* Compares in time that depends only on the secret's length, so a client
 * cannot learn the password a byte at a time from reply timing. */
static int password_matches(const char *given, size_t len, const char *secret)
{
    size_t secret_len = strlen(secret);
    unsigned char diff = len != secret_len;
    for (size_t i = 0; i < secret_len; i++)
        diff |= (unsigned char)secret[i] ^
                (unsigned char)(i < len ? given[i] : 0);
    return diff == 0;
}

void cmd_auth(struct conn *c, const struct proto_request *req)
{
    const char *secret = c->srv->config->requirepass;
    size_t pass = req->argc - 1; /* AUTH [username] password */
    if (secret[0] == '\0') {
        reply_error(c, "ERR", "no password is set");
        return;
    }
    int user_ok = req->argc == 2 || arg_is(req->argv[1], req->argvlen[1],
                                           "default");
    if (user_ok &&
        password_matches(req->argv[pass], req->argvlen[pass], secret)) {
        c->authenticated = 1;
        reply_status(c, "OK");
        return;
    }
    static struct log_limit auth_log; /* AUTH can be pipelined at will */
    c->srv->stats.auth_failures++;
    log_limited(&auth_log, LOG_WARNING, "client %s: AUTH failed", c->peer);
    reply_error(c, "WRONGPASS", "invalid password");
}

void cmd_quit(struct conn *c, const struct proto_request *req)
{
    (void)req;
    reply_status(c, "OK");
    conn_close_after_reply(c);
}

void cmd_command(struct conn *c, const struct proto_request *req)
{
    (void)req;
    reply_array(c, 0);
}

void cmd_client(struct conn *c, const struct proto_request *req)
{
    if (arg_is(req->argv[1], req->argvlen[1], "SETNAME") ||
        arg_is(req->argv[1], req->argvlen[1], "SETINFO")) {
        reply_status(c, "OK");
        return;
    }
    reply_error_arg(c, "unknown subcommand '", req->argv[1], req->argvlen[1],
                    "' for 'CLIENT'");
}

void cmd_select(struct conn *c, const struct proto_request *req)
{
    if (arg_is(req->argv[1], req->argvlen[1], "0")) {
        reply_status(c, "OK");
        return;
    }
    reply_error(c, "ERR", "cachifyd has one keyspace: only SELECT 0 works");
}
