/* client/url.h - internal: parsing the URL given to cachify_open and
 * cachify_async_open.
 *
 * Owns: turning a URL string into a backend and its address, with a clear
 * message for a bad one.  Does not own: connecting, or DNS (the host is kept
 * as text; the connecting code resolves it).  No allocation: every field is
 * a bounded array, and the bounds are those of what cachifyd accepts.
 *
 *   cachify://[:password@]host[:port][/]   TCP; port 7379 by default; host a
 *                                          name, an IPv4 address, or an IPv6
 *                                          address in brackets ([::1])
 *   cachifys://[:password@]host[:port][/][?ca=PATH&cert=PATH&key=PATH&servername=NAME]
 *                                          TCP with TLS (client/tls.h); port
 *                                          7380 by default (cachifyd's
 *                                          tls_port has none: 7380 is the
 *                                          convention, one above 7379).  The
 *                                          options, each at most once:
 *                                          ca: the CA file (or hashed
 *                                          directory) the server's
 *                                          certificate must chain to, else
 *                                          the system's default CAs;
 *                                          cert and key, both or neither:
 *                                          the client certificate (PEM);
 *                                          servername: the name to check in
 *                                          the server's certificate and send
 *                                          as SNI, else host
 *   unix:///absolute/path                  Unix socket
 *   mem:   NULL   ""                       the embedded backend
 *   etcd://[user:password@]host[:port][,host[:port]...][/][?prefix=P]
 *                                          an etcd cluster (port 2379), its
 *                                          members in the order to try them;
 *                                          P: where the locks live in etcd's
 *                                          key space ("cachify/" by default)
 *
 * The password is everything between "://:" and the last '@', taken
 * literally (no percent-decoding), so it may itself hold ':' or '@'; an
 * empty one (":@") means none.  In cachifys:// the query starts at the
 * first '?' after that '@' (so a password may hold '?'), and its values are
 * percent-decoded: write '@' as %40, '&' as %26, '%' as %25.
 */
#ifndef CACHIFY_CLIENT_URL_H
#define CACHIFY_CLIENT_URL_H

#include <stddef.h>

/* cachifyd's requirepass is at most 512 bytes. */
#define CACHIFY_URL_PASSWORD_MAX 512
/* DNS names are at most 253 bytes. */
#define CACHIFY_URL_HOST_MAX 255
/* sizeof(struct sockaddr_un.sun_path) on Linux, with its NUL. */
#define CACHIFY_URL_PATH_MAX 108
/* Members of an etcd cluster named in one URL: clusters have 3 to 7. */
#define CACHIFY_URL_ENDPOINTS_MAX 9
/* etcd user names: bounded like the password. */
#define CACHIFY_URL_USER_MAX 255
/* etcd key prefix: well under etcd's request limit, with room for keys. */
#define CACHIFY_URL_ETCD_PREFIX_MAX 255
#define CACHIFY_URL_ETCD_PREFIX_DEFAULT "cachify/"
/* A file named by a cachifys:// option: PATH_MAX on Linux, with its NUL. */
#define CACHIFY_URL_FILE_MAX 4096

enum cachify_url_kind {
    CACHIFY_URL_MEM,  /* the embedded store */
    CACHIFY_URL_TCP,  /* host, port; tls and its options for cachifys:// */
    CACHIFY_URL_UNIX, /* path */
    CACHIFY_URL_ETCD, /* endpoints, user, password, etcd_prefix */
};

struct cachify_url_endpoint {
    char host[CACHIFY_URL_HOST_MAX + 1]; /* without brackets */
    int port;
};

/* The options of a cachifys:// URL; "" is an option not given. */
struct cachify_url_tls {
    char ca[CACHIFY_URL_FILE_MAX];
    char cert[CACHIFY_URL_FILE_MAX];
    char key[CACHIFY_URL_FILE_MAX];
    char servername[CACHIFY_URL_HOST_MAX + 1];
};

struct cachify_url {
    enum cachify_url_kind kind;
    char host[CACHIFY_URL_HOST_MAX + 1]; /* TCP: without brackets */
    int port;                            /* TCP: 1..65535 */
    int tls;                             /* TCP: 1 for cachifys:// */
    struct cachify_url_tls tlsopt;       /* TCP with tls */
    char path[CACHIFY_URL_PATH_MAX];     /* UNIX */
    char password[CACHIFY_URL_PASSWORD_MAX + 1]; /* "" when none */
    /* ETCD */
    int nendpoints;                      /* 1..CACHIFY_URL_ENDPOINTS_MAX */
    struct cachify_url_endpoint endpoints[CACHIFY_URL_ENDPOINTS_MAX];
    char user[CACHIFY_URL_USER_MAX + 1]; /* "" when none */
    char etcd_prefix[CACHIFY_URL_ETCD_PREFIX_MAX + 1];
};

/* Parses url (NULL means "mem:") into *out.  Returns CACHIFY_OK, or
 * CACHIFY_ERR_ARG with a message naming the problem in err[errlen] (err
 * may be NULL). */
int cachify_url_parse(const char *url, struct cachify_url *out, char *err,
                      size_t errlen);

#endif
