/*
 * proto.h - socket protocol v1: newline-delimited JSON (docs/protocol.md).
 *
 * The codec is shared by credd (decodes requests, encodes responses) and
 * by the clients, credctl and pam_entra (encode requests, decode
 * responses). It only parses and builds; it never logs and never does I/O.
 * Decoding is strict: duplicate keys, unknown fields, wrong types and
 * lines over PROTO_LINE_MAX are refused with a wire error code.
 */
#ifndef ENTRA_PROTO_H
#define ENTRA_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#define PROTO_VERSION 1
#define PROTO_LINE_MAX 65536 /* bytes per line, newline included */
#define PROTO_MIN_VALID_DEFAULT 300
#define PROTO_MIN_VALID_MAX 86400
#define PROTO_WAIT_MAX 900
#define PROTO_LIST_LIMIT_DEFAULT 100
#define PROTO_LIST_LIMIT_MAX 1000
#define PROTO_STR_MAX 1024 /* longest accepted string field */
/* token's claims (a challenge, base64 or JSON): longest accepted string */
#define PROTO_CLAIMS_MAX 16384
#define PROTO_URL_MAX 8192 /* login_code's "url" (Entra codes are long) */
#define PROTO_LITE_BUF                                                         \
	256 /* string bytes (NULs included) the fast path keeps */

enum proto_op {
	PROTO_OP_NONE = 0,
	PROTO_OP_TOKEN,
	PROTO_OP_LOGIN,
	PROTO_OP_STATUS,
	PROTO_OP_LOGOUT,
	PROTO_OP_SESSION_OPEN,
	PROTO_OP_SESSION_CLOSE,
	PROTO_OP_ADMIN_LIST,
	PROTO_OP_ADMIN_REVOKE,
	PROTO_OP_STATS,
	PROTO_OP_SDK_ENV,    /* mint an SDK endpoint secret for the caller */
	PROTO_OP_METRICS,    /* the Prometheus text page (admin) */
	PROTO_OP_HEALTH,     /* store, IdP and key ring usable? (any caller) */
	PROTO_OP_BIND,	     /* bind a cgroup to (user, workload) (admin) */
	PROTO_OP_UNBIND,     /* end a cgroup's binding (admin) */
	PROTO_OP_BINDINGS,   /* list bound cgroups (admin) */
	PROTO_OP_LOGIN_CODE, /* the address a paste-back sign-in ended on */
	PROTO_OP_ADMIN_OFFBOARD, /* Graph revokes a user's sessions (admin) */
	PROTO_OP_COUNT
};

/*
 * A decoded request. String fields point into the json_t that
 * proto_request_decode() keeps in req->root, or into req->lite when the
 * fast path (proto_lite_request_decode) took the line; either way they
 * live until proto_request_clear() and move with nothing (do not copy
 * the struct and keep the copy's pointers). Absent optional fields are
 * NULL / -1.
 */
struct proto_request {
	json_t *root; /* NULL when the fast path decoded the line */
	enum proto_op op;
	const char *scope;    /* token */
	int64_t min_valid;    /* token; default PROTO_MIN_VALID_DEFAULT */
	int cae;	      /* token: a CAE token wanted, default 0 */
	const char *claims;   /* token: a claims challenge (not checked
				    * here beyond being a string) */
	int64_t wait;	      /* login, default 0 */
	const char *user;     /* session_open/close, admin_revoke */
	const char *service;  /* session_open */
	const char *tty;      /* session_open */
	const char *workload; /* session_open */
	int interactive;      /* session_open, default 0 */
	const char *session;  /* session_close */
	const char *cgroup;   /* bind, unbind */
	const char *cursor;   /* admin_list */
	int64_t limit;	      /* admin_list, default 100 */
	const char *url;      /* login_code: a secret (a sign-in code in it) */
	size_t url_len;
	char lite[PROTO_LITE_BUF]; /* the fast path's strings, NUL-terminated */
};

/*
 * Decode one line (without its newline; len bytes, need not be
 * NUL-terminated). On success returns 0 and fills *req (caller calls
 * proto_request_clear). On failure returns a negative errno and sets
 * *code to a static wire error name ("bad_request", "too_large",
 * "unsupported_version") and *msg to a static human message; when the
 * op was recognised, req->op is set even on failure.
 */
int proto_request_decode(const char *line, size_t len,
    struct proto_request *req, const char **code, const char **msg);
/*
 * The same decoder with every line going through jansson (no fast
 * path): for tests and the fuzz target, which check that both agree.
 */
int proto_request_decode_json(const char *line, size_t len,
    struct proto_request *req, const char **code, const char **msg);
void proto_request_clear(struct proto_request *req);

/*
 * lib/proto_lite.c: the common lines without jansson. Each function
 * handles a strict subset of what its jansson counterpart takes, and
 * for that subset gives exactly its result; on anything else it
 * declines (returns 0 or -EDOM) and the caller uses the jansson path.
 * "Plain" text is bytes 0x20..0x7e except '"' and '\': JSON carries it
 * verbatim, with nothing to escape or unescape.
 */
/* 1 when s[0..len) is plain text. */
int proto_lite_is_plain(const char *s, size_t len);
/*
 * Decode line[0..len) (len < PROTO_LINE_MAX) into *req as
 * proto_request_decode would succeed on it: 1, req filled (its strings
 * in req->lite, req->root NULL). 0: not handled here (a line outside the
 * subset: escapes, non-ASCII, an unknown or duplicate key, a missing or
 * out-of-range field, more string bytes than PROTO_LITE_BUF, ...), req
 * zeroed. Allocates nothing.
 */
int proto_lite_request_decode(const char *line, size_t len,
    struct proto_request *req);

/*
 * The ok token reply (docs/protocol.md section 4) as one line:
 * {"ok":true,"access_token":T,"token_type":Y,"expires_on":N,"scope":S,
 * "account":A|null}\n, byte for byte what proto_encode writes for
 * proto_token_reply() of the same values. account NULL is null.
 */
/* Bytes of that line, newline included; 0 unless every string is plain. */
size_t proto_lite_token_line_len(const char *tok, size_t toklen,
    const char *type, int64_t expires_on, const char *scope,
    const char *account);
/*
 * Write it into out[0..cap): its length (no NUL added), or -EDOM (a
 * string is not plain: use the jansson path), -EMSGSIZE (cap too small;
 * nothing is written past cap).
 */
ssize_t proto_lite_token_line(char *out, size_t cap, const char *tok,
    size_t toklen, const char *type, int64_t expires_on, const char *scope,
    const char *account);

/* The members of an ok token reply, as proto_token_reply.order names them. */
enum {
	PROTO_TR_OK,
	PROTO_TR_TOKEN,
	PROTO_TR_TYPE,
	PROTO_TR_EXP,
	PROTO_TR_SCOPE,
	PROTO_TR_ACCOUNT,
	PROTO_TR_COUNT
};

/* An ok token reply as proto_lite_token_reply reads it: views into the line. */
struct proto_token_reply {
	const char *access_token; /* not NUL-terminated; a secret */
	size_t access_token_len;
	const char *token_type; /* NULL when absent */
	size_t token_type_len;
	int64_t expires_on; /* 0 when absent */
	const char *scope;  /* NULL when absent */
	size_t scope_len;
	const char *account; /* NULL when null or absent */
	size_t account_len;
	/* The members in the line's order: PROTO_TR_* (proto.c rebuilds
	 * the object jansson would make, member order included). */
	unsigned char order[PROTO_TR_COUNT];
	unsigned char members;
};
/*
 * Read line[0..len) (without its newline) as an ok token reply: 1 and
 * *out (pointers into line), when it is an object with "ok":true, a
 * plain "access_token" and nothing but the token reply's members
 * (token_type, scope and account plain strings, account also null,
 * expires_on an integer), each at most once. 0 otherwise (an error
 * reply, escapes, another member, malformed): proto_response_decode
 * decides then. Allocates nothing.
 */
int proto_lite_token_reply(const char *line, size_t len,
    struct proto_token_reply *out);
/*
 * The request {"v":1,"op":"token"[,"scope":S][,"min_valid":N]}\n (scope
 * NULL: absent; min_valid < 0: absent) into out[0..cap), as
 * proto_encode writes it for the same object built in that key order:
 * its length, -EDOM (scope not plain, or longer than PROTO_STR_MAX),
 * -EMSGSIZE (cap too small).
 */
ssize_t proto_lite_token_request(char *out, size_t cap, const char *scope,
    int64_t min_valid);

/* Op name <-> enum. proto_op_name(PROTO_OP_NONE) is "none". */
const char *proto_op_name(enum proto_op op);
enum proto_op proto_op_from_name(const char *name);

/*
 * Response builders. proto_ok() returns {"ok":true}; add fields with
 * json_object_set_new. proto_error() returns
 * {"ok":false,"error":{"code":code,"message":msg}}; add details to the
 * object returned by proto_error_obj(). NULL on ENOMEM.
 */
json_t *proto_ok(void);
json_t *proto_error(const char *code, const char *msg);
json_t *proto_error_obj(json_t *resp);
/*
 * The ok token reply as a JSON object (the members in the order of
 * docs/protocol.md): tok[0..toklen) is taken as is (it must be valid
 * UTF-8 for proto_encode to write it), account NULL is null. NULL on
 * ENOMEM or when type, scope or account is not UTF-8.
 */
json_t *proto_token_reply(const char *tok, size_t toklen, const char *type,
    int64_t expires_on, const char *scope, const char *account);

/*
 * Encode a JSON value as one compact line ending in '\n'. Returns a
 * malloc'd NUL-terminated buffer and its length in *len, or NULL
 * (-EMSGSIZE via errno if over PROTO_LINE_MAX, ENOMEM otherwise).
 * The caller wipes it with secret_wipe_str() if it may hold a token.
 */
char *proto_encode(const json_t *v, size_t *len);

/*
 * Decode a response line (client side). Returns 0 and *out (owned) if the
 * line is a JSON object with a boolean "ok"; -EBADMSG otherwise.
 */
int proto_response_decode(const char *line, size_t len, json_t **out);

/* For a decoded response: NULL if ok, else the error code string. */
const char *proto_response_error(const json_t *resp);

/* The supported versions, for unsupported_version details: [1]. */
json_t *proto_versions(void);

#endif
