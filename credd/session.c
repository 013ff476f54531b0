/*
 * session.c - the open-session table and the SDK endpoint's secrets.
 * Linked lists: sessions open and close at login rate, not token rate,
 * so O(n) lookups are fine up to a few tens of thousands of sessions per
 * node. A secret check compares with every live secret (constant time
 * per comparison, no early exit), also O(n); expired secrets are pruned
 * whenever the list is walked.
 *
 * Must never: compare secrets with strcmp, keep a secret outside struct
 * secret, or free one without wiping it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "session.h"
#include "entra/secret.h"
#include "entra/util.h"

struct session {
	char id[SESSION_ID_LEN + 1];
	char *user;
	uid_t uid;
	char *service, *tty, *workload;
	int64_t opened;
	struct session *next;
};

struct ep_secret {
	struct secret *value;	/* SESSION_SECRET_LEN hex digits */
	char *user;
	uid_t uid;
	char session[SESSION_ID_LEN + 1]; /* "" for an sdk_env secret */
	int64_t minted, expires_on;
	struct ep_secret *next;
};

struct sessions {
	struct session *head;
	size_t n;
	struct ep_secret *secrets;
	size_t nsecrets;
};

static void
ep_secret_free(struct ep_secret *e)
{
	if (e == NULL)
		return;
	secret_free(e->value);
	free(e->user);
	free(e);
}

/* Unlink and free *pp; *pp becomes the next entry. */
static void
ep_secret_drop(struct sessions *ss, struct ep_secret **pp)
{
	struct ep_secret *e = *pp;

	*pp = e->next;
	ep_secret_free(e);
	ss->nsecrets--;
}

struct sessions *
sessions_new(void)
{
	return calloc(1, sizeof(struct sessions));
}

static void
session_free(struct session *s)
{
	free(s->user);
	free(s->service);
	free(s->tty);
	free(s->workload);
	free(s);
}

void
sessions_free(struct sessions *ss)
{
	struct session *s, *next;

	if (ss == NULL)
		return;
	for (s = ss->head; s != NULL; s = next) {
		next = s->next;
		session_free(s);
	}
	while (ss->secrets != NULL)
		ep_secret_drop(ss, &ss->secrets);
	free(ss);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

int
sessions_open(struct sessions *ss, const char *user, uid_t uid,
    const char *service, const char *tty, const char *workload,
    char id[SESSION_ID_LEN + 1])
{
	unsigned char rnd[SESSION_ID_LEN / 2];
	struct session *s;

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
	s->opened = util_now();
	if (s->user == NULL) {
		session_free(s);
		return -ENOMEM;
	}
	s->next = ss->head;
	ss->head = s;
	ss->n++;
	memcpy(id, s->id, sizeof(s->id));
	return 0;
}

int
sessions_close(struct sessions *ss, const char *user, const char *id)
{
	struct session **pp, *s;
	struct ep_secret **ep;

	for (pp = &ss->head; (s = *pp) != NULL; pp = &s->next)
		if (strcmp(s->id, id) == 0 && strcmp(s->user, user) == 0) {
			*pp = s->next;
			session_free(s);
			ss->n--;
			/* The session's endpoint secret ends with it. */
			for (ep = &ss->secrets; *ep != NULL;) {
				if (strcmp((*ep)->session, id) == 0)
					ep_secret_drop(ss, ep);
				else
					ep = &(*ep)->next;
			}
			return 0;
		}
	return -ENOENT;
}

size_t
sessions_count(const struct sessions *ss)
{
	return ss->n;
}

/* Drop expired secrets; with uid set, count that uid's sdk_env ones. */
static size_t
secrets_prune(struct sessions *ss, int64_t now, uid_t uid,
    struct ep_secret ***oldest)
{
	struct ep_secret **pp;
	size_t n = 0;

	*oldest = NULL;
	for (pp = &ss->secrets; *pp != NULL;) {
		if ((*pp)->expires_on <= now) {
			ep_secret_drop(ss, pp);
			continue;
		}
		if ((*pp)->uid == uid && (*pp)->session[0] == '\0') {
			n++;
			/* New ones go to the head: the last seen is the oldest. */
			*oldest = pp;
		}
		pp = &(*pp)->next;
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
	struct ep_secret *e, **oldest;
	size_t n;

	out[0] = '\0';
	*expires_on = 0;
	n = secrets_prune(ss, now, uid, &oldest);
	if (session == NULL && max_per_uid > 0 && n >= max_per_uid &&
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
		ep_secret_free(e);
		return -ENOMEM;
	}
	e->uid = uid;
	if (session != NULL)
		snprintf(e->session, sizeof(e->session), "%s", session);
	e->minted = now;
	e->expires_on = now + ttl;
	e->next = ss->secrets;
	ss->secrets = e;
	ss->nsecrets++;
	memcpy(out, hex, sizeof(hex));
	sodium_memzero(hex, sizeof(hex));
	*expires_on = e->expires_on;
	return 0;
}

int
sessions_secret_check(struct sessions *ss, const char *presented,
    size_t len, int64_t now, uid_t *uid, const char **user)
{
	struct ep_secret **pp, **hit = NULL;

	*uid = (uid_t)-1;
	*user = NULL;
	if (presented == NULL || len != SESSION_SECRET_LEN)
		return -ENOENT;	/* the length is not secret */
	/* Compare with every entry: the time does not tell which matched. */
	for (pp = &ss->secrets; *pp != NULL; pp = &(*pp)->next)
		if (secret_memeq((*pp)->value->ptr, presented,
		    SESSION_SECRET_LEN) && hit == NULL)
			hit = pp;
	if (hit == NULL)
		return -ENOENT;
	if ((*hit)->expires_on <= now) {
		ep_secret_drop(ss, hit);
		return -EKEYEXPIRED;
	}
	*uid = (*hit)->uid;
	*user = (*hit)->user;
	return 0;
}

int
sessions_secret_of(const struct sessions *ss, const char *session,
    char out[SESSION_SECRET_LEN + 1], int64_t *expires_on)
{
	const struct ep_secret *e;

	out[0] = '\0';
	*expires_on = 0;
	if (session == NULL || session[0] == '\0')
		return -ENOENT;
	for (e = ss->secrets; e != NULL; e = e->next)
		if (strcmp(e->session, session) == 0) {
			memcpy(out, e->value->ptr, SESSION_SECRET_LEN);
			out[SESSION_SECRET_LEN] = '\0';
			*expires_on = e->expires_on;
			return 0;
		}
	return -ENOENT;
}

size_t
sessions_secret_count(const struct sessions *ss)
{
	return ss->nsecrets;
}
