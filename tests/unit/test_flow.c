/*
 * test_flow.c - device-code consent flows through the broker's ops, on
 * a bench (fake_core.h): a login waits while the IdP says pending and
 * ends "ready" with the consent stored; a declined sign-in answers
 * consent_declined; a code that runs out ends the flow (counted as
 * expired) and so does the IdP's expired_token; slow_down adds 5 s to
 * the interval; and once an account is pinned, a sign-in by another
 * account (after the refresh token died, REAUTH) is refused with
 * account_mismatch and the pinned consent stays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_core.h"
#include "test.h"

#define ALICE FAKE_CORE_ALICE
#define ALICE_UID FAKE_CORE_ALICE_UID
#define ALICE_OID FAKE_CORE_ALICE_OID
#define OTHER_OID "0c0c0c0c-0000-0000-0000-00000000000c"

static const char *
state_of(struct fake_core *fc)
{
	static char state[32];
	struct fake_call c;

	fake_core_status(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	snprintf(state, sizeof(state), "%s",
	    fake_core_field(&c, "state") ? fake_core_field(&c, "state") :
					   "(none)");
	fake_core_call_done(&c);
	return state;
}

/* A login that waits up to wait s, its device code given (900 s, 5 s). */
static int
login_started(struct fake_core *fc, struct fake_call *c, int64_t wait,
    int64_t expires_in)
{
	fake_core_login(fc, c, ALICE, ALICE_UID, wait);
	fake_core_settle(fc);
	return fake_core_idp_answer(fc, FAKE_DEVICE, 200,
	    fake_core_device_body(fc, expires_in, 5), -1);
}

TEST(pending_then_ready)
{
	struct fake_core *fc = fake_core_new(NULL);
	struct fake_call c, t;

	ASSERT_TRUE(fc != NULL);
	ASSERT_STREQ(state_of(fc), "none");
	ASSERT_EQ(login_started(fc, &c, 600, 900), 0);
	ASSERT_TRUE(c.resp == NULL); /* waits for the outcome */
	ASSERT_STREQ(state_of(fc), "pending");
	/* Polled at the IdP's interval, and again while it says pending. */
	fake_core_advance(fc, 4);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_POLL), 0);
	fake_core_advance(fc, 1);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_POLL), 1);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400,
		      "{\"error\":\"authorization_pending\"}", -1),
	    0);
	/* A token request meanwhile joins the flow. */
	fake_core_token(fc, &t, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&t), "consent_pending");
	ASSERT_STREQ(fake_core_field(&t, "user_code"), "ABCD-EFGH");
	fake_core_call_done(&t);
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_POLL), 2);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 200,
		      fake_core_token_body(fc, "AT-first", "RT-1", 3600,
			  ALICE_OID, "alice@contoso.com"),
		      -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "");
	ASSERT_STREQ(fake_core_field(&c, "state"), "ready");
	ASSERT_STREQ(fake_core_field(&c, "account"), "alice@contoso.com");
	ASSERT_TRUE(fake_core_store_has(fc, ALICE));
	ASSERT_TRUE(c.answered > fake_core_store_last_put(fc));
	ASSERT_STREQ(state_of(fc), "ready");
	ASSERT_EQ(fake_core_stat(fc, "device_flows_completed"), 1);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(slow_down_adds_five_seconds)
{
	struct fake_core *fc = fake_core_new(NULL);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_started(fc, &c, 0, 900), 0);
	ASSERT_STREQ(fake_core_field(&c, "state"), "pending"); /* no wait */
	fake_core_call_done(&c);
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400,
		      "{\"error\":\"slow_down\"}", -1),
	    0);
	fake_core_advance(fc, 9);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_POLL), 1);
	fake_core_advance(fc, 1);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_POLL), 2);
	fake_core_free(fc);
}

TEST(declined)
{
	struct fake_core *fc = fake_core_new(NULL);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_started(fc, &c, 600, 900), 0);
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400,
		      "{\"error\":\"authorization_declined\"}", -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "consent_declined");
	fake_core_call_done(&c);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_POLL), 0);
	/* The next token request hears it once. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&c), "consent_declined");
	fake_core_call_done(&c);
	ASSERT_TRUE(!fake_core_store_has(fc, ALICE));
	fake_core_free(fc);
}

TEST(code_runs_out)
{
	struct fake_core *fc = fake_core_new(NULL);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_started(fc, &c, 600, 12), 0);
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400,
		      "{\"error\":\"authorization_pending\"}", -1),
	    0);
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400,
		      "{\"error\":\"authorization_pending\"}", -1),
	    0);
	ASSERT_TRUE(c.resp == NULL);
	/* The third poll is due after the code's expiry: no poll, the end. */
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_POLL), 2);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	ASSERT_TRUE(strstr(fake_core_field(&c, "message"), "expired") != NULL);
	ASSERT_EQ(fake_core_stat(fc, "device_flows_expired"), 1);
	ASSERT_STREQ(state_of(fc), "none");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(idp_says_expired_token)
{
	struct fake_core *fc = fake_core_new(NULL);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_started(fc, &c, 600, 900), 0);
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 400,
		      "{\"error\":\"expired_token\"}", -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	ASSERT_EQ(fake_core_stat(fc, "device_flows_expired"), 1);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(login_wait_ends_pending)
{
	struct fake_core *fc = fake_core_new(NULL);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(login_started(fc, &c, 3, 900), 0);
	ASSERT_TRUE(c.resp == NULL);
	fake_core_advance(fc, 3); /* the wait ends before the first poll */
	ASSERT_STREQ(fake_core_code(&c), "");
	ASSERT_STREQ(fake_core_field(&c, "state"), "pending");
	ASSERT_STREQ(fake_core_field(&c, "user_code"), "ABCD-EFGH");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(account_pin_after_reauth)
{
	struct fake_core *fc = fake_core_new(NULL);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_EQ(fake_core_sign_in(fc, ALICE, ALICE_UID, ALICE_OID,
		      "alice@contoso.com", "RT-1"),
	    0);
	/* The refresh token dies (REAUTH): the account pin stays. */
	fake_core_advance(fc, 3601);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 400,
		      "{\"error\":\"invalid_grant\",\"error_codes\":[50173]}",
		      -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "reauth_required");
	fake_core_call_done(&c);
	ASSERT_STREQ(state_of(fc), "reauth_required");

	/* Another Entra account signs in: refused. */
	ASSERT_EQ(login_started(fc, &c, 600, 900), 0);
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 200,
		      fake_core_token_body(fc, "AT-x", "RT-x", 3600, OTHER_OID,
			  "mallory@contoso.com"),
		      -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "account_mismatch");
	fake_core_call_done(&c);
	ASSERT_EQ(fake_core_stat(fc, "device_flows_rejected"), 1);
	ASSERT_STREQ(state_of(fc), "reauth_required");
	/* Its token is not handed out; the next request hears why, once. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&c), "account_mismatch");
	fake_core_call_done(&c);

	/* The pinned account signs in again: accepted. */
	ASSERT_EQ(login_started(fc, &c, 600, 900), 0);
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 200,
		      fake_core_token_body(fc, "AT-2", "RT-2", 3600, ALICE_OID,
			  "alice@contoso.com"),
		      -1),
	    0);
	ASSERT_STREQ(fake_core_field(&c, "state"), "ready");
	fake_core_call_done(&c);
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-2");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

int
main(void)
{
	RUN(pending_then_ready);
	RUN(slow_down_adds_five_seconds);
	RUN(declined);
	RUN(code_runs_out);
	RUN(idp_says_expired_token);
	RUN(login_wait_ends_pending);
	RUN(account_pin_after_reauth);
	TEST_MAIN_END();
}
