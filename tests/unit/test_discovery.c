/*
 * test_discovery.c - the discovery document in force (credd/discovery.c)
 * on a fixed clock with a scripted fetch: single flight, the listener,
 * the TTL from max-age (clamped) and the refetch before expiry,
 * stale-while-error with backoff, a refused document (and one refused at
 * a refetch), the one-fetch-a-second rule while the IdP is down.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

#include "clock.h"
#include "discovery.h"
#include "http.h"
#include "test.h"

#define AUTH "https://login.example.net"
#define TEN "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define T0 INT64_C(1900000000)

/* ---- a fixed clock whose timers fire when the test advances it ---- */

struct ftimer {
	int64_t due;
	event_timer_cb *cb;
	void *arg;
	int is_live;
};

#define NTIMERS 16

struct fclock {
	struct clock c;
	int64_t ms; /* since T0 */
	struct ftimer t[NTIMERS];
};

static int64_t
f_now(const struct clock *c)
{
	const struct fclock *f = c->priv;

	return T0 + f->ms / 1000;
}

static int64_t
f_now_ms(const struct clock *c)
{
	const struct fclock *f = c->priv;

	return f->ms;
}

static struct event_timer *
f_timer_at(const struct clock *c, int64_t due_ms, event_timer_cb *cb, void *arg)
{
	struct fclock *f = c->priv;
	size_t i;

	for (i = 0; i < NTIMERS; i++)
		if (!f->t[i].is_live) {
			f->t[i] = (struct ftimer){ due_ms, cb, arg, 1 };
			return (struct event_timer *)(void *)&f->t[i];
		}
	return NULL;
}

static void
f_timer_cancel(const struct clock *c, struct event_timer **t)
{
	(void)c;
	if (*t != NULL)
		((struct ftimer *)(void *)*t)->is_live = 0;
	*t = NULL;
}

static const struct clock_ops fclock_ops = { f_now, f_now_ms, f_timer_at,
	f_timer_cancel };

static void
advance(struct fclock *f, int64_t ms)
{
	int64_t end = f->ms + ms;
	size_t i;
	int fired;

	do {
		fired = 0;
		for (i = 0; i < NTIMERS; i++)
			if (f->t[i].is_live && f->t[i].due <= end) {
				if (f->t[i].due > f->ms)
					f->ms = f->t[i].due;
				f->t[i].is_live = 0;
				f->t[i].cb(NULL, f->t[i].arg);
				fired = 1;
			}
	} while (fired);
	f->ms = end;
}

/* ---- a scripted fetch ---- */

struct ffetch {
	unsigned gets, cancels;
	void (*cb)(void *arg, const struct http_response *hr);
	void *arg; /* the one waiting, or cb NULL */
	int dummy;
};

static int
ff_get(void *ctx, const char *url,
    void (*cb)(void *arg, const struct http_response *hr), void *arg,
    void **req)
{
	struct ffetch *ff = ctx;

	if (strcmp(url,
		AUTH "/" TEN "/v2.0/.well-known/openid-configuration") != 0)
		return -EINVAL;
	ff->gets++;
	ff->cb = cb;
	ff->arg = arg;
	*req = &ff->dummy;
	return 0;
}

static void
ff_cancel(void *ctx, void **req)
{
	struct ffetch *ff = ctx;

	ff->cancels++;
	ff->cb = NULL;
	*req = NULL;
}

static const struct discovery_fetch_ops ff_ops = { ff_get, ff_cancel };

/* Answer the waiting fetch: status and body (NULL: a network error). */
static void
answer(struct ffetch *ff, long status, const char *body, int64_t max_age)
{
	struct http_response hr = { 0 };
	struct secret b;
	void (*cb)(void *, const struct http_response *) = ff->cb;

	b.ptr = (char *)(uintptr_t)(body != NULL ? body : "");
	b.len = body != NULL ? strlen(body) : 0;
	hr.status = body != NULL ? status : 0;
	hr.error = body != NULL ? 0 : -ECONNRESET;
	hr.error_msg = body != NULL ? NULL : "Connection reset";
	hr.body = body != NULL ? &b : NULL;
	hr.retry_after = -1;
	hr.max_age = max_age;
	ff->cb = NULL;
	cb(ff->arg, &hr);
}

#define GOOD                                                                   \
	"{\"issuer\":\"" AUTH "/" TEN "/v2.0\",\"token_endpoint\":\"" AUTH     \
	"/" TEN                                                                \
	"/oauth2/v2.0/token\",\"device_authorization_endpoint\":\"" AUTH       \
	"/" TEN "/oauth2/v2.0/devicecode\"}"
#define FOREIGN                                                                \
	"{\"issuer\":\"" AUTH "/" TEN "/v2.0\",\"token_endpoint\":"            \
	"\"https://evil.example/token\"}"

/* ---- the listener ---- */

struct heard {
	unsigned n;
	int last;
};

static void
on_fetch(void *arg, int r)
{
	struct heard *h = arg;

	h->n++;
	h->last = r;
}

struct bench {
	struct fclock fc;
	struct ffetch ff;
	struct heard heard;
	struct discovery *d;
};

static int
bench_new(struct bench *b, int64_t min_ttl)
{
	struct discovery_rules rules = { .authority = AUTH, .tenant = TEN };

	memset(b, 0, sizeof(*b));
	b->fc.c.ops = &fclock_ops;
	b->fc.c.priv = &b->fc;
	if (discovery_new(&b->fc.c, &ff_ops, &b->ff, &rules, min_ttl, &b->d) <
	    0)
		return -1;
	discovery_set_listener(b->d, on_fetch, &b->heard);
	return 0;
}

TEST(test_single_flight_and_ttl)
{
	struct bench b;
	int64_t fetched, expires;
	int is_stale;

	ASSERT_EQ(bench_new(&b, 0), 0);
	ASSERT_TRUE(discovery_get(b.d) == NULL);
	discovery_start(b.d);
	ASSERT_EQ(discovery_need(b.d), -EINPROGRESS);
	ASSERT_EQ(discovery_need(b.d), -EINPROGRESS);
	ASSERT_EQ(b.ff.gets, 1); /* one fetch for all */
	answer(&b.ff, 200, GOOD, 86400);
	ASSERT_EQ(b.heard.n, 1);
	ASSERT_EQ(b.heard.last, 0);
	ASSERT_TRUE(discovery_get(b.d) != NULL);
	ASSERT_STREQ(discovery_get(b.d)->token_endpoint,
	    AUTH "/" TEN "/oauth2/v2.0/token");
	discovery_times(b.d, &fetched, &expires, &is_stale);
	ASSERT_EQ(fetched, T0);
	ASSERT_EQ(expires, T0 + 86400);
	ASSERT_EQ(is_stale, 0);
	/* A document in force: no fetch for a need. */
	ASSERT_EQ(discovery_need(b.d), -EINPROGRESS);
	ASSERT_EQ(b.ff.gets, 2); /* need() is for callers without one */
	answer(&b.ff, 200, GOOD, 86400);
	/* Refetched behind, a tenth before expiry. */
	advance(&b.fc, (int64_t)86400 * 900 - 1000);
	ASSERT_EQ(b.ff.gets, 2);
	advance(&b.fc, (int64_t)(86400 - 8640) * 1000 - (86400 * 900 - 1000));
	ASSERT_EQ(b.ff.gets, 3);
	answer(&b.ff, 200, GOOD, 10); /* clamped up to 300 s */
	discovery_times(b.d, &fetched, &expires, &is_stale);
	ASSERT_EQ(expires - fetched, DISCOVERY_TTL_MIN);
	discovery_free(b.d);
}

TEST(test_stale_while_error)
{
	struct bench b;
	int64_t fetched, expires;
	int is_stale;

	ASSERT_EQ(bench_new(&b, 60), 0);
	discovery_start(b.d);
	answer(&b.ff, 200, GOOD, 60);
	ASSERT_EQ(b.ff.gets, 1);
	advance(&b.fc, 54 * 1000); /* 60 - 6: the refetch */
	ASSERT_EQ(b.ff.gets, 2);
	answer(&b.ff, 503, "{}", -1);
	/* The old document stays; the listener hears "in force". */
	ASSERT_TRUE(discovery_get(b.d) != NULL);
	ASSERT_EQ(b.heard.last, 0);
	discovery_times(b.d, &fetched, &expires, &is_stale);
	ASSERT_EQ(is_stale, 1);
	ASSERT_TRUE(strstr(discovery_why(b.d), "HTTP 503") != NULL);
	/* Backoff: 30 s, then 60 s; a refused document counts as a failure
	 * and does not replace the good one. */
	advance(&b.fc, 29 * 1000);
	ASSERT_EQ(b.ff.gets, 2);
	advance(&b.fc, 1000);
	ASSERT_EQ(b.ff.gets, 3);
	answer(&b.ff, 200, FOREIGN, 86400);
	ASSERT_STREQ(discovery_get(b.d)->token_endpoint,
	    AUTH "/" TEN "/oauth2/v2.0/token");
	ASSERT_TRUE(strstr(discovery_why(b.d),
			"token_endpoint is on host "
			"'evil.example'") != NULL);
	advance(&b.fc, 59 * 1000);
	ASSERT_EQ(b.ff.gets, 3);
	advance(&b.fc, 1000);
	ASSERT_EQ(b.ff.gets, 4);
	answer(&b.ff, 0, NULL, -1); /* the network */
	advance(&b.fc, 120 * 1000);
	ASSERT_EQ(b.ff.gets, 5);
	answer(&b.ff, 200, GOOD, 86400);
	discovery_times(b.d, &fetched, &expires, &is_stale);
	ASSERT_EQ(is_stale, 0);
	ASSERT_STREQ(discovery_why(b.d), "");
	discovery_free(b.d);
}

TEST(test_first_fetch_fails)
{
	struct bench b;

	ASSERT_EQ(bench_new(&b, 0), 0);
	discovery_start(b.d);
	answer(&b.ff, 200, FOREIGN, 86400);
	ASSERT_EQ(b.heard.last, -EBADMSG); /* an admin's problem */
	ASSERT_TRUE(discovery_get(b.d) == NULL);
	/* Within a second: answered at once, no fetch. */
	ASSERT_EQ(discovery_need(b.d), -EBADMSG);
	ASSERT_EQ(b.ff.gets, 1);
	/* The retry behind, after 1 s: the IdP is down now. */
	advance(&b.fc, 1000);
	ASSERT_EQ(b.ff.gets, 2);
	answer(&b.ff, 500, "{}", -1);
	ASSERT_EQ(b.heard.last, -EHOSTUNREACH);
	ASSERT_EQ(discovery_need(b.d), -EHOSTUNREACH);
	ASSERT_EQ(b.ff.gets, 2);
	/* A need more than a second later fetches (the backoff is 2 s). */
	advance(&b.fc, 1500);
	ASSERT_EQ(b.ff.gets, 2);
	ASSERT_EQ(discovery_need(b.d), -EINPROGRESS);
	ASSERT_EQ(b.ff.gets, 3);
	answer(&b.ff, 200, GOOD, -1);
	ASSERT_EQ(b.heard.last, 0);
	ASSERT_TRUE(discovery_get(b.d) != NULL);
	/* Freed with a fetch in flight: cancelled. */
	ASSERT_EQ(discovery_need(b.d), -EINPROGRESS);
	discovery_free(b.d);
	ASSERT_EQ(b.ff.cancels, 1);
}

int
main(void)
{
	RUN(test_single_flight_and_ttl);
	RUN(test_stale_while_error);
	RUN(test_first_fetch_fails);
	TEST_MAIN_END();
}
