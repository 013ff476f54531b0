/*
 * discovery.c - the discovery document in force (discovery.h): one fetch
 * at a time through http.c on the loop, the TTL and the refetch before
 * expiry, stale-while-error with backoff, the listener told how each
 * fetch ended. The parsing and the trust rules are discovery_doc.c's.
 *
 * Must never: keep or hand out a refused document, let a failed refetch
 * drop the document in force, log a body, or log a failure more than
 * once per outage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

#include "clock.h"
#include "discovery.h"
#include "event.h"
#include "http.h"
#include "log.h"

/* Backoff after a failed fetch, seconds: doubled from the first, capped. */
#define RETRY_FIRST_NODOC 1
#define RETRY_MAX_NODOC 60
#define RETRY_MAX_STALE 600
/* No new fetch for a request within this of a failure (ms). */
#define NEED_GAP_MS 1000

struct discovery {
	const struct clock *clk;
	const struct discovery_fetch_ops *ops;
	void *ctx;
	char *authority, *tenant, *hosts;
	struct discovery_rules rules;
	char url[1024];
	int64_t min_ttl;
	struct discovery_doc doc;
	bool has_doc;
	int64_t fetched_at, expires_at; /* unix s */
	void *req;			/* the fetch in flight */
	struct event_timer *timer;	/* the next refetch or retry */
	unsigned nfail;			/* failures in a row */
	int64_t fail_ms;		/* loop ms of the last failure */
	int last_error;
	bool is_logged; /* this outage was logged */
	char why[DISCOVERY_WHY_MAX];
	discovery_cb *cb;
	void *cb_arg;
};

static void fetch(struct discovery *d);

static void
on_timer(struct event_loop *ev, void *arg)
{
	struct discovery *d = arg;

	(void)ev;
	d->timer = NULL;
	fetch(d);
}

static void
arm(struct discovery *d, int64_t delay_s)
{
	clock_timer_cancel(d->clk, &d->timer);
	if (delay_s < 1)
		delay_s = 1;
	d->timer = clock_timer_in(d->clk, delay_s * 1000, on_timer, d);
	if (d->timer == NULL)
		log_warnx("discovery: cannot arm a timer: the document is "
			  "fetched again when a request needs it");
}

/* Seconds before the next try after nfail failures in a row. */
static int64_t
backoff(const struct discovery *d)
{
	int64_t first = d->has_doc ? (d->min_ttl < 30 ? d->min_ttl : 30) :
				     RETRY_FIRST_NODOC;
	int64_t cap = d->has_doc ? RETRY_MAX_STALE : RETRY_MAX_NODOC;
	int64_t s = first;
	unsigned i;

	for (i = 1; i < d->nfail && s < cap; i++)
		s *= 2;
	return s < cap ? s : cap;
}

static void
failed(struct discovery *d, int r)
{
	char q[LOG_VALUE_MAX];

	d->nfail++;
	d->fail_ms = clock_now_ms(d->clk);
	d->last_error = r;
	if (!d->is_logged) {
		d->is_logged = true;
		if (d->has_doc)
			log_warnx("discovery: %s: %s; the document fetched at "
				  "%lld stays in force, retrying with backoff",
			    d->url, log_value(q, d->why),
			    (long long)d->fetched_at);
		else
			log_warnx("discovery: %s: %s; requests that need the "
				  "IdP fail until it answers",
			    d->url, log_value(q, d->why));
	}
	arm(d, backoff(d));
}

static void
succeeded(struct discovery *d, const struct discovery_doc *doc, int64_t max_age)
{
	int64_t ttl = discovery_doc_ttl(max_age, d->min_ttl);
	int64_t now = clock_now(d->clk);
	bool is_first = !d->has_doc;
	bool is_changed = !is_first && memcmp(&d->doc, doc, sizeof(*doc)) != 0;

	d->doc = *doc;
	d->has_doc = true;
	d->fetched_at = now;
	d->expires_at = now + ttl;
	if (is_first || is_changed || d->is_logged)
		log_info("discovery: %s: issuer %s, token endpoint %s, "
			 "device endpoint %s, valid %llds%s",
		    d->url, doc->issuer, doc->token_endpoint,
		    doc->device_authorization_endpoint[0] != '\0' ?
			doc->device_authorization_endpoint :
			"(none)",
		    (long long)ttl, d->is_logged ? " (recovered)" : "");
	d->nfail = 0;
	d->last_error = 0;
	d->is_logged = false;
	d->why[0] = '\0';
	/* Refetch behind, a tenth before expiry. */
	arm(d, ttl - ttl / 10);
}

static void
fetch_done(void *arg, const struct http_response *hr)
{
	struct discovery *d = arg;
	struct discovery_doc doc;
	int r;

	d->req = NULL;
	if (hr->error != 0) {
		(void)snprintf(d->why, sizeof(d->why),
		    "discovery document unavailable: %s",
		    hr->error_msg != NULL ? hr->error_msg :
					    log_errno_name(hr->error));
		r = -EHOSTUNREACH;
	} else if (hr->status != 200) {
		(void)snprintf(d->why, sizeof(d->why),
		    "discovery document unavailable: HTTP %ld", hr->status);
		r = -EHOSTUNREACH;
	} else {
		char why[DISCOVERY_WHY_MAX];

		r = discovery_doc_parse(hr->body->ptr, hr->body->len, &d->rules,
		    &doc, why, sizeof(why));
		if (r == 0) {
			succeeded(d, &doc, hr->max_age);
		} else {
			(void)snprintf(d->why, sizeof(d->why),
			    "discovery document refused: %.*s",
			    (int)(sizeof(d->why) - 30), why);
			if (r != -ENOMEM)
				r = -EBADMSG;
		}
	}
	if (r < 0)
		failed(d, r);
	if (d->cb != NULL)
		d->cb(d->cb_arg, d->has_doc ? 0 : r);
}

static void
fetch(struct discovery *d)
{
	int r;

	if (d->req != NULL)
		return;
	clock_timer_cancel(d->clk, &d->timer);
	r = d->ops->get(d->ctx, d->url, fetch_done, d, &d->req);
	if (r < 0) {
		(void)snprintf(d->why, sizeof(d->why),
		    "discovery document not requested: %s", log_errno_name(r));
		failed(d, r);
	}
}

static int
http_ops_get(void *ctx, const char *url,
    void (*cb)(void *arg, const struct http_response *hr), void *arg,
    void **req)
{
	struct http_req *r = NULL;
	int rc;

	rc = http_get(ctx, url, cb, arg, &r);
	*req = r;
	return rc;
}

static void
http_ops_cancel(void *ctx, void **req)
{
	struct http_req *r = *req;

	http_cancel(ctx, &r);
	*req = NULL;
}

const struct discovery_fetch_ops discovery_http_ops = {
	.get = http_ops_get,
	.cancel = http_ops_cancel,
};

int
discovery_new(const struct clock *clk, const struct discovery_fetch_ops *ops,
    void *ctx, const struct discovery_rules *rules, int64_t min_ttl,
    struct discovery **out)
{
	struct discovery *d;
	int r;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->clk = clk;
	d->ops = ops;
	d->ctx = ctx;
	d->min_ttl = min_ttl > 0 ? min_ttl : DISCOVERY_TTL_MIN;
	d->authority = strdup(rules->authority != NULL ? rules->authority : "");
	d->tenant = strdup(rules->tenant != NULL ? rules->tenant : "");
	d->hosts = strdup(rules->hosts != NULL ? rules->hosts : "");
	if (d->authority == NULL || d->tenant == NULL || d->hosts == NULL) {
		discovery_free(d);
		return -ENOMEM;
	}
	d->rules.authority = d->authority;
	d->rules.tenant = d->tenant;
	d->rules.hosts = d->hosts;
	d->rules.is_oidc = rules->is_oidc;
	r = discovery_doc_url(&d->rules, d->url, sizeof(d->url));
	if (r < 0) {
		discovery_free(d);
		return r;
	}
	*out = d;
	return 0;
}

void
discovery_free(struct discovery *d)
{
	if (d == NULL)
		return;
	if (d->req != NULL)
		d->ops->cancel(d->ctx, &d->req);
	clock_timer_cancel(d->clk, &d->timer);
	free(d->authority);
	free(d->tenant);
	free(d->hosts);
	free(d);
}

void
discovery_set_listener(struct discovery *d, discovery_cb *cb, void *arg)
{
	d->cb = cb;
	d->cb_arg = arg;
}

void
discovery_start(struct discovery *d)
{
	fetch(d);
}

const struct discovery_doc *
discovery_get(const struct discovery *d)
{
	return d != NULL && d->has_doc ? &d->doc : NULL;
}

int
discovery_need(struct discovery *d)
{
	if (d->req == NULL && d->nfail > 0 &&
	    clock_now_ms(d->clk) - d->fail_ms < NEED_GAP_MS)
		return d->last_error < 0 ? d->last_error : -EHOSTUNREACH;
	fetch(d);
	if (d->req == NULL)
		return d->last_error < 0 ? d->last_error : -EHOSTUNREACH;
	return -EINPROGRESS;
}

const char *
discovery_why(const struct discovery *d)
{
	return d->why;
}

const char *
discovery_url(const struct discovery *d)
{
	return d->url;
}

void
discovery_times(const struct discovery *d, int64_t *fetched, int64_t *expires,
    int *is_stale)
{
	*fetched = d->has_doc ? d->fetched_at : 0;
	*expires = d->has_doc ? d->expires_at : 0;
	*is_stale = d->has_doc && d->nfail > 0;
}
