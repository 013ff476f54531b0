/*
 * test_session.c - the session table's SDK endpoint secrets: minting
 * (64 hex digits, distinct), checking (exact match only, any other
 * length or value refused), expiry, the end of a session ending its
 * secret, and the per-uid cap on sdk_env secrets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
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
	    &exp), 0);
	ASSERT_EQ(exp, 1060);
	ASSERT_EQ(strlen(a), SESSION_SECRET_LEN);
	for (i = 0; i < SESSION_SECRET_LEN; i++)
		ASSERT_TRUE(strchr("0123456789abcdef", a[i]) != NULL);
	ASSERT_EQ(sessions_secret_mint(ss, "bob", 1002, NULL, 1000, 60, 0, b,
	    &exp), 0);
	ASSERT_TRUE(strcmp(a, b) != 0);
	ASSERT_EQ(sessions_secret_check(ss, a, strlen(a), 1001, &uid, &user), 0);
	ASSERT_EQ(uid, 1001);
	ASSERT_STREQ(user, "alice");
	ASSERT_EQ(sessions_secret_check(ss, b, strlen(b), 1001, &uid, &user), 0);
	ASSERT_EQ(uid, 1002);
	/* A prefix, a longer string, one changed digit: unknown. */
	ASSERT_ERR(sessions_secret_check(ss, a, 32, 1001, &uid, &user), -ENOENT);
	ASSERT_ERR(sessions_secret_check(ss, "", 0, 1001, &uid, &user), -ENOENT);
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

	ASSERT_EQ(sessions_open(ss, "alice", 1001, "sshd", NULL, "job", id), 0);
	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, id, 1000, 600, 0, s,
	    &exp), 0);
	ASSERT_EQ(sessions_secret_of(ss, id, got, &exp), 0);
	ASSERT_STREQ(got, s);
	ASSERT_EQ(exp, 1600);
	ASSERT_EQ(sessions_secret_check(ss, s, strlen(s), 1100, &uid, &user), 0);
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
	    first, &exp), 0);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, NULL, 1001 + i,
		    600, 3, s, &exp), 0);
	ASSERT_EQ(sessions_secret_check(ss, first, strlen(first), 1010, &uid,
	    &user), 0);
	/* A fourth drops the oldest; other uids are not affected. */
	ASSERT_EQ(sessions_secret_mint(ss, "bob", 1002, NULL, 1005, 600, 3, s,
	    &exp), 0);
	ASSERT_EQ(sessions_secret_mint(ss, "alice", 1001, NULL, 1006, 600, 3, s,
	    &exp), 0);
	ASSERT_ERR(sessions_secret_check(ss, first, strlen(first), 1010, &uid,
	    &user), -ENOENT);
	ASSERT_EQ(sessions_secret_count(ss), 4);
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
	TEST_MAIN_END();
}
