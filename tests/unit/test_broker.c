/*
 * test_broker.c - the broker's ops on a bench (fake_core.h): each class
 * of IdP error a refresh can meet ends as its wire code (errmap.h), the
 * way a client sees it; a transient failure serves a token that is still
 * valid, backs the user off without calling Entra, and the planned
 * proactive refresh still runs; logout drops
 * the stored consent; a request for a name whose uid changed starts
 * clean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_core.h"
#include "test.h"

#define ALICE FAKE_CORE_ALICE
#define ALICE_UID FAKE_CORE_ALICE_UID
#define ALICE_OID FAKE_CORE_ALICE_OID

/* A refresh answered with (status, body, Retry-After): the wire code. */
static const struct {
	long status;
	const char *body;
	int64_t retry_after;
	const char *code;
} classes[] = {
	/* REAUTH: the refresh token is dead. */
	{ 400, "{\"error\":\"invalid_grant\",\"error_codes\":[70008]}", -1,
	    "reauth_required" },
	/* POLICY: conditional access; no sign-in here fixes it. */
	{ 400, "{\"error\":\"invalid_grant\",\"error_codes\":[53003]}", -1,
	    "policy_blocked" },
	/* ADMIN: credd's registration is wrong. */
	{ 401, "{\"error\":\"invalid_client\",\"error_codes\":[7000215]}", -1,
	    "idp_misconfigured" },
	/* RETRY: Entra is down, or throttles the tenant. */
	{ 503, "", -1, "idp_unavailable" },
	{ 500, "{\"error\":\"temporarily_unavailable\"}", -1,
	    "idp_unavailable" },
	{ 429, "", 30, "rate_limited" },
	/* CONSENT: this resource needs an interactive sign-in. */
	{ 400,
	    "{\"error\":\"interaction_required\",\"suberror\":"
	    "\"consent_required\",\"error_codes\":[65001]}",
	    -1, "consent_required" },
};

TEST(idp_error_classes_as_wire_codes)
{
	size_t i;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		struct fake_core *fc = fake_core_new_alice();
		struct fake_call c;

		ASSERT_TRUE(fc != NULL);
		fake_core_advance(fc, 3601);
		fake_core_token(fc, &c, ALICE, ALICE_UID);
		fake_core_settle(fc);
		ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH,
			      classes[i].status, classes[i].body,
			      classes[i].retry_after),
		    0);
		if (strcmp(classes[i].code, "consent_required") == 0) {
			/* The consent flow answers it, with its fields. */
			ASSERT_TRUE(c.resp == NULL);
			ASSERT_EQ(fake_core_idp_answer(fc, FAKE_DEVICE, 200,
				      fake_core_device_body(fc, 900, 5), -1),
			    0);
			ASSERT_STREQ(fake_core_field(&c, "user_code"),
			    "ABCD-EFGH");
		}
		if (fake_core_code(&c) == NULL ||
		    strcmp(fake_core_code(&c), classes[i].code) != 0)
			FAILF("case %zu (HTTP %ld %s): got %s, want %s", i,
			    classes[i].status, classes[i].body,
			    fake_core_code(&c) ? fake_core_code(&c) :
						 "(no answer)",
			    classes[i].code);
		fake_core_call_done(&c);
		fake_core_free(fc);
	}
}

TEST(transient_failure_serves_valid_token_and_backs_off)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	/* Half the lifetime left: a request wanting more forces a refresh. */
	fake_core_advance(fc, 2000);
	fake_core_token_valid(fc, &c, ALICE, ALICE_UID, 3000);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 503, "", -1), 0);
	ASSERT_STREQ(fake_core_code(&c), "");
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-first");
	ASSERT_EQ(fake_core_stat(fc, "stale_served"), 1);
	fake_core_call_done(&c);
	/* Backing off: the next request does not reach Entra. */
	fake_core_token_valid(fc, &c, ALICE, ALICE_UID, 3000);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-first");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	fake_core_call_done(&c);
	/* The proactive refresh planned at issue (due 3000..3300 s) still
	 * runs by itself, the backoff long over: the token was used. */
	fake_core_advance(fc, 900);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	fake_core_advance(fc, 400);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 2);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      fake_core_token_body(fc, "AT-2", "RT-2", 3600, NULL,
			  NULL),
		      -1),
	    0);
	fake_core_token_valid(fc, &c, ALICE, ALICE_UID, 3000);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-2");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 2);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(logout_drops_the_consent)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	ASSERT_TRUE(fake_core_store_has(fc, ALICE));
	fake_core_logout(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_STREQ(fake_core_code(&c), "");
	fake_core_call_done(&c);
	fake_core_status(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_TRUE(strcmp(fake_core_field(&c, "state"), "ready") != 0);
	fake_core_call_done(&c);
	/* No cached token is served after a logout; a sign-in starts. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 0);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_DEVICE), 1);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(reused_name_with_another_uid_starts_clean)
{
	struct fake_core *fc = fake_core_new_alice();
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	/* The same login name, now another uid: the old consent is not its. */
	fake_core_token(fc, &c, ALICE, 2001);
	fake_core_settle(fc);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 0);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_DEVICE), 1);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_DEVICE, 200,
		      fake_core_device_body(fc, 900, 5), -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

int
main(void)
{
	RUN(idp_error_classes_as_wire_codes);
	RUN(transient_failure_serves_valid_token_and_backs_off);
	RUN(logout_drops_the_consent);
	RUN(reused_name_with_another_uid_starts_clean);
	TEST_MAIN_END();
}
