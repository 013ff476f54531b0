/*
 * test_callback_parse.c - the sign-in callback's request target parser
 * (credd/callback_parse.c): both pages accepted (a login link id of the
 * documented length, a callback with a code or an error), %-decoding,
 * unknown keys ignored, each refusal with its status (duplicate, over
 * long, malformed escapes, NUL, wrong id length or alphabet, wrong
 * method, both code and error, no state, a path that is nearly right),
 * HEAD, and the code held only in its struct secret. ([callback]
 * listen itself: unit.test_config test_callback.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

#include "callback_parse.h"
#include "test.h"

#define ID "AbCdEfGhIjKlMnOpQrSt-_"

/* parse and return the errno; t is the caller's to clear. */
static int
p(const char *m, const char *target, struct callback_target *t)
{
	return callback_parse(m, target, t);
}

TEST(test_login)
{
	struct callback_target t;

	ASSERT_EQ(strlen(ID), CALLBACK_ID_LEN);
	ASSERT_EQ(p("GET", "/entra/login/" ID, &t), 0);
	ASSERT_EQ(t.kind, CALLBACK_LOGIN);
	ASSERT_STREQ(t.id, ID);
	ASSERT_EQ(t.is_head, 0);
	callback_target_clear(&t);
	/* A query after the id is ignored. */
	ASSERT_EQ(p("GET", "/entra/login/" ID "?utm=x", &t), 0);
	ASSERT_STREQ(t.id, ID);
	callback_target_clear(&t);
	ASSERT_EQ(p("HEAD", "/entra/login/" ID, &t), 0);
	ASSERT_EQ(t.is_head, 1);
	callback_target_clear(&t);
}

TEST(test_login_refused)
{
	struct callback_target t;

	/* One short, one long, a bad character, a trailing slash. */
	ASSERT_ERR(p("GET", "/entra/login/AbCdEfGhIjKlMnOpQrSt-", &t), -ENOENT);
	ASSERT_EQ(t.status, 404);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", "/entra/login/" ID "x", &t), -ENOENT);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", "/entra/login/AbCdEfGhIjKlMnOpQrSt+_", &t),
	    -ENOENT);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", "/entra/login/AbCdEfGhIjKlMnOpQrS%74-_", &t),
	    -ENOENT);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", "/entra/login/" ID "/", &t), -ENOENT);
	callback_target_clear(&t);
	ASSERT_ERR(p("POST", "/entra/login/" ID, &t), -EOPNOTSUPP);
	ASSERT_EQ(t.status, 405);
	callback_target_clear(&t);
	ASSERT_EQ(callback_id_is_valid(ID, CALLBACK_ID_LEN), 1);
	/* A cluster flow's link id (flowref.h): 86..200 characters. */
	{
		char longid[CALLBACK_ID_MAX + 2], path[256];

		memset(longid, 'A', sizeof(longid));
		longid[CALLBACK_ID_CLUSTER_MIN] = '\0';
		snprintf(path, sizeof(path), "/entra/login/%s", longid);
		ASSERT_EQ(p("GET", path, &t), 0);
		ASSERT_STREQ(t.id, longid);
		longid[CALLBACK_ID_CLUSTER_MIN - 1] = '\0'; /* 85 */
		snprintf(path, sizeof(path), "/entra/login/%s", longid);
		ASSERT_ERR(p("GET", path, &t), -ENOENT);
		memset(longid, 'A', sizeof(longid));
		longid[CALLBACK_ID_MAX + 1] = '\0'; /* 201 */
		snprintf(path, sizeof(path), "/entra/login/%s", longid);
		ASSERT_ERR(p("GET", path, &t), -ENOENT);
	}
	ASSERT_EQ(callback_id_is_valid("AbCdEfGhIjKlMnOpQrSt=_", 22), 0);
}

TEST(test_code)
{
	struct callback_target t;

	ASSERT_EQ(p("GET",
		      "/entra/callback?code=0.AX%2Eabc-_~x&state=st8_-.~"
		      "&session_state=ignored&client_info=x",
		      &t),
	    0);
	ASSERT_EQ(t.kind, CALLBACK_REDEEM);
	ASSERT_TRUE(t.code != NULL);
	ASSERT_STREQ(t.code->ptr, "0.AX.abc-_~x");
	ASSERT_EQ(t.code->len, strlen("0.AX.abc-_~x"));
	ASSERT_STREQ(t.state, "st8_-.~");
	ASSERT_EQ(t.has_error, 0);
	callback_target_clear(&t);
	ASSERT_TRUE(t.code == NULL);
	/* Any order; an empty item is skipped. */
	ASSERT_EQ(p("GET", "/entra/callback?&state=s&&code=c&", &t), 0);
	ASSERT_STREQ(t.code->ptr, "c");
	callback_target_clear(&t);
	/* A key spelled with an escape is still that key. */
	ASSERT_EQ(p("GET", "/entra/callback?st%61te=s&code=c", &t), 0);
	ASSERT_STREQ(t.state, "s");
	callback_target_clear(&t);
}

/* RFC 9207's iss: read (the broker compares it), https:// only, once. */
TEST(test_iss)
{
	struct callback_target t;

	ASSERT_EQ(p("GET", "/entra/callback?state=s&code=c", &t), 0);
	ASSERT_STREQ(t.iss, "");
	callback_target_clear(&t);
	ASSERT_EQ(p("GET",
		      "/entra/callback?state=s&code=c"
		      "&iss=https%3A%2F%2Fidp.example%2FT%2Fv2.0",
		      &t),
	    0);
	ASSERT_STREQ(t.iss, "https://idp.example/T/v2.0");
	callback_target_clear(&t);
	ASSERT_EQ(p("GET", "/entra/callback?state=s&code=c&iss=http%3A%2F%2Fx",
		      &t),
	    -EBADMSG);
	ASSERT_EQ(t.status, 400);
	callback_target_clear(&t);
	ASSERT_EQ(p("GET",
		      "/entra/callback?state=s&code=c&iss=https%3A%2F%2Fa"
		      "&iss=https%3A%2F%2Fb",
		      &t),
	    -EBADMSG);
	callback_target_clear(&t);
}

TEST(test_error)
{
	struct callback_target t;

	ASSERT_EQ(p("GET",
		      "/entra/callback?error=access_denied&error_description="
		      "AADSTS65004%3a+User+declined.%0d%0aTrace+ID%3a+1%C3%A9"
		      "&state=abc",
		      &t),
	    0);
	ASSERT_EQ(t.kind, CALLBACK_REDEEM);
	ASSERT_TRUE(t.code == NULL);
	ASSERT_EQ(t.has_error, 1);
	ASSERT_STREQ(t.error, "access_denied");
	ASSERT_STREQ(t.error_desc,
	    "AADSTS65004: User declined.  Trace ID: 1??");
	callback_target_clear(&t);
	ASSERT_EQ(p("GET", "/entra/callback?error=x&state=abc", &t), 0);
	ASSERT_STREQ(t.error_desc, "");
	callback_target_clear(&t);
}

TEST(test_redeem_refused)
{
	static const char *const bad[] = {
		"/entra/callback?code=a&code=b&state=s",    /* duplicate */
		"/entra/callback?code=a&state=s&state=s",   /* duplicate */
		"/entra/callback?code=a&st%61te=s&state=s", /* duplicate */
		"/entra/callback?code=a",		    /* no state */
		"/entra/callback?state=s",		    /* nothing */
		"/entra/callback",			    /* nothing */
		"/entra/callback?code=a&error=e&state=s",   /* both */
		"/entra/callback?code=a&state=s%zz",	    /* bad escape */
		"/entra/callback?code=a&state=s%4",	    /* cut escape */
		"/entra/callback?code=a%00b&state=s",	    /* NUL */
		"/entra/callback?code=a+b&state=s",	    /* space in code */
		"/entra/callback?code=&state=s",	    /* empty code */
		"/entra/callback?code=a&state=",	    /* empty state */
		"/entra/callback?code=a&state=s/t",	    /* state alphabet */
		"/entra/callback?code&state=s",		    /* no value */
		"/entra/callback?code=a&state=s&error_description=d",
		"/entra/callback?code=a&state=s&x=%g1", /* bad escape */
		"/entra/callback?error=a%0ab&state=s",	/* control byte */
	};
	struct callback_target t;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (p("GET", bad[i], &t) != -EBADMSG) {
			callback_target_clear(&t);
			FAILF("accepted or wrong errno: %s", bad[i]);
		}
		ASSERT_EQ(t.kind, CALLBACK_REFUSED);
		ASSERT_EQ(t.status, 400);
		ASSERT_TRUE(t.why != NULL);
		ASSERT_TRUE(t.code == NULL); /* never kept on refusal */
		callback_target_clear(&t);
	}
	/* Nearly the path. */
	ASSERT_ERR(p("GET", "/entra/callback/?code=a&state=s", &t), -ENOENT);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", "/entra/%63allback?code=a&state=s", &t), -ENOENT);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", "/", &t), -ENOENT);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", "/entra/callback?code=a&state=s#f", &t), -EBADMSG);
	callback_target_clear(&t);
	ASSERT_ERR(p("PUT", "/entra/callback?code=a&state=s", &t), -EOPNOTSUPP);
	callback_target_clear(&t);
	ASSERT_ERR(p(NULL, "/entra/callback?code=a&state=s", &t), -EOPNOTSUPP);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", NULL, &t), -EBADMSG);
	callback_target_clear(&t);
}

TEST(test_limits)
{
	struct callback_target t;
	size_t n = CALLBACK_TARGET_MAX + 64;
	char *s = malloc(n + 1);
	int len;

	ASSERT_TRUE(s != NULL);
	/* The whole target over its limit: 414. */
	len = snprintf(s, n + 1, "/entra/callback?state=s&code=");
	memset(s + len, 'a', n - (size_t)len);
	s[n] = '\0';
	ASSERT_ERR(p("GET", s, &t), -EMSGSIZE);
	ASSERT_EQ(t.status, 414);
	callback_target_clear(&t);
	/* A code at its limit, and one byte over. */
	len = snprintf(s, n + 1, "/entra/callback?state=s&code=");
	memset(s + len, 'a', CALLBACK_CODE_MAX);
	s[len + CALLBACK_CODE_MAX] = '\0';
	ASSERT_EQ(p("GET", s, &t), 0);
	ASSERT_EQ(t.code->len, CALLBACK_CODE_MAX);
	callback_target_clear(&t);
	s[len + CALLBACK_CODE_MAX] = 'a';
	s[len + CALLBACK_CODE_MAX + 1] = '\0';
	ASSERT_ERR(p("GET", s, &t), -EMSGSIZE);
	ASSERT_EQ(t.status, 400);
	ASSERT_TRUE(t.code == NULL);
	callback_target_clear(&t);
	/* A state one over. */
	len = snprintf(s, n + 1, "/entra/callback?code=c&state=");
	memset(s + len, 's', CALLBACK_STATE_MAX + 1);
	s[len + CALLBACK_STATE_MAX + 1] = '\0';
	ASSERT_ERR(p("GET", s, &t), -EMSGSIZE);
	callback_target_clear(&t);
	/* A very long unknown key is ignored, not refused. */
	len = snprintf(s, n + 1, "/entra/callback?code=c&state=s&");
	memset(s + len, 'k', 200);
	s[len + 200] = '\0';
	ASSERT_EQ(p("GET", s, &t), 0);
	callback_target_clear(&t);
	/* Bytes a target may not have. */
	ASSERT_ERR(p("GET", "/entra/callback?code=\x01&state=s", &t), -EBADMSG);
	callback_target_clear(&t);
	ASSERT_ERR(p("GET", "/entra/callback?code=\xc3\xa9&state=s", &t),
	    -EBADMSG);
	callback_target_clear(&t);
	free(s);
}

int
main(void)
{
	RUN(test_login);
	RUN(test_login_refused);
	RUN(test_code);
	RUN(test_iss);
	RUN(test_error);
	RUN(test_redeem_refused);
	RUN(test_limits);
	TEST_MAIN_END();
}
