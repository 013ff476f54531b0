/*
 * authcode.c - the broker-free pieces of the authorization code flow
 * (authcode.h): PKCE S256, random state and link ids, the authorize URL,
 * the paste-back redirect URI, and the strict, bounded parser of a
 * pasted address or a callback query.
 *
 * Must never: log, keep the code or verifier outside a struct secret,
 * leave a decoded copy of the code unwiped, or read past len.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "entra/secret.h"

#include "authcode.h"
#include "http.h"

int
authcode_random(size_t n, char *dst, size_t dstsz)
{
	unsigned char raw[64];

	if (n == 0 || n > sizeof(raw) ||
	    dstsz < sodium_base64_ENCODED_LEN(n,
			sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		return -ENAMETOOLONG;
	randombytes_buf(raw, n);
	sodium_bin2base64(dst, dstsz, raw, n,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	return 0;
}

int
authcode_pkce(struct secret **verifier,
    char challenge[AUTHCODE_VERIFIER_LEN + 1])
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	char v[AUTHCODE_VERIFIER_LEN + 1];

	*verifier = NULL;
	(void)authcode_random(32, v, sizeof(v));
	crypto_hash_sha256(hash, (const unsigned char *)v, strlen(v));
	sodium_bin2base64(challenge, AUTHCODE_VERIFIER_LEN + 1, hash,
	    sizeof(hash), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	*verifier = secret_new(v, strlen(v));
	sodium_memzero(v, sizeof(v));
	return *verifier != NULL ? 0 : -ENOMEM;
}

int
authcode_nativeclient_uri(const char *authority, char *dst, size_t dstsz)
{
	const char *host, *end;
	int n;

	if (dstsz > 0)
		dst[0] = '\0';
	if (authority == NULL)
		return -EINVAL;
	if (strncmp(authority, "https://", 8) == 0)
		host = authority + 8;
	else if (strncmp(authority, "http://", 7) == 0)
		host = authority + 7;
	else
		return -EINVAL;
	end = host + strcspn(host, "/?#");
	if (end == host || memchr(host, '@', (size_t)(end - host)) != NULL)
		return -EINVAL;
	n = snprintf(dst, dstsz, "%.*s/common/oauth2/nativeclient",
	    (int)(end - authority), authority);
	if (n < 0 || (size_t)n >= dstsz) {
		if (dstsz > 0)
			dst[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int
authcode_authorize_url(const struct authcode_request *rq, char **out)
{
	const struct {
		const char *k, *v;
	} kv[] = {
		{ "client_id", rq->client_id },
		{ "response_type", "code" },
		{ "redirect_uri", rq->redirect_uri },
		{ "response_mode", "query" },
		{ "scope", rq->scope },
		{ "state", rq->state },
		{ "code_challenge", rq->challenge },
		{ "code_challenge_method", "S256" },
		{ "prompt", "select_account" },
		{ "login_hint", rq->login_hint },
		{ "domain_hint", rq->domain_hint },
	};
	struct secret *q = NULL;
	size_t i, n;
	char *url;
	int r = 0;

	*out = NULL;
	if (rq->authorize_url == NULL || rq->client_id == NULL ||
	    rq->redirect_uri == NULL || rq->scope == NULL ||
	    rq->state == NULL || rq->challenge == NULL)
		return -EINVAL;
	for (i = 0; i < sizeof(kv) / sizeof(kv[0]) && r == 0; i++)
		if (kv[i].v != NULL)
			r = http_form_add(&q, kv[i].k, kv[i].v);
	if (r < 0) {
		secret_free(q);
		return r;
	}
	/* Not a secret: state and challenge are public by design. */
	n = strlen(rq->authorize_url) + 1 + q->len + 1;
	url = malloc(n);
	if (url != NULL)
		(void)snprintf(url, n, "%s?%s", rq->authorize_url, q->ptr);
	secret_free(q);
	*out = url;
	return url != NULL ? 0 : -ENOMEM;
}

void
authcode_reply_clear(struct authcode_reply *rp)
{
	if (rp == NULL)
		return;
	secret_free(rp->code);
	sodium_memzero(rp, sizeof(*rp));
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode s[0..n) into dst (dstsz bytes with the NUL): '+' is a
 * space; a bad escape, a decoded control byte or NUL, or an over-long
 * value is -EBADMSG. Returns the decoded length.
 */
static ssize_t
form_decode(const char *s, size_t n, char *dst, size_t dstsz)
{
	size_t i, o = 0;
	int c, hi, lo;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -EBADMSG;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EBADMSG;
			c = hi << 4 | lo;
			i += 2;
		} else if (c == '+')
			c = ' ';
		if (c < 0x20 || c == 0x7f)
			return -EBADMSG;
		if (o + 1 >= dstsz)
			return -EBADMSG;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return (ssize_t)o;
}

/*
 * Keys Entra may add that we do not need: skipped, each at most once.
 * "iss" (RFC 9207's issuer identification, which other OpenID providers
 * such as oidc-provider add to every reply) is read: flow_code.c compares
 * it with the discovered issuer, so an answer from another IdP is refused
 * before its code is redeemed.
 */
static const char *const skipped_keys[] = { "session_state", "error_uri",
	"error_subcode", "trace_id", "correlation_id", "client_info" };

enum { K_CODE, K_STATE, K_ERROR, K_DESC, K_ISS, K_READ };

static int
key_id(const char *k, size_t n)
{
	static const char *const read_keys[K_READ] = { "code", "state", "error",
		"error_description", "iss" };
	size_t i;

	for (i = 0; i < K_READ; i++)
		if (strlen(read_keys[i]) == n &&
		    memcmp(read_keys[i], k, n) == 0)
			return (int)i;
	for (i = 0; i < sizeof(skipped_keys) / sizeof(skipped_keys[0]); i++)
		if (strlen(skipped_keys[i]) == n &&
		    memcmp(skipped_keys[i], k, n) == 0)
			return K_READ + (int)i;
	return -1;
}

static int
is_b64url(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
			(*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* One key=value pair into out; seen tracks duplicates. */
static int
take_pair(const char *p, size_t n, unsigned *seen, char *buf, size_t bufsz,
    struct authcode_reply *out)
{
	const char *eq = memchr(p, '=', n);
	size_t kn = eq != NULL ? (size_t)(eq - p) : n;
	ssize_t vn;
	int id;

	if (eq == NULL || kn == 0)
		return -EBADMSG;
	id = key_id(p, kn);
	if (id < 0 || (*seen >> id & 1u))
		return -EBADMSG;
	*seen |= 1u << id;
	if (id >= K_READ)
		return 0;
	vn = form_decode(eq + 1, n - kn - 1, buf, bufsz);
	if (vn < 0)
		return (int)vn;
	switch (id) {
	case K_CODE:
		if (vn == 0)
			return -EBADMSG;
		out->code = secret_new(buf, (size_t)vn);
		return out->code != NULL ? 0 : -ENOMEM;
	case K_STATE:
		if (vn != AUTHCODE_STATE_LEN || !is_b64url(buf))
			return -EBADMSG;
		memcpy(out->state, buf, (size_t)vn + 1);
		return 0;
	case K_ERROR:
		if (vn == 0 || (size_t)vn >= sizeof(out->error))
			return -EBADMSG;
		memcpy(out->error, buf, (size_t)vn + 1);
		return 0;
	case K_ISS:
		if (vn == 0 || (size_t)vn >= sizeof(out->iss) ||
		    strncmp(buf, "https://", 8) != 0)
			return -EBADMSG;
		memcpy(out->iss, buf, (size_t)vn + 1);
		return 0;
	default: /* K_DESC: cut, it is Entra's free text */
		(void)snprintf(out->error_desc, sizeof(out->error_desc), "%s",
		    buf);
		return 0;
	}
}

int
authcode_parse_query(const char *query, size_t len, struct authcode_reply *out)
{
	const char *p = query, *end = query + len, *amp;
	unsigned seen = 0;
	char *buf;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (len > AUTHCODE_URL_MAX)
		return -EMSGSIZE;
	if (len == 0 || memchr(query, '#', len) != NULL)
		return -EBADMSG;
	buf = malloc(len + 1); /* decoded values are never longer */
	if (buf == NULL)
		return -ENOMEM;
	while (p < end && r == 0) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		r = take_pair(p, (size_t)(amp - p), &seen, buf, len + 1, out);
		p = amp + 1;
	}
	sodium_memzero(buf, len + 1);
	free(buf);
	if (r == 0 &&
	    (!(seen >> K_STATE & 1u) ||
		(seen >> K_CODE & 1u) == (seen >> K_ERROR & 1u)))
		r = -EBADMSG; /* a state, and a code or an error (not both) */
	if (r < 0)
		authcode_reply_clear(out);
	return r;
}

int
authcode_parse_redirect(const char *text, size_t len, const char *redirect_uri,
    struct authcode_reply *out)
{
	const char *host;
	size_t rl, ol, i;

	memset(out, 0, sizeof(*out));
	if (len > AUTHCODE_URL_MAX + 64)
		return -EMSGSIZE;
	while (len > 0 && (*text == ' ' || *text == '\t')) {
		text++;
		len--;
	}
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len > 0 && text[len - 1] == '\r')
		len--;
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (len > AUTHCODE_URL_MAX)
		return -EMSGSIZE;
	for (i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x21 ||
		    (unsigned char)text[i] >= 0x7f)
			return -EBADMSG; /* a URL is printable ASCII */
	/* scheme://host[:port] compares without case; the path with it. */
	rl = strlen(redirect_uri);
	host = strstr(redirect_uri, "://");
	if (host == NULL)
		return -EXDEV;
	ol = (size_t)(host + 3 - redirect_uri) + strcspn(host + 3, "/");
	if (len <= rl || strncasecmp(text, redirect_uri, ol) != 0 ||
	    memcmp(text + ol, redirect_uri + ol, rl - ol) != 0 ||
	    text[rl] != '?')
		return -EXDEV;
	return authcode_parse_query(text + rl + 1, len - rl - 1, out);
}

long
authcode_desc_code(const char *desc)
{
	const char *p = desc != NULL ? strstr(desc, "AADSTS") : NULL;
	long v = 0;
	int n = 0;

	if (p == NULL)
		return 0;
	for (p += 6; *p >= '0' && *p <= '9' && n < 9; p++, n++)
		v = v * 10 + (*p - '0');
	return n > 0 ? v : 0;
}
