/*
 * authcode.h - the authorization code flow's pieces that need no broker
 * (RFC 6749 4.1, RFC 7636 PKCE with S256): the verifier and its
 * challenge, unguessable state and link ids, the authorize URL, the
 * paste-back redirect URI of the configured cloud, and the strict parser
 * of the address a user pastes back (or a callback's query).
 *
 * Must never: log (it cannot: it has no log), put the code or the
 * verifier anywhere but a struct secret, or accept input past its
 * bounds. The parser reads bytes from users: fuzz/fuzz_authcode.c.
 */
#ifndef CREDD_AUTHCODE_H
#define CREDD_AUTHCODE_H

#include <stddef.h>

struct secret;

/* The longest address a user may paste (Entra's codes run to ~1.5 KiB). */
#define AUTHCODE_URL_MAX 8192
/* A PKCE verifier: 32 random bytes, base64url (43 chars; RFC 7636 4.1). */
#define AUTHCODE_VERIFIER_LEN 43
/* state: 24 random bytes (192 bits), base64url: 32 chars. */
#define AUTHCODE_STATE_LEN 32
/* A short sign-in link's id: 16 random bytes (128 bits): 22 chars. */
#define AUTHCODE_LINK_LEN 22
/* Bounds of what the parser keeps besides the code. */
#define AUTHCODE_ERROR_MAX 64
#define AUTHCODE_DESC_MAX 256
#define AUTHCODE_ISS_MAX 512

/*
 * A new PKCE pair: *verifier (a secret, 43 chars) and its S256
 * challenge (base64url of SHA-256(verifier), 43 chars + NUL) in
 * challenge. 0 or -ENOMEM.
 */
int authcode_pkce(struct secret **verifier,
    char challenge[AUTHCODE_VERIFIER_LEN + 1]);
/*
 * n random bytes as base64url without padding into dst (dstsz must hold
 * it and a NUL: 4n/3 + 2). 0 or -ENAMETOOLONG.
 */
int authcode_random(size_t n, char *dst, size_t dstsz);

/*
 * The paste-back redirect URI of the cloud authority names:
 * "<scheme>://<host[:port]>/common/oauth2/nativeclient" (the "Mobile
 * and desktop applications" platform's suggested URI). 0, -EINVAL (not
 * an http(s) URL), -ENAMETOOLONG.
 */
int authcode_nativeclient_uri(const char *authority, char *dst, size_t dstsz);

/* What an authorize URL asks for. NULL hints are left out. */
struct authcode_request {
	const char *authorize_url; /* oauth_url_authorize's */
	const char *client_id;
	const char *redirect_uri;
	const char *scope; /* the full space-separated string */
	const char *state;
	const char *challenge;	 /* S256 */
	const char *login_hint;	 /* may be NULL */
	const char *domain_hint; /* may be NULL */
};
/*
 * The authorize URL (response_type=code, response_mode=query, PKCE
 * S256, prompt=select_account), malloc'd in *out. 0, -EINVAL, -ENOMEM.
 */
int authcode_authorize_url(const struct authcode_request *rq, char **out);

/* A redirect's answer, as the parser found it. */
struct authcode_reply {
	struct secret *code; /* NULL when Entra sent an error */
	char state[AUTHCODE_STATE_LEN + 1];
	char error[AUTHCODE_ERROR_MAX];	    /* "" when a code came */
	char error_desc[AUTHCODE_DESC_MAX]; /* "" or Entra's, cut */
	char iss[AUTHCODE_ISS_MAX]; /* RFC 9207's issuer, "" when absent */
};
void authcode_reply_clear(struct authcode_reply *rp);

/*
 * Parse what a user pasted: the address of redirect_uri their browser
 * landed on, "<redirect_uri>?<query>" (surrounding blanks and one line
 * end are dropped; nothing else is forgiven). The query is
 * application/x-www-form-urlencoded; each key at most once; code, state,
 * error, error_description and iss (RFC 9207: the caller compares it with
 * the discovered issuer) are read, session_state, error_uri,
 * error_subcode, trace_id, correlation_id and client_info are skipped,
 * any other key is refused (a strict parser: it is not ours). A code
 * and state, or an error and state, must be there; state must be
 * AUTHCODE_STATE_LEN base64url chars. Returns 0 and *out (clear it),
 * or:
 *   -EMSGSIZE  longer than AUTHCODE_URL_MAX
 *   -EXDEV     not an address of redirect_uri (another site or path)
 *   -EBADMSG   malformed (a fragment, bad escapes, control bytes, a
 *              duplicate or unknown key, no state, neither code nor
 *              error, an over-long value)
 *   -ENOMEM
 */
int authcode_parse_redirect(const char *text, size_t len,
    const char *redirect_uri, struct authcode_reply *out);
/*
 * The same for a query alone (the callback's, already split off its
 * path): the rules above from "<query>" on.
 */
int authcode_parse_query(const char *query, size_t len,
    struct authcode_reply *out);

/*
 * The first AADSTS code in an error_description ("AADSTS53003: ..."),
 * the one number Entra puts there for machines; 0 when none.
 */
long authcode_desc_code(const char *desc);

#endif
