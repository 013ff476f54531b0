/*
 * marks.c - per-user high-water marks of sealed records (see marks.h):
 * 256 sorted shards in memory, each written through to its own file
 * (temp, fdatasync, rename, fsync of the directory) when it changes.
 *
 * Must never: lower a mark, keep user names (keys are BLAKE2b-128 of
 * "tenant\0user\0"), write a shard in place, follow a symlink in the
 * directory, or log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "entra/util.h"
#include "marks.h"

#define MARKS_SHARDS 256
#define MARKS_KEY_LEN 16
#define MARKS_MAGIC "CHM1"
#define MARKS_HDR_LEN 8 /* magic, count */
#define MARKS_ENT_LEN (MARKS_KEY_LEN + 8 + 8 + 1)
#define MARKS_SUM_LEN 16
#define MARKS_SHARD_MAX (1u << 20) /* entries/shard: 33 MiB */
#define MARKS_TMP_PREFIX ".tmp-"
#define MARKS_LOCK ".lock"
#define MARKS_DELETED 1u

struct mark_ent {
	uint8_t key[MARKS_KEY_LEN];
	uint64_t epoch, gen;
	uint8_t flags;
};

struct shard {
	struct mark_ent *v; /* sorted by key */
	size_t n, cap;
};

struct marks {
	int dirfd;
	int lockfd; /* flock held while open */
	unsigned tmp_seq;
	size_t count;
	struct shard shards[MARKS_SHARDS];
};

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

static void
key_of(const char *tenant, const char *user, uint8_t key[MARKS_KEY_LEN])
{
	crypto_generichash_state h;

	(void)crypto_generichash_init(&h, NULL, 0, MARKS_KEY_LEN);
	(void)crypto_generichash_update(&h, (const unsigned char *)tenant,
	    strlen(tenant) + 1);
	(void)crypto_generichash_update(&h, (const unsigned char *)user,
	    strlen(user) + 1);
	(void)crypto_generichash_final(&h, key, MARKS_KEY_LEN);
}

/* Index of key in s, or where it would go (*found 0). O(log n). */
static size_t
shard_find(const struct shard *s, const uint8_t *key, int *found)
{
	size_t lo = 0, hi = s->n, mid;
	int c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(s->v[mid].key, key, MARKS_KEY_LEN);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
shard_insert(struct shard *s, size_t at, const struct mark_ent *e)
{
	struct mark_ent *nv;
	size_t cap;

	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 8;
		nv = reallocarray(s->v, cap, sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	memmove(s->v + at + 1, s->v + at, (s->n - at) * sizeof(*s->v));
	s->v[at] = *e;
	s->n++;
	return 0;
}

/* ---- shard files ---- */

static void
shard_name(unsigned idx, char name[8])
{
	(void)snprintf(name, 8, "m-%02x", idx);
}

/* Parse a whole shard file image into s (empty on entry). */
static int
shard_parse(const uint8_t *buf, size_t size, unsigned idx, struct shard *s)
{
	uint8_t sum[MARKS_SUM_LEN];
	const uint8_t *p;
	size_t n, i;

	if (size < MARKS_HDR_LEN + MARKS_SUM_LEN ||
	    memcmp(buf, MARKS_MAGIC, 4) != 0)
		return -EBADMSG;
	n = (size_t)util_get_be(buf + 4, 4);
	if (n > MARKS_SHARD_MAX ||
	    size != MARKS_HDR_LEN + n * MARKS_ENT_LEN + MARKS_SUM_LEN)
		return -EBADMSG;
	(void)crypto_generichash(sum, sizeof(sum), buf, size - MARKS_SUM_LEN,
	    NULL, 0);
	if (sodium_memcmp(sum, buf + size - MARKS_SUM_LEN, sizeof(sum)) != 0)
		return -EBADMSG;
	s->v = calloc(n ? n : 1, sizeof(*s->v));
	if (s->v == NULL)
		return -ENOMEM;
	s->cap = n ? n : 1;
	for (i = 0, p = buf + MARKS_HDR_LEN; i < n; i++, p += MARKS_ENT_LEN) {
		struct mark_ent *e = &s->v[i];

		memcpy(e->key, p, MARKS_KEY_LEN);
		e->epoch = util_get_be(p + MARKS_KEY_LEN, 8);
		e->gen = util_get_be(p + MARKS_KEY_LEN + 8, 8);
		e->flags = p[MARKS_KEY_LEN + 16];
		/* Sorted, unique, in the right shard, known flags only. */
		if (e->key[0] != idx || (e->flags & ~MARKS_DELETED) != 0 ||
		    (i > 0 &&
			memcmp(s->v[i - 1].key, e->key, MARKS_KEY_LEN) >= 0))
			return -EBADMSG;
		s->n++;
	}
	return 0;
}

/* Read shard idx into m->shards[idx]; a missing file is an empty shard. */
static int
shard_load(struct marks *m, unsigned idx)
{
	const size_t max = MARKS_HDR_LEN +
	    (size_t)MARKS_SHARD_MAX * MARKS_ENT_LEN + MARKS_SUM_LEN;
	struct stat st;
	uint8_t *buf = NULL;
	char name[8];
	int fd, r;

	shard_name(idx, name);
	fd = openat(m->dirfd, name,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (size_t)st.st_size > max) {
		r = S_ISREG(st.st_mode) ? -EBADMSG : -EPERM;
		goto out;
	}
	buf = malloc((size_t)st.st_size ? (size_t)st.st_size : 1);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = util_read_all(fd, buf, (size_t)st.st_size);
	if (r == 0)
		r = shard_parse(buf, (size_t)st.st_size, idx, &m->shards[idx]);
	if (r == 0)
		m->count += m->shards[idx].n;
out:
	free(buf);
	(void)close(fd);
	return r;
}

/* Write shard idx whole: temp file, fdatasync, rename, fsync(dir). */
static int
shard_store(struct marks *m, unsigned idx)
{
	const struct shard *s = &m->shards[idx];
	size_t len = MARKS_HDR_LEN + s->n * MARKS_ENT_LEN + MARKS_SUM_LEN, i;
	char tmp[64], name[8];
	uint8_t *buf, *p;
	int fd, r;

	buf = malloc(len);
	if (buf == NULL)
		return -ENOMEM;
	memcpy(buf, MARKS_MAGIC, 4);
	util_put_be(buf + 4, s->n, 4);
	p = buf + MARKS_HDR_LEN;
	for (i = 0; i < s->n; i++, p += MARKS_ENT_LEN) {
		memcpy(p, s->v[i].key, MARKS_KEY_LEN);
		util_put_be(p + MARKS_KEY_LEN, s->v[i].epoch, 8);
		util_put_be(p + MARKS_KEY_LEN + 8, s->v[i].gen, 8);
		p[MARKS_KEY_LEN + 16] = s->v[i].flags;
	}
	(void)crypto_generichash(p, MARKS_SUM_LEN, buf, len - MARKS_SUM_LEN,
	    NULL, 0);
	shard_name(idx, name);
	(void)snprintf(tmp, sizeof(tmp), MARKS_TMP_PREFIX "%s-%u", name,
	    m->tmp_seq++);
	fd = openat(m->dirfd, tmp,
	    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
	    0600);
	if (fd < 0) {
		r = -errno;
		free(buf);
		return r;
	}
	r = util_write_all(fd, buf, len);
	free(buf);
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(m->dirfd, tmp, m->dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(m->dirfd, tmp, 0);
		return r;
	}
	return fsync(m->dirfd) < 0 ? -errno : 0;
}

/* ---- API ---- */

int
marks_prepare(const char *dir, uid_t uid, gid_t gid)
{
	if (dir == NULL)
		return -EINVAL;
	if (mkdir(dir, 0700) < 0)
		return errno == EEXIST ? 0 : -errno;
	if (chown(dir, uid, gid) < 0) {
		int r = -errno;

		(void)rmdir(dir);
		return r;
	}
	return 0;
}

int
marks_open(const char *dir, struct marks **out, char *err, size_t errsz)
{
	struct marks *m;
	struct stat st;
	unsigned i;
	char name[8];
	int r;

	*out = NULL;
	seterr(err, errsz, "%s", "");
	if (dir == NULL)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->lockfd = -1;
	m->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (m->dirfd < 0) {
		r = -errno;
		seterr(err, errsz, "%s: %s", dir, strerror(-r));
		goto fail;
	}
	if (fstat(m->dirfd, &st) < 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		r = -EPERM;
		seterr(err, errsz,
		    "%s must be a directory owned by uid %u with "
		    "mode 0700",
		    dir, (unsigned)geteuid());
		goto fail;
	}
	m->lockfd = openat(m->dirfd, MARKS_LOCK,
	    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (m->lockfd < 0) {
		r = -errno;
		seterr(err, errsz, "%s/%s: %s", dir, MARKS_LOCK, strerror(-r));
		goto fail;
	}
	if (flock(m->lockfd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		seterr(err, errsz, "%s is in use by another process", dir);
		goto fail;
	}
	r = util_unlink_prefixed(m->dirfd, MARKS_TMP_PREFIX);
	if (r < 0) {
		seterr(err, errsz, "%s: removing temp files: %s", dir,
		    strerror(-r));
		goto fail;
	}
	for (i = 0; i < MARKS_SHARDS; i++) {
		r = shard_load(m, i);
		if (r < 0) {
			shard_name(i, name);
			seterr(err, errsz, "%s/%s: %s", dir, name,
			    r == -EBADMSG ? "damaged (bad header, size, order "
					    "or checksum)" :
					    strerror(-r));
			goto fail;
		}
	}
	*out = m;
	return 0;
fail:
	marks_close(m);
	return r;
}

void
marks_close(struct marks *m)
{
	unsigned i;

	if (m == NULL)
		return;
	for (i = 0; i < MARKS_SHARDS; i++)
		free(m->shards[i].v);
	util_closep(&m->lockfd); /* releases the flock */
	if (m->dirfd >= 0)
		(void)close(m->dirfd);
	free(m);
}

int
marks_get(const struct marks *m, const char *tenant, const char *user,
    struct marks_mark *out)
{
	uint8_t key[MARKS_KEY_LEN];
	const struct shard *s;
	const struct mark_ent *e;
	size_t at;
	int found;

	memset(out, 0, sizeof(*out));
	if (m == NULL || tenant == NULL || user == NULL)
		return -ENOENT;
	key_of(tenant, user, key);
	s = &m->shards[key[0]];
	at = shard_find(s, key, &found);
	if (!found)
		return -ENOENT;
	e = &s->v[at];
	out->epoch = e->epoch;
	out->gen = e->gen;
	out->deleted = (e->flags & MARKS_DELETED) != 0;
	return 0;
}

/*
 * Raise (tenant, user)'s mark to (epoch, gen), or make it a deletion of
 * epoch; 0 when that changes nothing, else the shard is written through.
 */
static int
marks_change(struct marks *m, const char *tenant, const char *user,
    uint64_t epoch, uint64_t gen, int deleted)
{
	uint8_t key[MARKS_KEY_LEN];
	struct mark_ent ne = { 0 }, *e;
	struct shard *s;
	size_t at;
	int found, r;

	if (m == NULL || tenant == NULL || user == NULL)
		return -EINVAL;
	key_of(tenant, user, key);
	s = &m->shards[key[0]];
	at = shard_find(s, key, &found);
	e = found ? &s->v[at] : NULL;
	if (!deleted) {
		struct marks_mark cur = { 0 };

		if (e != NULL) {
			cur = (struct marks_mark){ e->epoch, e->gen,
				(e->flags & MARKS_DELETED) != 0 };
			/* Raise only: a deleted epoch wants a newer epoch. */
			if (!marks_admits(&cur, epoch, gen) ||
			    (!cur.deleted && cur.epoch == epoch &&
				cur.gen == gen))
				return 0;
		}
		memcpy(ne.key, key, sizeof(key));
		ne.epoch = epoch;
		ne.gen = gen;
	} else {
		memcpy(ne.key, key, sizeof(key));
		ne.flags = MARKS_DELETED;
		ne.epoch = epoch;
		if (e != NULL) {
			if ((e->flags & MARKS_DELETED) && e->epoch >= epoch)
				return 0;
			if (e->epoch >= epoch) {
				ne.epoch = e->epoch;
				ne.gen = e->gen;
			}
		}
	}
	if (e != NULL)
		*e = ne;
	else {
		r = shard_insert(s, at, &ne);
		if (r < 0)
			return r;
		m->count++;
	}
	return shard_store(m, key[0]);
}

int
marks_raise(struct marks *m, const char *tenant, const char *user,
    uint64_t epoch, uint64_t gen)
{
	return marks_change(m, tenant, user, epoch, gen, 0);
}

int
marks_deleted(struct marks *m, const char *tenant, const char *user,
    uint64_t epoch)
{
	return marks_change(m, tenant, user, epoch, 0, 1);
}

int
marks_admits(const struct marks_mark *mark, uint64_t epoch, uint64_t gen)
{
	if (mark == NULL)
		return 1;
	if (mark->deleted)
		return epoch > mark->epoch;
	if (epoch != mark->epoch)
		return epoch > mark->epoch;
	return gen >= mark->gen;
}

size_t
marks_count(const struct marks *m)
{
	return m != NULL ? m->count : 0;
}
