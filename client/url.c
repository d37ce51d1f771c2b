/* client/url.c - parsing cachify://, cachifys://, unix://, etcd:// and mem:
 * URLs (implements client/url.h).
 *
 * Owns: the URL grammar (cachify://, cachifys:// with its TLS options,
 * unix://, mem: and etcd://) and its error messages.  Does no I/O and no
 * allocation.  Strict on purpose: anything it does not understand (a query
 * string where none belongs, an unknown TLS option, a user name, a path
 * after host:port, a port out of range) is an error that says what was
 * wrong, rather than a guess that connects somewhere unexpected or, worse,
 * a TLS connection that checks less than its URL asked for.  Whether the
 * files a cachifys:// URL names can be read is client/tls.c's to say.
 */
#include "client/url.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cachify.h"
#include "client/wire.h"

#define DEFAULT_PORT 7379
#define DEFAULT_TLS_PORT 7380
#define DEFAULT_ETCD_PORT 2379

/* Copies s[0..n) into dst[cap] with a NUL.  0, or -1 when it does not fit. */
static int copy_n(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Parses "1".."65535" from s[0..n).  The port, or -1. */
static int parse_port(const char *s, size_t n)
{
    long v = 0;

    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* A host name or IPv4 address: letters, digits, '-', '.', '_'. */
static int host_chars_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_'))
            return 0;
    }
    return 1;
}

/* An IPv6 literal (inside brackets): hex digits, ':', '.', and a zone
 * "%eth0" after it. */
static int ipv6_chars_ok(const char *s, size_t n)
{
    int zone = 0;

    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (ch == '%' && !zone && i > 0) {
            zone = 1;
            continue;
        }
        if (zone ? host_chars_ok(&ch, 1)
                 : ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                    (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.'))
            continue;
        return 0;
    }
    return n > 0 && memchr(s, ':', n) != NULL;
}

/* Parses one host[:port] from hp[0..end) (host a name, an IPv4 address or
 * an IPv6 one in brackets) into host[CACHIFY_URL_HOST_MAX + 1] and *port
 * (dflt when none is given).  url is for messages. */
static int parse_hostport(const char *url, const char *hp, const char *end,
                          int dflt, char *host, int *port, char *err,
                          size_t errlen)
{
    const char *colon;
    size_t n;

    if (hp == end)
        return wire_refuse(err, errlen, "bad URL \"%s\": no host", url);
    if (*hp == '[') {
        const char *close = memchr(hp, ']', (size_t)(end - hp));

        if (close == NULL)
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": '[' without ']'", url);
        n = (size_t)(close - hp - 1);
        if (!ipv6_chars_ok(hp + 1, n))
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": not an IPv6 address in "
                               "brackets", url);
        if (close + 1 < end && close[1] != ':')
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": junk after ']'", url);
        if (copy_n(host, CACHIFY_URL_HOST_MAX + 1, hp + 1, n) != 0)
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": host too long", url);
        colon = close + 1 < end ? close + 1 : NULL;
    } else {
        colon = memchr(hp, ':', (size_t)(end - hp));
        n = (size_t)((colon ? colon : end) - hp);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": write an IPv6 address in "
                               "brackets, as cachify://[::1]:7379", url);
        if (n == 0 || !host_chars_ok(hp, n))
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": bad host name", url);
        if (copy_n(host, CACHIFY_URL_HOST_MAX + 1, hp, n) != 0)
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": host too long", url);
    }
    *port = dflt;
    if (colon != NULL) {
        *port = parse_port(colon + 1, (size_t)(end - colon - 1));
        if (*port < 0)
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": port must be a number from "
                               "1 to 65535", url);
    }
    return CACHIFY_OK;
}

/* Copies s[0..n) into dst[cap] with its %XX escapes decoded.  0; -1 when
 * it does not fit; -2 for a bad escape or an escaped NUL (a C string
 * would end there, and a file name cannot hold one). */
static int pct_decode(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (ch == '%') {
            char hex[3];

            if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return -2;
            hex[0] = s[i + 1];
            hex[1] = s[i + 2];
            hex[2] = '\0';
            ch = (char)strtol(hex, NULL, 16);
            if (ch == '\0')
                return -2;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        dst[o++] = ch;
    }
    dst[o] = '\0';
    return 0;
}

/* The options of cachifys://: name, where the value goes, its bound. */
static const struct {
    const char *name;
    size_t off, cap;
} TLS_OPTIONS[] = {
    {"ca", offsetof(struct cachify_url_tls, ca), CACHIFY_URL_FILE_MAX},
    {"cert", offsetof(struct cachify_url_tls, cert), CACHIFY_URL_FILE_MAX},
    {"key", offsetof(struct cachify_url_tls, key), CACHIFY_URL_FILE_MAX},
    {"servername", offsetof(struct cachify_url_tls, servername),
     CACHIFY_URL_HOST_MAX + 1},
};

/* Parses the query of a cachifys:// URL, q[0..n) after the '?': NAME=VALUE
 * pairs joined by '&', each option of TLS_OPTIONS at most once, values
 * percent-decoded and not empty; cert and key together or not at all. */
static int parse_tls_query(const char *url, const char *q, size_t n,
                           struct cachify_url_tls *t, char *err,
                           size_t errlen)
{
    const char *end = q + n;

    while (q <= end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        size_t i, namelen = (size_t)((eq ? eq : stop) - q);
        char *dst;
        int rc;

        for (i = 0; i < sizeof TLS_OPTIONS / sizeof TLS_OPTIONS[0]; i++)
            if (strlen(TLS_OPTIONS[i].name) == namelen &&
                memcmp(TLS_OPTIONS[i].name, q, namelen) == 0)
                break;
        if (i == sizeof TLS_OPTIONS / sizeof TLS_OPTIONS[0])
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": unknown option \"%.*s\" "
                               "(cachifys:// takes ca=, cert=, key= and "
                               "servername=)", url,
                               (int)(namelen > 64 ? 64 : namelen), q);
        dst = (char *)t + TLS_OPTIONS[i].off;
        if (dst[0] != '\0')
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": option %s given twice", url,
                               TLS_OPTIONS[i].name);
        if (eq == NULL || eq + 1 == stop)
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": option %s needs a value "
                               "(%s=...)", url, TLS_OPTIONS[i].name,
                               TLS_OPTIONS[i].name);
        rc = pct_decode(dst, TLS_OPTIONS[i].cap, eq + 1,
                        (size_t)(stop - eq - 1));
        if (rc == -1)
            return wire_refuse(err, errlen,
                               "bad URL: option %s longer than %zu bytes",
                               TLS_OPTIONS[i].name, TLS_OPTIONS[i].cap - 1);
        if (rc != 0)
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": option %s: bad %%-escape "
                               "(write %%XX, two hex digits, not %%00)", url,
                               TLS_OPTIONS[i].name);
        if (amp == NULL)
            break;
        q = amp + 1;
    }
    if ((t->cert[0] == '\0') != (t->key[0] == '\0'))
        return wire_refuse(err, errlen,
                           "bad URL \"%s\": a client certificate needs both "
                           "cert= and key=", url);
    if (t->servername[0] != '\0' &&
        !host_chars_ok(t->servername, strlen(t->servername)) &&
        !ipv6_chars_ok(t->servername, strlen(t->servername)))
        return wire_refuse(err, errlen,
                           "bad URL \"%s\": servername must be a host name "
                           "or an address", url);
    return CACHIFY_OK;
}

/* Parses the part after "cachify://" (tls 0) or "cachifys://" (tls 1). */
static int parse_tcp(const char *url, const char *s, int tls,
                     struct cachify_url *out, char *err, size_t errlen)
{
    const char *at = strrchr(s, '@'), *hp, *end, *q;
    int rc;

    if (at != NULL) {
        if (s[0] != ':')
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": user names are not "
                               "supported; write %s://:password@host%s",
                               url, tls ? "cachifys" : "cachify",
                               tls ? " (and '@' in an option as %40)" : "");
        if (copy_n(out->password, sizeof out->password, s + 1,
                   (size_t)(at - s - 1)) != 0)
            return wire_refuse(err, errlen,
                               "bad URL: password longer than %d bytes",
                               CACHIFY_URL_PASSWORD_MAX);
        hp = at + 1;
    } else {
        hp = s;
    }
    q = tls ? strchr(hp, '?') : NULL;
    end = q ? q : hp + strlen(hp);
    if (end > hp && end[-1] == '/')
        end--; /* one trailing slash is harmless */
    if (memchr(hp, '/', (size_t)(end - hp)) || memchr(hp, '?', (size_t)(end - hp)))
        return wire_refuse(err, errlen,
                           "bad URL \"%s\": nothing may follow host:port%s",
                           url, tls ? " but ?options"
                                    : " (TLS options need cachifys://)");
    rc = parse_hostport(url, hp, end, tls ? DEFAULT_TLS_PORT : DEFAULT_PORT,
                        out->host, &out->port, err, errlen);
    if (rc == CACHIFY_OK && q != NULL)
        rc = parse_tls_query(url, q + 1, strlen(q + 1), &out->tlsopt, err,
                             errlen);
    if (rc == CACHIFY_OK) {
        out->kind = CACHIFY_URL_TCP;
        out->tls = tls;
    }
    return rc;
}

/* Parses the query of an etcd:// URL, q[0..n) after the '?': only
 * "prefix=P" (P taken literally, "" allowed: the whole key space). */
static int parse_etcd_query(const char *url, const char *q, size_t n,
                            struct cachify_url *out, char *err, size_t errlen)
{
    if (n < 7 || memcmp(q, "prefix=", 7) != 0 || memchr(q, '&', n) != NULL)
        return wire_refuse(err, errlen,
                           "bad URL \"%s\": the only option is ?prefix=",
                           url);
    if (copy_n(out->etcd_prefix, sizeof out->etcd_prefix, q + 7, n - 7) != 0)
        return wire_refuse(err, errlen,
                           "bad URL: etcd prefix longer than %d bytes",
                           CACHIFY_URL_ETCD_PREFIX_MAX);
    return CACHIFY_OK;
}

/* Parses the part after "etcd://": credentials, the comma-separated
 * members, the query. */
static int parse_etcd(const char *url, const char *s, struct cachify_url *out,
                      char *err, size_t errlen)
{
    const char *q = strchr(s, '?'), *at, *hp, *end;
    int rc;

    snprintf(out->etcd_prefix, sizeof out->etcd_prefix, "%s",
             CACHIFY_URL_ETCD_PREFIX_DEFAULT);
    end = q ? q : s + strlen(s);
    if (q != NULL &&
        (rc = parse_etcd_query(url, q + 1, strlen(q + 1), out, err,
                               errlen)) != CACHIFY_OK)
        return rc;
    /* The last '@' before the query ends the credentials. */
    at = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == '@')
            at = p;
    hp = s;
    if (at != NULL) {
        const char *colon = memchr(s, ':', (size_t)(at - s));

        if (colon == NULL || colon == s)
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": write "
                               "etcd://user:password@host", url);
        if (copy_n(out->user, sizeof out->user, s, (size_t)(colon - s)) != 0)
            return wire_refuse(err, errlen,
                               "bad URL: user name longer than %d bytes",
                               CACHIFY_URL_USER_MAX);
        if (copy_n(out->password, sizeof out->password, colon + 1,
                   (size_t)(at - colon - 1)) != 0)
            return wire_refuse(err, errlen,
                               "bad URL: password longer than %d bytes",
                               CACHIFY_URL_PASSWORD_MAX);
        hp = at + 1;
    }
    if (end > hp && end[-1] == '/')
        end--;
    if (memchr(hp, '/', (size_t)(end - hp)))
        return wire_refuse(err, errlen,
                           "bad URL \"%s\": nothing but ?prefix= may follow "
                           "the members", url);
    while (1) {
        const char *comma = memchr(hp, ',', (size_t)(end - hp));
        const char *stop = comma ? comma : end;
        struct cachify_url_endpoint *ep;

        if (out->nendpoints == CACHIFY_URL_ENDPOINTS_MAX)
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": more than %d members", url,
                               CACHIFY_URL_ENDPOINTS_MAX);
        ep = &out->endpoints[out->nendpoints++];
        rc = parse_hostport(url, hp, stop, DEFAULT_ETCD_PORT, ep->host,
                            &ep->port, err, errlen);
        if (rc != CACHIFY_OK)
            return rc;
        if (comma == NULL)
            break;
        hp = comma + 1;
    }
    out->kind = CACHIFY_URL_ETCD;
    return CACHIFY_OK;
}

/* The URL as messages show it: the credentials (between "://" and the last
 * '@') replaced by "***", so a password never lands in a log; cut to fit
 * shown. */
static void redact(const char *url, char *shown, size_t cap)
{
    const char *at = strrchr(url, '@');

    if (strncmp(url, "cachify://", 10) == 0 && at != NULL)
        snprintf(shown, cap, "cachify://***%s", at);
    else if (strncmp(url, "cachifys://", 11) == 0 && at != NULL)
        snprintf(shown, cap, "cachifys://***%s", at);
    else if (strncmp(url, "etcd://", 7) == 0 && at != NULL)
        snprintf(shown, cap, "etcd://***%s", at);
    else
        snprintf(shown, cap, "%s", url);
}

int cachify_url_parse(const char *url, struct cachify_url *out, char *err,
                      size_t errlen)
{
    char shown[256];

    memset(out, 0, sizeof *out);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (url == NULL || url[0] == '\0' || strcmp(url, "mem:") == 0) {
        out->kind = CACHIFY_URL_MEM;
        return CACHIFY_OK;
    }
    redact(url, shown, sizeof shown);
    if (strncmp(url, "cachify://", 10) == 0)
        return parse_tcp(shown, url + 10, 0, out, err, errlen);
    if (strncmp(url, "cachifys://", 11) == 0)
        return parse_tcp(shown, url + 11, 1, out, err, errlen);
    if (strncmp(url, "etcd://", 7) == 0)
        return parse_etcd(shown, url + 7, out, err, errlen);
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7;

        if (path[0] != '/')
            return wire_refuse(err, errlen,
                               "bad URL \"%s\": write unix:///absolute/path",
                               shown);
        if (copy_n(out->path, sizeof out->path, path, strlen(path)) != 0)
            return wire_refuse(err, errlen,
                               "bad URL: socket path longer than %d bytes",
                               CACHIFY_URL_PATH_MAX - 1);
        out->kind = CACHIFY_URL_UNIX;
        return CACHIFY_OK;
    }
    return wire_refuse(err, errlen,
                       "bad URL \"%s\": expected "
                       "cachify://[:password@]host[:port], cachifys://..., "
                       "unix:///path, "
                       "etcd://host[:port][,host[:port]...] or mem:",
                       shown);
}
