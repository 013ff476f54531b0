/*
 * test_uidlimit.c - the per-uid table shared by the listeners: the
 * connection cap per uid (others unaffected), the token bucket, an entry
 * kept while its bucket is short and dropped once its last connection
 * closes with a full bucket, and queued output: a uid over its own cap
 * waits and is refused new connections while others are served; at the
 * listener's cap the uids that hold output wait, the others do not.
 */
#include <errno.h>

#include "event.h"
#include "uidlimit.h"
#include "test.h"

TEST(test_conn_cap_per_uid)
{
	struct uidlimit_cfg cfg = { 2, 1000, 1000 };
	struct event_loop *ev = event_new();
	struct uidlimit *l = uidlimit_new(ev, &cfg);
	struct uidlimit_entry *a1, *a2, *a3, *b1;

	ASSERT_TRUE(l != NULL);
	ASSERT_EQ(uidlimit_open(l, 1001, &a1), 0);
	ASSERT_EQ(uidlimit_open(l, 1001, &a2), 0);
	ASSERT_TRUE(a1 == a2);
	ASSERT_ERR(uidlimit_open(l, 1001, &a3), -EUSERS);
	ASSERT_TRUE(a3 == NULL);
	ASSERT_EQ(uidlimit_open(l, 1002, &b1),
	    0); /* another uid: its own cap */
	ASSERT_EQ(uidlimit_count(l), 2);
	uidlimit_close(l, a1);
	ASSERT_EQ(uidlimit_open(l, 1001, &a3), 0);
	uidlimit_close(l, a2);
	uidlimit_close(l, a3);
	uidlimit_close(l, b1);
	ASSERT_EQ(uidlimit_count(l), 0); /* full buckets: nothing kept */
	uidlimit_close(l, NULL);
	uidlimit_free(l);
	event_free(ev);
}

TEST(test_bucket_debt_survives_reconnect)
{
	struct uidlimit_cfg cfg = { 10, 0.001, 3 }; /* ~no refill */
	struct event_loop *ev = event_new();
	struct uidlimit *l = uidlimit_new(ev, &cfg);
	struct uidlimit_entry *u;
	int i, allowed = 0;

	ASSERT_EQ(uidlimit_open(l, 7, &u), 0);
	for (i = 0; i < 10; i++)
		allowed += uidlimit_allow(l, u);
	ASSERT_EQ(allowed, 3);
	uidlimit_close(l, u);
	ASSERT_EQ(uidlimit_count(l), 1); /* short bucket: kept */
	ASSERT_EQ(uidlimit_open(l, 7, &u), 0);
	ASSERT_EQ(uidlimit_allow(l, u), 0); /* still in debt */
	uidlimit_close(l, u);
	uidlimit_free(l); /* frees the kept entry too */
	event_free(ev);
}

TEST(test_zero_cap_keeps_nothing)
{
	struct uidlimit_cfg cfg = { 0, 1, 1 };
	struct event_loop *ev = event_new();
	struct uidlimit *l = uidlimit_new(ev, &cfg);
	struct uidlimit_entry *u;

	ASSERT_ERR(uidlimit_open(l, 5, &u), -EUSERS);
	ASSERT_EQ(uidlimit_count(l), 0);
	uidlimit_free(l);
	event_free(ev);
}

TEST(test_output_cap_per_uid)
{
	struct uidlimit_cfg cfg = { 100, 1000, 1000 };
	struct event_loop *ev = event_new();
	struct uidlimit *l = uidlimit_new(ev, &cfg);
	struct uidlimit_entry *a1, *a2, *a3, *b1, *b2;

	uidlimit_set_out_caps(l, 4096, 1 << 20);

	ASSERT_EQ(uidlimit_open(l, 1001, &a1), 0);
	ASSERT_EQ(uidlimit_open(l, 1001, &a2), 0);
	ASSERT_EQ(uidlimit_open(l, 1002, &b1), 0);
	uidlimit_out_add(l, a1, 3000);
	ASSERT_TRUE(uidlimit_out_ok(l, a1));
	uidlimit_out_add(l, a2, 1096); /* 4096: at the cap */
	ASSERT_TRUE(!uidlimit_out_ok(l, a1));
	ASSERT_ERR(uidlimit_open(l, 1001, &a3),
	    -ENOBUFS); /* new ones fail first */
	ASSERT_TRUE(a3 == NULL);
	ASSERT_TRUE(uidlimit_out_ok(l, b1)); /* another uid is served */
	ASSERT_EQ(uidlimit_open(l, 1002, &b2), 0);
	ASSERT_EQ(uidlimit_out_total(l), 4096);
	uidlimit_out_sub(l, a2, 1096);
	ASSERT_TRUE(uidlimit_out_ok(l, a1));
	ASSERT_EQ(uidlimit_open(l, 1001, &a3), 0);
	uidlimit_out_sub(l, a1, 3000);
	ASSERT_EQ(uidlimit_out_total(l), 0);
	uidlimit_out_sub(l, a1, 10); /* never below zero */
	ASSERT_EQ(uidlimit_out_total(l), 0);
	uidlimit_close(l, a1);
	uidlimit_close(l, a2);
	uidlimit_close(l, a3);
	uidlimit_close(l, b1);
	uidlimit_close(l, b2);
	ASSERT_EQ(uidlimit_count(l), 0);
	uidlimit_free(l);
	event_free(ev);
}

TEST(test_output_cap_total)
{
	struct uidlimit_cfg cfg = { 100, 1000, 1000 };
	struct event_loop *ev = event_new();
	struct uidlimit *l = uidlimit_new(ev, &cfg);
	struct uidlimit_entry *a, *b, *c, *c2, *a2;

	uidlimit_set_out_caps(l, 1 << 20, 10000);
	ASSERT_EQ(uidlimit_open(l, 1, &a), 0);
	ASSERT_EQ(uidlimit_open(l, 2, &b), 0);
	ASSERT_EQ(uidlimit_open(l, 3, &c), 0);
	uidlimit_out_add(l, a, 6000);
	uidlimit_out_add(l, b, 4000);	     /* 10000: the listener's cap */
	ASSERT_TRUE(!uidlimit_out_ok(l, a)); /* holders wait */
	ASSERT_TRUE(!uidlimit_out_ok(l, b));
	ASSERT_ERR(uidlimit_open(l, 1, &a2), -ENOBUFS);
	ASSERT_TRUE(
	    uidlimit_out_ok(l, c)); /* a uid holding nothing is served */
	ASSERT_EQ(uidlimit_open(l, 3, &c2), 0);
	uidlimit_out_sub(l, b, 4000);
	ASSERT_TRUE(uidlimit_out_ok(l, a));
	ASSERT_TRUE(uidlimit_out_ok(l, b));

	/* caps of 0: none */
	uidlimit_set_out_caps(l, 0, 0);
	uidlimit_out_add(l, a, 1 << 30);
	ASSERT_TRUE(uidlimit_out_ok(l, a));
	uidlimit_out_sub(l, a, (1 << 30) + 6000);
	uidlimit_close(l, a);
	uidlimit_close(l, b);
	uidlimit_close(l, c);
	uidlimit_close(l, c2);
	ASSERT_EQ(uidlimit_count(l), 0);
	uidlimit_free(l);
	event_free(ev);
}

int
main(void)
{
	RUN(test_conn_cap_per_uid);
	RUN(test_bucket_debt_survives_reconnect);
	RUN(test_zero_cap_keeps_nothing);
	RUN(test_output_cap_per_uid);
	RUN(test_output_cap_total);
	TEST_MAIN_END();
}
