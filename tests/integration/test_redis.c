/* tests/integration/test_redis.c - Check suite: the Redis key and
 * connection commands against the real daemon over TCP.
 *
 * Owns: the exact reply bytes of SET (every option), GET, MGET, GETDEL,
 * DEL, UNLINK, EXISTS, EXPIRE and its variants, PERSIST, SETNX, SETEX,
 * PSETEX, HELLO, ECHO, CLIENT, COMMAND, INFO, DBSIZE, TIME and the
 * refused commands, in both framings; binary values; max_value_len and
 * maxmemory refusals; SET NX racing ACQUIRE WAIT on one key (FIFO kept,
 * tokens growing); a big reply followed by more requests; values across a
 * clean restart and a kill -9.  Does not own: the comparison with a real
 * redis-server (tests/scripts/redis_compat.sh) or the lock commands
 * themselves (test_server.c, test_waiting.c).
 *
 * Every test starts its own daemon (tests/support/itest_common.h) and ends
 * with a clean stop, so a valgrind run also fails on leaks.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/integration/lockitest.h"

/* Sends a RESP request of argc arguments (lengths given, so binary). */
static void resp(int fd, size_t argc, const char *const *argv,
                 const size_t *lens)
{
    struct itest_buf b = { 0 };
    buf_fmt(&b, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc; i++) {
        buf_fmt(&b, "$%zu\r\n", lens[i]);
        buf_add(&b, argv[i], lens[i]);
        buf_str(&b, "\r\n");
    }
    sayn(fd, b.p, b.len);
    free(b.p);
}

START_TEST(set_get_forms)
{
    srv_start(NULL);
    int c = conn_new();
    say(c, "SET k v\r\n");                 EXPECT(c, "+OK\r\n");
    say(c, "GET k\r\n");                   EXPECT(c, "$1\r\nv\r\n");
    say(c, "SET k w NX\r\n");              EXPECT(c, "$-1\r\n");
    say(c, "SET k w XX GET\r\n");          EXPECT(c, "$1\r\nv\r\n");
    say(c, "SET n w XX\r\n");              EXPECT(c, "$-1\r\n");
    say(c, "SET n w NX GET\r\n");          EXPECT(c, "$-1\r\n");
    say(c, "GET n\r\n");                   EXPECT(c, "$1\r\nw\r\n");
    say(c, "SET k v EX 100\r\n");          EXPECT(c, "+OK\r\n");
    say(c, "TTL k\r\n");                   EXPECT(c, ":100\r\n");
    say(c, "SET k v KEEPTTL\r\n");         EXPECT(c, "+OK\r\n");
    say(c, "TTL k\r\n");                   EXPECT(c, ":100\r\n");
    say(c, "SET k v\r\n");                 EXPECT(c, "+OK\r\n");
    say(c, "TTL k\r\n");                   EXPECT(c, ":-1\r\n");
    say(c, "SET k v PX 5000\r\n");         EXPECT(c, "+OK\r\n");
    say(c, "TTL k\r\n");                   EXPECT(c, ":5\r\n");
    say(c, "SET k v PXAT 1\r\n");          EXPECT(c, "+OK\r\n");
    say(c, "EXISTS k\r\n");                EXPECT(c, ":0\r\n");
    say(c, "SET k v EX 0\r\n");
    EXPECT(c, "-ERR invalid expire time in 'set' command\r\n");
    say(c, "SET k v EX 1x\r\n");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n");
    say(c, "SET k v NX XX\r\n");           EXPECT(c, "-ERR syntax error\r\n");
    say(c, "SET k v EX 5 PX 5\r\n");       EXPECT(c, "-ERR syntax error\r\n");
    say(c, "SET k v EX\r\n");              EXPECT(c, "-ERR syntax error\r\n");
    say(c, "SET k\r\n");
    EXPECT(c, "-ERR wrong number of arguments for 'SET'\r\n");
    say(c, "SET \"\" v\r\n");              EXPECT(c, "-ERR empty key\r\n");
    say(c, "GET missing\r\n");             EXPECT(c, "$-1\r\n");
    say(c, "SETNX s 1\r\n");               EXPECT(c, ":1\r\n");
    say(c, "SETNX s 2\r\n");               EXPECT(c, ":0\r\n");
    say(c, "SETEX e 100 v\r\n");           EXPECT(c, "+OK\r\n");
    say(c, "SETEX e -1 v\r\n");
    EXPECT(c, "-ERR invalid expire time in 'setex' command\r\n");
    say(c, "PSETEX p 100000 v\r\n");       EXPECT(c, "+OK\r\n");
    say(c, "MGET s missing e\r\n");
    EXPECT(c, "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\nv\r\n");
    say(c, "GETDEL s\r\n");                EXPECT(c, "$1\r\n1\r\n");
    say(c, "GETDEL s\r\n");                EXPECT(c, "$-1\r\n");
    say(c, "EXISTS e e missing p\r\n");    EXPECT(c, ":3\r\n");
    say(c, "DEL e missing p\r\n");         EXPECT(c, ":2\r\n");
    say(c, "UNLINK n n\r\n");              EXPECT(c, ":1\r\n");
    say(c, "DBSIZE\r\n");                  EXPECT(c, ":0\r\n");
    close(c);
    srv_finish();
}
END_TEST

START_TEST(expire_forms)
{
    srv_start(NULL);
    int c = conn_new();
    say(c, "SET e v\r\n");                 EXPECT(c, "+OK\r\n");
    say(c, "EXPIRE e 100 XX\r\n");         EXPECT(c, ":0\r\n");
    say(c, "EXPIRE e 100 GT\r\n");         EXPECT(c, ":0\r\n");
    say(c, "EXPIRE e 100 NX\r\n");         EXPECT(c, ":1\r\n");
    say(c, "EXPIRE e 50 GT\r\n");          EXPECT(c, ":0\r\n");
    say(c, "EXPIRE e 500 GT\r\n");         EXPECT(c, ":1\r\n");
    say(c, "TTL e\r\n");                   EXPECT(c, ":500\r\n");
    say(c, "PEXPIRE e 20000 LT\r\n");      EXPECT(c, ":1\r\n");
    say(c, "TTL e\r\n");                   EXPECT(c, ":20\r\n");
    say(c, "PERSIST e\r\n");               EXPECT(c, ":1\r\n");
    say(c, "PERSIST e\r\n");               EXPECT(c, ":0\r\n");
    say(c, "EXPIRE e 10 NX XX\r\n");
    EXPECT(c, "-ERR NX and XX, GT or LT options at the same time are not "
              "compatible\r\n");
    say(c, "EXPIRE e 10 GT LT\r\n");
    EXPECT(c, "-ERR GT and LT options at the same time are not "
              "compatible\r\n");
    say(c, "EXPIRE e 10 SOON\r\n");
    EXPECT(c, "-ERR Unsupported option SOON\r\n");
    say(c, "EXPIRE e ten\r\n");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n");
    say(c, "EXPIRE missing 10\r\n");       EXPECT(c, ":0\r\n");
    say(c, "PERSIST missing\r\n");         EXPECT(c, ":0\r\n");
    say(c, "EXPIREAT e 1\r\n");            EXPECT(c, ":1\r\n");
    say(c, "EXISTS e\r\n");                EXPECT(c, ":0\r\n");
    /* EXPIRE keeps the holder's token: RELEASE by it still works. */
    int a = conn_new();
    long long tok = acquire(a, "ACQUIRE lk TTL 1000\r\n");
    say(c, "EXPIRE lk 100\r\n");           EXPECT(c, ":1\r\n");
    say(c, "TTL lk\r\n");                  EXPECT(c, ":100\r\n");
    release_ok(a, "lk", tok);
    say(c, "PEXPIRE e -1\r\n");            EXPECT(c, ":0\r\n");
    close(a);
    close(c);
    srv_finish();
}
END_TEST

/* Values are bytes: CR, LF and NUL round-trip through SET and GET, a lock
 * taken with ACQUIRE reads as its token, and a 1 MiB value goes out whole
 * with the requests behind it still answered. */
START_TEST(binary_and_big_values)
{
    srv_start(NULL);
    int c = conn_new();
    static const char bin[] = "a\r\nb\0c\r\n";
    const char *set[] = { "SET", "bin", bin };
    size_t set_lens[] = { 3, 3, sizeof(bin) - 1 };
    resp(c, 3, set, set_lens);
    EXPECT(c, "+OK\r\n");
    say(c, "GET bin\r\n");
    EXPECTN(c, "$8\r\na\r\nb\0c\r\n\r\n", 14);
    long long tok = acquire(c, "ACQUIRE lk\r\n");
    char want[64];
    int n = snprintf(want, sizeof(want), "%lld", tok);
    char line[96];
    snprintf(line, sizeof(line), "$%d\r\n%s\r\n", n, want);
    say(c, "GET lk\r\n");
    EXPECT(c, line);

    size_t big = 1u << 20;
    char *value = malloc(big);
    ck_assert_ptr_nonnull(value);
    for (size_t i = 0; i < big; i++)
        value[i] = (char)(i * 31);
    const char *bigset[] = { "SET", "big", value };
    size_t big_lens[] = { 3, 3, big };
    resp(c, 3, bigset, big_lens);
    EXPECT(c, "+OK\r\n");
    /* The 1 MiB reply pauses reading; what follows must still run. */
    say(c, "GET big\r\nPING\r\nGET bin\r\n");
    char *got = malloc(big + 64);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(read_n(c, got, 11), 11);
    ck_assert_int_eq(memcmp(got, "$1048576\r\n", 10), 0);
    ck_assert_int_eq(read_n(c, got + 11, big + 1), (long)big + 1);
    ck_assert_int_eq(memcmp(got + 10, value, big), 0);
    EXPECT(c, "+PONG\r\n");
    EXPECTN(c, "$8\r\na\r\nb\0c\r\n\r\n", 14);
    free(got);
    free(value);
    close(c);
    srv_finish();
}
END_TEST

START_TEST(value_and_memory_limits)
{
    SRV_START("--max_value_len", "8", "--maxmemory", "35");
    int c = conn_new();
    say(c, "SET k 12345678\r\n");          EXPECT(c, "+OK\r\n");
    say(c, "SET k 123456789\r\n");
    EXPECT(c, "-LIMIT value is longer than max_value_len (8 bytes)\r\n");
    say(c, "GET k\r\n");                   EXPECT(c, "$8\r\n12345678\r\n");
    /* 9 bytes used: keys and values up to 35. */
    say(c, "SET a 12345678\r\n");          EXPECT(c, "+OK\r\n");
    say(c, "SET b 12345678\r\n");          EXPECT(c, "+OK\r\n");
    say(c, "SET c 1234\r\n");              EXPECT(c, "+OK\r\n");
    say(c, "SET d 1234\r\n");
    EXPECT(c, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    say(c, "ACQUIRE lockkey\r\n");
    EXPECT(c, "-LIMIT maxmemory reached (35 bytes of keys and values); "
              "nothing is evicted\r\n");
    /* Nothing was dropped to make room. */
    say(c, "EXISTS k a b c\r\n");          EXPECT(c, ":4\r\n");
    json_t *st = stats_get(c);
    ck_assert_int_eq(stat_int(st, "data_bytes"), 32);
    ck_assert_int_eq(stat_int(st, "values"), 4);
    json_decref(st);
    say(c, "DEL c\r\n");                   EXPECT(c, ":1\r\n");
    say(c, "ACQUIRE lockkey\r\n");
    ck_assert_int_gt(READ_INT(c), 0);
    close(c);
    srv_finish();
}
END_TEST

/* SET NX and ACQUIRE WAIT on one key are one queue: a SET NX never jumps
 * the waiters, a DEL hands the key to the first of them, an overwriting
 * SET leaves them waiting for the new holder, and tokens only grow. */
START_TEST(set_nx_and_waiters)
{
    srv_start(NULL);
    int a = conn_new(), w1 = conn_new(), w2 = conn_new(), x = conn_new();
    say(a, "SET job v PX 60000 NX\r\n");   EXPECT(a, "+OK\r\n");
    say(a, "GET job\r\n");                 EXPECT(a, "$1\r\nv\r\n");
    say(w1, "ACQUIRE job WAIT 60000\r\n");
    wait_stat("waiters", 1);
    say(w2, "ACQUIRE job WAIT 60000\r\n");
    wait_stat("waiters", 2);
    say(x, "SET job mine NX\r\n");         EXPECT(x, "$-1\r\n");
    say(x, "SET job over\r\n");            EXPECT(x, "+OK\r\n");
    expect_quiet(w1, quiet_ms());
    say(x, "DEL job\r\n");                 EXPECT(x, ":1\r\n");
    long long t1 = READ_INT(w1);
    expect_quiet(w2, quiet_ms());
    say(x, "GET job\r\n");
    char line[64];
    snprintf(line, sizeof(line), "$%d\r\n%lld\r\n",
             snprintf(NULL, 0, "%lld", t1), t1);
    EXPECT(x, line);
    release_ok(w1, "job", t1);
    long long t2 = READ_INT(w2);
    ck_assert_int_gt(t2, t1);
    say(x, "SET job v NX\r\n");            EXPECT(x, "$-1\r\n");
    release_ok(w2, "job", t2);
    say(x, "SET job v NX PX 1000\r\n");    EXPECT(x, "+OK\r\n");
    json_t *st = stats_get(x);
    ck_assert_int_eq(stat_int(st, "handoffs"), 2);
    ck_assert_int_eq(stat_int(st, "acquired"), 5); /* 2 SET NX, SET, 2 waits */
    json_decref(st);
    close(a), close(w1), close(w2), close(x);
    srv_finish();
}
END_TEST

START_TEST(connection_commands)
{
    srv_start(NULL);
    int c = conn_new();
    say(c, "HELLO 3\r\n");
    EXPECT(c, "-NOPROTO sorry, this protocol version is not supported\r\n");
    say(c, "HELLO x\r\n");
    EXPECT(c, "-ERR Protocol version is not an integer or out of range\r\n");
    say(c, "HELLO 2 AUTH default pw\r\n"); EXPECT(c, "-ERR no password is set\r\n");
    say(c, "HELLO 2 SETNAME me\r\n");
    char reply[512];
    long n = tc_read_reply(c, reply, sizeof(reply));
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(reply, "*14\r\n$6\r\nserver\r\n$8\r\ncachifyd"));
    ck_assert_ptr_nonnull(strstr(reply, "$5\r\nproto\r\n:2\r\n"));
    say(c, "CLIENT GETNAME\r\n");          EXPECT(c, "$2\r\nme\r\n");
    say(c, "CLIENT SETNAME \"a b\"\r\n");
    EXPECT(c, "-ERR Client names cannot contain spaces, newlines or special "
              "characters.\r\n");
    say(c, "CLIENT SETNAME\r\n");
    EXPECT(c, "-ERR wrong number of arguments for 'CLIENT|SETNAME'\r\n");
    say(c, "CLIENT SETINFO LIB-NAME redis-py\r\n"); EXPECT(c, "+OK\r\n");
    say(c, "CLIENT KILL x\r\n");
    EXPECT(c, "-ERR unknown subcommand 'KILL' for 'CLIENT'\r\n");
    say(c, "CLIENT ID\r\n");
    ck_assert_int_gt(READ_INT(c), 0);
    say(c, "ECHO \"a\\r\\nb\"\r\n");       EXPECT(c, "$4\r\na\r\nb\r\n");
    say(c, "SELECT 0\r\n");                EXPECT(c, "+OK\r\n");
    say(c, "SELECT 1\r\n");
    EXPECT(c, "-ERR cachifyd has one keyspace: only SELECT 0 works\r\n");
    say(c, "COMMAND DOCS\r\n");            EXPECT(c, "*0\r\n");
    say(c, "COMMAND COUNT\r\n");
    ck_assert_int_gt(READ_INT(c), 40);
    say(c, "TIME\r\n");
    n = tc_read_reply(c, reply, sizeof(reply));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(strncmp(reply, "*2\r\n$10\r\n", 9), 0);
    say(c, "EVALSHA abc 0\r\n");
    EXPECT(c, "-ERR EVALSHA is not supported by cachifyd (no scripting): "
              "release a lock only its holder may release with RELEASE key "
              "token, extend it with EXTEND key token ms; see "
              "docs/redis-compat.md\r\n");
    say(c, "INCR n\r\n");
    EXPECT(c, "-ERR INCR is not supported by cachifyd; see "
              "docs/redis-compat.md\r\n");
    say(c, "SET k v\r\nINFO keyspace memory\r\n");
    EXPECT(c, "+OK\r\n");
    n = tc_read_reply(c, reply, sizeof(reply));
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(reply, "# Memory\r\nused_memory:2\r\n"));
    ck_assert_ptr_nonnull(strstr(reply, "maxmemory_policy:noeviction\r\n"));
    ck_assert_ptr_nonnull(strstr(reply, "# Keyspace\r\ndb0:keys=1\r\n"));
    ck_assert_ptr_null(strstr(reply, "# Server"));
    close(c);
    srv_finish();
}
END_TEST

/* With a password: HELLO may authenticate, nothing else runs before. */
START_TEST(hello_auth)
{
    SRV_START("--requirepass", "s3cret");
    int c = conn_new();
    say(c, "GET k\r\n");       EXPECT(c, "-NOAUTH Authentication required.\r\n");
    say(c, "HELLO 2\r\n");
    EXPECT(c, "-NOAUTH HELLO must be called with the client already "
              "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
              "option can be used\r\n");
    say(c, "HELLO 2 AUTH default wrong\r\n");
    EXPECT(c, "-WRONGPASS invalid password\r\n");
    say(c, "HELLO 2 AUTH default s3cret\r\n");
    char reply[512];
    ck_assert_int_gt(tc_read_reply(c, reply, sizeof(reply)), 0);
    ck_assert_int_eq(strncmp(reply, "*14\r\n", 5), 0);
    say(c, "GET k\r\n");       EXPECT(c, "$-1\r\n");
    close(c);
    srv_finish();
}
END_TEST

/* Values come back with their locks: at a clean stop, and after a kill -9
 * for leases the journal writes one by one (FOREVER, or over
 * long_lease_ms).  A short lease's value is not kept across a crash: its
 * key reads as held until recovery ends, then it is gone. */
START_TEST(values_across_restarts)
{
    struct test_server *t = srv_init();
    const char *const args[] = { "--state_file", t->state_path,
                                 "--recovery_delay_ms", "0", NULL };
    srv_run(args);
    int c = conn_new();
    static const char bin[] = "x\0\r\ny";
    const char *set[] = { "SET", "forever", bin };
    size_t lens[] = { 3, 7, sizeof(bin) - 1 };
    resp(c, 3, set, lens);
    EXPECT(c, "+OK\r\n");
    say(c, "SET long v EX 3600\r\nSET short v PX 60000\r\n");
    EXPECT(c, "+OK\r\n+OK\r\n");
    close(c);
    srv_stop();
    srv_run(args);
    c = conn_new();
    say(c, "GET forever\r\n");             EXPECTN(c, "$5\r\nx\0\r\ny\r\n", 11);
    say(c, "MGET long short\r\n");
    EXPECT(c, "*2\r\n$1\r\nv\r\n$1\r\nv\r\n");
    close(c);
    ts_kill9(&g_ts);
    srv_run(args);
    c = conn_new();
    say(c, "GET forever\r\n");             EXPECTN(c, "$5\r\nx\0\r\ny\r\n", 11);
    say(c, "GET long\r\n");                EXPECT(c, "$1\r\nv\r\n");
    say(c, "GET short\r\n");
    EXPECT(c, "-LOCKED short may still be held by a lock granted before the "
              "restart (recovering)\r\n");
    say(c, "EXISTS short\r\n");            EXPECT(c, ":1\r\n");
    say(c, "SET short w NX\r\n");          EXPECT(c, "$-1\r\n");
    close(c);
    srv_finish();
}
END_TEST

/* Bad input to every new command: a clear error, the connection and the
 * daemon stay usable. */
START_TEST(hostile_arguments)
{
    srv_start(NULL);
    int c = conn_new();
    static const char *const lines[] = {
        "SET k v EX 99999999999999999999\r\n",
        "SET k v PX -9223372036854775808\r\n",
        "SET k v EXAT 9223372036854775807\r\n",
        "EXPIRE k 9223372036854775807\r\n",
        "PEXPIREAT k -9223372036854775808\r\n",
        "SETEX k 9223372036854775807 v\r\n",
        "MGET\r\n", "DEL\r\n", "HELLO 2 AUTH\r\n", "HELLO 2 SETNAME\r\n",
        "CLIENT\r\n", "INFO \"\\x00\"\r\n", "TIME now\r\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        say(c, lines[i]);
        char reply[512];
        long n = tc_read_reply(c, reply, sizeof(reply));
        ck_assert_msg(n > 0 && (reply[0] == '-' || reply[0] == '$'),
                      "%s -> %s", lines[i], itest_escn(reply, (size_t)n));
    }
    say(c, "PING\r\n");                    EXPECT(c, "+PONG\r\n");
    close(c);
    srv_finish();
}
END_TEST

static Suite *redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = itest_tcase_timed(s, "redis", 300);
    tcase_add_test(tc, set_get_forms);
    tcase_add_test(tc, expire_forms);
    tcase_add_test(tc, binary_and_big_values);
    tcase_add_test(tc, value_and_memory_limits);
    tcase_add_test(tc, set_nx_and_waiters);
    tcase_add_test(tc, connection_commands);
    tcase_add_test(tc, hello_auth);
    tcase_add_test(tc, values_across_restarts);
    tcase_add_test(tc, hostile_arguments);
    return s;
}

int main(void)
{
    return itest_main(redis_suite());
}
