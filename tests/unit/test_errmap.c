/*
 * test_errmap.c - credd's one error space (errmap.h): every errno the
 * code answers with maps to the wire code docs/protocol.md documents and
 * to the SDK endpoint's HTTP status; anything else is internal / 500;
 * an internal reply names its cause; the IdP's error classes map onto
 * the same errno values, with retry_after, reason and Entra's ids.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/util.h"

#include "errmap.h"
#include "oauth.h"
#include "test.h"

static const struct {
	int err;
	const char *code;
	unsigned status;
} want[] = {
	{ -EACCES, "forbidden", 403 },
	{ -EBADMSG, "bad_request", 400 },
	{ -EMSGSIZE, "too_large", 500 },
	{ -EPROTONOSUPPORT, "unsupported_version", 500 },
	{ -EDOM, "unknown_scope", 400 },
	{ -ENOKEY, "consent_required", 401 },
	{ -EINPROGRESS, "consent_pending", 401 },
	{ -ECANCELED, "consent_declined", 401 },
	{ -EKEYREJECTED, "account_mismatch", 403 },
	{ -EKEYEXPIRED, "reauth_required", 401 },
	{ -EKEYREVOKED, "reauth_required", 401 },
	{ -EPERM, "policy_blocked", 403 },
	{ -EBUSY, "rate_limited", 429 },
	{ -EHOSTUNREACH, "idp_unavailable", 503 },
	{ -EREMOTEIO, "idp_misconfigured", 500 },
	{ -ECONNREFUSED, "unavailable", 503 },
	/* Answered as internal (resource failures, broken invariants). */
	{ -ENOMEM, "internal", 500 },
	{ -EIO, "internal", 500 },
	{ -EINVAL, "internal", 500 },
	{ 0, "internal", 500 },
	{ 12345, "internal", 500 },
};

TEST(test_codes_and_statuses)
{
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ASSERT_STREQ(errmap_code(want[i].err), want[i].code);
		ASSERT_EQ(errmap_http_status(want[i].code), want[i].status);
	}
	ASSERT_EQ(errmap_http_status("no_such_code"), 500);
	ASSERT_EQ(errmap_http_status(""), 500);
}

/* Every code errmap can answer is a row of docs/protocol.md's table. */
TEST(test_codes_documented)
{
	char path[4096], *doc, row[64], *cut;
	const char *dir = getenv("TEST_DATA_DIR");
	FILE *f;
	long n;
	size_t i;

	/* TEST_DATA_DIR is SRC/tests/data (which need not exist). */
	snprintf(path, sizeof(path), "%s", dir != NULL ? dir : "tests/data");
	cut = strstr(path, "tests/data");
	if (cut != NULL)
		*cut = '\0';
	snprintf(path + strlen(path), sizeof(path) - strlen(path),
	    "docs/protocol.md");
	f = fopen(path, "r");
	ASSERT_TRUE(f != NULL);
	ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	doc = calloc(1, (size_t)n + 1);
	ASSERT_TRUE(doc != NULL);
	ASSERT_EQ(fread(doc, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(row, sizeof(row), "| `%s` |",
		    errmap_code(want[i].err));
		if (strstr(doc, row) == NULL) {
			free(doc);
			FAILF("%s is not in docs/protocol.md", row);
		}
	}
	free(doc);
}

TEST(test_error_reply)
{
	json_t *o = errmap_error(-EDOM, "unknown scope");
	json_t *e = proto_error_obj(o);

	ASSERT_TRUE(o != NULL && e != NULL);
	ASSERT_TRUE(json_is_false(json_object_get(o, "ok")));
	ASSERT_STREQ(proto_response_error(o), "unknown_scope");
	ASSERT_STREQ(json_string_value(json_object_get(e, "message")),
	    "unknown scope");
	json_decref(o);
	/* internal names its cause */
	o = errmap_error(-ENOMEM, "out of memory");
	e = proto_error_obj(o);
	ASSERT_STREQ(proto_response_error(o), "internal");
	ASSERT_STREQ(json_string_value(json_object_get(e, "message")),
	    "out of memory (Cannot allocate memory)");
	json_decref(o);
	o = errmap_error(-EIO, NULL);
	ASSERT_STREQ(proto_response_error(o), "internal");
	json_decref(o);
}

TEST(test_idp_errno)
{
	struct oauth_error e = { 0 };

	e.cls = OAUTH_REAUTH;
	ASSERT_ERR(errmap_idp_errno(&e), -EKEYEXPIRED);
	e.cls = OAUTH_CONSENT;
	ASSERT_ERR(errmap_idp_errno(&e), -ENOKEY);
	e.cls = OAUTH_POLICY;
	ASSERT_ERR(errmap_idp_errno(&e), -EPERM);
	e.cls = OAUTH_DECLINED;
	ASSERT_ERR(errmap_idp_errno(&e), -ECANCELED);
	e.cls = OAUTH_ADMIN;
	ASSERT_ERR(errmap_idp_errno(&e), -EREMOTEIO);
	e.cls = OAUTH_RETRY;
	ASSERT_ERR(errmap_idp_errno(&e), -EHOSTUNREACH);
	e.is_throttled = 1;
	ASSERT_ERR(errmap_idp_errno(&e), -EBUSY);
	e.is_local = 1;
	ASSERT_ERR(errmap_idp_errno(&e), -ECONNREFUSED);
}

TEST(test_idp_error_reply)
{
	struct oauth_error e = { 0 };
	json_t *o, *obj;

	e.cls = OAUTH_RETRY;
	e.retry_after = -1;
	snprintf(e.trace_id, sizeof(e.trace_id), "t-1");
	o = errmap_idp_error(&e, 0, util_now());
	obj = proto_error_obj(o);
	ASSERT_STREQ(proto_response_error(o), "idp_unavailable");
	ASSERT_EQ(json_integer_value(json_object_get(obj, "retry_after")), 5);
	ASSERT_STREQ(json_string_value(json_object_get(obj, "trace_id")),
	    "t-1");
	ASSERT_TRUE(json_object_get(obj, "correlation_id") == NULL);
	json_decref(o);
	/* The tenant breaker, or Retry-After, when longer. */
	o = errmap_idp_error(&e, util_now() + 100, util_now());
	obj = proto_error_obj(o);
	ASSERT_TRUE(
	    json_integer_value(json_object_get(obj, "retry_after")) >= 99);
	json_decref(o);
	e.retry_after = 1000;
	o = errmap_idp_error(&e, util_now() + 100, util_now());
	obj = proto_error_obj(o);
	ASSERT_EQ(json_integer_value(json_object_get(obj, "retry_after")),
	    1000);
	json_decref(o);
	memset(&e, 0, sizeof(e));
	e.cls = OAUTH_POLICY;
	snprintf(e.reason, sizeof(e.reason), "AADSTS53003");
	o = errmap_idp_error(&e, 0, util_now());
	obj = proto_error_obj(o);
	ASSERT_STREQ(proto_response_error(o), "policy_blocked");
	ASSERT_STREQ(json_string_value(json_object_get(obj, "reason")),
	    "AADSTS53003");
	ASSERT_TRUE(json_object_get(obj, "retry_after") == NULL);
	json_decref(o);
}

/* Entra refusing the app credential: idp_misconfigured with what to fix. */
TEST(test_client_auth_hints)
{
	static const struct {
		long code;
		const char *hint;
	} t[] = {
		{ 700025, "public client" },
		{ 7000218, "requires a client credential" },
		{ 700027, "client assertion" },
	};
	struct oauth_error e = { 0 };
	json_t *o;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&e, 0, sizeof(e));
		snprintf(e.error, sizeof(e.error), "invalid_client");
		e.codes[0] = t[i].code;
		e.ncodes = 1;
		e.http_status = 401;
		oauth_classify(&e);
		ASSERT_EQ(e.cls, OAUTH_ADMIN);
		o = errmap_idp_error(&e, 0, util_now());
		ASSERT_STREQ(proto_response_error(o), "idp_misconfigured");
		ASSERT_TRUE(
		    strstr(json_string_value(
			       json_object_get(proto_error_obj(o), "message")),
			t[i].hint) != NULL);
		json_decref(o);
	}
	memset(&e, 0, sizeof(e));
	e.cls = OAUTH_ADMIN;
	snprintf(e.reason, sizeof(e.reason), "client credential unavailable");
	o = errmap_idp_error(&e, 0, util_now());
	ASSERT_TRUE(strstr(json_string_value(
			       json_object_get(proto_error_obj(o), "message")),
			"client_auth") != NULL);
	json_decref(o);
}

int
main(void)
{
	RUN(test_codes_and_statuses);
	RUN(test_codes_documented);
	RUN(test_error_reply);
	RUN(test_idp_errno);
	RUN(test_idp_error_reply);
	RUN(test_client_auth_hints);
	TEST_MAIN_END();
}
