/* daemon/log.h - leveled log lines on stderr.
 *
 * Owns: the current log level and the line format
 * "YYYY-MM-DD HH:MM:SS.mmm [level] message".  Does not own: what is worth
 * logging.  Lines below the level are dropped before formatting.
 */
#ifndef CACHIFY_DAEMON_LOG_H
#define CACHIFY_DAEMON_LOG_H

#include "daemon/config.h"

/* Sets the lowest level that is written (LOG_INFO until called). */
void log_set_level(enum log_level level);

/* 1 when lines of `level` are written: skip costly formatting otherwise. */
int log_enabled(enum log_level level);

/* Writes one line at `level` (printf format, no trailing newline needed). */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
