/*
 * log.c - credd's operational log, to syslog (LOG_DAEMON) or to stderr
 * as "ident[pid]: level: message".
 *
 * Every function preserves errno, so a caller can log and then return
 * -errno. Messages are capped at LOG_MSG_MAX bytes, and control
 * characters become '?' so that one call is one line. Before log_init()
 * everything goes to stderr. log_event_* write the key=value lines of
 * docs/operations.md; log_value quotes one value for them. This file never sees token material: the
 * callers must not pass any (the audit log is audit.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

#define LOG_MSG_MAX 1024

static struct {
	char ident[64];
	int is_stderr;
	int is_debug;
} log_state = { "credd", 1, 0 };

void
log_init(const char *ident, int to_stderr, int debug)
{
	int saved = errno;

	if (ident != NULL && *ident != '\0')
		(void)snprintf(log_state.ident, sizeof(log_state.ident), "%s",
		    ident);
	log_state.is_stderr = to_stderr;
	log_state.is_debug = debug;
	/* openlog keeps the pointer: log_state.ident lives forever. */
	if (!to_stderr)
		openlog(log_state.ident, LOG_PID, LOG_DAEMON);
	errno = saved;
}

void
log_set_debug(int debug)
{
	log_state.is_debug = debug;
}

static const char *
level_name(int pri)
{
	switch (pri) {
	case LOG_CRIT:
		return "fatal";
	case LOG_WARNING:
		return "warning";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* Format, append strerror(err) when err != 0, flatten, emit. */
static void __attribute__((format(printf, 3, 0)))
log_emit(int pri, int err, const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX], ebuf[128], line[LOG_MSG_MAX + 160];
	const char *estr;
	size_t i, n;
	int len;

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err != 0) {
		estr = strerror_r(err, ebuf, sizeof(ebuf));
		n = strlen(msg);
		(void)snprintf(msg + n, sizeof(msg) - n, ": %s", estr);
	}
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	if (!log_state.is_stderr) {
		syslog(pri, "%s", msg);
		return;
	}
	len = snprintf(line, sizeof(line), "%s[%ld]: %s: %s\n", log_state.ident,
	    (long)getpid(), level_name(pri), msg);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line))
		len = (int)sizeof(line) - 1;
	/* One write, so lines from several processes do not interleave. */
	if (write(STDERR_FILENO, line, (size_t)len) < 0) {
		/* Nowhere left to report it. */
	}
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_info(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_INFO, 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_debug(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (!log_state.is_debug)
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

noreturn void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

noreturn void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *
log_value(char buf[LOG_VALUE_MAX], const char *s)
{
	static const char bare[] =
	    "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/@+-";
	size_t i, n = 0, len;

	if (s == NULL)
		s = "";
	len = strlen(s);
	if (len > 0 && len < LOG_VALUE_MAX - 20 && strspn(s, bare) == len) {
		memcpy(buf, s, len + 1);
		return buf;
	}
	buf[n++] = '"';
	/* Room for an escaped byte, the closing quote and the NUL. */
	for (i = 0; s[i] != '\0' && i < 240 && n + 4 <= LOG_VALUE_MAX; i++) {
		char c = s[i];

		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = '?';
		if (c == '"' || c == '\\')
			buf[n++] = '\\';
		buf[n++] = c;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

const char *
log_errno_name(int err)
{
	const char *s = strerrorname_np(err);

	return s != NULL ? s : "E?";
}

static void __attribute__((format(printf, 2, 3)))
log_emitf(int pri, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(pri, 0, fmt, ap);
	va_end(ap);
}

/* fields msg="fmt..." with the message escaped; errno kept. */
static void __attribute__((format(printf, 3, 0)))
log_event_emit(int pri, const char *fields, const char *fmt, va_list ap)
{
	char text[LOG_MSG_MAX], q[640]; /* fields + q fit LOG_MSG_MAX */
	size_t i, n = 0;

	(void)vsnprintf(text, sizeof(text), fmt, ap);
	for (i = 0; text[i] != '\0' && n + 3 < sizeof(q) - 1; i++) {
		if (text[i] == '"' || text[i] == '\\')
			q[n++] = '\\';
		q[n++] = text[i];
	}
	q[n] = '\0';
	log_emitf(pri, "%s msg=\"%s\"", fields, q);
}

void
log_event_info(const char *fields, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_event_emit(LOG_INFO, fields, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_event_warn(const char *fields, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_event_emit(LOG_WARNING, fields, fmt, ap);
	va_end(ap);
	errno = saved;
}

noreturn void
log_event_fatal(const char *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_event_emit(LOG_CRIT, fields, fmt, ap);
	va_end(ap);
	exit(1);
}
