/*
 * cae.h - Continuous Access Evaluation (docs/protocol.md, "CAE"): the
 * claims challenge a resource sends, checked and made into the claims
 * parameter of a token request (merged with the client capabilities as
 * MSAL does); the cache key that keeps CAE tokens apart from ordinary
 * ones; and the per-(user, scope) mark that allows one claims-driven
 * refresh per CAE_WINDOW seconds.
 *
 * Pure functions of their arguments (time passed in), so they are tested
 * without a loop. Claims are not secrets (a resource sends them in the
 * clear), but they are a peer's bytes: never echoed into an error.
 */
#ifndef CREDD_CAE_H
#define CREDD_CAE_H

#include <stddef.h>
#include <stdint.h>

#define CAE_CLAIMS_MAX 8192 /* bytes of decoded claims JSON */
#define CAE_WINDOW 30	    /* s: one claims-driven refresh per (user, scope) */
#define CAE_KEY_SUFFIX " cae" /* a configured scope never has a space */

/*
 * A claims challenge as a client passes it: the base64 text of the
 * resource's WWW-Authenticate claims="..." (standard or URL-safe
 * alphabet, padded or not), or its JSON. The decoded text must be a
 * JSON object of at most CAE_CLAIMS_MAX bytes. 0 with *out the object
 * in compact form (malloc'd, sorted keys: identical challenges compare
 * equal), or -EBADMSG (*why a static message), -EMSGSIZE (too large),
 * -ENOMEM.
 */
int cae_claims_parse(const char *in, char **out, const char **why);

/*
 * The claims parameter to send: claims (compact JSON from
 * cae_claims_parse, or NULL) merged with the capability caps ("cp1", or
 * NULL for none) as MSAL's _merge_claims_challenge_and_capabilities
 * does: {"access_token":{"xms_cc":{"values":[caps]}, ...claims'
 * access_token members}, ...claims' other members}. 0 with *out
 * (malloc'd; NULL when there is nothing to send), -EBADMSG (claims'
 * access_token is not an object), -ENOMEM.
 */
int cae_claims_merge(const char *claims, const char *caps, char **out);

/*
 * The cache key of scope: scope itself, or scope CAE_KEY_SUFFIX for a
 * CAE token. 0, or -ENAMETOOLONG.
 */
int cae_key(const char *scope, int cae, char *dst, size_t dstsz);
/*
 * The scope of a cache key into dst (dstsz >= strlen(key) + 1): 1 when
 * key is a CAE key, 0 when not (dst = key), -ENAMETOOLONG.
 */
int cae_key_split(const char *key, char *dst, size_t dstsz);
/* 1 when key is a CAE key. */
int cae_key_is_cae(const char *key);

/* A user's claims-driven refreshes, one per key (owned by struct user). */
struct cae_marks;

enum cae_verdict {
	CAE_RUN,     /* refresh with these claims now (mark noted) */
	CAE_JOIN,    /* the same claims were refreshed within the window:
		      * join that refresh, or serve its token */
	CAE_LIMITED, /* other claims within the window: *retry_after s */
};

/*
 * May key be refreshed with claims at now? CAE_RUN notes the mark
 * (allocating: -ENOMEM when it cannot). claims is the compact JSON.
 * *since is the time of the window's refresh (CAE_JOIN: a cached token
 * issued at or after it answers the challenge).
 */
int cae_marks_check(struct cae_marks **m, const char *key, const char *claims,
    int64_t now, int64_t *since, int64_t *retry_after);
/* Forget key's mark (a logout, revoke or new consent). NULL-safe. */
void cae_marks_clear(struct cae_marks **m);
void cae_marks_free(struct cae_marks *m);

#endif
