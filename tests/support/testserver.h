/* tests/support/testserver.h - run the real build/cachifyd and talk to it.
 *
 * Owns: forking the daemon on a free loopback port (CACHIFYD_BIN names the
 * binary; CACHIFYD_VALGRIND=1 runs it under valgrind, which then decides
 * the exit status), a temporary directory per server for its log, state
 * file and socket, small blocking-socket helpers with read timeouts so
 * a hung daemon fails a test instead of hanging it, and the process
 * figures tests look at (VmRSS, the open-file limit).  No Check here: its
 * side is tests/support/itest_common.h.
 */
#ifndef CACHIFY_TESTS_TESTSERVER_H
#define CACHIFY_TESTS_TESTSERVER_H

#include <stddef.h>
#include <sys/types.h>

/* Seconds a test waits for a reply before failing; generous for valgrind on
 * a loaded 2-core machine. */
#define TS_READ_TIMEOUT_S 20

struct test_server {
    pid_t pid;
    int port;
    char dir[128];       /* temporary directory, removed by ts_cleanup */
    char log_path[192];  /* the daemon's stderr */
    char state_path[192];/* dir/state.json, for tests that pass it */
    char sock_path[192]; /* dir/cachifyd.sock, for tests that pass it */
};

/* A free loopback TCP port (bound to port 0 and released: another process
 * could take it first, and the server that binds it then fails loudly),
 * or -1. */
int ts_free_port(void);

/* Creates the temporary directory and picks a free port (no daemon yet). */
int ts_init(struct test_server *ts);

/* Starts the daemon with --bind 127.0.0.1 --port <port> --loglevel debug,
 * then the NULL-terminated extra arguments (which win), and waits until it
 * accepts connections.  Returns 0, or -1 (see the log) if it exited or did
 * not answer in time. */
int ts_start(struct test_server *ts, const char *const *extra);

/* ts_start without its own arguments: extra alone (a -c FILE, say, that
 * sets bind 127.0.0.1 and port ts->port itself, so that the file decides
 * every key, loglevel included). */
int ts_start_bare(struct test_server *ts, const char *const *extra);

/* ts_start_bare in two halves, for a test that acts while the daemon
 * starts: ts_spawn_bare forks it and returns at once (0, or -1; ts->pid
 * set), ts_wait_ready waits until it accepts connections (0, or -1 when it
 * exited or did not answer in time; then it is gone). */
int ts_spawn_bare(struct test_server *ts, const char *const *extra);
int ts_wait_ready(struct test_server *ts);

/* ts_init + ts_start. */
int ts_start_new(struct test_server *ts, const char *const *extra);

/* Waits up to secs for the daemon to exit, sending nothing.  Returns the
 * exit status, 128+signal when killed by one, or -1 when it did not stop
 * in time (then it is killed). */
int ts_wait_exit(struct test_server *ts, int secs);

/* SIGTERM and ts_wait_exit (60 s). */
int ts_stop(struct test_server *ts);

/* SIGKILL and reap: a crash. */
void ts_kill9(struct test_server *ts);

/* Removes the temporary directory (stop the daemon first). */
void ts_cleanup(struct test_server *ts);

/* Prints the daemon's log to stderr, for a failing test's diagnosis. */
void ts_dump_log(const struct test_server *ts);

/* A blocking TCP connection to the daemon, with TS_READ_TIMEOUT_S read and
 * write timeouts.  -1 on failure. */
int tc_connect(const struct test_server *ts);

/* Connects to a Unix socket path, same timeouts.  -1 on failure. */
int tc_connect_unix(const char *path);

/* Sends all of s (or n bytes of buf).  0, or -1 on error. */
int tc_send(int fd, const char *s);
int tc_sendn(int fd, const void *buf, size_t n);

/* Reads exactly strlen(expected) bytes and compares.  0 on a match; else -1
 * and tc_last() shows what came (escaped). */
int tc_expect(int fd, const char *expected);

/* Reads one whole RESP reply (arrays and bulks included) into buf as raw
 * bytes, NUL-terminated.  Returns its length, or -1 on timeout, close, a
 * reply larger than cap - 1, or bad framing. */
long tc_read_reply(int fd, char *buf, size_t cap);

/* Reads one reply that must be ":<n>\r\n" and stores n.  0, or -1 (see
 * tc_last()). */
int tc_read_int(int fd, long long *n);

/* 1 when the peer closes the connection within the read timeout (bytes
 * read before the close are dropped), else 0. */
int tc_closed(int fd);

/* Socket option (level, name) of this process's TCP socket connected to
 * 127.0.0.1:port (a client library's, found by its peer): 1 set, 0 not,
 * -1 no such socket. */
int tc_peer_sockopt(int port, int level, int name);

/* The last bytes tc_expect / tc_read_int saw, escaped, for messages. */
const char *tc_last(void);

/* Turns O_NONBLOCK on (on != 0) or off for fd. */
void tc_set_nonblock(int fd, int on);

/* Resident set of a process in KiB (VmRSS), or -1. */
long ts_rss_kib(pid_t pid);

/* CPU time (user + system) a process has used, in seconds, or -1. */
double ts_cpu_s(pid_t pid);

/* Raises this process's soft open-file limit to its hard limit (for tests
 * that hold thousands of sockets).  Returns the new soft limit, or -1. */
long ts_raise_nofile(void);

#endif
