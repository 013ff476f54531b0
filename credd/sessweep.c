/*
 * sessweep.c - the periodic session check (see sessweep.h): a timer on
 * the loop, one thread for the lookups, an eventfd back.
 *
 * The liveness scan reads /proc once per check and stops as soon as
 * every wanted uid has been seen: one fstatat per process (the owner of
 * /proc/PID is the process's effective uid), plus a read of
 * /proc/PID/status for the root-owned ones only (root's processes, and
 * processes that are not dumpable, which the kernel shows as root's:
 * their status file has the real ids). Measured cost: see
 * docs/design.md. If /proc hides other users' processes (hidepid), pid 1
 * is invisible and the scan says so instead of reporting every uid dead.
 *
 * Must never: run NSS or read /proc on the loop thread, touch the
 * session table from the check thread (it sees only its snapshot), or
 * end a session on an unknown answer.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "entra/util.h"

#include "audit.h"
#include "event.h"
#include "log.h"
#include "session.h"
#include "sessweep.h"

#define SESSWEEP_PW_BUF_MAX (1024 * 1024)
#define SESSWEEP_STATUS_READ 2048 /* the Uid: line is in the first ~300 bytes */

struct sessweep {
	struct event_loop *ev;
	struct sessions *ss;
	struct sessweep_ops ops;
	struct sessweep_cfg cfg;
	struct event_timer *timer;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd;
	/* Under mu: the check handed to the thread, and its state. */
	struct sessions_snapshot snap;
	int liveness;	 /* for this check */
	int scan_result; /* ops.scan's return, 0 when not run */
	int has_job, is_done, is_stopping;
	/* Loop only. */
	int in_flight;
	int scan_warned;
	uint64_t checks;
};

/* ---- the system's answers (check thread) ---- */

/* Mark uid alive when it is wanted; *left counts the uids not seen yet. */
static void
mark(const uid_t *uids, size_t n, unsigned char *alive, uid_t uid, size_t *left)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (uids[mid] == uid) {
			if (!alive[mid]) {
				alive[mid] = 1;
				(*left)--;
			}
			return;
		}
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
}

/* Real and effective uid from /proc/PID/status. 0 or -errno. */
static int
status_uids(int dfd, const char *pid, uid_t *ruid, uid_t *euid)
{
	char path[64], buf[SESSWEEP_STATUS_READ + 1];
	unsigned long r, e;
	const char *p;
	ssize_t len;
	int fd;

	(void)snprintf(path, sizeof(path), "%s/status", pid);
	fd = openat(dfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, SESSWEEP_STATUS_READ);
	(void)close(fd);
	if (len <= 0)
		return -EIO;
	buf[len] = '\0';
	p = strstr(buf, "\nUid:");
	if (p == NULL || sscanf(p + 5, "%lu %lu", &r, &e) != 2)
		return -EBADMSG;
	*ruid = (uid_t)r;
	*euid = (uid_t)e;
	return 0;
}

int
sessweep_proc_scan(const char *proc_dir, const uid_t *uids, size_t n,
    unsigned char *alive)
{
	struct dirent *de;
	struct stat st;
	size_t left = n;
	uid_t ruid, euid;
	DIR *d;
	int dfd;

	memset(alive, 0, n);
	if (n == 0)
		return 0;
	d = opendir(proc_dir);
	if (d == NULL)
		return -errno;
	dfd = dirfd(d);
	if (fstatat(dfd, "1", &st, 0) < 0) {
		/* hidepid (or not a procfs): absence would prove nothing. */
		(void)closedir(d);
		return -EPERM;
	}
	while (left > 0 && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (fstatat(dfd, de->d_name, &st, 0) < 0)
			continue; /* exited meanwhile */
		mark(uids, n, alive, st.st_uid, &left);
		if (st.st_uid != 0)
			continue;
		if (status_uids(dfd, de->d_name, &ruid, &euid) == 0) {
			mark(uids, n, alive, ruid, &left);
			mark(uids, n, alive, euid, &left);
		}
	}
	(void)closedir(d);
	return 0;
}

static int
system_scan(void *arg, const uid_t *uids, size_t n, unsigned char *alive)
{
	(void)arg;
	return sessweep_proc_scan("/proc", uids, n, alive);
}

static int
system_account(void *arg, const char *user, uid_t uid)
{
	struct passwd pw, *res = NULL;
	size_t sz = 4096;
	char *buf;
	int r;

	(void)arg;
	for (;;) {
		buf = malloc(sz);
		if (buf == NULL)
			return -ENOMEM;
		r = getpwnam_r(user, &pw, buf, sz, &res);
		if (r != ERANGE || sz >= SESSWEEP_PW_BUF_MAX)
			break;
		free(buf);
		sz *= 2;
	}
	if (r != 0)
		r = -r; /* the directory failed: unknown */
	else if (res == NULL)
		r = 0; /* no such user */
	else
		r = res->pw_uid == uid;
	free(buf);
	return r;
}

static int64_t
system_now(void *arg)
{
	(void)arg;
	return util_now();
}

const struct sessweep_ops sessweep_system_ops = {
	.scan = system_scan,
	.account = system_account,
	.now = system_now,
};

/* ---- the check thread ---- */

/* Fill snap in: account for every binding, alive for those of sessions. */
static int
check_run(const struct sessweep_ops *ops, struct sessions_snapshot *snap,
    int liveness)
{
	unsigned char *alive = NULL;
	uid_t *uids = NULL;
	size_t i, n = 0;
	int r = 0;

	for (i = 0; i < snap->n; i++)
		snap->b[i].account =
		    ops->account(ops->arg, snap->b[i].user, snap->b[i].uid);
	if (!liveness || snap->n == 0)
		return 0;
	uids = calloc(snap->n, sizeof(*uids));
	alive = calloc(snap->n, 1);
	if (uids == NULL || alive == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* The bindings are sorted by uid: the distinct uids come in order. */
	for (i = 0; i < snap->n; i++)
		if (snap->b[i].has_session &&
		    (n == 0 || uids[n - 1] != snap->b[i].uid))
			uids[n++] = snap->b[i].uid;
	r = ops->scan(ops->arg, uids, n, alive);
	if (r < 0)
		goto out;
	for (i = 0; i < snap->n; i++) {
		const uid_t *u;
		size_t lo = 0, hi = n, mid;

		if (!snap->b[i].has_session)
			continue;
		u = NULL;
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (uids[mid] == snap->b[i].uid) {
				u = &uids[mid];
				break;
			}
			if (uids[mid] < snap->b[i].uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (u != NULL)
			snap->b[i].alive = alive[u - uids];
	}
out:
	free(uids);
	free(alive);
	return r;
}

static void *
worker(void *arg)
{
	struct sessweep *sw = arg;
	struct sessions_snapshot snap;
	uint64_t one = 1;
	int liveness, r;

	pthread_mutex_lock(&sw->mu);
	for (;;) {
		while (!sw->has_job && !sw->is_stopping)
			pthread_cond_wait(&sw->cv, &sw->mu);
		if (sw->is_stopping)
			break;
		snap = sw->snap; /* the thread's while has_job is set */
		liveness = sw->liveness;
		pthread_mutex_unlock(&sw->mu);
		r = check_run(&sw->ops, &snap, liveness);
		pthread_mutex_lock(&sw->mu);
		sw->snap = snap;
		sw->scan_result = r;
		sw->has_job = 0;
		sw->is_done = 1;
		if (write(sw->efd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is already non-zero */
		}
	}
	pthread_mutex_unlock(&sw->mu);
	return NULL;
}

/* ---- the loop's side ---- */

static int64_t
now_of(const struct sessweep *sw)
{
	return sw->ops.now != NULL ? sw->ops.now(sw->ops.arg) : util_now();
}

static void
done_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct sessweep *sw = arg;
	struct sessions_snapshot snap;
	uint64_t v;
	int64_t grace;
	size_t n;
	int r;

	(void)ev;
	(void)revents;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing new */
	}
	pthread_mutex_lock(&sw->mu);
	if (!sw->is_done) {
		pthread_mutex_unlock(&sw->mu);
		return;
	}
	snap = sw->snap;
	memset(&sw->snap, 0, sizeof(sw->snap));
	r = sw->scan_result;
	sw->is_done = 0;
	pthread_mutex_unlock(&sw->mu);
	sw->in_flight = 0;
	if (r < 0 && !sw->scan_warned) {
		log_warnx("sessions: cannot tell which uids have processes "
			  "(%s); sessions end only when idle, closed, or their "
			  "account is gone",
		    r == -EPERM ? "/proc hides other users' "
				  "processes" :
				  strerror(-r));
		sw->scan_warned = 1;
	}
	grace = sw->cfg.check_ms / 1000;
	if (grace < 1)
		grace = 1;
	n = sessions_apply(sw->ss, &snap, grace, sessions_audit_end, sw);
	if (n > 0)
		log_debug(
		    "sessions: %zu ended (no process left, or the account "
		    "is gone)",
		    n);
	sessions_snapshot_clear(&snap);
	sw->checks++;
}

/* The loop's own part: idle sessions and expired secrets. */
static void
expire(struct sessweep *sw, int64_t now)
{
	size_t n = sessions_expire(sw->ss, now, sw->cfg.idle_s,
	    sessions_audit_end, sw);

	if (n > 0)
		log_debug("sessions: %zu idle for %lld s ended", n,
		    (long long)sw->cfg.idle_s);
}

/* Hand a snapshot to the check thread. 0, -EBUSY or -ENOMEM. */
static int
submit(struct sessweep *sw, int64_t now)
{
	struct sessions_snapshot snap;
	int r;

	if (sw->in_flight)
		return -EBUSY;
	r = sessions_snapshot(sw->ss, now, &snap);
	if (r < 0)
		return r;
	pthread_mutex_lock(&sw->mu);
	sw->snap = snap;
	sw->liveness = sw->cfg.liveness;
	sw->scan_result = 0;
	sw->has_job = 1;
	pthread_cond_signal(&sw->cv);
	pthread_mutex_unlock(&sw->mu);
	sw->in_flight = 1;
	return 0;
}

int
sessweep_run(struct sessweep *sw)
{
	int64_t now = now_of(sw);

	if (sw->in_flight)
		return -EBUSY;
	expire(sw, now);
	return submit(sw, now);
}

static void
tick_cb(struct event_loop *ev, void *arg)
{
	struct sessweep *sw = arg;
	int64_t now = now_of(sw);

	sw->timer = NULL;
	expire(sw, now);       /* even while a slow check is still running */
	(void)submit(sw, now); /* -EBUSY: the last check is not back yet */
	sw->timer = event_timer_in(ev, sw->cfg.check_ms, tick_cb, sw);
}

int
sessweep_new(struct event_loop *ev, struct sessions *ss,
    const struct sessweep_ops *ops, const struct sessweep_cfg *cfg,
    struct sessweep **out)
{
	struct sessweep *sw;
	sigset_t all, old;
	int r;

	*out = NULL;
	if (cfg->check_ms <= 0)
		return -EINVAL;
	sw = calloc(1, sizeof(*sw));
	if (sw == NULL)
		return -ENOMEM;
	sw->ev = ev;
	sw->ss = ss;
	sw->ops = *ops;
	sw->cfg = *cfg;
	pthread_mutex_init(&sw->mu, NULL);
	pthread_cond_init(&sw->cv, NULL);
	sw->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sw->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = event_add(ev, sw->efd, EPOLLIN, done_cb, sw);
	if (r < 0)
		goto fail;
	/* The thread takes no signals: they belong to the loop's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&sw->thread, NULL, worker, sw);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		event_del(ev, sw->efd);
		goto fail;
	}
	sw->timer = event_timer_in(ev, cfg->check_ms, tick_cb, sw);
	*out = sw;
	return 0;
fail:
	if (sw->efd >= 0)
		(void)close(sw->efd);
	pthread_mutex_destroy(&sw->mu);
	pthread_cond_destroy(&sw->cv);
	free(sw);
	return r;
}

void
sessweep_set_config(struct sessweep *sw, const struct sessweep_cfg *cfg)
{
	int64_t old = sw->cfg.check_ms;

	if (cfg->check_ms <= 0)
		return;
	sw->cfg = *cfg;
	if (cfg->check_ms == old && sw->timer != NULL)
		return; /* a SIGHUP storm must not postpone the checks */
	event_timer_cancel(sw->ev, &sw->timer);
	sw->timer = event_timer_in(sw->ev, cfg->check_ms, tick_cb, sw);
}

void
sessweep_free(struct sessweep *sw)
{
	if (sw == NULL)
		return;
	event_timer_cancel(sw->ev, &sw->timer);
	pthread_mutex_lock(&sw->mu);
	sw->is_stopping = 1;
	pthread_cond_signal(&sw->cv);
	pthread_mutex_unlock(&sw->mu);
	pthread_join(sw->thread, NULL);
	sessions_snapshot_clear(
	    &sw->snap); /* a check not picked up, or not applied */
	event_del(sw->ev, sw->efd);
	(void)close(sw->efd);
	pthread_mutex_destroy(&sw->mu);
	pthread_cond_destroy(&sw->cv);
	free(sw);
}

uint64_t
sessweep_checks(const struct sessweep *sw)
{
	return sw->checks;
}
