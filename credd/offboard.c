/*
 * offboard.c - Graph's revokeSignInSessions with the [offboarding] app
 * credential (offboard.h): the client credentials grant, the app token
 * cached and shared, the Graph call per user, its answer classified,
 * 429/5xx retried with a bound.
 *
 * Every revoke starts on a zero-delay timer, so a completion never runs
 * inside offboard_revoke; revokes that find no token wait for the one
 * grant in flight.
 *
 * Must never: log, or put in a why text, the token, the secret, an
 * assertion or a body; send the [entra] credential; follow a user id
 * that could change the URL's path (checked before use).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "entra/secret.h"

#include "assertion.h"
#include "oauth.h"
#include "offboard.h"

#define OFFBOARD_URL_MAX 1024

enum req_state {
	REQ_START,	/* the zero-delay timer */
	REQ_WAIT_TOKEN, /* for the grant in flight */
	REQ_SENDING,	/* the Graph call */
	REQ_WAIT_RETRY, /* a timer before the next send */
};

struct offboard_req {
	struct offboard *ob;
	struct offboard_req *prev, *next;
	enum req_state state;
	void *http;
	void *timer;
	int tries;	 /* Graph sends so far */
	bool is_retoken; /* a 401 already cost the cached token once */
	offboard_done_cb *cb;
	void *arg;
	char id[OFFBOARD_ID_MAX + 1];
};

struct offboard {
	const struct offboard_ops *ops;
	void *ctx;
	char *token_url;
	char *graph_url;
	char *client_id;
	struct secret *secret;
	struct assertion_key *key;
	char *assertion_file;
	/* The app token and when to stop using it. */
	struct secret *token;
	int64_t token_until;
	/* The grant in flight, or its retry timer. */
	void *tok_http;
	void *tok_timer;
	int tok_tries;
	int disc_waits; /* seconds waited for the discovery document */
	struct offboard_req *head;
	size_t n;
};

static void tok_start(struct offboard *ob);

static void
req_unlink(struct offboard_req *q)
{
	struct offboard *ob = q->ob;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		ob->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	ob->n--;
}

static void
req_finish(struct offboard_req *q, int r, const char *why)
{
	offboard_done_cb *cb = q->cb;
	void *arg = q->arg;

	req_unlink(q);
	free(q);
	cb(arg, r, why);
}

/* A delay before the next send: Retry-After (bounded), else 1 s, 2 s... */
static int64_t
retry_delay(int64_t retry_after, int tries)
{
	int64_t d = retry_after >= 0 ? retry_after : (int64_t)1 << (tries - 1);

	return d > OFFBOARD_RETRY_MAX ? OFFBOARD_RETRY_MAX : d;
}

static bool
is_retry_status(const struct http_response *resp)
{
	return resp->error != 0 || resp->status == 0 || resp->status == 429 ||
	    resp->status >= 500;
}

/*
 * The first revoke waiting for the token, or NULL. The walks below start
 * again after each completion, because a callback may cancel other
 * revokes: O(n^2) in the waiters, fine for the few in flight that
 * callers keep (credctl's --all sends a bounded number at a time).
 */
static struct offboard_req *
first_waiter(const struct offboard *ob)
{
	struct offboard_req *q;

	for (q = ob->head; q != NULL; q = q->next)
		if (q->state == REQ_WAIT_TOKEN)
			return q;
	return NULL;
}

/* Finish every revoke waiting for the token with r. */
static void
fail_waiters(struct offboard *ob, int r, const char *why)
{
	struct offboard_req *q;

	while ((q = first_waiter(ob)) != NULL)
		req_finish(q, r, why);
}

/* --- the Graph call ------------------------------------------------------ */

static void graph_done(void *arg, const struct http_response *resp);

static void
req_send(struct offboard_req *q)
{
	struct offboard *ob = q->ob;
	char url[OFFBOARD_URL_MAX], why[OFFBOARD_WHY_MAX];
	int n, r;

	n = snprintf(url, sizeof(url), "%s/v1.0/users/%s/revokeSignInSessions",
	    ob->graph_url, q->id);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		req_finish(q, -ENAMETOOLONG, "the Graph URL is too long");
		return;
	}
	q->state = REQ_SENDING;
	q->tries++;
	r = ob->ops->post_bearer(ob->ctx, url, ob->token, graph_done, q,
	    &q->http);
	if (r < 0) {
		(void)snprintf(why, sizeof(why),
		    "cannot send to Microsoft Graph: %s", strerror(-r));
		req_finish(q, r, why);
	}
}

/*
 * Graph's error code ({"error":{"code":"Authorization_RequestDenied"}})
 * into dst when it is a short printable word, else "".
 */
static void
graph_code(const struct http_response *resp, char *dst, size_t dstsz)
{
	json_t *root, *e, *c;
	const char *s;
	size_t i;

	dst[0] = '\0';
	if (resp->body == NULL || resp->body->len == 0)
		return;
	root = json_loadb(resp->body->ptr, resp->body->len, 0, NULL);
	e = json_object_get(root, "error");
	c = json_object_get(e, "code");
	s = json_string_value(c);
	if (s != NULL && strlen(s) < dstsz && strlen(s) <= 64) {
		for (i = 0; s[i] != '\0'; i++)
			if (!(s[i] == '_' || s[i] == '.' || s[i] == '-' ||
				(s[i] >= 'a' && s[i] <= 'z') ||
				(s[i] >= 'A' && s[i] <= 'Z') ||
				(s[i] >= '0' && s[i] <= '9')))
				break;
		if (s[i] == '\0')
			memcpy(dst, s, i + 1);
	}
	json_decref(root);
}

static void
req_retry_fire(void *arg)
{
	struct offboard_req *q = arg;

	q->timer = NULL;
	req_send(q);
}

static void
graph_refused(struct offboard_req *q, const struct http_response *resp)
{
	char why[OFFBOARD_WHY_MAX], code[72];

	graph_code(resp, code, sizeof(code));
	switch (resp->status) {
	case 403:
		/*
		 * The token's roles are fixed when it is minted: drop it, so
		 * the next revoke after an admin grants the permission gets
		 * a token that carries it (not the cached one, for an hour).
		 */
		secret_free(q->ob->token);
		q->ob->token = NULL;
		(void)snprintf(why, sizeof(why),
		    "Microsoft Graph refused (403%s%s): the offboarding app "
		    "needs the application permission " OFFBOARD_PERMISSION
		    " with admin consent",
		    *code ? " " : "", code);
		req_finish(q, -EACCES, why);
		return;
	case 404:
		(void)snprintf(why, sizeof(why),
		    "Microsoft Graph has no user '%.80s' (404%s%s)", q->id,
		    *code ? " " : "", code);
		req_finish(q, -ENOENT, why);
		return;
	case 400:
		(void)snprintf(why, sizeof(why),
		    "Microsoft Graph refused the request (400%s%s)",
		    *code ? " " : "", code);
		req_finish(q, -EIO, why);
		return;
	default:
		(void)snprintf(why, sizeof(why),
		    "Microsoft Graph answered %ld%s%s", resp->status,
		    *code ? " " : "", code);
		req_finish(q, -EIO, why);
	}
}

static void
graph_done(void *arg, const struct http_response *resp)
{
	struct offboard_req *q = arg;
	struct offboard *ob = q->ob;
	char why[OFFBOARD_WHY_MAX];
	int r;

	q->http = NULL;
	if (resp->status >= 200 && resp->status < 300 && resp->error == 0) {
		req_finish(q, 0,
		    "Microsoft Graph revoked the sign-in sessions");
		return;
	}
	if (resp->status == 401 && resp->error == 0) {
		/* The cached token went bad (expired early, key rolled). */
		if (q->is_retoken) {
			req_finish(q, -EKEYREJECTED,
			    "Microsoft Graph refused a fresh app token (401)");
			return;
		}
		q->is_retoken = true;
		secret_free(ob->token);
		ob->token = NULL;
		q->state = REQ_WAIT_TOKEN;
		if (ob->tok_http == NULL && ob->tok_timer == NULL)
			tok_start(ob);
		return;
	}
	if (!is_retry_status(resp)) {
		graph_refused(q, resp);
		return;
	}
	if (q->tries >= OFFBOARD_TRIES) {
		if (resp->status != 0)
			(void)snprintf(why, sizeof(why),
			    "Microsoft Graph still answers %ld after %d tries",
			    resp->status, q->tries);
		else
			(void)snprintf(why, sizeof(why),
			    "Microsoft Graph unreachable after %d tries: %s",
			    q->tries,
			    resp->error_msg ? resp->error_msg : "no answer");
		req_finish(q, -EAGAIN, why);
		return;
	}
	q->state = REQ_WAIT_RETRY;
	r = ob->ops->timer_start(ob->ctx,
	    retry_delay(resp->retry_after, q->tries), req_retry_fire, q,
	    &q->timer);
	if (r < 0)
		req_finish(q, r, "cannot arm a retry timer");
}

/* --- the app token (client credentials grant) --------------------------- */

static void tok_done(void *arg, const struct http_response *resp);

/* The grant's form with the one credential. 0 or -errno, why filled. */
/* The token endpoint in force, or NULL (no discovery document yet). */
static const char *
token_url(const struct offboard *ob)
{
	return ob->ops->token_url != NULL ? ob->ops->token_url(ob->ctx) :
					    ob->token_url;
}

static void tok_retry_fire(void *arg);

static int
tok_form(struct offboard *ob, const char *url, struct secret **out, char *why,
    size_t whysz)
{
	struct secret *form = NULL, *as = NULL;
	char scope[OFFBOARD_URL_MAX];
	int r;

	*out = NULL;
	(void)snprintf(scope, sizeof(scope), "%s/.default", ob->graph_url);
	r = http_form_add(&form, "grant_type", "client_credentials");
	if (r == 0)
		r = http_form_add(&form, "client_id", ob->client_id);
	if (r == 0)
		r = http_form_add(&form, "scope", scope);
	if (r == 0 && ob->secret != NULL)
		r = http_form_add(&form, "client_secret", ob->secret->ptr);
	if (r == 0 && ob->key != NULL) {
		r = assertion_sign(ob->key, ASSERTION_PS256, ob->client_id, url,
		    ob->ops->now(ob->ctx), &as);
		if (r < 0)
			(void)snprintf(why, whysz,
			    "cannot sign the offboarding assertion: %s",
			    strerror(-r));
	} else if (r == 0 && ob->assertion_file != NULL) {
		r = assertion_file_read(ob->assertion_file,
		    ob->ops->now(ob->ctx), &as, NULL, why, whysz);
	} else if (r < 0) {
		(void)snprintf(why, whysz, "out of memory");
	}
	if (r == 0 && as != NULL) {
		r = oauth_form_add_assertion(&form, as);
		if (r < 0)
			(void)snprintf(why, whysz, "out of memory");
	}
	secret_free(as);
	if (r < 0) {
		secret_free(form);
		return r;
	}
	*out = form;
	return 0;
}

static void
tok_start(struct offboard *ob)
{
	struct secret *form = NULL;
	const char *url;
	char why[OFFBOARD_WHY_MAX];
	int r;

	why[0] = '\0';
	url = token_url(ob);
	if (url == NULL && ob->disc_waits < OFFBOARD_DISC_WAIT &&
	    ob->ops->timer_start(ob->ctx, 1, tok_retry_fire, ob,
		&ob->tok_timer) == 0) {
		/* The fetch was started: look again in a second. */
		ob->disc_waits++;
		return;
	}
	ob->disc_waits = 0;
	if (url == NULL) {
		ob->tok_tries = 0;
		fail_waiters(ob, -EHOSTUNREACH,
		    "the IdP's discovery document is not in force (see "
		    "credd's log); try again");
		return;
	}
	r = tok_form(ob, url, &form, why, sizeof(why));
	if (r == 0) {
		ob->tok_tries++;
		r = ob->ops->post_form(ob->ctx, url, form, tok_done, ob,
		    &ob->tok_http);
		if (r < 0)
			(void)snprintf(why, sizeof(why),
			    "cannot send the client credentials grant: %s",
			    strerror(-r));
	}
	secret_free(form);
	if (r < 0) {
		ob->tok_tries = 0;
		/* A certificate that cannot sign, a stale federated token. */
		fail_waiters(ob, r == -ENOMEM ? r : -EKEYREJECTED, why);
	}
}

static void
tok_retry_fire(void *arg)
{
	struct offboard *ob = arg;

	ob->tok_timer = NULL;
	tok_start(ob);
}

static void
tok_ready(struct offboard *ob)
{
	struct offboard_req *q;

	/* req_send leaves REQ_WAIT_TOKEN, or finishes q. */
	while ((q = first_waiter(ob)) != NULL)
		req_send(q);
}

static void
tok_keep(struct offboard *ob, struct oauth_token *tok)
{
	int64_t now = ob->ops->now(ob->ctx), life = tok->expires_in;

	secret_free(ob->token);
	ob->token = tok->access_token;
	tok->access_token = NULL; /* transferred */
	/* Renew OFFBOARD_TOKEN_MARGIN early; a short token at half-life. */
	ob->token_until = now +
	    (life > 2 * OFFBOARD_TOKEN_MARGIN ? life - OFFBOARD_TOKEN_MARGIN :
						life / 2);
}

static void
tok_done(void *arg, const struct http_response *resp)
{
	struct offboard *ob = arg;
	struct oauth_token tok;
	struct oauth_error err;
	char why[OFFBOARD_WHY_MAX];
	int r;

	ob->tok_http = NULL;
	r = oauth_parse_token(resp->error != 0 ? 0 : resp->status,
	    resp->error != 0 ? NULL : resp->body, resp->retry_after, &tok,
	    &err);
	if (r == 0) {
		ob->tok_tries = 0;
		tok_keep(ob, &tok);
		oauth_token_clear(&tok);
		tok_ready(ob);
		return;
	}
	if (r == -EPROTO && err.cls == OAUTH_RETRY &&
	    ob->tok_tries < OFFBOARD_TRIES) {
		r = ob->ops->timer_start(ob->ctx,
		    retry_delay(err.retry_after, ob->tok_tries), tok_retry_fire,
		    ob, &ob->tok_timer);
		if (r == 0)
			return;
	}
	ob->tok_tries = 0;
	if (r == -ENOMEM) {
		fail_waiters(ob, r, "out of memory");
		return;
	}
	if (err.cls == OAUTH_RETRY) {
		(void)snprintf(why, sizeof(why),
		    "the token endpoint is unavailable (%s)", err.reason);
		fail_waiters(ob, -EAGAIN, why);
		return;
	}
	(void)snprintf(why, sizeof(why),
	    "the token endpoint refused the offboarding app credential (%s); "
	    "check [offboarding] client_id and its credential",
	    err.reason);
	fail_waiters(ob, err.cls == OAUTH_ADMIN ? -EKEYREJECTED : -EIO, why);
}

/* --- revokes ------------------------------------------------------------- */

static void
req_kick(void *arg)
{
	struct offboard_req *q = arg;
	struct offboard *ob = q->ob;

	q->timer = NULL;
	if (ob->token != NULL && ob->ops->now(ob->ctx) < ob->token_until) {
		req_send(q);
		return;
	}
	q->state = REQ_WAIT_TOKEN;
	if (ob->tok_http == NULL && ob->tok_timer == NULL)
		tok_start(ob);
}

/* An oid or a UPN, safe as one path segment of the Graph URL. */
static bool
is_user_id(const char *id)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > OFFBOARD_ID_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c <= ' ' || c >= 0x7f || strchr("/?#%\\\"<>", c) != NULL)
			return false;
	}
	return strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
}

int
offboard_revoke(struct offboard *ob, const char *user_id, offboard_done_cb *cb,
    void *arg, struct offboard_req **out)
{
	struct offboard_req *q;
	int r;

	*out = NULL;
	if (ob == NULL || user_id == NULL || cb == NULL || !is_user_id(user_id))
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->ob = ob;
	q->cb = cb;
	q->arg = arg;
	memcpy(q->id, user_id, strlen(user_id) + 1);
	r = ob->ops->timer_start(ob->ctx, 0, req_kick, q, &q->timer);
	if (r < 0) {
		free(q);
		return r;
	}
	q->next = ob->head;
	if (ob->head != NULL)
		ob->head->prev = q;
	ob->head = q;
	ob->n++;
	*out = q;
	return 0;
}

static void
req_drop(struct offboard_req *q)
{
	struct offboard *ob = q->ob;

	if (q->http != NULL)
		ob->ops->cancel(ob->ctx, &q->http);
	if (q->timer != NULL)
		ob->ops->timer_stop(ob->ctx, &q->timer);
	req_unlink(q);
	free(q);
}

void
offboard_cancel(struct offboard *ob, struct offboard_req **req)
{
	if (ob == NULL || req == NULL || *req == NULL)
		return;
	req_drop(*req);
	*req = NULL;
}

size_t
offboard_inflight(const struct offboard *ob)
{
	return ob != NULL ? ob->n : 0;
}

void *
offboard_ctx(const struct offboard *ob)
{
	return ob != NULL ? ob->ctx : NULL;
}

int
offboard_has_token(const struct offboard *ob)
{
	return ob != NULL && ob->token != NULL;
}

/* --- life cycle ---------------------------------------------------------- */

void
offboard_cred_clear(struct offboard_cred *cred)
{
	secret_free(cred->secret);
	cred->secret = NULL;
	assertion_key_free(cred->key);
	cred->key = NULL;
}

int
offboard_new(const struct offboard_ops *ops, void *ctx, const char *token_url,
    const char *graph_url, struct offboard_cred *cred, struct offboard **out)
{
	struct offboard *ob;
	int nset;

	*out = NULL;
	nset = (cred->secret != NULL) + (cred->key != NULL) +
	    (cred->assertion_file != NULL);
	if (ops == NULL || token_url == NULL || graph_url == NULL ||
	    cred->client_id == NULL || nset != 1) {
		offboard_cred_clear(cred);
		return -EINVAL;
	}
	if (strlen(graph_url) + OFFBOARD_ID_MAX + 64 > OFFBOARD_URL_MAX ||
	    strlen(token_url) >= OFFBOARD_URL_MAX) {
		offboard_cred_clear(cred);
		return -ENAMETOOLONG;
	}
	ob = calloc(1, sizeof(*ob));
	if (ob == NULL) {
		offboard_cred_clear(cred);
		return -ENOMEM;
	}
	ob->ops = ops;
	ob->ctx = ctx;
	ob->secret = cred->secret;
	ob->key = cred->key;
	cred->secret = NULL; /* transferred */
	cred->key = NULL;    /* transferred */
	ob->token_url = strdup(token_url);
	ob->graph_url = strdup(graph_url);
	ob->client_id = strdup(cred->client_id);
	if (cred->assertion_file != NULL)
		ob->assertion_file = strdup(cred->assertion_file);
	if (ob->token_url == NULL || ob->graph_url == NULL ||
	    ob->client_id == NULL ||
	    (cred->assertion_file != NULL && ob->assertion_file == NULL)) {
		offboard_free(ob);
		return -ENOMEM;
	}
	*out = ob;
	return 0;
}

void
offboard_free(struct offboard *ob)
{
	if (ob == NULL)
		return;
	while (ob->head != NULL)
		req_drop(ob->head);
	if (ob->tok_http != NULL)
		ob->ops->cancel(ob->ctx, &ob->tok_http);
	if (ob->tok_timer != NULL)
		ob->ops->timer_stop(ob->ctx, &ob->tok_timer);
	secret_free(ob->token);
	secret_free(ob->secret);
	assertion_key_free(ob->key);
	free(ob->token_url);
	free(ob->graph_url);
	free(ob->client_id);
	free(ob->assertion_file);
	free(ob);
}
