/*
 * test_userdb.c - NSS lookups off the loop: answers by uid, name and
 * group; "no such user" is answered and never cached; the TTL cache;
 * lookups of one key in flight share one call; a cancelled request's
 * callback never runs; userdb_free with requests still queued.
 * Uses the machine's own passwd and group files (root exists).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "userdb.h"
#include "test.h"

#define NO_SUCH_UID ((uid_t)3999999999u)

struct answer {
	int calls;
	int result;
	uid_t uid;
	gid_t gid;
	char name[USERDB_NAME_MAX];
};

static struct event_loop *ev;
static int outstanding;

static void
on_answer(void *arg, int result, uid_t uid, gid_t gid, const char *name)
{
	struct answer *a = arg;

	a->calls++;
	a->result = result;
	a->uid = uid;
	a->gid = gid;
	if (name != NULL)
		memcpy(a->name, name, strlen(name) + 1);
	if (--outstanding == 0)
		event_stop(ev);
}

static void
deadline_cb(struct event_loop *e, void *arg)
{
	(void)arg;
	event_stop(e); /* a hang fails the test instead of blocking CI */
}

/* Run the loop until every expected callback ran (or 10 s passed). */
static void
run(int n)
{
	struct event_timer *t;

	outstanding = n;
	t = event_timer_in(ev, 10000, deadline_cb, NULL);
	(void)event_run(ev);
	event_timer_cancel(ev, &t);
}

TEST(test_by_uid_name_group)
{
	struct userdb *db = NULL;
	struct answer a = { 0 }, b = { 0 }, g = { 0 };
	struct userdb_stats st;
	char buf[64];

	ASSERT_EQ(userdb_new(ev, 2, 60000, 100, &db), 0);
	ASSERT_ERR(userdb_cached_name(db, 0, buf, sizeof(buf)), -ENOENT);
	ASSERT_TRUE(userdb_lookup_uid(db, 0, on_answer, &a) != NULL);
	ASSERT_TRUE(userdb_lookup_name(db, "root", on_answer, &b) != NULL);
	ASSERT_TRUE(userdb_lookup_group(db, "root", on_answer, &g) != NULL);
	ASSERT_EQ(a.calls, 0); /* never answered from inside the call */
	run(3);
	ASSERT_EQ(a.calls, 1);
	ASSERT_EQ(a.result, 0);
	ASSERT_STREQ(a.name, "root");
	ASSERT_EQ(b.result, 0);
	ASSERT_EQ(b.uid, 0);
	ASSERT_EQ(g.result, 0);
	ASSERT_EQ(g.gid, 0);
	ASSERT_STREQ(g.name, "root");
	/* Now cached. */
	ASSERT_EQ(userdb_cached_name(db, 0, buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "root");
	ASSERT_ERR(userdb_cached_name(db, 0, buf, 3), -ENAMETOOLONG);
	userdb_stats(db, &st);
	ASSERT_EQ(st.lookups, 3);
	ASSERT_EQ(st.cached, 1);
	ASSERT_EQ(st.in_flight, 0);
	userdb_free(db);
}

TEST(test_no_such_user_not_cached)
{
	struct userdb *db = NULL;
	struct answer a = { 0 }, b = { 0 };
	char buf[64];

	ASSERT_EQ(userdb_new(ev, 1, 60000, 100, &db), 0);
	ASSERT_TRUE(userdb_lookup_uid(db, NO_SUCH_UID, on_answer, &a) != NULL);
	ASSERT_TRUE(
	    userdb_lookup_name(db, "no-such-user-xq", on_answer, &b) != NULL);
	run(2);
	ASSERT_ERR(a.result, -ENOENT);
	ASSERT_ERR(b.result, -ENOENT);
	ASSERT_ERR(userdb_cached_name(db, NO_SUCH_UID, buf, sizeof(buf)),
	    -ENOENT);
	/* A name too long for any passwd entry is refused up front. */
	memset(buf, 'x', sizeof(buf));
	{
		char longname[USERDB_NAME_MAX + 8];

		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		ASSERT_TRUE(
		    userdb_lookup_name(db, longname, on_answer, &b) == NULL);
	}
	userdb_free(db);
}

TEST(test_ttl_expires)
{
	struct userdb *db = NULL;
	struct answer a = { 0 };
	char buf[64];

	ASSERT_EQ(userdb_new(ev, 1, 0, 100, &db), 0); /* TTL 0 */
	ASSERT_TRUE(userdb_lookup_uid(db, 0, on_answer, &a) != NULL);
	run(1);
	ASSERT_EQ(a.result, 0);
	ASSERT_ERR(userdb_cached_name(db, 0, buf, sizeof(buf)), -ENOENT);
	userdb_free(db);
	/* A TTL above the cap is capped, not refused. */
	ASSERT_EQ(userdb_new(ev, 1, 3600000, 1, &db), 0);
	userdb_free(db);
	ASSERT_ERR(userdb_new(ev, 0, 1000, 1, &db), -EINVAL);
}

TEST(test_coalesced_and_cancelled)
{
	struct userdb *db = NULL;
	struct answer a[10], gone = { 0 };
	struct userdb_req *r;
	struct userdb_stats st;
	int i;

	memset(a, 0, sizeof(a));
	ASSERT_EQ(userdb_new(ev, 1, 60000, 100, &db), 0);
	for (i = 0; i < 10; i++)
		ASSERT_TRUE(userdb_lookup_uid(db, 0, on_answer, &a[i]) != NULL);
	r = userdb_lookup_uid(db, 0, on_answer, &gone);
	ASSERT_TRUE(r != NULL);
	userdb_cancel(db, r);
	userdb_cancel(db, NULL);
	run(10);
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(a[i].calls, 1);
		ASSERT_STREQ(a[i].name, "root");
	}
	ASSERT_EQ(gone.calls, 0);
	userdb_stats(db, &st);
	ASSERT_EQ(st.lookups, 1);
	ASSERT_EQ(st.coalesced, 10);
	userdb_free(db);
}

TEST(test_free_with_requests_queued)
{
	struct userdb *db = NULL;
	struct answer a[50];
	int i;

	memset(a, 0, sizeof(a));
	ASSERT_EQ(userdb_new(ev, 2, 60000, 100, &db), 0);
	for (i = 0; i < 50; i++)
		ASSERT_TRUE(
		    userdb_lookup_uid(db, (uid_t)i, on_answer, &a[i]) != NULL);
	userdb_free(db); /* no callback runs, nothing leaks (ASan) */
	for (i = 0; i < 50; i++)
		ASSERT_EQ(a[i].calls, 0);
}

TEST(test_cache_bounded)
{
	struct userdb *db = NULL;
	struct answer a = { 0 }, b = { 0 };
	struct userdb_stats st;
	char buf[64];

	ASSERT_EQ(userdb_new(ev, 1, 60000, 1, &db), 0);
	ASSERT_TRUE(userdb_lookup_uid(db, 0, on_answer, &a) != NULL);
	run(1);
	ASSERT_TRUE(userdb_lookup_name(db, "daemon", on_answer, &b) != NULL);
	run(1);
	userdb_stats(db, &st);
	ASSERT_EQ(st.cached, 1); /* full of a live entry: not cached */
	ASSERT_EQ(userdb_cached_name(db, 0, buf, sizeof(buf)), 0);
	userdb_free(db);
}

int
main(void)
{
	ev = event_new();
	if (ev == NULL)
		return 1;
	RUN(test_by_uid_name_group);
	RUN(test_no_such_user_not_cached);
	RUN(test_ttl_expires);
	RUN(test_coalesced_and_cancelled);
	RUN(test_free_with_requests_queued);
	RUN(test_cache_bounded);
	event_free(ev);
	TEST_MAIN_END();
}
