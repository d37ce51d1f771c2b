/* daemon/reload.h - SIGHUP: read the config file again and apply what can
 * change while the daemon runs.
 *
 * Owns: which keys apply at run time and how (the table in reload.c, also
 * in docs/cachifyd.8), re-reading the settings the way the daemon started
 * (defaults, the -c file, then the same --name value arguments, which still
 * win), and the log lines: one per key applied, one per changed key that
 * needs a restart.  Does not own: parsing (config.c) or the signal event
 * (server.c, which calls reload_run from the loop, never from a signal
 * handler).
 *
 * A file that fails to load or check changes nothing: the running settings
 * stay whole (never half of a new file), the reason is logged, and no
 * lock, waiter or connection is touched either way.
 */
#ifndef CACHIFY_DAEMON_RELOAD_H
#define CACHIFY_DAEMON_RELOAD_H

struct server;
struct cachify_config;

/* Sets up reloading for srv, whose settings are *live (the struct
 * srv->config points to; reload_run changes it in place).  argv (argc
 * strings) is the daemon's command line, kept by pointer: it must outlive
 * the reload.  Sets srv->reload.  Returns 0, or -1 when out of memory. */
int reload_setup(struct server *srv, struct cachify_config *live, int argc,
                 char **argv);

/* Reads the settings again and applies them (see above).  Returns 0 when
 * the file was good (even if nothing changed), -1 when it was not or there
 * is no file (-c) to read. */
int reload_run(struct server *srv);

/* Frees srv->reload (NULL is fine). */
void reload_free(struct server *srv);

#endif
