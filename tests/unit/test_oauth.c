/*
 * test_oauth.c - oauth*.c against canned replies: the error catalogue of
 * the reference (section 3) and the device-flow errors, token and
 * devicecode parsing, id_token claims, scope resources, form encoding.
 * No network.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"
#include "http.h"
#include "oauth.h"
#include "test.h"

#define CLIENT "11111111-2222-3333-4444-555555555555"
#define TENANT "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

struct err_case {
	const char *what;
	long status;
	const char *body; /* NULL: network failure */
	int64_t retry_after;
	enum oauth_class cls;
	int is_throttled;
};

#define E400(err, code)                                                        \
	"{\"error\":\"" err "\",\"error_description\":\"AADSTS" #code          \
	": text about user@contoso.com\",\"error_codes\":[" #code "],"         \
	"\"trace_id\":\"t-1\",\"correlation_id\":\"c-1\"}"
#define E400S(err, sub, code)                                                  \
	"{\"error\":\"" err "\",\"suberror\":\"" sub                           \
	"\",\"error_codes\":[" #code "]}"

static const struct err_case err_cases[] = {
	/* REAUTH: the refresh token is dead. */
	{ "70008", 400, E400("invalid_grant", 70008), -1, OAUTH_REAUTH, 0 },
	{ "700082", 400, E400("invalid_grant", 700082), -1, OAUTH_REAUTH, 0 },
	{ "700084", 400, E400("invalid_grant", 700084), -1, OAUTH_REAUTH, 0 },
	{ "70043", 400, E400("invalid_grant", 70043), -1, OAUTH_REAUTH, 0 },
	{ "50173", 400, E400("invalid_grant", 50173), -1, OAUTH_REAUTH, 0 },
	{ "50132", 400, E400("invalid_grant", 50132), -1, OAUTH_REAUTH, 0 },
	{ "50133", 400, E400("invalid_grant", 50133), -1, OAUTH_REAUTH, 0 },
	{ "invalid_grant, no codes (generic OP)", 400,
	    "{\"error\":\"invalid_grant\"}", -1, OAUTH_REAUTH, 0 },
	/* CONSENT / MFA for one resource. */
	{ "50076", 400, E400S("invalid_grant", "basic_action", 50076), -1,
	    OAUTH_CONSENT, 0 },
	{ "50078", 400, E400S("invalid_grant", "basic_action", 50078), -1,
	    OAUTH_CONSENT, 0 },
	{ "65001", 400, E400S("invalid_grant", "consent_required", 65001), -1,
	    OAUTH_CONSENT, 0 },
	{ "consent_required suberror, unknown code", 400,
	    E400S("invalid_grant", "consent_required", 12345), -1,
	    OAUTH_CONSENT, 0 },
	{ "additional_action, no code", 400,
	    "{\"error\":\"invalid_grant\",\"suberror\":\"additional_action\"}",
	    -1, OAUTH_CONSENT, 0 },
	{ "interaction_required, no code", 400,
	    "{\"error\":\"interaction_required\"}", -1, OAUTH_CONSENT, 0 },
	{ "invalid_grant, unknown code (50126)", 400,
	    E400("invalid_grant", 50126), -1, OAUTH_CONSENT, 0 },
	/* POLICY: keep the refresh token. */
	{ "53003", 400, E400("invalid_grant", 53003), -1, OAUTH_POLICY, 0 },
	{ "50079", 400, E400("interaction_required", 50079), -1, OAUTH_POLICY,
	    0 },
	{ "protection_policy_required", 400,
	    E400S("invalid_grant", "protection_policy_required", 70008), -1,
	    OAUTH_POLICY, 0 },
	{ "client_mismatch", 400,
	    E400S("invalid_grant", "client_mismatch", 99999), -1, OAUTH_POLICY,
	    0 },
	/* ADMIN: misconfiguration. */
	{ "700016", 400, E400("unauthorized_client", 700016), -1, OAUTH_ADMIN,
	    0 },
	{ "7000215 (401)", 401, E400("invalid_client", 7000215), -1,
	    OAUTH_ADMIN, 0 },
	{ "7000222", 401, E400("invalid_client", 7000222), -1, OAUTH_ADMIN, 0 },
	{ "7000218", 400, E400("invalid_client", 7000218), -1, OAUTH_ADMIN, 0 },
	{ "700025", 400, E400("invalid_client", 700025), -1, OAUTH_ADMIN, 0 },
	{ "700027", 400, E400("invalid_client", 700027), -1, OAUTH_ADMIN, 0 },
	{ "50012", 400, E400("invalid_client", 50012), -1, OAUTH_ADMIN, 0 },
	{ "invalid_client without code (401)", 401,
	    "{\"error\":\"invalid_client\"}", -1, OAUTH_ADMIN, 0 },
	{ "28000", 400, E400("invalid_scope", 28000), -1, OAUTH_ADMIN, 0 },
	{ "700022", 400, E400("invalid_scope", 700022), -1, OAUTH_ADMIN, 0 },
	{ "70011", 400, E400("invalid_scope", 70011), -1, OAUTH_ADMIN, 0 },
	{ "500011", 400, E400("invalid_resource", 500011), -1, OAUTH_ADMIN, 0 },
	{ "unknown 4xx error", 400, "{\"error\":\"something_new\"}", -1,
	    OAUTH_ADMIN, 0 },
	{ "404 html", 404, "<html>not found</html>", -1, OAUTH_ADMIN, 0 },
	/* RETRY: transient. */
	{ "50196", 400, E400("invalid_request", 50196), -1, OAUTH_RETRY, 0 },
	{ "90055", 400, E400("invalid_request", 90055), -1, OAUTH_RETRY, 0 },
	{ "temporarily_unavailable 503", 503,
	    "{\"error\":\"temporarily_unavailable\"}", 7, OAUTH_RETRY, 0 },
	{ "temporarily_unavailable 400", 400,
	    "{\"error\":\"temporarily_unavailable\"}", -1, OAUTH_RETRY, 0 },
	{ "429 non-JSON", 429, "Too Many Requests", 60, OAUTH_RETRY, 1 },
	{ "429 JSON", 429, E400("invalid_grant", 70008), 5, OAUTH_RETRY, 1 },
	{ "500", 500, "oops", -1, OAUTH_RETRY, 0 },
	{ "503 empty", 503, "", 30, OAUTH_RETRY, 0 },
	{ "network", 0, NULL, -1, OAUTH_RETRY, 0 },
	{ "malformed 200", 200, "{\"access_token\":", -1, OAUTH_RETRY, 0 },
	{ "200 not an object", 200, "[1,2]", -1, OAUTH_RETRY, 0 },
	{ "200 without access_token", 200,
	    "{\"token_type\":\"Bearer\",\"expires_in\":3599}", -1, OAUTH_RETRY,
	    0 },
	{ "200 access_token not a string", 200, "{\"access_token\":42}", -1,
	    OAUTH_RETRY, 0 },
	{ "200 expires_in junk", 200,
	    "{\"access_token\":\"x\",\"expires_in\":\"soon\"}", -1, OAUTH_RETRY,
	    0 },
	{ "200 duplicate key", 200,
	    "{\"access_token\":\"x\",\"access_token\":\"y\"}", -1, OAUTH_RETRY,
	    0 },
	/* Device flow. */
	{ "authorization_pending", 400, E400("authorization_pending", 70016),
	    -1, OAUTH_PENDING, 0 },
	{ "slow_down", 400, "{\"error\":\"slow_down\"}", -1, OAUTH_SLOW_DOWN,
	    0 },
	{ "expired_token", 400, E400("expired_token", 70019), -1, OAUTH_EXPIRED,
	    0 },
	{ "authorization_declined", 400,
	    "{\"error\":\"authorization_declined\"}", -1, OAUTH_DECLINED, 0 },
	{ "access_denied", 400, "{\"error\":\"access_denied\"}", -1,
	    OAUTH_DECLINED, 0 },
	{ "bad_verification_code", 400, E400("bad_verification_code", 70018),
	    -1, OAUTH_BAD_CODE, 0 },
	/* error_codes as strings. */
	{ "error_codes as strings", 400,
	    "{\"error\":\"invalid_grant\",\"error_codes\":[\"junk\",\"700082\"]}",
	    -1, OAUTH_REAUTH, 0 },
};

static struct secret *
S(const char *s)
{
	return s != NULL ? secret_from_str(s) : NULL;
}

TEST(test_error_catalogue)
{
	size_t i;

	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		struct secret *b = S(c->body);
		struct oauth_token tok;
		struct oauth_error err;
		int r;

		r = oauth_parse_token(c->status, b, c->retry_after, &tok, &err);
		secret_free(b);
		if (r != -EPROTO)
			FAILF("%s: r = %d", c->what, r);
		if (tok.access_token != NULL)
			FAILF("%s: token filled", c->what);
		if (err.cls != c->cls)
			FAILF("%s: class %s, want %s", c->what,
			    oauth_class_name(err.cls),
			    oauth_class_name(c->cls));
		if (err.is_throttled != c->is_throttled)
			FAILF("%s: is_throttled %d", c->what, err.is_throttled);
		if (err.retry_after != c->retry_after)
			FAILF("%s: retry_after %lld", c->what,
			    (long long)err.retry_after);
		if (err.reason[0] == '\0')
			FAILF("%s: empty reason", c->what);
		if (strstr(err.reason, "contoso") != NULL ||
		    strstr(err.reason, "text") != NULL)
			FAILF("%s: description leaked into reason", c->what);
	}
}

TEST(test_error_fields)
{
	struct secret *b = S(
	    "{\"error\":\"invalid_grant\","
	    "\"suberror\":\"basic_action\","
	    "\"error_description\":\"AADSTS50076: alice@contoso.com must MFA\","
	    "\"error_codes\":[50076, 50079],"
	    "\"trace_id\":\"0aaa7d90-0000-4000-8000-000000000001\","
	    "\"correlation_id\":\"eb217b32-0000-4000-8000-000000000002\"}");
	struct oauth_token tok;
	struct oauth_error err;

	ASSERT_ERR(oauth_parse_token(400, b, -1, &tok, &err), -EPROTO);
	secret_free(b);
	ASSERT_EQ(err.cls, OAUTH_CONSENT);
	ASSERT_EQ(err.http_status, 400);
	ASSERT_STREQ(err.error, "invalid_grant");
	ASSERT_STREQ(err.suberror, "basic_action");
	ASSERT_EQ(err.ncodes, 2);
	ASSERT_EQ(err.codes[0], 50076);
	ASSERT_EQ(err.codes[1], 50079);
	ASSERT_STREQ(err.trace_id, "0aaa7d90-0000-4000-8000-000000000001");
	ASSERT_STREQ(err.correlation_id,
	    "eb217b32-0000-4000-8000-000000000002");
	ASSERT_STREQ(err.reason, "invalid_grant basic_action AADSTS50076");
}

TEST(test_error_reasons)
{
	struct oauth_token tok;
	struct oauth_error err;
	struct secret *b;

	ASSERT_ERR(oauth_parse_token(0, NULL, -1, &tok, &err), -EPROTO);
	ASSERT_STREQ(err.reason, "network error");
	b = S("{}");
	ASSERT_ERR(oauth_parse_token(200, b, -1, &tok, &err), -EPROTO);
	secret_free(b);
	ASSERT_STREQ(err.reason, "malformed response");
	ASSERT_EQ(err.cls, OAUTH_RETRY);
	b = S("busy");
	ASSERT_ERR(oauth_parse_token(429, b, 60, &tok, &err), -EPROTO);
	secret_free(b);
	ASSERT_STREQ(err.reason, "HTTP 429");
	ASSERT_EQ(err.retry_after, 60);
	/* Control bytes in IdP identifiers do not reach the logs. */
	b = S("{\"error\":\"bad\\u001b[2Jname\",\"trace_id\":\"a b\"}");
	ASSERT_ERR(oauth_parse_token(400, b, -1, &tok, &err), -EPROTO);
	secret_free(b);
	ASSERT_STREQ(err.error, "bad??2Jname");
	ASSERT_STREQ(err.trace_id, "a?b");
	ASSERT_EQ(err.cls, OAUTH_ADMIN);
}

TEST(test_classify_direct)
{
	struct oauth_error err = { 0 };

	err.http_status = 400;
	snprintf(err.error, sizeof(err.error), "invalid_grant");
	err.codes[0] = 700082;
	err.ncodes = 1;
	oauth_classify(&err);
	ASSERT_EQ(err.cls, OAUTH_REAUTH);
	ASSERT_STREQ(err.reason, "invalid_grant AADSTS700082");
	ASSERT_STREQ(oauth_class_name(OAUTH_POLICY), "policy");
	ASSERT_STREQ(oauth_class_name(OAUTH_CLASS_COUNT), "unknown");
}

TEST(test_token_full)
{
	struct secret *b = S(
	    "{\"token_type\":\"Bearer\",\"scope\":\"https://storage.azure.com/user_impersonation\","
	    "\"expires_in\":3599,\"ext_expires_in\":3599,\"refresh_in\":1800,"
	    "\"access_token\":\"eyJ0eXAi.AT\",\"refresh_token\":\"0.ARwA-RT\","
	    "\"id_token\":\"h.p.s\",\"client_info\":\"eyJ1aWQiOiJ4In0\"}");
	struct oauth_token tok;
	struct oauth_error err;

	ASSERT_EQ(oauth_parse_token(200, b, -1, &tok, &err), 0);
	secret_free(b);
	ASSERT_EQ(err.cls, OAUTH_OK);
	ASSERT_STREQ(tok.access_token->ptr, "eyJ0eXAi.AT");
	ASSERT_TRUE(tok.refresh_token != NULL);
	ASSERT_STREQ(tok.refresh_token->ptr, "0.ARwA-RT");
	ASSERT_TRUE(tok.id_token != NULL);
	ASSERT_STREQ(tok.id_token->ptr, "h.p.s");
	ASSERT_STREQ(tok.token_type, "Bearer");
	ASSERT_EQ(tok.expires_in, 3599);
	ASSERT_EQ(tok.ext_expires_in, 3599);
	ASSERT_EQ(tok.refresh_in, 1800);
	ASSERT_STREQ(tok.scope, "https://storage.azure.com/user_impersonation");
	oauth_token_clear(&tok);
	ASSERT_TRUE(tok.access_token == NULL);
	oauth_token_clear(&tok); /* twice is fine */
}

TEST(test_token_minimal)
{
	struct secret *b = S("{\"access_token\":\"AT\"}");
	struct oauth_token tok;
	struct oauth_error err;

	ASSERT_EQ(oauth_parse_token(200, b, -1, &tok, &err), 0);
	secret_free(b);
	ASSERT_STREQ(tok.access_token->ptr, "AT");
	ASSERT_TRUE(tok.refresh_token == NULL);
	ASSERT_TRUE(tok.id_token == NULL);
	ASSERT_TRUE(tok.scope == NULL);
	ASSERT_STREQ(tok.token_type, "Bearer");
	ASSERT_EQ(tok.expires_in, 600);
	ASSERT_EQ(tok.ext_expires_in, -1);
	ASSERT_EQ(tok.refresh_in, -1);
	oauth_token_clear(&tok);
}

TEST(test_token_strings)
{
	/* v1-like endpoints send numbers as strings. */
	struct secret *b =
	    S("{\"access_token\":\"AT\",\"token_type\":\"bearer\","
	      "\"expires_in\":\"3599\",\"ext_expires_in\":\"5144\","
	      "\"refresh_in\":\"1799\",\"refresh_token\":null}");
	struct oauth_token tok;
	struct oauth_error err;

	ASSERT_EQ(oauth_parse_token(200, b, -1, &tok, &err), 0);
	secret_free(b);
	ASSERT_EQ(tok.expires_in, 3599);
	ASSERT_EQ(tok.ext_expires_in, 5144);
	ASSERT_EQ(tok.refresh_in, 1799);
	ASSERT_STREQ(tok.token_type, "bearer");
	ASSERT_TRUE(tok.refresh_token == NULL);
	oauth_token_clear(&tok);

	b = S("{\"access_token\":\"AT\",\"expires_in\":-5}");
	ASSERT_ERR(oauth_parse_token(200, b, -1, &tok, &err), -EPROTO);
	secret_free(b);
	ASSERT_EQ(err.cls, OAUTH_RETRY);
	ASSERT_TRUE(tok.access_token == NULL);
}

TEST(test_device)
{
	struct secret *b =
	    S("{\"device_code\":\"HAQABAAEAAAD--DLA3VO7Qrdd\","
	      "\"user_code\":\"YZMYLD4K\","
	      "\"verification_uri\":\"https://www.microsoft.com/link\","
	      "\"expires_in\":900,\"interval\":5,"
	      "\"message\":\"To sign in, use a web browser.\"}");
	struct oauth_device dev;
	struct oauth_error err;

	ASSERT_EQ(oauth_parse_device(200, b, -1, &dev, &err), 0);
	secret_free(b);
	ASSERT_STREQ(dev.device_code->ptr, "HAQABAAEAAAD--DLA3VO7Qrdd");
	ASSERT_STREQ(dev.user_code, "YZMYLD4K");
	ASSERT_STREQ(dev.verification_uri, "https://www.microsoft.com/link");
	ASSERT_STREQ(dev.message, "To sign in, use a web browser.");
	ASSERT_EQ(dev.expires_in, 900);
	ASSERT_EQ(dev.interval, 5);
	oauth_device_clear(&dev);

	/* v1 spelling, strings for numbers, defaults, no message. */
	b = S("{\"device_code\":\"DC\",\"user_code\":\"ABC\","
	      "\"verification_url\":\"https://microsoft.com/devicelogin\","
	      "\"interval\":\"7\"}");
	ASSERT_EQ(oauth_parse_device(200, b, -1, &dev, &err), 0);
	secret_free(b);
	ASSERT_STREQ(dev.verification_uri, "https://microsoft.com/devicelogin");
	ASSERT_TRUE(dev.message == NULL);
	ASSERT_EQ(dev.expires_in, 900);
	ASSERT_EQ(dev.interval, 7);
	oauth_device_clear(&dev);

	b = S("{\"device_code\":\"DC\",\"user_code\":\"ABC\","
	      "\"verification_uri\":\"https://x\"}");
	ASSERT_EQ(oauth_parse_device(200, b, -1, &dev, &err), 0);
	secret_free(b);
	ASSERT_EQ(dev.interval, 5);
	oauth_device_clear(&dev);
}

TEST(test_device_errors)
{
	static const char *const bad[] = {
		"{\"user_code\":\"ABC\",\"verification_uri\":\"https://x\"}",
		"{\"device_code\":\"DC\",\"verification_uri\":\"https://x\"}",
		"{\"device_code\":\"DC\",\"user_code\":\"ABC\"}",
		"{\"device_code\":\"DC\",\"user_code\":\"A\\u001b[1m\","
		"\"verification_uri\":\"https://x\"}",
		"{\"device_code\":\"DC\",\"user_code\":\"ABC\","
		"\"verification_uri\":\"https://x\",\"interval\":\"fast\"}",
		"not json",
	};
	struct oauth_device dev;
	struct oauth_error err;
	struct secret *b;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = S(bad[i]);
		ASSERT_ERR(oauth_parse_device(200, b, -1, &dev, &err), -EPROTO);
		secret_free(b);
		ASSERT_EQ(err.cls, OAUTH_RETRY);
		ASSERT_STREQ(err.reason, "malformed response");
		ASSERT_TRUE(dev.device_code == NULL && dev.user_code == NULL);
	}
	b = S(E400("invalid_client", 7000218));
	ASSERT_ERR(oauth_parse_device(401, b, -1, &dev, &err), -EPROTO);
	secret_free(b);
	ASSERT_EQ(err.cls, OAUTH_ADMIN);
	b = S("Too Many Requests");
	ASSERT_ERR(oauth_parse_device(429, b, 60, &dev, &err), -EPROTO);
	secret_free(b);
	ASSERT_EQ(err.cls, OAUTH_RETRY);
	ASSERT_EQ(err.is_throttled, 1);
	ASSERT_EQ(err.retry_after, 60);
}

/* --- id_token ---------------------------------------------------------- */

static void
b64url(const char *in, char *out)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t len = strlen(in), i, o = 0;
	const unsigned char *p = (const unsigned char *)in;

	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = a[p[i] >> 2];
		out[o++] = a[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		out[o++] = a[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		out[o++] = a[p[i + 2] & 63];
	}
	if (len - i == 1) {
		out[o++] = a[p[i] >> 2];
		out[o++] = a[(p[i] & 3) << 4];
	} else if (len - i == 2) {
		out[o++] = a[p[i] >> 2];
		out[o++] = a[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		out[o++] = a[(p[i + 1] & 15) << 2];
	}
	out[o] = '\0';
}

static struct secret *
make_jwt(const char *payload)
{
	char h[128], p[2048], jwt[4096];

	b64url("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", h);
	b64url(payload, p);
	snprintf(jwt, sizeof(jwt), "%s.%s.c2lnbmF0dXJl", h, p);
	return secret_from_str(jwt);
}

TEST(test_id_token)
{
	struct oauth_account a;
	struct secret *t;

	t = make_jwt(
	    "{\"aud\":\"" CLIENT
	    "\",\"iss\":\"https://login.microsoftonline.com/" TENANT "/v2.0\","
	    "\"tid\":\"" TENANT
	    "\",\"oid\":\"00000000-0000-0000-0000-0000000000aa\","
	    "\"preferred_username\":\"alice@contoso.com\",\"name\":\"Alice\"}");
	ASSERT_EQ(oauth_id_token_account(t, CLIENT, TENANT, &a), 0);
	secret_free(t);
	ASSERT_STREQ(a.oid, "00000000-0000-0000-0000-0000000000aa");
	ASSERT_STREQ(a.tid, TENANT);
	ASSERT_STREQ(a.preferred_username, "alice@contoso.com");
	ASSERT_TRUE(a.upn == NULL);
	oauth_account_clear(&a);

	/* upn, aud as an array, upper-case config GUIDs; payload lengths vary padding. */
	t = make_jwt("{\"aud\":[\"x\",\"" CLIENT "\"],\"tid\":\"" TENANT "\","
		     "\"oid\":\"o1\",\"upn\":\"bob@contoso.com\"}");
	ASSERT_EQ(oauth_id_token_account(t,
		      "11111111-2222-3333-4444-555555555555",
		      "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE", &a),
	    0);
	secret_free(t);
	ASSERT_STREQ(a.upn, "bob@contoso.com");
	ASSERT_TRUE(a.preferred_username == NULL);
	oauth_account_clear(&a);

	/* iss is read (flow.c compares it with the discovered issuer). */
	t = make_jwt("{\"aud\":\"" CLIENT "\",\"tid\":\"" TENANT "\","
		     "\"oid\":\"o1\",\"iss\":\"https://idp/" TENANT "/v2.0\"}");
	ASSERT_EQ(oauth_id_token_account(t, CLIENT, TENANT, &a), 0);
	secret_free(t);
	ASSERT_STREQ(a.iss, "https://idp/" TENANT "/v2.0");
	oauth_account_clear(&a);
}

/* A generic OpenID provider's id_token: sub is the account, no tid. */
TEST(test_id_token_generic)
{
	struct oauth_account a;
	struct secret *t;

	t = make_jwt("{\"aud\":\"" CLIENT "\",\"iss\":\"https://kc/realms/r\","
		     "\"sub\":\"f1e2\",\"email\":\"carol@example.org\"}");
	ASSERT_EQ(oauth_id_token_account(t, CLIENT, NULL, &a), 0);
	secret_free(t);
	ASSERT_STREQ(a.oid, "f1e2");
	ASSERT_TRUE(a.tid == NULL);
	ASSERT_STREQ(a.preferred_username, "carol@example.org");
	ASSERT_STREQ(a.iss, "https://kc/realms/r");
	oauth_account_clear(&a);
	t = make_jwt("{\"aud\":\"" CLIENT "\",\"sub\":\"s\","
		     "\"preferred_username\":\"carol\",\"email\":\"c@x\"}");
	ASSERT_EQ(oauth_id_token_account(t, CLIENT, NULL, &a), 0);
	secret_free(t);
	ASSERT_STREQ(a.preferred_username, "carol");
	oauth_account_clear(&a);
	/* No sub, or another audience: refused. */
	t = make_jwt("{\"aud\":\"" CLIENT "\",\"oid\":\"o\"}");
	ASSERT_ERR(oauth_id_token_account(t, CLIENT, NULL, &a), -EBADMSG);
	secret_free(t);
	t = make_jwt("{\"aud\":\"x\",\"sub\":\"s\"}");
	ASSERT_ERR(oauth_id_token_account(t, CLIENT, NULL, &a), -EBADMSG);
	secret_free(t);
}

TEST(test_id_token_rejects)
{
	static const char *const bad[] = {
		/* wrong audience */
		"{\"aud\":\"99999999-2222-3333-4444-555555555555\",\"tid\":\"" TENANT
		"\",\"oid\":\"o\"}",
		/* wrong tenant */
		"{\"aud\":\"" CLIENT
		"\",\"tid\":\"ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee\",\"oid\":\"o\"}",
		/* no oid */
		"{\"aud\":\"" CLIENT "\",\"tid\":\"" TENANT "\"}",
		/* no aud */
		"{\"tid\":\"" TENANT "\",\"oid\":\"o\"}",
		/* oid not a string */
		"{\"aud\":\"" CLIENT "\",\"tid\":\"" TENANT "\",\"oid\":5}",
		/* not an object */
		"[\"" CLIENT "\"]",
	};
	static const char *const junk[] = {
		"",
		"abc",
		"a.b",
		"a.b.c.d",
		"a.!!!.c",
		"a..c",
	};
	struct oauth_account a;
	struct secret *t;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = make_jwt(bad[i]);
		ASSERT_ERR(oauth_id_token_account(t, CLIENT, TENANT, &a),
		    -EBADMSG);
		secret_free(t);
		ASSERT_TRUE(a.oid == NULL && a.tid == NULL);
	}
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		t = S(junk[i]);
		ASSERT_ERR(oauth_id_token_account(t, CLIENT, TENANT, &a),
		    -EBADMSG);
		secret_free(t);
	}
}

/* --- scopes, URLs, forms ----------------------------------------------- */

TEST(test_scope_resource)
{
	static const struct {
		const char *scope, *res;
	} cases[] = {
		{ "https://storage.azure.com/.default",
		    "https://storage.azure.com" },
		{ "https://management.azure.com//.default",
		    "https://management.azure.com/" },
		{ "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
		    "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d" },
		{ "User.Read", "https://graph.microsoft.com" },
		{ "https://storage.azure.com/user_impersonation",
		    "https://storage.azure.com" },
		{ "openid profile offline_access https://vault.azure.net/.default",
		    "https://vault.azure.net" },
		{ "openid profile", "https://graph.microsoft.com" },
		{ "api://my-api/access", "api://my-api" },
		{ "https://database.windows.net",
		    "https://database.windows.net" },
	};
	char dst[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT_EQ(oauth_scope_resource(cases[i].scope, dst,
			      sizeof(dst)),
		    0);
		ASSERT_STREQ(dst, cases[i].res);
	}
	ASSERT_ERR(oauth_scope_resource("/.default", dst, sizeof(dst)),
	    -EINVAL);
	ASSERT_ERR(oauth_scope_resource("https://storage.azure.com/.default",
		       dst, 10),
	    -ENAMETOOLONG);
	ASSERT_STREQ(dst, "");
}

TEST(test_urls)
{
	char u[256];

	ASSERT_EQ(oauth_url_token("https://login.microsoftonline.com", TENANT,
		      u, sizeof(u)),
	    0);
	ASSERT_STREQ(u,
	    "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token");
	ASSERT_EQ(oauth_url_devicecode("https://127.0.0.1:8443/", TENANT, u,
		      sizeof(u)),
	    0);
	ASSERT_STREQ(u,
	    "https://127.0.0.1:8443/" TENANT "/oauth2/v2.0/devicecode");
	ASSERT_ERR(oauth_url_token("https://h", "a/b", u, sizeof(u)), -EINVAL);
	ASSERT_ERR(oauth_url_token("https://h", "a?b", u, sizeof(u)), -EINVAL);
	ASSERT_ERR(oauth_url_token("https://h", "", u, sizeof(u)), -EINVAL);
	ASSERT_ERR(oauth_url_token("https://login.microsoftonline.com", TENANT,
		       u, 20),
	    -ENAMETOOLONG);
}

TEST(test_form_encoding)
{
	struct secret *f = NULL;

	ASSERT_EQ(http_form_add(&f, "a", "x y&z=1+2/3?%#~-._"), 0);
	ASSERT_STREQ(f->ptr, "a=x%20y%26z%3D1%2B2%2F3%3F%25%23~-._");
	ASSERT_EQ(http_form_add(&f, "k e", "\xc3\xa9"), 0);
	ASSERT_STREQ(f->ptr,
	    "a=x%20y%26z%3D1%2B2%2F3%3F%25%23~-._&k%20e=%C3%A9");
	ASSERT_EQ(f->len, strlen(f->ptr));
	ASSERT_EQ(http_form_add(&f, "empty", ""), 0);
	ASSERT_STREQ(strrchr(f->ptr, '&'), "&empty=");
	ASSERT_ERR(http_form_add(&f, NULL, "v"), -EINVAL);
	secret_free(f);
}

TEST(test_forms)
{
	struct secret *dc = S("DC+/=code");
	struct secret *rt = S("0.RT&x=y");
	struct secret *cs = S("s3cr~t=");
	struct secret *f;

	ASSERT_EQ(
	    oauth_form_devicecode(CLIENT,
		"openid profile offline_access https://storage.azure.com/.default",
		&f),
	    0);
	ASSERT_STREQ(f->ptr,
	    "client_id=" CLIENT
	    "&scope=openid%20profile%20offline_access%20https%3A%2F%2Fstorage.azure.com%2F.default");
	secret_free(f);

	ASSERT_EQ(oauth_form_device_poll(CLIENT, dc, NULL, &f), 0);
	ASSERT_STREQ(f->ptr,
	    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
	    "&client_id=" CLIENT "&device_code=DC%2B%2F%3Dcode&client_info=1");
	secret_free(f);
	ASSERT_EQ(oauth_form_device_poll(CLIENT, dc, cs, &f), 0);
	ASSERT_TRUE(strstr(f->ptr, "&client_secret=s3cr~t%3D") != NULL);
	secret_free(f);

	ASSERT_EQ(oauth_form_refresh(CLIENT, rt,
		      "https://storage.azure.com/.default offline_access", NULL,
		      &f),
	    0);
	ASSERT_STREQ(f->ptr,
	    "grant_type=refresh_token&client_id=" CLIENT
	    "&refresh_token=0.RT%26x%3Dy"
	    "&scope=https%3A%2F%2Fstorage.azure.com%2F.default%20offline_access"
	    "&client_info=1");
	secret_free(f);
	ASSERT_EQ(oauth_form_refresh(CLIENT, rt, "s", cs, &f), 0);
	ASSERT_TRUE(strstr(f->ptr, "&client_secret=s3cr~t%3D") != NULL);
	secret_free(f);
	ASSERT_ERR(oauth_form_refresh(CLIENT, NULL, "s", NULL, &f), -EINVAL);
	ASSERT_TRUE(f == NULL);

	/* A client assertion (certificate or federated) after the rest. */
	ASSERT_EQ(oauth_form_refresh(CLIENT, rt, "s", NULL, &f), 0);
	ASSERT_ERR(oauth_form_add_assertion(&f, NULL), -EINVAL);
	ASSERT_EQ(oauth_form_add_assertion(&f, dc), 0);
	ASSERT_STREQ(f->ptr,
	    "grant_type=refresh_token&client_id=" CLIENT
	    "&refresh_token=0.RT%26x%3Dy&scope=s&client_info=1"
	    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
	    "assertion-type%3Ajwt-bearer&client_assertion=DC%2B%2F%3Dcode");
	secret_free(f);
	/* Never beside a secret. */
	ASSERT_EQ(oauth_form_refresh(CLIENT, rt, "s", cs, &f), 0);
	ASSERT_ERR(oauth_form_add_assertion(&f, dc), -EINVAL);
	ASSERT_TRUE(strstr(f->ptr, "client_assertion") == NULL);
	secret_free(f);
	f = NULL;
	ASSERT_ERR(oauth_form_add_assertion(&f, dc), -EINVAL);

	/* The authorization_code grant with its PKCE verifier. */
	ASSERT_EQ(oauth_form_authcode(CLIENT, rt, cs,
		      "https://login.microsoftonline.com/common/oauth2/"
		      "nativeclient",
		      "openid offline_access", &f),
	    0);
	ASSERT_STREQ(f->ptr,
	    "grant_type=authorization_code&client_id=" CLIENT
	    "&code=0.RT%26x%3Dy&code_verifier=s3cr~t%3D"
	    "&redirect_uri=https%3A%2F%2Flogin.microsoftonline.com%2Fcommon"
	    "%2Foauth2%2Fnativeclient&scope=openid%20offline_access"
	    "&client_info=1");
	secret_free(f);
	ASSERT_ERR(oauth_form_authcode(CLIENT, rt, NULL, "r", "s", &f),
	    -EINVAL);
	ASSERT_TRUE(f == NULL);

	secret_free(dc);
	secret_free(rt);
	secret_free(cs);
}

int
main(void)
{
	RUN(test_error_catalogue);
	RUN(test_error_fields);
	RUN(test_error_reasons);
	RUN(test_classify_direct);
	RUN(test_token_full);
	RUN(test_token_minimal);
	RUN(test_token_strings);
	RUN(test_device);
	RUN(test_device_errors);
	RUN(test_id_token);
	RUN(test_id_token_rejects);
	RUN(test_id_token_generic);
	RUN(test_scope_resource);
	RUN(test_urls);
	RUN(test_form_encoding);
	RUN(test_forms);
	TEST_MAIN_END();
}
