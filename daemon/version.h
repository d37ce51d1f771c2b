/* daemon/version.h - the one place cachifyd's version string lives.
 *
 * Owns: CACHIFYD_VERSION, printed by `cachifyd --version` and reported by
 * STATS.  Does not own: any protocol version (the wire protocol has its own,
 * documented in docs/protocol.md).  Bump it here and nowhere else.
 */
#ifndef CACHIFY_DAEMON_VERSION_H
#define CACHIFY_DAEMON_VERSION_H

#define CACHIFYD_VERSION "0.1.0"

#endif
