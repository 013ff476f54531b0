/*
 * seal_keygen.c - `credd keygen`'s key file writer: a new key ring file
 * (O_CREAT|O_EXCL|O_NOFOLLOW, 0600) with one active key, or one more key
 * in an existing ring, written to a temporary file beside it with the
 * old owner and mode, fsynced and renamed over it, then the directory
 * fsynced. The key file format is in seal.h; seal.c reads it.
 *
 * Must never: print or log key bytes, leave a copy of them anywhere but
 * wiped memory, follow a symlink at the key file, extend a ring that
 * does not load, or leave a half-written ring under the key file's name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "entra/secret.h"
#include "entra/util.h"
#include "seal.h"
#include "seal_int.h"

/*
 * A new ring's first key id is random in 1..2^31-1 (not 1), so that two
 * rings made apart (one per node, where a cluster needed one shared ring)
 * hold different ids: a record from the other ring is then "sealed with
 * key N, which this ring does not have" instead of a failed decryption
 * that looks like tampering. Appended keys count up from there.
 */
#define SEAL_FIRST_ID_MAX 0x7fffffffU

/* A fresh "key <id> <base64> [active]\n" line in a secret. */
static int
make_key_line(uint32_t id, int is_active, struct secret **out)
{
	unsigned char key[SEAL_KEY_LEN];
	char b64[sodium_base64_ENCODED_LEN(SEAL_KEY_LEN,
	    sodium_base64_VARIANT_ORIGINAL)];
	char line[32 + sizeof(b64)];
	int n;

	*out = NULL;
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key),
	    sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(line, sizeof(line), "key %u %s%s\n", (unsigned)id, b64,
	    is_active ? " active" : "");
	if (n > 0 && (size_t)n < sizeof(line))
		*out = secret_new(line, (size_t)n);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(line, sizeof(line));
	return *out != NULL ? 0 : -ENOMEM;
}

static int
fsync_parent(const char *path)
{
	char *copy, *slash;
	int fd, r = 0;

	copy = strdup(path);
	if (copy == NULL)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (slash == NULL)
		fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else {
		slash[slash == copy ? 1 : 0] = '\0';
		fd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		(void)close(fd);
	free(copy);
	return r;
}

static int
keygen_create(const char *path, int fd, uint32_t id)
{
	struct secret *line = NULL;
	int r;

	r = make_key_line(id, 1, &line);
	if (r == 0)
		r = util_write_all(fd, line->ptr, line->len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	secret_free(line);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(path);
		return r;
	}
	return fsync_parent(path);
}

/*
 * Build the new file text: the old lines verbatim (comments kept), except
 * that the active key's line loses its "active" when make_active, plus a
 * new key line. The result is a secret; *next_id gets the new id.
 */
static int
keygen_text(const char *old, size_t len, int make_active, uint32_t *next_id,
    struct secret **out)
{
	const char *p = old, *end = old + len;
	struct secret *line = NULL;
	struct keyline kl;
	char *text = NULL;
	size_t cap, used = 0, ll;
	uint32_t max_id = 0;
	int r, is_key;

	*out = NULL;
	/* Pass 1: the highest id. The ring itself was validated already. */
	while (p < end) {
		ll = seal_line_len(p, end);
		if (seal_parse_line(p, ll, &kl) == 1 && kl.id > max_id)
			max_id = kl.id;
		p += ll + 1;
	}
	if (max_id == UINT32_MAX)
		return -ERANGE;
	*next_id = max_id + 1;
	r = make_key_line(*next_id, make_active, &line);
	if (r < 0)
		return r;
	cap = len + 1 + line->len + 1;
	text = malloc(cap);
	if (text == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (p = old; p < end; p += ll + 1) {
		ll = seal_line_len(p, end);
		is_key = seal_parse_line(p, ll, &kl) == 1;
		if (is_key && kl.is_active && make_active) {
			/* "key <id> <b64>": shorter than the old line. */
			used += (size_t)snprintf(text + used, cap - used,
			    "key %u %.*s\n", (unsigned)kl.id, (int)kl.b64len,
			    kl.b64);
		} else {
			memcpy(text + used, p, ll);
			used += ll;
			text[used++] = '\n';
		}
	}
	memcpy(text + used, line->ptr, line->len);
	used += line->len;
	*out = secret_new(text, used);
	if (*out == NULL)
		r = -ENOMEM;
out:
	if (text != NULL) {
		sodium_memzero(text, cap);
		free(text);
	}
	secret_free(line);
	return r;
}

/* Write text to a temp file beside path, then rename it over path. */
static int
replace_file(const char *path, const struct secret *text,
    const struct stat *old)
{
	char *tmp = NULL;
	int fd = -1, r = 0;

	if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC); /* O_EXCL, mode 0600 */
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* Keep the old owner (root writing a credd-owned key) and mode. */
	if (old->st_uid != geteuid() &&
	    fchown(fd, old->st_uid, old->st_gid) < 0) {
		r = -errno;
		goto out;
	}
	r = util_write_all(fd, text->ptr, text->len);
	if (r < 0)
		goto out;
	if (fchmod(fd, old->st_mode & 0600) < 0 || fsync(fd) < 0) {
		r = -errno;
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	r = fsync_parent(path);
out:
	if (fd >= 0)
		(void)close(fd);
	if (tmp != NULL) {
		(void)unlink(tmp);
		free(tmp);
	}
	return r;
}

static int
keygen_append(const char *path, int make_active, uint32_t *new_id)
{
	struct secret *text = NULL;
	struct seal *ring = NULL;
	struct stat st;
	char *old = NULL;
	size_t len = 0;
	uint32_t id = 0;
	int r;

	r = seal_read_key_file(path, &old, &len, &st);
	if (r < 0)
		return r;
	r = seal_load_buf(old, len, &ring); /* refuse to extend a bad ring */
	seal_free(ring);
	if (r < 0)
		goto out;
	r = keygen_text(old, len, make_active, &id, &text);
	if (r < 0)
		goto out;
	r = replace_file(path, text, &st);
	if (r == 0)
		*new_id = id;
out:
	secret_free(text);
	sodium_memzero(old, len);
	free(old);
	return r;
}

int
seal_keygen(const char *path, int make_active, uint32_t *new_id)
{
	uint32_t id = 0;
	int fd, r;

	if (new_id != NULL)
		*new_id = 0;
	r = seal_sodium_ready();
	if (r < 0)
		return r;
	/* O_EXCL also refuses a symlink at path (EEXIST, then ELOOP below). */
	fd = open(path,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
	    0600);
	if (fd >= 0) {
		id = 1 + randombytes_uniform(SEAL_FIRST_ID_MAX);
		r = keygen_create(path, fd, id);
	} else if (errno == EEXIST)
		r = keygen_append(path, make_active, &id);
	else
		r = -errno;
	if (r == 0 && new_id != NULL)
		*new_id = id;
	return r;
}
