/*
 * secmem.h - a locked arena for the secrets credd keeps: every struct
 * secret (refresh tokens, device codes, SDK endpoint secrets, the client
 * secret) through lib/secret.c's allocator hook, and the packed access
 * tokens of the cache (tokpack blobs). The key ring has its own locked
 * sodium_malloc region (seal.c).
 *
 * The arena is one reservation of at most `limit` bytes ([server]
 * locked_memory_kib, cut to what RLIMIT_MEMLOCK leaves), locked in RAM
 * (mlock) as allocations reach into it, excluded from core dumps
 * (MADV_DONTDUMP) and from any child (MADV_WIPEONFORK). When it is full,
 * or the kernel refuses to lock more, allocations fall back to malloc:
 * service goes on and that secret can be swapped. That is counted
 * (secmem_stats) and logged once. Freed allocations are wiped.
 *
 * Thread-safe: the store thread makes secrets too. The hook goes in
 * before any thread starts and comes out after the last secret is freed.
 */
#ifndef CREDD_SECMEM_H
#define CREDD_SECMEM_H

#include <stddef.h>
#include <stdint.h>

struct secmem;
struct secret_allocator;

/*
 * A new arena of at most limit bytes (rounded down to pages). The limit
 * is cut to RLIMIT_MEMLOCK minus what the process has locked already
 * (the key ring), and 0 gives an arena that locks nothing (every
 * allocation falls back). Nothing is locked until it is used. When the
 * rlimit cut the limit, *clamped (if not NULL) gets 1. 0, -ENOMEM.
 */
int secmem_new(size_t limit, struct secmem **out, int *clamped);
/*
 * Wipe and unmap. If allocations are still live the memory is wiped but
 * left mapped (a later free must not fault) and their number returned;
 * else 0. NULL does nothing.
 */
size_t secmem_free(struct secmem *sm);

/* n bytes (n may be 0), from the arena or, failing that, from malloc. */
void *secmem_alloc(struct secmem *sm, size_t n);
/*
 * Wipe n bytes at p and free it. p may come from malloc (made before the
 * hook was installed, or a fallback): it goes to free(). A pointer into
 * the arena that is not the start of a live allocation aborts: the
 * bitmaps are never trusted to guess. NULL does nothing.
 */
void secmem_dealloc(struct secmem *sm, void *p, size_t n);

/* The hook to hand to secret_set_allocator(); lives as long as sm. */
const struct secret_allocator *secmem_allocator(struct secmem *sm);

struct secmem_stats {
	size_t limit;		  /* bytes the arena may lock */
	size_t locked;		  /* bytes it has locked */
	size_t in_use;		  /* bytes handed out (32-byte granules) */
	size_t live;		  /* allocations live in the arena */
	uint64_t unlocked_allocs; /* allocations that fell back to malloc */
	uint64_t scans;		  /* first-fit scans of the arena */
	int lock_error;		  /* errno of the mlock that failed, or 0 */
};
void secmem_stats(struct secmem *sm, struct secmem_stats *out);

/*
 * mlock(2) through syscall(): sanitizer runtimes turn the libc mlock()
 * into a no-op. 0 or -errno.
 */
int secmem_mlock(const void *p, size_t n);

/*
 * The process's locked memory (VmLck of /proc/self/status) in bytes:
 * the arena, the key ring, anything else. 0, or -errno.
 */
int secmem_vm_locked(size_t *bytes);

#endif
