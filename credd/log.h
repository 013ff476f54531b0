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

/*
 * Operational events an operator parses and alerts on (the contract is
 * docs/operations.md): one line of key=value fields,
 *     event=NAME key=value key="a value" ... msg="human text"
 * fields is "event=NAME ..." as the caller built it, each value a bare
 * token or put through log_value; fmt is the readable message, which is
 * quoted (and '"' and '\' escaped) here. No strerror is appended: pass
 * error=log_errno_name(e). Never a secret in either.
 */
void log_event_info(const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_event_warn(const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
noreturn void log_event_fatal(const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * err's symbolic name ("EADDRINUSE") for an error= field: stable across
 * locales and C libraries' wording; "E?" for an unknown number.
 */
const char *log_errno_name(int err);

#define LOG_VALUE_MAX 260 /* a log_value buffer: 256 bytes of s, quoted */
/*
 * s as a key=value value into buf (LOG_VALUE_MAX bytes): as it is when
 * it is a non-empty run of [A-Za-z0-9_.:/@+-], else in double quotes with
 * '"' and '\' escaped; control bytes become '?', s is capped (cut at 240
 * bytes). Returns buf.
 */
const char *log_value(char buf[LOG_VALUE_MAX], const char *s);

#endif
