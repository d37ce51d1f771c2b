/* daemon/config.c - the settings table, values and the command line.
 *
 * Owns: the one table below, which names every key with its type, bounds,
 * default, unit and help line, and everything driven by that table:
 * defaults, value parsing, `--name value` arguments, the cross-key checks
 * (config_check; the tls_* files are tls.c's), the usage text and the
 * wording of every error.  The `name value` file reader is config_file.c,
 * which shares the table's helpers through config_impl.h.  Does not own:
 * acting on settings; nothing here opens sockets or files.
 *
 * Adding a key means a field in struct cachify_config (config.h), one row in
 * keys[] and a paragraph in cachifyd.conf; no parsing code changes.
 *
 * Errors read "FILE:LINE: key: why" or "command line: --key: why" so the
 * user can go straight to the culprit; values are quoted back with
 * non-printable bytes (and the quote and the backslash) as \xHH, and
 * secrets are never quoted back.
 */
#include "daemon/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "daemon/config_impl.h"
#include "daemon/tls.h"
#include "daemon/users.h"

/* sun_path is 108 bytes on Linux and needs its terminating NUL. */
#define UNIXSOCKET_MAX 107

/* PATH_MAX (4096 on Linux) counts the NUL too. */
#define PATH_LEN_MAX 4095

#define TERA (1LL << 40) /* "no practical bound" for ms and byte counts */

/* Indexed by enum log_level, so the enum's values must stay 0, 1, 2, 3. */
static const char *const log_level_names[] = {
    "debug", "info", "warning", "error", NULL,
};

/* Indexed by enum tls_auth (config.h). */
static const char *const tls_auth_names[] = {
    "no", "yes", "optional", NULL,
};

static int convert_bind(const char *value, char **out, char *why,
                        size_t whylen);
static int convert_one_address(const char *value, char **out, char *why,
                               size_t whylen);

#define FIELD(f)                                                           \
    .offset = offsetof(struct cachify_config, f),                          \
    .size = sizeof(((struct cachify_config *)0)->f)
#define STRING(f, maxlen, dflt, conv, help_)                               \
    { .name = #f, .type = KEY_STRING, FIELD(f), .max = (maxlen),           \
      .def_str = (dflt), .convert = (conv), .unit = "", .help = (help_) }
#define INTEGER(f, lo, hi, dflt, unit_, help_)                             \
    { .name = #f, .type = KEY_INT, FIELD(f), .min = (lo), .max = (hi),     \
      .def = (dflt), .unit = (unit_), .help = (help_) }
#define ENUMERATED(f, names, dflt, help_)                                  \
    { .name = #f, .type = KEY_ENUM, FIELD(f), .def = (dflt),               \
      .choices = (names), .unit = "", .help = (help_) }
#define BOOLEAN(f, dflt, help_)                                            \
    { .name = #f, .type = KEY_BOOL, FIELD(f), .min = 0, .max = 1,          \
      .def = (dflt), .unit = "", .help = (help_) }

/* The table.  Its order is the order of config_usage() and cachifyd.conf. */
static const struct key keys[] = {
    STRING(bind, 0, "127.0.0.1", convert_bind,
           "numeric IPv4/IPv6 addresses to listen on, space-separated; \"\" = no TCP"),
    INTEGER(port, 0, 65535, 7379, "",
            "TCP port; 0 = no TCP listener"),
    STRING(unixsocket, UNIXSOCKET_MAX, "", NULL,
           "Unix socket path; \"\" = none"),
    INTEGER(tls_port, 0, 65535, 0, "",
            "TLS port (TLS 1.2+), on every bind address beside port; 0 = no TLS listener"),
    STRING(tls_cert_file, PATH_LEN_MAX, "", NULL,
           "PEM certificate chain the TLS port presents (server certificate first)"),
    STRING(tls_key_file, PATH_LEN_MAX, "", NULL,
           "PEM private key of tls_cert_file"),
    STRING(tls_ca_cert_file, PATH_LEN_MAX, "", NULL,
           "PEM CA certificate(s) client certificates must chain to"),
    ENUMERATED(tls_auth_clients, tls_auth_names, TLS_AUTH_YES,
               "client certificates on the TLS port: yes (required), optional (verified if sent) or no"),
    BOOLEAN(protected_mode, 1,
            "yes: without a password, refuse clients from non-loopback addresses"),
    INTEGER(maxclients, 1, 1000000, 10000, "clients",
            "connections served at once (lowered at start to fit ulimit -n)"),
    INTEGER(timeout, 0, TERA, 0, "s",
            "close a client idle this long (waiting ACQUIREs are not idle); 0 = never"),
    INTEGER(request_timeout, 0, TERA, 30, "s",
            "close a client whose request stays incomplete this long; 0 = never"),
    INTEGER(default_ttl_ms, 1, TERA, 30000, "ms",
            "TTL of an ACQUIRE that names none"),
    INTEGER(max_ttl_ms, 0, TERA, 0, "ms",
            "largest TTL an ACQUIRE may ask for; 0 = no bound"),
    INTEGER(max_key_len, 1, 65536, 1024, "bytes",
            "longest lock key"),
    INTEGER(max_line, 64, 64LL << 20, 65536, "bytes",
            "longest inline line, and bulk string but for values"),
    INTEGER(max_value_len, 0, 512LL << 20, 1LL << 20, "bytes",
            "longest value a SET may store (a bulk string may be this long); over it -LIMIT"),
    INTEGER(max_request, 0, 1LL << 30, 0, "bytes",
            "largest whole request, at least the longest bulk + 2; 0 = 4 x max_line + max_value_len"),
    INTEGER(max_waiters, 0, 1LL << 30, 10000, "waiters",
            "longest wait queue of one key; 0 = no bound"),
    INTEGER(max_locks, 0, TERA, 0, "keys",
            "most keys held or waited on at once; 0 = no bound"),
    INTEGER(maxmemory, 0, 1LL << 50, 0, "bytes",
            "key and value bytes all entries may hold; past it writes answer an error, nothing is evicted; 0 = no bound"),
    INTEGER(client_output_limit, 1024, TERA, 64LL << 20, "bytes",
            "unsent reply bytes before a client is dropped"),
    INTEGER(client_stall_timeout, 0, TERA, 60, "s",
            "drop a client that leaves its replies unread this long; 0 = never"),
    INTEGER(client_buffer_budget, 0, TERA, 1LL << 30, "bytes",
            "input + unsent output all clients may hold; past it, -LIMIT and close; 0 = no bound"),
    INTEGER(tcp_keepalive, 0, 1000000, 300, "s",
            "TCP keepalive: probe a silent peer after this long, drop it ~this x 2 later; 0 = off"),
    STRING(requirepass, 512, "", NULL,
           "password clients must AUTH with; \"\" = none"),
    STRING(requirepass_file, PATH_LEN_MAX, "", NULL,
           "file whose first line is the password (not in ps); \"\" = none"),
    { .name = "user", .type = KEY_STRING, FIELD(user), .max = CONF_LINE_MAX,
      .def_str = "", .convert = users_check_line, .unit = "", .append = 1,
      .help = "NAME password-file PATH keys PREFIX... [readonly] [force]: a user limited to keys with these prefixes; one line each" },
    ENUMERATED(loglevel, log_level_names, LOG_INFO,
               "least severe message logged: debug, info, warning or error"),
    STRING(state_file, PATH_LEN_MAX, "", NULL,
           "file keeping locks and the last token across restarts; \"\" = none"),
    INTEGER(recovery_delay_ms, -1, TERA, 0, "ms",
            "after a crash, wait at least this long before granting (the leases' own wait is never shortened); -1 = default_ttl_ms"),
    INTEGER(long_lease_ms, 1, TERA, 60000, "ms",
            "leases longer than this (and FOREVER) are written to the state file one by one and restored after a crash; shorter ones are waited out"),
    INTEGER(busy_poll_us, 0, 1000000, 0, "us",
            "after work, poll this long before sleeping (less latency, more CPU); 0 = off"),
    INTEGER(metrics_port, 0, 65535, 0, "",
            "HTTP port serving GET /metrics (Prometheus text); 0 = off"),
    STRING(metrics_bind, 0, "127.0.0.1", convert_one_address,
           "one numeric IPv4/IPv6 address for metrics_port"),
    BOOLEAN(syslog, 0,
            "yes: log to syslog (daemon facility) instead of stderr"),
    STRING(syslog_ident, 64, "cachifyd", NULL,
           "program name syslog lines carry"),
};

#define NKEYS (sizeof keys / sizeof keys[0])

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void config_say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

const char *config_quote(char *q, const char *value, int bare)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, i;

    q[n++] = '\'';
    for (i = 0; value[i] != '\0' && i < CONFIG_QUOTE_MAX; i++) {
        unsigned char ch = (unsigned char)value[i];
        /* The quote itself and the backslash are escaped too: a value
         * holding ' -> ' could pass for two values, and one holding a
         * backslash and x0a for a newline. */
        if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\') {
            q[n++] = (char)ch;
        } else {
            n += (size_t)sprintf(q + n, "\\x%c%c", hex[ch >> 4], hex[ch & 15]);
            bare = 0;
        }
    }
    if (value[i] != '\0')
        n += (size_t)sprintf(q + n, "...");
    else if (bare)
        return value;
    sprintf(q + n, "'");
    return q;
}

int config_is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* 1 when the len bytes at name spell key, a '-' standing for a '_' (so
 * --tls-port is --tls_port, as Redis spells its keys). */
static int same_name(const char *key, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (key[i] != name[i] && !(key[i] == '_' && name[i] == '-'))
            return 0;
    return key[len] == '\0';
}

/* The key named by the len bytes at name (not NUL-terminated for
 * --name=value), or NULL. */
const struct key *config_find_key(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < NKEYS; i++)
        if (strlen(keys[i].name) == len && same_name(keys[i].name, name, len))
            return &keys[i];
    return NULL;
}

static void *field(struct cachify_config *c, const struct key *k)
{
    return (char *)c + k->offset;
}

/* Stores an already checked number in an integer or enum field. */
static void store(struct cachify_config *c, const struct key *k, long long v)
{
    if (k->type == KEY_ENUM) { /* enum log_level, enum tls_auth: ints */
        int e = (int)v;
        memcpy(field(c, k), &e, sizeof e);
    } else if (k->size == sizeof(int))
        *(int *)field(c, k) = (int)v; /* the key's bounds keep it in range */
    else
        *(long long *)field(c, k) = v;
}
_Static_assert(sizeof(enum log_level) == sizeof(int) &&
               sizeof(enum tls_auth) == sizeof(int), "enum keys are ints");

/* Accepts decimal digits, with a leading '-' only when the key allows
 * negatives; no '+', blanks, hex or unit suffixes, so "10k" or " 5" fail
 * loudly rather than meaning something unexpected. */
static int parse_integer(const struct key *k, const char *value,
                         long long *out, char *why, size_t whylen)
{
    const char *p = value;
    char q[CONFIG_QUOTE_BUF];
    int neg = 0, overflow = 0;
    long long v = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p == '\0' || p[strspn(p, "0123456789")] != '\0') {
        config_say(why, whylen, "%s is not a number", config_quote(q, value, 0));
        return -1;
    }
    for (; *p != '\0'; p++) {
        int d = *p - '0';

        if (v > (LLONG_MAX - d) / 10)
            overflow = 1;
        else
            v = v * 10 + d;
    }
    if (neg)
        v = -v;
    /* A '-' on a key whose minimum is not negative is out of range, even
     * for "-0": the value was not written the way the key takes it. */
    if (overflow || v < k->min || v > k->max || (neg && k->min >= 0)) {
        config_say(why, whylen, "%s is out of range (%lld..%lld)", config_quote(q, value, 0),
            k->min, k->max);
        return -1;
    }
    *out = v;
    return 0;
}

/* bind: every blank-separated word must be a numeric address (no names, so
 * start-up never waits on DNS); stored joined by single spaces so the daemon
 * can split on ' ' alone.  Blank text means no TCP listener. */
static int convert_bind(const char *value, char **out, char *why,
                        size_t whylen)
{
    size_t len = strlen(value), n = 0;
    const char *p = value;
    char *res = cfy_malloc(len + 1);

    if (res == NULL) {
        config_say(why, whylen, "out of memory");
        return -1;
    }
    while (*p != '\0') {
        char word[CONFIG_QUOTE_MAX + 2], q[CONFIG_QUOTE_BUF];
        unsigned char addr[16];
        size_t wlen = 0, cut;

        while (config_is_blank(*p))
            p++;
        if (*p == '\0')
            break;
        while (p[wlen] != '\0' && !config_is_blank(p[wlen]))
            wlen++;
        /* Any address fits in word; a longer word is wrong anyway and is
         * cut so config_quote() shows it with "...". */
        cut = wlen < sizeof word ? wlen : sizeof word - 1;
        memcpy(word, p, cut);
        word[cut] = '\0';
        if (cut < wlen || (inet_pton(AF_INET, word, addr) != 1 &&
                           inet_pton(AF_INET6, word, addr) != 1)) {
            config_say(why, whylen, "%s is not a numeric IPv4 or IPv6 address",
                config_quote(q, word, 0));
            cfy_free(res);
            return -1;
        }
        if (n > 0)
            res[n++] = ' ';
        memcpy(res + n, word, wlen);
        n += wlen;
        p += wlen;
    }
    res[n] = '\0';
    *out = res;
    return 0;
}

/* metrics_bind: what bind accepts, but exactly one address (evhttp binds
 * one socket per call, and one metrics listener is enough). */
static int convert_one_address(const char *value, char **out, char *why,
                               size_t whylen)
{
    if (convert_bind(value, out, why, whylen) != 0)
        return -1;
    if ((*out)[0] != '\0' && strchr(*out, ' ') == NULL)
        return 0;
    config_say(why, whylen, "expected one numeric IPv4 or IPv6 address");
    cfy_free(*out);
    *out = NULL;
    return -1;
}

/* Parses value for key k and stores it in c; on error leaves c unchanged and
 * writes the reason (without where or key) to why. */
int config_set_value(struct cachify_config *c, const struct key *k,
                     const char *value, char *why, size_t whylen)
{
    long long v;
    size_t i;

    switch (k->type) {
    case KEY_STRING: {
        char **slot = field(c, k), *copy;
        size_t len = strlen(value);

        /* The value is not quoted back: it may be a password. */
        if (k->max > 0 && len > (size_t)k->max) {
            config_say(why, whylen, "too long (%zu bytes, at most %lld)", len, k->max);
            return -1;
        }
        if (k->convert != NULL) {
            if (k->convert(value, &copy, why, whylen) != 0)
                return -1;
        } else if ((copy = cfy_strdup(value)) == NULL) {
            config_say(why, whylen, "out of memory");
            return -1;
        }
        if (k->append && (*slot)[0] != '\0') {
            size_t old = strlen(*slot), add = strlen(copy);
            char *joined = cfy_malloc(old + 1 + add + 1);
            if (joined == NULL) {
                cfy_free(copy);
                config_say(why, whylen, "out of memory");
                return -1;
            }
            memcpy(joined, *slot, old);
            joined[old] = '\n';
            memcpy(joined + old + 1, copy, add + 1);
            cfy_free(copy);
            copy = joined;
        }
        cfy_free(*slot);
        *slot = copy;
        return 0;
    }
    case KEY_INT:
        if (parse_integer(k, value, &v, why, whylen) != 0)
            return -1;
        store(c, k, v);
        return 0;
    case KEY_ENUM: {
        char list[256] = "", q[CONFIG_QUOTE_BUF];

        for (i = 0; k->choices[i] != NULL; i++) {
            if (strcmp(k->choices[i], value) == 0) {
                store(c, k, (long long)i);
                return 0;
            }
            if (i > 0)
                strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, k->choices[i], sizeof list - strlen(list) - 1);
        }
        config_say(why, whylen, "%s is not one of %s", config_quote(q, value, 0), list);
        return -1;
    }
    case KEY_BOOL: {
        char q[CONFIG_QUOTE_BUF];

        if (strcmp(value, "yes") == 0 || strcmp(value, "no") == 0) {
            store(c, k, value[0] == 'y');
            return 0;
        }
        config_say(why, whylen, "%s is not yes or no", config_quote(q, value, 0));
        return -1;
    }
    }
    return -1;
}

int config_defaults(struct cachify_config *c)
{
    size_t i;
    char why[WHY_MAX];

    /* Zeroed first so config_free() is safe however far this gets. */
    memset(c, 0, sizeof *c);
    for (i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (k->type != KEY_STRING)
            store(c, k, k->def);
        else if (k->append) /* starts empty: each line adds one */
            *(char **)field(c, k) = cfy_strdup(k->def_str);
        else if (config_set_value(c, k, k->def_str, why, sizeof why) != 0)
            return -1; /* out of memory: defaults are valid by design */
        if (k->type == KEY_STRING && *(char **)field(c, k) == NULL)
            return -1;
    }
    return 0;
}

void config_free(struct cachify_config *c)
{
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        if (keys[i].type == KEY_STRING) {
            char **slot = field(c, &keys[i]);
            cfy_free(*slot);
            *slot = NULL;
        }
    }
    cfy_free(c->config_file);
    c->config_file = NULL;
}

/* Keys given on the command line are named as typed there, with "--". */
int config_set(struct cachify_config *c, const char *name, const char *value,
               const char *where, char *err, size_t errlen)
{
    const char *dash = strcmp(where, "command line") == 0 ? "--" : "";
    const struct key *k = config_find_key(name, strlen(name));
    char why[WHY_MAX], q[CONFIG_QUOTE_BUF];

    if (k == NULL) {
        config_say(err, errlen, "%s: %s%s: unknown key", where, dash, config_quote(q, name, 1));
        return -1;
    }
    if (config_set_value(c, k, value, why, sizeof why) != 0) {
        config_say(err, errlen, "%s: %s%s: %s", where, dash, k->name, why);
        return -1;
    }
    return 0;
}

enum arg_kind { ARG_HELP, ARG_VERSION, ARG_CONFIG, ARG_KEY, ARG_TEST, ARG_BAD };

/* Classifies argv[*i], consuming the argument that holds its value, if any,
 * so both passes of config_parse_args walk argv the same way.  ARG_CONFIG
 * and ARG_KEY set *value (and *k); ARG_BAD writes the whole message. */
static enum arg_kind next_arg(int argc, char **argv, int *i,
                              const struct key **k, const char **value,
                              char *err, size_t errlen)
{
    const char *a = argv[*i], *eq;
    char name[CONFIG_QUOTE_MAX + 2], q[CONFIG_QUOTE_BUF];
    size_t n;

    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        return ARG_HELP;
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0)
        return ARG_VERSION;
    if (strcmp(a, "--test-config") == 0 || strcmp(a, "-t") == 0)
        return ARG_TEST;
    if (strncmp(a, "--config=", 9) == 0) {
        *value = a + 9;
        return ARG_CONFIG;
    }
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
        if (*i + 1 >= argc) {
            config_say(err, errlen, "command line: %s: missing file name", a);
            return ARG_BAD;
        }
        *value = argv[++*i];
        return ARG_CONFIG;
    }
    if (a[0] != '-') {
        config_say(err, errlen, "command line: %s: unexpected argument", config_quote(q, a, 0));
        return ARG_BAD;
    }
    if (a[1] != '-') {
        config_say(err, errlen, "command line: %s: unknown option", config_quote(q, a, 1));
        return ARG_BAD;
    }
    eq = strchr(a + 2, '=');
    n = eq != NULL ? (size_t)(eq - (a + 2)) : strlen(a + 2);
    if ((*k = config_find_key(a + 2, n)) == NULL) {
        size_t cut = n < sizeof name ? n : sizeof name - 1;
        memcpy(name, a + 2, cut);
        name[cut] = '\0';
        config_say(err, errlen, "command line: --%s: unknown key", config_quote(q, name, 1));
        return ARG_BAD;
    }
    if (eq != NULL) {
        *value = eq + 1;
    } else if (*i + 1 >= argc) {
        config_say(err, errlen, "command line: --%s: missing value", (*k)->name);
        return ARG_BAD;
    } else {
        *value = argv[++*i];
    }
    return ARG_KEY;
}

/* Two passes: the first finds -c, --help and --version and checks the
 * shape of argv, the second applies --name values after the file is read,
 * so they win whatever their position.  Values are skipped, never taken as
 * options, so "--requirepass -h" sets a password rather than asking for help.
 * --help and --version win over argv errors: a user asking for help with a
 * broken command line should get the help. */
int config_parse_args(struct cachify_config *c, int argc, char **argv,
                      enum config_action *action, char *err, size_t errlen)
{
    const struct key *k = NULL;
    const char *value = NULL, *file = NULL;
    int i, bad = 0, test = 0;
    char why[WHY_MAX];

    *action = CONFIG_RUN;
    for (i = 1; i < argc; i++) {
        enum arg_kind kind = next_arg(argc, argv, &i, &k, &value,
                                      bad ? NULL : err, errlen);
        if (kind == ARG_HELP || kind == ARG_VERSION) {
            *action = kind == ARG_HELP ? CONFIG_SHOW_HELP : CONFIG_SHOW_VERSION;
            return 0;
        }
        if (kind == ARG_CONFIG)
            file = value; /* the last -c wins, like every other option */
        else if (kind == ARG_TEST)
            test = 1;
        else if (kind == ARG_BAD)
            bad = 1;
    }
    if (bad)
        return -1;
    if (file != NULL) {
        cfy_free(c->config_file);
        if ((c->config_file = cfy_strdup(file)) == NULL) {
            config_say(err, errlen, "command line: -c: out of memory");
            return -1;
        }
        if (config_load_file(c, file, err, errlen) != 0)
            return -1;
    }
    for (i = 1; i < argc; i++) {
        if (next_arg(argc, argv, &i, &k, &value, NULL, 0) != ARG_KEY)
            continue;
        if (config_set_value(c, k, value, why, sizeof why) != 0) {
            config_say(err, errlen, "command line: --%s: %s", k->name, why);
            return -1;
        }
    }
    if (config_check(c, err, errlen) != 0)
        return -1;
    if (test)
        *action = CONFIG_TEST;
    return 0;
}

int config_check(struct cachify_config *c, char *err, size_t errlen)
{
    if (c->max_ttl_ms != 0 && c->default_ttl_ms > c->max_ttl_ms) {
        config_say(err, errlen, "default_ttl_ms (%lld) is larger than max_ttl_ms (%lld)",
            c->default_ttl_ms, c->max_ttl_ms);
        return -1;
    }
    /* A request is one line or several bulk strings, each up to max_line
     * plus its CRLF (one of them, a SET's value, up to max_value_len);
     * four lines' worth and a value is a roomy default. */
    long long max_bulk = c->max_value_len > c->max_line ? c->max_value_len
                                                         : c->max_line;
    if (c->max_request == 0) {
        c->max_request = 4 * c->max_line + c->max_value_len;
    } else if (c->max_request < max_bulk + 2) {
        config_say(err, errlen,
            "max_request (%lld) is smaller than the longest bulk + 2 (%lld: "
            "max_line %lld, max_value_len %lld)",
            c->max_request, max_bulk + 2, c->max_line, c->max_value_len);
        return -1;
    }
    /* Caught here, so --test-config catches it: the start would fail. */
    if (c->metrics_port != 0 && c->metrics_port == c->port) {
        config_say(err, errlen, "metrics_port (%d) is the lock service's port too",
            c->metrics_port);
        return -1;
    }
    if (tls_config_check(c, err, errlen) != 0)
        return -1;
    if (c->recovery_delay_ms == -1)
        c->recovery_delay_ms = c->default_ttl_ms;
    if (c->requirepass_file[0] != '\0' && !c->requirepass_loaded) {
        if (c->requirepass[0] != '\0') {
            config_say(err, errlen, "requirepass and requirepass_file are both set: "
                "keep one");
            return -1;
        }
        if (config_read_password(c, err, errlen) != 0)
            return -1;
    }
    return 0;
}

void config_usage(FILE *out, const char *argv0)
{
    size_t i;

    fprintf(out,
            "Usage: %s [-c FILE] [--name value | --name=value]...\n"
            "\n"
            "  -c, --config FILE  read settings from FILE (no file is read without -c)\n"
            "  -h, --help         print this help and exit\n"
            "  -v, --version      print the version and exit\n"
            "  -t, --test-config  check the settings (-c FILE and --name values),\n"
            "                     print whether they are valid, and exit (0 or 2)\n"
            "  --name value       set the key `name`; wins over the file\n"
            "\n"
            "Keys (name, default, meaning):\n",
            argv0 != NULL ? argv0 : "cachifyd");
    for (i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        char def[64];

        if (k->type == KEY_STRING)
            snprintf(def, sizeof def, "\"%s\"", k->def_str);
        else if (k->type == KEY_ENUM)
            snprintf(def, sizeof def, "%s", k->choices[k->def]);
        else if (k->type == KEY_BOOL)
            snprintf(def, sizeof def, "%s", k->def ? "yes" : "no");
        else
            snprintf(def, sizeof def, "%lld%s%s", k->def,
                     k->unit[0] != '\0' ? " " : "", k->unit);
        fprintf(out, "  %-20s %-15s %s\n", k->name, def, k->help);
    }
}

const char *config_log_level_name(enum log_level level)
{
    if ((unsigned)level < sizeof log_level_names / sizeof log_level_names[0] - 1)
        return log_level_names[level];
    return "unknown";
}

size_t config_key_count(void)
{
    return NKEYS;
}

const char *config_key_name(size_t i)
{
    return i < NKEYS ? keys[i].name : NULL;
}

int config_key_differs(const struct cachify_config *a,
                       const struct cachify_config *b, size_t i)
{
    const struct key *k = &keys[i];
    const void *fa = (const char *)a + k->offset;
    const void *fb = (const char *)b + k->offset;

    if (k->type == KEY_STRING)
        return strcmp(*(char *const *)fa, *(char *const *)fb) != 0;
    return memcmp(fa, fb, k->size) != 0;
}
