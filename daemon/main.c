/* daemon/main.c - cachifyd's entry point: settings, signals, the loop.
 *
 * Owns: process-wide set-up (SIGPIPE and SIGXFSZ ignored, the operator's
 * signals held back until the loop can take them, glibc malloc tuning, log
 * level and destination, the SIGHUP reload's hold on argv) and the exit
 * code: 0 after a clean stop (or a good --test-config), 1 when start-up
 * fails, the loop fails or the state file cannot be saved at the stop
 * (the reason is logged), 2 for a bad command line or config file.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/reload.h"
#include "daemon/server.h"
#include "daemon/version.h"

/* The signals an operator or a service manager sends (server.c gives each
 * its meaning through a libevent signal event).  Until those events exist
 * their default action would kill the daemon: a `systemctl reload` or a
 * `kill -HUP` in the first moments of a start, while the config, the
 * users' password files and the TLS files are read.  So they are blocked
 * from the first line of main, stay pending, and reach libevent's handlers
 * once server_new has armed them: a SIGHUP sent during start-up reloads
 * the config once the loop runs, a SIGTERM stops the daemon cleanly (exit
 * 0, state saved) as soon as it is up.  They are blocked again when the
 * loop has ended, because server_free gives them back their default
 * action.  A mask inherited blocked from the parent is undone too: a
 * daemon that cannot get SIGTERM cannot be stopped cleanly. */
static void operator_signals(int how)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(how, &set, NULL);
}

int main(int argc, char **argv)
{
    struct cachify_config config;
    enum config_action action;
    char err[512];
    int rc = 2;

    operator_signals(SIG_BLOCK);
    if (config_defaults(&config) != 0) {
        fprintf(stderr, "cachifyd: out of memory\n");
        return 1;
    }
    if (config_parse_args(&config, argc, argv, &action, err, sizeof(err)) != 0) {
        fprintf(stderr, "cachifyd: %s\n", err);
        goto out;
    }
    if (action == CONFIG_SHOW_HELP) {
        config_usage(stdout, argv[0]);
        rc = 0;
        goto out;
    }
    if (action == CONFIG_SHOW_VERSION) {
        printf("cachifyd %s\n", CACHIFYD_VERSION);
        rc = 0;
        goto out;
    }
    if (action == CONFIG_TEST) {
        printf("cachifyd: configuration %s is valid\n",
               config.config_file ? config.config_file : "(built-in defaults)");
        rc = 0;
        goto out;
    }

    /* A client that vanishes mid-reply must cost an EPIPE, not the daemon. */
    struct sigaction ignore;
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, NULL);
    /* A state file write past the file-size limit must fail with EFBIG
     * (and be refused or retried like a full disk), not kill the daemon
     * with its locks held. */
    sigaction(SIGXFSZ, &ignore, NULL);

#ifdef __GLIBC__
    /* No fastbins: when lock entries came from malloc (72 bytes + key,
     * fastbin-sized), a million locks expiring together left a million
     * chunks there, and the next large malloc consolidated them all at
     * once: a 30 ms stall in the middle of an expiry storm (bench/run.sh).
     * Entries come from the engine's slab now (engine/slab.h); this stays
     * for the small objects still malloc'd in bulk (waiters, extra
     * records, connections).  tcache still serves the hot alloc/free
     * pairs. */
    mallopt(M_MXFAST, 0);
#endif

    log_set_level(config.loglevel);
    if (config.syslog)
        log_open_syslog(config.syslog_ident);
    log_msg(LOG_INFO, "cachifyd %s starting%s%s", CACHIFYD_VERSION,
            config.config_file ? " with " : "",
            config.config_file ? config.config_file : "");
    struct server *srv = server_new(&config);
    rc = 1;
    if (srv && reload_setup(srv, &config, argc, argv) != 0)
        log_msg(LOG_ERROR, "out of memory");
    else if (srv) {
        operator_signals(SIG_UNBLOCK); /* pending ones are delivered now */
        rc = server_run(srv) == 0 ? 0 : 1;
        operator_signals(SIG_BLOCK);
    }
    if (srv) {
        reload_free(srv);
        server_free(srv);
        log_msg(LOG_INFO, "cachifyd stopped");
    }
    log_close();
out:
    config_free(&config);
    return rc;
}
