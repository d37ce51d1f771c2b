/* daemon/cmd_server.c - server commands: PING, STATS, AUTH, QUIT (see
 * cmd_server.h).
 *
 * Owns: these replies and the STATS document (built with jansson).  Does
 * not own: HELP (commands.c, beside the table it lists).
 */
#include "daemon/cmd_server.h"

#include <string.h>

#include <jansson.h>

#include "engine/clock.h"
#include "alloc.h"
#include "daemon/args.h"
#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "daemon/users.h"
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
        " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
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
        "noperm", (json_int_t)srv->stats.noperm,
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
    if (doc && (json_object_set_new(doc, "tls_connections", json_integer(
                    (json_int_t)srv->stats.tls_connections)) != 0 ||
                json_object_set_new(doc, "tls_handshake_failures",
                    json_integer((json_int_t)
                                 srv->stats.tls_handshake_failures)) != 0 ||
                json_object_set_new(doc, "journal_syncs", json_integer(
                    (json_int_t)srv->stats.journal_syncs)) != 0 ||
                json_object_set_new(doc, "journal_failures", json_integer(
                    (json_int_t)srv->stats.journal_failures)) != 0 ||
                /* Redis-style values: how many locks carry one, and the
                 * key and value bytes maxmemory is compared with. */
                json_object_set_new(doc, "values", json_integer(
                    (json_int_t)ls.values)) != 0 ||
                json_object_set_new(doc, "data_bytes", json_integer(
                    (json_int_t)ls.data_bytes)) != 0 ||
                /* Pools: keys, slots held, slot requests queued. */
                json_object_set_new(doc, "pools", json_integer(
                    (json_int_t)ls.pools)) != 0 ||
                json_object_set_new(doc, "pool_slots", json_integer(
                    (json_int_t)ls.pool_slots)) != 0 ||
                json_object_set_new(doc, "pool_waiters", json_integer(
                    (json_int_t)ls.pool_waiters)) != 0 ||
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

int cmd_authenticate(struct conn *c, const char *user, size_t user_len,
                     const char *pass, size_t pass_len)
{
    int ok;
    const struct user *u = NULL;
    if (!user || arg_is(user, user_len, "default")) {
        const char *secret = c->srv->config->requirepass;
        ok = secret[0] != '\0' && password_matches(pass, pass_len, secret);
    } else {
        /* An unknown name costs a comparison too, so reply timing does not
         * tell which names exist. */
        u = users_find(c->srv->users, user, user_len);
        ok = password_matches(pass, pass_len, u ? u->password : "-") && u;
    }
    if (ok) {
        char *name = u ? cfy_strdup(u->name) : NULL;
        if (u && !name)
            return -1;
        cfy_free(c->user);
        c->user = name;
        c->authenticated = 1;
        return 1;
    }
    static struct log_limit auth_log; /* AUTH can be pipelined at will */
    c->srv->stats.auth_failures++;
    log_limited(&auth_log, LOG_WARNING, "client %s: AUTH failed", c->peer);
    return 0;
}

void cmd_auth(struct conn *c, const struct proto_request *req)
{
    size_t pass = req->argc - 1; /* AUTH [username] password */
    if (c->srv->config->requirepass[0] == '\0' && c->srv->users->n == 0) {
        reply_error(c, "ERR", "no password is set");
        return;
    }
    int r = cmd_authenticate(c, req->argc == 3 ? req->argv[1] : NULL,
                             req->argvlen[1], req->argv[pass],
                             req->argvlen[pass]);
    if (r > 0)
        reply_status(c, "OK");
    else if (r < 0)
        reply_error(c, "ERR", "out of memory");
    else
        reply_error(c, "WRONGPASS", "invalid password");
}

void cmd_quit(struct conn *c, const struct proto_request *req)
{
    (void)req;
    reply_status(c, "OK");
    conn_close_after_reply(c);
}
