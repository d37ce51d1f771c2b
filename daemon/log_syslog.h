/* daemon/log_syslog.h - the syslog(3) side of log.c.
 *
 * Owns: openlog/syslog/closelog and the mapping of cachifyd's levels to
 * syslog priorities.  A file of its own because <syslog.h> defines
 * LOG_DEBUG, LOG_INFO and LOG_WARNING as macros, which would rename the
 * constants of enum log_level (log.h) in any file that included both.
 */
#ifndef CACHIFY_DAEMON_LOG_SYSLOG_H
#define CACHIFY_DAEMON_LOG_SYSLOG_H

/* openlog(ident) with the pid, facility LOG_DAEMON, connected at once.
 * ident must stay valid until log_syslog_close. */
void log_syslog_open(const char *ident);

/* One line at level (enum log_level's value: 0 debug .. 3 error). */
void log_syslog_line(int level, const char *msg);

/* closelog(). */
void log_syslog_close(void);

#endif
