/*
 * flowref.c - the sealed user inside a cluster code flow's state and
 * link id (see flowref.h).
 *
 * Must never: log; leave the padded plaintext unwiped.
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sodium.h>

#include "entra/secret.h"

#include "flowref.h"
#include "seal.h"

static const char *
pseudo(enum flowref_kind kind)
{
	return kind == FLOWREF_LINK ? "/flow-link" : "/flow-state";
}

int
flowref_make(const struct seal *s, const char *tenant, enum flowref_kind kind,
    const char *user, char *dst, size_t dstsz)
{
	char pad[FLOWREF_USER_MAX];
	struct secret *plain;
	size_t n = strlen(user), padded;
	uint8_t *blob = NULL;
	size_t blen = 0;
	int r;

	if (n == 0 || n > FLOWREF_USER_MAX)
		return -ENAMETOOLONG;
	padded = (n + 15) / 16 * 16;
	memset(pad, 0, sizeof(pad));
	memcpy(pad, user, n);
	plain = secret_new(pad, padded);
	secret_wipe(pad, sizeof(pad));
	if (plain == NULL)
		return -ENOMEM;
	r = seal_seal(s, tenant, pseudo(kind), plain, &blob, &blen);
	secret_free(plain);
	if (r < 0)
		return r;
	if (dstsz < sodium_base64_ENCODED_LEN(blen,
			sodium_base64_VARIANT_URLSAFE_NO_PADDING)) {
		free(blob);
		return -ENAMETOOLONG;
	}
	sodium_bin2base64(dst, dstsz, blob, blen,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	free(blob);
	/* FLOWREF_MAX bounds what the parsers accept: a longer ref could
	 * not come back. */
	return strlen(dst) <= FLOWREF_MAX ? 0 : -ENAMETOOLONG;
}

int
flowref_open(const struct seal *s, const char *tenant, enum flowref_kind kind,
    const char *ref, char *user, size_t usersz)
{
	uint8_t blob[FLOWREF_MAX];
	struct secret *plain = NULL;
	size_t blen = 0, n, rl = ref != NULL ? strlen(ref) : 0;
	const char *end = NULL;
	int r = -ENOENT;

	user[0] = '\0';
	if (rl < FLOWREF_MIN || rl > FLOWREF_MAX ||
	    sodium_base642bin(blob, sizeof(blob), ref, rl, NULL, &blen, &end,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != ref + rl)
		return -ENOENT;
	if (seal_open(s, tenant, pseudo(kind), blob, blen, &plain) < 0)
		goto out;
	n = strnlen(plain->ptr, plain->len);
	/* Padding is NULs only and shorter than a block; a name has none. */
	if (n == 0 || plain->len % 16 != 0 || plain->len - n >= 16 ||
	    n >= usersz)
		goto out;
	memcpy(user, plain->ptr, n);
	user[n] = '\0';
	r = 0;
out:
	secret_free(plain);
	sodium_memzero(blob, sizeof(blob));
	return r;
}
