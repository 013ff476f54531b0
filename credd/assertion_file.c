/*
 * assertion_file.c - the files behind client assertions: reading a file
 * that only root or credd may read (the certificate, the federated
 * token), and the federated token itself (workload identity), checked
 * for shape and staleness and returned as a secret.
 *
 * The federated token is the issuer's JWT, sent verbatim; its signature
 * is Entra's to verify, so here it is only decoded to read "exp".
 *
 * Must never: follow a symlink, read more than the bound, accept a file
 * that others may read, or put any byte of a file into an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "assertion.h"
#include "assertion_int.h"
#include "fileperm.h"

void
assertion_err(char *err, size_t errsz, const char *path, const char *why)
{
	if (err != NULL && errsz > 0)
		(void)snprintf(err, errsz, "%s: %s", path, why);
}

static const char *
open_why(int r)
{
	switch (r) {
	case -ENOENT:
		return "no such file";
	case -EACCES:
		return "permission denied";
	case -ELOOP:
		return "is a symbolic link (refused)";
	case -EPERM:
		return "must be a regular file owned by root or credd, "
		       "closed to group and others (chmod 0600), not "
		       "executable";
	case -EMSGSIZE:
		return "file too large";
	default:
		return "cannot read the file";
	}
}

static int
read_fd(int fd, size_t size, size_t max, char **buf, size_t *len)
{
	size_t cap = size + 1, got = 0;
	char *b;
	ssize_t k = 0;

	b = malloc(cap + 1);
	if (b == NULL)
		return -ENOMEM;
	/* Read to EOF with a cap, in case the file grew since fstat. */
	while (got < cap) {
		k = read(fd, b + got, cap - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	if (k < 0 || got > size || got > max) {
		int r = k < 0 ? -errno : -EMSGSIZE;

		secret_wipe(b, cap + 1);
		free(b);
		return r;
	}
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
}

int
assertion_read_private(const char *path, size_t max, char **buf, size_t *len,
    char *err, size_t errsz)
{
	struct stat st;
	int fd, r;

	*buf = NULL;
	*len = 0;
	fd = open(path,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	r = -EPERM;
	if (!S_ISREG(st.st_mode) || (st.st_mode & S_IXUSR) != 0)
		goto out;
	r = fileperm_private(fd, &st); /* root or us; an ACL for us only */
	if (r < 0)
		goto out;
	r = -EMSGSIZE;
	if (st.st_size < 0 || (size_t)st.st_size > max)
		goto out;
	r = read_fd(fd, (size_t)st.st_size, max, buf, len);
out:
	if (fd >= 0)
		(void)close(fd);
	if (r < 0)
		assertion_err(err, errsz, path, open_why(r));
	return r;
}

/* [A-Za-z0-9_-]+ for n bytes. */
static int
is_b64url(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* header.payload.signature, each part base64url and non-empty. */
static int
is_compact_jws(const char *s, size_t n, const char **payload,
    size_t *payload_len)
{
	const char *d1, *d2;

	d1 = memchr(s, '.', n);
	if (d1 == NULL)
		return 0;
	d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - s));
	if (d2 == NULL)
		return 0;
	*payload = d1 + 1;
	*payload_len = (size_t)(d2 - d1 - 1);
	return is_b64url(s, (size_t)(d1 - s)) &&
	    is_b64url(*payload, *payload_len) &&
	    is_b64url(d2 + 1, n - (size_t)(d2 + 1 - s));
}

/* The payload's numeric "exp", or 0 when it has none or is not JSON. */
static int64_t
payload_exp(const char *p, size_t n)
{
	unsigned char *bin;
	size_t cap = n, len = 0;
	json_t *root, *exp;
	int64_t v = 0;

	bin = malloc(cap + 1);
	if (bin == NULL)
		return 0;
	if (sodium_base642bin(bin, cap, p, n, NULL, &len, NULL,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0) {
		root = json_loadb((const char *)bin, len,
		    JSON_REJECT_DUPLICATES, NULL);
		exp = json_object_get(root, "exp");
		if (json_is_integer(exp))
			v = (int64_t)json_integer_value(exp);
		else if (json_is_real(exp) && json_real_value(exp) > -9.0e18 &&
		    json_real_value(exp) <
			9.0e18) /* the cast must not overflow */
			v = (int64_t)json_real_value(exp);
		json_decref(root);
	}
	secret_wipe(bin, cap + 1);
	free(bin);
	return v;
}

int
assertion_token_check(const char *buf, size_t len, int64_t now, size_t *tok_len,
    int64_t *exp, const char **why)
{
	const char *payload = NULL;
	size_t plen = 0;

	*exp = 0;
	if (len > 0 && buf[len - 1] == '\n')
		len--; /* written by echo, or by the kubelet without one */
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	*tok_len = len;
	if (len == 0) {
		*why = "empty federated token file";
		return -EBADMSG;
	}
	if (!is_compact_jws(buf, len, &payload, &plen)) {
		*why = "not a JWT (expected header.payload.signature)";
		return -EBADMSG;
	}
	*exp = payload_exp(payload, plen);
	if (*exp != 0 && *exp <= now) {
		*why = "the federated token has expired (its issuer no longer "
		       "rotates the file?)";
		return -EKEYEXPIRED;
	}
	*why = NULL;
	return 0;
}

int
assertion_file_read(const char *path, int64_t now, struct secret **out,
    int64_t *exp_out, char *err, size_t errsz)
{
	const char *why = NULL;
	size_t len = 0, tok_len = 0;
	char *buf = NULL;
	int64_t exp = 0;
	int r;

	*out = NULL;
	if (exp_out != NULL)
		*exp_out = 0;
	if (path == NULL)
		return -EINVAL;
	r = assertion_read_private(path, ASSERTION_TOKEN_FILE_MAX, &buf, &len,
	    err, errsz);
	if (r < 0)
		return r;
	r = assertion_token_check(buf, len, now, &tok_len, &exp, &why);
	if (exp_out != NULL)
		*exp_out = exp;
	if (r < 0) {
		assertion_err(err, errsz, path, why);
		goto out;
	}
	*out = secret_new(buf, tok_len);
	r = *out != NULL ? 0 : -ENOMEM;
out:
	secret_wipe(buf, len + 1);
	free(buf);
	return r;
}
