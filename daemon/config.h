/* daemon/config.h - cachifyd's settings: one table, a file, the command line.
 *
 * Owns: the struct of every setting, the table that names each one with its
 * type, bounds, default and help line, and the parsing of `name value` files
 * and `--name value` arguments.  Does not own: acting on settings (the daemon
 * reads the struct once at start).
 *
 * --test-config asks for the whole check (file, arguments, config_check)
 * without starting anything.
 *
 * Precedence: built-in defaults, then the file named by -c (none without -c),
 * then --name value arguments, which always win whatever their position.
 * Every error names where it came from: "FILE:LINE: key: why" or
 * "command line: --key: why".
 */
#ifndef CACHIFY_DAEMON_CONFIG_H
#define CACHIFY_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/log.h"

/* tls_auth_clients: indexes of its names in config.c, so keep the order. */
enum tls_auth {
    TLS_AUTH_NO,       /* no client certificate is asked for */
    TLS_AUTH_YES,      /* a client certificate the CA signed is required */
    TLS_AUTH_OPTIONAL, /* none is fine; one that is sent must verify */
};

struct cachify_config {
    char *bind;              /* space-separated addresses, IPv4 or IPv6; "" = no TCP */
    int port;                /* TCP port, 1..65535 (0 = no TCP listener) */
    char *unixsocket;        /* path, "" = none */
    int tls_port;            /* TLS port on every bind address (0 = no TLS listener) */
    char *tls_cert_file;     /* PEM server certificate chain, leaf first */
    char *tls_key_file;      /* PEM private key of that certificate */
    char *tls_ca_cert_file;  /* PEM CA certificates client certificates must chain to */
    enum tls_auth tls_auth_clients; /* ask for client certificates? */
    long long maxclients;    /* connections served at once */
    int protected_mode;      /* 1: refuse non-loopback peers while no password is set */
    long long timeout;       /* idle seconds before a client is closed; 0 = never */
    long long request_timeout; /* seconds a partial request may stay incomplete; 0 = never */
    long long default_ttl_ms;/* TTL of an ACQUIRE without TTL */
    long long max_ttl_ms;    /* largest TTL accepted; 0 = no bound */
    long long max_key_len;   /* longest key in bytes */
    long long max_line;      /* longest inline line / bulk string, bytes */
    long long max_request;   /* largest whole request, bytes (>= max_line + 2) */
    long long max_waiters;   /* longest wait queue of one key; 0 = no bound */
    long long max_locks;     /* most keys held or waited on; 0 = no bound */
    long long max_value_len; /* longest value a Redis SET stores, bytes */
    long long maxmemory;     /* key + value bytes of all entries; 0 = no bound */
    long long client_output_limit; /* unsent reply bytes before a client is dropped */
    long long client_stall_timeout; /* seconds a client may leave its replies unread; 0 = never */
    long long client_buffer_budget; /* bytes all clients' buffers may hold; 0 = no bound */
    long long tcp_keepalive;  /* seconds before keepalive probes a silent TCP peer; 0 = off */
    char *requirepass;       /* "" = no AUTH needed */
    char *requirepass_file;  /* file whose first line is the password; "" = none */
    char *user;              /* `user` lines, normalised, joined by '\n' (users.h) */
    int requirepass_loaded;  /* requirepass was read from requirepass_file (config_check) */
    enum log_level loglevel;
    char *state_file;        /* "" = keep no state across restarts */
    long long recovery_delay_ms; /* least wait after a crash; -1 = default_ttl_ms */
    long long long_lease_ms; /* longer leases are journaled one by one */
    long long busy_poll_us;  /* poll without sleeping this long after work; 0 = off */
    int metrics_port;        /* HTTP port of GET /metrics; 0 = off */
    char *metrics_bind;      /* one numeric address for metrics_port */
    int syslog;              /* 1: log to syslog(3) instead of stderr */
    char *syslog_ident;      /* syslog's ident (program name) */
    char *config_file;       /* the -c FILE that was read, NULL when none */
};

/* What config_parse_args asks the caller to do next. */
enum config_action {
    CONFIG_RUN,          /* start the daemon */
    CONFIG_SHOW_HELP,    /* print config_usage() and exit 0 */
    CONFIG_SHOW_VERSION, /* print the version and exit 0 */
    CONFIG_TEST,         /* --test-config: the settings are valid; exit 0 */
};

/* Fills *c with built-in defaults.  Returns 0, or -1 when out of memory.
 * Call config_free() afterwards in every case. */
int config_defaults(struct cachify_config *c);

/* Frees the strings in *c (not c itself). */
void config_free(struct cachify_config *c);

/* Sets one key from text, as read at `where` ("FILE:LINE" or
 * "command line").  Returns 0, or -1 with a message in err[errlen]. */
int config_set(struct cachify_config *c, const char *name, const char *value,
               const char *where, char *err, size_t errlen);

/* Reads `name value` lines from path: '#' starts a comment, blank lines are
 * skipped, the value is the rest of the line with outer blanks trimmed and
 * may be double-quoted.  Returns 0, or -1 with "path:line: key: why" in err. */
int config_load_file(struct cachify_config *c, const char *path,
                     char *err, size_t errlen);

/* Handles argv: -c FILE, --help/-h, --version/-v, and --name value for any
 * key.  Loads the file (if any) before applying --name values.  Checks the
 * result with config_check().  Returns 0 and sets *action, or -1 with err. */
int config_parse_args(struct cachify_config *c, int argc, char **argv,
                      enum config_action *action, char *err, size_t errlen);

/* Cross-key checks and derived values (recovery_delay_ms -1 becomes
 * default_ttl_ms; default_ttl_ms may not exceed a set max_ttl_ms; a set
 * requirepass_file is read into requirepass, once; ...).
 * Returns 0, or -1 with err. */
int config_check(struct cachify_config *c, char *err, size_t errlen);

/* Prints usage and one line per key (name, default, help) to out. */
void config_usage(FILE *out, const char *argv0);

/* The number of keys in the table, and the name of key i (< the number),
 * in the table's order: for docs checks and the SIGHUP reload. */
size_t config_key_count(void);
const char *config_key_name(size_t i);

/* 1 when key i holds different values in a and b, else 0. */
int config_key_differs(const struct cachify_config *a,
                       const struct cachify_config *b, size_t i);

/* Values quoted back in messages are cut after this many bytes so one
 * huge bad value cannot bury the message (the full text is in the file). */
#define CONFIG_QUOTE_MAX 64
#define CONFIG_QUOTE_BUF (CONFIG_QUOTE_MAX * 4 + 8)

/* Writes value into q (CONFIG_QUOTE_BUF bytes) between single quotes,
 * bytes outside printable ASCII, the single quote and the backslash as
 * \xHH, cut with "..." when long, so a message never carries control
 * characters to a terminal or log and the quoted text reads back as one
 * value; returns q.  With bare set, a short printable value without
 * either comes back as is (a key name reads best bare). */
const char *config_quote(char *q, const char *value, int bare);

/* "debug", "info", "warning", "error". */
const char *config_log_level_name(enum log_level level);

#endif
