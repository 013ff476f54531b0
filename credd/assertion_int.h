/*
 * assertion_int.h - what assertion.c and assertion_file.c share: reading
 * a file that only root or credd may read. Private to credd/assertion*.c.
 */
#ifndef CREDD_ASSERTION_INT_H
#define CREDD_ASSERTION_INT_H

#include <stddef.h>

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

/* Write "path: why" into err (errsz bytes); nothing when err is NULL. */
void assertion_err(char *err, size_t errsz, const char *path, const char *why);

#endif
