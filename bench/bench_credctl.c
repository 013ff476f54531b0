/*
 * bench_credctl.c - wall time of short-lived client processes, and the
 * floor they are measured against. libc only, so that the floor
 * process starts as cheaply as a C program can.
 *
 *   bench_credctl spawn --count N [--warmup W] [--uid U --gid G]
 *	[--quiet] -- CMD ARGS...
 *	Run CMD N times in turn (fork, setgroups/setresgid/setresuid to
 *	U:G when given, exec, wait) and print one JSON line: p50, p90,
 *	p99, mean in microseconds, and how many runs exited non-zero.
 *	stdout and stderr of CMD go to /dev/null.
 *   bench_credctl rtt --socket PATH --request LINE
 *	The floor: connect, write one line, read one line, exit 0 when
 *	the reply is {"ok":true,...}. No parsing, no checks: the least a
 *	client process can do.
 *   bench_credctl smoke
 *	spawn runs /bin/true and this program's rtt against a one-shot
 *	line server in a child (CTest; checks exit codes, never timing).
 *
 * Must never: turn a time into a pass/fail decision, or loop without a
 * count bound.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define SPAWN_MAX 100000
#define RTT_BUF 65536

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_credctl spawn --count N [--warmup W] [--uid U --gid G] -- CMD...\n"
	    "       bench_credctl rtt --socket PATH --request LINE\n"
	    "       bench_credctl smoke\n");
	exit(2);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* One run of argv as uid:gid (-1: unchanged). Returns its wall time in ns, or -1. */
static int64_t
spawn_once(char *const *argv, long uid, long gid, int *failed)
{
	int64_t t0 = now_ns();
	int status, fd;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			(void)dup2(fd, 0);
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
		}
		if (gid >= 0 &&
		    (setgroups(0, NULL) < 0 ||
			setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0))
			_exit(126);
		if (uid >= 0 &&
		    setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	*failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	return now_ns() - t0;
}

static int
run_spawn(int argc, char **argv)
{
	long count = 0, warmup = 3, uid = -1, gid = -1, i, nfail = 0;
	int64_t *t, sum = 0;
	int k, failed;

	for (k = 0; k < argc && strcmp(argv[k], "--") != 0; k += 2) {
		if (k + 1 >= argc)
			usage();
		if (strcmp(argv[k], "--count") == 0)
			count = atol(argv[k + 1]);
		else if (strcmp(argv[k], "--warmup") == 0)
			warmup = atol(argv[k + 1]);
		else if (strcmp(argv[k], "--uid") == 0)
			uid = atol(argv[k + 1]);
		else if (strcmp(argv[k], "--gid") == 0)
			gid = atol(argv[k + 1]);
		else
			usage();
	}
	if (k >= argc - 1 || count < 1 || count > SPAWN_MAX || warmup < 0 ||
	    warmup > 100)
		usage();
	argv += k + 1;
	t = calloc((size_t)count, sizeof(*t));
	if (t == NULL)
		return 1;
	for (i = 0; i < warmup; i++)
		(void)spawn_once(argv, uid, gid, &failed);
	for (i = 0; i < count; i++) {
		t[i] = spawn_once(argv, uid, gid, &failed);
		if (t[i] < 0) {
			perror("fork");
			return 1;
		}
		nfail += failed;
		sum += t[i];
	}
	qsort(t, (size_t)count, sizeof(*t), cmp_i64);
	printf(
	    "{\"mode\":\"spawn\",\"count\":%ld,\"failed\":%ld,\"p50_us\":%.1f,"
	    "\"p90_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"min_us\":%.1f}\n",
	    count, nfail, t[count / 2] / 1e3, t[(count * 9) / 10] / 1e3,
	    t[(count * 99) / 100] / 1e3, (double)sum / (double)count / 1e3,
	    t[0] / 1e3);
	free(t);
	return 0;
}

static int
run_rtt(const char *path, const char *line)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	static char buf[RTT_BUF];
	size_t len = strlen(line), got = 0;
	ssize_t n;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return 1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return 1;
	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
		return 1;
	while (got < sizeof(buf) - 1) {
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			return 1;
		got += (size_t)n;
		if (memchr(buf, '\n', got) != NULL)
			break;
	}
	buf[got] = '\0';
	close(fd);
	return strstr(buf, "\"ok\":true") != NULL ? 0 : 1;
}

/* A server for one line per connection, n connections, then exit. */
static void
line_server(int lfd, int n)
{
	static const char reply[] = "{\"ok\":true,\"access_token\":\"x\"}\n";
	char buf[4096];
	ssize_t got;
	int i, fd;

	for (i = 0; i < n; i++) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			_exit(1);
		while ((got = read(fd, buf, sizeof(buf))) > 0)
			if (memchr(buf, '\n', (size_t)got) != NULL)
				break;
		if (write(fd, reply, sizeof(reply) - 1) < 0)
			_exit(1);
		close(fd);
	}
	_exit(0);
}

static int
run_smoke(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/bench-credctl-XXXXXX", self[PATH_MAX];
	char *true_argv[] = { (char *)(uintptr_t) "/bin/true", NULL };
	int64_t t;
	int lfd, failed = 1, rc = 0, i;
	ssize_t n;
	pid_t srv;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s.sock", dir);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (n <= 0 || lfd < 0 ||
	    bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(lfd, 16) < 0) {
		perror("smoke setup");
		return 1;
	}
	self[n] = '\0';
	srv = fork();
	if (srv == 0)
		line_server(lfd, 5);
	close(lfd);
	for (i = 0; i < 5; i++) {
		char *rtt_argv[] = { self, (char *)(uintptr_t) "rtt",
			(char *)(uintptr_t) "--socket", sun.sun_path,
			(char *)(uintptr_t) "--request",
			(char *)(uintptr_t) "{\"v\":1,\"op\":\"token\"}",
			NULL };

		t = spawn_once(rtt_argv, -1, -1, &failed);
		if (t < 0 || failed)
			rc = 1;
	}
	t = spawn_once(true_argv, -1, -1, &failed);
	if (t < 0 || failed)
		rc = 1;
	(void)waitpid(srv, NULL, 0);
	(void)unlink(sun.sun_path);
	(void)rmdir(dir);
	fprintf(stderr, "smoke: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

int
main(int argc, char **argv)
{
	const char *sock = NULL, *req = NULL;
	int i;

	if (argc < 2)
		usage();
	if (strcmp(argv[1], "smoke") == 0)
		return run_smoke();
	if (strcmp(argv[1], "spawn") == 0)
		return run_spawn(argc - 2, argv + 2);
	if (strcmp(argv[1], "rtt") != 0)
		usage();
	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--socket") == 0)
			sock = argv[i + 1];
		else if (strcmp(argv[i], "--request") == 0)
			req = argv[i + 1];
		else
			usage();
	}
	if (sock == NULL || req == NULL || i != argc)
		usage();
	return run_rtt(sock, req);
}
