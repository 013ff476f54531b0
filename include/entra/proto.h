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
#include <jansson.h>

#define PROTO_VERSION 1
#define PROTO_LINE_MAX 65536 /* bytes per line, newline included */
#define PROTO_MIN_VALID_DEFAULT 300
#define PROTO_MIN_VALID_MAX 86400
#define PROTO_WAIT_MAX 900
#define PROTO_LIST_LIMIT_DEFAULT 100
#define PROTO_LIST_LIMIT_MAX 1000
#define PROTO_STR_MAX 1024 /* longest accepted string field */

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
	PROTO_OP_SDK_ENV, /* mint an SDK endpoint secret for the caller */
	PROTO_OP_METRICS, /* the Prometheus text page (admin) */
	PROTO_OP_HEALTH,  /* store, IdP and key ring usable? (any caller) */
	PROTO_OP_COUNT
};

/*
 * A decoded request. String fields point into the json_t that
 * proto_request_decode() keeps in req->root; they live until
 * proto_request_clear(). Absent optional fields are NULL / -1.
 */
struct proto_request {
	json_t *root;
	enum proto_op op;
	const char *scope;    /* token */
	int64_t min_valid;    /* token; default PROTO_MIN_VALID_DEFAULT */
	int64_t wait;	      /* login, default 0 */
	const char *user;     /* session_open/close, admin_revoke */
	const char *service;  /* session_open */
	const char *tty;      /* session_open */
	const char *workload; /* session_open */
	int interactive;      /* session_open, default 0 */
	const char *session;  /* session_close */
	const char *cursor;   /* admin_list */
	int64_t limit;	      /* admin_list, default 100 */
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
void proto_request_clear(struct proto_request *req);

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
