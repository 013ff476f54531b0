/*
 * proto.c - the socket protocol v1 codec on jansson: strict request
 * decoding (duplicate keys, unknown fields, wrong types, bad ranges and
 * oversized lines are refused with a wire error code), response builders,
 * and one-line compact encoding. Requests are tried first by
 * proto_lite.c, which takes the common lines without a JSON tree and
 * leaves the rest (and every error) to this file.
 *
 * Must never: log, do I/O, put peer-supplied bytes into an error message
 * (every message here is a static string), or touch jansson's allocator
 * hooks (pam_entra's host process may use jansson too).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/secret.h"

#define XSTR(x) STR(x)
#define STR(x) #x

#define PROTO_E_BAD "bad_request"
#define PROTO_E_LARGE "too_large"
#define PROTO_E_VERSION "unsupported_version"

enum field_type { FT_STRING, FT_INT, FT_BOOL };

/* Every field a request may carry besides "v" and "op". */
enum field_id {
	F_SCOPE,
	F_MIN_VALID,
	F_WAIT,
	F_USER,
	F_SERVICE,
	F_TTY,
	F_WORKLOAD,
	F_INTERACTIVE,
	F_SESSION,
	F_CURSOR,
	F_LIMIT,
	F_CAE,
	F_CLAIMS,
	F_CGROUP,
	F_URL,
	F_COUNT
};

struct field_spec {
	const char *name;
	enum field_type type;
	long long min, max;  /* FT_INT: inclusive range */
	int is_nonempty;     /* FT_STRING: "" is refused */
	const char *bad_msg; /* static: wrong type, range or length */
	const char *missing_msg;
};

/* Static messages only: a peer's bytes never reach an error message. */
#define MSG_STR(f)                                                             \
	"\"" f "\" must be a string of at most " XSTR(PROTO_STR_MAX) " bytes"
#define MSG_NESTR(f)                                                           \
	"\"" f "\" must be a non-empty string of at most " XSTR(               \
	    PROTO_STR_MAX) " bytes"
#define MSG_INT(f, lo, hi) "\"" f "\" must be an integer in " #lo ".." XSTR(hi)
#define MSG_MISSING(f) "missing \"" f "\""

static const struct field_spec fields[F_COUNT] = {
	[F_SCOPE] = { "scope", FT_STRING, 0, 0, 1, MSG_NESTR("scope"),
	    MSG_MISSING("scope") },
	[F_MIN_VALID] = { "min_valid", FT_INT, 0, PROTO_MIN_VALID_MAX, 0,
	    MSG_INT("min_valid", 0, PROTO_MIN_VALID_MAX),
	    MSG_MISSING("min_valid") },
	[F_WAIT] = { "wait", FT_INT, 0, PROTO_WAIT_MAX, 0,
	    MSG_INT("wait", 0, PROTO_WAIT_MAX), MSG_MISSING("wait") },
	[F_USER] = { "user", FT_STRING, 0, 0, 1, MSG_NESTR("user"),
	    MSG_MISSING("user") },
	[F_SERVICE] = { "service", FT_STRING, 0, 0, 0, MSG_STR("service"),
	    MSG_MISSING("service") },
	[F_TTY] = { "tty", FT_STRING, 0, 0, 0, MSG_STR("tty"),
	    MSG_MISSING("tty") },
	[F_WORKLOAD] = { "workload", FT_STRING, 0, 0, 1, MSG_NESTR("workload"),
	    MSG_MISSING("workload") },
	[F_INTERACTIVE] = { "interactive", FT_BOOL, 0, 0, 0,
	    "\"interactive\" must be a boolean", MSG_MISSING("interactive") },
	[F_SESSION] = { "session", FT_STRING, 0, 0, 1, MSG_NESTR("session"),
	    MSG_MISSING("session") },
	[F_CURSOR] = { "cursor", FT_STRING, 0, 0, 0, MSG_STR("cursor"),
	    MSG_MISSING("cursor") },
	[F_LIMIT] = { "limit", FT_INT, 1, PROTO_LIST_LIMIT_MAX, 0,
	    MSG_INT("limit", 1, PROTO_LIST_LIMIT_MAX), MSG_MISSING("limit") },
	[F_CAE] = { "cae", FT_BOOL, 0, 0, 0, "\"cae\" must be a boolean",
	    MSG_MISSING("cae") },
	[F_CLAIMS] = { "claims", FT_STRING, 0, 0, 1,
	    "\"claims\" must be a non-empty string of at most " XSTR(
		PROTO_CLAIMS_MAX) " bytes",
	    MSG_MISSING("claims") },
	[F_CGROUP] = { "cgroup", FT_STRING, 0, 0, 1, MSG_NESTR("cgroup"),
	    MSG_MISSING("cgroup") },
	[F_URL] = { "url", FT_STRING, 0, 0, 1,
	    "\"url\" must be a non-empty string of at most " XSTR(
		PROTO_URL_MAX) " bytes",
	    MSG_MISSING("url") },
};

#define ALLOW(f) (1u << (f))

/* Per op: the fields it accepts and the ones it requires. */
static const struct op_spec {
	const char *name;
	unsigned allowed;
	unsigned required;
} ops[PROTO_OP_COUNT] = {
	[PROTO_OP_NONE] = { "none", 0, 0 },
	[PROTO_OP_TOKEN] = { "token",
	    ALLOW(F_SCOPE) | ALLOW(F_MIN_VALID) | ALLOW(F_CAE) |
		ALLOW(F_CLAIMS),
	    0 },
	[PROTO_OP_LOGIN] = { "login", ALLOW(F_WAIT), 0 },
	[PROTO_OP_STATUS] = { "status", 0, 0 },
	[PROTO_OP_LOGOUT] = { "logout", 0, 0 },
	[PROTO_OP_SESSION_OPEN] = { "session_open",
	    ALLOW(F_USER) | ALLOW(F_SERVICE) | ALLOW(F_TTY) |
		ALLOW(F_WORKLOAD) | ALLOW(F_INTERACTIVE),
	    ALLOW(F_USER) },
	[PROTO_OP_SESSION_CLOSE] = { "session_close",
	    ALLOW(F_USER) | ALLOW(F_SESSION),
	    ALLOW(F_USER) | ALLOW(F_SESSION) },
	[PROTO_OP_ADMIN_LIST] = { "admin_list",
	    ALLOW(F_CURSOR) | ALLOW(F_LIMIT), 0 },
	[PROTO_OP_ADMIN_REVOKE] = { "admin_revoke", ALLOW(F_USER),
	    ALLOW(F_USER) },
	[PROTO_OP_STATS] = { "stats", 0, 0 },
	[PROTO_OP_SDK_ENV] = { "sdk_env", 0, 0 },
	[PROTO_OP_METRICS] = { "metrics", 0, 0 },
	[PROTO_OP_HEALTH] = { "health", 0, 0 },
	[PROTO_OP_BIND] = { "bind",
	    ALLOW(F_CGROUP) | ALLOW(F_USER) | ALLOW(F_WORKLOAD),
	    ALLOW(F_CGROUP) | ALLOW(F_USER) },
	[PROTO_OP_UNBIND] = { "unbind", ALLOW(F_CGROUP), ALLOW(F_CGROUP) },
	[PROTO_OP_BINDINGS] = { "bindings", 0, 0 },
	[PROTO_OP_LOGIN_CODE] = { "login_code", ALLOW(F_URL), ALLOW(F_URL) },
	[PROTO_OP_ADMIN_OFFBOARD] = { "admin_offboard", ALLOW(F_USER),
	    ALLOW(F_USER) },
};

const char *
proto_op_name(enum proto_op op)
{
	if ((int)op < 0 || op >= PROTO_OP_COUNT)
		return "none";
	return ops[op].name;
}

enum proto_op
proto_op_from_name(const char *name)
{
	int i;

	if (name == NULL)
		return PROTO_OP_NONE;
	for (i = PROTO_OP_NONE + 1; i < PROTO_OP_COUNT; i++)
		if (strcmp(ops[i].name, name) == 0)
			return (enum proto_op)i;
	return PROTO_OP_NONE;
}

static int
field_lookup(const char *key)
{
	int i;

	for (i = 0; i < F_COUNT; i++)
		if (strcmp(fields[i].name, key) == 0)
			return i;
	return -1;
}

static void
request_defaults(struct proto_request *req)
{
	json_t *root = req->root;
	enum proto_op op = req->op;

	memset(req, 0, sizeof(*req));
	req->root = root;
	req->op = op;
	req->min_valid = PROTO_MIN_VALID_DEFAULT;
	req->wait = 0;
	req->limit = PROTO_LIST_LIMIT_DEFAULT;
	req->interactive = 0;
}

/* Check one value against its spec and store it into req. */
static int
field_store(struct proto_request *req, int id, json_t *val)
{
	const struct field_spec *fs = &fields[id];
	const char *s = NULL;
	json_int_t n = 0;
	size_t len = 0;

	switch (fs->type) {
	case FT_STRING:
		if (!json_is_string(val))
			return -EBADMSG;
		s = json_string_value(val);
		len = json_string_length(val);
		/* jansson refuses \u0000 already; check anyway. */
		if (len > (id == F_CLAIMS     ? PROTO_CLAIMS_MAX :
				  id == F_URL ? PROTO_URL_MAX :
						PROTO_STR_MAX) ||
		    strlen(s) != len)
			return -EBADMSG;
		if (fs->is_nonempty && len == 0)
			return -EBADMSG;
		break;
	case FT_INT:
		if (!json_is_integer(val))
			return -EBADMSG;
		n = json_integer_value(val);
		if (n < fs->min || n > fs->max)
			return -EBADMSG;
		break;
	case FT_BOOL:
		if (!json_is_boolean(val))
			return -EBADMSG;
		break;
	}
	switch (id) {
	case F_SCOPE:
		req->scope = s;
		break;
	case F_MIN_VALID:
		req->min_valid = n;
		break;
	case F_WAIT:
		req->wait = n;
		break;
	case F_USER:
		req->user = s;
		break;
	case F_SERVICE:
		req->service = s;
		break;
	case F_TTY:
		req->tty = s;
		break;
	case F_WORKLOAD:
		req->workload = s;
		break;
	case F_INTERACTIVE:
		req->interactive = json_is_true(val);
		break;
	case F_SESSION:
		req->session = s;
		break;
	case F_CURSOR:
		req->cursor = s;
		break;
	case F_LIMIT:
		req->limit = n;
		break;
	case F_CAE:
		req->cae = json_is_true(val);
		break;
	case F_CLAIMS:
		req->claims = s;
		break;
	case F_CGROUP:
		req->cgroup = s;
		break;
	case F_URL:
		req->url = s;
		req->url_len = len;
		break;
	default:
		return -EBADMSG;
	}
	return 0;
}

/* Parse and check the envelope: an object with "v" == 1 and a known "op". */
static int
decode_envelope(const char *line, size_t len, struct proto_request *req,
    const char **msg)
{
	json_error_t err;
	json_t *v, *op;

	req->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (req->root == NULL) {
		switch (json_error_code(&err)) {
		case json_error_out_of_memory:
			*msg = "out of memory";
			return -ENOMEM;
		case json_error_duplicate_key:
			*msg = "duplicate key";
			return -EBADMSG;
		case json_error_null_character:
		case json_error_null_byte_in_key:
			*msg = "NUL character in request";
			return -EBADMSG;
		default:
			*msg = "request is not valid JSON";
			return -EBADMSG;
		}
	}
	if (!json_is_object(req->root)) {
		*msg = "request must be a JSON object";
		return -EBADMSG;
	}
	/* Note the op early so that errors can name it. */
	op = json_object_get(req->root, "op");
	if (json_is_string(op))
		req->op = proto_op_from_name(json_string_value(op));
	v = json_object_get(req->root, "v");
	if (v == NULL) {
		*msg = "missing \"v\" (protocol version)";
		return -EBADMSG;
	}
	if (!json_is_integer(v)) {
		*msg = "\"v\" must be an integer";
		return -EBADMSG;
	}
	if (json_integer_value(v) != PROTO_VERSION) {
		*msg = "unsupported protocol version; this server speaks v1";
		return -EPROTONOSUPPORT;
	}
	if (op == NULL) {
		*msg = "missing \"op\"";
		return -EBADMSG;
	}
	if (!json_is_string(op)) {
		*msg = "\"op\" must be a string";
		return -EBADMSG;
	}
	if (req->op == PROTO_OP_NONE) {
		*msg = "unknown op";
		return -EBADMSG;
	}
	return 0;
}

/* Check every member against the op's table and fill req. */
static int
decode_fields(struct proto_request *req, const char **msg)
{
	const struct op_spec *os = &ops[req->op];
	unsigned seen = 0;
	const char *key;
	json_t *val;
	int id, i;

	json_object_foreach(req->root, key, val)
	{
		if (strcmp(key, "v") == 0 || strcmp(key, "op") == 0)
			continue;
		id = field_lookup(key);
		if (id < 0 || !(os->allowed & ALLOW(id))) {
			*msg = "unknown field for this op";
			return -EBADMSG;
		}
		if (field_store(req, id, val) < 0) {
			*msg = fields[id].bad_msg;
			return -EBADMSG;
		}
		seen |= ALLOW(id);
	}
	for (i = 0; i < F_COUNT; i++) {
		if ((os->required & ALLOW(i)) && !(seen & ALLOW(i))) {
			*msg = fields[i].missing_msg;
			return -EBADMSG;
		}
	}
	return 0;
}

int
proto_request_decode(const char *line, size_t len, struct proto_request *req,
    const char **code, const char **msg)
{
	*code = NULL;
	*msg = NULL;
	/* The common lines (plain strings, known keys) skip the JSON tree. */
	if (line != NULL && len <= PROTO_LINE_MAX - 1 &&
	    proto_lite_request_decode(line, len, req))
		return 0;
	return proto_request_decode_json(line, len, req, code, msg);
}

int
proto_request_decode_json(const char *line, size_t len,
    struct proto_request *req, const char **code, const char **msg)
{
	const char *m = NULL;
	int r;

	memset(req, 0, sizeof(*req));
	*code = NULL;
	*msg = NULL;
	/* PROTO_LINE_MAX counts the newline, which the caller stripped. */
	if (line == NULL || len > PROTO_LINE_MAX - 1) {
		*code = PROTO_E_LARGE;
		*msg = "request line exceeds " XSTR(PROTO_LINE_MAX) " bytes";
		return -EMSGSIZE;
	}
	r = decode_envelope(line, len, req, &m);
	if (r == 0) {
		request_defaults(req);
		r = decode_fields(req, &m);
	}
	if (r < 0) {
		enum proto_op op = req->op;

		proto_request_clear(req);
		req->op = op; /* the header promises it on failure too */
		*code = r == -EPROTONOSUPPORT ? PROTO_E_VERSION :
		    r == -ENOMEM	      ? "internal" :
						PROTO_E_BAD;
		*msg = m;
		return r;
	}
	return 0;
}

void
proto_request_clear(struct proto_request *req)
{
	if (req == NULL)
		return;
	json_decref(req->root);
	memset(req, 0, sizeof(*req));
}

json_t *
proto_ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

json_t *
proto_error(const char *code, const char *msg)
{
	if (code == NULL)
		return NULL;
	return json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", code,
	    "message", msg != NULL ? msg : "");
}

json_t *
proto_token_reply(const char *tok, size_t toklen, const char *type,
    int64_t expires_on, const char *scope, const char *account)
{
	json_t *o = proto_ok();
	int bad = o == NULL;

	/* Insertion order is the wire order (jansson keeps it). */
	if (!bad)
		bad = json_object_set_new(o, "access_token",
			  json_stringn_nocheck(tok, toklen)) != 0;
	if (!bad)
		bad = json_object_set_new(o, "token_type", json_string(type)) !=
		    0;
	if (!bad)
		bad = json_object_set_new(o, "expires_on",
			  json_integer(expires_on)) != 0;
	if (!bad)
		bad = json_object_set_new(o, "scope", json_string(scope)) != 0;
	if (!bad)
		bad = json_object_set_new(o, "account",
			  account != NULL ? json_string(account) :
					    json_null()) != 0;
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
proto_error_obj(json_t *resp)
{
	json_t *e;

	e = json_object_get(resp, "error");
	return json_is_object(e) ? e : NULL;
}

char *
proto_encode(const json_t *v, size_t *len)
{
	const size_t flags = JSON_COMPACT;
	size_t need, got;
	char *buf;

	if (len != NULL)
		*len = 0;
	if (v == NULL || len == NULL) {
		errno = EINVAL;
		return NULL;
	}
	/*
	 * Two passes with json_dumpb write straight into our buffer, so no
	 * growing intermediate copy of a token is left behind unwiped.
	 */
	need = json_dumpb(v, NULL, 0, flags);
	if (need == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (need > PROTO_LINE_MAX - 1) {
		errno = EMSGSIZE;
		return NULL;
	}
	buf = malloc(need + 2);
	if (buf == NULL)
		return NULL;
	got = json_dumpb(v, buf, need, flags);
	if (got != need) {
		secret_wipe(buf, need + 2);
		free(buf);
		errno = EINVAL;
		return NULL;
	}
	buf[need] = '\n';
	buf[need + 1] = '\0';
	*len = need + 1;
	return buf;
}

/*
 * The object jansson's parser makes of an ok token reply that
 * proto_lite_token_reply read: the same members in the line's order,
 * with the same values. NULL on ENOMEM.
 */
static json_t *
token_reply_object(const struct proto_token_reply *tr)
{
	static const char *const keys[PROTO_TR_COUNT] = {
		[PROTO_TR_OK] = "ok",
		[PROTO_TR_TOKEN] = "access_token",
		[PROTO_TR_TYPE] = "token_type",
		[PROTO_TR_EXP] = "expires_on",
		[PROTO_TR_SCOPE] = "scope",
		[PROTO_TR_ACCOUNT] = "account",
	};
	json_t *o = json_object(), *v = NULL;
	unsigned i;

	for (i = 0; o != NULL && i < tr->members; i++) {
		switch (tr->order[i]) {
		case PROTO_TR_OK:
			v = json_true();
			break;
		case PROTO_TR_TOKEN:
			v = json_stringn_nocheck(tr->access_token,
			    tr->access_token_len);
			break;
		case PROTO_TR_TYPE:
			v = json_stringn_nocheck(tr->token_type,
			    tr->token_type_len);
			break;
		case PROTO_TR_EXP:
			v = json_integer(tr->expires_on);
			break;
		case PROTO_TR_SCOPE:
			v = json_stringn_nocheck(tr->scope, tr->scope_len);
			break;
		default:
			v = tr->account != NULL ?
			    json_stringn_nocheck(tr->account, tr->account_len) :
			    json_null();
			break;
		}
		/* Plain strings are valid UTF-8: nocheck is what the parser does. */
		if (v == NULL ||
		    json_object_set_new_nocheck(o, keys[tr->order[i]], v) !=
			0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

int
proto_response_decode(const char *line, size_t len, json_t **out)
{
	struct proto_token_reply tr;
	json_error_t err;
	json_t *root, *ok, *e, *code;

	*out = NULL;
	if (line == NULL || len > PROTO_LINE_MAX - 1)
		return -EBADMSG;
	/* The usual reply to the usual request, without jansson's parser. */
	if (proto_lite_token_reply(line, len, &tr)) {
		root = token_reply_object(&tr);
		secret_wipe(&tr, sizeof(tr));
		if (root == NULL)
			return -ENOMEM;
		*out = root;
		return 0;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL)
		return json_error_code(&err) == json_error_out_of_memory ?
		    -ENOMEM :
		    -EBADMSG;
	ok = json_object_get(root, "ok");
	if (!json_is_object(root) || !json_is_boolean(ok))
		goto bad;
	if (json_is_false(ok)) {
		e = json_object_get(root, "error");
		code = json_object_get(e, "code");
		if (!json_is_object(e) || !json_is_string(code))
			goto bad;
	}
	*out = root;
	return 0;
bad:
	json_decref(root);
	return -EBADMSG;
}

const char *
proto_response_error(const json_t *resp)
{
	const json_t *e, *code;

	if (json_is_true(json_object_get(resp, "ok")))
		return NULL;
	e = json_object_get(resp, "error");
	code = json_object_get(e, "code");
	return json_is_string(code) ? json_string_value(code) : "internal";
}

json_t *
proto_versions(void)
{
	return json_pack("[i]", PROTO_VERSION);
}
