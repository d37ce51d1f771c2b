/* daemon/state.h - the state file: locks and tokens across a restart, and
 * no lock granted twice across a crash.
 *
 * Owns: the file named by `state_file` (format in state.c, file handling in
 * state_file.h) and the engine's durability hooks (struct lock_journal).
 * Does not own: the locks themselves (the engine) or when to stop.
 *
 * Life cycle: state_start() reads the file if there is one, one record at a
 * time.  A file marked "clean" gives back its held locks with their tokens
 * and remaining TTLs.  A journal (marked "running") means the last run
 * crashed: its long and FOREVER leases are restored from their records, and
 * no other key is granted until its lease horizon has passed (and for at
 * least recovery_delay_ms), since a lease granted before the crash may run
 * until then.  A missing file is a first start.  Then a fresh journal is
 * written and the daemon appends to it while it runs: a new lease horizon
 * or token ceiling (each fdatasynced at once), each long lease (written at
 * once, fdatasynced by state_commit with the others of the same callback,
 * before any reply of that callback can reach a socket: group commit) and
 * its end.  When a write fails the grant is refused, not made unsafe; when
 * an fdatasync fails the daemon stops at once (state_commit).  state_save_clean() writes the held locks and
 * "clean" at a clean stop; if that fails the journal stays, and the next
 * start recovers from it.
 */
#ifndef CACHIFY_DAEMON_STATE_H
#define CACHIFY_DAEMON_STATE_H

struct server;

/* Loads the state file (if configured), restores locks or starts crash
 * recovery, and writes a fresh journal.  Returns 0, or -1 after logging
 * why (unreadable or malformed file, cannot write): the daemon must not
 * start then, since it could not keep its promises across a crash. */
int state_start(struct server *srv);

/* Makes the long leases written since the last call durable: one
 * fdatasync for all of them.  Called at the end of every event callback
 * that can grant or extend (a connection's turn, the expiry timer), and
 * before any reply is written to a socket; a no-op when nothing waits.
 * When fdatasync fails, the replies that promise those leases are still
 * unsent: the daemon logs why and exits at once without sending them (as
 * etcd and PostgreSQL do when fsync fails: the kernel may have dropped the
 * pages, so no later sync could be trusted); the next start recovers from
 * the journal as after a crash. */
void state_commit(struct server *srv);

/* Long-lease records written but not yet made durable by state_commit. */
unsigned state_uncommitted(const struct server *srv);

/* Writes held locks, the last token and "clean".  Returns 0, or -1 after
 * logging why.  A no-op when no state file is configured. */
int state_save_clean(struct server *srv);

/* Closes the journal and frees what state_start made.  Safe to call
 * without a state file or after a failed start. */
void state_free(struct server *srv);

#endif
