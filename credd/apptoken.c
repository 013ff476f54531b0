/*
 * apptoken.c - the platform's own app tokens (see apptoken.h): a list of
 * scopes, each with its token (a struct secret, wiped when replaced or
 * dropped), its expiry and planned refresh (refresh.c's rule), and at
 * most one client credentials grant in flight with the requests parked
 * on it. A token is renewed when a request finds it past its planned
 * refresh (no timer: an app token nobody asks for is not worth a call
 * to Entra). The list stays small: one entry per configured scope.
 * A token handed out is audited once per (uid, session) and token, as a
 * user's token is audited once per token rather than per cache hit.
 *
 * Must never: write an app token to the store, key it by a user, log or
 * audit it (the fingerprint only), or call up into broker.c/flight.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "entra/proto.h"
#include "entra/secret.h"

#include "apptoken.h"
#include "audit.h"
#include "broker_int.h"
#include "clock.h"
#include "config.h"
#include "errmap.h"
#include "idp.h"
#include "oauth.h"
#include "refresh.h"
#include "reply.h"
#include "session.h"
#include "user.h"
#include "waiter.h"

/* Callers remembered per token; past that, every answer is audited. */
#define APPTOKEN_AUDITED 32
/* After a failed renewal, the next try waits this long (or Retry-After). */
#define APPTOKEN_RETRY 30

struct app_entry {
	struct app_entry *next;
	struct broker *b;
	char *scope;
	struct secret *token; /* NULL until the first grant */
	char token_type[32];
	int64_t issued_at, expires_on, refresh_at;
	char fp[9];
	struct idp_req *req; /* the grant in flight, or NULL */
	struct waiter_list waiters;
	/* Who this token was audited for (uid, session): once each, as a
	 * user's token is audited once per token, not per cache hit. */
	struct {
		uid_t uid;
		char session[SESSION_ID_LEN + 1];
	} audited[APPTOKEN_AUDITED];
	unsigned naudited;
};

static struct app_entry *
entry_find(struct broker *b, const char *scope)
{
	struct app_entry *e;

	for (e = b->apps; e != NULL; e = e->next)
		if (strcmp(e->scope, scope) == 0)
			return e;
	return NULL;
}

static struct app_entry *
entry_get(struct broker *b, const char *scope)
{
	struct app_entry *e = entry_find(b, scope);

	if (e != NULL)
		return e;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->scope = strdup(scope);
	if (e->scope == NULL) {
		free(e);
		return NULL;
	}
	e->b = b;
	LIST_INIT(&e->waiters);
	e->next = b->apps;
	b->apps = e;
	return e;
}

static void
audit_app(const struct waiter *w, const char *event, const char *scope,
    const char *outcome, const char *fp, const struct oauth_error *err)
{
	struct audit_event ev = {
		.event = event,
		.uid = w->caller->uid,
		.user = w->caller->user,
		.op = "token",
		.scope = scope,
		.outcome = outcome,
		.fp = fp,
		.identity = "app",
		.workload = config_workload_name(w->policy_kind),
		.session = w->policy_session,
	};

	if (err != NULL) {
		ev.cls = oauth_class_name(err->cls);
		ev.trace_id = err->trace_id[0] ? err->trace_id : NULL;
		ev.correlation_id =
		    err->correlation_id[0] ? err->correlation_id : NULL;
	}
	audit_log(&ev);
}

/* Was e's token audited for w's caller already? Remembers it if not. */
static int
was_audited(struct app_entry *e, const struct waiter *w)
{
	const char *sess = w->policy_session != NULL ? w->policy_session : "";
	unsigned i;

	for (i = 0; i < e->naudited; i++)
		if (e->audited[i].uid == w->caller->uid &&
		    strcmp(e->audited[i].session, sess) == 0)
			return 1;
	if (e->naudited < APPTOKEN_AUDITED && strlen(sess) <= SESSION_ID_LEN) {
		e->audited[e->naudited].uid = w->caller->uid;
		(void)snprintf(e->audited[e->naudited].session,
		    sizeof(e->audited[0].session), "%s", sess);
		e->naudited++;
	}
	return 0;
}

/* The reply from e's token (account null: no user). 0 or -ENOMEM. */
static int
entry_reply(struct app_entry *e, const struct waiter *w, struct reply *out)
{
	json_t *resp;

	resp = proto_token_reply(e->token->ptr, e->token->len, e->token_type,
	    e->expires_on, e->scope, NULL);
	if (resp == NULL || reply_set_json(out, resp) < 0)
		return -ENOMEM;
	if (!was_audited(e, w))
		audit_app(w, "token_issued", e->scope, "ok", e->fp, NULL);
	return 0;
}

static int
entry_fresh(const struct app_entry *e, int64_t now, int64_t min_valid)
{
	int64_t want = min_valid, lifetime;

	if (e->token == NULL || e->expires_on <= now)
		return 0;
	lifetime = e->expires_on - e->issued_at;
	if (lifetime / 2 < want)
		want = lifetime / 2;
	return e->expires_on - now >= want;
}

static void grant_done(void *arg, int r, struct oauth_token *tok,
    const struct oauth_error *err);

/* Start e's grant unless one is in flight. 0 or -errno. */
static int
grant_start(struct app_entry *e)
{
	struct broker *b = e->b;

	if (e->req != NULL)
		return 0;
	if (b->idp->ops->client_credentials == NULL)
		return -ENOTSUP;
	b->n.app_grants++;
	return b->idp->ops->client_credentials(b->idp, e->scope, grant_done, e,
	    &e->req);
}

static void
grant_done(void *arg, int r, struct oauth_token *tok,
    const struct oauth_error *err)
{
	struct app_entry *e = arg;
	struct broker *b = e->b;
	int64_t now = clock_now(b->clk);
	struct waiter *w;

	e->req = NULL;
	if (r == 0 && tok->access_token != NULL) {
		secret_free(e->token);
		e->token = tok->access_token; /* taken; wiped when replaced */
		tok->access_token = NULL;
		(void)snprintf(e->token_type, sizeof(e->token_type), "%s",
		    tok->token_type[0] ? tok->token_type : "Bearer");
		e->issued_at = now;
		e->expires_on = now + tok->expires_in;
		e->refresh_at = refresh_due(now, tok->expires_in,
		    tok->refresh_in, randombytes_random());
		audit_fingerprint(e->token, e->fp);
		e->naudited = 0; /* a new token: audited afresh */
		b->n.app_grant_ok++;
	} else {
		int64_t wait = APPTOKEN_RETRY;

		b->n.app_grant_errors++;
		if (err != NULL && err->cls > 0 && err->cls < OAUTH_CLASS_COUNT)
			b->n.idp_errors[err->cls]++;
		if (err != NULL && err->retry_after > wait)
			wait = err->retry_after;
		/* A token still valid is served; its renewal waits a while
		 * rather than asking Entra on every request. */
		e->refresh_at = now + wait;
	}
	while ((w = LIST_FIRST(&e->waiters)) != NULL) {
		struct reply rep = { 0 };

		user_unpark(w);
		if (r == 0 && e->token != NULL) {
			waiter_finish(w, entry_reply(e, w, &rep), &rep);
		} else if (r == IDP_ECREDENTIAL || err == NULL) {
			audit_app(w, "token_refused", e->scope, "error", NULL,
			    NULL);
			waiter_finish(w,
			    errmap_reply(&rep, -EREMOTEIO,
				"the app credential ([entra] client_auth) "
				"cannot be used; see credd's log"),
			    &rep);
		} else {
			audit_app(w, "token_refused", e->scope, "refused", NULL,
			    err);
			waiter_reply_json(w,
			    errmap_idp_error(err, b->throttle_until, now));
		}
	}
}

int
apptoken_get(struct broker *b, struct waiter *w, const char *scope,
    int64_t min_valid, struct reply *out)
{
	int64_t now = clock_now(b->clk);
	struct app_entry *e;
	int r;

	e = entry_get(b, scope);
	if (e == NULL)
		return -ENOMEM;
	if (entry_fresh(e, now, min_valid)) {
		b->n.app_hits++;
		if (now >= e->refresh_at && e->req == NULL)
			(void)grant_start(e); /* renewed in the background */
		return entry_reply(e, w, out);
	}
	b->n.app_misses++;
	r = grant_start(e);
	if (r == IDP_ECREDENTIAL) {
		audit_app(w, "token_refused", scope, "error", NULL, NULL);
		return errmap_reply(out, -EREMOTEIO,
		    "the app credential ([entra] client_auth) cannot be used; "
		    "see credd's log");
	}
	if (r == -ENOTSUP)
		return errmap_reply(out, -EREMOTEIO,
		    "this IdP cannot grant app tokens");
	if (r < 0)
		return r;
	user_park(b, &e->waiters, w);
	return WAITER_PARKED;
}

size_t
apptoken_count(const struct broker *b)
{
	const struct app_entry *e;
	size_t n = 0;

	for (e = b->apps; e != NULL; e = e->next)
		n += e->token != NULL;
	return n;
}

void
apptoken_free_all(struct broker *b)
{
	struct app_entry *e;
	struct waiter *w;

	while ((e = b->apps) != NULL) {
		b->apps = e->next;
		b->idp->ops->cancel(b->idp, &e->req);
		while ((w = LIST_FIRST(&e->waiters)) != NULL) {
			struct reply rep = { 0 };

			user_unpark(w);
			waiter_finish(w,
			    errmap_reply(&rep, -ECONNREFUSED,
				"credd is shutting down"),
			    &rep);
		}
		secret_free(e->token);
		free(e->scope);
		free(e);
	}
}
