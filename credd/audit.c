/*
 * audit.c - the audit log: one record per security decision, as fixed
 * key=value fields to syslog (LOG_AUTHPRIV | LOG_NOTICE) and, when
 * configured, as one JSON object per line in a file.
 *
 * Every string field is capped and made printable ASCII before it is
 * written, so a user name with a newline or a quote cannot forge a
 * field or a line. This file must never see token material: callers
 * pass fingerprints (audit_fingerprint), never tokens. The file is
 * opened with O_NOFOLLOW and mode 0600 and written with one write() per
 * record, so records from one process never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "entra/secret.h"
#include "entra/util.h"

#include "audit.h"
#include "log.h"

#define AUDIT_LINE_MAX 4096
#define AUDIT_NODE_MAX 64

/* The string fields in output order, each with its cap in bytes. */
static const struct audit_field {
	const char *name;
	size_t off;
	size_t cap;
} audit_fields[] = {
    {"user", offsetof(struct audit_event, user), 64},
    {"op", offsetof(struct audit_event, op), 32},
    {"scope", offsetof(struct audit_event, scope), 256},
    {"outcome", offsetof(struct audit_event, outcome), 32},
    {"class", offsetof(struct audit_event, cls), 32},
    {"oid", offsetof(struct audit_event, oid), 64},
    {"fp", offsetof(struct audit_event, fp), 16},
    {"reason", offsetof(struct audit_event, reason), 256},
    {"trace_id", offsetof(struct audit_event, trace_id), 64},
    {"correlation_id", offsetof(struct audit_event, correlation_id), 64},
};

#define AUDIT_EVENT_CAP 64

static struct {
	char node[AUDIT_NODE_MAX + 1];
	char *path;
	int fd;
	int is_failing; /* warned about a failed write; quiet until fixed */
} audit_state = {"", NULL, -1, 0};

static const char *
field_value(const struct audit_event *ev, const struct audit_field *f)
{
	return *(const char *const *)(const void *)((const char *)ev + f->off);
}

static int
open_file(const char *path)
{
	int fd;

	fd = open(path,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
	    0600);
	return fd < 0 ? -errno : fd;
}

int
audit_init(const char *node, const char *file)
{
	int fd;

	audit_close();
	util_log_str(audit_state.node, sizeof(audit_state.node),
	    node != NULL ? node : "", AUDIT_NODE_MAX);
	if (file == NULL)
		return 0;
	audit_state.path = strdup(file);
	if (audit_state.path == NULL)
		return -ENOMEM;
	fd = open_file(file);
	if (fd < 0) {
		free(audit_state.path);
		audit_state.path = NULL;
		return fd;
	}
	audit_state.fd = fd;
	return 0;
}

/* Open the new file first: if that fails, keep writing to the old one. */
int
audit_reopen(void)
{
	int fd;

	if (audit_state.path == NULL)
		return 0;
	fd = open_file(audit_state.path);
	if (fd < 0)
		return fd;
	util_closep(&audit_state.fd);
	audit_state.fd = fd;
	audit_state.is_failing = 0;
	return 0;
}

void
audit_close(void)
{
	util_closep(&audit_state.fd);
	free(audit_state.path);
	audit_state.path = NULL;
	audit_state.node[0] = '\0';
	audit_state.is_failing = 0;
}

static int
put(char *buf, size_t bufsz, size_t *i, char c)
{
	if (*i + 1 >= bufsz) /* keep room for the NUL */
		return -EMSGSIZE;
	buf[(*i)++] = c;
	return 0;
}

/*
 * Append [ ]key="value" with '"' and '\' escaped (val is already
 * printable), or key=value for numbers (is_quoted 0).
 */
static int
kv_append(char *buf, size_t bufsz, size_t *n, const char *key, const char *val,
    int is_quoted)
{
	size_t i = *n;
	const char *s;
	int r = 0;

	if (i > 0)
		r |= put(buf, bufsz, &i, ' ');
	for (s = key; *s != '\0'; s++)
		r |= put(buf, bufsz, &i, *s);
	r |= put(buf, bufsz, &i, '=');
	if (is_quoted)
		r |= put(buf, bufsz, &i, '"');
	for (s = val; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			r |= put(buf, bufsz, &i, '\\');
		r |= put(buf, bufsz, &i, *s);
	}
	if (is_quoted)
		r |= put(buf, bufsz, &i, '"');
	if (r != 0)
		return -EMSGSIZE;
	buf[i] = '\0';
	*n = i;
	return 0;
}

/* Event names are identifiers from code; anything else becomes '?'. */
static void
event_name(char *dst, size_t dstsz, const char *ev)
{
	size_t i;

	util_log_str(dst, dstsz, ev != NULL ? ev : "", AUDIT_EVENT_CAP);
	for (i = 0; dst[i] != '\0'; i++)
		if (!((dst[i] >= 'a' && dst[i] <= 'z') ||
			(dst[i] >= '0' && dst[i] <= '9') || dst[i] == '_'))
			dst[i] = '?';
	if (dst[0] == '\0')
		(void)snprintf(dst, dstsz, "?");
}

int
audit_format_kv(const struct audit_event *ev, char *buf, size_t bufsz)
{
	char val[257], num[32];
	size_t i, n = 0;
	int r;

	if (buf == NULL || bufsz == 0)
		return -EMSGSIZE;
	buf[0] = '\0';
	if (ev == NULL)
		return -EINVAL;
	/* event, node and uid first: they are what a reader greps for. */
	event_name(val, sizeof(val), ev->event);
	r = kv_append(buf, bufsz, &n, "event", val, 0);
	if (r == 0 && audit_state.node[0] != '\0')
		r = kv_append(buf, bufsz, &n, "node", audit_state.node, 1);
	if (r == 0 && ev->uid != (uid_t)-1) {
		(void)snprintf(num, sizeof(num), "%lu", (unsigned long)ev->uid);
		r = kv_append(buf, bufsz, &n, "uid", num, 0);
	}
	for (i = 0;
	     r == 0 && i < sizeof(audit_fields) / sizeof(audit_fields[0]);
	     i++) {
		const struct audit_field *f = &audit_fields[i];
		const char *v = field_value(ev, f);

		if (v == NULL)
			continue;
		util_log_str(val, sizeof(val), v, f->cap);
		r = kv_append(buf, bufsz, &n, f->name, val, 1);
	}
	if (r < 0) {
		buf[0] = '\0';
		return r;
	}
	return (int)n;
}

/* A capped, printable copy as a JSON string; 0 or -ENOMEM. */
static int
json_put(json_t *o, const char *key, const char *v, size_t cap)
{
	char val[257];

	util_log_str(val, sizeof(val), v, cap);
	return json_object_set_new(o, key, json_string(val)) == 0 ? 0 : -ENOMEM;
}

static char *
format_json(const struct audit_event *ev, time_t now)
{
	char iso[32];
	struct tm tm;
	json_t *o;
	char *line = NULL;
	size_t i;
	int r = 0;

	o = json_object();
	if (o == NULL)
		return NULL;
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		iso[0] = '\0';
	r |= json_put(o, "time", iso, sizeof(iso));
	r |= json_object_set_new(o, "ts", json_integer((json_int_t)now));
	if (audit_state.node[0] != '\0')
		r |= json_put(o, "node", audit_state.node, AUDIT_NODE_MAX);
	r |= json_put(
	    o, "event", ev->event != NULL ? ev->event : "", AUDIT_EVENT_CAP);
	if (ev->uid != (uid_t)-1)
		r |= json_object_set_new(
		    o, "uid", json_integer((json_int_t)ev->uid));
	for (i = 0; i < sizeof(audit_fields) / sizeof(audit_fields[0]); i++) {
		const struct audit_field *f = &audit_fields[i];
		const char *v = field_value(ev, f);

		if (v != NULL)
			r |= json_put(o, f->name, v, f->cap);
	}
	if (r == 0)
		line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return line;
}

static void
write_json(const struct audit_event *ev)
{
	char *line;
	size_t len;
	ssize_t n;

	line = format_json(ev, (time_t)util_now());
	if (line == NULL) {
		log_warnx("audit: cannot format a record");
		return;
	}
	/* The NUL becomes the newline: one record, one write(). */
	len = strlen(line);
	line[len] = '\n';
	do {
		n = write(audit_state.fd, line, len + 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != len + 1) {
		if (!audit_state.is_failing)
			log_warn("audit: write to %s failed (further "
				 "failures not logged until it works)",
			    audit_state.path);
		audit_state.is_failing = 1;
	} else
		audit_state.is_failing = 0;
	free(line);
}

void
audit_log(const struct audit_event *ev)
{
	char buf[AUDIT_LINE_MAX];
	int saved = errno;

	if (ev == NULL)
		return;
	if (audit_format_kv(ev, buf, sizeof(buf)) >= 0)
		syslog(LOG_AUTHPRIV | LOG_NOTICE, "credd-audit: %s", buf);
	if (audit_state.fd >= 0)
		write_json(ev);
	errno = saved;
}

void
audit_fingerprint(const struct secret *tok, char out[9])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[crypto_hash_sha256_BYTES];
	size_t i;

	out[0] = '\0';
	if (tok == NULL || sodium_init() < 0)
		return;
	(void)crypto_hash_sha256(h, (const unsigned char *)tok->ptr, tok->len);
	for (i = 0; i < 4; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 0x0f];
	}
	out[8] = '\0';
	sodium_memzero(h, sizeof(h));
}
