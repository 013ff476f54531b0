/*
 * test_proto.c - lib/proto.c: strict request decoding (size limit,
 * malformed JSON, duplicates, unknown fields, types, ranges, version,
 * every op), response decoding, builders and the line encoder.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "test.h"

static const char *code_, *msg_;

/* Decode a C string; returns the errno-style result. */
static int
dec(const char *s, struct proto_request *req)
{
	return proto_request_decode(s, strlen(s), req, &code_, &msg_);
}

/* Expect a failure with a given wire code. */
#define EXPECT_FAIL(line, want_code)                                           \
	do {                                                                   \
		struct proto_request r_;                                       \
		int e_ = dec((line), &r_);                                     \
		if (e_ >= 0)                                                   \
			FAILF("accepted: %s", (line));                         \
		ASSERT_STREQ(code_, (want_code));                              \
		ASSERT_TRUE(msg_ != NULL && msg_[0] != '\0');                  \
		ASSERT_TRUE(r_.root == NULL);                                  \
	} while (0)

#define EXPECT_OK(line, req)                                                   \
	do {                                                                   \
		int e_ = dec((line), (req));                                   \
		if (e_ < 0)                                                    \
			FAILF("refused (%s: %s): %s", code_, msg_, (line));    \
	} while (0)

TEST(test_every_op)
{
	struct proto_request r;

	EXPECT_OK("{\"v\":1,\"op\":\"token\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_TOKEN);
	ASSERT_TRUE(r.scope == NULL);
	ASSERT_EQ(r.min_valid, PROTO_MIN_VALID_DEFAULT);
	proto_request_clear(&r);

	EXPECT_OK("{\"op\":\"token\",\"v\":1,\"scope\":\"storage\","
		  "\"min_valid\":60}",
	    &r);
	ASSERT_STREQ(r.scope, "storage");
	ASSERT_EQ(r.min_valid, 60);
	proto_request_clear(&r);

	EXPECT_OK("{\"v\":1,\"op\":\"login\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_LOGIN);
	ASSERT_EQ(r.wait, 0);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"login\",\"wait\":900}", &r);
	ASSERT_EQ(r.wait, 900);
	proto_request_clear(&r);

	EXPECT_OK("{\"v\":1,\"op\":\"status\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_STATUS);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"logout\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_LOGOUT);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"stats\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_STATS);
	proto_request_clear(&r);

	EXPECT_OK("{\"v\":1,\"op\":\"session_open\",\"user\":\"alice\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_SESSION_OPEN);
	ASSERT_STREQ(r.user, "alice");
	ASSERT_TRUE(r.service == NULL && r.tty == NULL && r.workload == NULL);
	ASSERT_EQ(r.interactive, 0);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"session_open\",\"user\":\"alice\","
		  "\"service\":\"sshd\",\"tty\":\"\",\"workload\":\"job\","
		  "\"interactive\":true}",
	    &r);
	ASSERT_STREQ(r.service, "sshd");
	ASSERT_STREQ(r.tty, "");
	ASSERT_STREQ(r.workload, "job");
	ASSERT_EQ(r.interactive, 1);
	proto_request_clear(&r);

	/* Issue 14: bind, unbind, bindings (cgroup is their own field). */
	EXPECT_OK("{\"v\":1,\"op\":\"bind\",\"cgroup\":\"/pods/p1\","
		  "\"user\":\"alice\",\"workload\":\"job\"}",
	    &r);
	ASSERT_EQ(r.op, PROTO_OP_BIND);
	ASSERT_STREQ(r.cgroup, "/pods/p1");
	ASSERT_STREQ(r.user, "alice");
	ASSERT_STREQ(r.workload, "job");
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"unbind\",\"cgroup\":\"/pods/p1\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_UNBIND);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"bindings\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_BINDINGS);
	proto_request_clear(&r);
	EXPECT_FAIL("{\"v\":1,\"op\":\"bind\",\"user\":\"alice\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"unbind\",\"cgroup\":\"\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"cgroup\":\"/x\"}",
	    "bad_request");

	EXPECT_OK("{\"v\":1,\"op\":\"session_close\",\"user\":\"bob\","
		  "\"session\":\"s-1\"}",
	    &r);
	ASSERT_EQ(r.op, PROTO_OP_SESSION_CLOSE);
	ASSERT_STREQ(r.user, "bob");
	ASSERT_STREQ(r.session, "s-1");
	proto_request_clear(&r);

	EXPECT_OK("{\"v\":1,\"op\":\"admin_list\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_ADMIN_LIST);
	ASSERT_TRUE(r.cursor == NULL);
	ASSERT_EQ(r.limit, PROTO_LIST_LIMIT_DEFAULT);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"admin_list\",\"cursor\":\"bob\","
		  "\"limit\":1000}",
	    &r);
	ASSERT_STREQ(r.cursor, "bob");
	ASSERT_EQ(r.limit, 1000);
	proto_request_clear(&r);

	EXPECT_OK("{\"v\":1,\"op\":\"admin_revoke\",\"user\":\"carol\"}", &r);
	ASSERT_EQ(r.op, PROTO_OP_ADMIN_REVOKE);
	ASSERT_STREQ(r.user, "carol");
	proto_request_clear(&r);
	proto_request_clear(&r); /* twice is harmless */
	proto_request_clear(NULL);
}

TEST(test_required_fields)
{
	EXPECT_FAIL("{\"v\":1,\"op\":\"session_open\"}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"session_close\",\"user\":\"a\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"session_close\",\"session\":\"x\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"admin_revoke\"}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"admin_revoke\",\"user\":\"\"}",
	    "bad_request");
}

/* login_code (issue 13): url required, non-empty, up to PROTO_URL_MAX. */
TEST(test_login_code)
{
	struct proto_request r;
	size_t n = PROTO_URL_MAX + 64;
	char *line = malloc(n), *url = malloc(PROTO_URL_MAX + 2);

	ASSERT_TRUE(line != NULL && url != NULL);
	EXPECT_OK("{\"v\":1,\"op\":\"login_code\",\"url\":\"https://h/p?"
		  "code=c&state=s\"}",
	    &r);
	ASSERT_EQ(r.op, PROTO_OP_LOGIN_CODE);
	ASSERT_STREQ(r.url, "https://h/p?code=c&state=s");
	ASSERT_EQ(r.url_len, strlen(r.url));
	proto_request_clear(&r);
	EXPECT_FAIL("{\"v\":1,\"op\":\"login_code\"}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"login_code\",\"url\":\"\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"login_code\",\"url\":7}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"login\",\"url\":\"x\"}", "bad_request");
	/* Longer than other strings may be, up to its own bound. */
	memset(url, 'a', PROTO_URL_MAX);
	url[PROTO_URL_MAX] = '\0';
	snprintf(line, n, "{\"v\":1,\"op\":\"login_code\",\"url\":\"%s\"}",
	    url);
	EXPECT_OK(line, &r);
	ASSERT_EQ(r.url_len, PROTO_URL_MAX);
	proto_request_clear(&r);
	url[PROTO_URL_MAX] = 'a';
	url[PROTO_URL_MAX + 1] = '\0';
	snprintf(line, n, "{\"v\":1,\"op\":\"login_code\",\"url\":\"%s\"}",
	    url);
	EXPECT_FAIL(line, "bad_request");
	free(line);
	free(url);
}

/* A valid request padded with spaces to exactly len bytes. */
static char *
padded(size_t len)
{
	const char *base = "{\"v\":1,\"op\":\"status\"}";
	size_t blen = strlen(base);
	char *s = malloc(len + 1);

	if (s == NULL)
		return NULL;
	memset(s, ' ', len);
	memcpy(s, base, blen);
	s[len] = '\0';
	return s;
}

TEST(test_line_limit)
{
	struct proto_request r;
	char *s;
	int e;

	/* PROTO_LINE_MAX counts the newline: len + 1 bytes on the wire. */
	s = padded(PROTO_LINE_MAX - 1);
	ASSERT_TRUE(s != NULL);
	e = proto_request_decode(s, PROTO_LINE_MAX - 1, &r, &code_, &msg_);
	free(s);
	ASSERT_EQ(e, 0);
	ASSERT_EQ(r.op, PROTO_OP_STATUS);
	proto_request_clear(&r);

	s = padded(PROTO_LINE_MAX);
	ASSERT_TRUE(s != NULL);
	e = proto_request_decode(s, PROTO_LINE_MAX, &r, &code_, &msg_);
	free(s);
	ASSERT_ERR(e, -EMSGSIZE);
	ASSERT_STREQ(code_, "too_large");
	ASSERT_TRUE(r.root == NULL);
}

TEST(test_not_nul_terminated)
{
	const char buf[] = "{\"v\":1,\"op\":\"status\"}XXXX";
	struct proto_request r;

	ASSERT_EQ(proto_request_decode(buf, sizeof(buf) - 5, &r, &code_, &msg_),
	    0);
	proto_request_clear(&r);
	/* An embedded NUL byte inside the line is refused. */
	ASSERT_ERR(proto_request_decode("{\"v\":1,\0\"op\":\"status\"}", 23, &r,
		       &code_, &msg_),
	    -EBADMSG);
}

TEST(test_malformed)
{
	EXPECT_FAIL("", "bad_request");
	EXPECT_FAIL("{", "bad_request");
	EXPECT_FAIL("not json", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"status\"} x", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"status\"}{}", "bad_request");
	EXPECT_FAIL("[1]", "bad_request");
	EXPECT_FAIL("[{\"v\":1,\"op\":\"status\"}]", "bad_request");
	EXPECT_FAIL("\"status\"", "bad_request");
	EXPECT_FAIL("1", "bad_request");
	EXPECT_FAIL("null", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"status\",}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"st\\u0000atus\"}", "bad_request");
}

TEST(test_duplicates)
{
	EXPECT_FAIL("{\"v\":1,\"op\":\"status\",\"op\":\"status\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"v\":1,\"op\":\"status\"}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"scope\":\"a\","
		    "\"scope\":\"b\"}",
	    "bad_request");
	ASSERT_STREQ(msg_, "duplicate key");
}

TEST(test_unknown_fields)
{
	EXPECT_FAIL("{\"v\":1,\"op\":\"status\",\"x\":1}", "bad_request");
	/* A field of another op is unknown here. */
	EXPECT_FAIL("{\"v\":1,\"op\":\"login\",\"scope\":\"a\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"wait\":1}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"admin_revoke\",\"user\":\"a\","
		    "\"session\":\"s\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"logout\",\"user\":\"root\"}",
	    "bad_request");
	/* The message is static: nothing of the peer's bytes in it. */
	EXPECT_FAIL("{\"v\":1,\"op\":\"status\",\"SECRET\":1}", "bad_request");
	ASSERT_TRUE(strstr(msg_, "SECRET") == NULL);
}

TEST(test_version)
{
	struct proto_request r;

	EXPECT_FAIL("{\"op\":\"status\"}", "bad_request");
	EXPECT_FAIL("{\"v\":\"1\",\"op\":\"status\"}", "bad_request");
	EXPECT_FAIL("{\"v\":1.0,\"op\":\"status\"}", "bad_request");
	EXPECT_FAIL("{\"v\":null,\"op\":\"status\"}", "bad_request");
	EXPECT_FAIL("{\"v\":true,\"op\":\"status\"}", "bad_request");
	EXPECT_FAIL("{\"v\":2,\"op\":\"status\"}", "unsupported_version");
	EXPECT_FAIL("{\"v\":0,\"op\":\"status\"}", "unsupported_version");
	/* Another version may have other ops and fields: version first. */
	EXPECT_FAIL("{\"v\":2,\"op\":\"frobnicate\",\"x\":1}",
	    "unsupported_version");
	ASSERT_ERR(dec("{\"v\":2,\"op\":\"status\"}", &r), -EPROTONOSUPPORT);
	ASSERT_EQ(r.op, PROTO_OP_STATUS); /* recognised op kept */
}

TEST(test_op)
{
	struct proto_request r;

	EXPECT_FAIL("{\"v\":1}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":5}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":null}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"frobnicate\"}", "bad_request");
	ASSERT_STREQ(msg_, "unknown op");
	EXPECT_FAIL("{\"v\":1,\"op\":\"none\"}", "bad_request");
	ASSERT_STREQ(msg_, "unknown op");
	EXPECT_FAIL("{\"v\":1,\"op\":\"TOKEN\"}", "bad_request");
	ASSERT_ERR(dec("{\"v\":1,\"op\":\"token\",\"min_valid\":-1}", &r),
	    -EBADMSG);
	ASSERT_EQ(r.op, PROTO_OP_TOKEN);
}

TEST(test_types_and_ranges)
{
	struct proto_request r;
	char line[2 * PROTO_STR_MAX];
	char big[PROTO_STR_MAX + 2];

	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"min_valid\":-1}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"min_valid\":86401}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"min_valid\":\"300\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"min_valid\":300.5}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"min_valid\":"
		    "99999999999999999999999}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"scope\":5}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"scope\":\"\"}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"scope\":null}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"token\",\"scope\":[\"a\"]}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"login\",\"wait\":901}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"login\",\"wait\":-1}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"login\",\"wait\":false}", "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"admin_list\",\"limit\":0}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"admin_list\",\"limit\":1001}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"admin_list\",\"cursor\":1}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"session_open\",\"user\":\"a\","
		    "\"interactive\":1}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"session_open\",\"user\":\"a\","
		    "\"interactive\":\"yes\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"session_open\",\"user\":{}}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"session_open\",\"user\":\"a\\u0000b\"}",
	    "bad_request");
	EXPECT_FAIL("{\"v\":1,\"op\":\"session_open\",\"user\":\"a\","
		    "\"workload\":\"\"}",
	    "bad_request");

	/* Strings: PROTO_STR_MAX bytes pass, one more does not. */
	memset(big, 'a', sizeof(big));
	big[PROTO_STR_MAX] = '\0';
	snprintf(line, sizeof(line),
	    "{\"v\":1,\"op\":\"token\","
	    "\"scope\":\"%s\"}",
	    big);
	EXPECT_OK(line, &r);
	ASSERT_EQ(strlen(r.scope), PROTO_STR_MAX);
	proto_request_clear(&r);
	big[PROTO_STR_MAX] = 'a';
	big[PROTO_STR_MAX + 1] = '\0';
	snprintf(line, sizeof(line),
	    "{\"v\":1,\"op\":\"token\","
	    "\"scope\":\"%s\"}",
	    big);
	EXPECT_FAIL(line, "bad_request");

	/* Range ends are inclusive. */
	EXPECT_OK("{\"v\":1,\"op\":\"token\",\"min_valid\":0}", &r);
	ASSERT_EQ(r.min_valid, 0);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"token\",\"min_valid\":86400}", &r);
	ASSERT_EQ(r.min_valid, PROTO_MIN_VALID_MAX);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"admin_list\",\"limit\":1}", &r);
	ASSERT_EQ(r.limit, 1);
	proto_request_clear(&r);
	EXPECT_OK("{\"v\":1,\"op\":\"session_open\",\"user\":\"a\","
		  "\"interactive\":false}",
	    &r);
	ASSERT_EQ(r.interactive, 0);
	proto_request_clear(&r);
	/* Unicode escapes are fine; UTF-8 stays UTF-8. */
	EXPECT_OK("{\"v\":1,\"op\":\"session_open\",\"user\":\"j\\u00f6rg\"}",
	    &r);
	ASSERT_STREQ(r.user, "j\xc3\xb6rg");
	proto_request_clear(&r);
}

TEST(test_op_names)
{
	int i;

	ASSERT_STREQ(proto_op_name(PROTO_OP_NONE), "none");
	ASSERT_STREQ(proto_op_name(PROTO_OP_COUNT), "none");
	ASSERT_STREQ(proto_op_name(PROTO_OP_SESSION_OPEN), "session_open");
	for (i = PROTO_OP_NONE + 1; i < PROTO_OP_COUNT; i++)
		ASSERT_EQ(proto_op_from_name(proto_op_name((enum proto_op)i)),
		    i);
	ASSERT_EQ(proto_op_from_name("none"), PROTO_OP_NONE);
	ASSERT_EQ(proto_op_from_name("bogus"), PROTO_OP_NONE);
	ASSERT_EQ(proto_op_from_name(NULL), PROTO_OP_NONE);
}

TEST(test_builders_and_encode)
{
	json_t *v, *e;
	size_t len;
	char *s;

	v = proto_ok();
	ASSERT_TRUE(v != NULL);
	ASSERT_EQ(json_object_set_new(v, "access_token", json_string("t")), 0);
	s = proto_encode(v, &len);
	ASSERT_TRUE(s != NULL);
	ASSERT_STREQ(s, "{\"ok\":true,\"access_token\":\"t\"}\n");
	ASSERT_EQ(len, strlen(s));
	secret_wipe_str(s);
	json_decref(v);

	v = proto_error("forbidden", "not yours");
	ASSERT_TRUE(v != NULL);
	e = proto_error_obj(v);
	ASSERT_TRUE(e != NULL);
	ASSERT_EQ(json_object_set_new(e, "retry_after", json_integer(5)), 0);
	s = proto_encode(v, &len);
	ASSERT_STREQ(s,
	    "{\"ok\":false,\"error\":{\"code\":\"forbidden\","
	    "\"message\":\"not yours\",\"retry_after\":5}}\n");
	free(s);
	ASSERT_STREQ(proto_response_error(v), "forbidden");
	json_decref(v);

	/* Newlines inside strings are escaped: one object, one line. */
	v = json_pack("{s:s}", "message", "a\nb");
	s = proto_encode(v, &len);
	ASSERT_TRUE(s != NULL && strchr(s, '\n') == s + len - 1);
	free(s);
	json_decref(v);

	v = proto_versions();
	ASSERT_TRUE(json_is_array(v) && json_array_size(v) == 1);
	ASSERT_EQ(json_integer_value(json_array_get(v, 0)), 1);
	json_decref(v);
	ASSERT_TRUE(proto_error_obj(NULL) == NULL);
}

TEST(test_encode_limit)
{
	const size_t over = strlen("{\"x\":\"\"}");
	char *fill, *s;
	json_t *v;
	size_t len;

	fill = malloc(PROTO_LINE_MAX + 1);
	ASSERT_TRUE(fill != NULL);
	/* Encoded size exactly PROTO_LINE_MAX - 1, plus newline: accepted. */
	memset(fill, 'a', PROTO_LINE_MAX);
	fill[PROTO_LINE_MAX - 1 - over] = '\0';
	v = json_pack("{s:s}", "x", fill);
	s = proto_encode(v, &len);
	ASSERT_TRUE(s != NULL);
	ASSERT_EQ(len, PROTO_LINE_MAX);
	free(s);
	json_decref(v);
	/* One more byte: refused. */
	fill[PROTO_LINE_MAX - 1 - over] = 'a';
	fill[PROTO_LINE_MAX - over] = '\0';
	v = json_pack("{s:s}", "x", fill);
	errno = 0;
	s = proto_encode(v, &len);
	ASSERT_TRUE(s == NULL);
	ASSERT_EQ(errno, EMSGSIZE);
	json_decref(v);
	free(fill);
}

static int
rdec(const char *s, json_t **out)
{
	return proto_response_decode(s, strlen(s), out);
}

TEST(test_response_decode)
{
	json_t *v = NULL;

	ASSERT_EQ(rdec("{\"ok\":true,\"state\":\"ready\"}", &v), 0);
	ASSERT_TRUE(proto_response_error(v) == NULL);
	json_decref(v);
	ASSERT_EQ(rdec("{\"ok\":false,\"error\":{\"code\":\"rate_limited\","
		       "\"message\":\"slow\"}}",
		      &v),
	    0);
	ASSERT_STREQ(proto_response_error(v), "rate_limited");
	json_decref(v);

	ASSERT_ERR(rdec("", &v), -EBADMSG);
	ASSERT_TRUE(v == NULL);
	ASSERT_ERR(rdec("{}", &v), -EBADMSG);
	ASSERT_ERR(rdec("{\"ok\":1}", &v), -EBADMSG);
	ASSERT_ERR(rdec("{\"ok\":\"true\"}", &v), -EBADMSG);
	ASSERT_ERR(rdec("[true]", &v), -EBADMSG);
	ASSERT_ERR(rdec("{\"ok\":true}junk", &v), -EBADMSG);
	ASSERT_ERR(rdec("{\"ok\":true,\"ok\":false}", &v), -EBADMSG);
	ASSERT_ERR(rdec("{\"ok\":false}", &v), -EBADMSG);
	ASSERT_ERR(rdec("{\"ok\":false,\"error\":\"x\"}", &v), -EBADMSG);
	ASSERT_ERR(rdec("{\"ok\":false,\"error\":{\"code\":1}}", &v), -EBADMSG);
	ASSERT_TRUE(v == NULL);
	ASSERT_ERR(proto_response_decode("{\"ok\":true}", PROTO_LINE_MAX, &v),
	    -EBADMSG);
}

int
main(void)
{
	RUN(test_every_op);
	RUN(test_required_fields);
	RUN(test_login_code);
	RUN(test_line_limit);
	RUN(test_not_nul_terminated);
	RUN(test_malformed);
	RUN(test_duplicates);
	RUN(test_unknown_fields);
	RUN(test_version);
	RUN(test_op);
	RUN(test_types_and_ranges);
	RUN(test_op_names);
	RUN(test_builders_and_encode);
	RUN(test_encode_limit);
	RUN(test_response_decode);
	TEST_MAIN_END();
}
