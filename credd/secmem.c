/*
 * secmem.c - the locked arena of secmem.h.
 *
 * One anonymous reservation (MAP_NORESERVE: untouched pages cost
 * nothing), handed out in 32-byte granules, first fit from the lowest
 * free granule, so what is in use stays packed at the start and the
 * locked part grows only as far as it must (SECMEM_LOCK_STEP at a time).
 * Two bitmaps outside the arena say which granules are used and which
 * start an allocation; the arena itself holds only secret bytes, and a
 * free derives the extent from the bitmaps instead of trusting a size or
 * a header. Cost: 2 bits of bookkeeping per 32 bytes (a 64 MiB arena has
 * 512 KiB of bitmaps, unlocked, not secret), up to 31 bytes rounding per
 * allocation, and a first-fit scan that skips 64 used granules a word
 * (fine: secrets are made at refresh and sign-in rates, and a reply
 * line when a cached token is first served). A full arena riddled with small
 * holes would make every scan for a larger run walk all of it and fail
 * (credd at 100k users: ~0.3 ms per reply line), so a failed scan
 * leaves an upper bound on the longest free run (max_run), and an
 * allocation longer than it goes to malloc at once; a free raises the
 * bound to the free run it leaves.
 *
 * In ASan builds free granules are poisoned, so a use after free or an
 * overflow into a free granule is still caught; LeakSanitizer cannot see
 * into the arena, so secmem_free() reports allocations still live.
 *
 * Must never: hand out a granule twice, free what it cannot prove it
 * handed out (fatal instead), leave secret bytes in a freed granule, log
 * an address's contents.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "entra/secret.h"
#include "log.h"
#include "secmem.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SM_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SM_POISON(p, n) ((void)(p), (void)(n))
#define SM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SECMEM_GRANULE 32
#define SECMEM_LOCK_STEP (64 * 1024)
#define SM_NONE SIZE_MAX

struct secmem {
	pthread_mutex_t mu;
	struct secret_allocator hook;
	unsigned char *base; /* NULL when the arena is empty */
	size_t size;	     /* bytes reserved, a multiple of the page size */
	size_t ngran;	     /* size / SECMEM_GRANULE */
	uint64_t *used;	     /* a bit per granule: handed out */
	uint64_t *start;     /* a bit per granule: first of an allocation */
	size_t hint;	     /* no granule below this one is free */
	size_t max_run;	     /* no free run below the scans' limit is longer */
	uint64_t scans;	     /* first-fit scans (secmem_stats) */
	size_t locked;	     /* bytes locked, from base */
	size_t in_use;
	size_t live;
	uint64_t unlocked_allocs;
	int lock_error; /* once set, the arena stops growing */
	bool is_warned;
};

static bool
bit_get(const uint64_t *m, size_t i)
{
	return (m[i / 64] >> (i % 64)) & 1;
}

static void
bit_set(uint64_t *m, size_t i)
{
	m[i / 64] |= (uint64_t)1 << (i % 64);
}

static void
bit_clear(uint64_t *m, size_t i)
{
	m[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* The first index in [i, end) whose bit is want, or end. */
static size_t
bit_next(const uint64_t *m, size_t i, size_t end, int want)
{
	uint64_t w;

	while (i < end) {
		w = want ? m[i / 64] : ~m[i / 64];
		w >>= i % 64;
		if (w != 0) {
			i += (size_t)__builtin_ctzll(w);
			return i < end ? i : end;
		}
		i = (i / 64 + 1) * 64;
	}
	return end;
}

/* The last index below i whose bit is set, at or above lo, or SM_NONE. */
static size_t
bit_prev_set(const uint64_t *m, size_t i, size_t lo)
{
	uint64_t w;

	while (i > lo) {
		size_t wi = (i - 1) / 64, top = (i - 1) % 64;

		w = m[wi];
		if (top < 63)
			w &= ((uint64_t)1 << (top + 1)) - 1;
		if (w != 0) {
			i = wi * 64 + 63 - (size_t)__builtin_clzll(w);
			return i >= lo ? i : SM_NONE;
		}
		i = wi * 64;
	}
	return SM_NONE;
}

/*
 * First fit of k free granules below lim, or SM_NONE. Moves the hint;
 * a failure lowers max_run below k (no run of k exists below lim).
 */
static size_t
find_run(struct secmem *sm, size_t k, size_t lim)
{
	size_t i = sm->hint, j;
	bool is_first = true;

	sm->scans++;
	while (i < lim) {
		i = bit_next(sm->used, i, lim, 0);
		if (is_first) {
			sm->hint = i; /* everything below i is in use */
			is_first = false;
		}
		if (i >= lim || k > lim - i)
			break;
		j = bit_next(sm->used, i, i + k, 1);
		if (j == i + k)
			return i;
		i = j;
	}
	if (k - 1 < sm->max_run)
		sm->max_run = k - 1;
	return SM_NONE;
}

/*
 * mlock(2) itself: sanitizer runtimes replace the libc wrapper with a
 * no-op, and the fault tests check VmLck in the ASan build too.
 */
int
secmem_mlock(const void *p, size_t n)
{
	return syscall(SYS_mlock, p, n) == 0 ? 0 : -errno;
}

/* Lock the arena up to byte end (a step at a time). 0 or -errno. */
static int
lock_upto(struct secmem *sm, size_t end)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096, want;
	int r;

	if (end <= sm->locked)
		return 0;
	want =
	    (end + SECMEM_LOCK_STEP - 1) / SECMEM_LOCK_STEP * SECMEM_LOCK_STEP;
	if (want > sm->size)
		want = sm->size;
	r = secmem_mlock(sm->base + sm->locked, want - sm->locked);
	if (r < 0) {
		/* Near the rlimit: a whole step may not fit, our pages may. */
		want = (end + page - 1) / page * page;
		r = secmem_mlock(sm->base + sm->locked, want - sm->locked);
	}
	if (r < 0) {
		sm->lock_error = -r;
		return r;
	}
	sm->locked = want;
	return 0;
}

static void
warn_unlocked(const struct secmem *sm, int lock_error)
{
	if (lock_error != 0)
		log_warnx(
		    "secret memory: the kernel refused to lock more than "
		    "%zu KiB (%s); further secrets are kept in ordinary memory, "
		    "which can be swapped. Raise the unit's LimitMEMLOCK "
		    "(RLIMIT_MEMLOCK) or lower [server] locked_memory_kib",
		    sm->locked / 1024, strerror(lock_error));
	else
		log_warnx(
		    "secret memory: the locked arena (%zu KiB) is full; "
		    "further secrets are kept in ordinary memory, which can be "
		    "swapped. Raise [server] locked_memory_kib and the unit's "
		    "LimitMEMLOCK",
		    sm->size / 1024);
}

void *
secmem_alloc(struct secmem *sm, size_t n)
{
	size_t k, lim, i = SM_NONE, g;
	bool is_warn = false;
	int lock_error = 0;
	void *p = NULL;

	if (sm == NULL)
		return malloc(n > 0 ? n : 1);
	k = n == 0 ? 1 : n / SECMEM_GRANULE + (n % SECMEM_GRANULE != 0);
	(void)pthread_mutex_lock(&sm->mu);
	if (n <= sm->size && k <= sm->max_run) {
		lim = sm->lock_error != 0 ? sm->locked / SECMEM_GRANULE :
					    sm->ngran;
		i = find_run(sm, k, lim);
		if (i != SM_NONE && lock_upto(sm, (i + k) * SECMEM_GRANULE) < 0)
			i = find_run(sm, k, sm->locked / SECMEM_GRANULE);
	}
	if (i != SM_NONE) {
		bit_set(sm->start, i);
		for (g = i; g < i + k; g++)
			bit_set(sm->used, g);
		sm->in_use += k * SECMEM_GRANULE;
		sm->live++;
		p = sm->base + i * SECMEM_GRANULE;
	} else {
		sm->unlocked_allocs++;
		is_warn = !sm->is_warned;
		sm->is_warned = true;
		lock_error = sm->lock_error;
	}
	(void)pthread_mutex_unlock(&sm->mu);
	if (p != NULL) {
		SM_UNPOISON(p, n > 0 ? n : 1);
		return p;
	}
	if (is_warn)
		warn_unlocked(sm, lock_error);
	return malloc(n > 0 ? n : 1);
}

void
secmem_dealloc(struct secmem *sm, void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, b;
	size_t first, end, g, run_lo, run_hi, cap;
	unsigned char *q;

	if (p == NULL)
		return;
	if (sm == NULL || sm->base == NULL || a < (b = (uintptr_t)sm->base) ||
	    a - b >= sm->size) {
		explicit_bzero(p, n);
		free(p); /* malloc'd: before the hook, or a fallback */
		return;
	}
	(void)pthread_mutex_lock(&sm->mu);
	first = (size_t)(a - b) / SECMEM_GRANULE;
	if ((a - b) % SECMEM_GRANULE != 0 || !bit_get(sm->used, first) ||
	    !bit_get(sm->start, first))
		fatalx("secret memory: free of %p, which is not an allocation "
		       "(double free or a stray pointer)",
		    p);
	end = first + 1;
	while (end < sm->ngran && bit_get(sm->used, end) &&
	    !bit_get(sm->start, end))
		end++;
	/* Wipe before the granules can be handed out again. */
	q = sm->base + first * SECMEM_GRANULE;
	SM_UNPOISON(q, (end - first) * SECMEM_GRANULE);
	explicit_bzero(q, (end - first) * SECMEM_GRANULE);
	SM_POISON(q, (end - first) * SECMEM_GRANULE);
	bit_clear(sm->start, first);
	for (g = first; g < end; g++)
		bit_clear(sm->used, g);
	if (sm->max_run != SIZE_MAX) {
		/* The free run this leaves (nothing below the hint is free),
		 * looked at only as far as it could raise the bound. */
		run_lo = bit_prev_set(sm->used, first, sm->hint);
		run_lo = run_lo == SM_NONE ?
		    (first < sm->hint ? first : sm->hint) :
		    run_lo + 1;
		cap = sm->ngran - run_lo > sm->max_run + 1 ?
		    run_lo + sm->max_run + 1 :
		    sm->ngran;
		run_hi = bit_next(sm->used, end, cap, 1);
		if (run_hi - run_lo > sm->max_run)
			sm->max_run = run_hi == cap && cap < sm->ngran ?
			    SIZE_MAX : /* longer still: unknown */
			    run_hi - run_lo;
	}
	if (first < sm->hint)
		sm->hint = first;
	sm->in_use -= (end - first) * SECMEM_GRANULE;
	sm->live--;
	(void)pthread_mutex_unlock(&sm->mu);
}

static void *
hook_alloc(void *arg, size_t n)
{
	return secmem_alloc(arg, n);
}

static void
hook_free(void *arg, void *p, size_t n)
{
	secmem_dealloc(arg, p, n);
}

const struct secret_allocator *
secmem_allocator(struct secmem *sm)
{
	return sm != NULL ? &sm->hook : NULL;
}

int
secmem_vm_locked(size_t *bytes)
{
	char line[256];
	unsigned long long kb;
	FILE *f;
	int r = -ENOENT;

	*bytes = 0;
	f = fopen("/proc/self/status", "re");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmLck: %llu kB", &kb) == 1) {
			*bytes = (size_t)kb * 1024;
			r = 0;
			break;
		}
	(void)fclose(f);
	return r;
}

/* What RLIMIT_MEMLOCK still allows this process to lock. */
static size_t
rlimit_room(void)
{
	struct rlimit rl;
	size_t locked = 0;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	(void)secmem_vm_locked(&locked);
	if ((uint64_t)rl.rlim_cur <= (uint64_t)locked)
		return 0;
	return (uint64_t)rl.rlim_cur - locked > SIZE_MAX ?
	    SIZE_MAX :
	    (size_t)(rl.rlim_cur - locked);
}

int
secmem_new(size_t limit, struct secmem **out, int *clamped)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096, room, words;
	struct secmem *sm;
	void *base;

	*out = NULL;
	if (clamped != NULL)
		*clamped = 0;
	room = rlimit_room();
	if (limit > room) {
		limit = room;
		if (clamped != NULL)
			*clamped = 1;
	}
	limit = limit / page * page;
	sm = calloc(1, sizeof(*sm));
	if (sm == NULL)
		return -ENOMEM;
	sm->max_run = SIZE_MAX; /* unknown until a scan fails */
	if (pthread_mutex_init(&sm->mu, NULL) != 0) {
		free(sm);
		return -ENOMEM;
	}
	sm->hook.alloc = hook_alloc;
	sm->hook.free = hook_free;
	sm->hook.arg = sm;
	if (limit > 0) {
		base = mmap(NULL, limit, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		words = limit / SECMEM_GRANULE / 64 + 1;
		sm->used = calloc(words, sizeof(*sm->used));
		sm->start = calloc(words, sizeof(*sm->start));
		if (base == MAP_FAILED || sm->used == NULL ||
		    sm->start == NULL) {
			if (base != MAP_FAILED)
				(void)munmap(base, limit);
			free(sm->used);
			free(sm->start);
			(void)pthread_mutex_destroy(&sm->mu);
			free(sm);
			return -ENOMEM;
		}
		/* Never in a core file; zeros in a child (none expected). */
		(void)madvise(base, limit, MADV_DONTDUMP);
		(void)madvise(base, limit, MADV_WIPEONFORK);
		SM_POISON(base, limit);
		sm->base = base;
		sm->size = limit;
		sm->ngran = limit / SECMEM_GRANULE;
	}
	*out = sm;
	return 0;
}

size_t
secmem_free(struct secmem *sm)
{
	size_t live;

	if (sm == NULL)
		return 0;
	(void)pthread_mutex_lock(&sm->mu);
	live = sm->live;
	(void)pthread_mutex_unlock(&sm->mu);
	if (live > 0)
		return live; /* a leak: left mapped, a free may still come */
	if (sm->base != NULL) {
		SM_UNPOISON(sm->base, sm->size);
		explicit_bzero(sm->base, sm->locked); /* belt and braces */
		(void)munmap(sm->base, sm->size);
	}
	free(sm->used);
	free(sm->start);
	(void)pthread_mutex_destroy(&sm->mu);
	free(sm);
	return 0;
}

void
secmem_stats(struct secmem *sm, struct secmem_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (sm == NULL)
		return;
	(void)pthread_mutex_lock(&sm->mu);
	out->limit = sm->size;
	out->locked = sm->locked;
	out->in_use = sm->in_use;
	out->live = sm->live;
	out->unlocked_allocs = sm->unlocked_allocs;
	out->scans = sm->scans;
	out->lock_error = sm->lock_error;
	(void)pthread_mutex_unlock(&sm->mu);
}
