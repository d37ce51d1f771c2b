/* tests/unit/test_config.c - Check suite for daemon/config.c.
 *
 * Owns: the tests of the settings table, the conf file reader and argv
 * handling: exact defaults, file syntax, command line precedence, every kind
 * of bad value with its exact message (file, line and key included), cross
 * checks, help/version, the usage text and the shipped cachifyd.conf.
 * Does not own: how the daemon acts on settings.
 *
 * Conf files are written with mkstemp in /tmp and unlinked right after they
 * are read, before any assertion, so a failing test leaves nothing behind.
 * The shipped-conf test reads ./cachifyd.conf: run it from the repo root
 * (as `make unit` does).
 */
#include "daemon/config.h"
#include "daemon/version.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERRLEN 1024
#define TB (1LL << 40)

static char tmp_path[64];

/* Writes text to a new temp file named in tmp_path. */
static void write_conf(const char *text)
{
    size_t len = strlen(text), off = 0;
    int fd;

    strcpy(tmp_path, "/tmp/test_config_XXXXXX");
    fd = mkstemp(tmp_path);
    ck_assert_int_ge(fd, 0);
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        ck_assert_int_gt(n, 0);
        off += (size_t)n;
    }
    ck_assert_int_eq(close(fd), 0);
}

/* Loads text as a conf file into c (already holding defaults). */
static int load(struct cachify_config *c, const char *text, char *err)
{
    int rc;

    write_conf(text);
    err[0] = '\0';
    rc = config_load_file(c, tmp_path, err, ERRLEN);
    unlink(tmp_path);
    return rc;
}

/* "tmp_path:line: rest", what a file error must read. */
static const char *at(int line, const char *rest)
{
    static char buf[ERRLEN + 128];

    snprintf(buf, sizeof buf, "%s:%d: %s", tmp_path, line, rest);
    return buf;
}

/* Runs config_parse_args on "cachifyd" plus the NULL-terminated strings;
 * a "@" argument stands for tmp_path. */
static int args(struct cachify_config *c, enum config_action *act, char *err,
                ...)
{
    static char store[32][8192];
    char *argv[33];
    int argc = 0;
    const char *a;
    va_list ap;

    strcpy(store[0], "cachifyd");
    argv[argc++] = store[0];
    va_start(ap, err);
    while ((a = va_arg(ap, const char *)) != NULL) {
        ck_assert_int_lt(argc, 32);
        ck_assert_uint_lt(strlen(a), sizeof store[0]);
        strcpy(store[argc], strcmp(a, "@") == 0 ? tmp_path : a);
        argv[argc] = store[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    *act = (enum config_action)-1;
    return config_parse_args(c, argc, argv, act, err, ERRLEN);
}

/* Reads an integer key by name, so table-driven tests can check values. */
static long long get(const struct cachify_config *c, const char *name)
{
    if (strcmp(name, "port") == 0) return c->port;
    if (strcmp(name, "maxclients") == 0) return c->maxclients;
    if (strcmp(name, "timeout") == 0) return c->timeout;
    if (strcmp(name, "request_timeout") == 0) return c->request_timeout;
    if (strcmp(name, "client_stall_timeout") == 0) return c->client_stall_timeout;
    if (strcmp(name, "default_ttl_ms") == 0) return c->default_ttl_ms;
    if (strcmp(name, "max_ttl_ms") == 0) return c->max_ttl_ms;
    if (strcmp(name, "max_key_len") == 0) return c->max_key_len;
    if (strcmp(name, "max_line") == 0) return c->max_line;
    if (strcmp(name, "max_request") == 0) return c->max_request;
    if (strcmp(name, "max_waiters") == 0) return c->max_waiters;
    if (strcmp(name, "max_locks") == 0) return c->max_locks;
    if (strcmp(name, "max_value_len") == 0) return c->max_value_len;
    if (strcmp(name, "maxmemory") == 0) return c->maxmemory;
    if (strcmp(name, "client_output_limit") == 0) return c->client_output_limit;
    if (strcmp(name, "client_buffer_budget") == 0) return c->client_buffer_budget;
    if (strcmp(name, "tcp_keepalive") == 0) return c->tcp_keepalive;
    if (strcmp(name, "recovery_delay_ms") == 0) return c->recovery_delay_ms;
    if (strcmp(name, "long_lease_ms") == 0) return c->long_lease_ms;
    ck_abort_msg("no integer key %s", name);
    return 0;
}

static const struct int_key {
    const char *name;
    long long min, max, def;
} int_keys[] = {
    { "port", 0, 65535, 7379 },
    { "maxclients", 1, 1000000, 10000 },
    { "timeout", 0, TB, 0 },
    { "request_timeout", 0, TB, 30 },
    { "client_stall_timeout", 0, TB, 60 },
    { "default_ttl_ms", 1, TB, 30000 },
    { "max_ttl_ms", 0, TB, 0 },
    { "max_key_len", 1, 65536, 1024 },
    { "max_line", 64, 64LL << 20, 65536 },
    { "max_request", 0, 1LL << 30, 0 },
    { "max_waiters", 0, 1LL << 30, 10000 },
    { "max_locks", 0, TB, 0 },
    { "max_value_len", 0, 512LL << 20, 1048576 },
    { "maxmemory", 0, 1LL << 50, 0 },
    { "client_output_limit", 1024, TB, 67108864 },
    { "client_buffer_budget", 0, TB, 1073741824 },
    { "tcp_keepalive", 0, 1000000, 300 },
    { "recovery_delay_ms", -1, TB, 0 },
    { "long_lease_ms", 1, TB, 60000 },
};
#define N_INT_KEYS (sizeof int_keys / sizeof int_keys[0])

static const char *const all_keys[] = {
    "bind", "port", "unixsocket", "maxclients", "default_ttl_ms",
    "max_ttl_ms", "max_key_len", "max_line", "max_request", "max_waiters",
    "max_locks", "client_output_limit", "requirepass", "loglevel",
    "state_file", "recovery_delay_ms", "protected_mode", "timeout",
    "request_timeout", "client_stall_timeout", "requirepass_file",
    "busy_poll_us", "client_buffer_budget", "tcp_keepalive",
    "long_lease_ms", "max_value_len", "maxmemory", "metrics_port",
    "metrics_bind", "syslog", "syslog_ident", "user", "tls_port",
    "tls_cert_file", "tls_key_file", "tls_ca_cert_file", "tls_auth_clients",
};
#define N_ALL_KEYS (sizeof all_keys / sizeof all_keys[0])

START_TEST(test_defaults)
{
    struct cachify_config c;

    ck_assert_int_eq(config_defaults(&c), 0);
    ck_assert_str_eq(c.bind, "127.0.0.1");
    ck_assert_int_eq(c.port, 7379);
    ck_assert_str_eq(c.unixsocket, "");
    ck_assert_int_eq(c.maxclients, 10000);
    ck_assert_int_eq(c.protected_mode, 1);
    ck_assert_int_eq(c.timeout, 0);
    ck_assert_int_eq(c.request_timeout, 30);
    ck_assert_int_eq(c.client_stall_timeout, 60);
    ck_assert_str_eq(c.requirepass_file, "");
    ck_assert_int_eq(c.requirepass_loaded, 0);
    ck_assert_int_eq(c.default_ttl_ms, 30000);
    ck_assert_int_eq(c.max_ttl_ms, 0);
    ck_assert_int_eq(c.max_key_len, 1024);
    ck_assert_int_eq(c.max_line, 65536);
    ck_assert_int_eq(c.max_request, 0);
    ck_assert_int_eq(c.max_waiters, 10000);
    ck_assert_int_eq(c.max_locks, 0);
    ck_assert_int_eq(c.client_output_limit, 67108864);
    ck_assert_int_eq(c.client_buffer_budget, 1073741824);
    ck_assert_int_eq(c.tcp_keepalive, 300);
    ck_assert_str_eq(c.requirepass, "");
    ck_assert_int_eq(c.loglevel, LOG_INFO);
    ck_assert_str_eq(c.state_file, "");
    ck_assert_int_eq(c.recovery_delay_ms, 0);
    ck_assert_int_eq(c.long_lease_ms, 60000);
    ck_assert_ptr_null(c.config_file);
    config_free(&c);
    ck_assert_ptr_null(c.bind);
    config_free(&c); /* a second free is harmless */
}
END_TEST

START_TEST(test_no_args_derives)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, NULL), 0);
    ck_assert_int_eq(act, CONFIG_RUN);
    ck_assert_ptr_null(c.config_file); /* no -c, no file read */
    ck_assert_int_eq(c.max_request, 4 * 65536 + 1048576); /* + a value */
    ck_assert_int_eq(c.recovery_delay_ms, 0);
    ck_assert_int_eq(c.port, 7379);
    config_free(&c);
}
END_TEST

START_TEST(test_log_level_names)
{
    ck_assert_str_eq(config_log_level_name(LOG_DEBUG), "debug");
    ck_assert_str_eq(config_log_level_name(LOG_INFO), "info");
    ck_assert_str_eq(config_log_level_name(LOG_WARNING), "warning");
    ck_assert_str_eq(config_log_level_name(LOG_ERROR), "error");
    ck_assert_str_eq(config_log_level_name((enum log_level)42), "unknown");
}
END_TEST

START_TEST(test_file_syntax)
{
    struct cachify_config c;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_msg(load(&c,
        "# a comment\n"
        "\n"
        "   \t\n"
        "   # indented comment\n"
        "port 1234   \n"                      /* trailing blanks */
        "\tmaxclients\t\t77 # trailing comment\n"
        "requirepass pa#ss#word  # only ' #' starts a comment\n"
        "unixsocket \"/tmp/a b # not a comment\"  # but this is\n"
        "state_file \"q\\\"uo\\\\te\"\n"         /* "q\"uo\\te" */
        "bind \"\"\n"                         /* empty string */
        "loglevel warning\r\n"                /* CRLF line */
        "max_waiters 5\n"
        "max_waiters 6\n"                     /* last one wins */
        "default_ttl_ms 1000", err) == 0, "%s", err); /* no final newline */
    ck_assert_int_eq(c.port, 1234);
    ck_assert_int_eq(c.maxclients, 77);
    ck_assert_str_eq(c.requirepass, "pa#ss#word");
    ck_assert_str_eq(c.unixsocket, "/tmp/a b # not a comment");
    ck_assert_str_eq(c.state_file, "q\"uo\\te");
    ck_assert_str_eq(c.bind, "");
    ck_assert_int_eq(c.loglevel, LOG_WARNING);
    ck_assert_int_eq(c.max_waiters, 6);
    ck_assert_int_eq(c.default_ttl_ms, 1000);
    ck_assert_ptr_null(c.config_file); /* only -c sets it */
    config_free(&c);
}
END_TEST

START_TEST(test_file_empty)
{
    struct cachify_config c;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(load(&c, "", err), 0);
    ck_assert_int_eq(load(&c, "\n\n# nothing\n", err), 0);
    ck_assert_int_eq(c.port, 7379);
    config_free(&c);
}
END_TEST

START_TEST(test_file_syntax_errors)
{
    struct cachify_config c;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(load(&c, "# x\nfoo 1\n", err), -1);
    ck_assert_str_eq(err, at(2, "foo: unknown key"));
    ck_assert_int_eq(load(&c, "Port 1\n", err), -1); /* case-sensitive */
    ck_assert_str_eq(err, at(1, "Port: unknown key"));
    ck_assert_int_eq(load(&c, "fo\x01o 1\n", err), -1);
    ck_assert_str_eq(err, at(1, "'fo\\x01o': unknown key"));
    ck_assert_int_eq(load(&c, "\n\nport\n", err), -1);
    ck_assert_str_eq(err, at(3, "port: missing value"));
    ck_assert_int_eq(load(&c, "port    \n", err), -1);
    ck_assert_str_eq(err, at(1, "port: missing value"));
    ck_assert_int_eq(load(&c, "port # 5\n", err), -1);
    ck_assert_str_eq(err, at(1, "port: missing value"));
    ck_assert_int_eq(load(&c, "requirepass \"abc\n", err), -1);
    ck_assert_str_eq(err, at(1, "requirepass: unterminated quoted value"));
    ck_assert_int_eq(load(&c, "requirepass \"abc\\\"\n", err), -1);
    ck_assert_str_eq(err, at(1, "requirepass: unterminated quoted value"));
    ck_assert_int_eq(load(&c, "requirepass \"a\\nb\"\n", err), -1);
    ck_assert_str_eq(err, at(1, "requirepass: bad escape in quoted value (only \\\" and \\\\)"));
    ck_assert_int_eq(load(&c, "requirepass \"a\" b\n", err), -1);
    ck_assert_str_eq(err, at(1, "requirepass: text after the closing quote"));
    ck_assert_int_eq(load(&c, "requirepass \"a\"# no blank\n", err), -1);
    ck_assert_str_eq(err, at(1, "requirepass: text after the closing quote"));
    ck_assert_int_eq(load(&c, "requirepass \"a\" # fine\n", err), 0);
    ck_assert_str_eq(c.requirepass, "a");
    ck_assert_int_eq(load(&c, "port 1\nport 2\nport 3x\n", err), -1);
    ck_assert_str_eq(err, at(3, "port: '3x' is not a number"));
    config_free(&c);
}
END_TEST

START_TEST(test_file_nul_byte)
{
    static const char text[] = "port 1\nport 2\0junk\n";
    struct cachify_config c;
    char err[ERRLEN];
    FILE *f;
    int rc;

    strcpy(tmp_path, "/tmp/test_config_XXXXXX");
    ck_assert_int_ge(mkstemp(tmp_path), 0);
    f = fopen(tmp_path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    fclose(f);
    config_defaults(&c);
    rc = config_load_file(&c, tmp_path, err, ERRLEN);
    unlink(tmp_path);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, at(2, "line holds a NUL byte"));
    config_free(&c);
}
END_TEST

START_TEST(test_file_long_line)
{
    struct cachify_config c;
    char err[ERRLEN], *text = malloc(10000);
    size_t n;

    ck_assert_ptr_nonnull(text);
    config_defaults(&c);
    /* Exactly 4096 bytes: accepted (a quoted value, so 4096 - 13 bytes). */
    n = (size_t)sprintf(text, "# ok\nstate_file \"");
    memset(text + n, 'a', 4096 - 13);
    strcpy(text + n + 4096 - 13, "\"\n");
    ck_assert_msg(load(&c, text, err) == 0, "%s", err);
    ck_assert_uint_eq(strlen(c.state_file), 4096 - 13);
    /* One byte more: refused, naming the line. */
    n = (size_t)sprintf(text, "# ok\nstate_file \"");
    memset(text + n, 'a', 4096 - 12);
    strcpy(text + n + 4096 - 12, "\"\n");
    ck_assert_int_eq(load(&c, text, err), -1);
    ck_assert_str_eq(err, at(2, "line is longer than 4096 bytes"));
    free(text);
    config_free(&c);
}
END_TEST

START_TEST(test_file_missing)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(config_load_file(&c, "/nonexistent/cachifyd.conf", err, ERRLEN), -1);
    ck_assert_str_eq(err, "/nonexistent/cachifyd.conf: cannot open: No such file or directory");
    ck_assert_int_eq(args(&c, &act, err, "-c", "/nonexistent/x.conf", NULL), -1);
    ck_assert_str_eq(err, "/nonexistent/x.conf: cannot open: No such file or directory");
    ck_assert_str_eq(c.config_file, "/nonexistent/x.conf");
    ck_assert_int_eq(config_load_file(&c, "/tmp", err, ERRLEN), -1);
    ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");
    config_free(&c);
}
END_TEST

/* Every integer key: not a number, one below its minimum, one above its
 * maximum; in a file (line 3) and on the command line. */
START_TEST(test_int_errors)
{
    size_t i, j;

    for (i = 0; i < N_INT_KEYS; i++) {
        const struct int_key *k = &int_keys[i];
        char bad[3][32], why[3][128], text[128], want[ERRLEN], opt[128];

        snprintf(bad[0], sizeof bad[0], "abc");
        snprintf(why[0], sizeof why[0], "'abc' is not a number");
        snprintf(bad[1], sizeof bad[1], "%lld", k->min - 1);
        snprintf(bad[2], sizeof bad[2], "%lld", k->max + 1);
        for (j = 1; j < 3; j++)
            snprintf(why[j], sizeof why[j], "'%s' is out of range (%lld..%lld)",
                     bad[j], k->min, k->max);
        for (j = 0; j < 3; j++) {
            struct cachify_config c;
            enum config_action act;
            char err[ERRLEN];

            config_defaults(&c);
            snprintf(text, sizeof text, "# bad\n\n%s %s\n", k->name, bad[j]);
            ck_assert_int_eq(load(&c, text, err), -1);
            snprintf(want, sizeof want, "%s: %s", k->name, why[j]);
            ck_assert_str_eq(err, at(3, want));
            ck_assert_int_eq(get(&c, k->name), k->def); /* left unchanged */

            snprintf(opt, sizeof opt, "--%s", k->name);
            ck_assert_int_eq(args(&c, &act, err, opt, bad[j], NULL), -1);
            snprintf(want, sizeof want, "command line: --%s: %s", k->name, why[j]);
            ck_assert_str_eq(err, want);
            snprintf(opt, sizeof opt, "--%s=%s", k->name, bad[j]);
            ck_assert_int_eq(args(&c, &act, err, opt, NULL), -1);
            ck_assert_str_eq(err, want);
            config_free(&c);
        }
    }
}
END_TEST

/* Both ends of every range are accepted and stored exactly. */
START_TEST(test_int_bounds_accepted)
{
    size_t i;

    for (i = 0; i < N_INT_KEYS; i++) {
        const struct int_key *k = &int_keys[i];
        struct cachify_config c;
        char v[32], err[ERRLEN];

        config_defaults(&c);
        snprintf(v, sizeof v, "%lld", k->min);
        ck_assert_msg(config_set(&c, k->name, v, "x:1", err, ERRLEN) == 0, "%s", err);
        ck_assert_int_eq(get(&c, k->name), k->min);
        snprintf(v, sizeof v, "%lld", k->max);
        ck_assert_msg(config_set(&c, k->name, v, "x:1", err, ERRLEN) == 0, "%s", err);
        ck_assert_int_eq(get(&c, k->name), k->max);
        config_free(&c);
    }
}
END_TEST

START_TEST(test_int_syntax)
{
    static const struct { const char *key, *value, *why; } bad[] = {
        { "port", "", "'' is not a number" },
        { "port", "+5", "'+5' is not a number" },
        { "port", " 5", "' 5' is not a number" },
        { "port", "5 ", "'5 ' is not a number" },
        { "port", "0x10", "'0x10' is not a number" },
        { "port", "1e3", "'1e3' is not a number" },
        { "client_output_limit", "64k", "'64k' is not a number" },
        { "port", "-", "'-' is not a number" },
        { "port", "--5", "'--5' is not a number" },
        { "port", "-0", "'-0' is out of range (0..65535)" },
        { "port", "70000", "'70000' is out of range (0..65535)" },
        { "maxclients", "99999999999999999999999",
          "'99999999999999999999999' is out of range (1..1000000)" },
        { "max_locks", "9223372036854775808",
          "'9223372036854775808' is out of range (0..1099511627776)" },
        { "maxclients", "99999999999999999999x",
          "'99999999999999999999x' is not a number" },
        { "recovery_delay_ms", "-99999999999999999999",
          "'-99999999999999999999' is out of range (-1..1099511627776)" },
        { "maxclients", "ab\x1b[2Jc", "'ab\\x1b[2Jc' is not a number" },
        { "maxclients",
          "1234567890123456789012345678901234567890123456789012345678901234567890",
          "'1234567890123456789012345678901234567890123456789012345678901234...'"
          " is out of range (1..1000000)" },
    };
    struct cachify_config c;
    char err[ERRLEN], want[ERRLEN];
    size_t i;

    config_defaults(&c);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(config_set(&c, bad[i].key, bad[i].value, "command line", err, ERRLEN), -1);
        snprintf(want, sizeof want, "command line: --%s: %s", bad[i].key, bad[i].why);
        ck_assert_str_eq(err, want);
    }
    ck_assert_int_eq(config_set(&c, "port", "007", "f:1", err, ERRLEN), 0);
    ck_assert_int_eq(c.port, 7);
    ck_assert_int_eq(config_set(&c, "recovery_delay_ms", "-1", "f:1", err, ERRLEN), 0);
    ck_assert_int_eq(c.recovery_delay_ms, -1);
    ck_assert_int_eq(config_set(&c, "recovery_delay_ms", "0", "f:1", err, ERRLEN), 0);
    ck_assert_int_eq(c.recovery_delay_ms, 0);
    config_free(&c);
}
END_TEST

START_TEST(test_enum)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(load(&c, "loglevel debug\n", err), 0);
    ck_assert_int_eq(c.loglevel, LOG_DEBUG);
    ck_assert_int_eq(load(&c, "loglevel error\n", err), 0);
    ck_assert_int_eq(c.loglevel, LOG_ERROR);
    ck_assert_int_eq(load(&c, "loglevel \"info\"\n", err), 0);
    ck_assert_int_eq(c.loglevel, LOG_INFO);
    ck_assert_int_eq(load(&c, "\nloglevel loud\n", err), -1);
    ck_assert_str_eq(err, at(2, "loglevel: 'loud' is not one of debug, info, warning, error"));
    ck_assert_int_eq(load(&c, "loglevel INFO\n", err), -1);
    ck_assert_str_eq(err, at(1, "loglevel: 'INFO' is not one of debug, info, warning, error"));
    ck_assert_int_eq(args(&c, &act, err, "--loglevel", "warn", NULL), -1);
    ck_assert_str_eq(err, "command line: --loglevel: 'warn' is not one of debug, info, warning, error");
    ck_assert_int_eq(args(&c, &act, err, "--loglevel=warning", NULL), 0);
    ck_assert_int_eq(c.loglevel, LOG_WARNING);
    config_free(&c);
}
END_TEST

/* The TLS keys: tls_auth_clients is an enum (default yes), a '-' in a
 * key's name stands for '_', and with tls_port set config_check wants a
 * certificate, its key and (unless tls_auth_clients is no) a CA, and a
 * port of its own.  Loading real files is test_tls.c's. */
START_TEST(test_tls_keys)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(c.tls_port, 0);
    ck_assert_int_eq(c.tls_auth_clients, TLS_AUTH_YES);
    ck_assert_int_eq(load(&c, "tls_auth_clients optional\n", err), 0);
    ck_assert_int_eq(c.tls_auth_clients, TLS_AUTH_OPTIONAL);
    ck_assert_int_eq(load(&c, "tls-auth-clients no\n", err), 0);
    ck_assert_int_eq(c.tls_auth_clients, TLS_AUTH_NO);
    ck_assert_int_eq(load(&c, "tls_auth_clients maybe\n", err), -1);
    ck_assert_str_eq(err, at(1, "tls_auth_clients: 'maybe' is not one of no, yes, optional"));
    ck_assert_int_eq(args(&c, &act, err, "--tls-port", "0", "--request-timeout",
                          "5", "--tls_auth_clients=yes", NULL), 0);
    ck_assert_int_eq(c.request_timeout, 5);
    ck_assert_int_eq(c.tls_auth_clients, TLS_AUTH_YES);
    ck_assert_int_eq(args(&c, &act, err, "--tls-port", "7380", NULL), -1);
    ck_assert_str_eq(err, "tls_cert_file: not set, and tls_port needs a certificate and its key");
    ck_assert_int_eq(args(&c, &act, err, "--tls-port", "7380", "--tls-cert-file",
                          "/nonexistent/c.crt", "--tls-key-file", "k", NULL), -1);
    ck_assert_str_eq(err, "tls_cert_file: '/nonexistent/c.crt': cannot open: No such file or directory");
    ck_assert_int_eq(args(&c, &act, err, "--tls-port", "7379", NULL), -1);
    ck_assert_str_eq(err, "tls_port (7379) is port too");
    ck_assert_int_eq(args(&c, &act, err, "--tls-port", "9100", "--metrics-port",
                          "9100", NULL), -1);
    ck_assert_str_eq(err, "tls_port (9100) is metrics_port too");
    ck_assert_int_eq(args(&c, &act, err, "--tls--port", "1", NULL), -1);
    ck_assert_str_eq(err, "command line: --tls--port: unknown key");
    config_free(&c);
}
END_TEST

/* Booleans take exactly yes or no, like redis.conf. */
START_TEST(test_bool)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(load(&c, "protected_mode no\n", err), 0);
    ck_assert_int_eq(c.protected_mode, 0);
    ck_assert_int_eq(load(&c, "protected_mode \"yes\"\n", err), 0);
    ck_assert_int_eq(c.protected_mode, 1);
    ck_assert_int_eq(load(&c, "\nprotected_mode off\n", err), -1);
    ck_assert_str_eq(err, at(2, "protected_mode: 'off' is not yes or no"));
    ck_assert_int_eq(c.protected_mode, 1); /* unchanged */
    ck_assert_int_eq(load(&c, "protected_mode YES\n", err), -1);
    ck_assert_str_eq(err, at(1, "protected_mode: 'YES' is not yes or no"));
    ck_assert_int_eq(args(&c, &act, err, "--protected_mode", "1", NULL), -1);
    ck_assert_str_eq(err, "command line: --protected_mode: '1' is not yes or no");
    ck_assert_int_eq(args(&c, &act, err, "--protected_mode=no", NULL), 0);
    ck_assert_int_eq(c.protected_mode, 0);
    config_free(&c);
}
END_TEST

/* requirepass_file: first line, line end stripped, read once; both keys,
 * a missing file and an empty first line are errors that never show the
 * password. */
START_TEST(test_requirepass_file)
{
    static const struct { const char *text, *pass; } good[] = {
        { "s3cret\n", "s3cret" },
        { "s3cret", "s3cret" },              /* no newline at all */
        { "s3cret\r\nsecond line\n", "s3cret" },
        { " spaced pass \n", " spaced pass " }, /* blanks are kept */
    };
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN], want[ERRLEN], path[64];
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        config_defaults(&c);
        write_conf(good[i].text);
        strcpy(path, tmp_path);
        ck_assert_int_eq(args(&c, &act, err, "--requirepass_file", path, NULL), 0);
        unlink(path);
        ck_assert_str_eq(c.requirepass, good[i].pass);
        ck_assert_str_eq(c.requirepass_file, path);
        ck_assert_int_eq(c.requirepass_loaded, 1);
        /* a second check neither rereads the file nor sees two passwords */
        ck_assert_int_eq(config_check(&c, err, ERRLEN), 0);
        ck_assert_str_eq(c.requirepass, good[i].pass);
        config_free(&c);
    }

    /* from a conf file too */
    config_defaults(&c);
    write_conf("pw-from-file\n");
    strcpy(path, tmp_path);
    snprintf(want, sizeof want, "requirepass_file %s\n", path);
    write_conf(want);
    ck_assert_int_eq(args(&c, &act, err, "-c", "@", NULL), 0);
    unlink(tmp_path);
    unlink(path);
    ck_assert_str_eq(c.requirepass, "pw-from-file");
    config_free(&c);

    /* both set */
    config_defaults(&c);
    write_conf("x\n");
    strcpy(path, tmp_path);
    ck_assert_int_eq(args(&c, &act, err, "--requirepass", "hunter2",
                          "--requirepass_file", path, NULL), -1);
    unlink(path);
    ck_assert_str_eq(err, "requirepass and requirepass_file are both set: keep one");
    config_free(&c);

    /* empty file, empty first line */
    for (i = 0; i < 2; i++) {
        config_defaults(&c);
        write_conf(i == 0 ? "" : "\nsecond\n");
        strcpy(path, tmp_path);
        ck_assert_int_eq(args(&c, &act, err, "--requirepass_file", path, NULL), -1);
        unlink(path);
        snprintf(want, sizeof want, "requirepass_file: %s: empty password "
                 "(the first line is empty)", path);
        ck_assert_str_eq(err, want);
        config_free(&c);
    }

    /* unreadable */
    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--requirepass_file",
                          "/nonexistent/cachifyd-pass", NULL), -1);
    ck_assert_str_eq(err, "requirepass_file: /nonexistent/cachifyd-pass: "
                     "cannot open: No such file or directory");
    config_free(&c);

    /* A path with control bytes is quoted, never echoed raw (found by
     * fuzz_config: tests/fuzz/corpus/config/crash-requirepass-file-path-*). */
    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--requirepass_file",
                          "/nonexistent/a\tb\n", NULL), -1);
    ck_assert_str_eq(err, "requirepass_file: '/nonexistent/a\\x09b\\x0a': "
                     "cannot open: No such file or directory");
    config_free(&c);
    /* The quote and the backslash too, so the quoted path reads back as
     * one value: printable, this one used to come back bare, its
     * backslash and x0a reading like the escape of a newline. */
    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--requirepass_file",
                          "/nonexistent/a' b\\x0a", NULL), -1);
    ck_assert_str_eq(err, "requirepass_file: '/nonexistent/a\\x27 b\\x5cx0a': "
                     "cannot open: No such file or directory");
    config_free(&c);

    /* a password over 512 bytes: the length is said, not the password */
    {
        char big[600];
        memset(big, 'q', 513);
        strcpy(big + 513, "\n");
        config_defaults(&c);
        write_conf(big);
        strcpy(path, tmp_path);
        ck_assert_int_eq(args(&c, &act, err, "--requirepass_file", path, NULL), -1);
        unlink(path);
        snprintf(want, sizeof want, "requirepass_file: %s: password too long "
                 "(513 bytes, at most 512)", path);
        ck_assert_str_eq(err, want);
        ck_assert_ptr_null(strstr(err, "qqq"));
        config_free(&c);
    }
}
END_TEST

START_TEST(test_bind)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(load(&c, "bind 0.0.0.0\n", err), 0);
    ck_assert_str_eq(c.bind, "0.0.0.0");
    ck_assert_int_eq(load(&c, "bind 127.0.0.1  \t ::1   fe80::1:2\n", err), 0);
    ck_assert_str_eq(c.bind, "127.0.0.1 ::1 fe80::1:2"); /* single spaces */
    ck_assert_int_eq(load(&c, "bind \"  \"\n", err), 0);
    ck_assert_str_eq(c.bind, "");
    ck_assert_int_eq(load(&c, "bind 127.0.0.1 localhost\n", err), -1);
    ck_assert_str_eq(err, at(1, "bind: 'localhost' is not a numeric IPv4 or IPv6 address"));
    ck_assert_str_eq(c.bind, ""); /* unchanged */
    ck_assert_int_eq(load(&c, "\n\nbind 256.0.0.1\n", err), -1);
    ck_assert_str_eq(err, at(3, "bind: '256.0.0.1' is not a numeric IPv4 or IPv6 address"));
    ck_assert_int_eq(load(&c, "bind ::1::2\n", err), -1);
    ck_assert_str_eq(err, at(1, "bind: '::1::2' is not a numeric IPv4 or IPv6 address"));
    ck_assert_int_eq(args(&c, &act, err, "--bind", "1.2.3", NULL), -1);
    ck_assert_str_eq(err, "command line: --bind: '1.2.3' is not a numeric IPv4 or IPv6 address");
    ck_assert_int_eq(args(&c, &act, err, "--bind",
        "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee", NULL), -1);
    ck_assert_str_eq(err, "command line: --bind: "
        "'1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd...'"
        " is not a numeric IPv4 or IPv6 address");
    ck_assert_int_eq(args(&c, &act, err, "--bind", "", NULL), 0);
    ck_assert_str_eq(c.bind, "");
    config_free(&c);
}
END_TEST

/* Too-long strings: the limit is stated, the value (maybe a password) is
 * not echoed. */
START_TEST(test_string_lengths)
{
    static const struct { const char *key; size_t max; } lim[] = {
        { "unixsocket", 107 }, { "requirepass", 512 }, { "state_file", 4095 },
    };
    char v[5000], err[ERRLEN], want[ERRLEN], text[5100];
    size_t i;

    for (i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        struct cachify_config c;
        enum config_action act;
        char opt[64];

        config_defaults(&c);
        memset(v, 'p', lim[i].max);
        v[lim[i].max] = '\0';
        ck_assert_int_eq(config_set(&c, lim[i].key, v, "f:1", err, ERRLEN), 0);
        v[lim[i].max] = 'p';
        v[lim[i].max + 1] = '\0';
        snprintf(want, sizeof want, "%s: too long (%zu bytes, at most %zu)",
                 lim[i].key, lim[i].max + 1, lim[i].max);
        if (lim[i].max < 4000) {
            snprintf(text, sizeof text, "\n%s %s\n", lim[i].key, v);
            ck_assert_int_eq(load(&c, text, err), -1);
            ck_assert_str_eq(err, at(2, want));
        } else { /* too long for one conf line: config_set says the same */
            ck_assert_int_eq(config_set(&c, lim[i].key, v, "x.conf:2", err, ERRLEN), -1);
            ck_assert_str_eq(err + strlen("x.conf:2: "), want);
        }
        snprintf(opt, sizeof opt, "--%s", lim[i].key);
        ck_assert_int_eq(args(&c, &act, err, opt, v, NULL), -1);
        snprintf(want, sizeof want, "command line: --%s: too long (%zu bytes, at most %zu)",
                 lim[i].key, lim[i].max + 1, lim[i].max);
        ck_assert_str_eq(err, want);
        config_free(&c);
    }
}
END_TEST

START_TEST(test_cmdline_overrides_file)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];
    int rc;

    /* --port after -c */
    config_defaults(&c);
    write_conf("port 1111\nmaxclients 5\nrequirepass filepass\n");
    rc = args(&c, &act, err, "-c", "@", "--port", "2222", NULL);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(act, CONFIG_RUN);
    ck_assert_int_eq(c.port, 2222);
    ck_assert_int_eq(c.maxclients, 5);
    ck_assert_str_eq(c.config_file, tmp_path);
    config_free(&c);

    /* --port before -c, --name=value, --config alias */
    config_defaults(&c);
    rc = args(&c, &act, err, "--port", "3333", "--requirepass=a=b c", "--config", "@",
              "--maxclients=9", NULL);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(c.port, 3333);
    ck_assert_int_eq(c.maxclients, 9);
    ck_assert_str_eq(c.requirepass, "a=b c");
    config_free(&c);

    /* --config=FILE; the last of two command line values wins */
    config_defaults(&c);
    rc = args(&c, &act, err, "--port=1", "--port", "2", "--config=@", NULL);
    ck_assert_int_eq(rc, -1); /* "--config=@" is literal: no such file */
    ck_assert_str_eq(err, "@: cannot open: No such file or directory");
    config_free(&c);
    {
        char opt[128];
        snprintf(opt, sizeof opt, "--config=%s", tmp_path);
        config_defaults(&c);
        rc = args(&c, &act, err, "--port=1", "--port", "2", opt, NULL);
        ck_assert_msg(rc == 0, "%s", err);
        ck_assert_int_eq(c.port, 2);
        ck_assert_str_eq(c.requirepass, "filepass");
        ck_assert_str_eq(c.config_file, tmp_path);
        config_free(&c);
    }
    /* Two -c: the last one is read, the first one not at all. */
    config_defaults(&c);
    rc = args(&c, &act, err, "-c", "/nonexistent", "-c", "@", NULL);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(c.config_file, tmp_path);
    ck_assert_int_eq(c.port, 1111);
    config_free(&c);
    /* A value that looks like an option is still a value. */
    config_defaults(&c);
    rc = args(&c, &act, err, "--requirepass", "-h", "-c", "@", NULL);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(act, CONFIG_RUN);
    ck_assert_str_eq(c.requirepass, "-h");
    config_free(&c);
    unlink(tmp_path);
}
END_TEST

START_TEST(test_cmdline_file_error_names_file)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN], want[ERRLEN];
    int rc;

    config_defaults(&c);
    write_conf("port 1\n\nmaxclients 0\n");
    /* the command line would fix it, but the file is wrong as written */
    rc = args(&c, &act, err, "-c", "@", "--maxclients", "5", NULL);
    unlink(tmp_path);
    ck_assert_int_eq(rc, -1);
    snprintf(want, sizeof want, "%s:3: maxclients: '0' is out of range (1..1000000)", tmp_path);
    ck_assert_str_eq(err, want);
    config_free(&c);
}
END_TEST

START_TEST(test_cmdline_errors)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--port", NULL), -1);
    ck_assert_str_eq(err, "command line: --port: missing value");
    ck_assert_int_eq(args(&c, &act, err, "--foo", "1", NULL), -1);
    ck_assert_str_eq(err, "command line: --foo: unknown key");
    ck_assert_int_eq(args(&c, &act, err, "--foo=1", NULL), -1);
    ck_assert_str_eq(err, "command line: --foo: unknown key");
    ck_assert_int_eq(args(&c, &act, err, "--PORT", "1", NULL), -1);
    ck_assert_str_eq(err, "command line: --PORT: unknown key");
    ck_assert_int_eq(args(&c, &act, err, "--", NULL), -1);
    ck_assert_str_eq(err, "command line: --: unknown key");
    ck_assert_int_eq(args(&c, &act, err, "--port", "1", "stray", NULL), -1);
    ck_assert_str_eq(err, "command line: 'stray': unexpected argument");
    ck_assert_int_eq(args(&c, &act, err, "-x", NULL), -1);
    ck_assert_str_eq(err, "command line: -x: unknown option");
    ck_assert_int_eq(args(&c, &act, err, "-", NULL), -1);
    ck_assert_str_eq(err, "command line: -: unknown option");
    ck_assert_int_eq(args(&c, &act, err, "-c", NULL), -1);
    ck_assert_str_eq(err, "command line: -c: missing file name");
    /* the first error is the one reported */
    ck_assert_int_eq(args(&c, &act, err, "--bar", "x", "--port", NULL), -1);
    ck_assert_str_eq(err, "command line: --bar: unknown key");
    /* argv errors are found before the file is read */
    ck_assert_int_eq(args(&c, &act, err, "-c", "/nonexistent", "--bar", "x", NULL), -1);
    ck_assert_str_eq(err, "command line: --bar: unknown key");
    ck_assert_int_eq(c.port, 7379);
    ck_assert_ptr_null(c.config_file);
    config_free(&c);
}
END_TEST

START_TEST(test_help_version)
{
    static const struct { const char *arg; enum config_action act; } cases[] = {
        { "-h", CONFIG_SHOW_HELP }, { "--help", CONFIG_SHOW_HELP },
        { "-v", CONFIG_SHOW_VERSION }, { "--version", CONFIG_SHOW_VERSION },
    };
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_defaults(&c);
        ck_assert_int_eq(args(&c, &act, err, cases[i].arg, NULL), 0);
        ck_assert_int_eq(act, cases[i].act);
        /* The file is not read and bad values are not looked at. */
        ck_assert_int_eq(args(&c, &act, err, "-c", "/nonexistent", "--port", "x",
                              cases[i].arg, NULL), 0);
        ck_assert_int_eq(act, cases[i].act);
        ck_assert_int_eq(c.port, 7379);
        /* Help wins over a broken command line, wherever it is. */
        ck_assert_int_eq(args(&c, &act, err, "--nope", "stray", cases[i].arg, NULL), 0);
        ck_assert_int_eq(act, cases[i].act);
        config_free(&c);
    }
    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "-v", "-h", NULL), 0);
    ck_assert_int_eq(act, CONFIG_SHOW_VERSION); /* the first one asked */
    ck_assert_int_eq(args(&c, &act, err, "--port", "-h", NULL), -1); /* -h is the value */
    ck_assert_str_eq(err, "command line: --port: '-h' is not a number");
    config_free(&c);
    ck_assert_str_eq(CACHIFYD_VERSION, "0.1.0");
}
END_TEST

START_TEST(test_cross_checks)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--max_ttl_ms", "1000", NULL), -1);
    ck_assert_str_eq(err, "default_ttl_ms (30000) is larger than max_ttl_ms (1000)");
    config_free(&c);

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--max_ttl_ms", "30000", NULL), 0);
    ck_assert_int_eq(c.max_ttl_ms, 30000);
    config_free(&c);

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--default_ttl_ms", "1099511627776", NULL), 0);
    ck_assert_int_eq(c.recovery_delay_ms, 0); /* the leases' own wait only */
    config_free(&c);

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--default_ttl_ms", "1099511627776",
                          "--recovery_delay_ms", "-1", NULL), 0);
    ck_assert_int_eq(c.recovery_delay_ms, 1099511627776LL); /* derived */
    config_free(&c);

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--max_line", "100",
                          "--max_value_len", "50", NULL), 0);
    ck_assert_int_eq(c.max_request, 450);
    config_free(&c);

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--max_line", "100", "--max_value_len",
                          "0", "--max_request", "101", NULL), -1);
    ck_assert_str_eq(err, "max_request (101) is smaller than the longest bulk "
                     "+ 2 (102: max_line 100, max_value_len 0)");
    config_free(&c);

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--max_line", "100", "--max_value_len",
                          "0", "--max_request", "102", NULL), 0);
    ck_assert_int_eq(c.max_request, 102);
    config_free(&c);

    /* A value may be longer than a line: then it is the longest bulk. */
    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--max_line", "100", "--max_value_len",
                          "1000", "--max_request", "1001", NULL), -1);
    ck_assert_str_eq(err, "max_request (1001) is smaller than the longest bulk "
                     "+ 2 (1002: max_line 100, max_value_len 1000)");
    config_free(&c);

    config_defaults(&c);
    ck_assert_int_eq(args(&c, &act, err, "--default_ttl_ms", "5000",
                          "--recovery_delay_ms", "0", NULL), 0);
    ck_assert_int_eq(c.recovery_delay_ms, 0); /* 0 is kept: no delay */
    config_free(&c);

    /* config_check alone, twice: derivations are stable. */
    config_defaults(&c);
    c.default_ttl_ms = 777;
    c.recovery_delay_ms = -1;
    ck_assert_int_eq(config_check(&c, err, ERRLEN), 0);
    ck_assert_int_eq(config_check(&c, err, ERRLEN), 0);
    ck_assert_int_eq(c.recovery_delay_ms, 777);
    ck_assert_int_eq(c.max_request, 262144 + 1048576);
    c.max_ttl_ms = 776;
    ck_assert_int_eq(config_check(&c, err, ERRLEN), -1);
    ck_assert_str_eq(err, "default_ttl_ms (777) is larger than max_ttl_ms (776)");
    config_free(&c);
}
END_TEST

START_TEST(test_config_set_where)
{
    struct cachify_config c;
    char err[ERRLEN];

    config_defaults(&c);
    ck_assert_int_eq(config_set(&c, "port", "x", "a.conf:9", err, ERRLEN), -1);
    ck_assert_str_eq(err, "a.conf:9: port: 'x' is not a number");
    ck_assert_int_eq(config_set(&c, "port", "x", "command line", err, ERRLEN), -1);
    ck_assert_str_eq(err, "command line: --port: 'x' is not a number");
    ck_assert_int_eq(config_set(&c, "nope", "x", "a.conf:9", err, ERRLEN), -1);
    ck_assert_str_eq(err, "a.conf:9: nope: unknown key");
    ck_assert_int_eq(config_set(&c, "nope", "x", "command line", err, ERRLEN), -1);
    ck_assert_str_eq(err, "command line: --nope: unknown key");
    ck_assert_int_eq(config_set(&c, "port", "80", "a.conf:9", err, ERRLEN), 0);
    ck_assert_int_eq(c.port, 80);
    /* a short err buffer is cut, not overrun */
    ck_assert_int_eq(config_set(&c, "port", "x", "a.conf:9", err, 6), -1);
    ck_assert_str_eq(err, "a.con");
    config_free(&c);
}
END_TEST

START_TEST(test_usage)
{
    char *buf = NULL, line[256];
    size_t len = 0, i;
    FILE *out = open_memstream(&buf, &len);

    ck_assert_ptr_nonnull(out);
    config_usage(out, "prog");
    fclose(out);
    ck_assert_msg(strncmp(buf, "Usage: prog [-c FILE]", 21) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\n  -c, --config FILE "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  -h, --help "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  -v, --version "));
    for (i = 0; i < N_ALL_KEYS; i++) {
        snprintf(line, sizeof line, "\n  %-20s ", all_keys[i]);
        ck_assert_msg(strstr(buf, line) != NULL, "no line for %s", all_keys[i]);
    }
    ck_assert_ptr_nonnull(strstr(buf, "\n  bind                 \"127.0.0.1\"     numeric IPv4/IPv6"));
    ck_assert_ptr_nonnull(strstr(buf, "\n  port                 7379            TCP port"));
    ck_assert_ptr_nonnull(strstr(buf, "\n  default_ttl_ms       30000 ms        "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  client_output_limit  67108864 bytes  "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  loglevel             info            "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  recovery_delay_ms    0 ms            "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  long_lease_ms        60000 ms        "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  requirepass          \"\"              "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  protected_mode       yes             "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  timeout              0 s             "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  request_timeout      30 s            "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  client_stall_timeout 60 s            "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  client_buffer_budget 1073741824 bytes "));
    ck_assert_ptr_nonnull(strstr(buf, "\n  tcp_keepalive        300 s           "));
    free(buf);
}
END_TEST

/* The shipped conf loads, sets what `make run` needs, and lists every key. */
START_TEST(test_shipped_conf)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN], *argv[] = { "cachifyd", "-c", "cachifyd.conf", NULL };
    char line[4200];
    int seen[N_ALL_KEYS] = { 0 };
    size_t i;
    FILE *f;

    config_defaults(&c);
    ck_assert_msg(config_parse_args(&c, 3, argv, &act, err, ERRLEN) == 0,
                  "%s (run from the repo root)", err);
    ck_assert_int_eq(act, CONFIG_RUN);
    ck_assert_str_eq(c.bind, "127.0.0.1");
    ck_assert_int_eq(c.port, 7379);
    ck_assert_str_eq(c.state_file, "cachifyd.state");
    ck_assert_str_eq(c.unixsocket, "");
    ck_assert_int_eq(c.maxclients, 10000);
    ck_assert_int_eq(c.default_ttl_ms, 30000);
    ck_assert_int_eq(c.max_request, 262144 + 1048576);
    ck_assert_int_eq(c.recovery_delay_ms, 0);
    ck_assert_int_eq(c.long_lease_ms, 60000);
    ck_assert_int_eq(c.loglevel, LOG_INFO);
    config_free(&c);

    f = fopen("cachifyd.conf", "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        for (i = 0; i < N_ALL_KEYS; i++) {
            size_t n = strlen(all_keys[i]);
            const char *p = strncmp(line, "# ", 2) == 0 ? line + 2 : line;
            if (strncmp(p, all_keys[i], n) == 0 && p[n] == ' ')
                seen[i] = 1;
        }
    }
    fclose(f);
    for (i = 0; i < N_ALL_KEYS; i++)
        ck_assert_msg(seen[i], "cachifyd.conf does not list %s", all_keys[i]);
}
END_TEST

/* --test-config (and -t) asks for the whole check and nothing else. */
START_TEST(test_test_config_action)
{
    struct cachify_config c;
    enum config_action act;
    char err[ERRLEN];
    char *good[] = { "cachifyd", "--test-config", "-c", "cachifyd.conf", NULL };
    char *short_[] = { "cachifyd", "-c", "cachifyd.conf", "-t", NULL };
    char *bad[] = { "cachifyd", "-t", "--max_ttl_ms", "10", NULL };

    config_defaults(&c);
    ck_assert_msg(config_parse_args(&c, 4, good, &act, err, ERRLEN) == 0, "%s", err);
    ck_assert_int_eq(act, CONFIG_TEST);
    config_free(&c);
    config_defaults(&c);
    ck_assert_msg(config_parse_args(&c, 4, short_, &act, err, ERRLEN) == 0, "%s", err);
    ck_assert_int_eq(act, CONFIG_TEST);
    config_free(&c);
    /* The cross-key checks run too: default_ttl_ms 30000 > max_ttl_ms. */
    config_defaults(&c);
    ck_assert_int_eq(config_parse_args(&c, 4, bad, &act, err, ERRLEN), -1);
    ck_assert_str_eq(err, "default_ttl_ms (30000) is larger than max_ttl_ms (10)");
    config_free(&c);
}
END_TEST

/* metrics_bind takes exactly one numeric address; the other new keys keep
 * the table's bounds. */
START_TEST(test_service_keys)
{
    struct cachify_config c;
    char err[ERRLEN];
    static const struct { const char *key, *value, *why; } bad[] = {
        { "metrics_bind", "127.0.0.1 ::1", "x:1: metrics_bind: expected one numeric IPv4 or IPv6 address" },
        { "metrics_bind", "", "x:1: metrics_bind: expected one numeric IPv4 or IPv6 address" },
        { "metrics_bind", "localhost", "x:1: metrics_bind: 'localhost' is not a numeric IPv4 or IPv6 address" },
        { "metrics_port", "65536", NULL },
        { "metrics_port", "-1", NULL },
        { "syslog", "maybe", "x:1: syslog: 'maybe' is not yes or no" },
        { "syslog_ident", "12345678901234567890123456789012345678901234567890123456789012345", NULL },
    };

    config_defaults(&c);
    ck_assert_int_eq(c.metrics_port, 0);
    ck_assert_str_eq(c.metrics_bind, "127.0.0.1");
    ck_assert_int_eq(c.syslog, 0);
    ck_assert_str_eq(c.syslog_ident, "cachifyd");
    ck_assert_int_eq(config_set(&c, "metrics_bind", " ::1 ", "x:1", err, ERRLEN), 0);
    ck_assert_str_eq(c.metrics_bind, "::1");
    ck_assert_int_eq(config_set(&c, "metrics_port", "9100", "x:1", err, ERRLEN), 0);
    ck_assert_int_eq(c.metrics_port, 9100);
    ck_assert_int_eq(config_set(&c, "syslog", "yes", "x:1", err, ERRLEN), 0);
    ck_assert_int_eq(c.syslog, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(config_set(&c, bad[i].key, bad[i].value, "x:1", err, ERRLEN), -1);
        if (bad[i].why != NULL)
            ck_assert_str_eq(err, bad[i].why);
    }
    ck_assert_str_eq(c.metrics_bind, "::1"); /* a bad value changes nothing */
    ck_assert_int_eq(config_check(&c, err, ERRLEN), 0);
    ck_assert_int_eq(config_set(&c, "metrics_port", "7379", "x:1", err, ERRLEN), 0);
    ck_assert_int_eq(config_check(&c, err, ERRLEN), -1);
    ck_assert_str_eq(err, "metrics_port (7379) is the lock service's port too");
    config_free(&c);
}
END_TEST

/* The key list reload.c walks: every key, in the table's order, and
 * config_key_differs sees exactly the keys that differ. */
START_TEST(test_key_list)
{
    struct cachify_config a, b;
    char err[ERRLEN];
    size_t i, n = config_key_count();

    ck_assert_uint_eq(n, N_ALL_KEYS);
    ck_assert_ptr_null(config_key_name(n));
    config_defaults(&a);
    config_defaults(&b);
    ck_assert_int_eq(config_set(&b, "loglevel", "debug", "x:1", err, ERRLEN), 0);
    ck_assert_int_eq(config_set(&b, "requirepass", "pw", "x:1", err, ERRLEN), 0);
    ck_assert_int_eq(config_set(&b, "max_locks", "7", "x:1", err, ERRLEN), 0);
    for (i = 0; i < n; i++) {
        const char *name = config_key_name(i);
        int want = strcmp(name, "loglevel") == 0 ||
                   strcmp(name, "requirepass") == 0 ||
                   strcmp(name, "max_locks") == 0;
        size_t j = 0;
        while (j < N_ALL_KEYS && strcmp(all_keys[j], name) != 0)
            j++;
        ck_assert_msg(j < N_ALL_KEYS, "key %s is not in all_keys", name);
        ck_assert_msg(config_key_differs(&a, &b, i) == want, "%s", name);
        ck_assert_int_eq(config_key_differs(&a, &a, i), 0);
    }
    config_free(&a);
    config_free(&b);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_no_args_derives);
    tcase_add_test(tc, test_log_level_names);
    tcase_add_test(tc, test_file_syntax);
    tcase_add_test(tc, test_file_empty);
    tcase_add_test(tc, test_file_syntax_errors);
    tcase_add_test(tc, test_file_nul_byte);
    tcase_add_test(tc, test_file_long_line);
    tcase_add_test(tc, test_file_missing);
    tcase_add_test(tc, test_int_errors);
    tcase_add_test(tc, test_int_bounds_accepted);
    tcase_add_test(tc, test_int_syntax);
    tcase_add_test(tc, test_enum);
    tcase_add_test(tc, test_bool);
    tcase_add_test(tc, test_requirepass_file);
    tcase_add_test(tc, test_bind);
    tcase_add_test(tc, test_string_lengths);
    tcase_add_test(tc, test_cmdline_overrides_file);
    tcase_add_test(tc, test_cmdline_file_error_names_file);
    tcase_add_test(tc, test_cmdline_errors);
    tcase_add_test(tc, test_help_version);
    tcase_add_test(tc, test_cross_checks);
    tcase_add_test(tc, test_config_set_where);
    tcase_add_test(tc, test_usage);
    tcase_add_test(tc, test_tls_keys);
    tcase_add_test(tc, test_shipped_conf);
    tcase_add_test(tc, test_test_config_action);
    tcase_add_test(tc, test_service_keys);
    tcase_add_test(tc, test_key_list);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
