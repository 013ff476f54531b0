/*
 * store_file.c - the file backend of store.h: one file per user in one
 * private directory, compare-and-swap under a lock file.
 *
 * Layout: DIR/u-<name>.rec, where <name> is the user name with every byte
 * outside [a-z0-9_.-] written as %XX (upper-case hex), so any name maps to
 * exactly one safe file name. DIR/.lock serialises read-compare-write
 * across processes (flock, opened per operation so that a forked child
 * never shares the parent's lock). Writers create DIR/.tmp-<pid>-<n>,
 * fsync it, rename it over the record and fsync DIR; a crash leaves at
 * worst a temp file, which readers never look at and open removes.
 *
 * Record file: "CRF1" | version u64 BE | tenant length u16 BE |
 * blob length u32 BE | tenant bytes | blob. The tenant lives inside the
 * file: a file written for another tenant reads as -ENOENT (get, del_if,
 * and list skips it), and put_if refuses to overwrite it with -EEXIST.
 *
 * Must never: follow a symlink at a record, lock or temp path (-ELOOP),
 * write a record in place, look inside a blob (sealed bytes only), or
 * log (errors go back as -errno).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "entra/util.h"
#include "store.h"

#define SF_MAGIC "CRF1"
#define SF_HDR_LEN (4 + 8 + 2 + 4)
#define SF_BLOB_MAX (1024 * 1024) /* a sealed record is a few KiB */
#define SF_TENANT_MAX 255
#define SF_USER_MAX 80 /* 2 + 3 * 80 + 4 < NAME_MAX */
#define SF_NAME_MAX (2 + 3 * SF_USER_MAX + 4 + 1)
#define SF_TMP_PREFIX ".tmp-"
#define SF_LOCK ".lock"
#define SF_OTHER_TENANT (-EXDEV) /* internal: file belongs to another tenant */

struct store_file {
	struct store st; /* first: st.priv points back here */
	int dirfd;
	unsigned tmp_seq;
};

static const struct store_ops store_file_ops;

static int
is_plain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	    c == '.' || c == '-';
}

/* user -> "u-<escaped>.rec" in name[SF_NAME_MAX]. -EINVAL on a bad name. */
static int
user_to_name(const char *user, char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t ul, i, o = 0;
	unsigned char c;

	if (user == NULL)
		return -EINVAL;
	ul = strnlen(user, SF_USER_MAX + 1);
	if (ul == 0 || ul > SF_USER_MAX)
		return -EINVAL;
	name[o++] = 'u';
	name[o++] = '-';
	for (i = 0; i < ul; i++) {
		c = (unsigned char)user[i];
		if (is_plain_char(c)) {
			name[o++] = (char)c;
		} else {
			name[o++] = '%';
			name[o++] = hex[c >> 4];
			name[o++] = hex[c & 15];
		}
	}
	memcpy(name + o, ".rec", 5);
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A directory entry name -> malloc'd user, or NULL when it is not a
 * record name in canonical form (so each user has exactly one name).
 */
static char *
name_to_user(const char *name)
{
	char user[SF_USER_MAX + 1], check[SF_NAME_MAX];
	size_t nl = strlen(name), i, o = 0;
	int hi, lo;

	if (nl < 2 + 4 + 1 || nl >= SF_NAME_MAX || memcmp(name, "u-", 2) != 0 ||
	    memcmp(name + nl - 4, ".rec", 4) != 0)
		return NULL;
	for (i = 2; i < nl - 4 && o < SF_USER_MAX; i++) {
		if (name[i] != '%') {
			user[o++] = name[i];
			continue;
		}
		if (i + 2 >= nl - 4)
			return NULL;
		hi = hexval(name[i + 1]);
		lo = hexval(name[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return NULL;
		user[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	if (i != nl - 4)
		return NULL;
	user[o] = '\0';
	if (user_to_name(user, check) < 0 || strcmp(check, name) != 0)
		return NULL;
	return strdup(user);
}

static int
check_tenant(const char *tenant)
{
	size_t tl;

	if (tenant == NULL)
		return -EINVAL;
	tl = strnlen(tenant, SF_TENANT_MAX + 1);
	return tl == 0 || tl > SF_TENANT_MAX ? -EINVAL : 0;
}

/* Check a whole file image and fill *out (blob data copied if want_data). */
static int
parse_record(const uint8_t *buf, size_t size, const char *tenant, int want_data,
    struct blob *out)
{
	uint64_t version;
	size_t tl, bl;

	if (size < SF_HDR_LEN || memcmp(buf, SF_MAGIC, 4) != 0)
		return -EBADMSG;
	version = util_get_be(buf + 4, 8);
	tl = (size_t)util_get_be(buf + 12, 2);
	bl = (size_t)util_get_be(buf + 14, 4);
	if (version == 0 || tl == 0 || tl > SF_TENANT_MAX || bl > SF_BLOB_MAX ||
	    size != SF_HDR_LEN + tl + bl)
		return -EBADMSG;
	if (strlen(tenant) != tl || memcmp(buf + SF_HDR_LEN, tenant, tl) != 0)
		return SF_OTHER_TENANT;
	out->version = version;
	if (!want_data)
		return 0;
	out->data = malloc(bl > 0 ? bl : 1);
	if (out->data == NULL)
		return -ENOMEM;
	memcpy(out->data, buf + SF_HDR_LEN + tl, bl);
	out->len = bl;
	return 0;
}

/*
 * Read DIR/name. 0 and *out; -ENOENT; SF_OTHER_TENANT; -ELOOP for a
 * symlink; -EPERM for a non-regular file; -EBADMSG for a malformed one.
 */
static int
read_record(struct store_file *sf, const char *name, const char *tenant,
    int want_data, struct blob *out)
{
	struct stat st;
	uint8_t *buf = NULL;
	int fd, r;

	memset(out, 0, sizeof(*out));
	/* O_NONBLOCK: a planted FIFO must not hang the loop. */
	fd = openat(sf->dirfd, name,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EPERM;
		goto out;
	}
	if (st.st_size < SF_HDR_LEN ||
	    st.st_size > SF_HDR_LEN + SF_TENANT_MAX + SF_BLOB_MAX) {
		r = -EBADMSG;
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = util_read_all(fd, buf, (size_t)st.st_size);
	if (r < 0)
		goto out;
	r = parse_record(buf, (size_t)st.st_size, tenant, want_data, out);
out:
	free(buf);
	(void)close(fd);
	return r;
}

/* Open and exclusively lock DIR/.lock; the lock goes with close(*lockfd). */
static int
lock_dir(struct store_file *sf, int *lockfd)
{
	int fd;

	*lockfd = -1;
	fd = openat(sf->dirfd, SF_LOCK,
	    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int r = -errno;

			(void)close(fd);
			return r;
		}
	}
	*lockfd = fd;
	return 0;
}

static int
write_tmp(int fd, const char *tenant, const uint8_t *data, size_t len,
    uint64_t version)
{
	uint8_t hdr[SF_HDR_LEN];
	size_t tl = strlen(tenant);
	int r;

	memcpy(hdr, SF_MAGIC, 4);
	util_put_be(hdr + 4, version, 8);
	util_put_be(hdr + 12, tl, 2);
	util_put_be(hdr + 14, len, 4);
	r = util_write_all(fd, hdr, sizeof(hdr));
	if (r == 0)
		r = util_write_all(fd, tenant, tl);
	if (r == 0 && len > 0)
		r = util_write_all(fd, data, len);
	if (r == 0 &&
	    fdatasync(fd) < 0) /* data and size; the rename makes it visible */
		r = -errno;
	return r;
}

/* Replace DIR/name atomically. Called with the lock held. */
static int
write_record(struct store_file *sf, const char *name, const char *tenant,
    const uint8_t *data, size_t len, uint64_t version)
{
	char tmp[64];
	int fd, r, tries;

	for (tries = 0;; tries++) {
		(void)snprintf(tmp, sizeof(tmp), SF_TMP_PREFIX "%ld-%u",
		    (long)getpid(), sf->tmp_seq++);
		fd = openat(sf->dirfd, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
			O_NOCTTY,
		    0600);
		if (fd >= 0)
			break;
		/* Under the lock a temp file can only be a crash leftover. */
		if (errno != EEXIST || tries > 0)
			return -errno;
		(void)unlinkat(sf->dirfd, tmp, 0);
	}
	r = write_tmp(fd, tenant, data, len, version);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(sf->dirfd, tmp, sf->dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(sf->dirfd, tmp, 0);
		return r;
	}
	return fsync(sf->dirfd) < 0 ? -errno : 0;
}

static int
sf_get(struct store *st, const char *tenant, const char *user, struct blob *out)
{
	struct store_file *sf = st->priv;
	char name[SF_NAME_MAX];
	int r;

	memset(out, 0, sizeof(*out));
	r = check_tenant(tenant);
	if (r == 0)
		r = user_to_name(user, name);
	if (r < 0)
		return r;
	r = read_record(sf, name, tenant, 1, out);
	return r == SF_OTHER_TENANT ? -ENOENT : r;
}

static int
sf_put_if(struct store *st, const char *tenant, const char *user,
    const uint8_t *data, size_t len, uint64_t expect, uint64_t *new_version)
{
	struct store_file *sf = st->priv;
	struct blob cur = { 0 };
	char name[SF_NAME_MAX];
	int lockfd = -1, r;

	*new_version = 0;
	r = check_tenant(tenant);
	if (r == 0)
		r = user_to_name(user, name);
	if (r < 0)
		return r;
	if (len > SF_BLOB_MAX || (data == NULL && len > 0))
		return -EMSGSIZE;
	if (expect == UINT64_MAX)
		return -EOVERFLOW;
	r = lock_dir(sf, &lockfd);
	if (r < 0)
		return r;
	r = read_record(sf, name, tenant, 0, &cur);
	if (r == SF_OTHER_TENANT)
		r = -EEXIST;
	else if (r == -ENOENT)
		r = expect == 0 ? 0 : -ESTALE;
	else if (r == 0 && cur.version != expect)
		r = -ESTALE;
	if (r < 0)
		goto out;
	r = write_record(sf, name, tenant, data, len, expect + 1);
	if (r == 0)
		*new_version = expect + 1;
out:
	util_closep(&lockfd);
	return r;
}

static int
sf_del_if(struct store *st, const char *tenant, const char *user,
    uint64_t expect)
{
	struct store_file *sf = st->priv;
	struct blob cur = { 0 };
	char name[SF_NAME_MAX];
	int lockfd = -1, r;

	r = check_tenant(tenant);
	if (r == 0)
		r = user_to_name(user, name);
	if (r < 0)
		return r;
	r = lock_dir(sf, &lockfd);
	if (r < 0)
		return r;
	r = read_record(sf, name, tenant, 0, &cur);
	if (r == SF_OTHER_TENANT)
		r = -ENOENT;
	else if (r == 0 && cur.version != expect)
		r = -ESTALE;
	if (r < 0)
		goto out;
	if (unlinkat(sf->dirfd, name, 0) < 0 || fsync(sf->dirfd) < 0)
		r = -errno;
out:
	util_closep(&lockfd);
	return r;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
free_names(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Users with a record file whose name sorts after cursor, sorted. */
static int
scan_users(struct store_file *sf, const char *cursor, char ***out, size_t *n)
{
	struct dirent *de;
	char **v = NULL, **nv, *user;
	size_t cap = 0, cnt = 0;
	DIR *d;
	int fd, r = 0;

	*out = NULL;
	*n = 0;
	fd = openat(sf->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (d == NULL) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		user = name_to_user(de->d_name);
		if (user == NULL ||
		    (cursor != NULL && strcmp(user, cursor) <= 0)) {
			free(user);
			continue;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 32;
			nv = reallocarray(v, cap, sizeof(*v));
			if (nv == NULL) {
				free(user);
				r = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[cnt++] = user;
		errno = 0;
	}
	if (errno != 0) {
		r = -errno;
		goto out;
	}
	/* O(n log n) over the whole directory per page: fine below ~10^5. */
	if (cnt > 0)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*out = v;
	*n = cnt;
	v = NULL; /* transferred */
out:
	free_names(v, cnt);
	(void)closedir(d);
	return r;
}

static int
sf_list(struct store *st, const char *tenant, const char *cursor, size_t limit,
    int want_blobs, struct store_entry **out, size_t *n, char **next)
{
	struct store_file *sf = st->priv;
	struct store_entry *e = NULL;
	char **users = NULL, name[SF_NAME_MAX];
	size_t nusers = 0, i, cnt = 0;
	int r;

	*out = NULL;
	*n = 0;
	*next = NULL;
	r = check_tenant(tenant);
	if (r < 0)
		return r;
	if (limit == 0)
		return -EINVAL;
	if (cursor != NULL && cursor[0] == '\0')
		cursor = NULL;
	r = scan_users(sf, cursor, &users, &nusers);
	if (r < 0)
		return r;
	e = calloc(limit < nusers ? limit : (nusers ? nusers : 1), sizeof(*e));
	if (e == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nusers && cnt < limit; i++) {
		if (user_to_name(users[i], name) < 0)
			continue;
		r = read_record(sf, name, tenant, want_blobs, &e[cnt].blob);
		if (r == -ENOENT || r == SF_OTHER_TENANT) {
			r = 0; /* deleted meanwhile, or another tenant's */
			continue;
		}
		if (r < 0)
			goto out;
		e[cnt].version = e[cnt].blob.version;
		e[cnt].user = users[i];
		users[i] = NULL; /* transferred */
		cnt++;
	}
	if (i < nusers) {
		*next = strdup(e[cnt - 1].user);
		if (*next == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	*out = e;
	*n = cnt;
	e = NULL; /* transferred */
out:
	store_entries_free(e, cnt);
	free_names(users, nusers);
	return r;
}

static int
sf_notify_fd(struct store *st)
{
	return -1;
}

static int
sf_notify_next(struct store *st, char **user)
{
	*user = NULL;
	return 0;
}

static void
sf_close(struct store *st)
{
	struct store_file *sf;

	if (st == NULL)
		return;
	sf = st->priv;
	util_closep(&sf->dirfd);
	free(sf);
}

int
store_file_open(const char *dir, struct store **out)
{
	struct store_file *sf;
	struct stat st;
	int lockfd = -1, r;

	*out = NULL;
	if (dir == NULL)
		return -EINVAL;
	sf = calloc(1, sizeof(*sf));
	if (sf == NULL)
		return -ENOMEM;
	sf->st.ops = &store_file_ops;
	sf->st.priv = sf;
	/* Everything below is relative to this fd, not to the path. */
	sf->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sf->dirfd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(sf->dirfd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		r = -EPERM;
		goto out;
	}
	r = lock_dir(sf, &lockfd);
	if (r < 0)
		goto out;
	r = util_unlink_prefixed(sf->dirfd, SF_TMP_PREFIX);
	util_closep(&lockfd);
	if (r < 0)
		goto out;
	*out = &sf->st;
	sf = NULL; /* transferred */
out:
	if (sf != NULL)
		sf_close(&sf->st);
	return r;
}

static const struct store_ops store_file_ops = {
	.name = "file",
	.get = sf_get,
	.put_if = sf_put_if,
	.del_if = sf_del_if,
	.list = sf_list,
	.notify_fd = sf_notify_fd,
	.notify_next = sf_notify_next,
	.close = sf_close,
};
