/*
 * test_cae.c - Continuous Access Evaluation (cae.h) alone and through
 * the broker on a bench (fake_core.h): a challenge is accepted as
 * standard or URL-safe base64 or as JSON, and refused clearly when it is
 * not one JSON object or is too large; it is merged with the cp1
 * capability as MSAL merges it; CAE tokens are cached apart from
 * ordinary ones; a challenge bypasses a fresh cached token, identical
 * challenges share one grant, a different one within 30 s is refused
 * with retry_after (no grant), and a failed claims refresh never hands
 * out the cached token the resource just refused; a challenge Entra
 * answers with interaction_required starts a sign-in whose polls carry it,
 * and that sign-in reopens the 30 s window.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae.h"
#include "fake_core.h"
#include "test.h"

#define ALICE FAKE_CORE_ALICE
#define ALICE_UID FAKE_CORE_ALICE_UID
#define ALICE_OID FAKE_CORE_ALICE_OID

/* {"access_token":{"nbf":{"essential":true, "value":"1604106651"}}} */
#define DOC_B64                                                                \
	"eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVl"     \
	"IjoiMTYwNDEwNjY1MSJ9fX0="
#define DOC_JSON                                                               \
	"{\"access_token\":{\"nbf\":{\"essential\":true,\"value\":"            \
	"\"1604106651\"}}}"
#define CP1_ONLY "{\"access_token\":{\"xms_cc\":{\"values\":[\"cp1\"]}}}"

static int
parse_ok(const char *in, const char *want)
{
	const char *why = NULL;
	char *out = NULL;
	int r = cae_claims_parse(in, &out, &why), ok;

	ok = r == 0 && out != NULL && strcmp(out, want) == 0;
	if (!ok)
		fprintf(stderr, "parse %s -> %d %s\n", in, r, out ? out : why);
	free(out);
	return ok;
}

TEST(parse_base64_and_json)
{
	ASSERT_TRUE(parse_ok(DOC_B64, DOC_JSON));
	/* URL-safe alphabet, no padding; JSON as sent; sorted keys. */
	ASSERT_TRUE(parse_ok("eyJhIjoxfQ", "{\"a\":1}"));
	ASSERT_TRUE(parse_ok("eyJhIjoxfQ==", "{\"a\":1}"));
	ASSERT_TRUE(parse_ok(" {\"b\":1, \"a\":{}}", "{\"a\":{},\"b\":1}"));
}

TEST(parse_refuses_clearly)
{
	static const char *bad[] = {
		"",			      /* empty */
		"!!!!",			      /* not base64 */
		"W10=",			      /* "[]": not an object */
		"{\"a\":1",		      /* broken JSON */
		"{\"a\":1,\"a\":2}",	      /* duplicate key */
		"eyJhIjoxfQ\"; drop table x", /* junk after base64 */
	};
	const char *why;
	char *out, *big;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = (char *)1;
		why = NULL;
		ASSERT_ERR(cae_claims_parse(bad[i], &out, &why), -EBADMSG);
		ASSERT_TRUE(out == NULL);
		ASSERT_TRUE(why != NULL && strstr(why, "claims") != NULL);
	}
	/* More than 8 KiB decoded: too large, as JSON and as base64. */
	big = malloc(20000);
	ASSERT_TRUE(big != NULL);
	memset(big, ' ', 19999);
	big[0] = '{';
	big[19997] = '}';
	big[19998] = '\0';
	ASSERT_ERR(cae_claims_parse(big, &out, &why), -EMSGSIZE);
	memset(big, 'A', 19999);
	big[19999] = '\0';
	ASSERT_ERR(cae_claims_parse(big, &out, &why), -EMSGSIZE);
	free(big);
}

static int
merge_is(const char *claims, const char *caps, const char *want)
{
	char *out = NULL;
	int r = cae_claims_merge(claims, caps, &out), ok;

	ok = r == 0 &&
	    (want == NULL ? out == NULL : out != NULL && !strcmp(out, want));
	if (!ok)
		fprintf(stderr, "merge -> %d %s\n", r, out ? out : "(null)");
	free(out);
	return ok;
}

TEST(merge_as_msal)
{
	char *out;

	ASSERT_TRUE(merge_is(NULL, NULL, NULL));
	ASSERT_TRUE(merge_is(NULL, "cp1", CP1_ONLY));
	ASSERT_TRUE(merge_is(DOC_JSON, NULL, DOC_JSON));
	ASSERT_TRUE(merge_is(DOC_JSON, "cp1",
	    "{\"access_token\":{\"nbf\":{\"essential\":true,\"value\":"
	    "\"1604106651\"},\"xms_cc\":{\"values\":[\"cp1\"]}}}"));
	/* Other members stay; a challenge's own xms_cc is replaced. */
	ASSERT_TRUE(merge_is("{\"id_token\":{\"x\":1},\"access_token\":"
			     "{\"xms_cc\":{\"values\":[\"cp9\"]}}}",
	    "cp1",
	    "{\"access_token\":{\"xms_cc\":{\"values\":[\"cp1\"]}},"
	    "\"id_token\":{\"x\":1}}"));
	ASSERT_ERR(cae_claims_merge("{\"access_token\":1}", "cp1", &out),
	    -EBADMSG);
}

TEST(keys)
{
	char k[64], s[64];

	ASSERT_EQ(cae_key("https://x/.default", 0, k, sizeof(k)), 0);
	ASSERT_STREQ(k, "https://x/.default");
	ASSERT_EQ(cae_key_is_cae(k), 0);
	ASSERT_EQ(cae_key("https://x/.default", 1, k, sizeof(k)), 0);
	ASSERT_STREQ(k, "https://x/.default cae");
	ASSERT_EQ(cae_key_split(k, s, sizeof(s)), 1);
	ASSERT_STREQ(s, "https://x/.default");
	ASSERT_EQ(cae_key_split("https://x/.default", s, sizeof(s)), 0);
	ASSERT_ERR(cae_key("https://x/.default", 1, k, 10), -ENAMETOOLONG);
}

TEST(marks_window)
{
	struct cae_marks *m = NULL;
	int64_t since, ra;

	ASSERT_EQ(cae_marks_check(&m, "s", "{\"a\":1}", 1000, &since, &ra),
	    CAE_RUN);
	ASSERT_EQ(since, 1000);
	ASSERT_EQ(cae_marks_check(&m, "s", "{\"a\":1}", 1010, &since, &ra),
	    CAE_JOIN);
	ASSERT_EQ(since, 1000);
	ASSERT_EQ(cae_marks_check(&m, "s", "{\"a\":2}", 1010, &since, &ra),
	    CAE_LIMITED);
	ASSERT_EQ(ra, 20);
	/* Another scope has its own window. */
	ASSERT_EQ(cae_marks_check(&m, "t", "{\"a\":2}", 1010, &since, &ra),
	    CAE_RUN);
	ASSERT_EQ(cae_marks_check(&m, "s", "{\"a\":2}", 1030, &since, &ra),
	    CAE_RUN);
	cae_marks_clear(&m);
	ASSERT_TRUE(m == NULL);
}

/* ---- through the broker ---- */

static struct fake_core *
bench(int with_cp1)
{
	struct fake_core *fc = fake_core_new(
	    with_cp1 ? "[entra]\nclient_capabilities = cp1\n" : NULL);

	if (fc != NULL &&
	    fake_core_sign_in(fc, ALICE, ALICE_UID, ALICE_OID,
		"alice@contoso.com", "RT-1") < 0) {
		fake_core_free(fc);
		return NULL;
	}
	return fc;
}

static const char *
body(struct fake_core *fc, const char *at)
{
	return fake_core_token_body(fc, at, "RT-2", 86399, NULL, NULL);
}

TEST(cae_token_cached_apart)
{
	struct fake_core *fc = bench(1);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	/* A CAE request: a grant declaring cp1, its own cache entry. */
	fake_core_token_cae(fc, &c, ALICE, ALICE_UID, 1, NULL);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	ASSERT_STREQ(fake_core_idp_claims(fc), CP1_ONLY);
	ASSERT_TRUE(strncmp(fake_core_idp_scope(fc), FAKE_SCOPE " ",
			strlen(FAKE_SCOPE) + 1) == 0);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      body(fc, "AT-cae"), -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "");
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-cae");
	ASSERT_STREQ(fake_core_field(&c, "scope"), FAKE_SCOPE);
	fake_core_call_done(&c);
	/* An ordinary request still gets the ordinary token, no grant. */
	fake_core_token(fc, &c, ALICE, ALICE_UID);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-first");
	fake_core_call_done(&c);
	fake_core_token_cae(fc, &c, ALICE, ALICE_UID, 1, NULL);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-cae");
	fake_core_call_done(&c);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	fake_core_free(fc);
}

TEST(cae_without_capability_is_ordinary)
{
	struct fake_core *fc = bench(0);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	fake_core_token_cae(fc, &c, ALICE, ALICE_UID, 1, NULL);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-first");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 0);
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(challenge_bypasses_cache_coalesces_and_limits)
{
	struct fake_core *fc = bench(1);
	struct fake_call c[3];

	ASSERT_TRUE(fc != NULL);
	/* Two identical challenges while the cached token is fresh: one
	 * grant with the merged claims; both get the new token. */
	fake_core_token_cae(fc, &c[0], ALICE, ALICE_UID, 1, DOC_JSON);
	fake_core_token_cae(fc, &c[1], ALICE, ALICE_UID, 1, DOC_JSON);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	ASSERT_STREQ(fake_core_idp_claims(fc),
	    "{\"access_token\":{\"nbf\":{\"essential\":true,\"value\":"
	    "\"1604106651\"},\"xms_cc\":{\"values\":[\"cp1\"]}}}");
	/* A different challenge inside the window: refused, no grant. */
	fake_core_token_cae(fc, &c[2], ALICE, ALICE_UID, 1, "{\"x\":1}");
	ASSERT_STREQ(fake_core_code(&c[2]), "rate_limited");
	ASSERT_TRUE(fake_core_int(&c[2], "retry_after") > 0);
	ASSERT_TRUE(fake_core_int(&c[2], "retry_after") <= 30);
	fake_core_call_done(&c[2]);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      body(fc, "AT-new"), -1),
	    0);
	ASSERT_STREQ(fake_core_field(&c[0], "access_token"), "AT-new");
	ASSERT_STREQ(fake_core_field(&c[1], "access_token"), "AT-new");
	fake_core_call_done(&c[0]);
	fake_core_call_done(&c[1]);
	/* The same challenge again soon after: the new token, no grant. */
	fake_core_advance(fc, 5);
	fake_core_token_cae(fc, &c[0], ALICE, ALICE_UID, 1, DOC_JSON);
	ASSERT_STREQ(fake_core_field(&c[0], "access_token"), "AT-new");
	fake_core_call_done(&c[0]);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 1);
	ASSERT_EQ(fake_core_stat(fc, "cae_limited"), 1);
	/* After the window: a new challenge gets a new grant. */
	fake_core_advance(fc, 30);
	fake_core_token_cae(fc, &c[0], ALICE, ALICE_UID, 1, "{\"x\":1}");
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_REFRESH), 2);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200, body(fc, "AT-3"),
		      -1),
	    0);
	ASSERT_STREQ(fake_core_field(&c[0], "access_token"), "AT-3");
	fake_core_call_done(&c[0]);
	fake_core_free(fc);
}

TEST(failed_challenge_refresh_never_serves_stale)
{
	struct fake_core *fc = bench(1);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	/* An ordinary token's challenge (no cae): no capability claims. */
	fake_core_token_cae(fc, &c, ALICE, ALICE_UID, 0, DOC_JSON);
	ASSERT_STREQ(fake_core_idp_claims(fc), DOC_JSON);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 503, "{}", -1), 0);
	ASSERT_TRUE(fake_core_code(&c) != NULL);
	ASSERT_STREQ(fake_core_code(&c), "idp_unavailable");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

TEST(challenge_needing_interaction_starts_sign_in)
{
	static const char mfa[] =
	    "{\"error\":\"invalid_grant\",\"suberror\":\"basic_action\","
	    "\"error_codes\":[50076]}";
	struct fake_core *fc = bench(1);
	struct fake_call c;

	ASSERT_TRUE(fc != NULL);
	fake_core_token_cae(fc, &c, ALICE, ALICE_UID, 1, DOC_JSON);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 400, mfa, -1), 0);
	ASSERT_EQ(fake_core_idp_sent(fc, FAKE_DEVICE), 2);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_DEVICE, 200,
		      fake_core_device_body(fc, 900, 5), -1),
	    0);
	ASSERT_STREQ(fake_core_code(&c), "consent_required");
	fake_core_call_done(&c);
	/* The flow's polls carry the challenge (not cp1: its token is
	 * cached as an ordinary one). */
	fake_core_advance(fc, 5);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_POLL), 1);
	ASSERT_STREQ(fake_core_idp_poll_claims(fc), DOC_JSON);
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_POLL, 200,
		      fake_core_token_body(fc, "AT-signed-in", "RT-9", 3600,
			  ALICE_OID, "alice@contoso.com"),
		      -1),
	    0);
	/* The new sign-in reopens the window: the same challenge refreshes
	 * again at once (with the new refresh token). */
	fake_core_token_cae(fc, &c, ALICE, ALICE_UID, 1, DOC_JSON);
	ASSERT_EQ(fake_core_idp_waiting(fc, FAKE_REFRESH), 1);
	ASSERT_STREQ(fake_core_idp_refresh_token(fc), "RT-9");
	ASSERT_EQ(fake_core_idp_answer(fc, FAKE_REFRESH, 200,
		      body(fc, "AT-after"), -1),
	    0);
	ASSERT_STREQ(fake_core_field(&c, "access_token"), "AT-after");
	fake_core_call_done(&c);
	fake_core_free(fc);
}

int
main(void)
{
	RUN(parse_base64_and_json);
	RUN(parse_refuses_clearly);
	RUN(merge_as_msal);
	RUN(keys);
	RUN(marks_window);
	RUN(cae_token_cached_apart);
	RUN(cae_without_capability_is_ordinary);
	RUN(challenge_bypasses_cache_coalesces_and_limits);
	RUN(failed_challenge_refresh_never_serves_stale);
	RUN(challenge_needing_interaction_starts_sign_in);
	TEST_MAIN_END();
}
