/*
 * test_apptoken.c - the platform's own app tokens (credd/apptoken.c,
 * issue 14 identity = app) on the bench (fake_core.h): one client
 * credentials grant per scope, confidential with the configured
 * credential, shared by every request that waits on it and then served
 * from the cache; never written to the store, never tied to a user;
 * renewed in the background once past its planned refresh; an expired
 * one waits for a new grant; Entra's errors classified; user-or-app
 * takes the user's token when the user has consent, else the app's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "fake_core.h"
#include "test.h"
#include "waiter.h"

#define SECRET_CONF "client_auth = secret\nclient_secret_file = /etc/credd/s\n"
#define GRAPH "https://graph.microsoft.com/.default"

static struct fake_core *
bench_secret(void)
{
	static const char extra[] = "[entra]\n" SECRET_CONF;

	return fake_core_new(extra);
}

static int
answer_app(struct fake_core *fc, const char *access, int64_t expires_in)
{
	return fake_core_idp_answer(fc, FAKE_APP, 200,
	    fake_core_token_body(fc, access, NULL, expires_in, NULL, NULL), -1);
}

TEST(one_grant_per_scope_shared)
{
	struct fake_core *fc = bench_secret();
	struct fake_call a, b, c, g;

	ASSERT_TRUE(fc != NULL);
	fake_core_token_app(fc, &a, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	fake_core_token_app(fc, &b, "bob", 1002, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(a.r, WAITER_PARKED);
	ASSERT_EQ(b.r, WAITER_PARKED);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 1);
	ASSERT_EQ(fake_core_idp_client(fc, FAKE_APP), 1); /* confidential */
	ASSERT_TRUE(strstr(fake_core_idp_cred(fc, FAKE_APP),
			"client_secret=" FAKE_CLIENT_SECRET) != NULL);
	ASSERT_STREQ(fake_core_idp_scope(fc), FAKE_SCOPE);
	ASSERT_EQ(answer_app(fc, "APP-AT-1", 3600), 0);
	ASSERT_STREQ(fake_core_code(&a), "");
	ASSERT_STREQ(fake_core_code(&b), "");
	ASSERT_STREQ(fake_core_field(&a, "access_token"), "APP-AT-1");
	ASSERT_STREQ(fake_core_field(&b, "access_token"), "APP-AT-1");
	ASSERT_TRUE(fake_core_field(&a, "account") == NULL); /* no user */
	/* From the cache now. */
	fake_core_token_app(fc, &c, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(c.r, 0);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "APP-AT-1");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 1);
	/* Another scope, another grant. */
	fake_core_token_app(fc, &g, "alice", 1001, WAITER_APP, GRAPH);
	ASSERT_EQ(g.r, WAITER_PARKED);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 2);
	ASSERT_STREQ(fake_core_idp_scope(fc), GRAPH);
	ASSERT_EQ(answer_app(fc, "APP-AT-G", 3600), 0);
	ASSERT_STREQ(fake_core_field(&g, "access_token"), "APP-AT-G");
	/* Never the store, never a user's record or token. */
	ASSERT_EQ(fake_core_store_puts(fc), 0);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 0);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_DEVICE), 0);
	ASSERT_EQ(fake_core_stat(fc, "app_tokens"), 2);
	ASSERT_EQ(fake_core_stat(fc, "app_grants"), 2);
	ASSERT_EQ(fake_core_stat(fc, "app_hits"), 1);
	fake_core_call_done(&a);
	fake_core_call_done(&b);
	fake_core_call_done(&c);
	fake_core_call_done(&g);
	fake_core_free(fc);
}

TEST(refreshed_near_expiry)
{
	struct fake_core *fc = bench_secret();
	struct fake_call a, b, c, d;

	ASSERT_TRUE(fc != NULL);
	fake_core_token_app(fc, &a, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(answer_app(fc, "APP-AT-1", 3600), 0);
	/* Past its planned refresh (lifetime - 300 s, jitter): the old one
	 * is served and one grant renews it. */
	fake_core_advance(fc, 3400);
	fake_core_token_app(fc, &b, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(b.r, 0);
	ASSERT_STREQ(fake_core_field(&b, "access_token"), "APP-AT-1");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 2);
	fake_core_token_app(fc, &c, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(c.r, 0);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 2); /* single flight */
	/* A failed renewal: the valid token is still served, and the next
	 * try waits (no grant per request). */
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_APP, 503, "", -1), 0);
	fake_core_call_done(&c);
	fake_core_token_app(fc, &c, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(c.r, 0);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "APP-AT-1");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 2);
	fake_core_advance(fc, 31);
	fake_core_call_done(&c);
	fake_core_token_app(fc, &c, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(c.r, 0);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 3);
	ASSERT_EQ(answer_app(fc, "APP-AT-2", 3600), 0);
	fake_core_call_done(&c);
	fake_core_token_app(fc, &c, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "APP-AT-2");
	/* Expired: the request waits for a new grant. */
	fake_core_advance(fc, 3700);
	fake_core_token_app(fc, &d, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(d.r, WAITER_PARKED);
	ASSERT_EQ(answer_app(fc, "APP-AT-3", 3600), 0);
	ASSERT_STREQ(fake_core_field(&d, "access_token"), "APP-AT-3");
	fake_core_call_done(&a);
	fake_core_call_done(&b);
	fake_core_call_done(&c);
	fake_core_call_done(&d);
	fake_core_free(fc);
}

TEST(errors_classified)
{
	struct fake_core *fc = bench_secret();
	struct fake_call a, b;

	ASSERT_TRUE(fc != NULL);
	fake_core_token_app(fc, &a, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_APP, 401,
		      "{\"error\":\"invalid_client\",\"error_description\":"
		      "\"AADSTS7000215: Invalid client secret provided.\"}",
		      -1),
	    0);
	ASSERT_STREQ(fake_core_code(&a), "idp_misconfigured");
	ASSERT_EQ(fake_core_stat(fc, "app_grant_errors"), 1);
	ASSERT_EQ(fake_core_stat(fc, "app_tokens"), 0);
	/* A throttled grant: rate limited with retry_after; nothing cached. */
	fake_core_token_app(fc, &b, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(b.r, WAITER_PARKED);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 2);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_APP, 429, "", 30), 0);
	ASSERT_STREQ(fake_core_code(&b), "rate_limited");
	ASSERT_TRUE(fake_core_int(&b, "retry_after") >= 5);
	fake_core_call_done(&a);
	fake_core_call_done(&b);
	fake_core_free(fc);
}

TEST(credential_unusable)
{
	struct fake_core *fc = fake_core_new(
	    "[entra]\nclient_auth = federated\nclient_assertion_file = "
	    "/nonexistent/credd-test/federated-token\n");
	struct fake_call a;

	ASSERT_TRUE(fc != NULL);
	fake_core_token_app(fc, &a, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(a.r, 0);
	ASSERT_STREQ(fake_core_code(&a), "idp_misconfigured");
	ASSERT_TRUE(
	    strstr(fake_core_field(&a, "message"), "client_auth") != NULL);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 0);
	fake_core_call_done(&a);
	fake_core_free(fc);
}

TEST(user_or_app)
{
	struct fake_core *fc = bench_secret();
	struct fake_call a, b;

	ASSERT_TRUE(fc != NULL);
	/* bob has no consent: the app's token, no sign-in. */
	fake_core_token_app(fc, &b, "bob", 1002, WAITER_USER_OR_APP,
	    FAKE_SCOPE);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_DEVICE), 0);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 1);
	ASSERT_EQ(answer_app(fc, "APP-AT-1", 3600), 0);
	ASSERT_STREQ(fake_core_field(&b, "access_token"), "APP-AT-1");
	/* alice has: her own token. */
	ASSERT_EQ(fake_core_sign_in(fc, FAKE_CORE_ALICE, FAKE_CORE_ALICE_UID,
		      FAKE_CORE_ALICE_OID, "alice@contoso.com", "RT-1"),
	    0);
	fake_core_token_app(fc, &a, FAKE_CORE_ALICE, FAKE_CORE_ALICE_UID,
	    WAITER_USER_OR_APP, FAKE_SCOPE);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&a), "");
	ASSERT_TRUE(
	    strcmp(fake_core_field(&a, "access_token"), "APP-AT-1") != 0);
	ASSERT_STREQ(fake_core_field(&a, "account"), "alice@contoso.com");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_APP), 1);
	fake_core_call_done(&a);
	fake_core_call_done(&b);
	fake_core_free(fc);
}

TEST(user_or_app_after_consent_lost)
{
	struct fake_core *fc = bench_secret();
	struct fake_call a;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(fake_core_sign_in(fc, FAKE_CORE_ALICE, FAKE_CORE_ALICE_UID,
		      FAKE_CORE_ALICE_OID, "alice@contoso.com", "RT-1"),
	    0);
	/* Her token expired; the refresh finds the consent gone: the app's
	 * token, and no sign-in starts. */
	fake_core_advance(fc, 7200);
	fake_core_token_app(fc, &a, FAKE_CORE_ALICE, FAKE_CORE_ALICE_UID,
	    WAITER_USER_OR_APP, FAKE_SCOPE);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_REFRESH), 1);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 400,
		      "{\"error\":\"interaction_required\",\"error_codes\":"
		      "[65001],\"error_description\":\"AADSTS65001: The user "
		      "has not consented.\"}",
		      -1),
	    0);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_DEVICE), 1); /* her sign-in */
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_DEVICE), 0);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_APP), 1);
	ASSERT_EQ(answer_app(fc, "APP-AT-1", 3600), 0);
	ASSERT_STREQ(fake_core_field(&a, "access_token"), "APP-AT-1");
	fake_core_call_done(&a);
	fake_core_free(fc);
}

TEST(parked_at_shutdown)
{
	struct fake_core *fc = bench_secret();
	struct fake_call a;

	ASSERT_TRUE(fc != NULL);
	fake_core_token_app(fc, &a, "alice", 1001, WAITER_APP, FAKE_SCOPE);
	ASSERT_EQ(a.r, WAITER_PARKED);
	fake_core_free(fc); /* answers it "unavailable", frees the grant */
	ASSERT_STREQ(fake_core_code(&a), "unavailable");
	fake_core_call_done(&a);
}

int
main(void)
{
	RUN(one_grant_per_scope_shared);
	RUN(refreshed_near_expiry);
	RUN(errors_classified);
	RUN(credential_unusable);
	RUN(user_or_app);
	RUN(user_or_app_after_consent_lost);
	RUN(parked_at_shutdown);
	TEST_MAIN_END();
}
