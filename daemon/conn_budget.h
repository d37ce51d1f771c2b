/* daemon/conn_budget.h - what a connection's buffers may hold: the
 * running total of every client's buffered bytes, and the connections
 * dropped or closed for their share of it.
 *
 * Owns: srv->client_bytes's bookkeeping (the evbuffer callback that adds
 * each change of a connection's input and output, the reader's share),
 * the client_buffer_budget check and its -LIMIT close, and the drop of a
 * connection whose output is over client_output_limit or broken (a reply
 * that could not be buffered).  Does not own: when these run (conn.c
 * calls them where the buffers grow) or the connection's state machine.
 * Each call is O(1): the total is never summed over the clients.
 */
#ifndef CACHIFY_DAEMON_CONN_BUDGET_H
#define CACHIFY_DAEMON_CONN_BUDGET_H

struct conn;
struct evbuffer;
struct evbuffer_cb_info;

/* The evbuffer callback on a connection's input and output (arg: the
 * server): adds the change to srv->client_bytes. */
void conn_buffer_changed(struct evbuffer *buf,
                         const struct evbuffer_cb_info *info, void *arg);

/* Brings the reader's share of srv->client_bytes up to date. */
void conn_account_reader(struct conn *c);

/* 1 when the client buffers hold more than client_buffer_budget. */
int conn_over_budget(const struct conn *c);

/* c grew the client buffers past client_buffer_budget: its input is
 * dropped, its wait cancelled, and it is answered -LIMIT and closed. */
void conn_budget_close(struct conn *c);

/* Drops (frees) c when a reply could not be buffered or its unsent output
 * is over client_output_limit.  Returns 1 when c was freed, else 0. */
int conn_drop_on_output(struct conn *c);

#endif
