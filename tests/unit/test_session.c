/*
 * test_session.c - the session table and the SDK endpoint secrets:
 * minting (64 hex digits, distinct), checking (exact match only, any
 * other length or value refused), expiry, the end of a session ending
 * its secret, the per-uid cap on sdk_env secrets; and how sessions end
 * without a session_close (issue 11, item 9): dropped opens, the idle
 * bound (use of the secret counts), and a checked snapshot ending the
 * sessions of a uid with no live process (after the grace) and every
 * session and secret of a binding whose user no longer names its uid.
 * Time is passed in; nothing sleeps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "session.h"
#include "test.h"

TEST(test_mint_and_check)
{
	struct sessions *ss = sessions_new();
	char a[SESSION_SECRET_LEN + 1], b[SESSION_SECRET_LEN + 1];
	const char *user;
	int64_t exp;
	uid_t uid;
	size_t i;

	ASSERT_TRUE(ss != NULL);
	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, NULL, 1000, 60, 0, a,
		      &exp),
	    0);
	ASSERT_EQ(exp, 1060);
	ASSERT_EQ(strlen(a), SESSION_SECRET_LEN);
	for (i = 0; i < SESSION_SECRET_LEN; i++)
		ASSERT_TRUE(strchr("0123456789abcdef", a[i]) != NULL);
	ASSERT_EQ(sessions_secret_mint(ss, "bob", 1002, NULL, 1000, 60, 0, b,
		      &exp),
	    0);
	ASSERT_TRUE(strcmp(a, b) != 0);
	ASSERT_EQ(sessions_secret_check(ss, a, strlen(a), 1001, &uid, &user),
	    0);
	ASSERT_EQ(uid, 1001);
	ASSERT_STREQ(user, "alice");
	ASSERT_EQ(sessions_secret_check(ss, b, strlen(b), 1001, &uid, &user),
	    0);
	ASSERT_EQ(uid, 1002);
	/* A prefix, a longer string, one changed digit: unknown. */
	ASSERT_ERR(sessions_secret_check(ss, a, 32, 1001, &uid, &user),
	    -ENOENT);
	ASSERT_ERR(sessions_secret_check(ss, "", 0, 1001, &uid, &user),
	    -ENOENT);
	a[10] = a[10] == '0' ? '1' : '0';
	ASSERT_ERR(sessions_secret_check(ss, a, strlen(a), 1001, &uid, &user),
	    -ENOENT);
	ASSERT_EQ(uid, (uid_t)-1);
	ASSERT_TRUE(user == NULL);
	/* Expired: refused once as expired, then gone. */
	ASSERT_ERR(sessions_secret_check(ss, b, strlen(b), 1060, &uid, &user),
	    -EKEYEXPIRED);
	ASSERT_ERR(sessions_secret_check(ss, b, strlen(b), 1060, &uid, &user),
	    -ENOENT);
	sessions_free(ss);
}

TEST(test_session_close_ends_secret)
{
	struct sessions *ss = sessions_new();
	char id[SESSION_ID_LEN + 1], s[SESSION_SECRET_LEN + 1];
	char got[SESSION_SECRET_LEN + 1];
	const char *user;
	int64_t exp;
	uid_t uid;

	ASSERT_EQ(sessions_open(ss, "alice", 1001, "sshd", NULL, "job", 1000,
		      id),
	    0);
	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, id, 1000, 600, 0, s,
		      &exp),
	    0);
	ASSERT_EQ(sessions_secret_of(ss, id, got, &exp), 0);
	ASSERT_STREQ(got, s);
	ASSERT_EQ(exp, 1600);
	ASSERT_EQ(sessions_secret_check(ss, s, strlen(s), 1100, &uid, &user),
	    0);
	ASSERT_EQ(sessions_secret_count(ss), 1);
	ASSERT_EQ(sessions_close(ss, "alice", id), 0);
	ASSERT_EQ(sessions_secret_count(ss), 0);
	ASSERT_ERR(sessions_secret_check(ss, s, strlen(s), 1100, &uid, &user),
	    -ENOENT);
	ASSERT_ERR(sessions_secret_of(ss, id, got, &exp), -ENOENT);
	sessions_free(ss);
}

TEST(test_per_uid_cap)
{
	struct sessions *ss = sessions_new();
	char first[SESSION_SECRET_LEN + 1], s[SESSION_SECRET_LEN + 1];
	const char *user;
	int64_t exp;
	uid_t uid;
	int i;

	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, NULL, 1000, 600, 3,
		      first, &exp),
	    0);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, NULL,
			      1001 + i, 600, 3, s, &exp),
		    0);
	ASSERT_EQ(sessions_secret_check(ss, first, strlen(first), 1010, &uid,
		      &user),
	    0);
	/* A fourth drops the oldest; other uids are not affected. */
	ASSERT_EQ(sessions_secret_mint(ss, "bob", 1002, NULL, 1005, 600, 3, s,
		      &exp),
	    0);
	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, NULL, 1006, 600, 3, s,
		      &exp),
	    0);
	ASSERT_ERR(sessions_secret_check(ss, first, strlen(first), 1010, &uid,
		       &user),
	    -ENOENT);
	ASSERT_EQ(sessions_secret_count(ss), 4);
	sessions_free(ss);
}

/* What the end hook heard. */
static struct {
	int n;
	char user[32];
	char reason[32];
} ended;

static void
end_hook(void *arg, const char *user, uid_t uid, const char *service,
    const char *reason)
{
	(void)arg;
	(void)uid;
	(void)service;
	ended.n++;
	snprintf(ended.user, sizeof(ended.user), "%s", user);
	snprintf(ended.reason, sizeof(ended.reason), "%s", reason);
}

/* A session with its secret, opened at t. */
static void
open_with_secret(struct sessions *ss, const char *user, uid_t uid, int64_t t,
    char id[SESSION_ID_LEN + 1], char sec[SESSION_SECRET_LEN + 1])
{
	int64_t exp;

	if (sessions_open(ss, user, uid, "sshd", "pts/0", NULL, t, id) < 0 ||
	    sessions_secret_mint(ss, "ignored", 0, id, t, 100000, 0, sec,
		&exp) < 0)
		abort();
}

TEST(test_drop_ends_session_and_secret)
{
	struct sessions *ss = sessions_new();
	char id[SESSION_ID_LEN + 1], s[SESSION_SECRET_LEN + 1];
	const char *user;
	uid_t uid;

	open_with_secret(ss, "alice", 1001, 1000, id, s);
	/* A session's secret takes the session's binding, not the caller's. */
	ASSERT_EQ(sessions_secret_check(ss, s, strlen(s), 1001, &uid, &user),
	    0);
	ASSERT_EQ(uid, 1001);
	ASSERT_STREQ(user, "alice");
	ASSERT_EQ(sessions_drop(ss, id), 0);
	ASSERT_EQ(sessions_count(ss), 0);
	ASSERT_EQ(sessions_secret_count(ss), 0);
	ASSERT_EQ(sessions_counters(ss)->dropped, 1);
	ASSERT_ERR(sessions_secret_check(ss, s, strlen(s), 1001, &uid, &user),
	    -ENOENT);
	ASSERT_ERR(sessions_drop(ss, id), -ENOENT);
	/* A secret for a session that does not exist is refused. */
	ASSERT_ERR(sessions_secret_mint(ss, "alice", 1001, id, 1000, 60, 0, s,
		       &(int64_t){ 0 }),
	    -ENOENT);
	ASSERT_EQ(sessions_secret_count(ss), 0);
	sessions_free(ss);
}

TEST(test_idle_bound_and_use)
{
	struct sessions *ss = sessions_new();
	char a[SESSION_ID_LEN + 1], b[SESSION_ID_LEN + 1];
	char sa[SESSION_SECRET_LEN + 1], sb[SESSION_SECRET_LEN + 1];
	const char *user;
	uid_t uid;

	open_with_secret(ss, "alice", 1001, 1000, a, sa);
	open_with_secret(ss, "bob", 1002, 1000, b, sb);
	memset(&ended, 0, sizeof(ended));
	/* alice uses her secret at 1500: her session is idle from then on. */
	ASSERT_EQ(sessions_secret_check(ss, sa, strlen(sa), 1500, &uid, &user),
	    0);
	ASSERT_EQ(sessions_expire(ss, 1599, 600, end_hook, NULL), 0);
	ASSERT_EQ(sessions_expire(ss, 1600, 600, end_hook, NULL), 1);
	ASSERT_EQ(ended.n, 1);
	ASSERT_STREQ(ended.user, "bob");
	ASSERT_STREQ(ended.reason, "idle");
	ASSERT_ERR(sessions_secret_check(ss, sb, strlen(sb), 1600, &uid, &user),
	    -ENOENT);
	ASSERT_EQ(sessions_count(ss), 1);
	ASSERT_EQ(sessions_expire(ss, 2100, 600, end_hook, NULL), 1);
	ASSERT_EQ(sessions_count(ss), 0);
	ASSERT_EQ(sessions_secret_count(ss), 0);
	ASSERT_EQ(sessions_counters(ss)->ended_idle, 2);
	/* idle 0: no bound; expired secrets still go. */
	open_with_secret(ss, "carol", 1003, 1000, a, sa);
	ASSERT_EQ(sessions_secret_mint(ss, "dave", 1004, NULL, 1000, 60, 0, sb,
		      &(int64_t){ 0 }),
	    0);
	ASSERT_EQ(sessions_expire(ss, 1000000, 0, NULL, NULL), 0);
	ASSERT_EQ(sessions_count(ss), 1);
	ASSERT_EQ(sessions_secret_count(ss), 0); /* both past their TTL */
	sessions_free(ss);
}

TEST(test_snapshot_bindings)
{
	struct sessions *ss = sessions_new();
	struct sessions_snapshot snap;
	char id[SESSION_ID_LEN + 1], s[SESSION_SECRET_LEN + 1];
	int64_t exp;

	ASSERT_EQ(sessions_snapshot(ss, 1000, &snap), 0);
	ASSERT_EQ(snap.n, 0);
	sessions_snapshot_clear(&snap);
	open_with_secret(ss, "bob", 1002, 1000, id, s);
	open_with_secret(ss, "alice", 1001, 1000, id, s);
	open_with_secret(ss, "alice", 1001, 1001, id, s);
	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, NULL, 1000, 60, 0, s,
		      &exp),
	    0);
	ASSERT_EQ(sessions_secret_mint(ss, "carol", 1003, NULL, 1000, 60, 0, s,
		      &exp),
	    0);
	ASSERT_EQ(sessions_snapshot(ss, 1005, &snap), 0);
	ASSERT_EQ(snap.taken, 1005);
	ASSERT_EQ(snap.n, 3);
	ASSERT_STREQ(snap.b[0].user, "alice");
	ASSERT_EQ(snap.b[0].uid, 1001);
	ASSERT_EQ(snap.b[0].has_session, 1);
	ASSERT_STREQ(snap.b[1].user, "bob");
	ASSERT_EQ(snap.b[1].has_session, 1);
	ASSERT_STREQ(snap.b[2].user, "carol");
	ASSERT_EQ(snap.b[2].has_session, 0);
	ASSERT_EQ(snap.b[0].account, -1);
	ASSERT_EQ(snap.b[0].alive, -1);
	/* Unknown answers end nothing. */
	ASSERT_EQ(sessions_apply(ss, &snap, 0, NULL, NULL), 0);
	ASSERT_EQ(sessions_count(ss), 3);
	ASSERT_EQ(sessions_secret_count(ss), 5);
	sessions_snapshot_clear(&snap);
	sessions_free(ss);
}

/*
 * alice's uid 1500 was reused: her account was deleted and another
 * created with the same uid. Her session and her sdk_env secret end,
 * and her secret presented from uid 1500 is now unknown.
 */
TEST(test_apply_account_gone)
{
	struct sessions *ss = sessions_new();
	struct sessions_snapshot snap;
	char id[SESSION_ID_LEN + 1], s1[SESSION_SECRET_LEN + 1];
	char s2[SESSION_SECRET_LEN + 1], s3[SESSION_SECRET_LEN + 1];
	char late[SESSION_ID_LEN + 1];
	const char *user;
	int64_t exp;
	uid_t uid;

	open_with_secret(ss, "alice", 1500, 1000, id, s1);
	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1500, NULL, 1000, 6000, 0,
		      s2, &exp),
	    0);
	open_with_secret(ss, "bob", 1501, 1000, late, s3);
	ASSERT_EQ(sessions_snapshot(ss, 1010, &snap), 0);
	ASSERT_EQ(snap.n, 2);
	snap.b[0].account = 0; /* alice no longer names 1500 */
	snap.b[0].alive = 1;   /* the new account's processes run as 1500 */
	snap.b[1].account = 1;
	snap.b[1].alive = 1;
	/* Bound after the snapshot: judged by the next check, not this one. */
	ASSERT_EQ(sessions_open(ss, "alice", 1500, "sshd", NULL, NULL, 1011,
		      late),
	    0);
	memset(&ended, 0, sizeof(ended));
	ASSERT_EQ(sessions_apply(ss, &snap, 60, end_hook, NULL), 1);
	ASSERT_STREQ(ended.reason, "account_gone");
	ASSERT_STREQ(ended.user, "alice");
	ASSERT_ERR(sessions_secret_check(ss, s1, strlen(s1), 1012, &uid, &user),
	    -ENOENT);
	ASSERT_ERR(sessions_secret_check(ss, s2, strlen(s2), 1012, &uid, &user),
	    -ENOENT);
	ASSERT_EQ(sessions_secret_check(ss, s3, strlen(s3), 1012, &uid, &user),
	    0);
	ASSERT_EQ(sessions_count(ss), 2); /* bob's, and the late one */
	ASSERT_EQ(sessions_counters(ss)->ended_account, 1);
	ASSERT_EQ(sessions_counters(ss)->secrets_ended_account, 1);
	sessions_snapshot_clear(&snap);
	sessions_free(ss);
}

TEST(test_apply_no_process_after_grace)
{
	struct sessions *ss = sessions_new();
	struct sessions_snapshot snap;
	char a[SESSION_ID_LEN + 1], b[SESSION_ID_LEN + 1];
	char sa[SESSION_SECRET_LEN + 1], sb[SESSION_SECRET_LEN + 1];
	char se[SESSION_SECRET_LEN + 1];
	const char *user;
	int64_t exp;
	uid_t uid;

	open_with_secret(ss, "alice", 1001, 1000, a, sa);
	open_with_secret(ss, "bob", 1002, 1000, b, sb);
	/* An sdk_env secret does not depend on processes. */
	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, NULL, 1000, 6000, 0,
		      se, &exp),
	    0);
	/* Within the grace: a new session's processes may not run yet. */
	ASSERT_EQ(sessions_snapshot(ss, 1005, &snap), 0);
	snap.b[0].account = snap.b[1].account = 1;
	snap.b[0].alive = 0;
	snap.b[1].alive = 1;
	ASSERT_EQ(sessions_apply(ss, &snap, 10, NULL, NULL), 0);
	sessions_snapshot_clear(&snap);
	ASSERT_EQ(sessions_snapshot(ss, 1010, &snap), 0);
	snap.b[0].account = snap.b[1].account = 1;
	snap.b[0].alive = 0;
	snap.b[1].alive = -1; /* the scan failed: unknown */
	memset(&ended, 0, sizeof(ended));
	ASSERT_EQ(sessions_apply(ss, &snap, 10, end_hook, NULL), 1);
	ASSERT_STREQ(ended.reason, "no_process");
	ASSERT_STREQ(ended.user, "alice");
	ASSERT_ERR(sessions_secret_check(ss, sa, strlen(sa), 1011, &uid, &user),
	    -ENOENT);
	ASSERT_EQ(sessions_secret_check(ss, se, strlen(se), 1011, &uid, &user),
	    0);
	ASSERT_EQ(sessions_secret_check(ss, sb, strlen(sb), 1011, &uid, &user),
	    0);
	ASSERT_EQ(sessions_counters(ss)->ended_no_process, 1);
	sessions_snapshot_clear(&snap);
	sessions_free(ss);
}

/*
 * Issue 14: sessions bound to cgroups. The innermost bound cgroup that
 * holds a path wins; unbound sessions' kinds by uid; a bound session
 * does not end for lack of a process of its uid; its cgroup ends it.
 */
TEST(test_cgroup_bindings)
{
	struct sessions *ss = sessions_new();
	struct sessions_snapshot snap;
	struct sessions_info in;
	char a[SESSION_ID_LEN + 1], b[SESSION_ID_LEN + 1];
	char c[SESSION_ID_LEN + 1], d[SESSION_ID_LEN + 1];
	const char *ids[4];
	int kinds[4];

	ASSERT_EQ(sessions_open(ss, "alice", 1001, "sshd", NULL, "workspace",
		      1000, a),
	    0);
	ASSERT_EQ(sessions_open(ss, "bob", 1002, "bind", NULL, "app", 1000, b),
	    0);
	ASSERT_EQ(sessions_open(ss, "alice", 1001, "cron", NULL, "app", 1000,
		      c),
	    0);
	ASSERT_EQ(sessions_open(ss, "alice", 1001, "cron", NULL, "job", 1000,
		      d),
	    0);
	ASSERT_EQ(sessions_set_binding(ss, a, 1, "/pods/p1", NULL), 0);
	ASSERT_EQ(sessions_set_binding(ss, b, 4, "/pods/p1/c2", NULL), 0);
	ASSERT_EQ(sessions_set_binding(ss, c, 4, NULL, "it is the root cgroup"),
	    0);
	ASSERT_EQ(sessions_set_binding(ss, d, 2, NULL, "no cgroup"), 0);
	ASSERT_ERR(sessions_set_binding(ss, "nope", 2, NULL, NULL), -ENOENT);
	ASSERT_EQ(sessions_bound_find(ss, "/pods/p1/c1/x", &in), 0);
	ASSERT_STREQ(in.user, "alice");
	ASSERT_EQ(sessions_bound_find(ss, "/pods/p1/c2", &in), 0);
	ASSERT_STREQ(in.user, "bob"); /* innermost */
	ASSERT_EQ(in.kind, 4);
	ASSERT_ERR(sessions_bound_find(ss, "/pods/p10", &in), -ENOENT);
	ASSERT_ERR(sessions_bound_find(ss, "/", &in), -ENOENT);
	ASSERT_EQ(sessions_unbound_kinds(ss, 1001, kinds, 4, ids), 2);
	ASSERT_TRUE((kinds[0] == 4 && kinds[1] == 2) ||
	    (kinds[0] == 2 && kinds[1] == 4));
	ASSERT_EQ(sessions_unbound_kinds(ss, 1002, kinds, 4, ids), 0);
	ASSERT_EQ(sessions_info(ss, c, &in), 0);
	ASSERT_STREQ(in.why, "it is the root cgroup");
	ASSERT_EQ(sessions_list_bound(ss, NULL, NULL), 2);
	/* No process of alice's or bob's uid: only the unbound ones end. */
	ASSERT_EQ(sessions_snapshot(ss, 2000, &snap), 0);
	for (size_t i = 0; i < snap.n; i++) {
		snap.b[i].account = 1;
		snap.b[i].alive = 0;
	}
	ASSERT_EQ(sessions_apply(ss, &snap, 10, NULL, NULL), 2);
	sessions_snapshot_clear(&snap);
	ASSERT_EQ(sessions_count(ss), 2);
	/* The cgroup ends its session. */
	/* An admin bind (service "bind") outlives its cgroup emptying. */
	ASSERT_EQ(sessions_end_cgroup(ss, "/pods/p1/c2", "bind", "cgroup_empty",
		      NULL, NULL),
	    0);
	ASSERT_EQ(sessions_end_cgroup(ss, "/pods/p1/c2", NULL, "cgroup_removed",
		      NULL, NULL),
	    1);
	ASSERT_EQ(sessions_bound_find(ss, "/pods/p1/c2", &in), 0);
	ASSERT_STREQ(in.user, "alice"); /* the outer one now */
	ASSERT_EQ(sessions_counters(ss)->ended_cgroup, 1);
	sessions_free(ss);
}

static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * The loop's share of a check with 10,000 sessions of 2,000 users
 * (each with a secret) and 2,000 sdk_env secrets: expire, snapshot and
 * apply. Printed, not asserted (a shared machine); asserts the outcome.
 */
TEST(test_loop_share_at_scale)
{
	struct sessions *ss = sessions_new();
	struct sessions_snapshot snap;
	char id[SESSION_ID_LEN + 1], s[SESSION_SECRET_LEN + 1], user[32];
	struct timespec t0;
	double t_exp, t_snap, t_apply;
	int64_t exp;
	size_t i, n;

	for (i = 0; i < 10000; i++) {
		snprintf(user, sizeof(user), "user%zu", i % 2000);
		open_with_secret(ss, user, (uid_t)(10000 + i % 2000), 1000, id,
		    s);
	}
	for (i = 0; i < 2000; i++) {
		snprintf(user, sizeof(user), "user%zu", i);
		ASSERT_EQ(sessions_secret_mint(ss, user, (uid_t)(10000 + i),
			      NULL, 1000, 6000, 0, s, &exp),
		    0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(sessions_expire(ss, 2000, 86400, NULL, NULL), 0);
	t_exp = ms_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(sessions_snapshot(ss, 2000, &snap), 0);
	t_snap = ms_since(&t0);
	ASSERT_EQ(snap.n, 2000);
	for (i = 0; i < snap.n; i++) {
		snap.b[i].account = 1;
		snap.b[i].alive = i % 10 != 0; /* 200 users have no process */
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = sessions_apply(ss, &snap, 60, NULL, NULL);
	t_apply = ms_since(&t0);
	ASSERT_EQ(n, 1000); /* 5 sessions each */
	ASSERT_EQ(sessions_count(ss), 9000);
	ASSERT_EQ(sessions_secret_count(ss), 11000);
	printf(
	    "  10000 sessions, 12000 secrets, 2000 bindings: expire %.2f ms, "
	    "snapshot %.2f ms, apply %.2f ms (loop thread)\n",
	    t_exp, t_snap, t_apply);
	sessions_snapshot_clear(&snap);
	sessions_free(ss);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_mint_and_check);
	RUN(test_session_close_ends_secret);
	RUN(test_per_uid_cap);
	RUN(test_drop_ends_session_and_secret);
	RUN(test_idle_bound_and_use);
	RUN(test_snapshot_bindings);
	RUN(test_apply_account_gone);
	RUN(test_apply_no_process_after_grace);
	RUN(test_loop_share_at_scale);
	RUN(test_cgroup_bindings);
	TEST_MAIN_END();
}
