/* daemon/conn_budget.c - the client buffer total and the limits on it
 * (see conn_budget.h).
 *
 * The budget's grower pays: the connection whose read or reply took the
 * total past client_buffer_budget is the one closed, found where the
 * growth happens, never by a walk over the clients.
 */
#include "daemon/conn_budget.h"

#include <event2/buffer.h>

#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/reply.h"
#include "daemon/server.h"

/* Input and unsent output of every connection go through here, so
 * srv->client_bytes is their sum at all times. */
void conn_buffer_changed(struct evbuffer *buf,
                         const struct evbuffer_cb_info *info, void *arg)
{
    struct server *srv = arg;
    (void)buf;
    srv->client_bytes += info->n_added;
    srv->client_bytes -= info->n_deleted;
}

/* Brings the reader's share of srv->client_bytes up to date. */
void conn_account_reader(struct conn *c)
{
    size_t now = c->reader ? proto_reader_pending(c->reader) : 0;
    c->srv->client_bytes += now;
    c->srv->client_bytes -= c->reader_counted;
    c->reader_counted = now;
}

int conn_over_budget(const struct conn *c)
{
    long long budget = c->srv->config->client_buffer_budget;
    return budget > 0 && c->srv->client_bytes > (size_t)budget;
}

/* Drops c when its replies can no longer be trusted or afforded: one could
 * not be buffered (out of memory), or the unsent output is over
 * client_output_limit.  Returns 1 when c was freed. */
int conn_drop_on_output(struct conn *c)
{
    size_t pending = evbuffer_get_length(c->out);
    if (c->output_failed)
        log_msg(LOG_WARNING, "client %s dropped: out of memory buffering a "
                "reply", c->peer);
    else if (pending > (size_t)c->srv->config->client_output_limit)
        log_msg(LOG_WARNING, "client %s dropped: %zu unsent reply bytes is "
                "over client_output_limit", c->peer, pending);
    else
        return 0;
    c->in_process = 0;
    conn_free(c);
    return 1;
}

/* c grew the client buffers past client_buffer_budget: it is answered
 * -LIMIT and closed.  The grower pays, not a bystander, and the check is
 * O(1) where the growth happens.  Closing rather than pausing its reading:
 * a paused client still holds its buffers (and a budget filled by paused
 * clients would pause everyone for good), while closing frees them at once
 * and cancels only this client's own waits and SESSION locks, as any
 * disconnect does; other clients' locks are not touched.  Its input is
 * dropped now (nothing more of it will run); its output is flushed within
 * CLOSE_FLUSH_SECONDS. */
void conn_budget_close(struct conn *c)
{
    static struct log_limit budget_log;
    struct server *srv = c->srv;
    size_t held = srv->client_bytes;
    struct evbuffer *in = c->in;

    srv->stats.budget_closed_clients++;
    log_limited(&budget_log, LOG_WARNING, "client %s closed: client buffers "
                "hold %zu bytes, over client_buffer_budget (%lld)", c->peer,
                held, srv->config->client_buffer_budget);
    if (c->state == CONN_WAITING) {
        /* Its wait ends here: a grant must not reach a closing client. */
        locktable_session_cancel_waits(srv->locks, &c->session);
        conn_end_wait(c);
    }
    evbuffer_drain(in, evbuffer_get_length(in));
    proto_reader_free(c->reader);
    c->reader = NULL;
    conn_account_reader(c);
    reply_error(c, "LIMIT", "client_buffer_budget reached (the daemon's "
                "client buffers are full); closing the connection");
    conn_close_after_reply(c);
}
