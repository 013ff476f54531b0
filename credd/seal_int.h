/*
 * seal_int.h - what seal.c shares with seal_keygen.c, which writes the
 * key files seal.c reads. Private to credd/seal*.c.
 */
#ifndef CREDD_SEAL_INT_H
#define CREDD_SEAL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <sodium.h>

#define SEAL_KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES

/* One parsed line of a key file; b64 points into the caller's buffer. */
struct keyline {
	uint32_t id;
	const char *b64;
	size_t b64len;
	int is_active;
};

/* sodium_init() once; 0 or -EIO. */
int seal_sodium_ready(void);
/*
 * Parse one line of a key file (without its '\n'): 0 for a blank or
 * comment line, 1 for a key line (*kl filled), -EBADMSG otherwise.
 */
int seal_parse_line(const char *line, size_t len, struct keyline *kl);
/* Length of the line at p, up to '\n' or end. */
size_t seal_line_len(const char *p, const char *end);
/*
 * Open path without following a symlink, check its type, owner and mode
 * as seal_load does, and read it into *buf (malloc'd; the caller wipes
 * and frees it). *st gets its stat. 0 or -errno.
 */
int seal_read_key_file(const char *path, char **buf, size_t *len,
    struct stat *st);

#endif
