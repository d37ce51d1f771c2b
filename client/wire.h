/* client/wire.h - internal: what the client library says to cachifyd and
 * what the answers mean, for the sync and the async API alike.
 *
 * Owns: the commands the client sends (enum wire_op); checking a handle's
 * options, a lock's options, keys, tokens and times against the bounds of
 * proto/limits.h, with the messages the sync handle keeps; the keys of
 * decorated calls (formatted, checked, with py-cachify's suffixes); turning a
 * request into its arguments (struct wire_args) and their RESP bytes; how
 * long its reply may take; and what a reply means: a status, a value and
 * the message (struct wire_result), including the error codes (-LOCKED,
 * -TIMEOUT, -NOAUTH, -WRONGPASS, anything else) and the wording of
 * "<key> is already locked!".
 * Does not own: sockets, event loops, deadlines, reconnecting, the reply
 * parser (proto/resp.c) or the embedded store.  No I/O and no state: the
 * blocking transport (sync.c over sync_net.c) and the bufferevent one
 * (async_net.c) both call it, so a protocol change -- a new ACQUIRE
 * option, a new error code -- is made here and nowhere else.
 *
 * Messages borrow: a struct wire_result points into the reply and the key
 * it was made from, so it is read (its message copied) before either is
 * freed.
 */
#ifndef CACHIFY_CLIENT_WIRE_H
#define CACHIFY_CLIENT_WIRE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "client/cachify.h"
#include "proto/resp.h"

/* ---- commands ---- */

enum wire_op {
    WIRE_AUTH,      /* AUTH password */
    WIRE_PING,      /* PING */
    WIRE_ACQUIRE,   /* ACQUIRE key TTL ms|FOREVER [WAIT ms|FOREVER] [SESSION] */
    WIRE_RELEASE,   /* RELEASE key token */
    WIRE_FORCE,     /* RELEASE key (whoever holds it) */
    WIRE_IS_LOCKED, /* IS_LOCKED key */
    WIRE_EXTEND,    /* EXTEND key token ms */
    WIRE_PTTL,      /* PTTL key */
    WIRE_POOL_ACQUIRE, /* POOL_ACQUIRE key max TTL ms|FOREVER [WAIT ..] [SESSION] */
    WIRE_POOL_RELEASE, /* POOL_RELEASE key token */
    WIRE_POOL_FORCE,   /* POOL_RELEASE key (every slot) */
    WIRE_POOL_SIZE,    /* POOL_SIZE key */
    WIRE_POOL_EXTEND,  /* POOL_EXTEND key token ms */
};

/* The words of cachifyd's -WRONGTYPE answers (docs/protocol.md, "One
 * keyspace"), so the backends that word them themselves (mem:, etcd://)
 * say the same. */
#define WIRE_NOT_A_POOL                                                      \
    "WRONGTYPE Operation against a lock key: POOL_* commands need a pool " \
    "key or a free one"
#define WIRE_NOT_A_LOCK                                                      \
    "WRONGTYPE Operation against a pool key: use POOL_ACQUIRE, "          \
    "POOL_RELEASE, POOL_SIZE or POOL_EXTEND"

/* The command word of op ("RELEASE" for both releases). */
const char *wire_op_name(enum wire_op op);


/* ---- options and arguments, checked ---- */

/* A handle's options with the defaults filled in (cachify_options). */
struct wire_options {
    int connect_timeout_ms;
    int io_timeout_ms;
    long long default_exp_ms;
    const char *prefix; /* borrowed from the caller's options, or a
                           literal: "" for none, WIRE_PYCACHIFY_PREFIX */
    size_t prefixlen;
    int pycachify_keys; /* 1: decorated keys take CACHIFY_IMPL_OP_* */
};

/* py-cachify's default key prefix (init_cachify(prefix='PYC-')): the
 * prefix of a handle with pycachify_keys and no prefix of its own. */
#define WIRE_PYCACHIFY_PREFIX "PYC-"

/* wire_lock's wait_ms for WAIT FOREVER.  Inside the library only: the
 * public CACHIFY_FOREVER is turned into it by wire_lock_opts, so the
 * transports and the embedded store keep "negative: no bound". */
#define WIRE_WAIT_FOREVER (-1LL)

/* A lock's options resolved for ACQUIRE (cachify_lock_opts). */
struct wire_lock {
    long long ttl_ms;  /* 0: no expiry (TTL FOREVER) */
    long long wait_ms; /* 0: one attempt; WIRE_WAIT_FOREVER: no bound */
    int session;       /* 1: SESSION */
};

/* Each check returns CACHIFY_OK or CACHIFY_ERR_ARG, with the reason in
 * err[errlen] (err may be NULL: the async API reports only the status).
 * The reasons are short (well under 256 bytes). */

/* Writes the reason, printf-style, into err[errlen] when err is not NULL
 * (cut to fit) and returns CACHIFY_ERR_ARG: every check's way of saying
 * no, url.c's included. */
int wire_refuse(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* opts (NULL: every default) into *out. */
int wire_options(const struct cachify_options *opts, struct wire_options *out,
                 char *err, size_t errlen);

/* key, which the handle will prefix with prefixlen bytes: not NULL, not
 * empty, at most CACHIFY_KEY_MAX bytes with the prefix.  *klen: its
 * length without the prefix. */
int wire_check_key(const char *key, size_t prefixlen, size_t *klen, char *err,
                   size_t errlen);

/* opts (NULL: CACHIFY_LOCK_OPTS_DEFAULT) into *out; CACHIFY_EXP_DEFAULT
 * (0) becomes default_exp_ms, CACHIFY_EXP_NONE ttl_ms 0, CACHIFY_FOREVER
 * WIRE_WAIT_FOREVER; any other negative is refused. */
int wire_lock_opts(const struct cachify_lock_opts *opts,
                   long long default_exp_ms, struct wire_lock *out, char *err,
                   size_t errlen);

/* The key of a decorated call, printf-style from fmt and ap, then suffix
 * (NULL: none; py-cachify's "-lock" / "-once"): into buf[cap] when it fits
 * (buf may be NULL with cap 0), else into an allocation; *out is buf or
 * the allocation, which the caller frees.  CACHIFY_OK; CACHIFY_ERR_ARG for
 * a bad format, a key longer than CACHIFY_KEY_MAX or one with a NUL byte
 * inside (a %c given 0: the key would be cut there without a word);
 * CACHIFY_ERR_NOMEM (err not written). */
int wire_format_key(char *buf, size_t cap, char **out, const char *suffix,
                    char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 7, 0)));

/* The token of a release with a token (a forced release has none). */
int wire_check_release(uint64_t token, char *err, size_t errlen);

/* The largest pool cachifyd accepts (engine/lock_pool.h). */
#define WIRE_POOL_MAX_SIZE 1000000u

/* A pool's max_size (1..WIRE_POOL_MAX_SIZE). */
int wire_check_max_size(unsigned max_size, char *err, size_t errlen);

/* The token and the new lifetime of an extend. */
int wire_check_extend(uint64_t token, long long ms, char *err, size_t errlen);

/* ---- requests ---- */

/* One request.  Its inputs are checked first (above). */
struct wire_req {
    enum wire_op op;
    const char *key;       /* prefixed key; AUTH: the password; borrowed */
    size_t keylen;
    uint64_t token;        /* RELEASE, EXTEND */
    long long ms;          /* EXTEND */
    struct wire_lock lock; /* ACQUIRE, POOL_ACQUIRE */
    unsigned max_size;     /* POOL_ACQUIRE */
};

/* The most arguments of a command: POOL_ACQUIRE key max TTL n WAIT n
 * SESSION. */
#define WIRE_ARGS_MAX 8
/* A number argument: 20 digits of a 64-bit value, a sign and the NUL. */
#define WIRE_NUM_MAX 24

/* A request's arguments.  argv points into num (and into the request's
 * key), so a wire_args is filled in place and never copied. */
struct wire_args {
    int argc;
    const char *argv[WIRE_ARGS_MAX];
    size_t len[WIRE_ARGS_MAX];
    int nnum;
    char num[3][WIRE_NUM_MAX]; /* at most three numbers: POOL_ACQUIRE's
                                  max_size, TTL and WAIT */
};

/* The arguments of q, command word first, into *a. */
void wire_args(const struct wire_req *q, struct wire_args *a);

/* Writes a as one RESP array of bulk strings into out (NULL: writes
 * nothing) and returns its size in bytes either way, so the caller can
 * measure first. */
size_t wire_encode(const struct wire_args *a, char *out);

/* A request up to this size is encoded on the caller's stack: any command
 * whose key (prefix included) is under ~400 bytes; the largest ACQUIRE
 * adds about 100 bytes of framing and arguments. */
#define WIRE_REQUEST_STACK 512

/* The bytes of q: in buf[cap] when they fit, else in an allocation the
 * caller frees (when the result is not buf).  *len is their count.  NULL
 * when out of memory. */
char *wire_request(const struct wire_req *q, char *buf, size_t cap,
                   size_t *len);

/* How long the reply to op may take after it is sent, in ms: io_timeout_ms,
 * plus the wait of a waiting ACQUIRE (whose reply comes when the wait
 * ends); -1 (no bound) for a wait without one.  lock: ACQUIRE's, else
 * unused (may be NULL). */
long long wire_reply_timeout_ms(enum wire_op op, const struct wire_lock *lock,
                                int io_timeout_ms);

/* ---- replies ---- */

/* The tail of the message of CACHIFY_LOCKED and CACHIFY_TIMEOUT, after the
 * key as the caller gave it (py-cachify's wording, without the handle's
 * prefix, as py-cachify leaves out its own). */
#define WIRE_LOCKED_TAIL " is already locked!"

/* The tail of the message of CACHIFY_FULL (and a pool's CACHIFY_TIMEOUT). */
#define WIRE_FULL_TAIL " pool is full"

/* The tail of the message of CACHIFY_LOST, after the key as the caller
 * gave it: a decorated call or a scoped lock whose release by token found
 * the lock gone. */
#define WIRE_LOST_TAIL                                                        \
    " was no longer held at its release: it expired or was force-released " \
    "while the body ran"

/* Messages wire_reply words itself ("bad token ..."): 80 bytes hold the
 * longest with a 20-digit number. */
#define WIRE_NOTE_MAX 80

/* What a reply means.  text may point into note, so a wire_result is read
 * where it was filled and never copied. */
struct wire_result {
    int status;      /* CACHIFY_OK, or the error the reply means;
                        CACHIFY_ERR_PROTO: not the reply this command has,
                        so the connection's stream cannot be trusted and the
                        connection must be dropped */
    long long value; /* CACHIFY_OK: ACQUIRE's token (> 0); 1 or 0 for
                        RELEASE, IS_LOCKED, EXTEND; PTTL's milliseconds */
    const char *head, *text, *tail; /* the message, in three pieces: the
                        caller keeps head text tail; all "" on success */
    char note[WIRE_NOTE_MAX];
};

/* Maps r, the reply to op, into *out.  key: the key as the caller gave it,
 * for the "already locked" message (NULL: ""). */
void wire_reply(enum wire_op op, const struct resp_reply *r, const char *key,
                struct wire_result *out);

/* *out for a lock held elsewhere (status CACHIFY_LOCKED or
 * CACHIFY_TIMEOUT), as wire_reply words it: the embedded backends use it
 * so every backend says the same. */
void wire_locked(struct wire_result *out, int status, const char *key);

/* The same for a full pool: "<key> pool is full" (CACHIFY_FULL, or
 * CACHIFY_TIMEOUT after a pool wait). */
void wire_full(struct wire_result *out, int status, const char *key);

#endif
