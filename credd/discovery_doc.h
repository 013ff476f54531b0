/*
 * discovery_doc.h - the OpenID discovery document (OpenID Connect
 * Discovery 1.0 section 3; Entra: <authority>/<tenant>/v2.0/.well-known/
 * openid-configuration) parsed and held to credd's trust rules. Pure: no
 * sockets, no clock, no logging (discovery.c fetches and caches; doctor
 * reuses the rules).
 *
 * The rules, because a lying or hostile document must never make credd
 * send a refresh token or a client assertion elsewhere:
 * - every endpoint is an https:// URL without '@' (user info), query,
 *   fragment, spaces or control characters, at most DISCOVERY_URL_MAX;
 * - its host (and port) is the authority's, or one of the hosts the
 *   admin listed ([entra] discovery_hosts);
 * - the issuer is the authority's: Entra's "<authority>/<T>/v2.0" where T
 *   is the configured tenant, "{tenantid}" (common, organizations), or a
 *   GUID when the configured tenant is a domain name; a generic
 *   provider's is the authority itself (one trailing '/' allowed).
 * A document that breaks a rule is refused whole, with the field named.
 *
 * Must never: accept a document it cannot fully check, echo a value it
 * refused in full (the reason quotes at most a host), read past len.
 */
#ifndef CREDD_DISCOVERY_DOC_H
#define CREDD_DISCOVERY_DOC_H

#include <stddef.h>
#include <stdint.h>

#define DISCOVERY_URL_MAX 512
#define DISCOVERY_DOC_MAX (64 * 1024) /* Entra's is ~1.7 KiB */
#define DISCOVERY_WHY_MAX 256
/* The TTL of a document: Cache-Control max-age clamped to these. */
#define DISCOVERY_TTL_MIN 300	   /* 5 min ([entra] discovery_min_ttl) */
#define DISCOVERY_TTL_MAX 86400	   /* 24 h */
#define DISCOVERY_TTL_DEFAULT 3600 /* no max-age */
#define DISCOVERY_TENANTID "{tenantid}"

struct discovery_rules {
	const char *authority; /* https://host[:port][/path], no trailing '/' */
	const char *tenant;    /* Entra's tenant in the URL */
	const char *hosts;     /* space-separated extra hosts, or NULL */
	/*
	 * A generic OpenID provider ([entra] provider = oidc): the document
	 * is <authority>/.well-known/openid-configuration and the issuer is
	 * the authority itself (OpenID Connect Discovery 4.3); tenant is
	 * not used.
	 */
	int is_oidc;
};

struct discovery_doc {
	char issuer[DISCOVERY_URL_MAX];
	char token_endpoint[DISCOVERY_URL_MAX];
	char authorization_endpoint[DISCOVERY_URL_MAX];	       /* "" absent */
	char device_authorization_endpoint[DISCOVERY_URL_MAX]; /* "" absent */
	char end_session_endpoint[DISCOVERY_URL_MAX];	       /* "" absent */
	char jwks_uri[DISCOVERY_URL_MAX];		       /* "" absent */
};

/*
 * The document's URL for rules into dst: "<authority>/<tenant>/v2.0/
 * .well-known/openid-configuration". 0, -EINVAL (no authority or
 * tenant, or control characters), -ENAMETOOLONG.
 */
int discovery_doc_url(const struct discovery_rules *rules, char *dst,
    size_t dstsz);

/*
 * Parse body (len bytes, not NUL-terminated) and check it against rules.
 * 0 with *out filled; -EBADMSG (not one JSON object with unique keys, or
 * a rule broken) or -EMSGSIZE (over DISCOVERY_DOC_MAX) with *out zeroed
 * and why (a fixed text naming the field and the rule, never a whole
 * value) written; -ENOMEM.
 */
int discovery_doc_parse(const char *body, size_t len,
    const struct discovery_rules *rules, struct discovery_doc *out, char *why,
    size_t whysz);

/*
 * The issuer an id_token of tenant tid must carry: doc's issuer with
 * "{tenantid}" replaced by tid (tid may be NULL when the issuer has no
 * placeholder). 0, -EINVAL (a placeholder and no tid, or tid with
 * characters a tenant id cannot have), -ENAMETOOLONG.
 */
int discovery_doc_issuer(const struct discovery_doc *doc, const char *tid,
    char *dst, size_t dstsz);

/*
 * 1 when iss (RFC 9207's, from an authorization response) is issuer, the
 * document's, or, when that has "{tenantid}", issuer with a tenant id
 * ([A-Za-z0-9.-], 1..64) in its place; else 0.
 */
int discovery_doc_issuer_matches(const char *issuer, const char *iss);

/*
 * The TTL to keep a document for: max_age (seconds, -1 when the answer
 * had none) clamped to [min_ttl, DISCOVERY_TTL_MAX]; DISCOVERY_TTL_DEFAULT
 * (clamped alike) without one. min_ttl <= 0 means DISCOVERY_TTL_MIN.
 */
int64_t discovery_doc_ttl(int64_t max_age, int64_t min_ttl);

#endif
