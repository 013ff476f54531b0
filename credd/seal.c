/*
 * seal.c - the record keyring and XChaCha20-Poly1305-IETF sealing
 * (libsodium): reading and parsing the key file, sealing and opening.
 * `credd keygen`'s key file writer is seal_keygen.c. See seal.h for the
 * key file and blob formats.
 *
 * Must never: log, print or return key bytes; keep key bytes anywhere but
 * the sodium_malloc region (left PROT_NONE between calls) or a temporary
 * that is wiped before the function returns; follow a symlink at the key
 * file; accept a key file that others can read or write.
 *
 * Not thread-safe: seal/open flip the key region's protection around each
 * use. credd calls them from its one event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "entra/secret.h"
#include "entra/util.h"
#include "fileperm.h"
#include "seal.h"
#include "seal_int.h"
#include "secmem.h"

#define SEAL_MAGIC "CRS1"
#define SEAL_MAGIC_LEN 4
#define SEAL_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEAL_HDR_LEN (SEAL_MAGIC_LEN + 4 + SEAL_NONCE_LEN)
#define SEAL_AD_PREFIX "credd-record-v1"
#define SEAL_FILE_MAX (64 * 1024) /* a key file is a few lines */
#define SEAL_MAX_KEYS 256
#define SEAL_TENANT_MAX 256
#define SEAL_USER_MAX 256

struct seal {
	size_t n;
	uint32_t *ids;	     /* ids[i] names keys + i * SEAL_KEY_LEN */
	unsigned char *keys; /* sodium_malloc, PROT_NONE while idle */
	uint32_t active;
};

int
seal_sodium_ready(void)
{
	/* sodium_init() is idempotent: 0 first time, 1 afterwards. */
	return sodium_init() < 0 ? -EIO : 0;
}

/* -errno after a failed libsodium call, never 0. */
static int
errno_or_eio(void)
{
	return errno > 0 ? -errno : -EIO;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Next whitespace-separated token in [*p, end); 0 when none is left. */
static size_t
next_token(const char **p, const char *end, const char **tok)
{
	const char *s = *p, *e;

	while (s < end && is_blank(*s))
		s++;
	e = s;
	while (e < end && !is_blank(*e))
		e++;
	*tok = s;
	*p = e;
	return (size_t)(e - s);
}

static int
parse_id(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10 || s[0] == '0')
		return -EBADMSG;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EBADMSG;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EBADMSG;
	*out = (uint32_t)v;
	return 0;
}

/*
 * Parse one line (without its '\n'). Returns 0 for a blank or comment
 * line, 1 for a key line (*kl filled), -EBADMSG otherwise. A '#' starts
 * a comment anywhere: base64 never contains one.
 */
int
seal_parse_line(const char *line, size_t len, struct keyline *kl)
{
	const char *p = line, *end, *tok;
	const char *hash;
	size_t tlen;
	int r;

	memset(kl, 0, sizeof(*kl));
	hash = memchr(line, '#', len);
	end = hash != NULL ? hash : line + len;
	if (memchr(line, '\0', (size_t)(end - line)) != NULL)
		return -EBADMSG;
	tlen = next_token(&p, end, &tok);
	if (tlen == 0)
		return 0;
	if (tlen != 3 || memcmp(tok, "key", 3) != 0)
		return -EBADMSG;
	tlen = next_token(&p, end, &tok);
	r = parse_id(tok, tlen, &kl->id);
	if (r < 0)
		return r;
	kl->b64len = next_token(&p, end, &kl->b64);
	if (kl->b64len == 0)
		return -EBADMSG;
	tlen = next_token(&p, end, &tok);
	if (tlen > 0) {
		if (tlen != 6 || memcmp(tok, "active", 6) != 0)
			return -EBADMSG;
		kl->is_active = 1;
	}
	if (next_token(&p, end, &tok) != 0)
		return -EBADMSG;
	return 1;
}

/* Decode a key line's base64 into dst (SEAL_KEY_LEN bytes). */
static int
decode_key(const struct keyline *kl, unsigned char *dst)
{
	const char *b64_end = NULL;
	size_t binlen = 0;

	if (sodium_base642bin(dst, SEAL_KEY_LEN, kl->b64, kl->b64len, NULL,
		&binlen, &b64_end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    b64_end != kl->b64 + kl->b64len || binlen != SEAL_KEY_LEN) {
		sodium_memzero(dst, SEAL_KEY_LEN);
		return -EBADMSG;
	}
	return 0;
}

/* Length of the line at p (up to, not including, '\n' or end). */
size_t
seal_line_len(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
}

static size_t
count_lines(const char *buf, size_t len)
{
	size_t n = 1, i;

	for (i = 0; i < len; i++)
		if (buf[i] == '\n')
			n++;
	return n;
}

static int
find_key(const struct seal *s, uint32_t id, size_t *idx)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->ids[i] == id) {
			*idx = i;
			return 0;
		}
	}
	return -ENOKEY;
}

/* Parse every line into s (ids/keys allocated for cap keys). */
static int
parse_ring(struct seal *s, const char *buf, size_t len, size_t cap)
{
	const char *p = buf, *end = buf + len;
	struct keyline kl;
	size_t ll, dummy;
	int r, n_active = 0;

	while (p < end) {
		ll = seal_line_len(p, end);
		r = seal_parse_line(p, ll, &kl);
		p += ll + 1;
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		if (s->n == cap)
			return -EMSGSIZE;
		if (find_key(s, kl.id, &dummy) == 0)
			return -EBADMSG; /* duplicate id */
		r = decode_key(&kl, s->keys + s->n * SEAL_KEY_LEN);
		if (r < 0)
			return r;
		s->ids[s->n++] = kl.id;
		if (kl.is_active) {
			s->active = kl.id;
			n_active++;
		}
	}
	if (s->n == 0 || n_active != 1)
		return -EBADMSG;
	return 0;
}

int
seal_load_buf(const char *buf, size_t len, struct seal **out)
{
	struct seal *s = NULL;
	size_t cap;
	int r;

	*out = NULL;
	r = seal_sodium_ready();
	if (r < 0)
		return r;
	if (buf == NULL || len > SEAL_FILE_MAX)
		return -EBADMSG;
	cap = count_lines(buf, len);
	if (cap > SEAL_MAX_KEYS)
		cap = SEAL_MAX_KEYS;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->ids = calloc(cap, sizeof(*s->ids));
	s->keys = sodium_malloc(cap * SEAL_KEY_LEN);
	if (s->ids == NULL || s->keys == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = parse_ring(s, buf, len, cap);
	if (r < 0)
		goto out;
	if (sodium_mprotect_noaccess(s->keys) != 0) {
		r = errno_or_eio();
		goto out;
	}
	*out = s;
	s = NULL; /* transferred */
out:
	seal_free(s);
	return r;
}

/*
 * Open path without following a symlink, check that it is a regular file
 * owned by euid or root, closed to group and others (fileperm.h: an ACL
 * that lets only our euid read is fine) and not executable,
 * and read it into a malloc'd buffer (*buf, wiped by the caller).
 * *st gets its stat.
 */
int
seal_read_key_file(const char *path, char **buf, size_t *len, struct stat *st)
{
	char *b = NULL;
	size_t got = 0;
	ssize_t k;
	int fd, r = 0;

	*buf = NULL;
	*len = 0;
	fd = open(path,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st->st_mode) || (st->st_mode & S_IXUSR) != 0) {
		r = -EPERM;
		goto out;
	}
	r = fileperm_private(fd, st); /* root or us; an ACL for us only */
	if (r < 0)
		goto out;
	if (st->st_size > SEAL_FILE_MAX) {
		r = -EMSGSIZE;
		goto out;
	}
	b = malloc((size_t)st->st_size + 1);
	if (b == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* Read to EOF with a cap, in case the file grew since fstat. */
	while (got <= (size_t)st->st_size) {
		k = read(fd, b + got, (size_t)st->st_size + 1 - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			goto out;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	if (got > (size_t)st->st_size) {
		r = -EMSGSIZE;
		goto out;
	}
	*buf = b;
	*len = got;
	b = NULL; /* transferred */
out:
	if (b != NULL) {
		sodium_memzero(b, (size_t)st->st_size + 1);
		free(b);
	}
	(void)close(fd);
	return r;
}

int
seal_load(const char *path, struct seal **out)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int r;

	*out = NULL;
	r = seal_read_key_file(path, &buf, &len, &st);
	if (r < 0)
		return r;
	r = seal_load_buf(buf, len, out);
	sodium_memzero(buf, len);
	free(buf);
	return r;
}

void
seal_free(struct seal *s)
{
	if (s == NULL)
		return;
	if (s->keys != NULL) {
		/* sodium_free zeroes the region; it must be writable first. */
		(void)sodium_mprotect_readwrite(s->keys);
		sodium_free(s->keys);
	}
	free(s->ids);
	free(s);
}

int
seal_lock(struct seal *s)
{
	int r = 0;

	if (s == NULL || s->keys == NULL || s->n == 0)
		return -EINVAL;
	/* Readable while the pages are locked in (PROT_NONE faults nothing). */
	if (sodium_mprotect_readonly(s->keys) != 0)
		return errno_or_eio();
	/* Not sodium_mlock: sanitizers make mlock() a no-op (secmem.h). */
	r = secmem_mlock(s->keys, s->n * SEAL_KEY_LEN);
	if (sodium_mprotect_noaccess(s->keys) != 0 && r == 0)
		r = errno_or_eio();
	return r;
}

uint32_t
seal_active_id(const struct seal *s)
{
	return s != NULL ? s->active : 0;
}

/* "credd-record-v1" NUL tenant NUL user, malloc'd. Not secret. */
static int
make_ad(const char *tenant, const char *user, uint8_t **ad, size_t *adlen)
{
	size_t pl = sizeof(SEAL_AD_PREFIX), tl, ul;
	uint8_t *p;

	*ad = NULL;
	if (tenant == NULL || user == NULL)
		return -EINVAL;
	tl = strnlen(tenant, SEAL_TENANT_MAX + 1);
	ul = strnlen(user, SEAL_USER_MAX + 1);
	if (tl > SEAL_TENANT_MAX || ul > SEAL_USER_MAX)
		return -EINVAL;
	p = malloc(pl + tl + 1 + ul);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p, SEAL_AD_PREFIX, pl); /* includes the NUL */
	memcpy(p + pl, tenant, tl + 1);
	memcpy(p + pl + tl + 1, user, ul);
	*ad = p;
	*adlen = pl + tl + 1 + ul;
	return 0;
}

int
seal_seal(const struct seal *s, const char *tenant, const char *user,
    const struct secret *plain, uint8_t **out, size_t *outlen)
{
	uint8_t *ad = NULL, *blob = NULL;
	unsigned long long clen = 0;
	size_t adlen = 0, idx = 0, len;
	int r;

	*out = NULL;
	*outlen = 0;
	if (s == NULL || plain == NULL)
		return -EINVAL;
	if (plain->len > SIZE_MAX - SEAL_HDR_LEN - SEAL_TAG_LEN)
		return -EMSGSIZE;
	r = find_key(s, s->active, &idx);
	if (r < 0)
		return r;
	r = make_ad(tenant, user, &ad, &adlen);
	if (r < 0)
		return r;
	len = SEAL_HDR_LEN + plain->len + SEAL_TAG_LEN;
	blob = malloc(len);
	if (blob == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(blob, SEAL_MAGIC, SEAL_MAGIC_LEN);
	util_put_be(blob + SEAL_MAGIC_LEN, s->active, 4);
	randombytes_buf(blob + SEAL_MAGIC_LEN + 4, SEAL_NONCE_LEN);
	if (sodium_mprotect_readonly(s->keys) != 0) {
		r = errno_or_eio();
		goto out;
	}
	r = crypto_aead_xchacha20poly1305_ietf_encrypt(blob + SEAL_HDR_LEN,
	    &clen, (const unsigned char *)plain->ptr, plain->len, ad, adlen,
	    NULL, blob + SEAL_MAGIC_LEN + 4, s->keys + idx * SEAL_KEY_LEN);
	(void)sodium_mprotect_noaccess(s->keys);
	if (r != 0 || clen != plain->len + SEAL_TAG_LEN) {
		r = -EIO;
		goto out;
	}
	*out = blob;
	*outlen = len;
	blob = NULL; /* transferred */
	r = 0;
out:
	free(blob);
	free(ad);
	return r;
}

/* "3, 4" (the first 8 ids, then ", ..."), for messages. */
static void
format_ids(const struct seal *s, char *buf, size_t n)
{
	size_t i, used = 0;
	int k;

	buf[0] = '\0';
	for (i = 0; i < s->n && i < 8; i++) {
		k = snprintf(buf + used, n - used, "%s%u", i ? ", " : "",
		    (unsigned)s->ids[i]);
		if (k < 0 || (size_t)k >= n - used)
			return;
		used += (size_t)k;
	}
	if (s->n > 8)
		(void)snprintf(buf + used, n - used, ", ...");
}

void
seal_explain(const struct seal *s, const uint8_t *blob, size_t len, char *buf,
    size_t n)
{
	uint32_t id = seal_blob_key_id(blob, len);
	size_t idx;
	char ids[128];

	if (n == 0)
		return;
	if (s == NULL || id == 0) {
		snprintf(buf, n, "not a sealed record (bad header)");
		return;
	}
	format_ids(s, ids, sizeof(ids));
	if (find_key(s, id, &idx) < 0)
		snprintf(buf, n,
		    "sealed with key %u, which this key ring does "
		    "not have (its keys: %s)",
		    (unsigned)id, ids);
	else
		snprintf(buf, n,
		    "does not open with key %u (tampered, moved "
		    "from another user, or sealed by another ring that also has "
		    "a key %u)",
		    (unsigned)id, (unsigned)id);
}

uint32_t
seal_blob_key_id(const uint8_t *blob, size_t len)
{
	if (blob == NULL || len < SEAL_HDR_LEN + SEAL_TAG_LEN ||
	    memcmp(blob, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0)
		return 0;
	return (uint32_t)util_get_be(blob + SEAL_MAGIC_LEN, 4);
}

int
seal_open(const struct seal *s, const char *tenant, const char *user,
    const uint8_t *blob, size_t len, struct secret **plain)
{
	struct secret *p = NULL;
	uint8_t *ad = NULL;
	unsigned long long mlen = 0;
	size_t adlen = 0, idx = 0, plen;
	uint32_t id;
	char *zeros = NULL;
	int r;

	*plain = NULL;
	if (s == NULL)
		return -EINVAL;
	id = seal_blob_key_id(blob, len);
	if (id == 0)
		return -EBADMSG;
	r = find_key(s, id, &idx);
	if (r < 0)
		return r;
	r = make_ad(tenant, user, &ad, &adlen);
	if (r < 0)
		return r;
	/*
	 * Decrypt straight into the secret's own buffer, so the plaintext is
	 * never in a temporary: allocate it zero-filled first.
	 */
	plen = len - SEAL_HDR_LEN - SEAL_TAG_LEN;
	zeros = calloc(1, plen + 1);
	if (zeros == NULL) {
		r = -ENOMEM;
		goto out;
	}
	p = secret_new(zeros, plen);
	if (p == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (sodium_mprotect_readonly(s->keys) != 0) {
		r = errno_or_eio();
		goto out;
	}
	r = crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)p->ptr,
	    &mlen, NULL, blob + SEAL_HDR_LEN, len - SEAL_HDR_LEN, ad, adlen,
	    blob + SEAL_MAGIC_LEN + 4, s->keys + idx * SEAL_KEY_LEN);
	(void)sodium_mprotect_noaccess(s->keys);
	if (r != 0 || mlen != plen) {
		r = -EBADMSG;
		goto out;
	}
	*plain = p;
	p = NULL; /* transferred */
	r = 0;
out:
	secret_free(p);
	free(zeros);
	free(ad);
	return r;
}
