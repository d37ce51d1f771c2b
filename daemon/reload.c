/* daemon/reload.c - SIGHUP's config reload (see reload.h).
 *
 * A key applies at run time when everything that reads it reads the
 * settings again at each use: requests (TTLs, AUTH), new
 * connections (maxclients, protected_mode, tcp_keepalive, the password
 * gate), deadlines as they are armed (timeout, request_timeout,
 * client_stall_timeout), buffer checks (client_output_limit,
 * client_buffer_budget), the engine's limits (handed over here), the
 * log level, and the TLS files and client certificate policy (a new
 * context for new connections, tls.h; the files are read again at every
 * reload, changed names or not, so a renewed certificate is picked up).
 * The rest were used once at start (sockets, tls_port among them, the
 * state file and its recovery horizon, reader limits, the loop's polling,
 * syslog, metrics): a change to one of them is logged as needing a
 * restart and the running value stays.  max_key_len is one of those too, though read
 * at each request: it checks the key of every command, so a lower value
 * would leave the locks already held under longer keys impossible to
 * RELEASE or EXTEND (and a FOREVER one held until a restart, whose state
 * file load would then refuse it).  A key this file does not list is one
 * of those, so a key added to config.c later is safe by default.
 */
#include "daemon/reload.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "alloc.h"
#include "daemon/admission.h"
#include "daemon/config.h"
#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/tls.h"
#include "daemon/users.h"

/* Every line of a reload is a warning: a reload is rare, asked for by an
 * operator, and changes how the service behaves, so its lines must show
 * at any loglevel but error (a reload to loglevel warning must still say
 * so). */
#define RELOAD_LOG LOG_WARNING

struct reload {
    struct cachify_config *live; /* what srv->config points to */
    int argc;
    char **argv;
};

/* After-effects of a key's new value beyond storing it. */
typedef void (*apply_hook)(struct server *srv);

static void refit_maxclients(struct server *srv)
{
    long long fit = admission_fit_maxclients(srv->config->maxclients);

    /* Clients over a lowered limit stay; new ones wait for room. */
    if (fit > 0)
        srv->maxclients = fit;
}

static void set_engine_limits(struct server *srv)
{
    struct locktable_limits limits = { (size_t)srv->config->max_locks,
                                       (size_t)srv->config->max_waiters,
                                       (uint64_t)srv->config->maxmemory };
    locktable_set_limits(srv->locks, &limits);
}

/* 1 when protected mode, as the settings are now, would refuse c's peer
 * at accept.  A connection without a socket (a bufferevent pair in
 * tests) has no remote peer; a socket whose peer cannot be read is gone
 * and is refused. */
static int denied_now(struct server *srv, struct conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (fd < 0)
        return 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return 1;
    return admission_denied(srv->config, (struct sockaddr *)&ss);
}

/* Connections accepted while no password was set were let in without
 * AUTH and stay in (as in Redis); when the password is removed, those
 * that had not authenticated yet no longer need to, since AUTH itself
 * would now fail with "no password is set" -- but only where protected
 * mode would let them in now.  A non-loopback client that never gave the
 * password would otherwise get, without proving anything, what protected
 * mode refuses every new client like it: it gets that -DENIED instead,
 * and is closed. */
static void password_changed(struct server *srv)
{
    if (srv->config->requirepass[0] != '\0' || srv->users->n > 0)
        return;
    for (struct conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->authenticated || c->state == CONN_CLOSING)
            continue;
        if (!denied_now(srv, c)) {
            c->authenticated = 1;
            continue;
        }
        evbuffer_add(conn_output(c), ADMISSION_DENIED_REPLY,
                     strlen(ADMISSION_DENIED_REPLY));
        conn_close_after_reply(c);
        srv->stats.denied_clients++;
        log_msg(RELOAD_LOG, "config reload: client %s closed: protected "
                "mode (the password was removed before it authenticated, "
                "and it is not a loopback client)", c->peer);
    }
}

static void set_log_level(struct server *srv)
{
    log_set_level(srv->config->loglevel);
}

enum live_kind {
    LIVE_NUMBER, /* int or long long, by size */
    LIVE_LEVEL,  /* enum log_level */
    LIVE_SECRET, /* char *, never logged */
    LIVE_PATH,   /* char *, logged */
    LIVE_TLS_AUTH, /* enum tls_auth, logged by name */
};

struct live_key {
    const char *name;
    enum live_kind kind;
    size_t offset, size;
    apply_hook hook;
};

#define LIVE(f, kind, hook)                                                 \
    { #f, kind, offsetof(struct cachify_config, f),                        \
      sizeof(((struct cachify_config *)0)->f), hook }

/* The keys SIGHUP applies, in the order it applies them. */
static const struct live_key live_keys[] = {
    LIVE(protected_mode, LIVE_NUMBER, NULL),
    LIVE(maxclients, LIVE_NUMBER, refit_maxclients),
    LIVE(timeout, LIVE_NUMBER, NULL),
    LIVE(request_timeout, LIVE_NUMBER, NULL),
    LIVE(default_ttl_ms, LIVE_NUMBER, NULL),
    LIVE(max_ttl_ms, LIVE_NUMBER, NULL),
    LIVE(max_waiters, LIVE_NUMBER, set_engine_limits),
    LIVE(max_locks, LIVE_NUMBER, set_engine_limits),
    LIVE(maxmemory, LIVE_NUMBER, set_engine_limits),
    LIVE(client_output_limit, LIVE_NUMBER, NULL),
    LIVE(client_stall_timeout, LIVE_NUMBER, NULL),
    LIVE(client_buffer_budget, LIVE_NUMBER, NULL),
    LIVE(tcp_keepalive, LIVE_NUMBER, NULL),
    LIVE(requirepass, LIVE_SECRET, password_changed),
    LIVE(requirepass_file, LIVE_PATH, NULL),
    LIVE(user, LIVE_SECRET, NULL), /* srv->users is rebuilt in reload_run */
    /* The TLS context is rebuilt once, after these (reload_run). */
    LIVE(tls_cert_file, LIVE_PATH, NULL),
    LIVE(tls_key_file, LIVE_PATH, NULL),
    LIVE(tls_ca_cert_file, LIVE_PATH, NULL),
    LIVE(tls_auth_clients, LIVE_TLS_AUTH, NULL),
    LIVE(loglevel, LIVE_LEVEL, set_log_level),
};

#define NLIVE (sizeof live_keys / sizeof live_keys[0])

static const struct live_key *find_live(const char *name)
{
    for (size_t i = 0; i < NLIVE; i++)
        if (strcmp(live_keys[i].name, name) == 0)
            return &live_keys[i];
    return NULL;
}

/* config.c's index of the key called name, SIZE_MAX when none. */
static size_t key_index(const char *name)
{
    for (size_t i = 0; i < config_key_count(); i++)
        if (strcmp(config_key_name(i), name) == 0)
            return i;
    return SIZE_MAX;
}

static long long number_at(const struct cachify_config *c,
                           const struct live_key *k)
{
    const char *p = (const char *)c + k->offset;
    int i;
    long long ll;

    if (k->size == sizeof(int)) {
        memcpy(&i, p, sizeof i);
        return i;
    }
    memcpy(&ll, p, sizeof ll);
    return ll;
}

/* Moves key k's value from next into live and logs the change.  Strings
 * are swapped, so next frees the old one. */
static void apply(struct cachify_config *live, struct cachify_config *next,
                  const struct live_key *k)
{
    char *lp = (char *)live + k->offset, *np = (char *)next + k->offset;

    switch (k->kind) {
    case LIVE_NUMBER:
        log_msg(RELOAD_LOG, "config reload: %s: %lld -> %lld", k->name,
                number_at(live, k), number_at(next, k));
        memcpy(lp, np, k->size);
        break;
    case LIVE_LEVEL:
        log_msg(RELOAD_LOG, "config reload: loglevel: %s -> %s",
                config_log_level_name(live->loglevel),
                config_log_level_name(next->loglevel));
        live->loglevel = next->loglevel;
        break;
    case LIVE_TLS_AUTH:
        log_msg(RELOAD_LOG, "config reload: tls_auth_clients: %s -> %s",
                tls_auth_name(live->tls_auth_clients),
                tls_auth_name(next->tls_auth_clients));
        live->tls_auth_clients = next->tls_auth_clients;
        break;
    case LIVE_SECRET:
    case LIVE_PATH: {
        char *tmp = *(char **)lp, was[CONFIG_QUOTE_BUF], now[CONFIG_QUOTE_BUF];
        if (k->kind == LIVE_SECRET)
            log_msg(RELOAD_LOG, "config reload: %s changed (%s)", k->name,
                    (*(char **)np)[0] != '\0' ? "set" : "now none");
        else /* a path may hold any byte but NUL: quoted as errors quote it */
            log_msg(RELOAD_LOG, "config reload: %s: %s -> %s", k->name,
                    config_quote(was, *(char **)lp, 0),
                    config_quote(now, *(char **)np, 0));
        *(char **)lp = *(char **)np;
        *(char **)np = tmp;
        break;
    }
    }
}

int reload_setup(struct server *srv, struct cachify_config *live, int argc,
                 char **argv)
{
    struct reload *r = cfy_calloc(1, sizeof *r);

    if (r == NULL)
        return -1;
    r->live = live;
    r->argc = argc;
    r->argv = argv;
    srv->reload = r;
    return 0;
}

void reload_free(struct server *srv)
{
    cfy_free(srv->reload);
    srv->reload = NULL;
}

int reload_run(struct server *srv)
{
    struct reload *r = srv->reload;
    struct cachify_config next;
    enum config_action action;
    char err[512];
    size_t applied = 0, restart = 0;
    int rc = -1;

    if (r->live->config_file == NULL) {
        log_msg(LOG_WARNING, "SIGHUP: no config file to reload (the daemon "
                "was started without -c); nothing changed");
        return -1;
    }
    log_msg(RELOAD_LOG, "SIGHUP: reloading %s", r->live->config_file);
    /* All of it is read into next and checked before anything applies:
     * a bad file leaves the running settings whole. */
    if (config_defaults(&next) != 0) {
        log_msg(LOG_ERROR, "config reload: out of memory; nothing changed");
        config_free(&next);
        return -1;
    }
    if (config_parse_args(&next, r->argc, r->argv, &action, err,
                          sizeof err) != 0) {
        log_msg(LOG_ERROR, "config reload failed, the running settings "
                "stay: %s", err);
        goto out;
    }
    /* Keys that must wait for a restart are logged first; the live ones
     * then apply in live_keys' order, loglevel last. */
    for (size_t i = 0; i < config_key_count(); i++) {
        const char *name = config_key_name(i);
        if (config_key_differs(r->live, &next, i) && find_live(name) == NULL) {
            log_msg(LOG_WARNING, "config reload: %s changed, but it only "
                    "takes effect after a restart; still using the running "
                    "value", name);
            restart++;
        }
    }
    /* Named users are rebuilt at every reload, so a changed password file
     * counts too; applied first, so password_changed below sees them. */
    struct user_list *users = users_build(next.user, err, sizeof err);
    if (users == NULL) {
        log_msg(LOG_ERROR, "config reload failed, the running settings "
                "stay: %s", err);
        goto out;
    }
    if (users->n || srv->users->n)
        log_msg(RELOAD_LOG, "config reload: %zu named user%s (password "
                "files read again)", users->n, users->n == 1 ? "" : "s");
    users_free(srv->users);
    srv->users = users;
    for (size_t j = 0; j < NLIVE; j++) {
        const struct live_key *k = &live_keys[j];
        size_t i = key_index(k->name);
        if (i == SIZE_MAX || !config_key_differs(r->live, &next, i))
            continue;
        apply(r->live, &next, k);
        if (k->kind == LIVE_SECRET || k->kind == LIVE_PATH)
            r->live->requirepass_loaded = next.requirepass_loaded;
        if (k->hook != NULL)
            k->hook(srv);
        applied++;
    }
    /* The settings checked the TLS files (config_check): a failure here
     * means they changed since, and the running context stays. */
    rc = tls_reload(srv);
    log_msg(RELOAD_LOG, "config reload done: %zu setting%s applied, %zu "
            "waiting for a restart", applied, applied == 1 ? "" : "s",
            restart);
out:
    config_free(&next);
    return rc;
}
