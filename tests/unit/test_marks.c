/*
 * test_marks.c - credd/marks.c, the per-user high-water marks: what a
 * mark admits, raise-only, deletions, durability across reopen, damaged
 * shards, directory modes, one process per directory, crash leftovers,
 * and the cost at 100k users (shards written in the documented format,
 * then opened; figures printed, nothing timed is asserted).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "marks.h"
#include "test.h"

#define T "72f988bf-86f1-41af-91ab-2d7cd011db47"

static const char *root;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

TEST(admits)
{
	struct marks_mark live = { .epoch = 100, .gen = 5 };
	struct marks_mark gone = { .epoch = 100, .gen = 5, .deleted = 1 };

	ASSERT_EQ(marks_admits(NULL, 0, 0), 1);
	ASSERT_EQ(marks_admits(&live, 100, 5), 1);   /* the same row again */
	ASSERT_EQ(marks_admits(&live, 100, 6), 1);   /* a newer write */
	ASSERT_EQ(marks_admits(&live, 101, 1), 1);   /* a newer epoch */
	ASSERT_EQ(marks_admits(&live, 100, 4), 0);   /* an older write */
	ASSERT_EQ(marks_admits(&live, 99, 1000), 0); /* an older epoch */
	ASSERT_EQ(marks_admits(&live, 0, 0), 0);     /* a pre-upgrade row */
	ASSERT_EQ(marks_admits(&gone, 100, 5), 0);   /* the deleted row */
	ASSERT_EQ(marks_admits(&gone, 100, 9), 0);   /* its epoch, any gen */
	ASSERT_EQ(marks_admits(&gone, 101, 1), 1);   /* a new consent */
}

TEST(raise_only_and_durable)
{
	const char *d = fixture_subdir(root);
	struct marks *m = NULL;
	struct marks_mark k;
	struct stat sb;
	char err[256];

	ASSERT_EQ(marks_open(d, &m, err, sizeof(err)), 0);
	ASSERT_EQ(marks_count(m), 0);
	ASSERT_ERR(marks_get(m, T, "alice", &k), -ENOENT);
	ASSERT_EQ(marks_raise(m, T, "alice", 100, 3), 0);
	ASSERT_EQ(marks_raise(m, T, "alice", 100, 2), 0); /* never lowered */
	ASSERT_EQ(marks_raise(m, T, "alice", 99, 50), 0);
	ASSERT_EQ(marks_get(m, T, "alice", &k), 0);
	ASSERT_EQ(k.epoch, 100);
	ASSERT_EQ(k.gen, 3);
	ASSERT_EQ(k.deleted, 0);
	ASSERT_EQ(marks_raise(m, T, "alice", 100, 7), 0);
	ASSERT_EQ(marks_raise(m, T, "bob", 200, 1), 0);
	/* Tenants are part of the key. */
	ASSERT_ERR(marks_get(m, "other-tenant", "alice", &k), -ENOENT);
	ASSERT_EQ(marks_count(m), 2);
	marks_close(m);
	m = NULL;
	/* No temp file left; the directory holds shards and the lock only. */
	ASSERT_EQ(stat(fixture_path(d, ".lock"), &sb), 0);
	ASSERT_EQ(marks_open(d, &m, err, sizeof(err)), 0);
	ASSERT_EQ(marks_count(m), 2);
	ASSERT_EQ(marks_get(m, T, "alice", &k), 0);
	ASSERT_EQ(k.epoch, 100);
	ASSERT_EQ(k.gen, 7);
	ASSERT_EQ(marks_get(m, T, "bob", &k), 0);
	ASSERT_EQ(k.epoch, 200);
	marks_close(m);
	marks_close(NULL);
}

TEST(deletions)
{
	const char *d = fixture_subdir(root);
	struct marks *m = NULL;
	struct marks_mark k;

	ASSERT_EQ(marks_open(d, &m, NULL, 0), 0);
	ASSERT_EQ(marks_raise(m, T, "carol", 100, 4), 0);
	ASSERT_EQ(marks_deleted(m, T, "carol", 100), 0);
	ASSERT_EQ(marks_get(m, T, "carol", &k), 0);
	ASSERT_EQ(k.deleted, 1);
	ASSERT_EQ(k.epoch, 100);
	ASSERT_EQ(k.gen, 4);
	/* The deleted epoch never comes back, whatever its generation. */
	ASSERT_EQ(marks_raise(m, T, "carol", 100, 9), 0);
	ASSERT_EQ(marks_get(m, T, "carol", &k), 0);
	ASSERT_EQ(k.deleted, 1);
	ASSERT_EQ(marks_admits(&k, 100, 9), 0);
	/* A deletion of an older epoch changes nothing. */
	ASSERT_EQ(marks_deleted(m, T, "carol", 50), 0);
	ASSERT_EQ(marks_get(m, T, "carol", &k), 0);
	ASSERT_EQ(k.epoch, 100);
	/* A new consent (a newer epoch) is live again. */
	ASSERT_EQ(marks_raise(m, T, "carol", 300, 1), 0);
	ASSERT_EQ(marks_get(m, T, "carol", &k), 0);
	ASSERT_EQ(k.deleted, 0);
	ASSERT_EQ(k.epoch, 300);
	ASSERT_EQ(k.gen, 1);
	/* A deletion seen without a mark before: that epoch and older. */
	ASSERT_EQ(marks_deleted(m, T, "dave", 70), 0);
	ASSERT_EQ(marks_get(m, T, "dave", &k), 0);
	ASSERT_EQ(k.deleted, 1);
	ASSERT_EQ(marks_admits(&k, 70, 1), 0);
	ASSERT_EQ(marks_admits(&k, 71, 1), 1);
	marks_close(m);
	m = NULL;
	ASSERT_EQ(marks_open(d, &m, NULL, 0), 0);
	ASSERT_EQ(marks_get(m, T, "dave", &k), 0);
	ASSERT_EQ(k.deleted, 1);
	ASSERT_EQ(marks_get(m, T, "carol", &k), 0);
	ASSERT_EQ(k.deleted, 0);
	marks_close(m);
}

/* Flip one byte of every shard file in d; how many there were. */
static int
damage_shards(const char *d, off_t at)
{
	char name[8];
	int i, fd, n = 0;
	unsigned char c;

	for (i = 0; i < 256; i++) {
		snprintf(name, sizeof(name), "m-%02x", i);
		fd = open(fixture_path(d, name), O_RDWR);
		if (fd < 0)
			continue;
		if (pread(fd, &c, 1, at) == 1) {
			c ^= 0x01;
			if (pwrite(fd, &c, 1, at) == 1)
				n++;
		}
		close(fd);
	}
	return n;
}

TEST(damaged_shard_refused)
{
	static const off_t where[] = { 0, 5, 8, 20, 33, 40 };
	struct marks *m = NULL;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		const char *d = fixture_subdir(root);

		ASSERT_EQ(marks_open(d, &m, NULL, 0), 0);
		ASSERT_EQ(marks_raise(m, T, "alice", 100, 3), 0);
		marks_close(m);
		m = NULL;
		ASSERT_EQ(damage_shards(d, where[i]), 1);
		ASSERT_ERR(marks_open(d, &m, err, sizeof(err)), -EBADMSG);
		ASSERT_TRUE(m == NULL);
		/* The message names the file, for the administrator. */
		ASSERT_TRUE(strstr(err, "/m-") != NULL);
		ASSERT_TRUE(strstr(err, "damaged") != NULL);
	}
}

TEST(modes_lock_and_leftovers)
{
	const char *d = fixture_subdir(root);
	struct marks *m = NULL, *m2 = NULL;
	struct stat sb;
	char err[256], dir[128];
	int fd;

	snprintf(dir, sizeof(dir), "%s", d);
	ASSERT_EQ(chmod(dir, 0750), 0);
	ASSERT_ERR(marks_open(dir, &m, err, sizeof(err)), -EPERM);
	ASSERT_TRUE(strstr(err, "0700") != NULL);
	ASSERT_EQ(chmod(dir, 0700), 0);
	ASSERT_ERR(marks_open(fixture_path(dir, "missing"), &m, NULL, 0),
	    -ENOENT);
	/* A symlink is not followed. */
	ASSERT_EQ(symlink(dir, fixture_path(root, "link")), 0);
	ASSERT_ERR(marks_open(fixture_path(root, "link"), &m, NULL, 0),
	    -ENOTDIR);
	/* A crashed writer's temp file goes at open. */
	fd = open(fixture_path(dir, ".tmp-m-00-7"), O_WRONLY | O_CREAT, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	ASSERT_EQ(marks_open(dir, &m, NULL, 0), 0);
	ASSERT_ERR(stat(fixture_path(dir, ".tmp-m-00-7"), &sb), -1);
	/* One process (one credd) per directory. */
	ASSERT_ERR(marks_open(dir, &m2, err, sizeof(err)), -EBUSY);
	marks_close(m);
	ASSERT_EQ(marks_open(dir, &m2, NULL, 0), 0);
	marks_close(m2);
	/* prepare: made when missing, left alone when present. */
	ASSERT_EQ(marks_prepare(fixture_path(dir, "new"), getuid(), getgid()),
	    0);
	ASSERT_EQ(stat(fixture_path(dir, "new"), &sb), 0);
	ASSERT_EQ(sb.st_mode & 0777, 0700);
	ASSERT_EQ(marks_prepare(fixture_path(dir, "new"), getuid(), getgid()),
	    0);
}

/* ---- 100k users ---- */

struct ent {
	uint8_t key[16];
};

static int
cmp_ent(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

static void
put_be(uint8_t *p, uint64_t v, size_t n)
{
	while (n-- > 0) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

/* The 256 shards of nusers users as marks.h documents them. */
static int
write_shards(const char *d, unsigned nusers)
{
	struct ent *v = calloc(nusers, sizeof(*v));
	unsigned i, s, lo = 0;
	char user[32], name[8];

	if (v == NULL)
		return -1;
	for (i = 0; i < nusers; i++) {
		crypto_generichash_state h;

		snprintf(user, sizeof(user), "user%06u", i);
		crypto_generichash_init(&h, NULL, 0, 16);
		crypto_generichash_update(&h, (const unsigned char *)T,
		    strlen(T) + 1);
		crypto_generichash_update(&h, (const unsigned char *)user,
		    strlen(user) + 1);
		crypto_generichash_final(&h, v[i].key, 16);
	}
	qsort(v, nusers, sizeof(*v), cmp_ent);
	for (s = 0; s < 256; s++) {
		unsigned hi = lo, n;
		size_t len;
		uint8_t *buf, *p;
		FILE *f;

		while (hi < nusers && v[hi].key[0] == s)
			hi++;
		n = hi - lo;
		len = 8 + (size_t)n * 33 + 16;
		buf = calloc(1, len);
		if (buf == NULL)
			return -1;
		memcpy(buf, "CHM1", 4);
		put_be(buf + 4, n, 4);
		for (i = 0, p = buf + 8; i < n; i++, p += 33) {
			memcpy(p, v[lo + i].key, 16);
			put_be(p + 16, 1700000000000000ULL + lo + i, 8);
			put_be(p + 24, 1 + i % 50, 8);
		}
		crypto_generichash(p, 16, buf, len - 16, NULL, 0);
		snprintf(name, sizeof(name), "m-%02x", s);
		f = fopen(fixture_path(d, name), "w");
		if (f == NULL || fwrite(buf, 1, len, f) != len) {
			free(buf);
			return -1;
		}
		fclose(f);
		free(buf);
		lo = hi;
	}
	free(v);
	return 0;
}

static long
dir_bytes(const char *d)
{
	char name[8];
	struct stat sb;
	long sum = 0;
	int i;

	for (i = 0; i < 256; i++) {
		snprintf(name, sizeof(name), "m-%02x", i);
		if (stat(fixture_path(d, name), &sb) == 0)
			sum += (long)sb.st_size;
	}
	return sum;
}

/* Heap bytes in use (glibc; a sanitizer's allocator may report 0). */
static long
heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (long)mi.uordblks;
}

TEST(hundred_thousand_users)
{
	const unsigned nusers = 100000, nraise = 200;
	const char *d = fixture_subdir(root);
	struct marks *m = NULL;
	struct marks_mark k;
	char user[32], err[256];
	double t0, t_open, t_raise, t_get;
	long heap0;
	unsigned i;

	ASSERT_EQ(write_shards(d, nusers), 0);
	heap0 = heap_bytes();
	t0 = now_ms();
	ASSERT_EQ(marks_open(d, &m, err, sizeof(err)), 0);
	t_open = now_ms() - t0;
	ASSERT_EQ(marks_count(m), nusers);
	t0 = now_ms();
	for (i = 0; i < nusers; i++) {
		snprintf(user, sizeof(user), "user%06u", i);
		if (marks_get(m, T, user, &k) != 0 || k.deleted)
			break;
	}
	t_get = now_ms() - t0;
	ASSERT_EQ(i, nusers);
	ASSERT_ERR(marks_get(m, T, "user100000", &k), -ENOENT);
	/* Each raise rewrites one shard (~390 entries) with two fsyncs. */
	t0 = now_ms();
	for (i = 0; i < nraise; i++) {
		snprintf(user, sizeof(user), "user%06u", i * 97);
		ASSERT_EQ(marks_raise(m, T, user, 1800000000000000ULL, i + 1),
		    0);
	}
	t_raise = now_ms() - t0;
	printf("MEASURED marks at %u users: %ld bytes in 256 shards "
	       "(%.1f bytes/user), open %.1f ms, heap +%ld KiB, get %.2f us, "
	       "raise (shard rewrite + fdatasync + rename + fsync) %.2f ms\n",
	    nusers, dir_bytes(d), (double)dir_bytes(d) / nusers, t_open,
	    (heap_bytes() - heap0) / 1024, t_get * 1e3 / nusers,
	    t_raise / nraise);
	marks_close(m);
	m = NULL;
	ASSERT_EQ(marks_open(d, &m, NULL, 0), 0);
	ASSERT_EQ(marks_get(m, T, "user000097", &k), 0);
	ASSERT_EQ(k.epoch, 1800000000000000ULL);
	ASSERT_EQ(k.gen, 2);
	marks_close(m);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sodium_init() < 0)
		return 1;
	umask(077);
	root = fixture_tmpdir("marks");
	if (root == NULL)
		return 1;
	RUN(admits);
	RUN(raise_only_and_durable);
	RUN(deletions);
	RUN(damaged_shard_refused);
	RUN(modes_lock_and_leftovers);
	RUN(hundred_thousand_users);
	TEST_MAIN_END();
}
