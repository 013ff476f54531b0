/*
 * proto_lite.c - the protocol's common lines without jansson (proto.h):
 * a request decoder that allocates nothing, the ok token reply written
 * and read as bytes, and the token request written as bytes. credd
 * decodes every request here first and serves cached tokens from lines
 * built here; credctl can fetch a token without a JSON tree.
 *
 * Every function handles a strict subset of what lib/proto.c (jansson)
 * takes and gives, for that subset, exactly what proto.c gives: the same
 * decoded request, the same bytes. Anything outside the subset is
 * declined, never guessed at: strings must be "plain" (0x20..0x7e but
 * '"' and '\\', so JSON carries them verbatim), keys must be known and
 * seen once, numbers must be plain integers. The unit tests and
 * fuzz_proto compare both paths on the same input.
 *
 * Must never: accept a line proto.c refuses, read past len, write past
 * cap, log, allocate, or keep a token anywhere but the caller's buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "entra/proto.h"

/* Token reply pieces: the order proto_token_reply() sets its members in. */
#define TL_HEAD "{\"ok\":true,\"access_token\":\""
#define TL_TYPE "\",\"token_type\":\""
#define TL_EXP "\",\"expires_on\":"
#define TL_SCOPE ",\"scope\":\""
#define TL_ACCT "\",\"account\":"
#define TL_NULL "null}\n"
#define TL_END "\"}\n"
#define CSTRLEN(s) (sizeof(s) - 1)

/* 1 for the bytes JSON carries verbatim in a string: 0x20..0x7e, not " or \\. */
static const unsigned char plain_byte[256] = {
	[0x20] = 1,
	[0x21] = 1,
	[0x23 ... 0x5b] = 1,
	[0x5d ... 0x7e] = 1,
};

int
proto_lite_is_plain(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!plain_byte[(unsigned char)s[i]])
			return 0;
	return 1;
}

/* ---- a small cursor over one line ---- */

struct cur {
	const char *p, *end;
};

/* JSON's whitespace, as jansson's lexer skips it. */
static int
is_ws(char ch)
{
	return (unsigned char)ch <= ' ' &&
	    (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r');
}

static void
skip_ws(struct cur *c)
{
	while (c->p < c->end && is_ws(*c->p))
		c->p++;
}

static int
take(struct cur *c, char ch)
{
	skip_ws(c);
	if (c->p >= c->end || *c->p != ch)
		return 0;
	c->p++;
	return 1;
}

/* A plain string: its bytes (between the quotes) in *s, *len. */
static int
plain_string(struct cur *c, const char **s, size_t *len)
{
	const char *q;

	if (!take(c, '"'))
		return 0;
	for (q = c->p; q < c->end && plain_byte[(unsigned char)*q]; q++)
		;
	if (q >= c->end || *q != '"')
		return 0; /* the end, an escape, a control or non-ASCII byte */
	*s = c->p;
	*len = (size_t)(q - c->p);
	c->p = q + 1;
	return 1;
}

/*
 * What may follow a value: whitespace, then ',' or '}'. A number or a
 * literal running into anything else ("1.5", "1e3", "truex") is left to
 * jansson.
 */
static int
at_value_end(const struct cur *c)
{
	const char *q = c->p;

	while (q < c->end && is_ws(*q))
		q++;
	return q < c->end && (*q == ',' || *q == '}');
}

/* A non-negative integer without sign, fraction or exponent: 0..10^18-1. */
static int
plain_uint(struct cur *c, int64_t *v)
{
	int64_t n = 0;
	int digits = 0;

	skip_ws(c);
	if (c->p >= c->end || *c->p < '0' || *c->p > '9')
		return 0;
	if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' &&
	    c->p[1] <= '9')
		return 0; /* a leading zero: invalid JSON, jansson says so */
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (++digits > 18)
			return 0;
		n = n * 10 + (*c->p - '0');
		c->p++;
	}
	*v = n;
	return at_value_end(c);
}

/* true or false; 1 with *v, or 0. */
static int
plain_bool(struct cur *c, int *v)
{
	skip_ws(c);
	if ((size_t)(c->end - c->p) >= 4 && memcmp(c->p, "true", 4) == 0) {
		c->p += 4;
		*v = 1;
	} else if ((size_t)(c->end - c->p) >= 5 &&
	    memcmp(c->p, "false", 5) == 0) {
		c->p += 5;
		*v = 0;
	} else
		return 0;
	return at_value_end(c);
}

/* After a member: 1 on ',' (another follows), 2 on '}' (the end), 0 else. */
static int
member_sep(struct cur *c)
{
	if (take(c, ','))
		return 1;
	if (take(c, '}'))
		return 2;
	return 0;
}

/* Nothing but whitespace after the object. */
static int
at_eof(struct cur *c)
{
	skip_ws(c);
	return c->p == c->end;
}

/* ---- requests ---- */

/* The request fields, as proto.c's table names them. */
enum lite_field {
	LF_SCOPE,
	LF_MIN_VALID,
	LF_WAIT,
	LF_USER,
	LF_SERVICE,
	LF_TTY,
	LF_WORKLOAD,
	LF_INTERACTIVE,
	LF_SESSION,
	LF_CURSOR,
	LF_LIMIT,
	LF_COUNT
};

enum lite_type { LT_STR, LT_NESTR, LT_INT, LT_BOOL };

static const struct lite_spec {
	const char *name;
	enum lite_type type;
	int64_t min, max;
} lite_fields[LF_COUNT] = {
	[LF_SCOPE] = { "scope", LT_NESTR, 0, 0 },
	[LF_MIN_VALID] = { "min_valid", LT_INT, 0, PROTO_MIN_VALID_MAX },
	[LF_WAIT] = { "wait", LT_INT, 0, PROTO_WAIT_MAX },
	[LF_USER] = { "user", LT_NESTR, 0, 0 },
	[LF_SERVICE] = { "service", LT_STR, 0, 0 },
	[LF_TTY] = { "tty", LT_STR, 0, 0 },
	[LF_WORKLOAD] = { "workload", LT_NESTR, 0, 0 },
	[LF_INTERACTIVE] = { "interactive", LT_BOOL, 0, 0 },
	[LF_SESSION] = { "session", LT_NESTR, 0, 0 },
	[LF_CURSOR] = { "cursor", LT_STR, 0, 0 },
	[LF_LIMIT] = { "limit", LT_INT, 1, PROTO_LIST_LIMIT_MAX },
};

#define LBIT(f) (1u << (f))

/* Per op: accepted and required fields (proto.c's table, restated). */
static const struct {
	unsigned allowed, required;
} lite_ops[PROTO_OP_COUNT] = {
	[PROTO_OP_TOKEN] = { LBIT(LF_SCOPE) | LBIT(LF_MIN_VALID), 0 },
	[PROTO_OP_LOGIN] = { LBIT(LF_WAIT), 0 },
	[PROTO_OP_STATUS] = { 0, 0 },
	[PROTO_OP_LOGOUT] = { 0, 0 },
	[PROTO_OP_SESSION_OPEN] = { LBIT(LF_USER) | LBIT(LF_SERVICE) |
		LBIT(LF_TTY) | LBIT(LF_WORKLOAD) | LBIT(LF_INTERACTIVE),
	    LBIT(LF_USER) },
	[PROTO_OP_SESSION_CLOSE] = { LBIT(LF_USER) | LBIT(LF_SESSION),
	    LBIT(LF_USER) | LBIT(LF_SESSION) },
	[PROTO_OP_ADMIN_LIST] = { LBIT(LF_CURSOR) | LBIT(LF_LIMIT), 0 },
	[PROTO_OP_ADMIN_REVOKE] = { LBIT(LF_USER), LBIT(LF_USER) },
	[PROTO_OP_STATS] = { 0, 0 },
	[PROTO_OP_SDK_ENV] = { 0, 0 },
	/* bind and unbind need "cgroup", which this decoder does not know:
	 * a bit no field sets makes it hand them to proto.c. */
	[PROTO_OP_BIND] = { 0, LBIT(LF_COUNT) },
	[PROTO_OP_UNBIND] = { 0, LBIT(LF_COUNT) },
};

/*
 * The ops whose fields this path does not know: jansson decides them
 * (a zeroed lite_ops row allows none and requires none, so without
 * this a login_code without its url would pass here).
 */
static const unsigned char lite_json_only[PROTO_OP_COUNT] = {
	[PROTO_OP_LOGIN_CODE] = 1,
};

/* What one member said, before the op is known: a string or a number. */
struct lite_val {
	const char *s;
	union {
		size_t len;
		int64_t n;
	};
};

/* n (NUL-terminated) is exactly k[0..len). */
static int
name_is(const char *n, const char *k, size_t len)
{
	return n[0] == k[0] && strncmp(n, k, len) == 0 && n[len] == '\0';
}

static int
lite_lookup(const char *k, size_t len)
{
	int i;

	if (len == 0)
		return -1;
	for (i = 0; i < LF_COUNT; i++)
		if (name_is(lite_fields[i].name, k, len))
			return i;
	return -1;
}

static enum proto_op
lite_op(const char *s, size_t len)
{
	int i;

	if (len == 0)
		return PROTO_OP_NONE;
	for (i = PROTO_OP_NONE + 1; i < PROTO_OP_COUNT; i++)
		if (name_is(proto_op_name((enum proto_op)i), s, len))
			return (enum proto_op)i;
	return PROTO_OP_NONE;
}

/* One field's value, checked against its type and range. */
static int
lite_value(struct cur *c, int id, struct lite_val *v)
{
	const struct lite_spec *fs = &lite_fields[id];
	int b;

	switch (fs->type) {
	case LT_STR:
	case LT_NESTR:
		if (!plain_string(c, &v->s, &v->len) ||
		    v->len > PROTO_STR_MAX ||
		    (fs->type == LT_NESTR && v->len == 0))
			return 0;
		return at_value_end(c);
	case LT_INT:
		return plain_uint(c, &v->n) && v->n >= fs->min &&
		    v->n <= fs->max;
	case LT_BOOL:
		if (!plain_bool(c, &b))
			return 0;
		v->n = b;
		return 1;
	}
	return 0;
}

/* Copy v's string into req->lite at *used; NULL when it does not fit. */
static const char *
lite_keep(struct proto_request *req, size_t *used, const struct lite_val *v)
{
	char *dst = req->lite + *used;

	if (v->len + 1 > sizeof(req->lite) - *used)
		return NULL;
	memcpy(dst, v->s, v->len);
	dst[v->len] = '\0';
	*used += v->len + 1;
	return dst;
}

/* Fill req from the members seen; 0 when something does not fit. */
static int
lite_fill(struct proto_request *req, unsigned seen, const struct lite_val *vals)
{
	const char **slot;
	size_t used = 0;
	int i;

	req->min_valid = PROTO_MIN_VALID_DEFAULT;
	req->limit = PROTO_LIST_LIMIT_DEFAULT;
	for (i = 0; i < LF_COUNT; i++) {
		if (!(seen & LBIT(i)))
			continue;
		switch (i) {
		case LF_MIN_VALID:
			req->min_valid = vals[i].n;
			continue;
		case LF_WAIT:
			req->wait = vals[i].n;
			continue;
		case LF_LIMIT:
			req->limit = vals[i].n;
			continue;
		case LF_INTERACTIVE:
			req->interactive = (int)vals[i].n;
			continue;
		case LF_SCOPE:
			slot = &req->scope;
			break;
		case LF_USER:
			slot = &req->user;
			break;
		case LF_SERVICE:
			slot = &req->service;
			break;
		case LF_TTY:
			slot = &req->tty;
			break;
		case LF_WORKLOAD:
			slot = &req->workload;
			break;
		case LF_SESSION:
			slot = &req->session;
			break;
		default:
			slot = &req->cursor;
			break;
		}
		*slot = lite_keep(req, &used, &vals[i]);
		if (*slot == NULL)
			return 0;
	}
	return 1;
}

int
proto_lite_request_decode(const char *line, size_t len,
    struct proto_request *req)
{
	struct cur c = { line, line + len };
	struct lite_val vals[LF_COUNT];
	const char *k, *op = NULL;
	size_t klen, oplen = 0;
	unsigned seen = 0;
	int has_v = 0, id, sep;
	int64_t v;

	memset(req, 0, sizeof(*req));
	if (line == NULL || len >= PROTO_LINE_MAX || !take(&c, '{'))
		return 0;
	do {
		if (!plain_string(&c, &k, &klen) || !take(&c, ':'))
			return 0;
		if (klen == 1 && k[0] == 'v') {
			if (has_v || !plain_uint(&c, &v) || v != PROTO_VERSION)
				return 0;
			has_v = 1;
		} else if (klen == 2 && memcmp(k, "op", 2) == 0) {
			if (op != NULL || !plain_string(&c, &op, &oplen) ||
			    !at_value_end(&c))
				return 0;
		} else {
			id = lite_lookup(k, klen);
			if (id < 0 || (seen & LBIT(id)) ||
			    !lite_value(&c, id, &vals[id]))
				return 0;
			seen |= LBIT(id);
		}
		sep = member_sep(&c);
	} while (sep == 1);
	if (sep != 2 || !at_eof(&c) || !has_v || op == NULL)
		return 0;
	req->op = lite_op(op, oplen);
	if (req->op == PROTO_OP_NONE || lite_json_only[req->op] ||
	    (seen & ~lite_ops[req->op].allowed) != 0 ||
	    (lite_ops[req->op].required & ~seen) != 0 ||
	    !lite_fill(req, seen, vals)) {
		memset(req, 0, sizeof(*req));
		return 0;
	}
	return 1;
}

/* ---- the ok token reply ---- */

/* Decimal digits of n as "%" PRId64 writes them, sign included. */
static size_t
int_len(int64_t n)
{
	char b[24];
	int r = snprintf(b, sizeof(b), "%" PRId64, n);

	return r > 0 ? (size_t)r : 0;
}

size_t
proto_lite_token_line_len(const char *tok, size_t toklen, const char *type,
    int64_t expires_on, const char *scope, const char *account)
{
	size_t tl, sl, al = 0;

	if (tok == NULL || type == NULL || scope == NULL)
		return 0;
	tl = strlen(type);
	sl = strlen(scope);
	if (account != NULL)
		al = strlen(account);
	if (!proto_lite_is_plain(tok, toklen) ||
	    !proto_lite_is_plain(type, tl) || !proto_lite_is_plain(scope, sl) ||
	    (account != NULL && !proto_lite_is_plain(account, al)))
		return 0;
	return CSTRLEN(TL_HEAD) + toklen + CSTRLEN(TL_TYPE) + tl +
	    CSTRLEN(TL_EXP) + int_len(expires_on) + CSTRLEN(TL_SCOPE) + sl +
	    CSTRLEN(TL_ACCT) +
	    (account != NULL ? 1 + al + CSTRLEN(TL_END) : CSTRLEN(TL_NULL));
}

ssize_t
proto_lite_token_line(char *out, size_t cap, const char *tok, size_t toklen,
    const char *type, int64_t expires_on, const char *scope,
    const char *account)
{
	size_t need = proto_lite_token_line_len(tok, toklen, type, expires_on,
		   scope, account),
	       n = 0;
	char num[24];
	int nl;

	if (need == 0)
		return -EDOM;
	if (need > cap)
		return -EMSGSIZE;
#define PUT(s, l)                                                              \
	do {                                                                   \
		memcpy(out + n, (s), (l));                                     \
		n += (l);                                                      \
	} while (0)
	PUT(TL_HEAD, CSTRLEN(TL_HEAD));
	PUT(tok, toklen);
	PUT(TL_TYPE, CSTRLEN(TL_TYPE));
	PUT(type, strlen(type));
	PUT(TL_EXP, CSTRLEN(TL_EXP));
	nl = snprintf(num, sizeof(num), "%" PRId64, expires_on);
	PUT(num, (size_t)nl);
	PUT(TL_SCOPE, CSTRLEN(TL_SCOPE));
	PUT(scope, strlen(scope));
	PUT(TL_ACCT, CSTRLEN(TL_ACCT));
	if (account != NULL) {
		PUT("\"", 1);
		PUT(account, strlen(account));
		PUT(TL_END, CSTRLEN(TL_END));
	} else
		PUT(TL_NULL, CSTRLEN(TL_NULL));
#undef PUT
	return (ssize_t)n;
}

/* The members an ok token reply may carry, each at most once. */
#define TR_OK PROTO_TR_OK
#define TR_TOKEN PROTO_TR_TOKEN
#define TR_TYPE PROTO_TR_TYPE
#define TR_EXP PROTO_TR_EXP
#define TR_SCOPE PROTO_TR_SCOPE
#define TR_ACCOUNT PROTO_TR_ACCOUNT
#define TR_COUNT PROTO_TR_COUNT
static const char *const tr_names[TR_COUNT] = {
	"ok",
	"access_token",
	"token_type",
	"expires_on",
	"scope",
	"account",
};

static int
tr_lookup(const char *k, size_t len)
{
	int i;

	if (len == 0)
		return -1;
	for (i = 0; i < TR_COUNT; i++)
		if (name_is(tr_names[i], k, len))
			return i;
	return -1;
}

/* A signed integer without fraction or exponent, as JSON writes one. */
static int
plain_int(struct cur *c, int64_t *v)
{
	int neg = 0;

	skip_ws(c);
	if (c->p < c->end && *c->p == '-') {
		neg = 1;
		c->p++;
		if (c->p >= c->end || *c->p < '0' || *c->p > '9')
			return 0;
	}
	if (!plain_uint(c, v))
		return 0;
	if (neg)
		*v = -*v;
	return 1;
}

/* One member's value into out; 0 when outside the subset. */
static int
tr_value(struct cur *c, int id, struct proto_token_reply *out)
{
	int b;

	switch (id) {
	case TR_OK:
		return plain_bool(c, &b) && b == 1;
	case TR_EXP:
		return plain_int(c, &out->expires_on);
	case TR_ACCOUNT:
		skip_ws(c);
		if ((size_t)(c->end - c->p) >= 4 &&
		    memcmp(c->p, "null", 4) == 0) {
			c->p += 4;
			return at_value_end(c);
		}
		return plain_string(c, &out->account, &out->account_len) &&
		    at_value_end(c);
	case TR_TOKEN:
		return plain_string(c, &out->access_token,
			   &out->access_token_len) &&
		    at_value_end(c);
	case TR_TYPE:
		return plain_string(c, &out->token_type,
			   &out->token_type_len) &&
		    at_value_end(c);
	case TR_SCOPE:
		return plain_string(c, &out->scope, &out->scope_len) &&
		    at_value_end(c);
	}
	return 0;
}

int
proto_lite_token_reply(const char *line, size_t len,
    struct proto_token_reply *out)
{
	struct cur c = { line, line + len };
	unsigned seen = 0;
	const char *k;
	size_t klen;
	int id, sep;

	memset(out, 0, sizeof(*out));
	if (line == NULL || len >= PROTO_LINE_MAX || !take(&c, '{'))
		return 0;
	do {
		if (!plain_string(&c, &k, &klen) || !take(&c, ':'))
			goto no;
		id = tr_lookup(k, klen);
		if (id < 0 || (seen & (1u << id)) || !tr_value(&c, id, out))
			goto no;
		seen |= 1u << id;
		out->order[out->members++] = (unsigned char)id;
		sep = member_sep(&c);
	} while (sep == 1);
	if (sep == 2 && at_eof(&c) && (seen & (1u << TR_OK)) &&
	    (seen & (1u << TR_TOKEN)))
		return 1;
no:
	memset(out, 0, sizeof(*out));
	return 0;
}

ssize_t
proto_lite_token_request(char *out, size_t cap, const char *scope,
    int64_t min_valid)
{
	static const char head[] = "{\"v\":1,\"op\":\"token\"";
	char num[24];
	size_t n = 0, sl = 0, need;
	int nl = 0;

	if (scope != NULL) {
		sl = strlen(scope);
		if (sl > PROTO_STR_MAX || !proto_lite_is_plain(scope, sl))
			return -EDOM;
	}
	if (min_valid >= 0)
		nl = snprintf(num, sizeof(num), "%" PRId64, min_valid);
	need = CSTRLEN(head) +
	    (scope != NULL ? CSTRLEN(",\"scope\":\"") + sl + 1 : 0) +
	    (min_valid >= 0 ? CSTRLEN(",\"min_valid\":") + (size_t)nl : 0) + 2;
	if (need > cap)
		return -EMSGSIZE;
#define PUT(s, l)                                                              \
	do {                                                                   \
		memcpy(out + n, (s), (l));                                     \
		n += (l);                                                      \
	} while (0)
	PUT(head, CSTRLEN(head));
	if (scope != NULL) {
		PUT(",\"scope\":\"", CSTRLEN(",\"scope\":\""));
		PUT(scope, sl);
		PUT("\"", 1);
	}
	if (min_valid >= 0) {
		PUT(",\"min_valid\":", CSTRLEN(",\"min_valid\":"));
		PUT(num, (size_t)nl);
	}
	PUT("}\n", 2);
#undef PUT
	return (ssize_t)n;
}
