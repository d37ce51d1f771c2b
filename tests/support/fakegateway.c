/* tests/support/fakegateway.c - fake etcd gateways and dead members (see
 * fakegateway.h): loopback sockets, the forked HTTP answerer, its end,
 * and the gateways' picks. */
#include "tests/support/fakegateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t g_fake_pid = -1;

/* fg_serve's answer, read by pick_same in the child. */
static const char *g_fake_reply;
static size_t g_fake_len;

int fg_socket(int do_listen, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in;
    socklen_t len = sizeof in;

    if (fd < 0)
        return -1;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&in, sizeof in) != 0 ||
        getsockname(fd, (struct sockaddr *)&in, &len) != 0 ||
        (do_listen && listen(fd, 16) != 0)) {
        close(fd);
        return -1;
    }
    *port = ntohs(in.sin_port);
    return fd;
}

int fg_serve_by(int fd, fg_pick pick)
{
    g_fake_pid = fork();
    if (g_fake_pid < 0)
        return -1;
    if (g_fake_pid == 0) {
        for (;;) {
            int c = accept(fd, NULL, NULL);
            char buf[4096];
            ssize_t got;

            if (c < 0)
                _exit(0);
            got = read(c, buf, sizeof buf - 1);
            if (got > 0) {
                const char *reply;
                size_t n, off = 0;

                buf[got] = '\0';
                pick(buf, &reply, &n);
                while (reply != NULL && off < n) {
                    ssize_t w = write(c, reply + off, n - off);

                    if (w <= 0)
                        break;
                    off += (size_t)w;
                }
            }
            close(c);
        }
    }
    return 0;
}

static void pick_same(const char *request, const char **reply, size_t *n)
{
    (void)request;
    *reply = g_fake_reply;
    *n = g_fake_len;
}

int fg_serve(int fd, const char *reply, size_t n)
{
    g_fake_reply = reply;
    g_fake_len = n;
    return fg_serve_by(fd, pick_same);
}

void fg_stop(void)
{
    if (g_fake_pid > 0) {
        kill(g_fake_pid, SIGKILL);
        waitpid(g_fake_pid, NULL, 0);
        g_fake_pid = -1;
    }
}

const char *fg_http_ok(char *buf, size_t cap, const char *body)
{
    snprintf(buf, cap, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    return buf;
}

/* ---- the gateways (see fakegateway.h for what each answers) ---- */

void fg_no_waits(const char *request, const char **reply, size_t *n)
{
    static const char grant[] = "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n"
                                "{\"ID\":\"7\",\"TTL\":\"5\"}";
    static const char empty[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

    *reply = strstr(request, "/v3/lock/lock") ? NULL
             : strstr(request, "/v3/lease/grant") ? grant : empty;
    *n = *reply ? strlen(*reply) : 0;
}

void fg_no_waits_no_revokes(const char *request, const char **reply, size_t *n)
{
    fg_no_waits(request, reply, n);
    if (strstr(request, "/v3/lease/revoke"))
        *reply = NULL;
}

/* What the fake pool gateways below share: a lease grant's answer (the ID
 * asked for, kept in lease[32]) and a join's (succeeded at revision 50,
 * the pool's count, our entry created at rev).  1 when request was one of
 * those (body[600] filled), else 0. */
static int pool_grant_or_join(const char *request, char *lease,
                              char *body, const char *count,
                              const char *rev)
{
    const char *p = strstr(request, "\"ID\":\"");

    if (strstr(request, "/v3/lease/grant") && p) {
        snprintf(lease, 32, "%.*s", (int)strcspn(p + 6, "\""), p + 6);
        snprintf(body, 600, "{\"ID\":\"%s\",\"TTL\":\"60\"}", lease);
        return 1;
    }
    if (!strstr(request, "request_put"))
        return 0;
    snprintf(body, 600,
             "{\"succeeded\":true,\"header\":{\"revision\":\"50\"},"
             "\"responses\":[{\"response_put\":{}},{\"response_range\":"
             "{\"count\":\"%s\"}},{\"response_range\":{\"kvs\":[{"
             "\"create_revision\":\"%s\",\"lease\":\"%s\"}]}}]}",
             count, rev, lease);
    return 1;
}

void fg_pool_junk(const char *request, const char **reply, size_t *n)
{
    static char out[1024], lease[32];
    char body[600];

    if (pool_grant_or_join(request, lease, body, "-3", "9")) {
        /* answered */
    } else if (strstr(request, "/v3/kv/txn")) {
        snprintf(body, sizeof body,
                 "{\"succeeded\":true,\"responses\":[{\"response_range\":"
                 "{}},{\"response_range\":{\"count\":\"-3\",\"kvs\":[{"
                 "\"value\":\"Mg==\"}]}}]}");
    } else {
        snprintf(body, sizeof body, "{}");
    }
    *reply = fg_http_ok(out, sizeof out, body);
    *n = strlen(*reply);
}

void fg_pool_not_base64(const char *request, const char **reply, size_t *n)
{
    static char out[1024], lease[32];
    static const char entry[] =
        "{\"response_range\":{\"count\":\"1\",\"kvs\":[{\"create_revision\":"
        "\"40\",\"lease\":\"9\",\"value\":\"Mh==\"}]}}";
    char body[600];

    if (strstr(request, "request_put")) { /* a join, refused */
        snprintf(body, sizeof body,
                 "{\"succeeded\":false,\"header\":{\"revision\":\"50\"},"
                 "\"responses\":[{\"response_range\":{}},%s,"
                 "{\"response_range\":{}}]}", entry);
    } else if (pool_grant_or_join(request, lease, body, "1", "50")) {
        /* a lease granted */
    } else if (strstr(request, "/v3/kv/txn")) {
        snprintf(body, sizeof body,
                 "{\"header\":{\"revision\":\"50\"},\"responses\":["
                 "{\"response_range\":{}},%s,{\"response_range\":{}}]}",
                 entry);
    } else {
        snprintf(body, sizeof body, "{}");
    }
    *reply = fg_http_ok(out, sizeof out, body);
    *n = strlen(*reply);
}

int fg_odd_kvs;

void fg_pool_odd(const char *request, const char **reply, size_t *n)
{
    static char out[1024], lease[32];
    char body[600];

    if (pool_grant_or_join(request, lease, body, "3", "50")) {
        /* answered */
    } else if (strstr(request, "min_create_revision")) { /* a slot's find */
        snprintf(body, sizeof body,
                 "{\"responses\":[{\"response_range\":{}},"
                 "{\"response_range\":{\"kvs\":[{\"create_revision\":"
                 "\"50\",\"lease\":\"77\",\"value\":\"Mg==\"}]}}%s]}",
                 fg_odd_kvs ? ",{\"response_range\":{\"kvs\":{}}}" : "");
    } else if (strstr(request, "max_create_revision")) { /* a poll */
        snprintf(body, sizeof body,
                 "{\"responses\":[{\"response_range\":{\"kvs\":[{"
                 "\"create_revision\":\"50\",\"lease\":\"%s\"}]}}%s]}",
                 lease,
                 fg_odd_kvs ? ",{\"response_range\":{\"kvs\":\"x\"}}" : "");
    } else {
        snprintf(body, sizeof body, "{}");
    }
    *reply = fg_http_ok(out, sizeof out, body);
    *n = strlen(*reply);
}

void fg_lost_grant(const char *request, const char **reply, size_t *n)
{
    static char first_id[64];
    static const char exists[] =
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 98\r\n\r\n"
        "{\"error\":\"etcdserver: lease already exists\",\"code\":9,"
        "\"message\":\"etcdserver: lease already exists\"}";
    static const char second[] =
        "HTTP/1.1 500 Oops\r\nContent-Length: 38\r\n\r\n"
        "{\"message\":\"a second lease\",\"code\":13}";
    static const char txn[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n"
        "{\"succeeded\":true,\"header\":{\"revision\":\"42\"}}";
    static const char empty[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    const char *id = strstr(request, "\"ID\":\"");

    if (strstr(request, "/v3/lease/grant") == NULL) {
        *reply = strstr(request, "/v3/kv/txn") ? txn : empty;
    } else if (first_id[0] == '\0') {
        snprintf(first_id, sizeof first_id, "%.40s", id ? id : "none");
        *reply = NULL;
    } else {
        *reply = id && strncmp(id, first_id, strlen(first_id)) == 0
                     ? exists : second;
    }
    *n = *reply ? strlen(*reply) : 0;
}

struct fg_seen_move *fg_seen;

int fg_seen_reset(void)
{
    if (fg_seen == NULL) {
        void *m = mmap(NULL, sizeof *fg_seen, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        if (m == MAP_FAILED)
            return -1;
        fg_seen = m;
    }
    memset(fg_seen, 0, sizeof *fg_seen);
    return 0;
}

/* Notes in fg_seen a revoke request of the move's new lease. */
static void seen_revoke(const char *request)
{
    const char *p = strstr(request, "\"ID\":\"");
    size_t len = strlen(fg_seen->new_lease);

    if (strstr(request, "/v3/lease/revoke") && p && len > 0 &&
        strncmp(p + 6, fg_seen->new_lease, len) == 0 && p[6 + len] == '"')
        fg_seen->new_revoked = 1;
}

void fg_lost_move(const char *request, const char **reply, size_t *n)
{
    static char out[1024], first_lease[32];
    static int grants;
    char body[512], id[32] = "";
    const char *p = strstr(request, "\"ID\":\"");
    if (p)
        snprintf(id, sizeof id, "%.*s", (int)strcspn(p + 6, "\""), p + 6);
    if (strstr(request, "/v3/lease/grant")) {
        grants++;
        snprintf(grants == 1 ? first_lease : fg_seen->new_lease, 32, "%s",
                 id);
        snprintf(body, sizeof body, "{\"ID\":\"%s\",\"TTL\":\"60\"}", id);
        *reply = fg_http_ok(out, sizeof out, body);
    } else if (strstr(request, "/v3/kv/txn") &&
               strstr(request, "\"compare\"")) {
        /* The acquire's transaction, or the move (whose answer is lost). */
        *reply = grants >= 2 ? NULL
                 : fg_http_ok(out, sizeof out, "{\"succeeded\":true,\"header\":"
                           "{\"revision\":\"42\"}}");
    } else if (strstr(request, "/v3/lease/timetolive")) {
        snprintf(body, sizeof body, "{\"ID\":\"%s\",\"TTL\":\"50\","
                 "\"grantedTTL\":\"60\"}", id);
        *reply = fg_http_ok(out, sizeof out, body);
    } else if (strstr(request, "/v3/kv/range") ||
               strstr(request, "/v3/kv/txn")) {
        /* The holder: on the first lease before the move, on the new one
         * after it.  The extend reads it with the key's pool (none) in a
         * read-only transaction; the check after the lost move, alone. */
        int txn = strstr(request, "/v3/kv/txn") != NULL;
        snprintf(body, sizeof body, "%s{\"kvs\":[{\"key\":\"aw==\","
                 "\"create_revision\":\"42\",\"lease\":\"%s\"}],"
                 "\"count\":\"1\"}%s",
                 txn ? "{\"succeeded\":true,\"responses\":[{"
                       "\"response_range\":" : "",
                 grants >= 2 ? fg_seen->new_lease : first_lease,
                 txn ? "},{\"response_range\":{}}]}" : "");
        *reply = fg_http_ok(out, sizeof out, body);
    } else {
        seen_revoke(request);
        *reply = fg_http_ok(out, sizeof out, "{}");
    }
    *n = *reply ? strlen(*reply) : 0;
}

void fg_slow_move(const char *request, const char **reply, size_t *n)
{
    static char out[1024];
    char body[600];
    const char *p = strstr(request, "\"ID\":\"");

    seen_revoke(request);
    if (strstr(request, "/v3/lease/grant") && p) {
        snprintf(fg_seen->new_lease, sizeof fg_seen->new_lease, "%.*s",
                 (int)strcspn(p + 6, "\""), p + 6);
        usleep(500000); /* the handle is closed meanwhile */
        snprintf(body, sizeof body, "{\"ID\":\"%s\",\"TTL\":\"60\"}",
                 fg_seen->new_lease);
    } else if (strstr(request, "/v3/lease/timetolive")) {
        snprintf(body, sizeof body,
                 "{\"ID\":\"77\",\"TTL\":\"4\",\"grantedTTL\":\"5\"}");
    } else if (strstr(request, "min_create_revision")) { /* the slot */
        snprintf(body, sizeof body,
                 "{\"responses\":[{\"response_range\":{}},"
                 "{\"response_range\":{\"kvs\":[{\"key\":\"cA==\","
                 "\"create_revision\":\"50\",\"lease\":\"77\","
                 "\"value\":\"Mg==\"}]}},{\"response_range\":{}}]}");
    } else {
        snprintf(body, sizeof body, "{}");
    }
    *reply = fg_http_ok(out, sizeof out, body);
    *n = strlen(*reply);
}
