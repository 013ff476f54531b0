/*
 * test_flowref.c - flowref.c: a cluster code flow's state and link id
 * carry the user sealed. Round trip; a link does not open as a state;
 * another key ring, a flipped byte, a non-base64url byte, a wrong length
 * and another tenant are refused; the user is not readable in the ref;
 * two refs of one user differ (a fresh nonce); length classes of 16
 * bytes; the longest name fits the callback's 256-char state and the
 * link id's bound; a name too long is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "flowref.h"
#include "seal.h"
#include "test.h"

TEST(test_round_trip)
{
	struct seal *s = fixture_ring(7, 0x11);
	char a[FLOWREF_MAX + 1], b[FLOWREF_MAX + 1];
	char user[FLOWREF_USER_MAX + 1];

	ASSERT_TRUE(s != NULL);
	ASSERT_EQ(flowref_make(s, "t1", FLOWREF_STATE, "entra_alice", a,
		      sizeof(a)),
	    0);
	ASSERT_EQ(strlen(a), FLOWREF_MIN); /* 11 bytes: one 16-byte class */
	ASSERT_TRUE(strstr(a, "alice") == NULL);
	ASSERT_EQ(strspn(a,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789-_"),
	    strlen(a));
	ASSERT_EQ(flowref_open(s, "t1", FLOWREF_STATE, a, user, sizeof(user)),
	    0);
	ASSERT_STREQ(user, "entra_alice");
	/* A fresh nonce every time: unguessable, never the same twice. */
	ASSERT_EQ(flowref_make(s, "t1", FLOWREF_STATE, "entra_alice", b,
		      sizeof(b)),
	    0);
	ASSERT_TRUE(strcmp(a, b) != 0);
	/* A link is not a state, nor another tenant's. */
	ASSERT_ERR(flowref_open(s, "t1", FLOWREF_LINK, a, user, sizeof(user)),
	    -ENOENT);
	ASSERT_ERR(flowref_open(s, "t2", FLOWREF_STATE, a, user, sizeof(user)),
	    -ENOENT);
	ASSERT_EQ(flowref_make(s, "t1", FLOWREF_LINK, "bob", b, sizeof(b)), 0);
	ASSERT_EQ(flowref_open(s, "t1", FLOWREF_LINK, b, user, sizeof(user)),
	    0);
	ASSERT_STREQ(user, "bob");
	seal_free(s);
}

TEST(test_refused)
{
	struct seal *s = fixture_ring(7, 0x11), *other = fixture_ring(7, 0x22);
	char a[FLOWREF_MAX + 1], bad[FLOWREF_MAX + 2];
	char user[FLOWREF_USER_MAX + 1];

	ASSERT_TRUE(s != NULL && other != NULL);
	ASSERT_EQ(flowref_make(s, "t1", FLOWREF_STATE, "carol", a, sizeof(a)),
	    0);
	ASSERT_ERR(flowref_open(other, "t1", FLOWREF_STATE, a, user,
		       sizeof(user)),
	    -ENOENT);
	snprintf(bad, sizeof(bad), "%s", a);
	bad[40] = bad[40] == 'A' ? 'B' : 'A'; /* tampered */
	ASSERT_ERR(flowref_open(s, "t1", FLOWREF_STATE, bad, user,
		       sizeof(user)),
	    -ENOENT);
	snprintf(bad, sizeof(bad), "%s", a);
	bad[10] = '+'; /* not base64url */
	ASSERT_ERR(flowref_open(s, "t1", FLOWREF_STATE, bad, user,
		       sizeof(user)),
	    -ENOENT);
	snprintf(bad, sizeof(bad), "%sA", a); /* one more character */
	ASSERT_ERR(flowref_open(s, "t1", FLOWREF_STATE, bad, user,
		       sizeof(user)),
	    -ENOENT);
	ASSERT_ERR(flowref_open(s, "t1", FLOWREF_STATE,
		       "AbCdEfGhIjKlMnOpQrSt-_", user, sizeof(user)),
	    -ENOENT); /* a single node's link id */
	ASSERT_ERR(flowref_open(s, "t1", FLOWREF_STATE, "", user, sizeof(user)),
	    -ENOENT);
	seal_free(other);
	seal_free(s);
}

TEST(test_lengths)
{
	struct seal *s = fixture_ring(3, 0x33);
	char a[FLOWREF_MAX + 1], name[FLOWREF_USER_MAX + 2];
	char user[FLOWREF_USER_MAX + 1];

	ASSERT_TRUE(s != NULL);
	memset(name, 'x', sizeof(name));
	name[16] = '\0';
	ASSERT_EQ(flowref_make(s, "t", FLOWREF_LINK, name, a, sizeof(a)), 0);
	ASSERT_EQ(strlen(a), FLOWREF_MIN); /* 16 bytes: still one class */
	name[17] = '\0';
	name[16] = 'x';
	ASSERT_EQ(flowref_make(s, "t", FLOWREF_LINK, name, a, sizeof(a)), 0);
	ASSERT_EQ(strlen(a), 107u); /* 17 bytes: the next class */
	memset(name, 'y', sizeof(name));
	name[FLOWREF_USER_MAX] = '\0';
	ASSERT_EQ(flowref_make(s, "t", FLOWREF_STATE, name, a, sizeof(a)), 0);
	ASSERT_TRUE(strlen(a) <= FLOWREF_MAX && strlen(a) <= 256);
	ASSERT_EQ(flowref_open(s, "t", FLOWREF_STATE, a, user, sizeof(user)),
	    0);
	ASSERT_STREQ(user, name);
	name[FLOWREF_USER_MAX] = 'y';
	name[FLOWREF_USER_MAX + 1] = '\0';
	ASSERT_ERR(flowref_make(s, "t", FLOWREF_STATE, name, a, sizeof(a)),
	    -ENAMETOOLONG);
	ASSERT_ERR(flowref_make(s, "t", FLOWREF_STATE, "", a, sizeof(a)),
	    -ENAMETOOLONG);
	ASSERT_ERR(flowref_make(s, "t", FLOWREF_STATE, "bob", a, 20),
	    -ENAMETOOLONG);
	seal_free(s);
}

int
main(void)
{
	RUN(test_round_trip);
	RUN(test_refused);
	RUN(test_lengths);
	TEST_MAIN_END();
}
