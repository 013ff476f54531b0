/*
 * log.h - credd's debug/operational log: syslog (LOG_DAEMON) or stderr.
 * The audit log is separate (audit.h). Never pass token material here.
 * Every function preserves errno. log_warn/fatal append ": strerror(errno)".
 */
#ifndef CREDD_LOG_H
#define CREDD_LOG_H

#include <stdnoreturn.h>

/* ident for syslog; to_stderr: log to stderr instead; debug: enable log_debug. */
void log_init(const char *ident, int to_stderr, int debug);
void log_set_debug(int debug);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
