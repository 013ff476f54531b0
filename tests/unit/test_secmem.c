/*
 * test_secmem.c - credd/secmem.c: allocations from the locked arena do
 * not overlap, come back wiped, are locked (VmLck grows), fall back to
 * malloc past the limit and when RLIMIT_MEMLOCK cuts it (counted), survive
 * four threads at once, and a bad free is fatal rather than trusted. Also
 * the lib/secret.c hook: secrets and tokpack blobs land in the arena.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "entra/secret.h"
#include "secmem.h"
#include "test.h"
#include "tokpack.h"

#define KIB 1024

static size_t
vm_locked(void)
{
	size_t n = 0;

	(void)secmem_vm_locked(&n);
	return n;
}

TEST(test_alloc_free_reuse)
{
	static const size_t sizes[] = { 0, 1, 31, 32, 33, 100, 449, 2000,
		5000 };
	unsigned char *p[sizeof(sizes) / sizeof(sizes[0])];
	struct secmem *sm = NULL;
	struct secmem_stats st;
	size_t i, j, n = sizeof(sizes) / sizeof(sizes[0]);
	void *again;

	ASSERT_EQ(secmem_new(256 * KIB, &sm, NULL), 0);
	for (i = 0; i < n; i++) {
		p[i] = secmem_alloc(sm, sizes[i]);
		ASSERT_TRUE(p[i] != NULL);
		ASSERT_EQ((uintptr_t)p[i] % 32, 0);
		memset(p[i], (int)(i + 1), sizes[i]);
	}
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, n);
	ASSERT_EQ(st.unlocked_allocs, 0);
	/* 1+1+1+1+2+4+15+63+157 granules of 32 bytes. */
	ASSERT_EQ(st.in_use, 245 * 32);
	ASSERT_EQ(st.limit, 256 * KIB);
	/* Nothing overlaps: each still holds its own pattern. */
	for (i = 0; i < n; i++)
		for (j = 0; j < sizes[i]; j++)
			if (p[i][j] != (unsigned char)(i + 1))
				FAILF("allocation %zu byte %zu overwritten", i,
				    j);
	/* First fit: a freed slot is the next one handed out, wiped. */
	secmem_dealloc(sm, p[5], sizes[5]);
	again = secmem_alloc(sm, sizes[5]);
	ASSERT_TRUE(again == p[5]);
	for (j = 0; j < sizes[5]; j++)
		if (p[5][j] != 0)
			FAILF("byte %zu of a reused allocation not wiped", j);
	for (i = 0; i < n; i++)
		secmem_dealloc(sm, p[i], sizes[i]);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, 0);
	ASSERT_EQ(st.in_use, 0);
	/* A run spanning the freed space is found again from the start. */
	again = secmem_alloc(sm, 7000);
	ASSERT_TRUE(again == p[0]);
	secmem_dealloc(sm, again, 7000);
	ASSERT_EQ(secmem_free(sm), 0);
}

TEST(test_locked_in_ram)
{
	struct secmem *sm = NULL;
	struct secmem_stats st;
	size_t before, after;
	void *p;

	before = vm_locked();
	ASSERT_EQ(secmem_new(1024 * KIB, &sm, NULL), 0);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.locked, 0); /* nothing until it is used */
	p = secmem_alloc(sm, 100);
	secmem_stats(sm, &st);
	if (st.lock_error != 0) {
		secmem_dealloc(sm, p, 100);
		(void)secmem_free(sm);
		SKIP("mlock refused (%s)", strerror(st.lock_error));
	}
	ASSERT_EQ(st.locked, 64 * KIB); /* one lock step */
	after = vm_locked();
	ASSERT_TRUE(after >= before + st.locked);
	secmem_dealloc(sm, p, 100);
	ASSERT_EQ(secmem_free(sm), 0);
	ASSERT_TRUE(vm_locked() <= before + 4 * KIB);
}

TEST(test_past_the_limit)
{
	struct secmem *sm = NULL;
	struct secmem_stats st;
	void *p[200];
	size_t i, inside = 0;

	ASSERT_EQ(secmem_new(4 * KIB, &sm, NULL), 0);
	for (i = 0; i < 200; i++) {
		p[i] = secmem_alloc(sm, 64);
		ASSERT_TRUE(p[i] != NULL);
		memset(p[i], 0x5a, 64);
	}
	secmem_stats(sm, &st);
	inside = st.live;
	if (st.lock_error == 0) {
		ASSERT_EQ(inside, 64); /* 4 KiB / 64 bytes */
		ASSERT_EQ(st.unlocked_allocs, 136);
	} else
		ASSERT_EQ(inside + st.unlocked_allocs, 200);
	/* Too big for the arena at all: malloc, counted. */
	secmem_dealloc(sm, p[0], 64);
	p[0] = secmem_alloc(sm, 8 * KIB);
	ASSERT_TRUE(p[0] != NULL);
	secmem_stats(sm, &st);
	ASSERT_TRUE(st.unlocked_allocs >= 137 || st.lock_error != 0);
	secmem_dealloc(sm, p[0], 8 * KIB);
	for (i = 1; i < 200; i++)
		secmem_dealloc(sm, p[i], 64);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, 0);
	ASSERT_EQ(secmem_free(sm), 0);
}

TEST(test_zero_limit)
{
	struct secmem *sm = NULL;
	struct secmem_stats st;
	void *p;

	ASSERT_EQ(secmem_new(0, &sm, NULL), 0);
	p = secmem_alloc(sm, 10);
	ASSERT_TRUE(p != NULL);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.limit, 0);
	ASSERT_EQ(st.unlocked_allocs, 1);
	secmem_dealloc(sm, p, 10);
	ASSERT_EQ(secmem_free(sm), 0);
	/* No arena at all: plain malloc and free. */
	p = secmem_alloc(NULL, 5);
	ASSERT_TRUE(p != NULL);
	secmem_dealloc(NULL, p, 5);
}

/* In a child: the warnings it logs are expected, keep them off the run. */
static void
quiet_stderr(void)
{
	int fd = open("/dev/null", O_WRONLY);

	if (fd >= 0) {
		(void)dup2(fd, STDERR_FILENO);
		(void)close(fd);
	}
}

/*
 * Made under a high limit, then the limit drops: growth is refused and
 * allocations fall back. Returns 0 when that held (run unprivileged: root
 * has CAP_IPC_LOCK, for which the rlimit does not count).
 */
static int
refusal_falls_back(void)
{
	struct rlimit old, low;
	struct secmem *sm = NULL;
	struct secmem_stats st;
	void *p[40];
	size_t i;
	int bad = 0;

	if (getrlimit(RLIMIT_MEMLOCK, &old) < 0 ||
	    secmem_new(1024 * KIB, &sm, NULL) < 0)
		return 2;
	low = old;
	low.rlim_cur = vm_locked();
	if (setrlimit(RLIMIT_MEMLOCK, &low) < 0)
		return 3;
	for (i = 0; i < 40; i++)
		p[i] = secmem_alloc(sm, 2000);
	(void)setrlimit(RLIMIT_MEMLOCK, &old);
	secmem_stats(sm, &st);
	bad |= st.lock_error == 0 || st.unlocked_allocs != 40 || st.locked != 0;
	for (i = 0; i < 40; i++) {
		bad |= p[i] == NULL;
		secmem_dealloc(sm, p[i], 2000);
	}
	bad |= secmem_free(sm) != 0;
	return bad;
}

/* RLIMIT_MEMLOCK cuts the limit; an mlock refusal falls back. */
TEST(test_rlimit)
{
	struct rlimit old, low;
	struct secmem *sm = NULL;
	struct secmem_stats st;
	int clamped = 0, status = 0;
	pid_t pid;

	ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &old), 0);
	low = old;
	low.rlim_cur = vm_locked() + 8 * KIB;
	if (old.rlim_cur != RLIM_INFINITY && low.rlim_cur > old.rlim_cur) {
		SKIP("RLIMIT_MEMLOCK already below VmLck + 8 KiB");
	}
	ASSERT_EQ(setrlimit(RLIMIT_MEMLOCK, &low), 0);
	ASSERT_EQ(secmem_new(1024 * KIB, &sm, &clamped), 0);
	ASSERT_EQ(setrlimit(RLIMIT_MEMLOCK, &old), 0);
	ASSERT_EQ(clamped, 1);
	secmem_stats(sm, &st);
	ASSERT_TRUE(st.limit <= 8 * KIB);
	ASSERT_EQ(secmem_free(sm), 0);

	if (geteuid() != 0) {
		ASSERT_EQ(refusal_falls_back(), 0);
		return;
	}
	/* As root, in a child that drops to nobody (CAP_IPC_LOCK goes). */
	pid = fixture_fork(); /* flushes stdout first */
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		quiet_stderr();
		if (setgroups(0, NULL) < 0 ||
		    setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(4);
		_exit(refusal_falls_back());
	}
	ASSERT_EQ(fixture_wait(pid, &status), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
}

struct worker {
	struct secmem *sm;
	unsigned seed;
	int id;
	int bad;
};

/* Random alloc/free; each allocation filled with its own tag byte. */
static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	unsigned char *p[64] = { 0 }, tag[64] = { 0 };
	size_t n[64] = { 0 }, j;
	int i, k;

	for (i = 0; i < 20000; i++) {
		k = (int)(rand_r(&w->seed) % 64);
		if (p[k] != NULL) {
			for (j = 0; j < n[k]; j++)
				if (p[k][j] != tag[k])
					w->bad++;
			secmem_dealloc(w->sm, p[k], n[k]);
			p[k] = NULL;
			continue;
		}
		n[k] = 1 + rand_r(&w->seed) % 3000;
		tag[k] = (unsigned char)(w->id * 64 + k + 1);
		p[k] = secmem_alloc(w->sm, n[k]);
		if (p[k] == NULL) {
			w->bad++;
			continue;
		}
		memset(p[k], tag[k], n[k]);
	}
	for (k = 0; k < 64; k++)
		secmem_dealloc(w->sm, p[k], n[k]);
	return NULL;
}

TEST(test_threads)
{
	struct worker w[4];
	pthread_t t[4];
	struct secmem *sm = NULL;
	struct secmem_stats st;
	int i;

	ASSERT_EQ(secmem_new(512 * KIB, &sm, NULL), 0);
	for (i = 0; i < 4; i++) {
		w[i].sm = sm;
		w[i].seed = (unsigned)i * 7919u + 1u;
		w[i].id = i;
		w[i].bad = 0;
		ASSERT_EQ(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
		ASSERT_EQ(w[i].bad, 0);
	}
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, 0);
	ASSERT_EQ(st.in_use, 0);
	ASSERT_EQ(secmem_free(sm), 0);
}

/* A bad free must end the process, not corrupt the bitmaps. */
static int
child_status(void (*fn)(struct secmem *))
{
	struct secmem *sm = NULL;
	pid_t pid;
	int status = 0;

	pid = fixture_fork(); /* flushes stdout: or the child prints it again */
	if (pid == 0) {
		quiet_stderr();
		if (secmem_new(64 * KIB, &sm, NULL) < 0)
			_exit(99);
		fn(sm);
		_exit(0);
	}
	(void)fixture_wait(pid, &status);
	return status;
}

static void
double_free(struct secmem *sm)
{
	void *p = secmem_alloc(sm, 40);

	secmem_dealloc(sm, p, 40);
	secmem_dealloc(sm, p, 40);
}

static void
inner_free(struct secmem *sm)
{
	unsigned char *p = secmem_alloc(sm, 100);

	secmem_dealloc(sm, p + 64, 36); /* inside, not the start */
}

static void
misaligned_free(struct secmem *sm)
{
	unsigned char *p = secmem_alloc(sm, 100);

	secmem_dealloc(sm, p + 1, 99);
}

TEST(test_bad_free_is_fatal)
{
	int st;

	st = child_status(double_free);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	st = child_status(inner_free);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	st = child_status(misaligned_free);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

TEST(test_live_at_free)
{
	struct secmem *sm = NULL;
	void *p;

	ASSERT_EQ(secmem_new(64 * KIB, &sm, NULL), 0);
	p = secmem_alloc(sm, 10);
	ASSERT_EQ(secmem_free(sm), 1); /* reported, left alone */
	secmem_dealloc(sm, p, 10);
	ASSERT_EQ(secmem_free(sm), 0);
}

/* lib/secret.c's hook: struct secret and tokpack blobs use the arena. */
TEST(test_secret_hook)
{
	static const char jwt[] =
	    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
	    "eyJhdWQiOiJodHRwczovL3N0b3JhZ2UuYXp1cmUuY29tIiwib2lkIjoiMSJ9."
	    "c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMDEyMzQ1Njc4OWFiY2RlZg";
	struct secret *before, *s, *d;
	struct secmem *sm = NULL;
	struct secmem_stats st;
	struct tokpack *tp;
	struct tokblob *b;
	char out[sizeof(jwt)];

	before = secret_from_str("made with malloc");
	ASSERT_EQ(secmem_new(64 * KIB, &sm, NULL), 0);
	secret_set_allocator(secmem_allocator(sm));
	s = secret_from_str("refresh-token");
	d = secret_dup(s);
	ASSERT_TRUE(s != NULL && d != NULL);
	ASSERT_STREQ(d->ptr, "refresh-token");
	tp = tokpack_new();
	ASSERT_TRUE(tp != NULL);
	b = tokpack_pack(tp, "scope", jwt, sizeof(jwt) - 1);
	ASSERT_TRUE(b != NULL);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, 3);
	ASSERT_EQ(tokpack_unpack(tp, b, out, sizeof(out)),
	    (ssize_t)sizeof(jwt) - 1);
	ASSERT_TRUE(memcmp(out, jwt, sizeof(jwt) - 1) == 0);
	tokpack_blob_free(tp, b);
	tokpack_free(tp);
	secret_free(s);
	secret_free(d);
	secret_free(before); /* malloc'd before the hook: goes to free() */
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, 0);
	secret_set_allocator(NULL);
	ASSERT_EQ(secmem_free(sm), 0);
}

/*
 * A full arena riddled with one-granule holes (what 100k users' refreshes
 * leave): a 41-granule reply line cannot fit. The first such allocation
 * scans and falls back to malloc; the next ones fall back without a scan
 * until a free leaves a run that long, and then it lands in the arena
 * again. Before the bound every one of them scanned the whole arena
 * (bench_scale, 100k users: find_run ~60 % of credd's loop while a load's
 * lines were built). Also prints what a failed allocation costs.
 */
TEST(test_fragmented_full_arena)
{
	enum { GRAN = 32, LINE = 41 * GRAN };
	static void *p[(256 * KIB) / GRAN];
	struct secmem *sm = NULL;
	struct secmem_stats st, st2;
	size_t i, n = sizeof(p) / sizeof(p[0]), before;
	struct timespec t0, t1;
	void *big[100], *small, *line;

	ASSERT_EQ(secmem_new(256 * KIB, &sm, NULL), 0);
	for (i = 0; i < n; i++) {
		p[i] = secmem_alloc(sm, GRAN);
		ASSERT_TRUE(p[i] != NULL);
	}
	secmem_stats(sm, &st);
	if (st.lock_error != 0 || st.live != n) {
		for (i = 0; i < n; i++)
			secmem_dealloc(sm, p[i], GRAN);
		ASSERT_EQ(secmem_free(sm), 0);
		SKIP("the arena could not lock 256 KiB here");
	}
	for (i = 1; i < n; i += 2) { /* every other granule: holes of one */
		secmem_dealloc(sm, p[i], GRAN);
		p[i] = NULL;
	}
	secmem_stats(sm, &st);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	big[0] = secmem_alloc(sm, LINE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ASSERT_TRUE(big[0] != NULL);
	secmem_stats(sm, &st2);
	ASSERT_EQ(st2.unlocked_allocs, st.unlocked_allocs + 1);
	ASSERT_EQ(st2.scans, st.scans + 1);
	printf("# a %d-byte allocation that cannot fit a %d KiB arena of "
	       "one-granule holes: first %.1f us (a scan)",
	    LINE, 256,
	    ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e3));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 1; i < 100; i++) {
		big[i] = secmem_alloc(sm, LINE);
		ASSERT_TRUE(big[i] != NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf(", then %.2f us each (no scan)\n",
	    ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e3) /
		99);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.scans, st2.scans); /* the bound held them off */
	ASSERT_EQ(st.unlocked_allocs, st2.unlocked_allocs + 99);
	/* What does fit still goes to the arena. */
	before = st.live;
	small = secmem_alloc(sm, GRAN);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, before + 1);
	/* Free granules 100..180 (every other one already is): a run of 81. */
	for (i = 100; i <= 180; i += 2) {
		secmem_dealloc(sm, p[i], GRAN);
		p[i] = NULL;
	}
	before = st.live - 41;
	line = secmem_alloc(sm, LINE);
	secmem_stats(sm, &st2);
	ASSERT_EQ(st2.live, before + 1); /* in the arena, not malloc'd */
	ASSERT_EQ(st2.unlocked_allocs, st.unlocked_allocs);
	secmem_dealloc(sm, line, LINE);
	secmem_dealloc(sm, small, GRAN);
	for (i = 0; i < 100; i++)
		secmem_dealloc(sm, big[i], LINE);
	for (i = 0; i < n; i++)
		secmem_dealloc(sm, p[i], GRAN);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, 0);
	/* Everything free: a line fits at once. */
	line = secmem_alloc(sm, LINE);
	secmem_stats(sm, &st);
	ASSERT_EQ(st.live, 1);
	secmem_dealloc(sm, line, LINE);
	ASSERT_EQ(secmem_free(sm), 0);
}

int
main(void)
{
	RUN(test_alloc_free_reuse);
	RUN(test_locked_in_ram);
	RUN(test_past_the_limit);
	RUN(test_fragmented_full_arena);
	RUN(test_zero_limit);
	RUN(test_rlimit);
	RUN(test_threads);
	RUN(test_bad_free_is_fatal);
	RUN(test_live_at_free);
	RUN(test_secret_hook);
	TEST_MAIN_END();
}
