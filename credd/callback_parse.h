/*
 * callback_parse.h - the pure part of the platform sign-in callback
 * (callback.c): one request's method and raw target (path and query, as
 * the browser sent them) into what to do. No I/O, no libmicrohttpd:
 * callback.c feeds it the raw target (MHD's URI log callback), and
 * fuzz/fuzz_callback.c feeds it arbitrary bytes.
 *
 * Two requests, GET or HEAD only:
 *   GET /entra/login/<id>  a short sign-in link; id is exactly
 *     CALLBACK_ID_LEN base64url characters ([A-Za-z0-9_-]): 16 random
 *     bytes (128 bits) unpadded; or, for a cluster's flow, a flowref
 *     (CALLBACK_ID_CLUSTER_MIN..CALLBACK_ID_MAX of the same alphabet).
 *     A query after it is ignored.
 *   GET /entra/callback?code=C&state=S, or
 *       ?error=E&error_description=D&state=S   where Entra redirects to.
 * Query values are %-decoded ('+' is a space). A known key (code, state,
 * error, error_description) given twice is refused, as is one over its
 * limit, a bad %-escape, a NUL, or code and error together; unknown keys
 * (session_state, client_info, ...) are ignored. The path is matched
 * exactly (no %-decoding, no trailing slash). Host is not looked at: the
 * listener sits behind a reverse proxy that names itself.
 *
 * Must never: keep or copy the code anywhere but out->code (a struct
 * secret, wiped when cleared), read past the target's NUL, or accept a
 * value outside the character set documented for it.
 */
#ifndef CREDD_CALLBACK_PARSE_H
#define CREDD_CALLBACK_PARSE_H

#include <stddef.h>

struct secret;

#define CALLBACK_LOGIN_PREFIX "/entra/login/"
#define CALLBACK_REDIRECT_PATH "/entra/callback"
#define CALLBACK_ID_LEN 22 /* base64url of 16 bytes, no padding */
/* A cluster flow's link id (flowref.h: the user sealed), 86..200. */
#define CALLBACK_ID_CLUSTER_MIN 86
#define CALLBACK_ID_MAX 200
#define CALLBACK_TARGET_MAX 8192 /* the whole request target, raw */
#define CALLBACK_CODE_MAX 4096	 /* the code, decoded */
#define CALLBACK_STATE_MAX 256	 /* state, decoded: [A-Za-z0-9._~-] */
#define CALLBACK_ERROR_MAX 64	 /* error, decoded: visible ASCII */
#define CALLBACK_DESC_MAX 1024	 /* error_description, decoded */
#define CALLBACK_ISS_MAX 512	 /* iss (RFC 9207), decoded: https:// */

enum callback_kind {
	CALLBACK_REFUSED, /* answer status with why */
	CALLBACK_LOGIN,	  /* id */
	CALLBACK_REDEEM	  /* state, and code or error (+ error_desc) */
};

struct callback_target {
	enum callback_kind kind;
	unsigned status; /* CALLBACK_REFUSED: 400, 404, 405 or 414 */
	const char *why; /* CALLBACK_REFUSED: static, for the page and log */
	int is_head;	 /* HEAD: answer the headers, change nothing */
	char id[CALLBACK_ID_MAX + 1];
	char state[CALLBACK_STATE_MAX + 1];
	struct secret *code; /* owned; NULL unless code= */
	char error[CALLBACK_ERROR_MAX + 1];
	/* Control bytes and non-ASCII shown as '?' (Entra's have CR LF). */
	char error_desc[CALLBACK_DESC_MAX + 1];
	char iss[CALLBACK_ISS_MAX + 1]; /* RFC 9207's issuer, "" absent */
	int has_error; /* error= was given (error may not be empty) */
};

/*
 * Parse method and target (NUL-terminated; NULL is refused) into out,
 * which is cleared first. Returns 0 with kind LOGIN or REDEEM; else
 * kind REFUSED with status and why, and -ENOENT (no such path, 404),
 * -EOPNOTSUPP (a method other than GET or HEAD, 405), -EMSGSIZE (the
 * target or a value too long, 414 or 400), -EBADMSG (malformed, 400) or
 * -ENOMEM (500). Free out with callback_target_clear in every case.
 */
int callback_parse(const char *method, const char *target,
    struct callback_target *out);
/* Wipe and free the code; out is cleared. NULL does nothing. */
void callback_target_clear(struct callback_target *t);

/* 1 when s is an id of the documented shape, else 0. */
int callback_id_is_valid(const char *s, size_t n);

#endif
