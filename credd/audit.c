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
#include "event.h"
#include "log.h"

#define AUDIT_LINE_MAX 4096
#define AUDIT_NODE_MAX 64

/* The string fields in output order, each with its cap in bytes. */
static const struct audit_field {
	const char *name;
	size_t off;
	size_t cap;
} audit_fields[] = {
	{ "user", offsetof(struct audit_event, user), 64 },
	{ "op", offsetof(struct audit_event, op), 32 },
	{ "scope", offsetof(struct audit_event, scope), 256 },
	{ "outcome", offsetof(struct audit_event, outcome), 32 },
	{ "class", offsetof(struct audit_event, cls), 32 },
	{ "oid", offsetof(struct audit_event, oid), 64 },
	{ "fp", offsetof(struct audit_event, fp), 16 },
	{ "reason", offsetof(struct audit_event, reason), 256 },
	{ "trace_id", offsetof(struct audit_event, trace_id), 64 },
	{ "correlation_id", offsetof(struct audit_event, correlation_id), 64 },
	{ "workload", offsetof(struct audit_event, workload), 32 },
	{ "session", offsetof(struct audit_event, session), 32 },
	{ "unbound_reason", offsetof(struct audit_event, unbound), 128 },
	{ "identity", offsetof(struct audit_event, identity), 16 },
};

#define AUDIT_EVENT_CAP 64

static struct {
	char node[AUDIT_NODE_MAX + 1];
	char *path;
	int fd;
	int is_failing; /* warned about a failed write; quiet until fixed */
} audit_state = { "", NULL, -1, 0 };

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
	(void)audit_refusal_flush(0, 1); /* pending counts are not lost */
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
	if (r == 0 && ev->count > 0) {
		(void)snprintf(num, sizeof(num), "%llu", ev->count);
		r = kv_append(buf, bufsz, &n, "count", num, 0);
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
	r |= json_put(o, "event", ev->event != NULL ? ev->event : "",
	    AUDIT_EVENT_CAP);
	if (ev->uid != (uid_t)-1)
		r |= json_object_set_new(o, "uid",
		    json_integer((json_int_t)ev->uid));
	for (i = 0; i < sizeof(audit_fields) / sizeof(audit_fields[0]); i++) {
		const struct audit_field *f = &audit_fields[i];
		const char *v = field_value(ev, f);

		if (v != NULL)
			r |= json_put(o, f->name, v, f->cap);
	}
	if (ev->count > 0)
		r |= json_object_set_new(o, "count",
		    json_integer((json_int_t)ev->count));
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

/* ---- coalesced refusals ---- */

#define COALESCE_BUCKETS 256

struct coalesce {
	uid_t uid;
	char event[AUDIT_EVENT_CAP + 1];
	char op[33];
	char reason[257];
	char user[65];
	int64_t window_end;
	unsigned long long repeats; /* refusals after the one written */
	struct coalesce *next;
};

static struct {
	struct coalesce *buckets[COALESCE_BUCKETS];
	size_t n;
	struct event_loop *ev;
	struct event_timer *timer;
} coalesce_state;

static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static size_t
coalesce_hash(const struct audit_event *ev)
{
	const char *parts[3] = { ev->event, ev->op, ev->reason };
	uint32_t h = 2166136261u ^ (uint32_t)ev->uid;
	const char *p;
	size_t i;

	for (i = 0; i < 3; i++) {
		for (p = str_or_empty(parts[i]); *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 16777619u;
		h = (h ^ 0xff) * 16777619u;
	}
	return h % COALESCE_BUCKETS;
}

/* Keys are compared on the same capped, printable copies that are kept. */
static int
coalesce_match(const struct coalesce *c, const struct audit_event *ev)
{
	char ev_[AUDIT_EVENT_CAP + 1], op[33], reason[257];

	util_log_str(ev_, sizeof(ev_), str_or_empty(ev->event),
	    AUDIT_EVENT_CAP);
	util_log_str(op, sizeof(op), str_or_empty(ev->op), 32);
	util_log_str(reason, sizeof(reason), str_or_empty(ev->reason), 256);
	return c->uid == ev->uid && strcmp(c->event, ev_) == 0 &&
	    strcmp(c->op, op) == 0 && strcmp(c->reason, reason) == 0;
}

/* The record for a window's repeats. */
static void
coalesce_write(const struct coalesce *c)
{
	struct audit_event ev = {
		.event = c->event,
		.uid = c->uid,
		.user = c->user[0] != '\0' ? c->user : NULL,
		.op = c->op[0] != '\0' ? c->op : NULL,
		.outcome = "refused",
		.reason = c->reason[0] != '\0' ? c->reason : NULL,
		.count = c->repeats,
	};

	audit_log(&ev);
}

static void coalesce_arm(int64_t due);

static void
coalesce_timer_cb(struct event_loop *ev, void *arg)
{
	int64_t next;

	(void)arg;
	coalesce_state.timer = NULL;
	next = audit_refusal_flush(event_now_ms(ev), 0);
	if (next >= 0)
		coalesce_arm(next);
}

static void
coalesce_arm(int64_t due)
{
	if (coalesce_state.ev == NULL || coalesce_state.timer != NULL)
		return; /* windows are equally long: the armed one ends first */
	coalesce_state.timer =
	    event_timer_at(coalesce_state.ev, due, coalesce_timer_cb, NULL);
}

void
audit_attach(struct event_loop *ev)
{
	if (coalesce_state.ev != NULL)
		event_timer_cancel(coalesce_state.ev, &coalesce_state.timer);
	coalesce_state.ev = ev;
}

int64_t
audit_refusal_flush(int64_t now_ms, int is_all)
{
	struct coalesce **pp, *c;
	int64_t next = -1;
	size_t i;

	for (i = 0; i < COALESCE_BUCKETS; i++)
		for (pp = &coalesce_state.buckets[i]; (c = *pp) != NULL;) {
			if (!is_all && c->window_end > now_ms) {
				if (next < 0 || c->window_end < next)
					next = c->window_end;
				pp = &c->next;
				continue;
			}
			if (c->repeats > 0)
				coalesce_write(c);
			*pp = c->next;
			free(c);
			coalesce_state.n--;
		}
	return next;
}

void
audit_refusal(const struct audit_event *ev, int64_t now_ms)
{
	struct audit_event first;
	struct coalesce *c;
	size_t h;

	if (ev == NULL)
		return;
	h = coalesce_hash(ev);
	for (c = coalesce_state.buckets[h]; c != NULL; c = c->next)
		if (coalesce_match(c, ev) && c->window_end > now_ms) {
			c->repeats++;
			return;
		}
	/* A new window: written now, counted from here. */
	first = *ev;
	first.count = 1;
	audit_log(&first);
	if (coalesce_state.n >= AUDIT_COALESCE_MAX)
		(void)audit_refusal_flush(now_ms,
		    1); /* rare: many uids at once */
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return; /* the record is written; only the coalescing is lost */
	c->uid = ev->uid;
	util_log_str(c->event, sizeof(c->event), str_or_empty(ev->event),
	    AUDIT_EVENT_CAP);
	util_log_str(c->op, sizeof(c->op), str_or_empty(ev->op), 32);
	util_log_str(c->reason, sizeof(c->reason), str_or_empty(ev->reason),
	    256);
	util_log_str(c->user, sizeof(c->user), str_or_empty(ev->user), 64);
	c->window_end = now_ms + AUDIT_COALESCE_MS;
	c->next = coalesce_state.buckets[h];
	coalesce_state.buckets[h] = c;
	coalesce_state.n++;
	coalesce_arm(c->window_end);
}

size_t
audit_refusal_pending(void)
{
	return coalesce_state.n;
}
