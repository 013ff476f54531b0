/*
 * offboard_http.c - offboard.h's transport on credd's own loop: the
 * grant and the Graph call through http.c (HTTPS only, the [entra]
 * ca_file, proxy and timeout), the retry timers on event.c, the wall
 * clock for token lifetimes and assertion times.
 *
 * Must never: block the loop, or log anything (offboard.c's why texts
 * reach the admin and the audit through dispatch.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "discovery.h"
#include "event.h"
#include "http.h"
#include "offboard.h"

/* A timer of event.c, and the offboard callback it stands for. */
struct ob_timer {
	struct event_loop *ev;
	struct event_timer *t;
	offboard_timer_cb *cb;
	void *arg;
};

struct ob_ctx {
	struct event_loop *ev;
	struct http *http;
	struct discovery *disc;
};

static int
post_form(void *ctx, const char *url, const struct secret *form,
    offboard_http_cb *cb, void *arg, void **req)
{
	struct ob_ctx *c = ctx;
	struct http_req *r = NULL;
	int rc;

	rc = http_post_form(c->http, url, form, cb, arg, &r);
	*req = r;
	return rc;
}

static int
post_bearer(void *ctx, const char *url, const struct secret *token,
    offboard_http_cb *cb, void *arg, void **req)
{
	struct ob_ctx *c = ctx;
	struct http_req *r = NULL;
	int rc;

	rc = http_post_bearer(c->http, url, token, cb, arg, &r);
	*req = r;
	return rc;
}

static void
cancel(void *ctx, void **req)
{
	struct ob_ctx *c = ctx;
	struct http_req *r = *req;

	http_cancel(c->http, &r);
	*req = NULL;
}

static void
timer_fire(struct event_loop *ev, void *arg)
{
	struct ob_timer *t = arg;
	offboard_timer_cb *cb = t->cb;
	void *cbarg = t->arg;

	(void)ev;
	free(t); /* the loop freed t->t when it fired */
	cb(cbarg);
}

static int
timer_start(void *ctx, int64_t sec, offboard_timer_cb *cb, void *arg,
    void **timer)
{
	struct ob_ctx *c = ctx;
	struct ob_timer *t;

	*timer = NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->ev = c->ev;
	t->cb = cb;
	t->arg = arg;
	t->t = event_timer_in(c->ev, sec * 1000, timer_fire, t);
	if (t->t == NULL) {
		free(t);
		return -ENOMEM;
	}
	*timer = t;
	return 0;
}

static void
timer_stop(void *ctx, void **timer)
{
	struct ob_timer *t = *timer;

	(void)ctx;
	if (t != NULL) {
		event_timer_cancel(t->ev, &t->t);
		free(t);
	}
	*timer = NULL;
}

static int64_t
now(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL);
}

static const char *
token_url(void *ctx)
{
	struct ob_ctx *c = ctx;
	const struct discovery_doc *doc = discovery_get(c->disc);

	if (doc == NULL) {
		(void)discovery_need(c->disc);
		return NULL;
	}
	return doc->token_endpoint;
}

static const struct offboard_ops http_ops = {
	.post_form = post_form,
	.post_bearer = post_bearer,
	.cancel = cancel,
	.timer_start = timer_start,
	.timer_stop = timer_stop,
	.now = now,
	.token_url = token_url,
};

int
offboard_http_new(struct event_loop *ev, struct http *h, struct discovery *disc,
    const char *graph_url, struct offboard_cred *cred, struct offboard **out)
{
	struct ob_ctx *c;
	int r;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		offboard_cred_clear(cred);
		return -ENOMEM;
	}
	c->ev = ev;
	c->http = h;
	c->disc = disc;
	/* The URL is a placeholder: the token_url op answers each time. */
	r = offboard_new(&http_ops, c, "https://discovery.invalid/token",
	    graph_url, cred, out);
	if (r < 0)
		free(c);
	return r;
}

void
offboard_http_free(struct offboard *ob)
{
	void *c = offboard_ctx(ob);

	offboard_free(ob); /* cancels through c first */
	free(c);
}
