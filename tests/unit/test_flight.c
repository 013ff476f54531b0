/*
 * test_flight.c - refreshes through the broker's ops, on a bench
 * (fake_core.h: scripted IdP, in-memory store, fixed clock): N requests
 * for one user and scope make one refresh grant and all get the token;
 * the rotated refresh token is written before any of them is answered
 * and is the one the next grant sends; invalid_grant drops the consent
 * so the next request starts a sign-in; a 429 opens the tenant-wide
 * breaker, which refuses without calling the IdP until its window has
 * passed on the fixed clock; a token used recently is refreshed
 * proactively when the clock passes its refresh point, with no request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "fake_core.h"
#include "test.h"

#define ALICE FAKE_CORE_ALICE
#define ALICE_UID FAKE_CORE_ALICE_UID
#define ALICE_OID FAKE_CORE_ALICE_OID

TEST(sign_in_then_cache_hit)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	/* The consent's first token is cached: no grant. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&c), "");
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-first");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 0);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

#define N 5

/* The access token has expired: the next requests need a refresh. */
static void
expire(struct fake_core *fc)
{
	fake_core_advance(fc, 3601);
}

TEST(single_flight_one_grant_answers_all)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c[N];
	int i;

	ASSERT_TRUE(fc != NULL);
	expire(fc);
	for (i = 0; i < N; i++)
		fake_core_token(fc, &c[i], ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_REFRESH), 1);
	ASSERT_STREQ(fake_core_idp_refresh_token(fc), "RT-1");
	for (i = 0; i < N; i++)
		ASSERT_TRUE(c[i].resp == NULL); /* all parked on the flight */
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      fake_core_token_body(fc, "AT-2", "RT-2", 3600, NULL,
			  NULL),
		      -1),
	    0);
	for (i = 0; i < N; i++) {
		ASSERT_STREQ(fake_core_code(&c[i]), "");
		ASSERT_STREQ(fake_core_field(&c[i], "access_token"), "AT-2");
		ASSERT_EQ(fake_core_int(&c[i], "expires_on"),
		    fake_core_now(fc) + 3600);
	}
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	for (i = 0; i < N; i++)
		fake_core_call_done(&c[i]);
	fake_core_free(fc);
}

TEST(rotation_stored_before_reply_and_used_next)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c;
	unsigned puts;

	ASSERT_TRUE(fc != NULL);
	expire(fc);
	puts = fake_core_store_puts(fc);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      fake_core_token_body(fc, "AT-2", "RT-2", 3600, NULL,
			  NULL),
		      -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "");
	/* The rotated refresh token was written, and before the answer. */
	ASSERT_EQ(fake_core_store_puts(fc), puts + 1);
	ASSERT_TRUE(fake_core_store_last_put(fc) > 0);
	ASSERT_TRUE(c.answered > fake_core_store_last_put(fc));
	fake_core_call_done(&c);

	/* The next grant sends the rotated one. */
	expire(fc);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_idp_refresh_token(fc), "RT-2");
	/* No rotation in the reply: nothing to write, the old RT stays. */
	puts = fake_core_store_puts(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      fake_core_token_body(fc, "AT-3", NULL, 3600, NULL, NULL),
		      -1),
	    0);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-3");
	ASSERT_EQ(fake_core_store_puts(fc), puts);
	fake_core_call_done(&c);
	expire(fc);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_idp_refresh_token(fc), "RT-2");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(invalid_grant_drops_consent_next_request_signs_in)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	expire(fc);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 400,
		      "{\"error\":\"invalid_grant\",\"error_codes\":[70008]}",
		      -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "reauth_required");
	fake_core_call_done(&c);
	/* The dead refresh token is gone from the store too. */
	fake_core_status(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "state"), "reauth_required");
	fake_core_call_done(&c);

	/* The next request starts a sign-in instead of a grant. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_DEVICE), 1);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_DEVICE, 200,
		      fake_core_device_body(fc, 900, 5), -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	ASSERT_STREQ(fake_core_field(&c, "user_code"), "ABCD-EFGH");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(breaker_429_opens_refuses_without_idp_then_closes)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c;
	unsigned sent;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(fake_core_sign_in(fc, "bob", 1002,
		      "0b0b0b0b-0000-0000-0000-00000000000b", "bob@contoso.com",
		      "RT-bob"),
	    0);
	expire(fc);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 429, "", 60), 0);
	ASSERT_STREQ(fake_core_code(&c), "rate_limited");
	ASSERT_EQ(fake_core_int(&c, "retry_after"), 60);
	fake_core_call_done(&c);
	sent = fake_core_idp_sent(fc, FAKE_REFRESH);

	/* Open: another user is refused at once, Entra is not called. */
	fake_core_advance(fc, 30);
	fake_core_token(fc, &c, "bob", 1002);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&c), "rate_limited");
	ASSERT_EQ(fake_core_int(&c, "retry_after"), 30);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), sent);
	fake_core_call_done(&c);

	/* Closed once the window has passed on the clock. */
	fake_core_advance(fc, 31);
	fake_core_token(fc, &c, "bob", 1002);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), sent + 1);
	ASSERT_STREQ(fake_core_idp_refresh_token(fc), "RT-bob");
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      fake_core_token_body(fc, "AT-bob", "RT-bob2", 3600, NULL,
			  NULL),
		      -1),
	    0);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-bob");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(proactive_refresh_when_the_clock_passes_the_refresh_point)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	/* Used once: worth refreshing before it expires. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-first");
	fake_core_call_done(&c);
	/* 3600 s: due 300 s before expiry, up to 300 s earlier (jitter). */
	fake_core_advance(fc, 2990);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 0);
	fake_core_advance(fc, 310);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      fake_core_token_body(fc, "AT-2", "RT-2", 3600, NULL,
			  NULL),
		      -1),
	    0);
	/* The next request is a cache hit on the new token. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-2");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(unused_token_is_not_refreshed_proactively)
{
	struct fake_core *fc = fake_core_new_alice();

	ASSERT_TRUE(fc != NULL);
	/* Never handed out since it was issued: no call to Entra. */
	fake_core_advance(fc, 3700);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 0);
	fake_core_free(fc);
}

/*
 * A device-flow consent is a public client's: with a client secret
 * configured, its refreshes still carry no credential (Entra answers
 * 700025 otherwise).
 */
TEST(device_flow_refresh_is_public_with_a_secret_configured)
{
	struct fake_core *fc =
	    fake_core_new("[entra]\nclient_secret_file = /etc/credd/s\n");
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(fake_core_sign_in(fc, ALICE, ALICE_UID, ALICE_OID,
		      "alice@contoso.com", "RT-1"),
	    0);
	expire(fc);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_REFRESH), 1);
	ASSERT_EQ(fake_core_idp_client(fc, FAKE_REFRESH), 0);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

/*
 * Issue 14: a job's request whose refresh Entra answers with a consent
 * error (65001) starts no sign-in: it is refused with the policy line,
 * and no device code is asked for. A workspace's request would.
 */
TEST(consent_error_starts_no_sign_in_for_a_job)
{
	static const char consent[] = "{\"error\":\"invalid_grant\","
				      "\"error_codes\":[65001]}";
	struct fake_core *fc = fake_core_new_alice();
	struct reply out = { 0 };
	struct fake_call c;
	unsigned dev;

	ASSERT_TRUE(fc != NULL);
	dev = fake_core_idp_sent(fc, FAKE_DEVICE);
	expire(fc);
	fake_core_call_init(fc, &c, PROTO_OP_TOKEN, ALICE, ALICE_UID);
	c.w.no_signin = strdup("this workload may not start a sign-in: "
			       "[workload.job] start_signin = no (default)");
	ASSERT_TRUE(c.w.no_signin != NULL);
	fake_core_call_returned(&c,
	    broker_token(fake_core_broker(fc), &c.w, ALICE, ALICE_UID,
		FAKE_SCOPE, 0, &out),
	    &out);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 400, consent, -1), 0);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	ASSERT_TRUE(
	    strstr(fake_core_field(&c, "message"), "[workload.job]") != NULL);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_DEVICE), dev);
	fake_core_call_done(&c);

	/* The same error for a workspace's request starts the sign-in. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	if (fake_core_idp_waiting(fc, FAKE_REFRESH) == 1)
		ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 400, consent,
			      -1),
		    0);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_DEVICE), dev + 1);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

int
main(void)
{
	RUN(sign_in_then_cache_hit);
	RUN(single_flight_one_grant_answers_all);
	RUN(rotation_stored_before_reply_and_used_next);
	RUN(invalid_grant_drops_consent_next_request_signs_in);
	RUN(consent_error_starts_no_sign_in_for_a_job);
	RUN(breaker_429_opens_refuses_without_idp_then_closes);
	RUN(proactive_refresh_when_the_clock_passes_the_refresh_point);
	RUN(unused_token_is_not_refreshed_proactively);
	RUN(device_flow_refresh_is_public_with_a_secret_configured);
	TEST_MAIN_END();
}
