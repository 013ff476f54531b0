/*
 * fuzz_proto.c - libFuzzer target for lib/proto.c and lib/proto_lite.c:
 * the request decoder credd runs on every line a local peer sends, and
 * the response decoder credctl and pam_entra run on what the socket says.
 *
 * Besides "no crash", it checks that the byte paths agree with jansson:
 * a request the fast path takes decodes the same through jansson; a
 * token reply line written as bytes is byte for byte proto_encode's
 * (or the writer declines); a token reply the byte reader takes is read
 * the same by jansson; a token request written as bytes is proto_encode's
 * and decodes as what was asked. Any disagreement traps.
 *
 * Must never: keep state between inputs (every object is freed here).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "entra/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
streq_or_null(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The fast request decoder never disagrees with the JSON one. */
static void
check_request(const char *s, size_t size)
{
	struct proto_request fast, slow;
	const char *code = NULL, *msg = NULL;
	int took, r;

	if (size >= PROTO_LINE_MAX)
		return;
	took = proto_lite_request_decode(s, size, &fast);
	r = proto_request_decode_json(s, size, &slow, &code, &msg);
	if (took &&
	    (r != 0 || fast.op != slow.op || fast.min_valid != slow.min_valid ||
		fast.wait != slow.wait || fast.limit != slow.limit ||
		fast.interactive != slow.interactive ||
		!streq_or_null(fast.scope, slow.scope) ||
		!streq_or_null(fast.user, slow.user) ||
		!streq_or_null(fast.service, slow.service) ||
		!streq_or_null(fast.tty, slow.tty) ||
		!streq_or_null(fast.workload, slow.workload) ||
		!streq_or_null(fast.session, slow.session) ||
		!streq_or_null(fast.cgroup, slow.cgroup) ||
		!streq_or_null(fast.cursor, slow.cursor)))
		__builtin_trap();
	proto_request_clear(&fast);
	proto_request_clear(&slow);
}

/*
 * Split the input into a token reply's strings (at 0xff bytes) and
 * check the byte writer against proto_encode(proto_token_reply(...)).
 */
static void
check_token_line(const char *s, size_t size)
{
	char *parts[4] = { 0 }, *buf = malloc(size + 1), *line, *j;
	const char *p = s, *end = s + size, *q, *acct;
	size_t n, need, jlen = 0;
	int64_t exp = 0;
	json_t *o;
	ssize_t got;
	int i;

	if (buf == NULL)
		return;
	memcpy(buf, s, size);
	buf[size] = '\0';
	for (i = 0; i < 4; i++) {
		q = memchr(p, 0xff, (size_t)(end - p));
		n = q != NULL ? (size_t)(q - p) : (size_t)(end - p);
		parts[i] = buf + (p - s);
		parts[i][n] = '\0';
		p = q != NULL ? q + 1 : end;
	}
	for (i = 0; i < 8 && p + i < end; i++)
		exp = (int64_t)((uint64_t)exp << 8 | (unsigned char)p[i]);
	/* parts[3] "" stands for a null account, one in two times. */
	acct = parts[3][0] == '\0' && (size & 1) ? NULL : parts[3];
	need = proto_lite_token_line_len(parts[0], strlen(parts[0]), parts[1],
	    exp, parts[2], acct);
	line = malloc(need + 1);
	got = line != NULL ?
	    proto_lite_token_line(line, need + 1, parts[0], strlen(parts[0]),
		parts[1], exp, parts[2], acct) :
	    -1;
	if (got >= 0) {
		o = proto_token_reply(parts[0], strlen(parts[0]), parts[1], exp,
		    parts[2], acct);
		j = o != NULL ? proto_encode(o, &jlen) : NULL;
		if (j == NULL || (size_t)got != jlen || (size_t)got != need ||
		    memcmp(line, j, jlen) != 0)
			__builtin_trap();
		free(j);
		json_decref(o);
	} else if (line != NULL && (got != -EDOM || need != 0))
		__builtin_trap();
	free(line);
	free(buf);
}

/*
 * The token request written as bytes (client_token_call) is byte for
 * byte what proto_encode writes for the object client.c and credctl
 * build ({"v":1,"op":"token"}, then scope, then min_valid), and credd's
 * fast decoder reads it back as the same request. The input: the scope
 * up to the first 0xff (none: absent), then min_valid's bytes.
 */
static void
check_token_request(const char *s, size_t size)
{
	const char *q = memchr(s, 0xff, size), *p;
	char *scope = NULL, out[PROTO_STR_MAX + 128], *j = NULL;
	struct proto_request req;
	int64_t mv = -1;
	size_t jlen = 0, i;
	ssize_t n;
	json_t *o;

	if (q != NULL) {
		scope = malloc((size_t)(q - s) + 1);
		if (scope == NULL)
			return;
		memcpy(scope, s, (size_t)(q - s));
		scope[q - s] = '\0';
		p = q + 1;
		if (strlen(scope) != (size_t)(q - s))
			goto out; /* a NUL: not a C string */
	} else
		p = s;
	if (p < s + size) {
		mv = 0;
		for (i = 0; i < 8 && p + i < s + size; i++)
			mv = (int64_t)((uint64_t)mv << 8 | (unsigned char)p[i]);
	}
	n = proto_lite_token_request(out, sizeof(out), scope, mv);
	if (n < 0) {
		if (n != -EDOM) /* out has room for the longest scope */
			__builtin_trap();
		goto out;
	}
	o = json_pack("{s:i,s:s}", "v", PROTO_VERSION, "op", "token");
	if (o != NULL && scope != NULL)
		(void)json_object_set_new(o, "scope", json_string(scope));
	if (o != NULL && mv >= 0)
		(void)json_object_set_new(o, "min_valid", json_integer(mv));
	j = o != NULL ? proto_encode(o, &jlen) : NULL;
	json_decref(o);
	if (j == NULL || (size_t)n != jlen || memcmp(out, j, jlen) != 0)
		__builtin_trap();
	/* credd's decoder, fast or not, reads what was asked for. */
	check_request(out, (size_t)n - 1);
	if (proto_lite_request_decode(out, (size_t)n - 1, &req)) {
		if (req.op != PROTO_OP_TOKEN ||
		    !streq_or_null(req.scope, scope) ||
		    req.min_valid != (mv >= 0 ? mv : PROTO_MIN_VALID_DEFAULT))
			__builtin_trap();
		proto_request_clear(&req);
	}
out:
	free(j);
	free(scope);
}

/* A token reply the byte reader takes is read the same by jansson. */
static void
check_token_reply(const char *s, size_t size)
{
	struct proto_token_reply tr;
	json_t *resp = NULL, *v, *parsed;
	const char *t;
	char *a, *b;

	if (!proto_lite_token_reply(s, size, &tr))
		return;
	if (proto_response_decode(s, size, &resp) != 0 ||
	    proto_response_error(resp) != NULL)
		__builtin_trap();
	t = json_string_value(json_object_get(resp, "access_token"));
	if (t == NULL || strlen(t) != tr.access_token_len ||
	    memcmp(t, tr.access_token, tr.access_token_len) != 0)
		__builtin_trap();
	v = json_object_get(resp, "expires_on");
	if ((v != NULL ? json_integer_value(v) : 0) != tr.expires_on)
		__builtin_trap();
	t = json_string_value(json_object_get(resp, "account"));
	if ((t == NULL) != (tr.account == NULL) ||
	    (t != NULL &&
		(strlen(t) != tr.account_len ||
		    memcmp(t, tr.account, tr.account_len) != 0)))
		__builtin_trap();
	/* proto_response_decode built resp without the parser: it must be
	 * the parser's object, member order included. */
	parsed = json_loadb(s, size, JSON_REJECT_DUPLICATES, NULL);
	a = json_dumps(resp, JSON_COMPACT);
	b = parsed != NULL ? json_dumps(parsed, JSON_COMPACT) : NULL;
	if (a == NULL || b == NULL || strcmp(a, b) != 0)
		__builtin_trap();
	free(a);
	free(b);
	json_decref(parsed);
	json_decref(resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request req = { 0 };
	const char *code = NULL, *msg = NULL;
	json_t *resp = NULL;
	char *line;
	size_t len;

	if (proto_request_decode((const char *)data, size, &req, &code, &msg) ==
	    0)
		(void)proto_op_name(req.op);
	else if (code == NULL || msg == NULL)
		__builtin_trap(); /* contract: a failure names a wire error */
	proto_request_clear(&req);
	check_request((const char *)data, size);

	if (proto_response_decode((const char *)data, size, &resp) == 0) {
		(void)proto_response_error(resp);
		/* Re-encoding what was accepted must not fail oddly. */
		line = proto_encode(resp, &len);
		free(line);
		json_decref(resp);
	}
	check_token_reply((const char *)data, size);
	check_token_line((const char *)data, size);
	check_token_request((const char *)data, size);
	return 0;
}
