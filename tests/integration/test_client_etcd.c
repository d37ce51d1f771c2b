/* tests/integration/test_client_etcd.c - what only the etcd:// backend
 * has, against a real three-member cluster (tests/support/etcdcluster.c)
 * and against fake gateways.
 *
 * Owns: moving on past members that refuse connections or do not answer,
 * the end when no member answers (ERR_IO within the caller's time), key
 * prefixes that keep locks apart (the URL's, and keys holding '/' or '%'),
 * gateways that answer junk (pool answers too), errors or oversized
 * bodies, a member killed under the handles' feet (locks and pools),
 * pools' entries beside the locks' (keys that look alike stay apart, a
 * wait that gives up leaves the queue, entries someone else wrote are
 * never taken for a slot), and etcd authentication (user:password@ in the
 * URL; enabled last, since it changes the cluster for every later test).
 * The calls themselves are the conformance suites' (test_client_sync.c,
 * test_client_async.c, test_client_pool.c, test_client_async_pool.c); the
 * dead members' sockets, the fake gateways' server and what each fake
 * gateway answers are tests/support/fakegateway.c's (fg_*), what the
 * client must make of it is here.
 */
#include "tests/integration/itest.h"

#include <event2/event.h>

#include "client/cachify.h"
#include "tests/integration/backends.h"
#include "tests/support/fakegateway.h"

static struct cachify *open_url(const char *url, int io_ms, int want,
                                char *err, size_t errlen)
{
    struct cachify_options o = {0, io_ms, 0, NULL, 0};
    struct cachify *c = NULL;
    int rc = cachify_open(&c, url, &o, err, errlen);

    ck_assert_msg(rc == want, "cachify_open(%s): %s: %s", url,
                  cachify_status_name(rc), err);
    return c;
}

/* etcd://<extra members first>,<the cluster's> with the test's prefix. */
static void url_with(const char *first, char *buf, size_t cap)
{
    char cluster[512];

    bk_etcd_url(NULL, cluster, sizeof cluster);
    snprintf(buf, cap, "etcd://%s,%s", first, cluster + 7);
}

START_TEST(dead_and_silent_members)
{
    int dead_port, silent_port;
    int dead = fg_socket(0, &dead_port), silent = fg_socket(1, &silent_port);
    char first[64], url[700], err[256];
    struct cachify *c;
    uint64_t t;

    ck_assert(dead >= 0 && silent >= 0);
    /* A refused connection costs nothing: on to the next member. */
    snprintf(first, sizeof first, "127.0.0.1:%d", dead_port);
    url_with(first, url, sizeof url);
    c = open_url(url, 3000, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_acquire(c, "k", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_release(c, "k", t), 1);
    cachify_close(c);
    /* A member that takes the connection and never answers gets its share
     * of the io timeout, then the next one answers. */
    snprintf(first, sizeof first, "127.0.0.1:%d", silent_port);
    url_with(first, url, sizeof url);
    c = open_url(url, 3000, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_acquire(c, "k", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(c, "k"), 1);
    ck_assert_int_eq(cachify_release(c, "k", t), 1);
    cachify_close(c);
    close(dead);
    close(silent);
}
END_TEST

START_TEST(no_member_answers)
{
    int p1, p2, s1 = fg_socket(0, &p1), s2 = fg_socket(1, &p2);
    char url[128], err[256], want[128];
    double start = mono_s();

    ck_assert(s1 >= 0 && s2 >= 0);
    snprintf(url, sizeof url, "etcd://127.0.0.1:%d,127.0.0.1:%d", p1, p2);
    open_url(url, 1500, CACHIFY_ERR_IO, err, sizeof err);
    /* Within the caller's time (plus the last attempt's floor), not
     * hanging on the silent member. */
    ck_assert_msg(mono_s() - start < 10, "took %.1f s", mono_s() - start);
    snprintf(want, sizeof want, "etcd: no member answered in time (last: ");
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    close(s1);
    close(s2);
}
END_TEST

START_TEST(prefixes_keep_locks_apart)
{
    char url[512], other[512], err[256];
    struct cachify *a, *b;
    uint64_t t[4];

    bk_etcd_url(NULL, url, sizeof url);
    bk_etcd_url(NULL, other, sizeof other);
    a = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    b = open_url(other, 0, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_acquire(a, "k", NULL, &t[0]), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(b, "k"), 0);
    ck_assert_int_eq(cachify_acquire(b, "k", NULL, &t[1]), CACHIFY_OK);
    ck_assert_uint_gt(t[1], t[0]); /* one cluster, one revision counter */
    /* "x", "x/y" and "x%2Fy" are three locks, and none holds "x"'s
     * range. */
    ck_assert_int_eq(cachify_acquire(a, "x/y", NULL, &t[2]), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(a, "x"), 0);
    ck_assert_int_eq(cachify_acquire(a, "x%2Fy", NULL, &t[3]), CACHIFY_OK);
    ck_assert_int_eq(cachify_acquire(a, "x", NULL, &t[0]), CACHIFY_OK);
    ck_assert_int_eq(cachify_release(a, "x", t[0]), 1);
    ck_assert_int_eq(cachify_is_locked(a, "x/y"), 1);
    ck_assert_int_eq(cachify_is_locked(a, "x%2Fy"), 1);
    ck_assert_int_eq(cachify_force_release(a, "x/y"), 1);
    ck_assert_int_eq(cachify_is_locked(a, "x%2Fy"), 1);
    ck_assert_int_eq(cachify_release(a, "x%2Fy", t[3]), 1);
    cachify_close(a);
    cachify_close(b);
}
END_TEST

/* Writes key (under the running test's prefix) = value with no lease,
 * as another program sharing the prefix might. */
static void put_raw(const char *key, const char *value)
{
    char name[256], k64[400], v64[200], body[1024];
    size_t n = (size_t)snprintf(name, sizeof name, "%s%s", g_bk_prefix, key);

    base64_encode(name, n, k64);
    base64_encode(value, strlen(value), v64);
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k64,
             v64);
    ck_assert_int_eq(ec_post(&g_ec, 0, "/v3/kv/put", body, NULL, NULL, 0),
                     200);
}

/* A pool's entries live under key + "%P/", beside the lock's key + "/":
 * the lock "x%P" (stored as x%25P) is no part of the pool "x".  A wait
 * that runs out leaves the queue.  An entry nobody's client wrote (no
 * size in it) makes the pool refuse, never count it as a slot. */
START_TEST(pools_beside_locks)
{
    char url[512], err[256];
    struct cachify *a, *b;
    uint64_t p1 = 0, l1 = 0, t = 0;
    struct cachify_lock_opts brief = {0, 300, 0, 0, 0};

    bk_etcd_url(NULL, url, sizeof url);
    a = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    b = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_pool_acquire(a, "x", 1, NULL, &p1), CACHIFY_OK);
    ck_assert_int_eq(bk_etcd_pool_entries("x"), 1);
    ck_assert_int_eq(bk_etcd_takers("x"), 0);
    ck_assert_int_eq(cachify_acquire(a, "x%P", NULL, &l1), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(a, "x%P"), 1);
    ck_assert_int_eq(cachify_pool_size(a, "x"), 1);
    ck_assert_int_eq(cachify_acquire(b, "x", NULL, &t), CACHIFY_ERR_TYPE);
    ck_assert_str_eq(cachify_errstr(b),
                     "WRONGTYPE Operation against a pool key: use "
                     "POOL_ACQUIRE, POOL_RELEASE, POOL_SIZE or POOL_EXTEND");
    ck_assert_int_eq(cachify_pool_acquire(b, "x%P", 1, NULL, &t),
                     CACHIFY_ERR_TYPE);
    ck_assert_str_eq(cachify_errstr(b),
                     "WRONGTYPE Operation against a lock key: POOL_* "
                     "commands need a pool key or a free one");
    /* A waiter queues an entry; when its wait runs out, the entry goes
     * (its lease revoked by the handle, within seconds). */
    ck_assert_int_eq(cachify_pool_acquire(b, "x", 1, &brief, &t),
                     CACHIFY_TIMEOUT);
    ck_assert_str_eq(cachify_errstr(b), "x pool is full");
    for (int i = 0; i < 250 && bk_etcd_pool_entries("x") != 1; i++)
        usleep(20000);
    ck_assert_int_eq(bk_etcd_pool_entries("x"), 1);
    ck_assert_int_eq(cachify_pool_release(b, "x", p1), 1);
    ck_assert_int_eq(bk_etcd_pool_entries("x"), 0);
    ck_assert_int_eq(cachify_release(a, "x%P", l1), 1);
    /* Someone else's entry under a pool's range: no size in it. */
    put_raw("j%P/junk", "not a size");
    ck_assert_int_eq(cachify_pool_size(a, "j"), 0);
    ck_assert_int_eq(cachify_pool_acquire(a, "j", 2, NULL, &t),
                     CACHIFY_ERR_TYPE);
    ck_assert_str_eq(cachify_errstr(a),
                     "WRONGSIZE the pool has max_size 0, not 2: a pool keeps "
                     "its size while a slot is held or requested");
    ck_assert_int_eq(cachify_pool_force_release(a, "j"), 0);
    ck_assert_int_eq(cachify_pool_release(a, "j", 5), 0);
    ck_assert_int_eq(cachify_is_locked(a, "j"), 0);
    cachify_close(a);
    cachify_close(b);
}
END_TEST

/* EXTEND to the lease's own TTL renews the lease (a keep-alive); to
 * another TTL it moves the lock to a new lease.  The token stays. */
START_TEST(extend_renews_or_moves)
{
    struct cachify_lock_opts five = {1, 0, 5000, 0, 0};
    char url[512], err[256];
    struct cachify *c;
    long long ms = 0;
    uint64_t t;

    bk_etcd_url(NULL, url, sizeof url);
    c = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_acquire(c, "k", &five, &t), CACHIFY_OK);
    /* Bounds with a second to spare for a slow call on a loaded box:
     * unrenewed, at most 2 s are left after this sleep; renewed, 5. */
    usleep(3100 * 1000);
    ck_assert_int_eq(cachify_pttl(c, "k", &ms), CACHIFY_OK);
    ck_assert_msg(ms > 0 && ms <= 2000, "pttl %lld", ms);
    ck_assert_int_eq(cachify_extend(c, "k", t, 5000), 1); /* renewed */
    ck_assert_int_eq(cachify_pttl(c, "k", &ms), CACHIFY_OK);
    ck_assert_msg(ms > 3000 && ms <= 5000, "pttl %lld", ms);
    ck_assert_int_eq(cachify_extend(c, "k", t + 1, 5000), 0);
    ck_assert_int_eq(cachify_extend(c, "k", t, 9000), 1); /* moved */
    ck_assert_int_eq(cachify_pttl(c, "k", &ms), CACHIFY_OK);
    ck_assert_msg(ms > 7000 && ms <= 9000, "pttl %lld", ms);
    ck_assert_int_eq(cachify_extend(c, "k", t, 9000), 1); /* renewed */
    ck_assert_int_eq(cachify_release(c, "k", t), 1);      /* same token */
    ck_assert_int_eq(cachify_extend(c, "k", t, 9000), 0);
    cachify_close(c);
}
END_TEST

/* A SESSION lock outlives its 6 s lease while its handle lives (the sync
 * handle's thread renews it with no call made), ends at its own expiry,
 * and ends at once when the handle closes. */
START_TEST(session_renewed_between_calls)
{
    struct cachify_lock_opts forever = {1, 0, CACHIFY_EXP_NONE, 1, 0};
    struct cachify_lock_opts three = {1, 0, 3000, 1, 0};
    char url[512], err[256];
    struct cachify *a, *b;
    long long ms = 0;
    uint64_t t;
    double start;

    bk_etcd_url(NULL, url, sizeof url);
    a = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    b = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_acquire(a, "s", &forever, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_acquire(a, "s3", &three, &t), CACHIFY_OK);
    start = mono_s();
    usleep(7500 * 1000); /* longer than the lease: only renewals keep it */
    ck_assert_int_eq(cachify_is_locked(b, "s"), 1);
    ck_assert_int_eq(cachify_pttl(a, "s", &ms), CACHIFY_OK);
    ck_assert_int_eq(ms, -1);
    /* s3 ended at its expiry (3 s), revoked by its handle. */
    ck_assert_int_eq(cachify_is_locked(b, "s3"), 0);
    ck_assert(mono_s() - start >= 7.4);
    cachify_close(a);
    ck_assert_int_eq(cachify_is_locked(b, "s"), 0); /* revoked at close */
    cachify_close(b);
}
END_TEST

/* ---- fake gateways ---- */

/* A fake gateway answering by pick on a port of its own, and a handle on
 * it (io_ms: its io timeout); *fd is the listening socket, which the test
 * closes after fake_close. */
static struct cachify *fake_open(fg_pick pick, int io_ms, int *fd)
{
    int port;
    char url[128], err[256];

    *fd = fg_socket(1, &port);
    ck_assert_int_ge(*fd, 0);
    ck_assert_int_eq(fg_serve_by(*fd, pick), 0);
    snprintf(url, sizeof url, "etcd://127.0.0.1:%d", port);
    return open_url(url, io_ms, CACHIFY_OK, err, sizeof err);
}

/* Ends what fake_open began. */
static void fake_close(struct cachify *c, int fd)
{
    cachify_close(c);
    fg_stop();
    close(fd);
}

/* Each fake answer: a status line, a body (its Content-Length is
 * counted), or raw bytes. */
static const struct {
    const char *status_line, *body, *raw;
    int status;     /* of cachify_open, which sends a first call */
    const char *msg;
} FAKES[] = {
    {"200 OK", "hello", NULL, CACHIFY_ERR_PROTO,
     "etcd: the answer to /v3/maintenance/status is not JSON"},
    {"200 OK", "[]", NULL, CACHIFY_ERR_PROTO,
     "etcd: the answer to /v3/maintenance/status is not JSON"},
    {"404 Not Found", "Not Found", NULL, CACHIFY_ERR_SERVER,
     "etcd: HTTP 404 for /v3/maintenance/status"},
    {"500 Oops", "{\"error\":\"boom\",\"message\":\"boom\",\"code\":13}", NULL,
     CACHIFY_ERR_SERVER, "etcd: boom"},
    {"401 No", "{\"error\":\"x\",\"message\":\"etcdserver: permission "
     "denied\",\"code\":7}", NULL, CACHIFY_ERR_AUTH,
     "etcd: etcdserver: permission denied"},
    {"503 Busy", "{\"message\":\"etcdserver: no leader\",\"code\":14}", NULL,
     CACHIFY_ERR_IO, "etcd: no member answered in time (last: 127.0.0.1:"},
    /* No status line: junk; the member counts as not answering. */
    {NULL, NULL, "garbage\r\n\r\n", CACHIFY_ERR_IO,
     "etcd: no member answered in time"},
};

START_TEST(fake_gateway)
{
    int port, fd = fg_socket(1, &port);
    char url[128], err[256], reply[512];

    ck_assert_int_ge(fd, 0);
    if (FAKES[_i].raw != NULL)
        snprintf(reply, sizeof reply, "%s", FAKES[_i].raw);
    else
        snprintf(reply, sizeof reply,
                 "HTTP/1.1 %s\r\nContent-Length: %zu\r\n\r\n%s",
                 FAKES[_i].status_line, strlen(FAKES[_i].body),
                 FAKES[_i].body);
    ck_assert_int_eq(fg_serve(fd, reply, strlen(reply)), 0);
    snprintf(url, sizeof url, "etcd://127.0.0.1:%d", port);
    open_url(url, 1000, FAKES[_i].status, err, sizeof err);
    ck_assert_msg(strncmp(err, FAKES[_i].msg, strlen(FAKES[_i].msg)) == 0,
                  "got \"%s\"", err);
    fg_stop();
    close(fd);
}
END_TEST

/* A body past the bound (1 MiB) is not read whole. */
START_TEST(fake_gateway_huge_body)
{
    int port, fd = fg_socket(1, &port);
    size_t n = 3u << 20;
    char *reply = malloc(n), url[128], err[256];
    int head;

    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(reply);
    head = snprintf(reply, 128, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                    n - 128);
    memset(reply + head, ' ', n - (size_t)head);
    ck_assert_int_eq(fg_serve(fd, reply, n), 0);
    snprintf(url, sizeof url, "etcd://127.0.0.1:%d", port);
    open_url(url, 1000, CACHIFY_ERR_IO, err, sizeof err);
    fg_stop();
    free(reply);
    close(fd);
}
END_TEST

/* A grant without an ID: the acquire says so; the handle stays usable. */
START_TEST(fake_gateway_empty_answers)
{
    int port, fd = fg_socket(1, &port);
    static const char reply[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    char url[128], err[256];
    struct cachify *c;
    uint64_t t = 1;
    long long ms = 0;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fg_serve(fd, reply, strlen(reply)), 0);
    snprintf(url, sizeof url, "etcd://127.0.0.1:%d", port);
    c = open_url(url, 1000, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_acquire(c, "k", NULL, &t), CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), "etcd: lease grant without an ID");
    ck_assert_uint_eq(t, 0);
    /* An answer without kvs: nothing there. */
    ck_assert_int_eq(cachify_is_locked(c, "k"), 0);
    ck_assert_int_eq(cachify_pttl(c, "k", &ms), CACHIFY_OK);
    ck_assert_int_eq(ms, -2);
    ck_assert_int_eq(cachify_release(c, "k", 5), 0);
    /* Pools: no entries, no slot, nothing freed. */
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 2, NULL, &t),
                     CACHIFY_ERR_PROTO);
    ck_assert_int_eq(cachify_pool_size(c, "p"), 0);
    ck_assert_int_eq(cachify_pool_force_release(c, "p"), 0);
    ck_assert_int_eq(cachify_pool_release(c, "p", 5), 0);
    ck_assert_int_eq(cachify_pool_extend(c, "p", 5, 1000), 0);
    cachify_close(c);
    fg_stop();
    close(fd);
}
END_TEST

/* Impossible pool answers (fg_pool_junk) are refused, never a slot. */
START_TEST(fake_gateway_pool_junk)
{
    int fd;
    struct cachify *c = fake_open(fg_pool_junk, 3000, &fd);
    uint64_t t = 1;

    ck_assert_int_eq(cachify_pool_acquire(c, "p", 2, NULL, &t),
                     CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c),
                     "etcd: a pool count without our entry");
    ck_assert_uint_eq(t, 0);
    ck_assert_int_eq(cachify_pool_size(c, "p"), CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), "etcd: a negative pool count");
    ck_assert_int_eq(cachify_pool_force_release(c, "p"), CACHIFY_ERR_PROTO);
    fake_close(c, fd);
}
END_TEST

/* A pool entry's value that is not base64 (fg_pool_not_base64): every
 * call that reads a pool's size fails with CACHIFY_ERR_PROTO, none takes
 * the value for a size (with "Mh==" read as "2", the acquire of 3 said
 * WRONGSIZE 2, the size was 1 and the slot of token 40 was found). */
START_TEST(fake_gateway_pool_not_base64)
{
    static const char msg[] = "etcd: a pool entry's value is not base64";
    int fd;
    struct cachify *c = fake_open(fg_pool_not_base64, 3000, &fd);
    uint64_t t = 1;

    ck_assert_int_eq(cachify_pool_acquire(c, "p", 3, NULL, &t),
                     CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), msg);
    ck_assert_uint_eq(t, 0);
    ck_assert_int_eq(cachify_pool_size(c, "p"), CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), msg);
    ck_assert_int_eq(cachify_pool_release(c, "p", 40), CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), msg);
    ck_assert_int_eq(cachify_pool_force_release(c, "p"), CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), msg);
    ck_assert_int_eq(cachify_is_locked(c, "p"), CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), msg);
    fake_close(c, fd);
}
END_TEST

/* Pool reads without their range (fg_pool_odd): refused, neither a slot
 * granted nor a queued entry's lease revoked. */
START_TEST(fake_gateway_pool_odd)
{
    int fd;
    struct cachify *c;
    struct cachify_lock_opts wait = {.timeout_ms = 5000};
    uint64_t t = 1;

    fg_odd_kvs = _i;
    c = fake_open(fg_pool_odd, 3000, &fd);
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 2, &wait, &t),
                     CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), "etcd: a pool answer without its "
                                        "range");
    ck_assert_uint_eq(t, 0);
    ck_assert_int_eq(cachify_pool_release(c, "p", 50), CACHIFY_ERR_PROTO);
    ck_assert_str_eq(cachify_errstr(c), "etcd: a pool answer without its "
                                        "range");
    ck_assert_int_eq(cachify_pool_extend(c, "p", 50, 1000),
                     CACHIFY_ERR_PROTO);
    fake_close(c, fd);
}
END_TEST

/* A wait of wait_ms on a handle (I/O timeout io_ms) whose only member, a
 * fake gateway answering as pick does, never holds it: it ends with ERR_IO,
 * not with a TIMEOUT that would say someone holds the lock.  Returns how
 * long the acquire took, in seconds. */
static double wait_without_members(fg_pick pick, int io_ms,
                                   long long wait_ms)
{
    struct cachify_lock_opts wait = {0, wait_ms, 5000, 0, 0};
    int fd;
    struct cachify *c = fake_open(pick, io_ms, &fd);
    uint64_t t;
    double start, took;

    start = mono_s();
    ck_assert_int_eq(cachify_acquire(c, "k", &wait, &t), CACHIFY_ERR_IO);
    took = mono_s() - start;
    ck_assert_msg(strncmp(cachify_errstr(c), "etcd: no member took the wait "
                          "(last: 127.0.0.1:", 38) == 0, "%s",
                  cachify_errstr(c));
    fake_close(c, fd);
    return took;
}

START_TEST(fake_gateway_wait_not_held)
{
    wait_without_members(fg_no_waits, 1000, 1500);
}
END_TEST

/* A wait that gives up ends at its bound, not after the revoke of its
 * lease has used up the I/O timeout too: the revoke is left to the
 * handle's keeper. */
START_TEST(fake_gateway_wait_bound_kept)
{
    double took = wait_without_members(fg_no_waits_no_revokes, 8000, 1000);

    /* 1 s of wait; the revoke alone would add the 8 s I/O timeout. */
    ck_assert_msg(took < 4.0, "a 1 s wait took %.1f s", took);
}
END_TEST

/* A grant retried after a lost answer does not make a second lease: the
 * acquire goes on with the first one. */
START_TEST(fake_gateway_lost_grant)
{
    int fd;
    struct cachify *c = fake_open(fg_lost_grant, 5000, &fd);
    uint64_t t = 0;

    ck_assert_msg(cachify_acquire(c, "k", NULL, &t) == CACHIFY_OK, "%s",
                  cachify_errstr(c));
    ck_assert_uint_eq(t, 42);
    fake_close(c, fd);
}
END_TEST

/* A move applied but its answers lost (fg_lost_move): the extend looks,
 * finds the entry on the new lease, succeeds, and revokes only the old
 * lease. */
START_TEST(fake_gateway_lost_move)
{
    int fd;
    struct cachify *c;
    uint64_t t = 0;

    ck_assert_int_eq(fg_seen_reset(), 0);
    c = fake_open(fg_lost_move, 3000, &fd);
    ck_assert_msg(cachify_acquire(c, "k", NULL, &t) == CACHIFY_OK, "%s",
                  cachify_errstr(c));
    ck_assert_uint_eq(t, 42);
    int r = cachify_extend(c, "k", t, 120000);
    ck_assert_msg(r == 1, "extend answered %d: %s", r, cachify_errstr(c));
    fake_close(c, fd); /* after the extend's revoke of the old lease */
    ck_assert_msg(fg_seen->new_lease[0] != '\0', "no lease granted for the "
                  "move");
    ck_assert_msg(!fg_seen->new_revoked, "the lease now holding the lock "
                  "was revoked");
}
END_TEST

static void note_status(struct cachify_async *ac, int status,
                        long long value, const char *errstr, void *arg)
{
    (void)ac, (void)value, (void)errstr;
    *(int *)arg = status;
}

/* An async handle closed while its POOL_EXTEND waits for the new lease's
 * grant: that lease (which the grant may have made) holds nothing yet,
 * the move not being sent, so the close revokes it, as it revokes the
 * lease of an acquire cut short; left alone it would live out the whole
 * extend's TTL. */
START_TEST(fake_gateway_close_mid_extend)
{
    struct event_base *base = event_base_new();
    struct cachify_options o = {0, 3000, 0, NULL, 0};
    struct cachify_async *ac;
    char url[128], err[256];
    int port, fd, status = 1;
    double until = mono_s() + 10.0;

    ck_assert_ptr_nonnull(base);
    signal(SIGPIPE, SIG_IGN); /* the fake answers a closed connection */
    ck_assert_int_eq(fg_seen_reset(), 0);
    fd = fg_socket(1, &port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fg_serve_by(fd, fg_slow_move), 0);
    snprintf(url, sizeof url, "etcd://127.0.0.1:%d", port);
    ck_assert_int_eq(cachify_async_open(&ac, base, url, &o, err, sizeof err),
                     CACHIFY_OK);
    ck_assert_int_eq(cachify_async_pool_extend(ac, "p", 50, 60000,
                                               note_status, &status),
                     CACHIFY_OK);
    while (fg_seen->new_lease[0] == '\0' && mono_s() < until) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    ck_assert_msg(fg_seen->new_lease[0] != '\0', "no new lease asked for");
    cachify_async_close(ac);
    ck_assert_int_eq(status, CACHIFY_ERR_CLOSED);
    fg_stop();
    close(fd);
    event_base_free(base);
    ck_assert_msg(fg_seen->new_revoked, "the extend's new lease %s was not "
                  "revoked at the close", fg_seen->new_lease);
}
END_TEST

/* ---- the cluster changes: these run last, in this order ---- */

/* kill -9 of the member every URL names first: the handles move on. */
START_TEST(member_killed)
{
    struct cachify_lock_opts wait = {0, 20000, 5000, 0, 0};
    char url[512], err[256];
    struct cachify *a, *b;
    uint64_t t1, t2;

    bk_etcd_url(NULL, url, sizeof url);
    a = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    b = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_acquire(a, "k", NULL, &t1), CACHIFY_OK);
    kill(g_ec.pid[0], SIGKILL); /* the parent reaps it */
    ck_assert_int_eq(cachify_is_locked(b, "k"), 1);
    ck_assert_int_eq(cachify_acquire(b, "k", NULL, &t2), CACHIFY_LOCKED);
    ck_assert_int_eq(cachify_release(a, "k", t1), 1);
    ck_assert_int_eq(cachify_acquire(b, "k", &wait, &t2), CACHIFY_OK);
    ck_assert_uint_gt(t2, t1);
    ck_assert_int_eq(cachify_release(b, "k", t2), 1);
    /* Pools too: full, freed, a waiter served, with the member dead. */
    ck_assert_int_eq(cachify_pool_acquire(a, "p", 1, NULL, &t1), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(b, "p", 1, NULL, &t2),
                     CACHIFY_FULL);
    ck_assert_int_eq(cachify_pool_release(a, "p", t1), 1);
    ck_assert_int_eq(cachify_pool_acquire(b, "p", 1, &wait, &t2), CACHIFY_OK);
    ck_assert_uint_gt(t2, t1);
    ck_assert_int_eq(cachify_pool_size(a, "p"), 1);
    ck_assert_int_eq(cachify_pool_release(b, "p", t2), 1);
    cachify_close(a);
    cachify_close(b);
}
END_TEST

/* etcdctl against member 1 (member 0 may be down by now). */
static int etcdctl(const char *args)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd,
             "etcdctl --endpoints=127.0.0.1:%d %s >/dev/null 2>&1",
             g_ec.client_port[1], args);
    return system(cmd);
}

START_TEST(authentication)
{
    struct cachify_lock_opts wait = {0, 20000, 5000, 0, 0};
    char url[512], err[256];
    struct cachify *a, *b;
    uint64_t t1, t2;

    ck_assert_int_eq(etcdctl("user add root:rootpw"), 0);
    ck_assert_int_eq(etcdctl("user add app:app:pw@1"), 0);
    ck_assert_int_eq(etcdctl("role add cachify"), 0);
    ck_assert_int_eq(etcdctl("role grant-permission cachify --prefix=true "
                             "readwrite cachify-test/"), 0);
    ck_assert_int_eq(etcdctl("user grant-role app cachify"), 0);
    ck_assert_int_eq(etcdctl("auth enable"), 0);
    bk_etcd_url("app:app:pw@1", url, sizeof url);
    a = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    b = open_url(url, 0, CACHIFY_OK, err, sizeof err);
    ck_assert_int_eq(cachify_acquire(a, "k", NULL, &t1), CACHIFY_OK);
    ck_assert_int_eq(cachify_acquire(b, "k", NULL, &t2), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(b), "k is already locked!");
    ck_assert_int_eq(cachify_release(a, "k", t1), 1);
    ck_assert_int_eq(cachify_acquire(b, "k", &wait, &t2), CACHIFY_OK);
    ck_assert_int_eq(cachify_release(b, "k", t2), 1);
    cachify_close(a);
    cachify_close(b);
    /* A wrong password, none at all, a prefix outside the role. */
    bk_etcd_url("app:nope", url, sizeof url);
    open_url(url, 0, CACHIFY_ERR_AUTH, err, sizeof err);
    ck_assert_msg(strstr(err, "authentication failed") != NULL, "%s", err);
    ck_assert_ptr_null(strstr(err, "nope"));
    bk_etcd_url(NULL, url, sizeof url);
    a = open_url(url, 0, CACHIFY_OK, err, sizeof err); /* status: no auth */
    ck_assert_int_eq(cachify_acquire(a, "k", NULL, &t1), CACHIFY_ERR_AUTH);
    cachify_close(a);
    ck_assert_int_eq(etcdctl("--user root:rootpw auth disable"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_etcd");
    TCase *tc = tcase_create("etcd");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, dead_and_silent_members);
    tcase_add_test(tc, no_member_answers);
    tcase_add_test(tc, prefixes_keep_locks_apart);
    tcase_add_test(tc, pools_beside_locks);
    tcase_add_test(tc, extend_renews_or_moves);
    tcase_add_test(tc, session_renewed_between_calls);
    tcase_add_loop_test(tc, fake_gateway, 0,
                        (int)(sizeof FAKES / sizeof FAKES[0]));
    tcase_add_test(tc, fake_gateway_huge_body);
    tcase_add_test(tc, fake_gateway_empty_answers);
    tcase_add_test(tc, fake_gateway_pool_junk);
    tcase_add_test(tc, fake_gateway_pool_not_base64);
    tcase_add_loop_test(tc, fake_gateway_pool_odd, 0, 2);
    tcase_add_test(tc, fake_gateway_wait_not_held);
    tcase_add_test(tc, fake_gateway_wait_bound_kept);
    tcase_add_test(tc, fake_gateway_lost_grant);
    tcase_add_test(tc, fake_gateway_lost_move);
    tcase_add_test(tc, fake_gateway_close_mid_extend);
    tcase_add_test(tc, member_killed);
    tcase_add_test(tc, authentication);
    suite_add_tcase(s, tc);
    return bk_run(s);
}
