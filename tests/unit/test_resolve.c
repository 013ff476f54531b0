/*
 * test_resolve.c - resolve.c on a real event loop with a fake lookup
 * (fake_resolve.h) that blocks until the test opens its gate: answers
 * and the cache, one lookup per name however many wait, cancelling a
 * query while its lookup hangs, waits that time out, the worker bound,
 * stale answers on a fake clock, a name that disappears, re-entrant
 * callbacks, and resolve_free while a lookup hangs. One test uses the
 * real getaddrinfo on an address (no DNS needed).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "entra/util.h"
#include "event.h"
#include "fake_resolve.h"
#include "resolve.h"
#include "test.h"

static void
stop_cb(struct event_loop *ev, void *arg)
{
	(void)arg;
	event_stop(ev);
}

/* Run the loop for about ms. */
static void
spin(struct event_loop *ev, int ms)
{
	(void)event_timer_in(ev, ms, stop_cb, NULL);
	(void)event_run(ev);
}

/* Run the loop until cond holds (at most ~5 s). */
#define RUN_UNTIL(ev, cond)                                                    \
	do {                                                                   \
		int i_;                                                        \
		for (i_ = 0; i_ < 1000 && !(cond); i_++)                       \
			spin((ev), 5);                                         \
	} while (0)

struct answer {
	int ncalls;
	int error;
	char addrs[RESOLVE_ADDRS_LEN];
};

static void
on_answer(void *arg, int error, const char *addrs)
{
	struct answer *a = arg;

	a->ncalls++;
	a->error = error;
	snprintf(a->addrs, sizeof(a->addrs), "%s", addrs != NULL ? addrs : "");
}

static int
answered(const struct answer *a, int n)
{
	int i, k = 0;

	for (i = 0; i < n; i++)
		k += a[i].ncalls == 1 && a[i].error == 0;
	return k;
}

struct fixture {
	struct event_loop *ev;
	struct resolve *r;
	struct fake_resolver f;
};

static int
fx_init(struct fixture *x, bool is_open, const struct resolve_options *o)
{
	struct resolve_options opt = { 0 };

	if (o != NULL)
		opt = *o;
	fake_init(&x->f, is_open, true);
	opt.ops = &x->f.ops;
	x->ev = event_new();
	if (x->ev == NULL)
		return -ENOMEM;
	return resolve_new(x->ev, &opt, &x->r);
}

static void
fx_fini(struct fixture *x)
{
	fake_open(&x->f); /* no worker stays stuck */
	resolve_free(x->r);
	event_free(x->ev);
}

TEST(test_lookup_and_cache)
{
	struct resolve_query *q = NULL;
	struct answer a = { 0 };
	struct resolve_stats st;
	char addrs[RESOLVE_ADDRS_LEN];
	struct fixture x;

	ASSERT_EQ(fx_init(&x, true, NULL), 0);
	snprintf(x.f.addrs, sizeof(x.f.addrs), "192.0.2.1,[2001:db8::1]");
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	ASSERT_TRUE(q != NULL);
	ASSERT_EQ(a.ncalls, 0); /* never inside resolve_lookup */
	RUN_UNTIL(x.ev, a.ncalls > 0);
	ASSERT_EQ(a.ncalls, 1);
	ASSERT_EQ(a.error, 0);
	ASSERT_STREQ(a.addrs, "192.0.2.1,[2001:db8::1]");
	ASSERT_STREQ(x.f.last_host, "idp.test");
	ASSERT_EQ(x.f.last_port, 443);
	/* Cached: answered at once, in any case, no second lookup. */
	q = NULL;
	ASSERT_EQ(resolve_lookup(x.r, "IDP.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	ASSERT_TRUE(q == NULL);
	ASSERT_STREQ(addrs, "192.0.2.1,[2001:db8::1]");
	/* Another port is another name for libcurl. */
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 8443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	RUN_UNTIL(x.ev, a.ncalls > 1);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 2);
	resolve_get_stats(x.r, &st);
	ASSERT_EQ(st.lookups, 2);
	ASSERT_EQ(st.running, 0);
	ASSERT_TRUE(st.workers >= 1 && st.workers <= RESOLVE_WORKERS);
	/* Bad arguments. */
	ASSERT_EQ(resolve_lookup(x.r, "", 443, addrs, on_answer, &a, &q),
	    -EINVAL);
	ASSERT_EQ(resolve_lookup(x.r, "h", 70000, addrs, on_answer, &a, &q),
	    -EINVAL);
	fx_fini(&x);
}

TEST(test_single_flight)
{
	struct resolve_query *q[100];
	struct answer a[100];
	char addrs[RESOLVE_ADDRS_LEN];
	struct fixture x;
	int i, n = 0;

	memset(a, 0, sizeof(a));
	ASSERT_EQ(fx_init(&x, false, NULL), 0);
	for (i = 0; i < 100; i++)
		ASSERT_EQ(resolve_lookup(x.r, i % 2 ? "Idp.Test" : "idp.test",
			      443, addrs, on_answer, &a[i], &q[i]),
		    -EINPROGRESS);
	ASSERT_EQ(fake_wait(&x.f, &x.f.calls, 1), 0);
	spin(x.ev, 20);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 1);
	fake_open(&x.f);
	RUN_UNTIL(x.ev, a[99].ncalls > 0);
	for (i = 0; i < 100; i++)
		n += a[i].ncalls == 1 && a[i].error == 0;
	ASSERT_EQ(n, 100);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 1);
	fx_fini(&x);
}

TEST(test_cancel_while_lookup_hangs)
{
	struct resolve_query *q = NULL, *q2 = NULL;
	struct answer a = { 0 }, b = { 0 };
	char addrs[RESOLVE_ADDRS_LEN];
	struct fixture x;
	int64_t t0;

	ASSERT_EQ(fx_init(&x, false, NULL), 0);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &b,
		      &q2),
	    -EINPROGRESS);
	ASSERT_EQ(fake_wait(&x.f, &x.f.running, 1), 0);
	t0 = util_mono_ms();
	resolve_cancel(x.r, &q);
	ASSERT_TRUE(util_mono_ms() - t0 < 100); /* waits for nothing */
	ASSERT_TRUE(q == NULL);
	resolve_cancel(x.r, &q); /* NULL-safe */
	fake_open(&x.f);
	RUN_UNTIL(x.ev, b.ncalls > 0);
	ASSERT_EQ(a.ncalls, 0);
	ASSERT_EQ(b.ncalls, 1);
	/* The lookup went on and its answer is cached. */
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 1);
	fx_fini(&x);
}

TEST(test_wait_times_out)
{
	struct resolve_options o = { .wait_ms = 100 };
	struct resolve_query *q = NULL;
	struct answer a = { 0 };
	char addrs[RESOLVE_ADDRS_LEN];
	struct fixture x;

	ASSERT_EQ(fx_init(&x, false, &o), 0);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	RUN_UNTIL(x.ev, a.ncalls > 0);
	ASSERT_EQ(a.ncalls, 1);
	ASSERT_EQ(a.error, -ETIMEDOUT);
	ASSERT_EQ(fake_get(&x.f, &x.f.running), 1); /* still hanging */
	/* A new query joins the lookup that hangs, not a second one. */
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	fake_open(&x.f);
	RUN_UNTIL(x.ev, a.ncalls > 1);
	ASSERT_EQ(a.error, 0);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 1);
	fx_fini(&x);
}

TEST(test_worker_bound)
{
	struct resolve_query *q[10];
	struct answer a[10];
	struct resolve_stats st;
	char addrs[RESOLVE_ADDRS_LEN], host[32];
	struct fixture x;
	int i, n = 0;

	memset(a, 0, sizeof(a));
	ASSERT_EQ(fx_init(&x, false, NULL), 0);
	for (i = 0; i < 10; i++) {
		snprintf(host, sizeof(host), "host%d.test", i);
		ASSERT_EQ(resolve_lookup(x.r, host, 443, addrs, on_answer,
			      &a[i], &q[i]),
		    -EINPROGRESS);
	}
	ASSERT_EQ(fake_wait(&x.f, &x.f.running, RESOLVE_WORKERS), 0);
	spin(x.ev, 50);
	resolve_get_stats(x.r, &st);
	ASSERT_EQ(st.workers, RESOLVE_WORKERS);
	ASSERT_EQ(st.running, RESOLVE_WORKERS);
	ASSERT_EQ(fake_get(&x.f, &x.f.running), RESOLVE_WORKERS);
	fake_open(&x.f);
	RUN_UNTIL(x.ev, (n = answered(a, 10)) == 10);
	ASSERT_EQ(n, 10);
	ASSERT_EQ(x.f.max_running, RESOLVE_WORKERS);
	resolve_get_stats(x.r, &st);
	ASSERT_EQ(st.workers, RESOLVE_WORKERS); /* never more */
	fx_fini(&x);
}

TEST(test_stale_answers)
{
	struct resolve_options o = { .fresh_ms = 1000, .stale_ms = 5000 };
	struct resolve_query *q = NULL;
	struct answer a = { 0 };
	struct resolve_stats st;
	char addrs[RESOLVE_ADDRS_LEN];
	struct fixture x;

	ASSERT_EQ(fx_init(&x, true, &o), 0);
	x.f.now = 10000;
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	RUN_UNTIL(x.ev, a.ncalls > 0);
	x.f.now = 10500; /* fresh */
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 1);
	/* Stale: served at once, refreshed behind it. */
	fake_close(&x.f);
	snprintf(x.f.addrs, sizeof(x.f.addrs), "192.0.2.2");
	x.f.now = 11500;
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	ASSERT_TRUE(q == NULL);
	ASSERT_STREQ(addrs, "127.0.0.1");
	ASSERT_EQ(fake_wait(&x.f, &x.f.calls, 2), 0);
	/* While the refresh hangs, the stale answer is still served. */
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 2); /* one refresh */
	fake_open(&x.f);
	RUN_UNTIL(x.ev, fake_get(&x.f, &x.f.finished) == 2);
	spin(x.ev, 20);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	ASSERT_STREQ(addrs, "192.0.2.2"); /* refreshed, fresh again */
	resolve_get_stats(x.r, &st);
	ASSERT_EQ(st.stale, 2);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 2);
	/* A refresh that fails keeps the stale answer... */
	fake_set(&x.f, -EHOSTUNREACH);
	x.f.now = 13000;
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	RUN_UNTIL(x.ev, fake_get(&x.f, &x.f.finished) == 3);
	spin(x.ev, 20);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	ASSERT_STREQ(addrs, "192.0.2.2");
	/* ... until it is too old to serve: then the query waits. */
	fake_set(&x.f, 0);
	x.f.now = 11500 + 5000;
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	fx_fini(&x);
}

TEST(test_name_gone)
{
	struct resolve_options o = { .fresh_ms = 1000 };
	struct resolve_query *q = NULL;
	struct answer a = { 0 };
	char addrs[RESOLVE_ADDRS_LEN];
	struct fixture x;

	ASSERT_EQ(fx_init(&x, true, &o), 0);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	RUN_UNTIL(x.ev, a.ncalls > 0);
	/* The DNS now says the name does not exist: the stale answer goes. */
	fake_set(&x.f, -ENOENT);
	x.f.now += 2000;
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    0);
	RUN_UNTIL(x.ev, fake_get(&x.f, &x.f.finished) == 2);
	spin(x.ev, 20);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	RUN_UNTIL(x.ev, a.ncalls > 1);
	ASSERT_EQ(a.ncalls, 2);
	ASSERT_EQ(a.error, -EHOSTUNREACH);
	ASSERT_STREQ(a.addrs, "");
	fx_fini(&x);
}

/* From a callback: cancel a sibling, ask again (cached by then). */
struct chain {
	struct resolve *r;
	struct resolve_query *sibling;
	struct answer again;
	int nfirst, nsibling, again_rc;
};

static void
on_first(void *arg, int error, const char *addrs)
{
	struct chain *c = arg;
	struct resolve_query *q = NULL;
	char buf[RESOLVE_ADDRS_LEN];

	(void)addrs;
	c->nfirst += error == 0;
	resolve_cancel(c->r, &c->sibling);
	c->again_rc = resolve_lookup(c->r, "idp.test", 443, buf, on_answer,
	    &c->again, &q);
}

static void
on_sibling(void *arg, int error, const char *addrs)
{
	(void)error;
	(void)addrs;
	((struct chain *)arg)->nsibling++;
}

TEST(test_reentrant_callbacks)
{
	struct resolve_query *q = NULL;
	char addrs[RESOLVE_ADDRS_LEN];
	struct chain c = { 0 };
	struct fixture x;

	ASSERT_EQ(fx_init(&x, false, NULL), 0);
	c.r = x.r;
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_first, &c, &q),
	    -EINPROGRESS);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_sibling, &c,
		      &c.sibling),
	    -EINPROGRESS);
	fake_open(&x.f);
	RUN_UNTIL(x.ev, c.nfirst > 0);
	spin(x.ev, 20);
	ASSERT_EQ(c.nfirst, 1);
	ASSERT_EQ(c.nsibling, 0);
	ASSERT_TRUE(c.sibling == NULL);
	ASSERT_EQ(c.again_rc, 0); /* cached before the callbacks ran */
	ASSERT_EQ(c.again.ncalls, 0);
	fx_fini(&x);
}

TEST(test_free_while_lookup_hangs)
{
	struct resolve_query *q = NULL;
	struct answer a = { 0 };
	char addrs[RESOLVE_ADDRS_LEN];
	struct fixture x;
	int64_t t0;

	ASSERT_EQ(fx_init(&x, false, NULL), 0);
	ASSERT_EQ(resolve_lookup(x.r, "idp.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	ASSERT_EQ(resolve_lookup(x.r, "other.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS);
	ASSERT_EQ(resolve_lookup(x.r, "third.test", 443, addrs, on_answer, &a,
		      &q),
	    -EINPROGRESS); /* queued: both workers hang */
	ASSERT_EQ(fake_wait(&x.f, &x.f.running, 2), 0);
	t0 = util_mono_ms();
	resolve_free(x.r); /* detaches the stuck workers */
	ASSERT_TRUE(util_mono_ms() - t0 < 500);
	ASSERT_EQ(a.ncalls, 0);
	/* The workers return later, free what they hold and exit (ASan
	 * would see a use after free here). */
	fake_open(&x.f);
	ASSERT_EQ(fake_wait(&x.f, &x.f.finished, 2), 0);
	(void)nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000 }, NULL);
	ASSERT_EQ(fake_get(&x.f, &x.f.calls), 2); /* third never ran */
	event_free(x.ev);
}

TEST(test_system_lookup_of_an_address)
{
	struct resolve_query *q = NULL;
	struct answer a = { 0 };
	char addrs[RESOLVE_ADDRS_LEN];
	struct event_loop *ev = event_new();
	struct resolve *r = NULL;

	ASSERT_TRUE(ev != NULL);
	ASSERT_EQ(resolve_new(ev, NULL, &r), 0);
	/* getaddrinfo parses an address without asking any DNS server. */
	ASSERT_EQ(resolve_lookup(r, "::1", 443, addrs, on_answer, &a, &q),
	    -EINPROGRESS);
	RUN_UNTIL(ev, a.ncalls > 0);
	ASSERT_EQ(a.error, 0);
	ASSERT_STREQ(a.addrs, "[::1]");
	ASSERT_EQ(resolve_lookup(r, "192.0.2.7", 80, addrs, on_answer, &a, &q),
	    -EINPROGRESS);
	RUN_UNTIL(ev, a.ncalls > 1);
	ASSERT_STREQ(a.addrs, "192.0.2.7");
	resolve_free(r);
	event_free(ev);
}

int
main(void)
{
	RUN(test_lookup_and_cache);
	RUN(test_single_flight);
	RUN(test_cancel_while_lookup_hangs);
	RUN(test_wait_times_out);
	RUN(test_worker_bound);
	RUN(test_stale_answers);
	RUN(test_name_gone);
	RUN(test_reentrant_callbacks);
	RUN(test_free_while_lookup_hangs);
	RUN(test_system_lookup_of_an_address);
	TEST_MAIN_END();
}
