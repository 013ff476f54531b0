/*
 * test_ready.c - ready.c with a fake sd_notify: nothing is sent without
 * NOTIFY_SOCKET; READY=1 carries the first STATUS=; a STATUS= is sent
 * only when the text changes; the timer pings WATCHDOG=1 at half
 * WATCHDOG_USEC (capped by the status period) from the loop; STOPPING=1
 * is sent once and stops the pings. The loop runs a few 1 ms periods.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "ready.h"
#include "test.h"

#define SENT_MAX 64

struct fake {
	char sent[SENT_MAX][128];
	int n;
	uint64_t watchdog_usec;
	int status_calls;
	const char *status;
	struct event_loop *ev;
	int stop_after_pings;
};

static int
count_prefix(const struct fake *f, const char *prefix)
{
	int i, n = 0;

	for (i = 0; i < f->n; i++)
		if (strncmp(f->sent[i], prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

static int
fake_notify(void *arg, const char *msg)
{
	struct fake *f = arg;

	if (f->n < SENT_MAX)
		snprintf(f->sent[f->n++], sizeof(f->sent[0]), "%s", msg);
	if (f->stop_after_pings > 0 &&
	    count_prefix(f, "WATCHDOG=1") >= f->stop_after_pings)
		event_stop(f->ev);
	return 1;
}

static int
fake_watchdog(void *arg, uint64_t *usec)
{
	struct fake *f = arg;

	*usec = f->watchdog_usec;
	return f->watchdog_usec > 0;
}

static const struct ready_ops fake_ops = { fake_notify, fake_watchdog };

static void
fake_status(void *arg, char *buf, size_t size)
{
	struct fake *f = arg;

	f->status_calls++;
	snprintf(buf, size, "%s", f->status);
}

TEST(test_disabled_sends_nothing)
{
	struct event_loop *ev = event_new();
	struct fake f = { .status = "serving" };
	struct ready *r;

	ASSERT_TRUE(ev != NULL);
	ASSERT_EQ(ready_new(ev, &fake_ops, &f, 0, fake_status, &f, &r), 0);
	ready_serving(r);
	ready_status(r, "other");
	ready_stopping(r);
	ASSERT_EQ(f.n, 0);
	ASSERT_EQ(ready_period_ms(r), 0);
	ready_free(r);
	event_free(ev);
}

TEST(test_ready_status_stopping)
{
	struct event_loop *ev = event_new();
	struct fake f = { .status = "serving, 0 users" };
	struct ready *r;

	ASSERT_EQ(ready_new(ev, &fake_ops, &f, 1, fake_status, &f, &r), 0);
	ASSERT_EQ(ready_period_ms(r), 5000); /* no watchdog: status only */
	ready_serving(r);
	ASSERT_EQ(f.n, 1);
	ASSERT_STREQ(f.sent[0], "READY=1\nSTATUS=serving, 0 users");
	ready_status(r, "serving, 0 users"); /* unchanged: not sent */
	ASSERT_EQ(f.n, 1);
	ready_status(r, "serving, 1 users");
	ASSERT_EQ(f.n, 2);
	ASSERT_STREQ(f.sent[1], "STATUS=serving, 1 users");
	ready_stopping(r);
	ready_stopping(r); /* once */
	ASSERT_EQ(f.n, 3);
	ASSERT_STREQ(f.sent[2], "STOPPING=1\nSTATUS=stopping");
	ready_status(r, "stopping");
	ASSERT_EQ(f.n, 3);
	ready_free(r);
	event_free(ev);
}

TEST(test_watchdog_pings_from_the_loop)
{
	struct event_loop *ev = event_new();
	struct fake f = { .status = "serving",
		.watchdog_usec = 2000,
		.stop_after_pings = 3 };
	struct ready *r;

	f.ev = ev;
	ASSERT_EQ(ready_new(ev, &fake_ops, &f, 1, fake_status, &f, &r), 0);
	ASSERT_EQ(ready_period_ms(r), 1); /* half of 2 ms */
	ready_serving(r);
	ASSERT_EQ(event_run(ev), 0); /* until the third ping */
	ASSERT_EQ(count_prefix(&f, "WATCHDOG=1"), 3);
	ASSERT_EQ(count_prefix(&f, "READY=1"), 1);
	ASSERT_EQ(count_prefix(&f, "STATUS="), 0); /* unchanged text */
	ASSERT_TRUE(f.status_calls >= 3);	   /* looked at every tick */
	ready_stopping(r);
	ready_free(r);
	event_free(ev);
}

TEST(test_period_is_capped)
{
	struct event_loop *ev = event_new();
	struct fake f = { .status = "x", .watchdog_usec = 60000000 };
	struct ready *r;

	ASSERT_EQ(ready_new(ev, &fake_ops, &f, 1, fake_status, &f, &r), 0);
	ASSERT_EQ(ready_period_ms(r), 5000); /* STATUS= every 5 s at most */
	f.watchdog_usec = 0;
	ready_free(r);
	f.watchdog_usec = 3000000;
	ASSERT_EQ(ready_new(ev, &fake_ops, &f, 1, fake_status, &f, &r), 0);
	ASSERT_EQ(ready_period_ms(r), 1500);
	ready_free(r);
	event_free(ev);
}

int
main(void)
{
	RUN(test_disabled_sends_nothing);
	RUN(test_ready_status_stopping);
	RUN(test_watchdog_pings_from_the_loop);
	RUN(test_period_is_capped);
	TEST_MAIN_END();
}
