/*
 * msi_listen.c - the SDK endpoint's listening socket and its accepts
 * (see msi_listen.h): bind, accept on the loop, prove the caller's uid
 * at accept.
 *
 * Why accept here and not inside libmicrohttpd: the uid must be proven
 * once, before the request is read, and a connection over its uid's cap
 * must be closed before it costs anything. MHD accepts internally and
 * offers only the peer's address before it reads (the accept policy
 * callback); here the fd is ours until msi.c hands it to MHD with
 * MHD_add_connection, and EMFILE is ours to pause on.
 *
 * Must never: block (the listener is non-blocking), log more than once
 * per pause episode, or pass on a uid that sockdiag_peer_uid did not
 * prove.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "entra/util.h"

#include "config.h"
#include "event.h"
#include "log.h"
#include "msi_listen.h"
#include "sockdiag.h"

#define MSI_BACKLOG 256
#define ACCEPT_BATCH 64		/* accepts per wake-up: others get their turn */
#define PAUSE_FIRST_MS 50	/* EMFILE: accepts paused this long ... */
#define PAUSE_MAX_MS 1000	/* ... doubling up to this */

struct msi_listen {
	struct event_loop *ev;
	char text[80];			/* as configured, for messages */
	int fd;
	int64_t since;			/* unix time it came up */
	struct event_timer *pause;
	int64_t pause_ms;		/* 0: not in a pause episode */
	int sockdiag_err;		/* last unexpected sock_diag error logged */
	uint64_t accept_pauses;
	uint64_t accepted;
	uint64_t unproven;
	msi_listen_cb *cb;
	void *cbarg;
};

static void accept_cb(struct event_loop *ev, int fd, uint32_t revents,
    void *arg);

/* socket + bind + listen on addr; 0 and *fd, or -errno. */
static int
bind_addr(const struct sockaddr_storage *ss, unsigned len, int *fd)
{
	int s, one = 1, r;

	*fd = -1;
	s = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		(void)setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(s, (const struct sockaddr *)ss, len) < 0 ||
	    listen(s, MSI_BACKLOG) < 0) {
		r = -errno;
		close(s);
		return r;
	}
	*fd = s;
	return 0;
}

int
msi_listen_open(const struct config *cf, struct msi_listen_sock *out,
    char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	unsigned len;
	int fd, r;

	out->fd = -1;
	if (cf->msi_listen == NULL)
		return 0;
	if (config_msi_addr(cf->msi_listen, &ss, &len) < 0) {
		snprintf(err, errsz, "[msi] listen: not a loopback address");
		return -EINVAL;
	}
	r = bind_addr(&ss, len, &fd);
	if (r < 0) {
		snprintf(err, errsz, "[msi] listen %s: %s", cf->msi_listen,
		    strerror(-r));
		return r;
	}
	out->fd = fd;
	return 0;
}

/* ---- accept ---- */

static void
resume_cb(struct event_loop *ev, void *arg)
{
	struct msi_listen *l = arg;

	l->pause = NULL;
	(void)event_mod(ev, l->fd, EPOLLIN);	/* level-triggered: tries again */
}

/*
 * Out of fds or memory: a readable listener would wake the loop at once
 * again. Stop watching it for a while; the pause doubles while accepts
 * keep failing and ends with the first that succeeds.
 */
static void
pause_accepts(struct msi_listen *l, int err)
{
	if (l->pause_ms == 0)
		log_warnx("msi: accept: %s; the SDK endpoint pauses its accepts "
		    "(%d ms, doubling up to %d ms, until one succeeds)",
		    strerror(err), PAUSE_FIRST_MS, PAUSE_MAX_MS);
	l->pause_ms = l->pause_ms == 0 ? PAUSE_FIRST_MS :
	    l->pause_ms * 2 < PAUSE_MAX_MS ? l->pause_ms * 2 : PAUSE_MAX_MS;
	l->accept_pauses++;
	(void)event_mod(l->ev, l->fd, 0);
	event_timer_cancel(l->ev, &l->pause);
	l->pause = event_timer_in(l->ev, l->pause_ms, resume_cb, l);
	if (l->pause == NULL)
		(void)event_mod(l->ev, l->fd, EPOLLIN);	/* never stay deaf */
}

static int
is_out_of_resources(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/*
 * The caller's uid, once, now: 0 with *why NULL and *uid, or 0 with why
 * not in *why (static, for the audit). Only the kernel's answer counts
 * (sockdiag.h). -errno when credd itself is out of fds or memory for
 * the lookup: the connection is shed like an accept that failed.
 */
static int
prove(struct msi_listen *l, int fd, const struct sockaddr *peer, uid_t *uid,
    const char **why)
{
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);
	int r;

	*uid = (uid_t)-1;
	*why = "caller uid unknown";
	if (!sockdiag_is_loopback(peer)) {
		*why = "caller not on loopback";
		return 0;
	}
	if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0)
		return 0;
	r = sockdiag_peer_uid(peer, (struct sockaddr *)&local, uid);
	switch (r) {
	case 0:
		*why = NULL;
		break;
	case -ENOTCONN:
		*why = "caller socket closed before accept";
		break;
	case -ESRCH:
		*why = "caller socket held by no process";
		break;
	case -ENOENT:
		*why = "caller socket not found";
		break;
	default:
		if (is_out_of_resources(-r))
			return r;
		if (r != l->sockdiag_err)	/* the host's problem: say it once */
			log_warnx("msi: sock_diag cannot tell callers' uids: %s",
			    strerror(-r));
		l->sockdiag_err = r;
		break;
	}
	return 0;
}

static void
accept_cb(struct event_loop *ev, int lfd, uint32_t revents, void *arg)
{
	struct msi_listen *l = arg;
	struct sockaddr_storage peer;
	const char *why;
	socklen_t pl;
	uid_t uid;
	int fd, n, r;

	(void)ev;
	(void)revents;
	for (n = 0; n < ACCEPT_BATCH; n++) {
		pl = sizeof(peer);
		fd = accept4(lfd, (struct sockaddr *)&peer, &pl,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)	/* EMFILE, ENFILE, ENOBUFS, ... */
				pause_accepts(l, errno);
			return;
		}
		r = prove(l, fd, (struct sockaddr *)&peer, &uid, &why);
		if (r < 0) {	/* no fd left for the lookup: shed it */
			close(fd);
			pause_accepts(l, -r);
			return;
		}
		l->pause_ms = 0;
		l->accepted++;
		if (why != NULL)
			l->unproven++;
		l->cb(l->cbarg, fd, (struct sockaddr *)&peer, pl, uid, why);
	}
}

/* ---- life ---- */

int
msi_listen_new(struct event_loop *ev, const struct config *cf,
    const struct msi_listen_sock *sock, msi_listen_cb *cb, void *arg,
    struct msi_listen **out)
{
	struct msi_listen *l;
	int r;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL || cf->msi_listen == NULL || sock->fd < 0) {
		if (sock->fd >= 0)
			close(sock->fd);
		free(l);
		return l == NULL ? -ENOMEM : -EINVAL;
	}
	l->ev = ev;
	l->cb = cb;
	l->cbarg = arg;
	snprintf(l->text, sizeof(l->text), "%s", cf->msi_listen);
	r = event_add(ev, sock->fd, EPOLLIN, accept_cb, l);
	if (r < 0) {
		close(sock->fd);
		free(l);
		return r;
	}
	l->fd = sock->fd;
	l->since = util_now();
	log_info("msi: SDK endpoint on http://%s/msi/token", l->text);
	*out = l;
	return 0;
}

void
msi_listen_free(struct msi_listen *l)
{
	if (l == NULL)
		return;
	event_timer_cancel(l->ev, &l->pause);
	if (l->fd >= 0) {
		event_del(l->ev, l->fd);
		util_closep(&l->fd);
	}
	free(l);
}

int
msi_listen_is_up(const struct msi_listen *l)
{
	return l != NULL && l->fd >= 0;
}

void
msi_listen_report(const struct msi_listen *l, json_t *o, int is_stats)
{
	(void)json_object_set_new(o, "state", json_string("up"));
	(void)json_object_set_new(o, "listen", json_string(l->text));
	(void)json_object_set_new(o, "since", json_integer(l->since));
	if (!is_stats)
		return;
	(void)json_object_set_new(o, "accept_pauses",
	    json_integer((json_int_t)l->accept_pauses));
	(void)json_object_set_new(o, "connections_accepted",
	    json_integer((json_int_t)l->accepted));
	(void)json_object_set_new(o, "connections_unproven",
	    json_integer((json_int_t)l->unproven));
}
