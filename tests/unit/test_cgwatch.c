/*
 * test_cgwatch.c - bound cgroups watched on the loop (credd/cgwatch.c),
 * as root on a writable cgroup2 mount (else skipped): a cgroup whose
 * last process exits is reported emptied, a removed one removed (also
 * one that never held a process), a path held twice is one watch, and
 * 10 000 add / remove / rmdir cycles leave no watch and no entry behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "cgwatch.h"
#include "event.h"
#include "test.h"

static char mnt[512];
static struct event_loop *loop;
static struct {
	char path[256];
	int gone;
	int calls;
} heard;

static void
on_gone(void *arg, const char *path, int gone)
{
	struct cgwatch *cw = *(struct cgwatch **)arg;

	snprintf(heard.path, sizeof(heard.path), "%s", path);
	heard.gone = gone;
	heard.calls++;
	cgwatch_del(cw, path);
	event_stop(loop); /* spin() goes on */
}

static struct event_timer *deadline; /* NULL once it fired */

static void
stop_cb(struct event_loop *ev, void *arg)
{
	(void)arg;
	deadline = NULL;
	event_stop(ev);
}

/* Run the loop until something was heard or 2 s passed. */
static void
spin(struct event_loop *ev, int calls)
{
	int i;

	loop = ev;
	for (i = 0; i < 40 && heard.calls < calls; i++) {
		deadline = event_timer_in(ev, 50, stop_cb, NULL);
		(void)event_run(ev);
		event_timer_cancel(ev, &deadline);
	}
}

static int
setup(void)
{
	char p[600];

	if (geteuid() != 0 ||
	    cgroup_mount_find("/proc/self/mountinfo", mnt, sizeof(mnt)) < 0)
		return 0;
	snprintf(p, sizeof(p), "%s/test_cgwatch", mnt);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return 0;
	return 1;
}

TEST(emptied_and_removed)
{
	struct event_loop *ev = event_new();
	struct cgwatch *cw = NULL;
	char p[600], procs[700];
	pid_t pid;
	int fd, st;

	if (!setup())
		SKIP("needs root and a writable cgroup2 mount");
	ASSERT_EQ(cgwatch_new(ev, mnt, on_gone, &cw, &cw), 0);
	snprintf(p, sizeof(p), "%s/test_cgwatch/a", mnt);
	ASSERT_TRUE(mkdir(p, 0755) == 0 || errno == EEXIST);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", p);
	pid = fixture_fork();
	if (pid == 0) {
		fd = open(procs, O_WRONLY);
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(3);
		usleep(300000);
		_exit(0);
	}
	usleep(100000);
	ASSERT_EQ(cgwatch_add(cw, "/test_cgwatch/a"), 0);
	ASSERT_EQ(cgwatch_add(cw, "/test_cgwatch/a"), 0); /* held twice */
	ASSERT_EQ(cgwatch_count(cw), 1);
	ASSERT_EQ(cgwatch_watches(cw), 2); /* its events file, its parent */
	fixture_wait(pid, &st);
	memset(&heard, 0, sizeof(heard));
	spin(ev, 1);
	ASSERT_EQ(heard.calls, 1);
	ASSERT_STREQ(heard.path, "/test_cgwatch/a");
	ASSERT_EQ(heard.gone, 0);
	/* One hold left: removal is heard too. */
	ASSERT_EQ(rmdir(p), 0);
	memset(&heard, 0, sizeof(heard));
	spin(ev, 1);
	ASSERT_EQ(heard.calls, 1);
	ASSERT_EQ(heard.gone, 1);
	ASSERT_EQ(cgwatch_count(cw), 0);
	ASSERT_EQ(cgwatch_watches(cw), 0);
	ASSERT_ERR(cgwatch_add(cw, "/test_cgwatch/none"), -ENOENT);
	ASSERT_EQ(cgwatch_watches(cw), 0);
	cgwatch_free(cw);
	event_free(ev);
}

static long
rss_kib(void)
{
	char buf[4096], *p;
	FILE *f = fopen("/proc/self/status", "r");
	long v = -1;

	if (f == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), f) != NULL)
		if ((p = strstr(buf, "VmRSS:")) != NULL)
			v = strtol(p + 6, NULL, 10);
	fclose(f);
	return v;
}

TEST(no_leak_10000)
{
	struct event_loop *ev = event_new();
	struct cgwatch *cw = NULL;
	char p[600];
	long rss0 = 0, rss1;
	int i;

	if (!setup())
		SKIP("needs root and a writable cgroup2 mount");
	ASSERT_EQ(cgwatch_new(ev, mnt, on_gone, &cw, &cw), 0);
	snprintf(p, sizeof(p), "%s/test_cgwatch/b", mnt);
	memset(&heard, 0, sizeof(heard));
	for (i = 0; i < 10000; i++) {
		if (i == 1000)
			rss0 = rss_kib();
		ASSERT_TRUE(mkdir(p, 0755) == 0);
		ASSERT_EQ(cgwatch_add(cw, "/test_cgwatch/b"), 0);
		ASSERT_EQ(rmdir(p), 0);
		spin(ev, i + 1);
	}
	rss1 = rss_kib();
	printf("     10000 bind/remove cycles: %d heard, RSS %ld -> %ld KiB\n",
	    heard.calls, rss0, rss1);
	ASSERT_EQ(heard.calls, 10000);
	ASSERT_EQ(cgwatch_count(cw), 0);
	ASSERT_EQ(cgwatch_watches(cw), 0);
	/* The leak checks are the counts above (and ASan's at exit); RSS
	 * only catches a gross leak: ASan's quarantine holds freed memory. */
	ASSERT_TRUE(rss1 - rss0 < 64 * 1024);
	cgwatch_free(cw);
	event_free(ev);
}

int
main(void)
{
	RUN(emptied_and_removed);
	RUN(no_leak_10000);
	if (mnt[0] != '\0') {
		char p[600];

		snprintf(p, sizeof(p), "%s/test_cgwatch", mnt);
		(void)rmdir(p);
	}
	TEST_MAIN_END();
}
