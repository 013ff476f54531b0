/*
 * server.c - the Unix socket server (server.h): listen (in a directory
 * only root or credd can write; 0666 after bind), accept, the
 * connection caps at accept, admin_group's gid, the caps from the
 * config, and the server's life cycle. Each accepted connection is
 * server_conn.c's.
 *
 * Trust comes only from the kernel: SO_PEERCRED and SO_PEERGROUPS read
 * once at accept. Nothing a client sends about itself is believed. The
 * uid -> name lookup never runs on the loop: a fresh cached name
 * (userdb.h) or a lookup on the resolver thread, while the connection's
 * requests wait in its buffer. Group membership for admin_group never
 * needs NSS (SO_PEERGROUPS against a gid resolved at start and, off the
 * loop, at SIGHUP).
 *
 * When accept4 fails for want of descriptors or memory (EMFILE, ENFILE,
 * ...), the listener leaves the epoll set and comes back on a backoff
 * timer, or at once when a connection closes: no busy loop, and one
 * warning per episode (at most one a minute) with the count of failures.
 *
 * Must never: block (the listener is non-blocking; NSS runs off the
 * loop), or spin on a listener that cannot accept.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "server.h"
#include "server_conn.h"
#include "server_int.h"
#include "uidlimit.h"
#include "userdb.h"

#define ACCEPT_BACKOFF_MIN_MS 50 /* listener paused after EMFILE & co. */
#define ACCEPT_BACKOFF_MAX_MS 1000
#define ACCEPT_LOG_MS 60000 /* at most one accept warning per minute */

int
server_listen(const char *path, uid_t owner_uid, int *fdp, char *err,
    size_t errsz)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[PATH_MAX];
	struct stat st;
	char *slash;
	mode_t old;
	int fd = -1, r;

	*fdp = -1;
	if (strlen(path) >= sizeof(sun.sun_path) ||
	    strlen(path) >= sizeof(dir)) {
		snprintf(err, errsz, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir) {
		snprintf(err, errsz,
		    "socket path must be absolute, in a directory: %s", path);
		return -EINVAL;
	}
	*slash = '\0';
	if (mkdir(dir, 0755) == 0) {
		if (chmod(dir, 0755) < 0 || chown(dir, 0, 0) < 0) {
			r = -errno;
			snprintf(err, errsz, "%s: %s", dir, strerror(errno));
			return r;
		}
	} else if (errno != EEXIST) {
		r = -errno;
		snprintf(err, errsz, "mkdir %s: %s", dir, strerror(errno));
		return r;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "%s: not a directory", dir);
		return -ENOTDIR;
	}
	if ((st.st_mode & 022) != 0 ||
	    (st.st_uid != 0 && st.st_uid != owner_uid)) {
		snprintf(err, errsz,
		    "%s: socket directory must be owned by root or the credd user "
		    "and not writable by others (mode %03o)",
		    dir, st.st_mode & 0777);
		return -EPERM;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return r;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsz, "%s exists and is not a socket",
			    path);
			close(fd);
			return -EEXIST;
		}
		(void)unlink(path); /* stale socket of an earlier run */
	}
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	*fdp = fd;
	return 0;
}

static void
accept_timer_cb(struct event_loop *ev, void *arg)
{
	struct server *s = arg;

	(void)ev;
	s->accept_timer = NULL;
	server_accept_resume(s);
}

/*
 * accept4 failed for want of something that only time or a closing
 * connection gives back (descriptors, memory). Take the listener out of
 * the epoll set (it stays readable: level-triggered, it would spin) and
 * try again after a backoff, or when a connection closes. Clients wait
 * in the listen backlog meanwhile. One warning per episode, at most one
 * a minute, with the count of failures since the last one.
 */
static void
accept_pause(struct server *s, int err)
{
	int64_t now = event_now_ms(s->ev);

	s->accept_fails++;
	if (s->accept_since == 0) {
		s->accept_since = now;
		s->is_accept_warned = 0;
		s->stats.accept_pauses++;
	}
	if (s->accept_warned == 0 || now - s->accept_warned >= ACCEPT_LOG_MS) {
		char f[160];

		(void)snprintf(f, sizeof(f),
		    "event=accept_paused listener=socket error=%s "
		    "failures=%llu",
		    log_errno_name(err), (unsigned long long)s->accept_fails);
		log_event_warn(f,
		    "accept: %s; listener paused, retried with backoff "
		    "(%llu failures since the last report)",
		    strerror(err), (unsigned long long)s->accept_fails);
		s->accept_fails = 0;
		s->accept_warned = now;
		s->is_accept_warned = 1;
	}
	s->accept_backoff = s->accept_backoff == 0 ? ACCEPT_BACKOFF_MIN_MS :
						     s->accept_backoff * 2;
	if (s->accept_backoff > ACCEPT_BACKOFF_MAX_MS)
		s->accept_backoff = ACCEPT_BACKOFF_MAX_MS;
	event_timer_cancel(s->ev, &s->accept_timer);
	s->accept_timer =
	    event_timer_in(s->ev, s->accept_backoff, accept_timer_cb, s);
	if (s->accept_timer != NULL)
		(void)event_mod(s->ev, s->lfd, 0);
	/* else (no memory for a timer) keep listening: a spin, not deaf */
}

/* The backlog is empty: a failing episode, if any, is over. */
static void
accept_drained(struct server *s)
{
	if (s->accept_since == 0)
		return;
	if (s->is_accept_warned) {
		long long ms =
		    (long long)(event_now_ms(s->ev) - s->accept_since);
		char f[128];

		(void)snprintf(f, sizeof(f),
		    "event=accept_resumed listener=socket paused_ms=%lld "
		    "failures=%llu",
		    ms, (unsigned long long)s->accept_fails);
		log_event_info(f,
		    "accept: accepting again after %lld ms (%llu more "
		    "failures)",
		    ms, (unsigned long long)s->accept_fails);
		s->accept_fails = 0;
	}
	s->accept_since = 0;
	s->accept_backoff = 0;
}

static void
accept_cb(struct event_loop *ev, int lfd, uint32_t revents, void *arg)
{
	struct server *s = arg;
	struct ucred cred;
	socklen_t len;
	int fd, n;

	for (n = 0; n < 64; n++) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EAGAIN)
				accept_drained(s);
			else if (errno == EINTR || errno == ECONNABORTED)
				continue;
			else
				accept_pause(s, errno);
			return;
		}
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			log_warn("SO_PEERCRED");
			close(fd);
			continue;
		}
		if (s->stats.open >= (uint64_t)s->cf->max_conns) {
			server_conn_refuse(s, fd, cred.uid, "max_conns");
			continue;
		}
		server_conn_open(s, fd, &cred);
	}
}

static void
admin_gid_set(struct server *s, int r, gid_t gid)
{
	if (r == 0) {
		s->admin_gid = gid;
		s->has_admin_gid = 1;
		return;
	}
	s->has_admin_gid = 0;
	if (r == -ENOENT)
		log_warnx("admin_group \"%s\" does not exist; only root may "
			  "administer",
		    s->cf->admin_group);
	else
		log_warnx("admin_group \"%s\": cannot look it up (%s); only "
			  "root may administer until it can",
		    s->cf->admin_group, strerror(-r));
}

static void
group_cb(void *arg, int result, uid_t uid, gid_t gid, const char *name)
{
	struct server *s = arg;

	(void)uid;
	(void)name;
	s->group_req = NULL;
	admin_gid_set(s, result, gid);
}

/*
 * admin_group's gid. At start (is_now) in this thread, before the loop
 * serves anyone; after SIGHUP on the resolver thread, the old gid
 * staying in force until the answer.
 */
static void
resolve_admin_gid(struct server *s, int is_now)
{
	gid_t gid = 0;
	int r;

	if (s->db != NULL)
		userdb_cancel(s->db, s->group_req);
	s->group_req = NULL;
	if (s->cf->admin_group == NULL || s->cf->admin_group[0] == '\0') {
		s->has_admin_gid = 0;
		return;
	}
	if (is_now || s->db == NULL) {
		r = userdb_group_now(s->cf->admin_group, &gid);
		admin_gid_set(s, r, gid);
		return;
	}
	s->group_req =
	    userdb_lookup_group(s->db, s->cf->admin_group, group_cb, s);
	if (s->group_req == NULL)
		log_warnx("admin_group: out of memory; keeping the old gid");
}

/* The socket's per-uid caps from the config. */
static void
limits_of(const struct config *cf, struct uidlimit_cfg *lc)
{
	lc->max_conns_per_uid = (unsigned)cf->max_conns_per_uid;
	lc->requests_per_sec = cf->requests_per_sec;
	lc->request_burst = cf->request_burst;
}

static void
out_caps_of(struct server *s, const struct config *cf)
{
	uidlimit_set_out_caps(s->limits, (size_t)cf->max_output_per_uid,
	    (size_t)cf->max_output);
}

int
server_new(struct event_loop *ev, int lfd, const struct config *cf,
    struct userdb *db, server_request_cb *cb, void *arg, struct server **out)
{
	struct uidlimit_cfg lc;
	struct server *s;
	int r;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	limits_of(cf, &lc);
	s->limits = uidlimit_new(ev, &lc);
	if (s->limits == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->ev = ev;
	s->lfd = lfd;
	s->cf = cf;
	s->cb = cb;
	s->cbarg = arg;
	LIST_INIT(&s->conns);
	LIST_INIT(&s->paused);
	out_caps_of(s, cf);
	s->db = db;
	resolve_admin_gid(s, 1);
	r = event_add(ev, lfd, EPOLLIN, accept_cb, s);
	if (r < 0) {
		uidlimit_free(s->limits);
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void
server_set_identify(struct server *s, server_identify_cb *cb, void *arg)
{
	s->identify = cb;
	s->identify_arg = arg;
}

void
server_set_config(struct server *s, const struct config *cf)
{
	struct uidlimit_cfg lc;

	s->cf = cf;
	limits_of(cf, &lc);
	uidlimit_set_config(s->limits, &lc);
	out_caps_of(s, cf);
	server_conn_resume_soon(s); /* the caps may have grown */
	resolve_admin_gid(s, 0);
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	server_conn_close_all(s);
	if (s->db != NULL)
		userdb_cancel(s->db, s->group_req);
	event_timer_cancel(s->ev, &s->resume);
	event_timer_cancel(s->ev, &s->accept_timer);
	event_del(s->ev, s->lfd);
	close(s->lfd);
	uidlimit_free(s->limits);
	free(s);
}

const struct server_stats *
server_stats(const struct server *s)
{
	return &s->stats;
}
