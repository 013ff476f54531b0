/*
 * test_proto_lite.c - lib/proto_lite.c against lib/proto.c (jansson):
 * the fast request decoder takes the common lines and gives the same
 * request the JSON decoder gives, and declines everything else (the
 * JSON decoder then answers, errors included); the token reply written
 * as bytes is byte for byte proto_encode(proto_token_reply(...)) for
 * every reply shape, and is refused when a string would need a JSON
 * escape; the token reply reader and the token request writer agree
 * with jansson the same way, and proto_response_decode's object for the
 * usual token reply is the one jansson's parser makes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "test.h"

/* Two decoded requests say the same thing. */
static int
same_request(const struct proto_request *a, const struct proto_request *b)
{
	const char *sa[] = { a->scope, a->user, a->service, a->tty, a->workload,
		a->session, a->cursor, a->claims };
	const char *sb[] = { b->scope, b->user, b->service, b->tty, b->workload,
		b->session, b->cursor, b->claims };
	size_t i;

	if (a->op != b->op || a->min_valid != b->min_valid ||
	    a->wait != b->wait || a->limit != b->limit ||
	    a->interactive != b->interactive || a->cae != b->cae)
		return 0;
	for (i = 0; i < sizeof(sa) / sizeof(sa[0]); i++) {
		if ((sa[i] == NULL) != (sb[i] == NULL))
			return 0;
		if (sa[i] != NULL && strcmp(sa[i], sb[i]) != 0)
			return 0;
	}
	return 1;
}

/*
 * Decode s both ways: -1 when they disagree (the fast path took a line
 * the JSON decoder refuses or reads otherwise), else 1 when the fast
 * path took it, 0 when it declined.
 */
static int
both_ways(const char *s, size_t len)
{
	struct proto_request fast, slow;
	const char *code, *msg;
	int took, r;

	took = proto_lite_request_decode(s, len, &fast);
	r = proto_request_decode_json(s, len, &slow, &code, &msg);
	if (took &&
	    (r != 0 || !same_request(&fast, &slow) || fast.root != NULL))
		took = -1;
	if (!took) {
		struct proto_request z;

		memset(&z, 0, sizeof(z));
		if (memcmp(&fast, &z, sizeof(z)) != 0)
			took = -1; /* declined, but left something behind */
	}
	proto_request_clear(&slow);
	proto_request_clear(&fast);
	return took;
}

#define FAST(s)                                                                  \
	do {                                                                     \
		if (both_ways((s), strlen(s)) != 1)                              \
			FAILF(                                                   \
			    "not taken (or taken wrongly) by the fast path: %s", \
			    (s));                                                \
	} while (0)
#define DECLINED(s)                                                            \
	do {                                                                   \
		if (both_ways((s), strlen(s)) != 0)                            \
			FAILF("the fast path should decline: %s", (s));        \
	} while (0)

TEST(test_fast_path_takes_common_lines)
{
	struct proto_request r;

	FAST("{\"v\":1,\"op\":\"token\"}");
	FAST("{\"v\":1,\"op\":\"token\",\"scope\":\"storage\"}");
	FAST(
	    "{\"op\":\"token\",\"v\":1,\"scope\":\"storage\",\"min_valid\":60}");
	FAST("{\"v\":1,\"op\":\"token\",\"scope\":\"https://storage.azure.com/"
	     ".default\",\"min_valid\":0}");
	FAST("{\"v\":1,\"op\":\"token\",\"min_valid\":86400}");
	FAST(" { \"v\" : 1 ,\t\"op\":\"token\" , \"scope\" :\"vault\"}\r ");
	FAST("{\"v\": 1, \"op\": \"token\", \"scope\": \"a b,c:d{}[]\"}");
	FAST("{\"v\":1,\"op\":\"login\",\"wait\":900}");
	FAST("{\"v\":1,\"op\":\"status\"}");
	FAST("{\"v\":1,\"op\":\"logout\"}");
	FAST("{\"v\":1,\"op\":\"stats\"}");
	FAST("{\"v\":1,\"op\":\"sdk_env\"}");
	FAST(
	    "{\"v\":1,\"op\":\"session_open\",\"user\":\"alice\",\"service\":"
	    "\"sshd\",\"tty\":\"\",\"workload\":\"job\",\"interactive\":true}");
	FAST("{\"v\":1,\"op\":\"session_open\",\"user\":\"alice\","
	     "\"interactive\":false}");
	FAST(
	    "{\"v\":1,\"op\":\"session_close\",\"user\":\"a\",\"session\":\"s1\"}");
	FAST("{\"v\":1,\"op\":\"admin_list\",\"cursor\":\"\",\"limit\":1000}");
	FAST("{\"v\":1,\"op\":\"admin_revoke\",\"user\":\"bob\"}");

	/* The strings live in the request, NUL-terminated; no tree. */
	{
		const char *l =
		    "{\"v\":1,\"op\":\"token\",\"scope\":\"storage\","
		    "\"min_valid\":7}";

		ASSERT_EQ(proto_lite_request_decode(l, strlen(l), &r), 1);
	}
	ASSERT_TRUE(r.root == NULL);
	ASSERT_EQ(r.op, PROTO_OP_TOKEN);
	ASSERT_STREQ(r.scope, "storage");
	ASSERT_TRUE(r.scope >= r.lite && r.scope < r.lite + sizeof(r.lite));
	ASSERT_EQ(r.min_valid, 7);
	ASSERT_EQ(r.limit, PROTO_LIST_LIMIT_DEFAULT);
	proto_request_clear(&r);

	/* proto_request_decode takes the same line the same way. */
	{
		const char *code, *msg;
		const char *l =
		    "{\"v\":1,\"op\":\"token\",\"scope\":\"storage\"}";

		ASSERT_EQ(proto_request_decode(l, strlen(l), &r, &code, &msg),
		    0);
		ASSERT_TRUE(r.root == NULL && code == NULL && msg == NULL);
		ASSERT_STREQ(r.scope, "storage");
		proto_request_clear(&r);
	}
}

TEST(test_fast_path_declines)
{
	static const char pre[] = "{\"v\":1,\"op\":\"token\",\"scope\":\"";
	char big[PROTO_LITE_BUF + 64];
	int n;
	struct proto_request r;
	const char *code, *msg;

	/* The CAE fields (issue 17) always take the JSON decoder. */
	DECLINED("{\"v\":1,\"op\":\"token\",\"cae\":true}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":\"s\",\"cae\":false}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"claims\":\"eyJhIjoxfQ\"}");
	/* Malformed, or what only the JSON decoder may judge. */
	DECLINED("");
	DECLINED("{}");
	DECLINED("[]");
	DECLINED("{\"v\":1}");
	DECLINED("{\"op\":\"token\"}");
	DECLINED("{\"v\":1,\"op\":\"token\"");
	DECLINED("{\"v\":1,\"op\":\"token\",}");
	DECLINED("{\"v\":1,\"op\":\"token\"}x");
	DECLINED("{\"v\":1,\"op\":\"token\"}{}");
	DECLINED("{\"v\":1,,\"op\":\"token\"}");
	DECLINED("{\"v\":2,\"op\":\"token\"}");
	DECLINED("{\"v\":1.0,\"op\":\"token\"}");
	DECLINED("{\"v\":1e0,\"op\":\"token\"}");
	DECLINED("{\"v\":01,\"op\":\"token\"}");
	DECLINED("{\"v\":\"1\",\"op\":\"token\"}");
	DECLINED("{\"v\":-1,\"op\":\"token\"}");
	DECLINED("{\"v\":1,\"op\":\"Token\"}");
	DECLINED("{\"v\":1,\"op\":\"none\"}");
	/* An op whose fields it does not know (issue 13: without its
	 * row, a login_code without its required url passed here). */
	DECLINED("{\"v\":1,\"op\":\"login_code\"}");
	DECLINED("{\"v\":1,\"op\":1}");
	DECLINED("{\"v\":1,\"v\":1,\"op\":\"token\"}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"op\":\"token\"}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":\"a\",\"scope\":\"a\"}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"user\":\"root\"}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"bogus\":1}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":\"\"}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":null}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":1}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"min_valid\":86401}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"min_valid\":-1}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"min_valid\":1.5}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"min_valid\":\"60\"}");
	DECLINED(
	    "{\"v\":1,\"op\":\"token\",\"min_valid\":99999999999999999999}");
	DECLINED("{\"v\":1,\"op\":\"admin_list\",\"limit\":0}");
	DECLINED("{\"v\":1,\"op\":\"session_open\"}");
	DECLINED("{\"v\":1,\"op\":\"session_open\",\"user\":\"a\","
		 "\"interactive\":1}");
	DECLINED("{\"v\":1,\"op\":\"session_open\",\"user\":\"a\","
		 "\"interactive\":truex}");
	DECLINED("{\"v\":1,\"op\":\"session_close\",\"user\":\"a\"}");
	/* Escapes and non-ASCII: jansson unescapes and checks UTF-8. */
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":\"a\\\"b\"}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":\"\\u0073torage\"}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":\"st\xc3\xb6rage\"}");
	DECLINED("{\"v\":1,\"op\":\"token\",\"scope\":\"a\tb\"}");
	DECLINED("{\"v\":1,\"\\u006fp\":\"token\"}");
	DECLINED("\xef\xbb\xbf{\"v\":1,\"op\":\"token\"}");

	/* A NUL inside the line (len counts it). */
	ASSERT_EQ(both_ways("{\"v\":1,\"op\":\"token\"}\0", 22), 0);
	ASSERT_EQ(both_ways("{\"v\":1,\"op\":\"to\0en\"}", 21), 0);

	/* More string bytes than the request keeps: the JSON path. */
	n = snprintf(big, sizeof(big), "%s%0*d\"}", pre, PROTO_LITE_BUF, 0);
	ASSERT_TRUE(n > 0 && (size_t)n < sizeof(big));
	memset(big + strlen(pre), 's', PROTO_LITE_BUF);
	ASSERT_EQ(both_ways(big, strlen(big)), 0);
	ASSERT_EQ(proto_request_decode(big, strlen(big), &r, &code, &msg), 0);
	ASSERT_TRUE(r.root != NULL && strlen(r.scope) == PROTO_LITE_BUF);
	proto_request_clear(&r);

	/* Errors still come from the JSON decoder, with its messages. */
	ASSERT_ERR(proto_request_decode("{\"v\":1,\"op\":\"token\",\"x\":1}",
		       26, &r, &code, &msg),
	    -EBADMSG);
	ASSERT_STREQ(code, "bad_request");
	ASSERT_STREQ(msg, "unknown field for this op");
	ASSERT_ERR(proto_request_decode("{\"v\":2,\"op\":\"token\"}", 20, &r,
		       &code, &msg),
	    -EPROTONOSUPPORT);
	ASSERT_EQ(r.op, PROTO_OP_TOKEN);
}

/* A line both decoders read the same, for every byte position cut. */
/* The token op's CAE fields, through the JSON decoder. */
TEST(test_token_cae_fields)
{
	struct proto_request r;
	const char *code, *msg;
	const char *l = "{\"v\":1,\"op\":\"token\",\"scope\":\"storage\","
			"\"cae\":true,\"claims\":\"eyJhIjoxfQ\"}";
	char *big;
	size_t n;

	ASSERT_EQ(proto_request_decode(l, strlen(l), &r, &code, &msg), 0);
	ASSERT_TRUE(r.root != NULL);
	ASSERT_EQ(r.cae, 1);
	ASSERT_STREQ(r.claims, "eyJhIjoxfQ");
	proto_request_clear(&r);
	l = "{\"v\":1,\"op\":\"token\"}";
	ASSERT_EQ(proto_request_decode_json(l, strlen(l), &r, &code, &msg), 0);
	ASSERT_EQ(r.cae, 0);
	ASSERT_TRUE(r.claims == NULL);
	proto_request_clear(&r);
	/* Wrong types, empty claims, and other ops: bad_request. */
	l = "{\"v\":1,\"op\":\"token\",\"cae\":1}";
	ASSERT_ERR(proto_request_decode(l, strlen(l), &r, &code, &msg),
	    -EBADMSG);
	ASSERT_STREQ(code, "bad_request");
	ASSERT_STREQ(msg, "\"cae\" must be a boolean");
	proto_request_clear(&r);
	l = "{\"v\":1,\"op\":\"token\",\"claims\":\"\"}";
	ASSERT_ERR(proto_request_decode(l, strlen(l), &r, &code, &msg),
	    -EBADMSG);
	proto_request_clear(&r);
	l = "{\"v\":1,\"op\":\"login\",\"cae\":true}";
	ASSERT_ERR(proto_request_decode(l, strlen(l), &r, &code, &msg),
	    -EBADMSG);
	proto_request_clear(&r);
	/* claims may be longer than other strings, up to PROTO_CLAIMS_MAX. */
	big = malloc(PROTO_CLAIMS_MAX + 128);
	ASSERT_TRUE(big != NULL);
	for (n = 1; n <= 2; n++) {
		size_t len = n == 1 ? PROTO_CLAIMS_MAX : PROTO_CLAIMS_MAX + 1;
		int k = snprintf(big, 64,
		    "{\"v\":1,\"op\":\"token\",\"claims\":\"");

		memset(big + k, 'A', len);
		memcpy(big + k + len, "\"}", 3);
		ASSERT_EQ(proto_request_decode(big, strlen(big), &r, &code,
			      &msg),
		    n == 1 ? 0 : -EBADMSG);
		proto_request_clear(&r);
	}
	free(big);
}

TEST(test_fast_path_agrees_on_prefixes)
{
	const char *lines[] = {
		"{\"v\":1,\"op\":\"token\",\"scope\":\"storage\",\"min_valid\":60}",
		("{\"v\":1,\"op\":\"session_open\",\"user\":\"alice\","
		 "\"interactive\":true,\"service\":\"sshd\"}"),
		"{ \"v\" : 1 , \"op\" : \"admin_list\" , \"limit\" : 10 }",
	};
	size_t i, n;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		for (n = 0; n <= strlen(lines[i]); n++)
			if (both_ways(lines[i], n) < 0)
				FAILF("disagree on %.*s", (int)n, lines[i]);
}

/* The JSON path's bytes for a token reply. */
static char *
json_line(const char *tok, const char *type, int64_t exp, const char *scope,
    const char *account, size_t *len)
{
	json_t *o =
	    proto_token_reply(tok, strlen(tok), type, exp, scope, account);
	char *s;

	if (o == NULL)
		return NULL;
	s = proto_encode(o, len);
	json_decref(o);
	return s;
}

/*
 * The byte writer gives proto_encode's bytes, or declines (-EDOM); 1
 * when it wrote, 0 when it declined, -1 on a difference.
 */
static int
line_vs_json(const char *tok, const char *type, int64_t exp, const char *scope,
    const char *account)
{
	char buf[8192];
	size_t jlen = 0, want;
	char *j;
	ssize_t n;
	int r;

	n = proto_lite_token_line(buf, sizeof(buf), tok, strlen(tok), type, exp,
	    scope, account);
	want = proto_lite_token_line_len(tok, strlen(tok), type, exp, scope,
	    account);
	if (n == -EDOM)
		return want == 0 ? 0 : -1;
	j = json_line(tok, type, exp, scope, account, &jlen);
	r = j != NULL && n >= 0 && (size_t)n == jlen && (size_t)n == want &&
		memcmp(buf, j, jlen) == 0 ?
	    1 :
	    -1;
	if (r < 0)
		fprintf(stderr, "line: %.*s\njson: %s\n", (int)(n > 0 ? n : 0),
		    buf, j != NULL ? j : "(null)");
	free(j);
	return r;
}

TEST(test_token_line_is_json_bytes)
{
	static const char jwt[] =
	    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9."
	    "eyJhdWQiOiJodHRwczovL3N0b3JhZ2UuYXp1cmUuY29tIn0.c2lnbmF0dXJl-_";
	const char *types[] = { "Bearer", "", "pop", "x y" };
	const char *scopes[] = { "https://storage.azure.com/.default",
		"2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default", "api://x/y z",
		"/", "s" };
	const char *accounts[] = { "alice@contoso.com", NULL, "",
		"00000000-0000-0000-0000-000000000001", "a'b`c$(d)" };
	const int64_t exps[] = { 1796302006, 0, -1, INT64_MAX, INT64_MIN, 7 };
	size_t a, b, c, d;

	for (a = 0; a < sizeof(types) / sizeof(types[0]); a++)
		for (b = 0; b < sizeof(scopes) / sizeof(scopes[0]); b++)
			for (c = 0; c < sizeof(accounts) / sizeof(accounts[0]);
			     c++)
				for (d = 0; d < sizeof(exps) / sizeof(exps[0]);
				     d++)
					ASSERT_EQ(line_vs_json(jwt, types[a],
						      exps[d], scopes[b],
						      accounts[c]),
					    1);
	/* Opaque tokens with every plain byte. */
	{
		char tok[0x7f - 0x20 + 1];
		size_t i, n = 0;

		for (i = 0x20; i < 0x7f; i++)
			if (i != '"' && i != '\\')
				tok[n++] = (char)i;
		tok[n] = '\0';
		ASSERT_EQ(line_vs_json(tok, "Bearer", 1, "s", "a"), 1);
		ASSERT_EQ(line_vs_json("", "Bearer", 1, "s", "a"), 1);
	}
}

TEST(test_token_line_declines_escapes)
{
	char buf[512];
	const char *odd[] = { "a\"b", "a\\b", "a\nb", "a\tb", "\x7f",
		"j\xc3\xb6rg", "\x01", "a/b\"" };
	size_t i;

	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		/* In each place a string goes; the JSON path serves these. */
		ASSERT_EQ(line_vs_json(odd[i], "Bearer", 1, "s", "a"), 0);
		ASSERT_EQ(line_vs_json("t", odd[i], 1, "s", "a"), 0);
		ASSERT_EQ(line_vs_json("t", "Bearer", 1, odd[i], "a"), 0);
		ASSERT_EQ(line_vs_json("t", "Bearer", 1, "s", odd[i]), 0);
	}
	/* Too small a buffer: nothing past it. */
	memset(buf, 'Z', sizeof(buf));
	ASSERT_ERR(proto_lite_token_line(buf, 20, "tok", 3, "Bearer", 1, "s",
		       "a"),
	    -EMSGSIZE);
	ASSERT_EQ(buf[0], 'Z');
	ASSERT_EQ(proto_lite_token_line_len(NULL, 0, "B", 1, "s", "a"), 0);
	ASSERT_EQ(proto_lite_token_line_len("t", 1, "B", 1, NULL, "a"), 0);
}

/* The byte reader says what jansson says, or declines. */
static int
reply_vs_json(const char *line)
{
	struct proto_token_reply tr;
	json_t *o = NULL, *v;
	const char *s;
	int took, r = 1;

	took = proto_lite_token_reply(line, strlen(line), &tr);
	if (!took)
		return 0;
	if (proto_response_decode(line, strlen(line), &o) != 0 ||
	    proto_response_error(o) != NULL)
		r = -1;
	s = json_string_value(json_object_get(o, "access_token"));
	if (r > 0 &&
	    (s == NULL || strlen(s) != tr.access_token_len ||
		memcmp(s, tr.access_token, tr.access_token_len) != 0))
		r = -1;
	s = json_string_value(json_object_get(o, "token_type"));
	if (r > 0 &&
	    ((s == NULL) != (tr.token_type == NULL) ||
		(s != NULL &&
		    (strlen(s) != tr.token_type_len ||
			memcmp(s, tr.token_type, tr.token_type_len) != 0))))
		r = -1;
	s = json_string_value(json_object_get(o, "scope"));
	if (r > 0 &&
	    ((s == NULL) != (tr.scope == NULL) ||
		(s != NULL &&
		    (strlen(s) != tr.scope_len ||
			memcmp(s, tr.scope, tr.scope_len) != 0))))
		r = -1;
	s = json_string_value(json_object_get(o, "account"));
	if (r > 0 &&
	    ((s == NULL) != (tr.account == NULL) ||
		(s != NULL &&
		    (strlen(s) != tr.account_len ||
			memcmp(s, tr.account, tr.account_len) != 0))))
		r = -1;
	v = json_object_get(o, "expires_on");
	if (r > 0 && (v != NULL ? json_integer_value(v) : 0) != tr.expires_on)
		r = -1;
	json_decref(o);
	return r;
}

TEST(test_token_reply_reader)
{
	char buf[1024];
	ssize_t n;

	n = proto_lite_token_line(buf, sizeof(buf), "eyJ.x.y", 7, "Bearer",
	    1796302006, "https://storage.azure.com/.default", "a@b.c");
	ASSERT_TRUE(n > 0);
	buf[n - 1] = '\0'; /* without its newline, as read */
	ASSERT_EQ(reply_vs_json(buf), 1);
	n = proto_lite_token_line(buf, sizeof(buf), "t", 1, "", -5, "s", NULL);
	buf[n - 1] = '\0';
	ASSERT_EQ(reply_vs_json(buf), 1);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\"}"), 1);
	ASSERT_EQ(reply_vs_json(" {\"access_token\" : \"t\", \"ok\":true ,"
				"\"account\":null} "),
	    1);

	/* Declined: the JSON reader decides. */
	ASSERT_EQ(reply_vs_json("{\"ok\":false,\"error\":{\"code\":\"x\","
				"\"message\":\"m\"}}"),
	    0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true}"), 0);
	ASSERT_EQ(reply_vs_json("{\"access_token\":\"t\"}"), 0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\","
				"\"new_field\":1}"),
	    0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\","
				"\"access_token\":\"u\"}"),
	    0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\\u0041\"}"),
	    0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\","
				"\"account\":\"j\xc3\xb6rg\"}"),
	    0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\","
				"\"expires_on\":1.5}"),
	    0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\","
				"\"expires_on\":\"1\"}"),
	    0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\"} x"), 0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":\"t\""), 0);
	ASSERT_EQ(reply_vs_json("{\"ok\":true,\"access_token\":1}"), 0);
}

/*
 * proto_response_decode reads the usual token reply without jansson's
 * parser: the object is the one the parser makes (same members, order
 * and values).
 */
static int
response_same_as_parser(const char *line)
{
	json_t *a = NULL, *b;
	char *da, *db;
	int r;

	if (proto_response_decode(line, strlen(line), &a) != 0)
		return 0;
	b = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
	da = json_dumps(a, JSON_COMPACT);
	db = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
	r = da != NULL && db != NULL && strcmp(da, db) == 0 && json_equal(a, b);
	free(da);
	free(db);
	json_decref(a);
	json_decref(b);
	return r;
}

TEST(test_response_decode_token_reply)
{
	ASSERT_TRUE(response_same_as_parser(
	    "{\"ok\":true,\"access_token\":"
	    "\"eyJ.a.b\",\"token_type\":\"Bearer\",\"expires_on\":1796302006,"
	    "\"scope\":\"https://storage.azure.com/.default\",\"account\":"
	    "\"a@b.c\"}"));
	ASSERT_TRUE(response_same_as_parser(
	    "{ \"account\" : null , "
	    "\"expires_on\":-7,\"access_token\":\"t\",\"ok\":true}"));
	ASSERT_TRUE(
	    response_same_as_parser("{\"access_token\":\"\",\"ok\":true,"
				    "\"scope\":\"\",\"token_type\":\"\"}"));
	/* Declined by the byte reader: jansson's object, as before. */
	ASSERT_TRUE(
	    response_same_as_parser("{\"ok\":true,\"access_token\":\"t\","
				    "\"extra\":[1,{\"a\":null}]}"));
	ASSERT_TRUE(response_same_as_parser("{\"ok\":false,\"error\":{\"code\":"
					    "\"x\",\"message\":\"m\"}}"));
}

TEST(test_token_request_writer)
{
	const char *scopes[] = { NULL, "storage", "https://x/.default", "" };
	const int64_t mvs[] = { -1, 0, 300, 86400 };
	char buf[2048], *j;
	size_t i, k, jlen;
	json_t *o;
	ssize_t n;

	for (i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++)
		for (k = 0; k < sizeof(mvs) / sizeof(mvs[0]); k++) {
			o = json_pack("{s:i,s:s}", "v", PROTO_VERSION, "op",
			    "token");
			if (scopes[i] != NULL)
				json_object_set_new(o, "scope",
				    json_string(scopes[i]));
			if (mvs[k] >= 0)
				json_object_set_new(o, "min_valid",
				    json_integer(mvs[k]));
			j = proto_encode(o, &jlen);
			json_decref(o);
			n = proto_lite_token_request(buf, sizeof(buf),
			    scopes[i], mvs[k]);
			ASSERT_TRUE(j != NULL && n > 0 && (size_t)n == jlen);
			ASSERT_TRUE(memcmp(buf, j, jlen) == 0);
			free(j);
		}
	ASSERT_ERR(proto_lite_token_request(buf, sizeof(buf), "a\"b", -1),
	    -EDOM);
	ASSERT_ERR(proto_lite_token_request(buf, sizeof(buf), "\xc3\xb6", -1),
	    -EDOM);
	ASSERT_ERR(proto_lite_token_request(buf, 10, "storage", -1), -EMSGSIZE);
}

int
main(void)
{
	RUN(test_fast_path_takes_common_lines);
	RUN(test_fast_path_declines);
	RUN(test_token_cae_fields);
	RUN(test_fast_path_agrees_on_prefixes);
	RUN(test_token_line_is_json_bytes);
	RUN(test_token_line_declines_escapes);
	RUN(test_token_reply_reader);
	RUN(test_response_decode_token_reply);
	RUN(test_token_request_writer);
	TEST_MAIN_END();
}
