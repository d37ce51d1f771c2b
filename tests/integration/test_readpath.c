/* tests/integration/test_readpath.c - Check suite: the daemon's socket read
 * path (daemon/conn.c, read_socket) against the real daemon over TCP.
 *
 * Owns: byte streams whose requests straddle the places where one read
 * splits them: between the request reader's free room and the input
 * buffer behind it, across READ_CHUNK and the 64 KiB read-ahead mark, one
 * byte per segment, and a half-close right behind a pipeline.  Every reply
 * is checked byte for byte and in order, so a byte lost, duplicated or
 * reordered between the two destinations of a read fails here.  Does not
 * own: hostile framing (test_hostile.c), the bounds themselves
 * (test_bounds.c, test_limits.c, test_waiting.c).
 *
 * Every test starts its own daemon and ends with a clean stop, so a
 * valgrind run also fails on leaks.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/itest.h"

/* The ECHO argument of request i: i in decimal, then filler up to a length
 * that varies with i (1 to 700 bytes), so request boundaries fall
 * everywhere within a read. */
static size_t message(long i, char *out, size_t cap)
{
    size_t len = (size_t)((i * 7919) % 700) + 1;
    int n = snprintf(out, cap, "%ld", i);
    if (len < (size_t)n)
        len = (size_t)n;
    for (size_t k = (size_t)n; k < len && k + 1 < cap; k++)
        out[k] = (char)('a' + (i + (long)k) % 26);
    out[len] = '\0';
    return len;
}

/* Appends ECHO i to b, inline for even i, RESP for odd. */
static void add_echo(struct itest_buf *b, long i)
{
    char msg[800];
    size_t len = message(i, msg, sizeof(msg));
    if (i % 2 == 0) {
        buf_str(b, "ECHO ");
    } else {
        buf_fmt(b, "*2\r\n$4\r\nECHO\r\n$%zu\r\n", len);
    }
    buf_add(b, msg, len);
    buf_str(b, "\r\n");
}

/* Reads the replies to ECHO first .. first + n - 1, in order. */
static void expect_echoes(struct rd *r, long first, long n)
{
    char msg[800], line[1024];
    for (long i = first; i < first + n; i++) {
        size_t len = message(i, msg, sizeof(msg));
        char head[32];
        snprintf(head, sizeof(head), "$%zu", len);
        long got = rd_line(r, line, sizeof(line));
        ck_assert_msg(got >= 0, "reply %ld: connection ended", i);
        ck_assert_msg(strcmp(line, head) == 0, "reply %ld: header %s, want %s",
                      i, itest_esc(line), head);
        got = rd_line(r, line, sizeof(line));
        ck_assert_msg(got == (long)len && memcmp(line, msg, len) == 0,
                      "reply %ld: got \"%s\"", i, itest_esc(line));
    }
}

/* A pipeline of a few hundred KiB in one send: its reads fill the reader's
 * room and spill into the input buffer, stop at the read-ahead mark and
 * resume as the requests run.  Every reply comes, in order. */
START_TEST(pipeline_across_reads_in_order)
{
    srv_start(NULL);
    int c = conn_new();
    long n = slow_mode() ? 400 : 2000;
    struct itest_buf b = { 0 };
    size_t *ends = calloc((size_t)n, sizeof(*ends));
    ck_assert(ends != NULL);
    for (long i = 0; i < n; i++) {
        add_echo(&b, i);
        ends[i] = b.len;
    }
    ck_assert_msg(b.len > 3 * 64 * 1024 || slow_mode(),
                  "the pipeline must pass the read-ahead mark (%zu bytes)",
                  b.len);
    /* The replies are read as they come: the daemon pauses a client that
     * does not read, which a blocking send of it all would deadlock. */
    struct rd *r = calloc(1, sizeof(*r));
    ck_assert(r != NULL);
    r->fd = c;
    size_t sent = 0;
    long checked = 0;
    while (sent < b.len) {
        size_t part = b.len - sent < 32768 ? b.len - sent : 32768;
        sayn(c, b.p + sent, part);
        sent += part;
        /* Everything whose last byte went out may be checked. */
        long whole = checked;
        while (whole < n && ends[whole] <= sent)
            whole++;
        if (whole > checked + 100) {
            expect_echoes(r, checked, whole - checked);
            checked = whole;
        }
    }
    expect_echoes(r, checked, n - checked);
    say(c, "PING\r\n");
    EXPECT(c, "+PONG\r\n");
    free(ends);
    free(r);
    free(b.p);
    close(c);
    srv_finish();
}
END_TEST

/* One byte per segment: every read brings one byte, into the reader. */
START_TEST(one_byte_per_segment)
{
    srv_start(NULL);
    int c = conn_new();
    const char *req = "ECHO \"a b\"\r\n*2\r\n$4\r\nECHO\r\n$3\r\nxyz\r\nPING\r\n";
    for (const char *p = req; *p; p++) {
        sayn(c, p, 1);
        usleep(2000);
    }
    EXPECT(c, "$3\r\na b\r\n$3\r\nxyz\r\n+PONG\r\n");
    close(c);
    srv_finish();
}
END_TEST

/* A value much bigger than one read, split so that one send ends inside
 * its length line and the next inside its bytes. */
START_TEST(big_argument_across_reads)
{
    srv_start(NULL);
    int c = conn_new();
    size_t len = 200 * 1024;
    char *v = malloc(len);
    ck_assert(v != NULL);
    for (size_t i = 0; i < len; i++)
        v[i] = (char)('A' + i % 23);
    struct itest_buf b = { 0 };
    buf_fmt(&b, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%zu\r\n", len);
    buf_add(&b, v, len);
    buf_str(&b, "\r\nGET k\r\n");
    sayn(c, b.p, 10);
    usleep(20000);
    sayn(c, b.p + 10, 5000);
    usleep(20000);
    sayn(c, b.p + 5010, b.len - 5010);
    EXPECT(c, "+OK\r\n");
    char head[32];
    snprintf(head, sizeof(head), "$%zu\r\n", len);
    EXPECT(c, head);
    char *got = malloc(len + 2);
    ck_assert(got != NULL);
    ck_assert_int_eq(read_n(c, got, len + 2), (long)(len + 2));
    ck_assert(memcmp(got, v, len) == 0 && memcmp(got + len, "\r\n", 2) == 0);
    free(got);
    free(v);
    free(b.p);
    close(c);
    srv_finish();
}
END_TEST

/* After the replies to a half-closed pipeline: the daemon closes; then
 * the client side (r, its socket, the pipeline b) and the daemon end. */
static void expect_end(struct rd *r, struct itest_buf *b)
{
    char line[64];
    ck_assert_msg(rd_line(r, line, sizeof(line)) < 0,
                  "the daemon kept the connection open after the replies");
    close(r->fd);
    free(r);
    free(b->p);
    srv_finish();
}

/* A pipeline followed at once by the client's half-close: the requests
 * before the end all run and are answered, then the daemon closes. */
START_TEST(half_close_behind_pipeline)
{
    srv_start(NULL);
    int c = conn_new();
    struct itest_buf b = { 0 };
    long n = 300;
    for (long i = 0; i < n; i++)
        add_echo(&b, i);
    sayn(c, b.p, b.len);
    ck_assert_int_eq(shutdown(c, SHUT_WR), 0);
    struct rd *r = calloc(1, sizeof(*r));
    ck_assert(r != NULL);
    r->fd = c;
    expect_echoes(r, 0, n);
    expect_end(r, &b);
}
END_TEST

/* The same behind a pipeline of long leases (with a state file): the
 * daemon cuts a connection's turn after 256 of them to commit them, and
 * the rest runs in later turns; a half-close read before those turns must
 * not drop the rest.  Every ACQUIRE is answered with its token. */
START_TEST(half_close_behind_long_leases)
{
    struct test_server *t = srv_init();
    const char *const args[] = { "--state_file", t->state_path, NULL };
    srv_run(args);
    int c = conn_new();
    struct itest_buf b = { 0 };
    long n = 1500;
    for (long i = 0; i < n; i++)
        buf_fmt(&b, "ACQUIRE long:%ld TTL FOREVER\r\n", i);
    sayn(c, b.p, b.len);
    ck_assert_int_eq(shutdown(c, SHUT_WR), 0);
    struct rd *r = calloc(1, sizeof(*r));
    ck_assert(r != NULL);
    r->fd = c;
    char line[64];
    for (long i = 0; i < n; i++) {
        long got = rd_line(r, line, sizeof(line));
        ck_assert_msg(got > 0 && line[0] == ':',
                      "reply %ld of %ld: %s", i, n,
                      got < 0 ? "connection ended" : itest_esc(line));
    }
    expect_end(r, &b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("readpath");
    TCase *tc = itest_tcase(s, "readpath");
    tcase_add_test(tc, pipeline_across_reads_in_order);
    tcase_add_test(tc, one_byte_per_segment);
    tcase_add_test(tc, big_argument_across_reads);
    tcase_add_test(tc, half_close_behind_pipeline);
    tcase_add_test(tc, half_close_behind_long_leases);
    return itest_main(s);
}
