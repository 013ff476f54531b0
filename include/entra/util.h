/*
 * util.h - small helpers shared by credd, credctl and pam_entra.
 * libc only. Nothing here logs: errors come back as negative errno.
 */
#ifndef ENTRA_UTIL_H
#define ENTRA_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Parse a base-10 integer in [min, max], the whole string, no spaces.
 * 0 and *out set on success; -EINVAL if not a number, -ERANGE if out of range.
 */
int util_strtonum(const char *s, long long min, long long max, long long *out);
/* Set O_NONBLOCK / FD_CLOEXEC. 0 or -errno. */
int util_set_nonblock(int fd);
int util_set_cloexec(int fd);
/* close(*fd) if >= 0 and set *fd = -1; keeps errno. */
void util_closep(int *fd);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t util_mono_ms(void);
/* CLOCK_REALTIME in seconds. */
int64_t util_now(void);
/*
 * Copy at most cap bytes of a user-supplied string for a log line:
 * non-printable bytes become '?', and "..." marks a cut. dst has dstsz
 * bytes (>= 4). Returns dst.
 */
char *util_log_str(char *dst, size_t dstsz, const char *src, size_t cap);
/* True if s is a plausible POSIX login name (1..32 chars of [a-z0-9_.-], no leading '-'). */
int util_valid_username(const char *s);
/* Write all of buf to a blocking fd, retrying EINTR. 0 or -errno. */
int util_write_all(int fd, const void *buf, size_t len);
/*
 * Read exactly len bytes from a blocking fd, retrying EINTR. 0, -EBADMSG
 * when the file ends first (shorter than its header or fstat said), or
 * -errno.
 */
int util_read_all(int fd, void *buf, size_t len);
/* An n-byte (n <= 8) big-endian unsigned field: read, write. */
uint64_t util_get_be(const uint8_t *p, size_t n);
void util_put_be(uint8_t *p, uint64_t v, size_t n);
/*
 * Remove the entries of the directory dirfd whose names begin with prefix
 * (temp files a crashed writer left). 0 or the first -errno (ENOENT is
 * not an error).
 */
int util_unlink_prefixed(int dirfd, const char *prefix);
/* The value of a hex digit (either case), or -1. */
int util_hexval(int c);

#endif
