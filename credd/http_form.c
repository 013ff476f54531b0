/*
 * http_form.c - application/x-www-form-urlencoded bodies for http.c's
 * POSTs: k=v pairs, percent-encoded (RFC 3986 unreserved bytes stay),
 * '&'-separated, built in struct secret because they carry device codes,
 * refresh tokens and client assertions. Moved out of http.c when the
 * resolver glue took it past 900 lines; the API stays in http.h.
 *
 * Must never: leave an unwiped copy of a form behind, or log one.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"
#include "http.h"

/* Bytes k or v take once percent-encoded (RFC 3986 unreserved stay). */
static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static size_t
enc_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += is_unreserved((unsigned char)*s) ? 1 : 3;
	return n;
}

static size_t
enc_put(char *dst, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (is_unreserved(c)) {
			dst[n++] = (char)c;
		} else {
			dst[n++] = '%';
			dst[n++] = hex[c >> 4];
			dst[n++] = hex[c & 0x0f];
		}
	}
	return n;
}

int
http_form_add(struct secret **form, const char *k, const char *v)
{
	struct secret *old = *form, *nf;
	size_t oldlen = old != NULL ? old->len : 0;
	size_t klen, vlen, len, o = 0;
	char *tmp;

	if (k == NULL || v == NULL || *k == '\0')
		return -EINVAL;
	klen = enc_len(k);
	vlen = enc_len(v);
	if (vlen > SIZE_MAX / 4 || oldlen > SIZE_MAX / 4)
		return -ENOMEM;
	len = oldlen + (oldlen > 0) + klen + 1 + vlen;
	tmp = malloc(len + 1);
	if (tmp == NULL)
		return -ENOMEM;
	if (oldlen > 0) {
		memcpy(tmp, old->ptr, oldlen);
		o = oldlen;
		tmp[o++] = '&';
	}
	o += enc_put(tmp + o, k);
	tmp[o++] = '=';
	o += enc_put(tmp + o, v);
	tmp[o] = '\0';
	nf = secret_new(tmp, o);
	secret_wipe(tmp, len + 1);
	free(tmp);
	if (nf == NULL)
		return -ENOMEM;
	secret_free(old);
	*form = nf;
	return 0;
}
