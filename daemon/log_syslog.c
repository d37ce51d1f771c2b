/* daemon/log_syslog.c - the syslog(3) side of log.c (see log_syslog.h). */
#include "daemon/log_syslog.h"

#include <syslog.h>

void log_syslog_open(const char *ident)
{
    /* LOG_NDELAY: the socket to the log daemon is opened now, before a
     * sandbox or the open-file limit could make the first line fail. */
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_syslog_line(int level, const char *msg)
{
    /* Indexed by enum log_level: debug, info, warning, error. */
    static const int priority[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING,
                                    LOG_ERR };

    if (level < 0 || level > 3)
        level = 3;
    syslog(priority[level], "%s", msg);
}

void log_syslog_close(void)
{
    closelog();
}
