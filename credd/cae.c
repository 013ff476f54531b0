/*
 * cae.c - claims challenges, the claims parameter, CAE cache keys and
 * the claims-refresh marks (see cae.h).
 *
 * Must never: echo a peer's claims text into an error or a log line
 * (the messages are static), accept claims that are not one JSON object,
 * or let a second, different challenge for the same (user, scope)
 * through within CAE_WINDOW: one user's challenges must not turn into a
 * stream of grants that trips the tenant's 429 breaker for everyone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

#include "cae.h"

struct cae_marks {
	struct cae_marks *next;
	int64_t at; /* when the window's refresh started */
	unsigned char hash[crypto_generichash_BYTES]; /* of its claims */
	char key[];
};

/* Base64 (either alphabet, padding optional) into a NUL-terminated text. */
static int
b64_decode(const char *in, char **out, const char **why)
{
	size_t n = strlen(in), i, len;
	char *norm, *bin;
	int r;

	*out = NULL;
	while (n > 0 && in[n - 1] == '=')
		n--;
	if (n == 0) {
		*why = "\"claims\" is empty";
		return -EBADMSG;
	}
	if (n / 4 * 3 > CAE_CLAIMS_MAX) {
		*why = "\"claims\" decodes to more than 8192 bytes";
		return -EMSGSIZE;
	}
	norm = malloc(n + 1);
	bin = malloc(n / 4 * 3 + 3);
	if (norm == NULL || bin == NULL) {
		free(norm);
		free(bin);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		norm[i] = in[i] == '+' ? '-' : in[i] == '/' ? '_' : in[i];
	norm[n] = '\0';
	r = sodium_base642bin((unsigned char *)bin, n / 4 * 3 + 2, norm, n,
	    NULL, &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	free(norm);
	if (r != 0) {
		free(bin);
		*why = "\"claims\" is neither base64 nor a JSON object";
		return -EBADMSG;
	}
	bin[len] = '\0';
	if (strlen(bin) != len) {
		free(bin);
		*why = "\"claims\" decodes to text with a NUL";
		return -EBADMSG;
	}
	*out = bin;
	return 0;
}

int
cae_claims_parse(const char *in, char **out, const char **why)
{
	const char *p = in;
	char *text = NULL;
	json_t *o;
	json_error_t jerr;
	int r;

	*out = NULL;
	*why = "\"claims\" is not a JSON object";
	if (in == NULL)
		return -EBADMSG;
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (*p != '{') {
		r = b64_decode(p, &text, why);
		if (r < 0)
			return r;
		p = text;
	}
	if (strlen(p) > CAE_CLAIMS_MAX) {
		free(text);
		*why = "\"claims\" is longer than 8192 bytes";
		return -EMSGSIZE;
	}
	o = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		*why = "\"claims\" is not a JSON object (decoded)";
		return -EBADMSG;
	}
	*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return *out == NULL ? -ENOMEM : 0;
}

int
cae_claims_merge(const char *claims, const char *caps, char **out)
{
	json_t *o, *at, *cc;
	int bad = 0;

	*out = NULL;
	if (claims == NULL && caps == NULL)
		return 0;
	o = claims != NULL ? json_loads(claims, 0, NULL) : json_object();
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return o == NULL && claims == NULL ? -ENOMEM : -EBADMSG;
	}
	if (caps != NULL) {
		at = json_object_get(o, "access_token");
		if (at == NULL) {
			at = json_object();
			bad |= json_object_set_new(o, "access_token", at);
		} else if (!json_is_object(at)) {
			json_decref(o);
			return -EBADMSG;
		}
		/* MSAL: xms_cc replaces whatever the challenge said. */
		cc = json_pack("{s:[s]}", "values", caps);
		bad |= cc == NULL || json_object_set_new(at, "xms_cc", cc);
	}
	if (!bad)
		*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return *out == NULL ? -ENOMEM : 0;
}

int
cae_key(const char *scope, int cae, char *dst, size_t dstsz)
{
	int n = snprintf(dst, dstsz, "%s%s", scope, cae ? CAE_KEY_SUFFIX : "");

	return n < 0 || (size_t)n >= dstsz ? -ENAMETOOLONG : 0;
}

int
cae_key_is_cae(const char *key)
{
	size_t n = strlen(key), s = strlen(CAE_KEY_SUFFIX);

	return n > s && strcmp(key + n - s, CAE_KEY_SUFFIX) == 0;
}

int
cae_key_split(const char *key, char *dst, size_t dstsz)
{
	size_t n = strlen(key);
	int is_cae = cae_key_is_cae(key);

	if (is_cae)
		n -= strlen(CAE_KEY_SUFFIX);
	if (n >= dstsz)
		return -ENAMETOOLONG;
	memcpy(dst, key, n);
	dst[n] = '\0';
	return is_cae;
}

int
cae_marks_check(struct cae_marks **m, const char *key, const char *claims,
    int64_t now, int64_t *since, int64_t *retry_after)
{
	unsigned char h[crypto_generichash_BYTES];
	struct cae_marks *k;

	*since = 0;
	*retry_after = 0;
	crypto_generichash(h, sizeof(h), (const unsigned char *)claims,
	    strlen(claims), NULL, 0);
	for (k = *m; k != NULL; k = k->next)
		if (strcmp(k->key, key) == 0)
			break;
	if (k != NULL && now >= k->at && now - k->at < CAE_WINDOW) {
		if (sodium_memcmp(k->hash, h, sizeof(h)) == 0) {
			*since = k->at;
			return CAE_JOIN;
		}
		*retry_after = k->at + CAE_WINDOW - now;
		return CAE_LIMITED;
	}
	if (k == NULL) {
		size_t n = strlen(key) + 1;

		k = calloc(1, sizeof(*k) + n);
		if (k == NULL)
			return -ENOMEM;
		memcpy(k->key, key, n);
		k->next = *m;
		*m = k;
	}
	k->at = now;
	memcpy(k->hash, h, sizeof(h));
	*since = now;
	return CAE_RUN;
}

void
cae_marks_clear(struct cae_marks **m)
{
	cae_marks_free(*m);
	*m = NULL;
}

void
cae_marks_free(struct cae_marks *m)
{
	struct cae_marks *next;

	for (; m != NULL; m = next) {
		next = m->next;
		free(m);
	}
}
