/*
 * fake_resolve.h - a resolve_ops for unit tests (test_resolve.c,
 * test_http.c): lookups block behind a gate the test opens, count how
 * many run at once, remember the last name asked, and answer what the
 * test set. The clock is a number the test moves. Header-only (static),
 * so each test program has its own copy.
 */
#ifndef FAKE_RESOLVE_H
#define FAKE_RESOLVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "resolve.h"

struct fake_resolver {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool is_open; /* lookups return only when open */
	int result;   /* what they return */
	char addrs[RESOLVE_ADDRS_LEN];
	unsigned calls, running, max_running, finished;
	char last_host[RESOLVE_HOST_MAX + 1];
	int last_port;
	int64_t now; /* the clock (loop thread only) */
	struct resolve_ops ops;
};

static int
fake_lookup(void *arg, const char *host, int port,
    char addrs[RESOLVE_ADDRS_LEN])
{
	struct fake_resolver *f = arg;
	int r;

	pthread_mutex_lock(&f->mu);
	f->calls++;
	if (++f->running > f->max_running)
		f->max_running = f->running;
	snprintf(f->last_host, sizeof(f->last_host), "%s", host);
	f->last_port = port;
	pthread_cond_broadcast(&f->cv);
	while (!f->is_open)
		pthread_cond_wait(&f->cv, &f->mu);
	f->running--;
	f->finished++;
	r = f->result;
	memcpy(addrs, f->addrs, RESOLVE_ADDRS_LEN);
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return r;
}

static int64_t
fake_now(void *arg)
{
	return ((struct fake_resolver *)arg)->now;
}

static void
fake_init(struct fake_resolver *f, bool is_open, bool has_clock)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->is_open = is_open;
	snprintf(f->addrs, sizeof(f->addrs), "127.0.0.1");
	f->ops.lookup = fake_lookup;
	f->ops.now_ms = has_clock ? fake_now : NULL;
	f->ops.arg = f;
}

static void
fake_open(struct fake_resolver *f)
{
	pthread_mutex_lock(&f->mu);
	f->is_open = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void
fake_close(struct fake_resolver *f)
{
	pthread_mutex_lock(&f->mu);
	f->is_open = false;
	pthread_mutex_unlock(&f->mu);
}

static void
fake_set(struct fake_resolver *f, int result)
{
	pthread_mutex_lock(&f->mu);
	f->result = result;
	pthread_mutex_unlock(&f->mu);
}

static unsigned
fake_get(struct fake_resolver *f, const unsigned *field)
{
	unsigned v;

	pthread_mutex_lock(&f->mu);
	v = *field;
	pthread_mutex_unlock(&f->mu);
	return v;
}

/* Wait (off the loop) until *field >= n; 0, or -1 after 5 s. */
static int
fake_wait(struct fake_resolver *f, const unsigned *field, unsigned n)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&f->mu);
	while (*field < n && r == 0)
		r = pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	r = *field >= n ? 0 : -1;
	pthread_mutex_unlock(&f->mu);
	return r;
}

#endif
