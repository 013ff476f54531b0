/*
 * secret.c - owned byte strings for tokens, codes and keys: allocation,
 * deep copy, constant-time comparison and wiping with explicit_bzero.
 *
 * Must never: print or log contents, link libsodium (pam_entra links
 * this), or free a buffer that held a secret without wiping it first.
 *
 * One piece of process-wide state: the allocator credd installs for the
 * bytes (secret_set_allocator). Nothing but credd sets it, so pam_entra
 * (which has its own copy of this file, hidden in the module) and credctl
 * always use malloc.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

static const struct secret_allocator *secret_allocator;

void
secret_set_allocator(const struct secret_allocator *a)
{
	secret_allocator = a;
}

void *
secret_mem_alloc(size_t n)
{
	const struct secret_allocator *a = secret_allocator;

	if (a != NULL)
		return a->alloc(a->arg, n);
	return malloc(n > 0 ? n : 1);
}

void
secret_mem_free(void *p, size_t n)
{
	const struct secret_allocator *a = secret_allocator;
	int saved = errno;

	if (p == NULL)
		return;
	explicit_bzero(p, n);
	if (a != NULL)
		a->free(a->arg, p, n);
	else
		free(p);
	errno = saved;
}

struct secret *
secret_new(const void *p, size_t len)
{
	struct secret *s;

	if (p == NULL && len > 0) {
		errno = EINVAL;
		return NULL;
	}
	if (len == SIZE_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->ptr = secret_mem_alloc(len + 1);
	if (s->ptr == NULL) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	if (len > 0)
		memcpy(s->ptr, p, len);
	s->ptr[len] = '\0';
	s->len = len;
	return s;
}

struct secret *
secret_from_str(const char *s)
{
	if (s == NULL) {
		errno = EINVAL;
		return NULL;
	}
	return secret_new(s, strlen(s));
}

struct secret *
secret_dup(const struct secret *s)
{
	if (s == NULL)
		return NULL;
	return secret_new(s->ptr, s->len);
}

void
secret_free(struct secret *s)
{
	int saved = errno;

	if (s == NULL)
		return;
	secret_mem_free(s->ptr, s->len + 1);
	explicit_bzero(s, sizeof(*s));
	free(s);
	errno = saved;
}

int
secret_memeq(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *pa = a;
	const volatile unsigned char *pb = b;
	unsigned char diff = 0;
	size_t i;

	for (i = 0; i < len; i++)
		diff |= pa[i] ^ pb[i];
	/* Map 0 -> 1 and 1..255 -> 0 without a data-dependent branch. */
	return (int)(1 & ((diff - 1U) >> 8));
}

int
secret_equal(const struct secret *a, const struct secret *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (a->len != b->len)
		return 0; /* the length may leak; the contents do not */
	return secret_memeq(a->ptr, b->ptr, a->len);
}

void
secret_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		explicit_bzero(p, len);
}

void
secret_wipe_str(char *s)
{
	int saved = errno;

	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
	errno = saved;
}
