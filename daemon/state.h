/* daemon/state.h - the state file: locks and tokens across a restart.
 *
 * Owns: the file named by `state_file` (JSON, written with jansson to a
 * temporary file, fsynced, renamed over the old one, directory fsynced).
 * Does not own: the locks themselves (the engine) or when to stop.
 *
 * Life cycle: at start state_load() reads the file if there is one.  A file
 * marked "clean" gives back its held locks with their tokens and remaining
 * TTLs; a file still marked "running" means the last run crashed, so grants
 * are refused for recovery_delay_ms.  A missing file is a first start.
 * Then the file is rewritten marked "running" with a token ceiling: before
 * a token above it is issued a new ceiling is written, so after a crash the
 * next tokens start above it.  A failed write does not stop grants; it is
 * logged and retried once a second.  At a clean stop state_save_clean()
 * writes the held locks and "clean".
 */
#ifndef CACHIFY_DAEMON_STATE_H
#define CACHIFY_DAEMON_STATE_H

struct server;

/* Loads the state file (if configured), restores locks or starts crash
 * recovery, and marks the file "running".  Returns 0, or -1 after logging
 * why (unreadable or malformed file, cannot write): the daemon must not
 * start then, since it could not keep its promises across a crash. */
int state_start(struct server *srv);

/* Writes held locks, the last token and "clean".  Returns 0, or -1 after
 * logging why.  A no-op when no state file is configured. */
int state_save_clean(struct server *srv);

#endif
