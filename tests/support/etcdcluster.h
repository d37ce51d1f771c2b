/* tests/support/etcdcluster.h - a real three-member etcd cluster for the
 * suites that test the etcd:// backend.
 *
 * Owns: starting Debian's etcd (ETCD_BIN, else /usr/bin/etcd) as three
 * members on free loopback ports with their data in a temporary directory
 * (in /dev/shm when it exists: an fsync there is cheap, which keeps the
 * suites' timing sane on a loaded machine), waiting until the cluster
 * takes writes, killing one member (kill -9), and stopping everything.
 * Everything it started is stopped on every path: by ec_stop, by an atexit
 * handler and by the signals that end a test run (SIGINT, SIGTERM,
 * SIGHUP, SIGABRT), in the process that started the cluster only (a forked
 * Check child inherits both and must not stop its parent's cluster), and,
 * should that process be killed outright, by the kernel: each member gets
 * SIGKILL when its parent dies (PR_SET_PDEATHSIG).  No Check here.
 */
#ifndef CACHIFY_TESTS_ETCDCLUSTER_H
#define CACHIFY_TESTS_ETCDCLUSTER_H

#include <stddef.h>
#include <sys/types.h>

#define EC_MEMBERS 3

struct etcd_cluster {
    pid_t pid[EC_MEMBERS];        /* -1: not running */
    int client_port[EC_MEMBERS];
    int peer_port[EC_MEMBERS];
    char dir[128];                /* data directories and logs */
    pid_t owner;
};

/* Starts the cluster and waits (at most 60 s) until every member answers
 * and a write goes through.  0, or -1 with the reason on stderr (the
 * members' logs are printed). */
int ec_start(struct etcd_cluster *ec);

/* kill -9 of member i, reaped. */
void ec_kill9(struct etcd_cluster *ec, int i);

/* Waits (at most timeout_s) until every member but skip (-1: none) takes
 * a write again, e.g. after ec_kill9 of the leader: a new one is elected.
 * 0, or -1. */
int ec_wait_writable(const struct etcd_cluster *ec, int skip,
                     double timeout_s);

/* Stops every member still running (SIGTERM, then SIGKILL after 10 s) and
 * removes the directory.  Safe to call twice. */
void ec_stop(struct etcd_cluster *ec);

/* "etcd://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/?prefix=<prefix>" into
 * buf[cap]; user may be NULL (else "user:password@" first). */
void ec_url(const struct etcd_cluster *ec, const char *userpass,
            const char *prefix, char *buf, size_t cap);

/* A POST of body to path on member i, blocking (10 s timeout): the HTTP
 * status, or -1; the answer's body into out[cap] (may be NULL). */
int ec_post(const struct etcd_cluster *ec, int i, const char *path,
            const char *body, const char *auth_token, char *out, size_t cap);

/* Prints every member's log to stderr (a failing test's diagnosis). */
void ec_dump_logs(const struct etcd_cluster *ec);

#endif
