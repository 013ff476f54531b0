/*
 * bench_floor.c - the socket benchmark's physical floor: the least a
 * line server on this machine can do. One thread, one epoll set, a
 * listening Unix socket; every newline a client sends is answered with
 * the same canned line of N bytes. No JSON, no credd code, no parsing,
 * no per-request allocation: accept, read, write.
 *
 *   bench_floor --socket PATH --reply-bytes N [--duration S]
 *	Serve until S seconds have passed (default 300) or SIGTERM.
 *   bench_floor smoke
 *	Serve in a child, send two lines on one connection and check
 *	both answers (CTest; never timing).
 *
 * bench/run measures credd (and bench_socket echo, credd's own server
 * with a canned reply) against this, with the same bench_socket load
 * client, in alternating rounds. Replies are written straight from the
 * canned buffer; only what the kernel did not take is queued (a closed
 * loop client with one request in flight never makes that happen, but
 * the floor stays correct if it does).
 *
 * Must never: parse what it reads, allocate per request, run without a
 * time bound, or talk to anything but its own Unix socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_REPLY_MAX 65536
#define FLOOR_IN 4096
#define FLOOR_PENDING_MAX (1u << 20) /* unsent bytes per connection */
#define FLOOR_BATCH 256

struct fconn {
	int fd;
	size_t pending; /* whole replies not yet written */
	size_t off;	/* bytes of the first pending reply written */
	int has_out;	/* EPOLLOUT is in its epoll mask */
};

static volatile sig_atomic_t stopping;

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_floor --socket PATH --reply-bytes N "
	    "[--duration S]\n       bench_floor smoke\n");
	exit(2);
}

/* A line shaped like a token reply: {"ok":true,"access_token":"AAA..."}\n */
static char *
make_reply(size_t n)
{
	static const char head[] = "{\"ok\":true,\"access_token\":\"";
	static const char tail[] = "\"}\n";
	char *p;

	p = malloc(n); /* n >= 64: room for head and tail */
	if (p == NULL)
		return NULL;
	memcpy(p, head, sizeof(head) - 1);
	memset(p + sizeof(head) - 1, 'A',
	    n - (sizeof(head) - 1) - (sizeof(tail) - 1));
	memcpy(p + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	return p;
}

/* Write pending replies; 0, or -1 when the peer is gone. */
static int
flush(struct fconn *c, const char *rep, size_t len)
{
	ssize_t n;

	while (c->pending > 0) {
		n = send(c->fd, rep + c->off, len - c->off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -1;
		c->off += (size_t)n;
		if (c->off == len) {
			c->off = 0;
			c->pending--;
		}
	}
	return 0;
}

static void
drop(int ep, struct fconn **tab, int fd)
{
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	free(tab[fd]);
	tab[fd] = NULL;
}

static int
serve(const char *path, size_t len, double duration, int ready_fd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct epoll_event evs[FLOOR_BATCH], e;
	struct fconn **tab;
	struct timespec t0, t;
	char in[FLOOR_IN], *rep;
	int lfd, ep, n, k, fd, maxfd = 65536;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	rep = make_reply(len);
	tab = calloc((size_t)maxfd, sizeof(*tab));
	if (rep == NULL || tab == NULL || strlen(path) >= sizeof(sun.sun_path))
		return 1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0666) < 0 || listen(lfd, 4096) < 0) {
		perror("bench_floor: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	e.events = EPOLLIN;
	e.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e) < 0) {
		perror("bench_floor: epoll");
		return 1;
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, "R", 1) != 1)
			return 1;
		close(ready_fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!stopping) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((double)(t.tv_sec - t0.tv_sec) > duration)
			break;
		n = epoll_wait(ep, evs, FLOOR_BATCH, 1000);
		for (k = 0; k < n; k++) {
			struct fconn *c;
			ssize_t m;

			fd = evs[k].data.fd;
			if (fd == lfd) {
				while (
				    (fd = accept4(lfd, NULL, NULL,
					 SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
					if (fd >= maxfd ||
					    (tab[fd] = calloc(1,
						 sizeof(**tab))) == NULL) {
						close(fd);
						continue;
					}
					tab[fd]->fd = fd;
					e.events = EPOLLIN;
					e.data.fd = fd;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd,
						&e) < 0)
						drop(ep, tab, fd);
				}
				continue;
			}
			c = tab[fd];
			if (c == NULL)
				continue;
			if (evs[k].events & EPOLLIN) {
				m = recv(fd, in, sizeof(in), MSG_DONTWAIT);
				if (m == 0 ||
				    (m < 0 && errno != EAGAIN &&
					errno != EINTR)) {
					drop(ep, tab, fd);
					continue;
				}
				for (ssize_t i = 0; i < m; i++)
					c->pending += in[i] == '\n';
			}
			if (c->pending * len > FLOOR_PENDING_MAX) {
				drop(ep, tab, fd); /* a peer that never reads */
				continue;
			}
			if (flush(c, rep, len) < 0) {
				drop(ep, tab, fd);
				continue;
			}
			/* Only a reply the kernel did not take needs EPOLLOUT. */
			if ((c->pending > 0) != c->has_out) {
				c->has_out = c->pending > 0;
				e.events =
				    EPOLLIN | (c->has_out ? EPOLLOUT : 0);
				e.data.fd = fd;
				(void)epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
			}
		}
	}
	close(lfd);
	(void)unlink(path);
	return 0;
}

static int
smoke(void)
{
	char dir[] = "/tmp/bench-floor-XXXXXX", path[PATH_MAX], buf[4096];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t got = 0, lines = 0;
	int p[2], fd, rc = 1;
	pid_t pid;
	ssize_t n;
	char c;

	if (mkdtemp(dir) == NULL || pipe(p) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/floor.sock", dir);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(serve(path, 1300, 10, p[1]));
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &c, 1) != 1)
		goto out;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    write(fd, "{\"v\":1}\n{\"v\":1}\n", 16) != 16)
		goto out;
	while (lines < 2 && (n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
		got += (size_t)n;
	}
	close(fd);
	rc = lines == 2 && got == 2600 ? 0 : 1;
out:
	if (pid > 0) {
		kill(pid, SIGTERM);
		(void)waitpid(pid, NULL, 0);
	}
	(void)unlink(path);
	(void)rmdir(dir);
	fprintf(stderr, "smoke: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	long bytes = 1300;
	double duration = 300;
	int i;

	if (argc == 2 && strcmp(argv[1], "smoke") == 0)
		return smoke();
	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--socket") == 0)
			path = argv[i + 1];
		else if (strcmp(argv[i], "--reply-bytes") == 0)
			bytes = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--duration") == 0)
			duration = atof(argv[i + 1]);
		else
			usage();
	}
	if (i != argc || path == NULL || bytes < 64 ||
	    bytes > FLOOR_REPLY_MAX || duration <= 0 || duration > 3600)
		usage();
	return serve(path, (size_t)bytes, duration, -1);
}
