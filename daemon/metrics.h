/* daemon/metrics.h - GET /metrics: the daemon's counters over HTTP, in
 * Prometheus's text exposition format (version 0.0.4).
 *
 * Owns: the evhttp server on metrics_bind:metrics_port, in the daemon's
 * own event loop; the table that names each exported figure with its
 * Prometheus name, type and help line; and the limits that keep a slow or
 * hostile HTTP client from costing the lock service more than a few file
 * descriptors (see metrics.c).  Does not own: the counters themselves
 * (server.h's server_stats, the engine's lock_stats, wait_hist.h), which
 * STATS reads too, so both always agree.
 *
 * Answers: GET (or HEAD) /metrics -> 200; another method on /metrics ->
 * 405 with an Allow header; any other path -> 404; a request line or
 * headers over METRICS_MAX_HEADER_BYTES, or a body, -> an error from
 * evhttp and the connection closed.
 */
#ifndef CACHIFY_DAEMON_METRICS_H
#define CACHIFY_DAEMON_METRICS_H

struct server;
struct evbuffer;

/* The exposition's Content-Type (docs/protocol.md). */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

/* Starts serving on srv->config's metrics_bind:metrics_port (metrics_port
 * must be > 0) and sets srv->metrics.  Returns 0, or -1 after logging why
 * (address in use, out of memory). */
int metrics_start(struct server *srv);

/* Stops serving and frees srv->metrics (NULL is fine); open HTTP
 * connections are closed. */
void metrics_stop(struct server *srv);

/* Appends the whole exposition text for srv to out.  0, or -1 when out
 * of memory (out may then hold part of it). */
int metrics_format(struct server *srv, struct evbuffer *out);

#endif
