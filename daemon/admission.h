/* daemon/admission.h - admission control: who may connect, and how many:
 * protected mode, the open file limit against maxclients, and refusing a
 * connection politely.
 *
 * Owns: the loopback test for peers and bind addresses, the -DENIED text,
 * raising RLIMIT_NOFILE at start (and lowering maxclients when the hard
 * limit is too low), and the start-up warnings about exposed listeners.
 * Does not own: the listeners or the accept callback (server.c), which call
 * in here.
 *
 * Protected mode (like Redis's): while protected_mode is yes and no
 * password is set, a client whose address is not loopback gets one -DENIED
 * line saying how to fix it and is disconnected.  Loopback (127.0.0.0/8,
 * ::1, ::ffff:127.x) and Unix socket clients are always served.
 */
#ifndef CACHIFY_DAEMON_ADMISSION_H
#define CACHIFY_DAEMON_ADMISSION_H

#include <sys/socket.h>

#include "daemon/config.h"

/* File descriptors kept for everything but clients: listeners, the event
 * loop's own (epoll, signal pipe), stdio, the state file and its temporary
 * copy.  Redis keeps 32 for the same reasons. */
#define ADMISSION_RESERVED_FDS 32

/* The -DENIED line of protected mode, CRLF included. */
#define ADMISSION_DENIED_REPLY                                                \
    "-DENIED cachifyd is in protected mode: no password is set, so only "   \
    "clients on this host (loopback or Unix socket) are served. To serve "  \
    "other hosts, either set a password (requirepass or requirepass_file) " \
    "and AUTH with it, or bind to 127.0.0.1 only, or, on a trusted "        \
    "network, set 'protected_mode no'; then restart cachifyd.\r\n"

/* 1 when sa is a loopback address or a Unix socket peer. */
int admission_is_local(const struct sockaddr *sa);

/* 1 when a client from sa must be refused by protected mode under cfg. */
int admission_denied(const struct cachify_config *cfg,
                     const struct sockaddr *sa);

/* Sends msg (best effort, never blocking), then closes fd without sending a
 * reset over it: pending input is drained first, since close() with unread
 * input makes the kernel send RST, which can destroy msg in flight. */
void admission_refuse(int fd, const char *msg);

/* Makes room for maxclients connections: raises the soft RLIMIT_NOFILE up
 * to maxclients + ADMISSION_RESERVED_FDS (at most the hard limit).  Returns
 * the number of clients that really fit, which is maxclients unless the
 * limit could not be raised enough (then a warning names both numbers and
 * how to fix it), or -1 when not even one client fits (logged). */
long long admission_fit_maxclients(long long maxclients);

/* 1 when the bind address text names loopback only. */
int admission_bind_is_loopback(const char *addr);

/* Logs start-up warnings about exposure when `exposed` (some TCP listener
 * is not loopback-only) and no password is set: such clients are refused
 * in protected mode, and open to anyone without it. */
void admission_warn_exposure(const struct cachify_config *cfg, int exposed);

#endif
