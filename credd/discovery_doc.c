/*
 * discovery_doc.c - the OpenID discovery document: its URL, the strict
 * parser and the trust rules of discovery_doc.h, the issuer an id_token
 * must carry, the TTL. Pure (no I/O, no clock, no logging); fuzzed by
 * fuzz/fuzz_discovery.c.
 *
 * Must never: accept an endpoint off the allowed hosts or not https,
 * accept an issuer that is not the authority's, copy a field it has not
 * checked into the result, or quote a refused value beyond its host.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "discovery_doc.h"

#define HOST_MAX 256

/* Printable ASCII, none of the characters a URL of ours never has. */
static bool
is_url_chars(const char *s, bool allow_braces)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`|", c) != NULL)
			return false;
		if (!allow_braces && (c == '{' || c == '}'))
			return false;
	}
	return true;
}

/*
 * The host[:port] of an https:// URL, lowercased, ":443" dropped, into
 * dst. false when url is not https://, has user info or an empty host.
 */
static bool
url_host(const char *url, char *dst, size_t dstsz)
{
	const char *h, *end;
	size_t n, i;

	if (strncasecmp(url, "https://", 8) != 0)
		return false;
	h = url + 8;
	end = h + strcspn(h, "/?#");
	n = (size_t)(end - h);
	if (n == 0 || n >= dstsz || memchr(h, '@', n) != NULL)
		return false;
	for (i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)h[i]);
	dst[n] = '\0';
	if (n > 4 && strcmp(dst + n - 4, ":443") == 0)
		dst[n - 4] = '\0';
	return dst[0] != ':';
}

/* host is the authority's, or one of rules->hosts (normalised alike). */
static bool
is_allowed_host(const struct discovery_rules *rules, const char *host)
{
	char want[HOST_MAX], url[HOST_MAX + 8];
	const char *p;
	size_t n;

	if (url_host(rules->authority, want, sizeof(want)) &&
	    strcmp(host, want) == 0)
		return true;
	for (p = rules->hosts; p != NULL && *p != '\0'; p += n) {
		p += strspn(p, " \t");
		n = strcspn(p, " \t");
		if (n == 0 || n >= HOST_MAX)
			continue;
		(void)snprintf(url, sizeof(url), "https://%.*s", (int)n, p);
		if (url_host(url, want, sizeof(want)) &&
		    strcmp(host, want) == 0)
			return true;
	}
	return false;
}

static bool
is_guid(const char *s, size_t n)
{
	size_t i;

	if (n != 36)
		return false;
	for (i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

static void say(char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(char *why, size_t whysz, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whysz == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, whysz, fmt, ap);
	va_end(ap);
}

/*
 * Check one endpoint and copy it to dst. Absent and optional: "" and
 * true. A reason in why otherwise.
 */
static bool
take_endpoint(json_t *doc, const char *field, bool is_required,
    const struct discovery_rules *rules, char *dst, char *why, size_t whysz)
{
	json_t *v = json_object_get(doc, field);
	char host[HOST_MAX];
	const char *s;

	dst[0] = '\0';
	if (v == NULL || json_is_null(v)) {
		if (!is_required)
			return true;
		say(why, whysz, "%s is missing", field);
		return false;
	}
	if (!json_is_string(v)) {
		say(why, whysz, "%s is not a string", field);
		return false;
	}
	s = json_string_value(v);
	if (strlen(s) >= DISCOVERY_URL_MAX ||
	    json_string_length(v) != strlen(s)) {
		say(why, whysz, "%s is too long or has a NUL", field);
		return false;
	}
	/* '@' anywhere: no user info, and nothing two URL parsers might
	 * read differently. */
	if (!is_url_chars(s, false) || strpbrk(s, "?#@") != NULL) {
		say(why, whysz,
		    "%s has user info, a query, a fragment or characters a "
		    "URL of an endpoint cannot have",
		    field);
		return false;
	}
	if (!url_host(s, host, sizeof(host))) {
		say(why, whysz, "%s is not an https:// URL with a host", field);
		return false;
	}
	if (!is_allowed_host(rules, host)) {
		say(why, whysz,
		    "%s is on host '%s', neither the authority's nor one in "
		    "[entra] discovery_hosts",
		    field, host);
		return false;
	}
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

/*
 * Entra's issuer: exactly "<authority>/<T>/v2.0", T the tenant (any
 * case), "{tenantid}", or a GUID when the tenant is a domain name.
 */
static bool
take_issuer(json_t *doc, const struct discovery_rules *rules, char *dst,
    char *why, size_t whysz)
{
	json_t *v = json_object_get(doc, "issuer");
	size_t alen = strlen(rules->authority), n, tlen;
	const char *s, *t;

	dst[0] = '\0';
	if (!json_is_string(v)) {
		say(why, whysz, "issuer is missing or not a string");
		return false;
	}
	s = json_string_value(v);
	n = strlen(s);
	if (n >= DISCOVERY_URL_MAX || json_string_length(v) != n ||
	    !is_url_chars(s, rules->is_oidc == 0))
		goto bad;
	if (rules->is_oidc) {
		/* The authority is the issuer (Discovery 4.3). */
		if (!((n == alen || (n == alen + 1 && s[alen] == '/')) &&
			strncmp(s, rules->authority, alen) == 0)) {
			say(why, whysz,
			    "issuer is not the authority (provider = oidc: "
			    "[entra] authority must be the issuer URL)");
			return false;
		}
		memcpy(dst, s, n + 1);
		return true;
	}
	if (n < alen + 1 || strncasecmp(s, rules->authority, alen) != 0 ||
	    s[alen] != '/')
		goto bad;
	t = s + alen + 1;
	tlen = strcspn(t, "/");
	if (tlen == 0 || strcmp(t + tlen, "/v2.0") != 0)
		goto bad;
	if (!((tlen == strlen(rules->tenant) &&
		  strncasecmp(t, rules->tenant, tlen) == 0) ||
		(tlen == strlen(DISCOVERY_TENANTID) &&
		    strncmp(t, DISCOVERY_TENANTID, tlen) == 0) ||
		(!is_guid(rules->tenant, strlen(rules->tenant)) &&
		    is_guid(t, tlen))))
		goto bad;
	memcpy(dst, s, n + 1);
	return true;
bad:
	say(why, whysz,
	    "issuer is not the authority's (<authority>/<tenant>/v2.0)");
	return false;
}

int
discovery_doc_url(const struct discovery_rules *rules, char *dst, size_t dstsz)
{
	int n;

	if (rules == NULL || rules->authority == NULL ||
	    !is_url_chars(rules->authority, false))
		return -EINVAL;
	if (rules->is_oidc)
		n = snprintf(dst, dstsz, "%s/.well-known/openid-configuration",
		    rules->authority);
	else if (rules->tenant == NULL || *rules->tenant == '\0' ||
	    !is_url_chars(rules->tenant, false))
		return -EINVAL;
	else
		n = snprintf(dst, dstsz,
		    "%s/%s/v2.0/.well-known/openid-configuration",
		    rules->authority, rules->tenant);
	if (n < 0 || (size_t)n >= dstsz)
		return -ENAMETOOLONG;
	return 0;
}

int
discovery_doc_parse(const char *body, size_t len,
    const struct discovery_rules *rules, struct discovery_doc *out, char *why,
    size_t whysz)
{
	json_error_t jerr;
	json_t *doc;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (why != NULL && whysz > 0)
		why[0] = '\0';
	if (rules == NULL || rules->authority == NULL ||
	    (rules->tenant == NULL && !rules->is_oidc)) {
		say(why, whysz, "no authority or tenant");
		return -EINVAL;
	}
	if (len > DISCOVERY_DOC_MAX) {
		say(why, whysz, "the document is over 64 KiB");
		return -EMSGSIZE;
	}
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		say(why, whysz,
		    "not a JSON object with unique keys (a proxy or captive "
		    "portal page?)");
		return -EBADMSG;
	}
	ok = take_issuer(doc, rules, out->issuer, why, whysz) &&
	    take_endpoint(doc, "token_endpoint", true, rules,
		out->token_endpoint, why, whysz) &&
	    take_endpoint(doc, "authorization_endpoint", false, rules,
		out->authorization_endpoint, why, whysz) &&
	    take_endpoint(doc, "device_authorization_endpoint", false, rules,
		out->device_authorization_endpoint, why, whysz) &&
	    take_endpoint(doc, "end_session_endpoint", false, rules,
		out->end_session_endpoint, why, whysz) &&
	    take_endpoint(doc, "jwks_uri", false, rules, out->jwks_uri, why,
		whysz);
	json_decref(doc);
	if (!ok) {
		memset(out, 0, sizeof(*out));
		return -EBADMSG;
	}
	return 0;
}

int
discovery_doc_issuer(const struct discovery_doc *doc, const char *tid,
    char *dst, size_t dstsz)
{
	const char *p = strstr(doc->issuer, DISCOVERY_TENANTID);
	int n;

	if (p == NULL) {
		n = snprintf(dst, dstsz, "%s", doc->issuer);
	} else {
		if (tid == NULL || *tid == '\0' || strlen(tid) > 64 ||
		    !is_url_chars(tid, false) || strpbrk(tid, "/?#") != NULL)
			return -EINVAL;
		n = snprintf(dst, dstsz, "%.*s%s%s", (int)(p - doc->issuer),
		    doc->issuer, tid, p + strlen(DISCOVERY_TENANTID));
	}
	if (n < 0 || (size_t)n >= dstsz)
		return -ENAMETOOLONG;
	return 0;
}

int
discovery_doc_issuer_matches(const char *issuer, const char *iss)
{
	const char *p = strstr(issuer, DISCOVERY_TENANTID);
	size_t pre, post, n, seg;

	if (iss == NULL)
		return 0;
	if (p == NULL)
		return strcmp(issuer, iss) == 0;
	pre = (size_t)(p - issuer);
	post = strlen(p + strlen(DISCOVERY_TENANTID));
	n = strlen(iss);
	if (n <= pre + post || strncmp(iss, issuer, pre) != 0 ||
	    strcmp(iss + n - post, p + strlen(DISCOVERY_TENANTID)) != 0)
		return 0;
	seg = n - pre - post;
	return seg <= 64 &&
	    strspn(iss + pre,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") >=
	    seg;
}

int64_t
discovery_doc_ttl(int64_t max_age, int64_t min_ttl)
{
	int64_t ttl = max_age < 0 ? DISCOVERY_TTL_DEFAULT : max_age;

	if (min_ttl <= 0)
		min_ttl = DISCOVERY_TTL_MIN;
	if (min_ttl > DISCOVERY_TTL_MAX)
		min_ttl = DISCOVERY_TTL_MAX;
	if (ttl < min_ttl)
		ttl = min_ttl;
	if (ttl > DISCOVERY_TTL_MAX)
		ttl = DISCOVERY_TTL_MAX;
	return ttl;
}
