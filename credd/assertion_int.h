/*
 * assertion_int.h - what assertion.c and assertion_file.c share: reading
 * a file that only root or credd may read. Private to credd/assertion*.c.
 */
#ifndef CREDD_ASSERTION_INT_H
#define CREDD_ASSERTION_INT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Open path without following a symlink; it must be a regular file,
 * not executable, private (fileperm.h) and at most max bytes. Read it
 * into a new malloc'd buffer (*buf, NUL-terminated, *len bytes): the
 * caller wipes (secret_wipe) and frees it. 0 or -errno (-EPERM for the
 * owner, the mode or the file type; -EMSGSIZE when larger than max);
 * "path: why" in err on failure (err may be NULL).
 */
int assertion_read_private(const char *path, size_t max, char **buf,
    size_t *len, char *err, size_t errsz);

/*
 * The federated token in buf (len bytes, as read from its file): one
 * trailing "\n" or "\r\n" is dropped (*tok_len gets the rest), then it
 * must be a compact JWS (three non-empty base64url parts); a payload
 * that decodes to JSON with a numeric "exp" gives *exp (else 0), and
 * exp <= now is stale. 0, -EBADMSG or -EKEYEXPIRED with *why set to a
 * fixed sentence (never the token). buf need not be NUL-terminated.
 * The fuzzed part of assertion_file_read (fuzz/fuzz_assertion.c).
 */
int assertion_token_check(const char *buf, size_t len, int64_t now,
    size_t *tok_len, int64_t *exp, const char **why);

/* Write "path: why" into err (errsz bytes); nothing when err is NULL. */
void assertion_err(char *err, size_t errsz, const char *path, const char *why);

#endif
