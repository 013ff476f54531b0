/*
 * config.c - read /etc/credd/credd.conf and parse its INI syntax into
 * struct config: the file (a regular file root or we own, not writable
 * by others), its lines, comments, [section] headers and key = value
 * pairs, each handed to the key tables (config_keys.c); then the
 * defaults and the checks across keys. Also config_expand_credentials(),
 * which turns %d/NAME into a path where the keys are read.
 *
 * Every error is "file:line: message" (or "file: message" for what is
 * missing at the end; config_err.c). Values from the file are quoted and
 * capped in messages, and values that may carry credentials (URLs, the
 * DSN) are never echoed. This file never opens the secret files it
 * names: their readers check them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "entra/util.h"

#include "config.h"
#include "config_int.h"

#define CONFIG_LINE_MAX 4096	      /* bytes per line, without '\n' */
#define CONFIG_FILE_MAX (1024 * 1024) /* a config is never this big */

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Cut a comment: ';' or '#' at the start or after whitespace. */
static void
strip_comment(char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if ((s[i] == ';' || s[i] == '#') &&
		    (i == 0 || isspace((unsigned char)s[i - 1]))) {
			s[i] = '\0';
			return;
		}
	}
}

static int
do_section(struct parser *p, char *s)
{
	const struct section *sec;
	char qb[CONFIG_QUOTE_MAX + 1];
	char *end;

	end = strchr(s, ']');
	if (end == NULL || end[1] != '\0') {
		config_err(p, "malformed section header");
		return -EINVAL;
	}
	*end = '\0';
	s = trim(s + 1);
	sec = config_keys_section(s);
	if (sec == NULL) {
		config_err(p, "unknown section [%s]",
		    config_err_quote(qb, sizeof(qb), s));
		return -EINVAL;
	}
	p->sec = sec;
	return 0;
}

static int
do_line(struct parser *p, const char *line, size_t len)
{
	char buf[CONFIG_LINE_MAX + 1];
	char *s, *eq;

	if (len > CONFIG_LINE_MAX) {
		config_err(p, "line longer than %d bytes", CONFIG_LINE_MAX);
		return -EMSGSIZE;
	}
	if (memchr(line, '\0', len) != NULL) {
		config_err(p, "NUL byte in line");
		return -EINVAL;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	strip_comment(buf);
	s = trim(buf);
	if (*s == '\0')
		return 0;
	if (*s == '[')
		return do_section(p, s);
	eq = strchr(s, '=');
	if (eq == NULL) {
		config_err(p, "expected 'key = value' or '[section]'");
		return -EINVAL;
	}
	*eq = '\0';
	s = trim(s);
	if (*s == '\0') {
		config_err(p, "missing key before '='");
		return -EINVAL;
	}
	return config_keys_set(p, s, trim(eq + 1));
}

int
config_parse(const char *name, const char *buf, size_t len, struct config **out,
    char *err, size_t errsz)
{
	struct parser p = { 0 };
	const char *line, *end, *nl;
	int r;

	*out = NULL;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	p.name = name != NULL ? name : "(config)";
	p.err = err;
	p.errsz = errsz;
	if (!config_keys_sorted()) {
		config_err(&p, "internal: config key tables are not sorted");
		return -EINVAL;
	}
	p.cf = calloc(1, sizeof(*p.cf));
	if (p.cf == NULL)
		return -ENOMEM;
	p.cf->path = strdup(p.name);
	if (p.cf->path == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	line = buf;
	end = buf + len;
	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			nl = end;
		p.line++;
		r = do_line(&p, line, (size_t)(nl - line));
		if (r < 0)
			goto fail;
		line = nl + 1;
	}
	p.line = 0;
	r = config_keys_defaults(&p);
	if (r < 0)
		goto fail;
	r = config_keys_check(&p);
	if (r < 0)
		goto fail;
	*out = p.cf;
	return 0;
fail:
	if (r == -ENOMEM && err != NULL && errsz > 0 && err[0] == '\0')
		(void)snprintf(err, errsz, "%s: out of memory", p.name);
	config_free(p.cf);
	return r;
}

/*
 * Read the file: a regular file that neither group nor others can write,
 * owned by root or by us (it decides where tokens go). Symlinks are
 * followed: configuration management often links /etc files.
 */
static int
read_file(const char *path, char **bufp, size_t *lenp, char *err, size_t errsz)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, r;

	*bufp = NULL;
	*lenp = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		(void)snprintf(err, errsz, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		(void)snprintf(err, errsz, "%s: %s", path, strerror(-r));
		goto out;
	}
	r = -EPERM;
	if (!S_ISREG(st.st_mode)) {
		(void)snprintf(err, errsz, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		(void)snprintf(err, errsz,
		    "%s: writable by group or others "
		    "(mode %04o); refusing",
		    path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		(void)snprintf(err, errsz,
		    "%s: owned by uid %u, not root; "
		    "refusing",
		    path, (unsigned)st.st_uid);
		goto out;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		r = -EFBIG;
		(void)snprintf(err, errsz, "%s: larger than %d bytes", path,
		    CONFIG_FILE_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			(void)snprintf(err, errsz, "%s: %s", path,
			    strerror(-r));
			goto out;
		}
		if (n == 0)
			break; /* shrank under us; parse what is there */
		got += (size_t)n;
	}
	*bufp = buf;
	*lenp = got;
	buf = NULL; /* transferred */
	r = 0;
out:
	free(buf);
	util_closep(&fd);
	return r;
}

int
config_load(const char *path, struct config **out, char *err, size_t errsz)
{
	char dummy[1];
	char *buf;
	size_t len;
	int r;

	*out = NULL;
	if (err == NULL || errsz == 0) {
		err = dummy;
		errsz = sizeof(dummy);
	}
	err[0] = '\0';
	if (path == NULL)
		return -EINVAL;
	r = read_file(path, &buf, &len, err, errsz);
	if (r < 0)
		return r;
	r = config_parse(path, buf, len, out, err, errsz);
	free(buf);
	return r;
}

/* "%d/NAME" in *field becomes dir/NAME; 1 when it did, 0 when no %d. */
static int
expand_cred_path(const struct config *cf, const char *key, char **field,
    const char *dir, size_t dirlen, char *err, size_t errsz)
{
	const char *why;
	char *p;

	if (*field == NULL || strncmp(*field, "%d/", 3) != 0)
		return 0;
	if (dir == NULL) {
		(void)snprintf(err, errsz,
		    "%s: %s = %s needs "
		    "$CREDENTIALS_DIRECTORY, which is not set (systemd sets it "
		    "for LoadCredential=; outside systemd, name the file "
		    "itself)",
		    cf->path, key, *field);
		return -ENOENT;
	}
	if (dir[0] != '/') {
		(void)snprintf(err, errsz,
		    "%s: %s = %s: $CREDENTIALS_DIRECTORY "
		    "is not an absolute path",
		    cf->path, key, *field);
		return -EINVAL;
	}
	if (asprintf(&p, "%.*s/%s", (int)dirlen, dir, *field + 3) < 0)
		return -ENOMEM;
	why = config_check_path(p);
	if (why != NULL) {
		(void)snprintf(err, errsz,
		    "%s: %s = %s: $CREDENTIALS_DIRECTORY "
		    "gives a path that %s",
		    cf->path, key, *field,
		    strlen(p) >= PATH_MAX ? "is too long" :
					    "has spaces or control characters");
		free(p);
		return -EINVAL;
	}
	free(*field);
	*field = p;
	return 1;
}

int
config_expand_credentials(struct config *cf, const char *creds_dir, char *err,
    size_t errsz)
{
	char dummy[1];
	size_t dirlen = 0;
	int r, used = 0;

	if (err == NULL || errsz == 0) {
		err = dummy;
		errsz = sizeof(dummy);
	}
	err[0] = '\0';
	if (cf == NULL)
		return -EINVAL;
	if (creds_dir != NULL && *creds_dir == '\0')
		creds_dir = NULL;
	if (creds_dir != NULL) {
		dirlen = strlen(creds_dir);
		while (dirlen > 0 && creds_dir[dirlen - 1] == '/')
			dirlen--;
	}
	r = expand_cred_path(cf, "key_file", &cf->key_file, creds_dir, dirlen,
	    err, errsz);
	if (r < 0)
		return r;
	used |= r;
	r = expand_cred_path(cf, "client_secret_file", &cf->client_secret_file,
	    creds_dir, dirlen, err, errsz);
	if (r < 0)
		return r;
	used |= r;
	r = expand_cred_path(cf, "client_certificate_file",
	    &cf->client_certificate_file, creds_dir, dirlen, err, errsz);
	if (r < 0)
		return r;
	used |= r;
	r = expand_cred_path(cf, "[offboarding] client_secret_file",
	    &cf->off_client_secret_file, creds_dir, dirlen, err, errsz);
	if (r < 0)
		return r;
	used |= r;
	r = expand_cred_path(cf, "[offboarding] client_certificate_file",
	    &cf->off_client_certificate_file, creds_dir, dirlen, err, errsz);
	if (r < 0)
		return r;
	used |= r;
	if (used && cf->creds_dir == NULL) {
		cf->creds_dir = strdup(creds_dir);
		if (cf->creds_dir == NULL)
			return -ENOMEM;
	}
	return 0;
}
