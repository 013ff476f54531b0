/*
 * session.c - the open-session table and the SDK endpoint's secrets.
 * Doubly linked lists: sessions open and close at login rate, not token
 * rate, so O(n) lookups are fine up to a few tens of thousands of
 * sessions per node. A secret check compares with every live secret
 * (constant time per comparison, no early exit), also O(n); expired
 * secrets are pruned whenever the list is walked. A session points at
 * its secret and the secret back at its session, so either ends the
 * other in O(1).
 *
 * Expiry and the binding checks are plain functions of the table and a
 * clock passed in (sessions_expire, sessions_snapshot, sessions_apply);
 * the timer and the thread that fills a snapshot in live in sessweep.c.
 *
 * Must never: compare secrets with strcmp, keep a secret outside struct
 * secret, free one without wiping it, or look anything up (NSS, /proc)
 * itself: it runs on the loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sodium.h>

#include "audit.h"
#include "cgroup.h"
#include "session.h"
#include "entra/secret.h"
#include "entra/util.h"

struct ep_secret;

struct session {
	LIST_ENTRY(session) link;
	char id[SESSION_ID_LEN + 1];
	char *user;
	uid_t uid;
	char *service, *tty, *workload;
	char *cgroup;	 /* bound cgroup v2 path; NULL: known by uid */
	const char *why; /* static: why it could not be bound, or NULL */
	int kind;	 /* workload kind index (owned by the caller) */
	int64_t opened;
	int64_t last_used;	  /* opened, or its secret presented */
	struct ep_secret *secret; /* NULL: none (endpoint off, or expired) */
};

struct ep_secret {
	LIST_ENTRY(ep_secret) link;
	struct secret *value; /* SESSION_SECRET_LEN hex digits */
	char *user;
	uid_t uid;
	struct session *owner; /* NULL for an sdk_env secret */
	int64_t minted, expires_on;
};

struct sessions {
	LIST_HEAD(, session) head; /* newest first */
	size_t n;
	LIST_HEAD(, ep_secret) secrets; /* newest first */
	size_t nsecrets;
	struct sessions_counters count;
};

static void
ep_secret_drop(struct sessions *ss, struct ep_secret *e)
{
	LIST_REMOVE(e, link);
	if (e->owner != NULL)
		e->owner->secret = NULL;
	secret_free(e->value);
	free(e->user);
	free(e);
	ss->nsecrets--;
}

struct sessions *
sessions_new(void)
{
	struct sessions *ss = calloc(1, sizeof(struct sessions));

	if (ss != NULL) {
		LIST_INIT(&ss->head);
		LIST_INIT(&ss->secrets);
	}
	return ss;
}

static void
session_free(struct session *s)
{
	free(s->user);
	free(s->service);
	free(s->tty);
	free(s->workload);
	free(s->cgroup);
	free(s);
}

/* Unlink and free s; its secret ends with it. */
static void
session_end(struct sessions *ss, struct session *s)
{
	if (s->secret != NULL)
		ep_secret_drop(ss, s->secret);
	LIST_REMOVE(s, link);
	session_free(s);
	ss->n--;
}

void
sessions_free(struct sessions *ss)
{
	if (ss == NULL)
		return;
	while (!LIST_EMPTY(&ss->head))
		session_end(ss, LIST_FIRST(&ss->head));
	while (!LIST_EMPTY(&ss->secrets))
		ep_secret_drop(ss, LIST_FIRST(&ss->secrets));
	free(ss);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int
dup_failed(const char *orig, const char *copy)
{
	return orig != NULL && copy == NULL;
}

int
sessions_open(struct sessions *ss, const char *user, uid_t uid,
    const char *service, const char *tty, const char *workload, int64_t now,
    char id[SESSION_ID_LEN + 1])
{
	unsigned char rnd[SESSION_ID_LEN / 2];
	struct session *s;

	id[0] = '\0';
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(s->id, sizeof(s->id), rnd, sizeof(rnd));
	s->user = strdup(user);
	s->uid = uid;
	s->service = dup_or_null(service);
	s->tty = dup_or_null(tty);
	s->workload = dup_or_null(workload);
	s->opened = s->last_used = now;
	if (s->user == NULL || dup_failed(service, s->service) ||
	    dup_failed(tty, s->tty) || dup_failed(workload, s->workload)) {
		session_free(s);
		return -ENOMEM;
	}
	LIST_INSERT_HEAD(&ss->head, s, link);
	ss->n++;
	memcpy(id, s->id, sizeof(s->id));
	return 0;
}

static struct session *
session_find(const struct sessions *ss, const char *id)
{
	struct session *s;

	if (id == NULL || id[0] == '\0')
		return NULL;
	LIST_FOREACH(s, &ss->head, link)
	if (strcmp(s->id, id) == 0)
		return s;
	return NULL;
}

int
sessions_close(struct sessions *ss, const char *user, const char *id)
{
	struct session *s = session_find(ss, id);

	if (s == NULL || strcmp(s->user, user) != 0)
		return -ENOENT;
	session_end(ss, s);
	return 0;
}

int
sessions_drop(struct sessions *ss, const char *id)
{
	struct session *s = session_find(ss, id);

	if (s == NULL)
		return -ENOENT;
	session_end(ss, s);
	ss->count.dropped++;
	return 0;
}

size_t
sessions_count(const struct sessions *ss)
{
	return ss->n;
}

const struct sessions_counters *
sessions_counters(const struct sessions *ss)
{
	return &ss->count;
}

/*
 * Drop expired secrets; count uid's sdk_env ones and find the oldest
 * (the list is newest first: the last one seen).
 */
static size_t
secrets_prune(struct sessions *ss, int64_t now, uid_t uid,
    struct ep_secret **oldest)
{
	struct ep_secret *e, *next;
	size_t n = 0;

	*oldest = NULL;
	for (e = LIST_FIRST(&ss->secrets); e != NULL; e = next) {
		next = LIST_NEXT(e, link);
		if (e->expires_on <= now) {
			ep_secret_drop(ss, e);
			continue;
		}
		if (e->uid == uid && e->owner == NULL) {
			n++;
			*oldest = e;
		}
	}
	return n;
}

int
sessions_secret_mint(struct sessions *ss, const char *user, uid_t uid,
    const char *session, int64_t now, int64_t ttl, size_t max_per_uid,
    char out[SESSION_SECRET_LEN + 1], int64_t *expires_on)
{
	unsigned char rnd[SESSION_SECRET_LEN / 2];
	char hex[SESSION_SECRET_LEN + 1];
	struct ep_secret *e, *oldest;
	struct session *owner = NULL;
	size_t n;

	out[0] = '\0';
	*expires_on = 0;
	if (session != NULL) {
		owner = session_find(ss, session);
		if (owner == NULL)
			return -ENOENT;
		user = owner->user; /* the session's binding */
		uid = owner->uid;
	}
	n = secrets_prune(ss, now, uid, &oldest);
	if (owner == NULL && max_per_uid > 0 && n >= max_per_uid &&
	    oldest != NULL)
		ep_secret_drop(ss, oldest);
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	sodium_memzero(rnd, sizeof(rnd));
	e->value = secret_new(hex, SESSION_SECRET_LEN);
	e->user = strdup(user);
	if (e->value == NULL || e->user == NULL) {
		sodium_memzero(hex, sizeof(hex));
		secret_free(e->value);
		free(e->user);
		free(e);
		return -ENOMEM;
	}
	e->uid = uid;
	e->minted = now;
	e->expires_on = now + ttl;
	if (owner != NULL) {
		if (owner->secret != NULL) /* one secret per session */
			ep_secret_drop(ss, owner->secret);
		owner->secret = e;
		e->owner = owner;
	}
	LIST_INSERT_HEAD(&ss->secrets, e, link);
	ss->nsecrets++;
	memcpy(out, hex, sizeof(hex));
	sodium_memzero(hex, sizeof(hex));
	*expires_on = e->expires_on;
	return 0;
}

int
sessions_secret_check(struct sessions *ss, const char *presented, size_t len,
    int64_t now, uid_t *uid, const char **user)
{
	struct ep_secret *e, *hit = NULL;

	*uid = (uid_t)-1;
	*user = NULL;
	if (presented == NULL || len != SESSION_SECRET_LEN)
		return -ENOENT; /* the length is not secret */
	/* Compare with every entry: the time does not tell which matched. */
	LIST_FOREACH(e, &ss->secrets, link)
	if (secret_memeq(e->value->ptr, presented, SESSION_SECRET_LEN) &&
	    hit == NULL)
		hit = e;
	if (hit == NULL)
		return -ENOENT;
	if (hit->expires_on <= now) {
		ep_secret_drop(ss, hit);
		return -EKEYEXPIRED;
	}
	if (hit->owner != NULL && hit->owner->last_used < now)
		hit->owner->last_used = now; /* the session is in use */
	*uid = hit->uid;
	*user = hit->user;
	return 0;
}

int
sessions_secret_of(const struct sessions *ss, const char *session,
    char out[SESSION_SECRET_LEN + 1], int64_t *expires_on)
{
	const struct session *s = session_find(ss, session);

	out[0] = '\0';
	*expires_on = 0;
	if (s == NULL || s->secret == NULL)
		return -ENOENT;
	memcpy(out, s->secret->value->ptr, SESSION_SECRET_LEN);
	out[SESSION_SECRET_LEN] = '\0';
	*expires_on = s->secret->expires_on;
	return 0;
}

size_t
sessions_secret_count(const struct sessions *ss)
{
	return ss->nsecrets;
}

static void
session_end_for(struct sessions *ss, struct session *s, const char *reason,
    sessions_end_fn *fn, void *arg)
{
	if (fn != NULL)
		fn(arg, s->user, s->uid, s->service, reason);
	session_end(ss, s);
}

size_t
sessions_expire(struct sessions *ss, int64_t now, int64_t idle,
    sessions_end_fn *fn, void *arg)
{
	struct session *s, *snext;
	struct ep_secret *e, *enext;
	size_t n = 0;

	for (s = LIST_FIRST(&ss->head); s != NULL && idle > 0; s = snext) {
		snext = LIST_NEXT(s, link);
		if (now - s->last_used >= idle) {
			session_end_for(ss, s, "idle", fn, arg);
			ss->count.ended_idle++;
			n++;
		}
	}
	for (e = LIST_FIRST(&ss->secrets); e != NULL; e = enext) {
		enext = LIST_NEXT(e, link);
		if (e->expires_on <= now)
			ep_secret_drop(ss, e);
	}
	return n;
}

static int
binding_cmp(const void *a, const void *b)
{
	const struct sessions_binding *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return strcmp(x->user, y->user);
}

void
sessions_snapshot_clear(struct sessions_snapshot *snap)
{
	size_t i;

	if (snap == NULL)
		return;
	for (i = 0; i < snap->n; i++)
		free(snap->b[i].user);
	free(snap->b);
	memset(snap, 0, sizeof(*snap));
}

/* Borrow the table's names while sorting; copy only the distinct ones. */
static void
snapshot_add(struct sessions_snapshot *snap, const char *user, uid_t uid,
    int has_session)
{
	struct sessions_binding *b = &snap->b[snap->n++];

	b->user = (char *)(uintptr_t)user; /* borrowed until copied below */
	b->uid = uid;
	b->has_session = has_session;
	b->account = b->alive = -1;
}

int
sessions_snapshot(const struct sessions *ss, int64_t now,
    struct sessions_snapshot *out)
{
	const struct session *s;
	const struct ep_secret *e;
	size_t i, j;

	memset(out, 0, sizeof(*out));
	out->taken = now;
	if (ss->n + ss->nsecrets == 0)
		return 0;
	out->b = calloc(ss->n + ss->nsecrets, sizeof(*out->b));
	if (out->b == NULL)
		return -ENOMEM;
	LIST_FOREACH(s, &ss->head, link)
	snapshot_add(out, s->user, s->uid, 1);
	LIST_FOREACH(e, &ss->secrets, link)
	if (e->owner == NULL)
		snapshot_add(out, e->user, e->uid, 0);
	qsort(out->b, out->n, sizeof(*out->b), binding_cmp);
	/* Fold duplicates into the first of each run, then own the names. */
	for (i = 0, j = 0; i < out->n; i++) {
		if (j > 0 && binding_cmp(&out->b[j - 1], &out->b[i]) == 0) {
			out->b[j - 1].has_session |= out->b[i].has_session;
			continue;
		}
		out->b[j++] = out->b[i];
	}
	out->n = j;
	for (i = 0; i < out->n; i++)
		if ((out->b[i].user = strdup(out->b[i].user)) == NULL) {
			out->n = i; /* the rest are still borrowed */
			sessions_snapshot_clear(out);
			return -ENOMEM;
		}
	return 0;
}

static const struct sessions_binding *
binding_find(const struct sessions_snapshot *snap, const char *user, uid_t uid)
{
	struct sessions_binding key = { .user = (char *)(uintptr_t)user,
		.uid = uid };

	if (snap->n == 0)
		return NULL;
	return bsearch(&key, snap->b, snap->n, sizeof(*snap->b), binding_cmp);
}

size_t
sessions_apply(struct sessions *ss, const struct sessions_snapshot *snap,
    int64_t grace, sessions_end_fn *fn, void *arg)
{
	const struct sessions_binding *b;
	struct session *s, *snext;
	struct ep_secret *e, *enext;
	size_t n = 0;

	for (s = LIST_FIRST(&ss->head); s != NULL; s = snext) {
		snext = LIST_NEXT(s, link);
		if (s->opened > snap->taken ||
		    (b = binding_find(snap, s->user, s->uid)) == NULL)
			continue; /* opened after the snapshot */
		if (b->account == 0) {
			session_end_for(ss, s, "account_gone", fn, arg);
			ss->count.ended_account++;
			n++;
		} else if (b->alive == 0 && s->cgroup == NULL &&
		    s->opened <= snap->taken - grace) {
			/* A bound session lives as long as its cgroup is
			 * populated (cgwatch.h), whatever uid runs in it. */
			session_end_for(ss, s, "no_process", fn, arg);
			ss->count.ended_no_process++;
			n++;
		}
	}
	for (e = LIST_FIRST(&ss->secrets); e != NULL; e = enext) {
		enext = LIST_NEXT(e, link);
		if (e->owner != NULL || e->minted > snap->taken ||
		    (b = binding_find(snap, e->user, e->uid)) == NULL)
			continue;
		if (b->account == 0) {
			ep_secret_drop(ss, e);
			ss->count.secrets_ended_account++;
		}
	}
	return n;
}

/* ---- cgroup bindings (issue 14) ---- */

int
sessions_set_binding(struct sessions *ss, const char *id, int kind,
    const char *cgroup, const char *why)
{
	struct session *s = session_find(ss, id);
	char *copy = NULL;

	if (s == NULL)
		return -ENOENT;
	if (cgroup != NULL && (copy = strdup(cgroup)) == NULL)
		return -ENOMEM;
	free(s->cgroup);
	s->cgroup = copy;
	s->kind = kind;
	s->why = cgroup == NULL ? why : NULL;
	return 0;
}

int
sessions_bound_find(const struct sessions *ss, const char *path,
    struct sessions_info *out)
{
	const struct session *s, *best = NULL;
	size_t n, best_n = 0;

	memset(out, 0, sizeof(*out));
	if (path == NULL)
		return -ENOENT;
	LIST_FOREACH(s, &ss->head, link)
	{
		if (s->cgroup == NULL || !cgroup_path_contains(s->cgroup, path))
			continue;
		n = strlen(s->cgroup);
		if (best == NULL || n > best_n) {
			best = s;
			best_n = n;
		}
	}
	if (best == NULL)
		return -ENOENT;
	return sessions_info(ss, best->id, out);
}

int
sessions_info(const struct sessions *ss, const char *id,
    struct sessions_info *out)
{
	const struct session *s = session_find(ss, id);

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return -ENOENT;
	out->id = s->id;
	out->user = s->user;
	out->uid = s->uid;
	out->kind = s->kind;
	out->cgroup = s->cgroup;
	out->why = s->why;
	out->service = s->service;
	return 0;
}

int
sessions_cgroup_user(const struct sessions *ss, const char *cgroup,
    const char **user)
{
	const struct session *s;

	*user = NULL;
	LIST_FOREACH(s, &ss->head, link)
	if (s->cgroup != NULL && strcmp(s->cgroup, cgroup) == 0) {
		*user = s->user;
		return 0;
	}
	return -ENOENT;
}

size_t
sessions_unbound_kinds(const struct sessions *ss, uid_t uid, int *kinds,
    size_t max, const char **ids)
{
	const struct session *s;
	size_t n = 0;

	LIST_FOREACH(s, &ss->head, link)
	{
		if (s->cgroup != NULL || s->uid != uid)
			continue;
		if (n < max) {
			kinds[n] = s->kind;
			if (ids != NULL)
				ids[n] = s->id;
		}
		n++;
	}
	return n < max ? n : max;
}

size_t
sessions_end_cgroup(struct sessions *ss, const char *cgroup,
    const char *keep_service, const char *reason, sessions_end_fn *fn,
    void *arg)
{
	struct session *s, *next;
	size_t n = 0;

	for (s = LIST_FIRST(&ss->head); s != NULL; s = next) {
		next = LIST_NEXT(s, link);
		if (s->cgroup == NULL || strcmp(s->cgroup, cgroup) != 0)
			continue;
		if (keep_service != NULL && s->service != NULL &&
		    strcmp(s->service, keep_service) == 0)
			continue;
		session_end_for(ss, s, reason, fn, arg);
		ss->count.ended_cgroup++;
		n++;
	}
	return n;
}

size_t
sessions_list_bound(const struct sessions *ss, sessions_each_fn *fn, void *arg)
{
	const struct session *s;
	struct sessions_info in;
	size_t n = 0;

	LIST_FOREACH(s, &ss->head, link)
	{
		if (s->cgroup == NULL)
			continue;
		if (fn != NULL && sessions_info(ss, s->id, &in) == 0)
			fn(arg, &in);
		n++;
	}
	return n;
}

size_t
sessions_all_kinds(const struct sessions *ss, uid_t uid, int *kinds, size_t max)
{
	const struct session *s;
	size_t n = 0;

	LIST_FOREACH(s, &ss->head, link)
	if (s->uid == uid && n < max)
		kinds[n++] = s->kind;
	return n;
}

int
sessions_secret_kind(const struct sessions *ss, const char *presented,
    size_t len, int *kind)
{
	const struct ep_secret *e, *hit = NULL;

	*kind = -1;
	if (presented == NULL || len != SESSION_SECRET_LEN)
		return -ENOENT;
	LIST_FOREACH(e, &ss->secrets, link)
	if (secret_memeq(e->value->ptr, presented, SESSION_SECRET_LEN) &&
	    hit == NULL)
		hit = e;
	if (hit == NULL || hit->owner == NULL)
		return -ENOENT;
	*kind = hit->owner->kind;
	return 0;
}

void
sessions_audit_end(void *arg, const char *user, uid_t uid, const char *service,
    const char *reason)
{
	struct audit_event ev = {
		.event = "session_end",
		.uid = uid,
		.user = user,
		.outcome = "ok",
		.reason = reason,
	};

	(void)arg;
	(void)service;
	audit_log(&ev);
}
