/*
 * fake_core.c - the broker on a bench (see fake_core.h): a scripted
 * IdP, the in-memory store (store_mem.c), a fixed clock and
 * dispatch-like requests.
 *
 * Must never: keep process-wide state, reach the network, or sleep
 * longer than one 1 ms slice of the loop.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "entra/proto.h"
#include "entra/secret.h"

#include "broker.h"
#include "broker_metrics.h"
#include "clientauth.h"
#include "clock.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "fake_core.h"
#include "fixture.h"
#include "idp.h"
#include "oauth.h"
#include "reply.h"
#include "seal.h"
#include "store.h"
#include "store_mem.h"

#define FAKE_MS0 INT64_C(5000000) /* the loop clock's start, ms */

/* ---- the scripted IdP ---- */

struct fake_req {
	struct fake_req *next;
	enum fake_grant kind;
	int client;   /* enum idp_client */
	char rt[256]; /* refresh token or code */
	char *claims; /* the claims parameter, or NULL */
	char scope[256];
	char verifier[160]; /* FAKE_CODE */
	char redirect[512]; /* FAKE_CODE */
	char cred[4096];    /* a confidential grant's credential part */
	idp_token_cb *token_cb;
	idp_device_cb *device_cb;
	void *arg;
};

/* ---- the fixed clock's timers ---- */

struct fake_timer {
	struct fake_timer *next;
	int64_t due_ms;
	event_timer_cb *cb;
	void *arg;
};

struct fake_core {
	struct event_loop *ev;
	struct config *cf;
	struct seal *seal;
	struct store *st; /* store_mem.c */
	struct idp idp;
	struct fake_req *reqs; /* oldest first */
	unsigned sent[FAKE_NGRANTS];
	struct clock clk;
	int64_t now_s, now_ms;
	struct fake_timer *timers;
	struct broker *b;
	struct clientauth *ca;	  /* [entra] client_auth as configured */
	struct secret *secret;	  /* client_auth = secret: a fixed one */
	atomic_uint_fast64_t seq; /* orders store writes and replies */
	char body[4096];
};

/* ---- IdP ops ---- */

static int
idp_queue(struct fake_core *fc, enum fake_grant kind, const struct secret *rt,
    idp_token_cb *tcb, idp_device_cb *dcb, void *arg, struct idp_req **out)
{
	struct fake_req *q = calloc(1, sizeof(*q)), **pp;

	*out = NULL;
	if (q == NULL)
		return -ENOMEM;
	q->kind = kind;
	if (rt != NULL)
		snprintf(q->rt, sizeof(q->rt), "%.*s", (int)rt->len, rt->ptr);
	q->token_cb = tcb;
	q->device_cb = dcb;
	q->arg = arg;
	for (pp = &fc->reqs; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = q;
	fc->sent[kind]++;
	/* An opaque handle: only this file ever looks inside. */
	*out = (struct idp_req *)q;
	return 0;
}

static int
idp_device_start(struct idp *idp, const char *scope, idp_device_cb *cb,
    void *arg, struct idp_req **out)
{
	(void)scope;
	return idp_queue(idp->priv, FAKE_DEVICE, NULL, NULL, cb, arg, out);
}

static int
idp_device_poll(struct idp *idp, const struct secret *device_code,
    idp_token_cb *cb, void *arg, struct idp_req **out)
{
	(void)device_code;
	return idp_queue(idp->priv, FAKE_POLL, NULL, cb, NULL, arg, out);
}

#define FAKE_TOKEN_URL                                                         \
	"https://login.microsoftonline.com/" FAKE_TENANT "/oauth2/v2.0/token"

/*
 * As idp_http.c: a confidential grant's form is decorated with the
 * configured credential (clientauth.c); what was added is kept in
 * q->cred for the test. IDP_ECREDENTIAL when it cannot be made.
 */
static int
decorate(struct fake_core *fc, enum idp_client kind, char *cred, size_t n)
{
	struct secret *form = secret_from_str("grant_type=x");
	char msg[512];
	int r;

	cred[0] = '\0';
	if (form == NULL)
		return -ENOMEM;
	if (kind != IDP_CLIENT_CONFIDENTIAL) {
		secret_free(form);
		return 0;
	}
	r = clientauth_decorate(fc->ca, FAKE_TOKEN_URL, fc->now_s, &form, msg,
	    sizeof(msg));
	if (r == 0 && form->len > strlen("grant_type=x&"))
		snprintf(cred, n, "%s", form->ptr + strlen("grant_type=x&"));
	secret_free(form);
	return r == -EKEYREJECTED ? IDP_ECREDENTIAL : r;
}

static int
idp_refresh(struct idp *idp, const struct secret *refresh_token,
    const char *scope, enum idp_client kind, idp_token_cb *cb, void *arg,
    struct idp_req **out)
{
	char cred[4096];
	int r;

	r = decorate(idp->priv, kind, cred, sizeof(cred));
	if (r < 0)
		return r;
	r = idp_queue(idp->priv, FAKE_REFRESH, refresh_token, cb, NULL, arg,
	    out);
	if (r == 0) {
		snprintf(((struct fake_req *)*out)->scope, 256, "%s", scope);
		((struct fake_req *)*out)->client = kind;
		memcpy(((struct fake_req *)*out)->cred, cred, sizeof(cred));
	}
	return r;
}

static int
idp_refresh_claims(struct idp *idp, const struct secret *refresh_token,
    const char *scope, const char *claims, enum idp_client kind,
    idp_token_cb *cb, void *arg, struct idp_req **out)
{
	char *c = strdup(claims);
	int r;

	if (c == NULL)
		return -ENOMEM;
	r = idp_refresh(idp, refresh_token, scope, kind, cb, arg, out);
	if (r < 0) {
		free(c);
		return r;
	}
	((struct fake_req *)*out)->claims = c;
	return 0;
}

static int
idp_code_redeem(struct idp *idp, const struct secret *code,
    const struct secret *verifier, const char *redirect_uri, const char *scope,
    enum idp_client kind, idp_token_cb *cb, void *arg, struct idp_req **out)
{
	struct fake_req *q;
	char cred[4096];
	int r;

	(void)scope;
	r = decorate(idp->priv, kind, cred, sizeof(cred));
	if (r < 0)
		return r;
	r = idp_queue(idp->priv, FAKE_CODE, code, cb, NULL, arg, out);
	if (r < 0)
		return r;
	q = (struct fake_req *)*out;
	q->client = kind;
	memcpy(q->cred, cred, sizeof(cred));
	snprintf(q->verifier, sizeof(q->verifier), "%.*s", (int)verifier->len,
	    verifier->ptr);
	snprintf(q->redirect, sizeof(q->redirect), "%s", redirect_uri);
	return 0;
}

static int
idp_client_credentials(struct idp *idp, const char *scope, idp_token_cb *cb,
    void *arg, struct idp_req **out)
{
	struct fake_req *q;
	char cred[4096];
	int r;

	r = decorate(idp->priv, IDP_CLIENT_CONFIDENTIAL, cred, sizeof(cred));
	if (r < 0)
		return r;
	r = idp_queue(idp->priv, FAKE_APP, NULL, cb, NULL, arg, out);
	if (r < 0)
		return r;
	q = (struct fake_req *)*out;
	q->client = IDP_CLIENT_CONFIDENTIAL;
	memcpy(q->cred, cred, sizeof(cred));
	snprintf(q->scope, sizeof(q->scope), "%s", scope);
	return 0;
}

static void
idp_unlink(struct fake_core *fc, struct fake_req *q)
{
	struct fake_req **pp;

	for (pp = &fc->reqs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			return;
		}
}

static void
idp_cancel(struct idp *idp, struct idp_req **req)
{
	struct fake_req *q;

	if (req == NULL || *req == NULL)
		return;
	q = (struct fake_req *)*req;
	idp_unlink(idp->priv, q);
	free(q->claims);
	free(q);
	*req = NULL;
}

static size_t
idp_inflight(const struct idp *idp)
{
	const struct fake_core *fc = idp->priv;
	const struct fake_req *q;
	size_t n = 0;

	for (q = fc->reqs; q != NULL; q = q->next)
		n++;
	return n;
}

static int
idp_device_poll_claims(struct idp *idp, const struct secret *device_code,
    const char *claims, idp_token_cb *cb, void *arg, struct idp_req **out)
{
	char *c = strdup(claims);
	int r;

	if (c == NULL)
		return -ENOMEM;
	r = idp_device_poll(idp, device_code, cb, arg, out);
	if (r < 0) {
		free(c);
		return r;
	}
	((struct fake_req *)*out)->claims = c;
	return 0;
}

static const struct idp_ops fake_idp_ops = {
	.name = "fake",
	.device_start = idp_device_start,
	.device_poll = idp_device_poll,
	.refresh = idp_refresh,
	.refresh_claims = idp_refresh_claims,
	.device_poll_claims = idp_device_poll_claims,
	.code_redeem = idp_code_redeem,
	.client_credentials = idp_client_credentials,
	.cancel = idp_cancel,
	.inflight = idp_inflight,
};

/* ---- clock ops ---- */

static int64_t
clk_now(const struct clock *c)
{
	return ((const struct fake_core *)c->priv)->now_s;
}

static int64_t
clk_now_ms(const struct clock *c)
{
	return ((const struct fake_core *)c->priv)->now_ms;
}

static struct event_timer *
clk_timer_at(const struct clock *c, int64_t due_ms, event_timer_cb *cb,
    void *arg)
{
	struct fake_core *fc = c->priv;
	struct fake_timer *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->due_ms = due_ms;
	t->cb = cb;
	t->arg = arg;
	t->next = fc->timers;
	fc->timers = t;
	return (struct event_timer *)t; /* opaque to the broker */
}

static void
clk_timer_cancel(const struct clock *c, struct event_timer **h)
{
	struct fake_core *fc = c->priv;
	struct fake_timer **pp, *t = (struct fake_timer *)*h;

	for (pp = &fc->timers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			free(t);
			break;
		}
	*h = NULL;
}

static const struct clock_ops fake_clock_ops = {
	.now = clk_now,
	.now_ms = clk_now_ms,
	.timer_at = clk_timer_at,
	.timer_cancel = clk_timer_cancel,
};

/* Fire the earliest timer due by now; 1 if one fired. */
static int
fire_one(struct fake_core *fc)
{
	struct fake_timer **pp, **best = NULL, *t;

	for (pp = &fc->timers; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->due_ms <= fc->now_ms &&
		    (best == NULL || (*pp)->due_ms < (*best)->due_ms))
			best = pp;
	if (best == NULL)
		return 0;
	t = *best;
	*best = t->next;
	t->cb(fc->ev, t->arg); /* the handle is gone once it fires */
	free(t);
	return 1;
}

/* ---- the loop ---- */

static void
stop_cb(struct event_loop *ev, void *arg)
{
	(void)arg;
	event_stop(ev);
}

static void
run_slice(struct fake_core *fc)
{
	if (event_timer_in(fc->ev, 1, stop_cb, NULL) == NULL)
		abort();
	(void)event_run(fc->ev);
}

void
fake_core_settle(struct fake_core *fc)
{
	int i;

	run_slice(fc);
	for (i = 0; i < 5000 && broker_store_pending(fc->b) > 0; i++)
		run_slice(fc);
	while (fire_one(fc)) /* due timers (a save retried, a poll) */
		run_slice(fc);
}

/* Set the clock to ms (never back); the wall clock follows it. */
static void
clock_set(struct fake_core *fc, int64_t ms)
{
	if (ms > fc->now_ms)
		fc->now_ms = ms;
	fc->now_s = FAKE_T0 + (fc->now_ms - FAKE_MS0) / 1000;
}

void
fake_core_advance(struct fake_core *fc, int64_t secs)
{
	int64_t target = fc->now_ms + secs * 1000;
	struct fake_timer *t, *first;

	/* Jump from timer to timer, so each fires in order at its time. */
	for (;;) {
		first = NULL;
		for (t = fc->timers; t != NULL; t = t->next)
			if (t->due_ms <= target &&
			    (first == NULL || t->due_ms < first->due_ms))
				first = t;
		if (first == NULL)
			break;
		clock_set(fc, first->due_ms);
		while (fire_one(fc))
			fake_core_settle(fc);
	}
	clock_set(fc, target);
	fake_core_settle(fc);
}

int64_t
fake_core_now(const struct fake_core *fc)
{
	return fc->now_s;
}

/* ---- life cycle ---- */

struct broker *
fake_core_broker(struct fake_core *fc)
{
	return fc->b;
}

const struct config *
fake_core_config(const struct fake_core *fc)
{
	return fc->cf;
}

static struct fake_core *core_new(const char *extra, int cluster);

struct fake_core *
fake_core_new(const char *extra)
{
	return core_new(extra, 0);
}

struct fake_core *
fake_core_new_cluster(const char *extra)
{
	return core_new(extra, 1);
}

static struct fake_core *
core_new(const char *extra, int cluster)
{
	static const char base[] = "[entra]\n"
				   "tenant = " FAKE_TENANT "\n"
				   "client_id = " FAKE_CLIENT "\n"
				   "[scopes]\n"
				   "storage = " FAKE_SCOPE "\n"
				   "default = storage\n";
	const char *ring =
	    "key 1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= active\n";
	struct fake_core *fc;
	struct broker_deps d = { 0 };
	char text[2048], err[512];
	int r;

	if (sodium_init() < 0)
		return NULL;
	fc = calloc(1, sizeof(*fc));
	if (fc == NULL)
		return NULL;
	snprintf(text, sizeof(text), "%s%s", base, extra ? extra : "");
	r = config_parse("fake.conf", text, strlen(text), &fc->cf, err,
	    sizeof(err));
	if (r < 0) {
		fprintf(stderr, "fake_core: %s\n", err);
		goto fail;
	}
	fc->ev = event_new();
	fc->seal = fixture_ring_text(ring);
	if (fc->ev == NULL || fc->seal == NULL ||
	    (cluster ? store_mem_open_cluster(&fc->seq, &fc->st) :
		       store_mem_open(&fc->seq, &fc->st)) < 0)
		goto fail;
	fc->idp.ops = &fake_idp_ops;
	fc->idp.priv = fc;
	fc->clk.ops = &fake_clock_ops;
	fc->clk.ev = fc->ev;
	fc->clk.priv = fc;
	fc->now_s = FAKE_T0;
	fc->now_ms = FAKE_MS0;
	d.ev = fc->ev;
	d.cf = fc->cf;
	d.st = fc->st;
	d.seal = fc->seal;
	d.idp = &fc->idp;
	d.clock = &fc->clk;
	r = clientauth_new(fc->cf, &fc->ca, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "fake_core: client_auth: %s\n", err);
		goto fail;
	}
	if (fc->cf->client_auth == CONFIG_CLIENT_AUTH_SECRET) {
		fc->secret = secret_from_str(FAKE_CLIENT_SECRET);
		clientauth_set_secret(fc->ca, fc->secret);
	}
	d.clientauth = fc->ca;
	r = broker_new(&d, &fc->b);
	if (r < 0) {
		fprintf(stderr, "fake_core: broker_new: %s\n", strerror(-r));
		goto fail;
	}
	return fc;
fail:
	fake_core_free(fc);
	return NULL;
}

void
fake_core_free(struct fake_core *fc)
{
	struct fake_timer *t;

	if (fc == NULL)
		return;
	broker_free(fc->b); /* cancels its IdP requests and timers */
	while (fc->reqs != NULL) {
		struct fake_req *q = fc->reqs;

		fc->reqs = q->next;
		free(q->claims);
		free(q);
	}
	while ((t = fc->timers) != NULL) {
		fc->timers = t->next;
		free(t);
	}
	store_close(fc->st);
	seal_free(fc->seal);
	clientauth_free(fc->ca);
	secret_free(fc->secret);
	config_free(fc->cf);
	event_free(fc->ev);
	free(fc);
}

/* ---- requests ---- */

/* Keep resp as c's answer, numbered after every store write so far. */
static void
call_answer(struct fake_call *c, json_t *resp)
{
	json_decref(c->resp);
	c->resp = resp;
	c->answered = atomic_fetch_add(&c->fc->seq, 1) + 1;
}

static json_t *
reply_json(struct reply *rep)
{
	json_t *o = NULL;

	if (rep->json != NULL) {
		o = rep->json;
		rep->json = NULL;
	} else if (rep->bytes != NULL)
		o = json_loadb(rep->bytes, rep->len, 0, NULL);
	reply_clear(rep);
	return o;
}

/* w->reply: a parked request is answered (as server_conn.c would send). */
static void
call_reply(struct waiter *w, struct reply *rep)
{
	struct fake_call *c = (struct fake_call *)w; /* w is the first member */

	call_answer(c, reply_json(rep));
	waiter_release(w);
}

void
fake_core_call_init(struct fake_core *fc, struct fake_call *c, enum proto_op op,
    const char *user, uid_t uid)
{
	memset(c, 0, sizeof(*c));
	c->fc = fc;
	c->caller.uid = uid;
	c->caller.gid = uid;
	if (user != NULL) {
		snprintf(c->user, sizeof(c->user), "%s", user);
		c->caller.user = c->user;
	}
	c->w.caller = &c->caller;
	c->w.reply = call_reply;
	c->w.op = op;
}

/* What an op returned, as dispatch.c handles it. */
void
fake_core_call_returned(struct fake_call *c, int r, struct reply *out)
{
	c->r = r;
	if (r == WAITER_PARKED)
		return;
	if (r < 0)
		call_answer(c, errmap_error(r, NULL));
	else
		call_answer(c, reply_json(out));
	waiter_release(&c->w);
}

void
fake_core_token_valid(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid, int64_t min_valid)
{
	struct reply out = { 0 };

	fake_core_call_init(fc, c, PROTO_OP_TOKEN, user, uid);
	fake_core_call_returned(c,
	    broker_token(fc->b, &c->w, user, uid, FAKE_SCOPE, min_valid, &out),
	    &out);
}

void
fake_core_token_cae(struct fake_core *fc, struct fake_call *c, const char *user,
    uid_t uid, int cae, const char *claims)
{
	struct reply out = { 0 };

	fake_core_call_init(fc, c, PROTO_OP_TOKEN, user, uid);
	fake_core_call_returned(c,
	    broker_token_cae(fc->b, &c->w, user, uid, FAKE_SCOPE, 0, cae,
		claims, &out),
	    &out);
}

void
fake_core_token_app(struct fake_core *fc, struct fake_call *c, const char *user,
    uid_t uid, int app_identity, const char *scope)
{
	struct reply out = { 0 };

	fake_core_call_init(fc, c, PROTO_OP_TOKEN, user, uid);
	c->w.app_identity = app_identity;
	c->w.policy_kind = CONFIG_WL_APP;
	fake_core_call_returned(c,
	    broker_token(fc->b, &c->w, user, uid, scope, 0, &out), &out);
}

void
fake_core_token(struct fake_core *fc, struct fake_call *c, const char *user,
    uid_t uid)
{
	fake_core_token_valid(fc, c, user, uid, 0);
}

void
fake_core_login(struct fake_core *fc, struct fake_call *c, const char *user,
    uid_t uid, int64_t wait)
{
	struct reply out = { 0 };

	fake_core_call_init(fc, c, PROTO_OP_LOGIN, user, uid);
	fake_core_call_returned(c,
	    broker_login(fc->b, &c->w, user, uid, wait, &out), &out);
}

void
fake_core_login_code(struct fake_core *fc, struct fake_call *c,
    const char *user, uid_t uid, const char *url)
{
	struct reply out = { 0 };

	fake_core_call_init(fc, c, PROTO_OP_LOGIN_CODE, user, uid);
	fake_core_call_returned(c,
	    broker_signin_paste(fc->b, &c->w, user, uid, url, strlen(url),
		&out),
	    &out);
}

void
fake_core_status(struct fake_core *fc, struct fake_call *c, const char *user,
    uid_t uid)
{
	struct reply out = { 0 };

	fake_core_call_init(fc, c, PROTO_OP_STATUS, user, uid);
	fake_core_call_returned(c, broker_status(fc->b, &c->w, user, uid, &out),
	    &out);
}

void
fake_core_logout(struct fake_core *fc, struct fake_call *c, const char *user,
    uid_t uid)
{
	struct reply out = { 0 };

	fake_core_call_init(fc, c, PROTO_OP_LOGOUT, user, uid);
	fake_core_call_returned(c, broker_logout(fc->b, &c->w, user, uid, &out),
	    &out);
}

void
fake_core_call_done(struct fake_call *c)
{
	if (c->w.linked && c->w.cancel != NULL)
		c->w.cancel(&c->w); /* the requester went away */
	waiter_release(&c->w);
	json_decref(c->resp);
	c->resp = NULL;
}

const char *
fake_core_code(const struct fake_call *c)
{
	if (c->resp == NULL)
		return NULL;
	if (json_is_true(json_object_get(c->resp, "ok")))
		return "";
	return json_string_value(
	    json_object_get(json_object_get(c->resp, "error"), "code"));
}

static json_t *
answer_obj(const struct fake_call *c)
{
	json_t *e = json_object_get(c->resp, "error");

	return json_is_object(e) ? e : c->resp;
}

const char *
fake_core_field(const struct fake_call *c, const char *key)
{
	if (c->resp == NULL)
		return NULL;
	return json_string_value(json_object_get(answer_obj(c), key));
}

int64_t
fake_core_int(const struct fake_call *c, const char *key)
{
	if (c->resp == NULL)
		return -1;
	return json_integer_value(json_object_get(answer_obj(c), key));
}

/* ---- the IdP's answers ---- */

unsigned
fake_core_idp_waiting(const struct fake_core *fc, enum fake_grant kind)
{
	const struct fake_req *q;
	unsigned n = 0;

	for (q = fc->reqs; q != NULL; q = q->next)
		n += q->kind == kind;
	return n;
}

unsigned
fake_core_idp_sent(const struct fake_core *fc, enum fake_grant kind)
{
	return fc->sent[kind];
}

static const struct fake_req *
oldest(const struct fake_core *fc, enum fake_grant kind)
{
	const struct fake_req *q;

	for (q = fc->reqs; q != NULL && q->kind != kind; q = q->next)
		;
	return q;
}

int
fake_core_idp_client(const struct fake_core *fc, enum fake_grant kind)
{
	const struct fake_req *q = oldest(fc, kind);

	return q != NULL ? q->client : -1;
}

const char *
fake_core_idp_cred(const struct fake_core *fc, enum fake_grant kind)
{
	const struct fake_req *q = oldest(fc, kind);

	return q != NULL ? q->cred : "";
}

const char *
fake_core_idp_code(const struct fake_core *fc)
{
	const struct fake_req *q = oldest(fc, FAKE_CODE);

	return q != NULL ? q->rt : "";
}

const char *
fake_core_idp_verifier(const struct fake_core *fc)
{
	const struct fake_req *q = oldest(fc, FAKE_CODE);

	return q != NULL ? q->verifier : "";
}

const char *
fake_core_idp_redirect(const struct fake_core *fc)
{
	const struct fake_req *q = oldest(fc, FAKE_CODE);

	return q != NULL ? q->redirect : "";
}

const char *
fake_core_idp_refresh_token(const struct fake_core *fc)
{
	const struct fake_req *q;

	for (q = fc->reqs; q != NULL; q = q->next)
		if (q->kind == FAKE_REFRESH)
			return q->rt;
	return "";
}

const char *
fake_core_idp_claims(const struct fake_core *fc)
{
	const struct fake_req *q;

	for (q = fc->reqs; q != NULL; q = q->next)
		if (q->kind == FAKE_REFRESH)
			return q->claims != NULL ? q->claims : "";
	return "";
}

const char *
fake_core_idp_poll_claims(const struct fake_core *fc)
{
	const struct fake_req *q;

	for (q = fc->reqs; q != NULL; q = q->next)
		if (q->kind == FAKE_POLL)
			return q->claims != NULL ? q->claims : "";
	return "";
}

const char *
fake_core_idp_scope(const struct fake_core *fc)
{
	const struct fake_req *q;

	for (q = fc->reqs; q != NULL; q = q->next)
		if (q->kind == FAKE_REFRESH || q->kind == FAKE_APP)
			return q->scope;
	return "";
}

int
fake_core_idp_answer(struct fake_core *fc, enum fake_grant kind, long status,
    const char *body, int64_t retry_after)
{
	struct fake_req *q;
	struct secret *sb;

	for (q = fc->reqs; q != NULL && q->kind != kind; q = q->next)
		;
	if (q == NULL)
		return -ENOENT;
	idp_unlink(fc, q);
	sb = secret_from_str(body);
	if (sb == NULL)
		abort();
	/* As idp_http.c: parse and classify, then answer. */
	if (kind == FAKE_DEVICE) {
		struct oauth_device dev = { 0 };
		struct oauth_error err = { 0 };
		int r = oauth_parse_device(status, sb, retry_after, &dev, &err);

		q->device_cb(q->arg, r, &dev, &err);
		oauth_device_clear(&dev);
	} else {
		struct oauth_token tok = { 0 };
		struct oauth_error err = { 0 };
		int r = oauth_parse_token(status, sb, retry_after, &tok, &err);

		q->token_cb(q->arg, r, &tok, &err);
		oauth_token_clear(&tok);
	}
	secret_free(sb);
	free(q->claims);
	free(q);
	fake_core_settle(fc);
	return 0;
}

/* base64url without padding. */
static void
b64url(const char *in, char *out, size_t cap)
{
	sodium_bin2base64(out, cap, (const unsigned char *)in, strlen(in),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

const char *
fake_core_token_body(struct fake_core *fc, const char *access,
    const char *refresh, int64_t expires_in, const char *oid,
    const char *username)
{
	char claims[512], payload[1024], rt[300] = "", idt[1200] = "";

	if (refresh != NULL)
		snprintf(rt, sizeof(rt), ",\"refresh_token\":\"%s\"", refresh);
	if (oid != NULL) {
		snprintf(claims, sizeof(claims),
		    "{\"aud\":\"" FAKE_CLIENT "\",\"tid\":\"" FAKE_TENANT
		    "\",\"oid\":\"%s\",\"preferred_username\":\"%s\"}",
		    oid, username);
		b64url(claims, payload, sizeof(payload));
		snprintf(idt, sizeof(idt),
		    ",\"id_token\":\"eyJhbGciOiJub25lIn0.%s.sig\"", payload);
	}
	snprintf(fc->body, sizeof(fc->body),
	    "{\"token_type\":\"Bearer\",\"scope\":\"" FAKE_SCOPE
	    " openid profile offline_access\",\"expires_in\":%lld,"
	    "\"access_token\":\"%s\"%s%s}",
	    (long long)expires_in, access, rt, idt);
	return fc->body;
}

const char *
fake_core_device_body(struct fake_core *fc, int64_t expires_in,
    int64_t interval)
{
	snprintf(fc->body, sizeof(fc->body),
	    "{\"device_code\":\"DC-secret\",\"user_code\":\"ABCD-EFGH\","
	    "\"verification_uri\":\"https://microsoft.com/devicelogin\","
	    "\"expires_in\":%lld,\"interval\":%lld}",
	    (long long)expires_in, (long long)interval);
	return fc->body;
}

int
fake_core_sign_in(struct fake_core *fc, const char *user, uid_t uid,
    const char *oid, const char *username, const char *rt)
{
	struct fake_call c;
	int ok;

	fake_core_login(fc, &c, user, uid, 0);
	fake_core_settle(fc);
	if (fake_core_idp_answer(fc, FAKE_DEVICE, 200,
		fake_core_device_body(fc, 900, 5), -1) < 0) {
		fprintf(stderr, "fake_sign_in: no device code request\n");
		fake_core_call_done(&c);
		return -1;
	}
	fake_core_advance(fc, 5); /* the first poll */
	if (fake_core_idp_answer(fc, FAKE_POLL, 200,
		fake_core_token_body(fc, "AT-first", rt, 3600, oid, username),
		-1) < 0) {
		fprintf(stderr, "fake_sign_in: no poll\n");
		fake_core_call_done(&c);
		return -1;
	}
	fake_core_call_done(&c);
	fake_core_status(fc, &c, user, uid);
	fake_core_settle(fc);
	ok = c.resp != NULL && fake_core_field(&c, "state") != NULL &&
	    strcmp(fake_core_field(&c, "state"), "ready") == 0;
	if (!ok)
		fprintf(stderr, "fake_sign_in: state %s\n",
		    c.resp ? fake_core_field(&c, "state") : "(no answer)");
	fake_core_call_done(&c);
	return ok ? 0 : -1;
}

int64_t
fake_core_stat(struct fake_core *fc, const char *key)
{
	json_t *o = json_object(), *v;
	int64_t n = -1;

	if (o != NULL && broker_metrics_stats(fc->b, o) == 0) {
		v = json_object_get(o, key);
		if (json_is_integer(v))
			n = json_integer_value(v);
	}
	json_decref(o);
	return n;
}

/* ---- the store's counters ---- */

unsigned
fake_core_store_puts(const struct fake_core *fc)
{
	return store_mem_puts(fc->st);
}

unsigned
fake_core_store_dels(const struct fake_core *fc)
{
	return store_mem_dels(fc->st);
}

uint64_t
fake_core_store_last_put(const struct fake_core *fc)
{
	return store_mem_last_put(fc->st);
}

int
fake_core_store_has(const struct fake_core *fc, const char *user)
{
	return store_mem_has(fc->st, FAKE_TENANT, user);
}

struct fake_core *
fake_core_new_alice(void)
{
	struct fake_core *fc = fake_core_new(NULL);

	if (fc == NULL)
		return NULL;
	if (fake_core_sign_in(fc, FAKE_CORE_ALICE, FAKE_CORE_ALICE_UID,
		FAKE_CORE_ALICE_OID, "alice@contoso.com", "RT-1") < 0) {
		fake_core_free(fc);
		return NULL;
	}
	return fc;
}
