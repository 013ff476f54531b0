/*
 * fixture.c - the C tests' shared fixtures (fixture.h): registered temp
 * directories removed with nftw, registered children killed and reaped
 * when a test fails or the program ends, a forked Unix-socket server and
 * test key rings. Test code only: it may abort on a full registry, and it
 * never runs a shell.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "fixture.h"
#include "seal.h"

/* A test program starts a handful of each; the bounds only catch leaks. */
#define FIXTURE_CHILDREN_MAX 64
#define FIXTURE_DIRS_MAX 32

struct fixture_child {
	pid_t pid;
	unsigned test; /* the RUN() it was started in; 0: main */
};

static struct fixture_child children[FIXTURE_CHILDREN_MAX];
static size_t nchildren;
static char dirs[FIXTURE_DIRS_MAX][256];
static size_t ndirs;
static unsigned test_seq, current_test;
static pid_t owner; /* the process that registered; children never clean */
static int rm_errno;

static void
at_exit(void)
{
	if (getpid() == owner)
		fixture_end();
}

static void
arm(void)
{
	if (owner == getpid())
		return;
	/* First registration in this process (a forked child that registers
	 * becomes the owner of its own registry only). */
	owner = getpid();
	nchildren = 0;
	ndirs = 0;
	if (atexit(at_exit) != 0)
		abort();
}

/* ---- temp directories */

/* Pass 1: make every directory searchable and writable for us, so that
 * pass 2 can empty it (a test may leave a 0000 or 0500 directory). */
static int
open_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D && (sb->st_mode & 0700) != 0700)
		(void)chmod(p, 0700);
	else if (type == FTW_DNR && chmod(p, 0700) == 0)
		(void)nftw(p, open_entry, 8, FTW_PHYS);
	return 0;
}

static int
rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	if (remove(p) < 0 && errno != ENOENT && rm_errno == 0)
		rm_errno = errno;
	return 0; /* remove what can be removed */
}

int
fixture_rmtree(const char *path)
{
	size_t i;

	for (i = 0; i < ndirs; i++) {
		if (strcmp(dirs[i], path) == 0) {
			memmove(dirs[i], dirs[i + 1],
			    (ndirs - i - 1) * sizeof(dirs[0]));
			ndirs--;
			break;
		}
	}
	rm_errno = 0;
	(void)nftw(path, open_entry, 8, FTW_PHYS);
	if (nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS) < 0 &&
	    errno != ENOENT && rm_errno == 0)
		rm_errno = errno;
	if (rm_errno != 0) {
		errno = rm_errno;
		return -1;
	}
	return 0;
}

const char *
fixture_tmpdir(const char *tag)
{
	char *d;
	int n;

	arm();
	if (ndirs == FIXTURE_DIRS_MAX) {
		errno = ENOSPC;
		return NULL;
	}
	d = dirs[ndirs];
	n = snprintf(d, sizeof(dirs[0]), "/tmp/test_%s.XXXXXX", tag);
	if (n < 0 || (size_t)n >= sizeof(dirs[0])) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (mkdtemp(d) == NULL)
		return NULL;
	ndirs++;
	return d;
}

const char *
fixture_path(const char *dir, const char *name)
{
	static char bufs[8][512];
	static unsigned next;
	char *p = bufs[next++ % 8];

	snprintf(p, sizeof(bufs[0]), "%s/%s", dir, name);
	return p;
}

const char *
fixture_subdir(const char *parent)
{
	static char bufs[8][512];
	static unsigned seq;
	char *p = bufs[seq % 8];

	snprintf(p, sizeof(bufs[0]), "%s/d%u", parent, seq);
	seq++;
	if (mkdir(p, 0700) < 0)
		return NULL;
	return p;
}

/* ---- children */

void
fixture_child_add(pid_t pid)
{
	if (pid <= 0)
		return;
	arm();
	if (nchildren == FIXTURE_CHILDREN_MAX) {
		fprintf(stderr, "fixture: more than %d children registered\n",
		    FIXTURE_CHILDREN_MAX);
		abort();
	}
	children[nchildren].pid = pid;
	children[nchildren].test = current_test;
	nchildren++;
}

pid_t
fixture_fork(void)
{
	pid_t pid;

	(void)fflush(NULL); /* or the child prints our buffers again */
	pid = fork();
	if (pid > 0)
		fixture_child_add(pid);
	return pid;
}

static void
forget(pid_t pid)
{
	size_t i;

	for (i = 0; i < nchildren; i++) {
		if (children[i].pid == pid) {
			children[i] = children[--nchildren];
			return;
		}
	}
}

pid_t
fixture_wait(pid_t pid, int *status)
{
	pid_t r;

	do
		r = waitpid(pid, status, 0);
	while (r < 0 && errno == EINTR);
	forget(pid);
	return r;
}

void
fixture_kill(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	(void)kill(pid, sig);
	(void)fixture_wait(pid, NULL);
}

/* Kill and reap the children started in test (0: all of them). */
static void
kill_children(unsigned test)
{
	size_t i = 0;

	while (i < nchildren) {
		if (test == 0 || children[i].test == test) {
			fprintf(stderr,
			    "fixture: killing child %ld left behind\n",
			    (long)children[i].pid);
			fixture_kill(children[i].pid, SIGKILL); /* forgets it */
		} else {
			i++;
		}
	}
}

pid_t
fixture_unix_server(const char *path, uid_t uid,
    void (*serve)(int lfd, void *arg), void *arg)
{
	struct sockaddr_un sun;
	pid_t pid;
	int lfd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	(void)unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(lfd);
		return -1;
	}
	pid = fixture_fork();
	if (pid == 0) {
		/* SO_PEERCRED of a listener is taken at listen(). */
		if (uid > 0 && setresuid(uid, uid, uid) < 0)
			_exit(1);
		if (listen(lfd, 8) < 0)
			_exit(1);
		serve(lfd, arg);
		_exit(0);
	}
	close(lfd);
	return pid;
}

/* ---- key rings */

void
fixture_ring_key(char *buf, size_t cap, unsigned id, unsigned char fill,
    int active)
{
	unsigned char k[32];
	char b64[64];
	size_t n = strlen(buf);

	memset(k, fill, sizeof(k));
	sodium_bin2base64(b64, sizeof(b64), k, sizeof(k),
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(buf + n, cap - n, "key %u %s%s\n", id, b64,
	    active ? " active" : "");
}

struct seal *
fixture_ring_text(const char *text)
{
	struct seal *s = NULL;

	if (seal_load_buf(text, strlen(text), &s) < 0)
		return NULL;
	return s;
}

struct seal *
fixture_ring(unsigned id, unsigned char fill)
{
	char buf[256] = "";

	fixture_ring_key(buf, sizeof(buf), id, fill, 1);
	return fixture_ring_text(buf);
}

/* ---- test.h's hooks */

void
fixture_test_begin(void)
{
	current_test = ++test_seq;
}

void
fixture_test_end(int failed)
{
	if (failed && owner == getpid())
		kill_children(current_test);
	current_test = 0;
}

void
fixture_end(void)
{
	const char *keep = getenv("KEEP_TMP");

	if (owner != getpid())
		return;
	kill_children(0);
	while (ndirs > 0) {
		char d[sizeof(dirs[0])];

		memcpy(d, dirs[ndirs - 1], sizeof(d));
		if (keep != NULL && strcmp(keep, "1") == 0) {
			fprintf(stderr, "fixture: kept %s (KEEP_TMP=1)\n", d);
			ndirs--;
		} else if (fixture_rmtree(d) < 0) { /* unregisters it */
			fprintf(stderr, "fixture: cannot remove %s: %s\n", d,
			    strerror(errno));
		}
	}
}
