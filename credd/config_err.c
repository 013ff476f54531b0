/*
 * config_err.c - the error message of a credd.conf parse: "file:line:
 * message" while a line is read, "file: message" for what is checked at
 * the end (line 0), and user strings made printable and capped before
 * they are echoed in one.
 *
 * Must never: write past the caller's buffer or leave it unterminated,
 * or log (the caller decides what to do with the message).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "entra/util.h"

#include "config.h"
#include "config_int.h"

void
config_err(struct parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (p->err == NULL || p->errsz == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->line > 0)
		(void)snprintf(p->err, p->errsz, "%s:%u: %s", p->name, p->line,
		    msg);
	else
		(void)snprintf(p->err, p->errsz, "%s: %s", p->name, msg);
}

/* A user string made safe and short for an error message. */
const char *
config_err_quote(char *buf, size_t bufsz, const char *s)
{
	return util_log_str(buf, bufsz, s, CONFIG_QUOTE_MAX);
}
