/*
 * oauth_id_token.c - the account in an id_token: base64url-decode the
 * JWT's payload and read oid, tid, preferred_username and upn, after
 * checking that aud names our client id and tid our tenant.
 *
 * The signature is not checked: the id_token comes straight from the
 * token endpoint over TLS that credd verified (OIDC Core 3.1.3.7 (6)).
 * Must never: log or copy the token into an error, or keep the decoded
 * payload (it is wiped before it is freed).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <jansson.h>

#include "entra/secret.h"
#include "oauth.h"
#include "oauth_int.h"

#define OAUTH_CLAIM_MAX 256

static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decode unpadded base64url (trailing '=' tolerated) into dst, which has
 * room for len * 3 / 4 + 1 bytes. Returns the decoded length or -EBADMSG.
 */
static ssize_t
b64url_decode(const char *src, size_t len, unsigned char *dst)
{
	uint32_t acc = 0;
	size_t i, bits = 0, n = 0;
	int v;

	while (len > 0 && src[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -EBADMSG;
	for (i = 0; i < len; i++) {
		v = b64url_value((unsigned char)src[i]);
		if (v < 0)
			return -EBADMSG;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[n++] = (unsigned char)(acc >> bits);
			acc &= (1U << bits) - 1;
		}
	}
	return (ssize_t)n;
}

/* A claim string for the account: printable, bounded. */
static int
take_claim(const json_t *o, const char *key, bool is_required, char **out)
{
	const char *s;

	*out = NULL;
	if (oauth_json_get_str(o, key, &s) < 0)
		return -EBADMSG;
	if (s == NULL || *s == '\0')
		return is_required ? -EBADMSG : 0;
	if (strlen(s) > OAUTH_CLAIM_MAX || oauth_has_ctl(s))
		return -EBADMSG;
	*out = strdup(s);
	return *out == NULL ? -ENOMEM : 0;
}

/* aud is a string or (OIDC Core 2) an array that must hold client_id. */
static bool
aud_matches(const json_t *aud, const char *client_id)
{
	const json_t *v;
	size_t i;

	if (json_is_string(aud))
		return strcasecmp(json_string_value(aud), client_id) == 0;
	if (!json_is_array(aud))
		return false;
	json_array_foreach(aud, i, v) if (json_is_string(v) &&
	    strcasecmp(json_string_value(v), client_id) == 0) return true;
	return false;
}

/*
 * A generic OpenID provider's account (OIDC Core 5.1): the id is sub
 * (unique per issuer), the name preferred_username, else email. No tid.
 */
static int
generic_claims(const json_t *root, struct oauth_account *a)
{
	int r;

	r = take_claim(root, "sub", true, &a->oid);
	if (r == 0)
		r = take_claim(root, "preferred_username", false,
		    &a->preferred_username);
	if (r == 0 && a->preferred_username == NULL)
		r = take_claim(root, "email", false, &a->preferred_username);
	if (r == 0)
		r = take_claim(root, "iss", false, &a->iss);
	return r;
}

static int
account_claims(const json_t *root, const char *client_id, const char *tenant,
    struct oauth_account *a)
{
	int r;

	/* GUIDs: Entra prints them lower-case, config may not. */
	if (!aud_matches(json_object_get(root, "aud"), client_id))
		return -EBADMSG;
	if (tenant == NULL)
		return generic_claims(root, a);
	r = take_claim(root, "tid", true, &a->tid);
	if (r < 0)
		return r;
	if (strcasecmp(a->tid, tenant) != 0)
		return -EBADMSG;
	r = take_claim(root, "oid", true, &a->oid);
	if (r < 0)
		return r;
	r = take_claim(root, "preferred_username", false,
	    &a->preferred_username);
	if (r < 0)
		return r;
	r = take_claim(root, "upn", false, &a->upn);
	if (r < 0)
		return r;
	r = take_claim(root, "iss", false, &a->iss);
	if (r < 0)
		return r;
	return 0;
}

int
oauth_id_token_account(const struct secret *id_token, const char *client_id,
    const char *tenant, struct oauth_account *out)
{
	struct oauth_account a = { 0 };
	const char *p, *dot1, *dot2;
	unsigned char *buf = NULL;
	size_t plen, bufsz = 0;
	json_error_t jerr;
	json_t *root = NULL;
	ssize_t n;
	int r = -EBADMSG;

	memset(out, 0, sizeof(*out));
	if (id_token == NULL || id_token->ptr == NULL || client_id == NULL)
		return -EINVAL;
	/* header.payload.signature; the signature is not checked (see oauth.h). */
	p = id_token->ptr;
	dot1 = memchr(p, '.', id_token->len);
	if (dot1 == NULL)
		return -EBADMSG;
	dot2 = memchr(dot1 + 1, '.', id_token->len - (size_t)(dot1 + 1 - p));
	if (dot2 == NULL ||
	    memchr(dot2 + 1, '.', id_token->len - (size_t)(dot2 + 1 - p)) !=
		NULL)
		return -EBADMSG;
	plen = (size_t)(dot2 - (dot1 + 1));
	if (plen == 0 || plen > 64 * 1024)
		return -EBADMSG;
	bufsz = plen * 3 / 4 + 1;
	buf = malloc(bufsz);
	if (buf == NULL)
		return -ENOMEM;
	n = b64url_decode(dot1 + 1, plen, buf);
	if (n <= 0)
		goto out;
	root = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES,
	    &jerr);
	secret_wipe(&jerr, sizeof(jerr));
	if (root == NULL || !json_is_object(root))
		goto out;
	r = account_claims(root, client_id, tenant, &a);
	if (r < 0)
		goto out;
	*out = a;
	memset(&a, 0, sizeof(a)); /* transferred */
out:
	oauth_account_clear(&a);
	json_decref(root);
	secret_wipe(buf, bufsz);
	free(buf);
	return r;
}
