/*
 * util.c - small libc-only helpers shared by credd, credctl and
 * pam_entra: checked number parsing, fd flags, clocks, log-safe string
 * copies, login-name checks and a full write.
 *
 * Must never: log, allocate process-wide state, or change anything but
 * the fd or buffer it is handed.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "entra/util.h"

int
util_strtonum(const char *s, long long min, long long max, long long *out)
{
	const char *p;
	char *end = NULL;
	long long v;

	if (s == NULL || out == NULL)
		return -EINVAL;
	p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (*p == '\0')
		return -EINVAL;
	for (; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == NULL || *end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int
util_set_nonblock(int fd)
{
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (fl & O_NONBLOCK)
		return 0;
	if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int
util_set_cloexec(int fd)
{
	int fl;

	fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -errno;
	if (fl & FD_CLOEXEC)
		return 0;
	if (fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

void
util_closep(int *fd)
{
	int saved = errno;

	if (fd == NULL)
		return;
	if (*fd >= 0)
		(void)close(*fd);
	*fd = -1;
	errno = saved;
}

int64_t
util_mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

char *
util_log_str(char *dst, size_t dstsz, const char *src, size_t cap)
{
	size_t room, i, n;
	int is_cut = 0;

	if (dst == NULL || dstsz == 0)
		return dst;
	if (src == NULL) {
		dst[0] = '\0';
		return dst;
	}
	room = dstsz - 1;
	if (cap > room)
		cap = room;
	n = strnlen(src, cap + 1);
	if (n > cap) {
		is_cut = 1;
		/* Leave space for "..." inside both the cap and the buffer. */
		n = cap >= 3 ? cap - 3 : 0;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (is_cut) {
		size_t dots = room - i < 3 ? room - i : 3;

		memcpy(dst + i, "...", dots);
		i += dots;
	}
	dst[i] = '\0';
	return dst;
}

int
util_valid_username(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || s[0] == '-')
		return 0;
	/* "." and ".." are path components, never login names. */
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (i >= 32)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

int
util_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
util_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;
	ssize_t k;

	while (got < len) {
		k = read(fd, p + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EBADMSG;
		got += (size_t)k;
	}
	return 0;
}

uint64_t
util_get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

void
util_put_be(uint8_t *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = n; i > 0; i--) {
		p[i - 1] = (uint8_t)v;
		v >>= 8;
	}
}

int
util_unlink_prefixed(int dirfd, const char *prefix)
{
	size_t plen = strlen(prefix);
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (d == NULL) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, plen) == 0 &&
		    unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT) {
			r = -errno;
			break;
		}
	}
	(void)closedir(d);
	return r;
}

int
util_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
