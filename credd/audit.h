/*
 * audit.h - the audit log: one record per security decision.
 *
 * Written to syslog (LOG_AUTHPRIV | LOG_NOTICE) as fixed key=value
 * fields, and optionally appended to a JSON-lines file (reopened on
 * SIGHUP and SIGUSR1: debian/credd.logrotate). Fields: time, node, event, uid, user, op, scope, outcome,
 * class, oid, fp (8-hex SHA-256 fingerprint of a token), reason,
 * trace_id, correlation_id, count. Never token material: callers pass
 * fingerprints only. User-supplied strings are quoted and capped.
 *
 * Refusals a peer can repeat at will (forbidden ops, bad endpoint
 * secrets, caps) go through audit_refusal, which coalesces them per
 * (uid, event, op, reason): the first of a window is written at once,
 * the rest are counted and written as one record with count=N when the
 * window ends. A flood costs a bounded number of records that still
 * state the true count. Loop thread only.
 */
#ifndef CREDD_AUDIT_H
#define CREDD_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct secret;

struct audit_event {
	const char *event; /* token_issued, token_refused, consent_started,
				consent_completed, consent_rejected, refresh_ok,
				refresh_failed, logout, revoke, session_open,
				session_close, request_refused,
				connection_refused */
	uid_t uid;	   /* peer uid, (uid_t)-1 if none */
	const char *user;
	const char *op; /* protocol op or NULL */
	const char *scope;
	const char *outcome; /* ok, refused, error, pending */
	const char *cls;     /* error class, or NULL */
	const char *oid;
	const char *fp;	    /* token fingerprint or NULL */
	const char *reason; /* short, no secrets */
	const char *trace_id;
	const char *correlation_id;
	const char *workload; /* the caller's workload kind (issue 14) */
	const char *session;  /* the caller's session id, or NULL */
	const char *unbound;  /* session_open: why no cgroup was bound */
	const char *identity; /* "app": the platform's app token, or NULL */
	unsigned long long
	    count; /* coalesced refusals this record stands for; 0: omitted */
};

/* node: shown on every line; file: JSON-lines path or NULL. 0 or -errno. */
int audit_init(const char *node, const char *file);
/* Reopen the file (SIGHUP, after logrotate). */
int audit_reopen(void);
void audit_close(void);
void audit_log(const struct audit_event *ev);

#define AUDIT_COALESCE_MS 10000 /* window per (uid, event, op, reason) */
#define AUDIT_COALESCE_MAX 4096 /* keys tracked at once */

struct event_loop;
/*
 * Let audit_refusal arm its own flush timer on ev (credd's loop). Without
 * a loop (tests), call audit_refusal_flush yourself. NULL detaches.
 */
void audit_attach(struct event_loop *ev);
/*
 * A refusal, coalesced as above; now_ms is monotonic (event_now_ms).
 * ev->count is ignored. The strings are copied when they must be kept.
 */
void audit_refusal(const struct audit_event *ev, int64_t now_ms);
/*
 * Write one record for each key whose window ended by now_ms and that
 * counted repeats; with is_all, every pending count (shutdown). Returns
 * the monotonic ms when the next window ends, or -1 if none is open.
 */
int64_t audit_refusal_flush(int64_t now_ms, int is_all);
/* Keys tracked now (tests). */
size_t audit_refusal_pending(void);

/*
 * The syslog form of ev (without the "credd-audit: " prefix) into buf:
 * key=value fields, strings quoted with '"' and '\\' escaped, control
 * and non-ASCII bytes as '?', each capped. Absent fields are omitted.
 * Returns the length, or -EMSGSIZE if bufsz is too small. For tests.
 */
int audit_format_kv(const struct audit_event *ev, char *buf, size_t bufsz);

/* First 8 hex digits of SHA-256 of the token; out has 9 bytes. */
void audit_fingerprint(const struct secret *tok, char out[9]);

#endif
