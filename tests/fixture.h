/*
 * fixture.h - what the C tests start and must not leave behind: temp
 * directories, child processes (forked servers among them) and test key
 * rings. Linked into every program that includes test.h.
 *
 * Everything made here is registered: when a test fails (an ASSERT
 * returned early, past the test's own cleanup), the children it started
 * are killed and reaped at the end of its RUN(); at TEST_MAIN_END, and
 * from an atexit handler when a program leaves some other way, every
 * child still registered is killed and reaped and every temp directory
 * is removed (nftw, no shell; KEEP_TMP=1 keeps them and says where).
 * Never from a forked child: only the process that registered cleans up.
 */
#ifndef FIXTURE_H
#define FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

struct seal;

/*
 * A new directory "/tmp/test_TAG.XXXXXX" (mkdtemp, 0700), removed with
 * everything in it at the end of the program. Returns a path that stays
 * valid until then, or NULL (errno set) when it cannot be made or the
 * registry is full.
 */
const char *fixture_tmpdir(const char *tag);

/*
 * Remove path and everything below it now (nftw, depth first, links not
 * followed; directories a test made unreadable are opened up first). A
 * registered temp dir is dropped from the registry. 0, or -1 with errno
 * of the first entry that could not be removed (the walk goes on).
 */
int fixture_rmtree(const char *path);

/* "dir/name" in one of 8 static buffers used in turn (a path stays
 * valid for the next 7 calls). */
const char *fixture_path(const char *dir, const char *name);

/*
 * A new 0700 directory "parent/dN" (N counts up in this process), in
 * buffers of its own (valid for the next 7 calls), or NULL (errno set).
 */
const char *fixture_subdir(const char *parent);

/*
 * fork(), and in the parent register the child (a test's server, or a
 * worker it waits for). Returns what fork() returns.
 */
pid_t fixture_fork(void);

/* Register a child started some other way (posix_spawn). */
void fixture_child_add(pid_t pid);

/*
 * waitpid(pid, status, 0), retried on EINTR, then forget pid. Returns
 * what waitpid returns.
 */
pid_t fixture_wait(pid_t pid, int *status);

/* kill(pid, sig), then fixture_wait(pid, NULL). pid <= 0 does nothing. */
void fixture_kill(pid_t pid, int sig);

/*
 * A forked server on a Unix socket: bind path (an old file there is
 * unlinked), fork; the child drops to uid when uid > 0 (so SO_PEERCRED,
 * taken at listen(), names it), listens and runs serve(lfd, arg), then
 * _exit(0). Returns the child's pid (registered), or -1.
 */
pid_t fixture_unix_server(const char *path, uid_t uid,
    void (*serve)(int lfd, void *arg), void *arg);

/*
 * Test key rings (credd/seal.h text format). fixture_ring_key appends
 * "key ID BASE64 [active]" for a 32-byte key of bytes FILL to buf (a C
 * string of capacity cap); fixture_ring_text loads such text;
 * fixture_ring is a ring of one active key. NULL on failure; the caller
 * frees with seal_free().
 */
void fixture_ring_key(char *buf, size_t cap, unsigned id, unsigned char fill,
    int active);
struct seal *fixture_ring_text(const char *text);
struct seal *fixture_ring(unsigned id, unsigned char fill);

/* Hooks of test.h's RUN() and TEST_MAIN_END(); tests do not call them. */
void fixture_test_begin(void);
void fixture_test_end(int failed);
void fixture_end(void);

#endif
