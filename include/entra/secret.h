/*
 * secret.h - owned, wiped byte strings for tokens, codes and keys.
 *
 * A struct secret always holds a NUL-terminated copy (ptr[len] == 0), so
 * it can be handed to APIs that want a C string. secret_free() wipes the
 * whole allocation with explicit_bzero before freeing. No libsodium here:
 * pam_entra links this file.
 *
 * Where the bytes live: malloc by default. credd installs an allocator
 * that keeps them in locked memory (credd/secmem.h); pam_entra and
 * credctl never do, so in a PAM host nothing changes.
 */
#ifndef ENTRA_SECRET_H
#define ENTRA_SECRET_H

#include <stddef.h>

struct secret {
	char *ptr;
	size_t len;
};

/* Copy len bytes of p into a new secret. NULL on ENOMEM (errno set). */
struct secret *secret_new(const void *p, size_t len);
/* secret_new(s, strlen(s)); s may be NULL (returns NULL, errno EINVAL). */
struct secret *secret_from_str(const char *s);
/* Deep copy; NULL in -> NULL out. */
struct secret *secret_dup(const struct secret *s);
/* Wipe and free; NULL does nothing. */
void secret_free(struct secret *s);
/* Constant-time equality of contents (length leaks, contents do not). */
int secret_equal(const struct secret *a, const struct secret *b);
/* Constant-time memcmp-equality: 1 when equal, 0 otherwise. */
int secret_memeq(const void *a, const void *b, size_t len);
/* Wipe a buffer that may have held a secret (explicit_bzero). */
void secret_wipe(void *p, size_t len);
/* Wipe strlen(s) bytes of s, then free(s). NULL does nothing. */
void secret_wipe_str(char *s);

/*
 * Where secret bytes are allocated. alloc returns NULL on ENOMEM. free
 * gets memory that is already wiped, with the size asked for; it must
 * also take memory that came from malloc (made before the allocator was
 * installed) and hand it to free().
 */
struct secret_allocator {
	void *(*alloc)(void *arg, size_t n);
	void (*free)(void *arg, void *p, size_t n);
	void *arg;
};
/*
 * Install a (NULL: back to malloc). Process-wide: call it before any
 * thread starts, and remove it only after every secret made through it
 * is freed. credd only.
 */
void secret_set_allocator(const struct secret_allocator *a);
/* n bytes for secret data (the allocator's, else malloc). NULL on ENOMEM. */
void *secret_mem_alloc(size_t n);
/* Wipe n bytes at p and free it as secret_mem_alloc memory. NULL: nothing. */
void secret_mem_free(void *p, size_t n);

#endif
