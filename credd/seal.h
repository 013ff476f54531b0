/*
 * seal.h - record encryption with a keyring (libsodium
 * XChaCha20-Poly1305-IETF).
 *
 * Key file format (text, one key a line, '#' comments):
 *     key <id> <base64 of 32 bytes> [active]
 * id is 1..2^32-1. Exactly one key is active: it seals; every key
 * opens. The file must be a regular file owned by the effective uid (or
 * root), mode 0400 or 0600; looser is refused (-EPERM). A POSIX ACL that
 * lets only the effective uid read is accepted too (fileperm.h: systemd's
 * LoadCredential= files on tmpfs are root's, 0400, plus such an entry).
 *
 * Sealed blob: "CRS1" | key id (u32 BE) | nonce (24) | ciphertext+tag.
 * Associated data: "credd-record-v1" NUL tenant NUL user, so a blob
 * moved to another (tenant, user) fails to open (-EBADMSG).
 * Keys live in sodium_malloc memory, sodium_mprotect_noaccess while idle.
 * seal.c reads rings and seals; seal_keygen.c writes key files.
 */
#ifndef CREDD_SEAL_H
#define CREDD_SEAL_H

#include <stddef.h>
#include <stdint.h>

struct secret;
struct seal;

/*
 * Load a keyring. -ENOENT, -EPERM (loose mode/owner, not a regular file),
 * -ELOOP (path is a symlink), -EBADMSG (syntax), -EMSGSIZE (over 64 KiB or
 * 256 keys), -ENOMEM.
 */
int seal_load(const char *path, struct seal **out);
/* From a buffer, skipping the permission check (tests). */
int seal_load_buf(const char *buf, size_t len, struct seal **out);
void seal_free(struct seal *s);
uint32_t seal_active_id(const struct seal *s);
/*
 * Lock the key ring's pages in RAM again. sodium_malloc locks them when
 * the ring is loaded, but silently gives up under RLIMIT_MEMLOCK, and a
 * lock does not survive fork(): credd forks to go to the background after
 * it read the keys. 0, or -errno from mlock (ENOMEM, EPERM, EAGAIN).
 */
int seal_lock(struct seal *s);

/* Seal plain into a new malloc'd blob (*out, *outlen). 0 or -errno. */
int seal_seal(const struct seal *s, const char *tenant, const char *user,
    const struct secret *plain, uint8_t **out, size_t *outlen);
/*
 * Open a blob. Returns 0 and *plain; -EBADMSG (tampered, wrong AD or
 * malformed), -ENOKEY (key id not in the ring).
 */
int seal_open(const struct seal *s, const char *tenant, const char *user,
    const uint8_t *blob, size_t len, struct secret **plain);
/* Key id a blob was sealed with, or 0 if malformed. */
uint32_t seal_blob_key_id(const uint8_t *blob, size_t len);
/*
 * Why blob does not open with s, as text for a log line or an audit
 * reason (never key material): "sealed with key 7, which this key ring
 * does not have (its keys: 3, 4)" when its key id is missing, else a
 * "does not open with key N" that names the possible causes. Always
 * NUL-terminates buf (n > 0).
 */
void seal_explain(const struct seal *s, const uint8_t *blob, size_t len,
    char *buf, size_t n);

/*
 * keygen: write a new key file at path (O_CREAT|O_EXCL|O_NOFOLLOW, 0600)
 * holding one active key with a random id in 1..2^31-1 (rings made apart
 * then name different ids). If path exists, append a new key with the
 * next id; when make_active, it becomes the active one (rewritten
 * atomically). 0 or -errno.
 */
int seal_keygen(const char *path, int make_active, uint32_t *new_id);

#endif
