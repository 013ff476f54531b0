/*
 * msi_listen.c - the SDK endpoint's listening socket and its accepts
 * (see msi_listen.h): bind or take the passed socket, retry a failed
 * bind, accept on the loop, prove the caller's uid at accept. The
 * sign-in callback (callback.c) uses the same code through its own
 * struct msi_listen_spec: any address, no uid proof.
 *
 * Why accept here and not inside libmicrohttpd: the uid must be proven
 * once, before the request is read, and a connection over its uid's cap
 * must be closed before it costs anything. MHD accepts internally and
 * offers only the peer's address before it reads (the accept policy
 * callback); here the fd is ours until msi.c hands it to MHD with
 * MHD_add_connection, and EMFILE is ours to pause on.
 *
 * Must never: block (the listener is non-blocking; a bind is one local
 * syscall), log a failed bind more than once per reason or a pause more
 * than once a minute, or pass on a uid that sockdiag_peer_uid did not
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
#include <systemd/sd-daemon.h>

#include "entra/util.h"

#include "config.h"
#include "event.h"
#include "log.h"
#include "msi_listen.h"
#include "reply.h"
#include "sockdiag.h"

#define MSI_BACKLOG 256
#define ACCEPT_BATCH 64	    /* accepts per wake-up: others get their turn */
#define RETRY_FIRST_MS 1000 /* a failed bind: first retry ... */
#define RETRY_MAX_MS 10000  /* ... doubling up to this (a squatter's window) */
#define PAUSE_FIRST_MS 50   /* EMFILE: accepts paused this long ... */
#define PAUSE_MAX_MS 1000   /* ... doubling up to this */
#define PAUSE_LOG_MS 60000  /* at most one pause message per minute */

struct msi_listen {
	struct event_loop *ev;
	struct msi_listen_spec spec;  /* listen NULL: text holds it */
	struct sockaddr_storage addr; /* [msi] listen at start */
	unsigned addrlen;
	char text[80]; /* as configured, for messages */
	int fd;	       /* -1 while down */
	int is_activated;
	int err;       /* last bind error while down */
	int64_t since; /* unix time of the last up/down change */
	struct event_timer *retry;
	int64_t retry_ms;
	int64_t retry_due; /* monotonic ms */
	struct event_timer *pause;
	int64_t pause_ms;	  /* 0: not in a pause episode */
	int64_t pause_logged;	  /* monotonic ms of the last message, 0 */
	uint64_t pauses_unlogged; /* since that message */
	int sockdiag_err;	  /* last unexpected sock_diag error logged */
	uint64_t bind_failures;
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
	s = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (s < 0)
		return -errno;
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		(void)setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(s, (const struct sockaddr *)ss, len) < 0 ||
	    listen(s, MSI_BACKLOG) < 0) {
		r = -errno;
		close(s);
		return r;
	}
	*fd = s;
	return 0;
}

static unsigned
port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(
		    ((const struct sockaddr_in *)(const void *)sa)->sin_port);
	return ntohs(
	    ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
}

/* A hint for a bind error the operator can act on, in buf. */
static const char *
bind_hint(const struct msi_listen_spec *sp, int err, unsigned port, char *buf,
    size_t sz)
{
	buf[0] = '\0';
	if (err == -EADDRINUSE)
		(void)snprintf(buf, sz,
		    "; another process holds the port (it could pose as the "
		    "endpoint: hold it with %s, see %s)",
		    sp->unit, sp->doc);
	else if ((err == -EACCES || err == -EPERM) && port < 1024)
		(void)snprintf(buf, sz,
		    "; ports below 1024 need root, which credd gives up after "
		    "start: use %s or a port of 1024 or more",
		    sp->unit);
	return buf;
}

void
msi_listen_spec_msi(const struct config *cf, struct msi_listen_spec *s)
{
	s->listen = cf->msi_listen;
	s->key = "[msi] listen";
	s->fdname = MSI_LISTEN_FDNAME;
	s->tag = "msi";
	s->what = "SDK endpoint";
	s->event = "sdk";
	s->path = "/msi/token";
	s->unit = "credd-msi.socket";
	s->doc = "docs/sdk.md";
	s->is_public = 0;
}

/* The listen value's address: loopback only unless the spec is public. */
static int
spec_addr(const struct msi_listen_spec *sp, struct sockaddr_storage *ss,
    unsigned *len)
{
	return config_listen_addr(sp->listen, sp->is_public, ss, len);
}

static int
fd_matches(int fd, const struct sockaddr *want, int is_public, char *why,
    size_t whysz)
{
	struct sockaddr_storage got;
	socklen_t gl = sizeof(got);
	int proto = 0, same;
	socklen_t pl = sizeof(proto);

	if (sd_is_socket_inet(fd, want->sa_family, SOCK_STREAM, 1,
		(uint16_t)port_of(want)) <= 0) {
		snprintf(why, whysz,
		    "not a listening TCP socket of that "
		    "address family and port");
		return -EADDRNOTAVAIL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) < 0 ||
	    proto != IPPROTO_TCP) {
		snprintf(why, whysz, "not a TCP socket");
		return -EPROTONOSUPPORT;
	}
	if (getsockname(fd, (struct sockaddr *)&got, &gl) < 0) {
		snprintf(why, whysz, "getsockname: %s", strerror(errno));
		return -errno;
	}
	if (want->sa_family == AF_INET)
		same = memcmp(&((struct sockaddr_in *)(void *)&got)->sin_addr,
			   &((const struct sockaddr_in *)(const void *)want)
				->sin_addr,
			   sizeof(struct in_addr)) == 0;
	else
		same = memcmp(&((struct sockaddr_in6 *)(void *)&got)->sin6_addr,
			   &((const struct sockaddr_in6 *)(const void *)want)
				->sin6_addr,
			   sizeof(struct in6_addr)) == 0;
	if (!same ||
	    (!is_public && !sockdiag_is_loopback((struct sockaddr *)&got))) {
		snprintf(why, whysz, "bound to another address");
		return -EADDRNOTAVAIL;
	}
	return 0;
}

int
msi_listen_fd_matches(int fd, const struct sockaddr *want, char *why,
    size_t whysz)
{
	return fd_matches(fd, want, 0, why, whysz);
}

/* The index of the passed fd for the endpoint, or -1. */
static int
pick_passed(const struct msi_listen_spec *sp, const struct sockaddr *want,
    const int *fds, char *const *names, size_t nfds)
{
	char why[128];
	size_t i;

	for (i = 0; names != NULL && i < nfds; i++) {
		if (names[i] == NULL || strcmp(names[i], sp->fdname) != 0)
			continue;
		if (fd_matches(fds[i], want, sp->is_public, why, sizeof(why)) ==
		    0)
			return (int)i;
		log_warnx("%s: the socket passed as \"%s\" is %s, not %s %s; "
			  "binding %s instead",
		    sp->tag, sp->fdname, why, sp->key, sp->listen, sp->listen);
		return -1;
	}
	for (i = 0; i < nfds; i++)
		if (fd_matches(fds[i], want, sp->is_public, why, sizeof(why)) ==
		    0)
			return (int)i;
	return -1;
}

int
msi_listen_open(const struct config *cf, const int *fds, char *const *names,
    size_t nfds, struct msi_listen_sock *out, int *used, char *err,
    size_t errsz)
{
	struct msi_listen_spec sp;

	msi_listen_spec_msi(cf, &sp);
	return msi_listen_open_spec(&sp, fds, names, nfds, out, used, err,
	    errsz);
}

int
msi_listen_open_spec(const struct msi_listen_spec *sp, const int *fds,
    char *const *names, size_t nfds, struct msi_listen_sock *out, int *used,
    char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	char hint[192];
	unsigned len;
	int fd, i, r;

	out->fd = -1;
	out->is_activated = 0;
	out->err = 0;
	*used = -1;
	if (sp->listen == NULL)
		return 0;
	if (spec_addr(sp, &ss, &len) < 0) {
		snprintf(err, errsz, "%s: not a %saddress and port", sp->key,
		    sp->is_public ? "" : "loopback ");
		out->err = -EINVAL;
		return -EINVAL;
	}
	i = pick_passed(sp, (struct sockaddr *)&ss, fds, names, nfds);
	if (i >= 0) {
		fd = fds[i];
		if (util_set_nonblock(fd) == 0 && util_set_cloexec(fd) == 0) {
			out->fd = fd;
			out->is_activated = 1;
			*used = i;
			return 0;
		}
		log_warn("%s: the passed socket for %s", sp->tag, sp->listen);
	}
	r = bind_addr(&ss, len, &fd);
	if (r < 0) {
		snprintf(err, errsz, "%s %s: %s%s", sp->key, sp->listen,
		    strerror(-r),
		    bind_hint(sp, r, port_of((struct sockaddr *)&ss), hint,
			sizeof(hint)));
		out->err = r;
		return r;
	}
	out->fd = fd;
	return 0;
}

/* ---- up, down, retry ---- */

static int
go_up(struct msi_listen *l, int fd, int is_activated)
{
	int r;

	r = event_add(l->ev, fd, EPOLLIN, accept_cb, l);
	if (r < 0) {
		close(fd);
		return r;
	}
	l->fd = fd;
	l->is_activated = is_activated;
	l->err = 0;
	l->since = util_now();
	return 0;
}

static void
retry_cb(struct event_loop *ev, void *arg)
{
	struct msi_listen *l = arg;
	const struct msi_listen_spec *sp = &l->spec;
	char f[192], hint[192];
	int fd, r;

	l->retry = NULL;
	r = bind_addr(&l->addr, l->addrlen, &fd);
	if (r == 0)
		r = go_up(l, fd, 0);
	if (r == 0) {
		(void)snprintf(f, sizeof(f),
		    "event=%s_endpoint_up listen=%s socket=bound "
		    "failures=%llu",
		    sp->event, l->text, (unsigned long long)l->bind_failures);
		log_event_info(f,
		    "%s: %s on http://%s%s (bound after %llu failed attempts)",
		    sp->tag, sp->what, l->text, sp->path,
		    (unsigned long long)l->bind_failures);
		return;
	}
	l->bind_failures++;
	if (r != l->err) { /* log once per reason, not once per retry */
		(void)snprintf(f, sizeof(f),
		    "event=%s_bind_failed listen=%s error=%s", sp->event,
		    l->text, log_errno_name(-r));
		log_event_warn(f,
		    "%s: %s %s: %s%s; the %s stays down and credd retries",
		    sp->tag, sp->key, l->text, strerror(-r),
		    bind_hint(sp, r, port_of((struct sockaddr *)&l->addr), hint,
			sizeof(hint)),
		    sp->what);
	}
	l->err = r;
	l->retry_ms =
	    l->retry_ms * 2 < RETRY_MAX_MS ? l->retry_ms * 2 : RETRY_MAX_MS;
	l->retry_due = event_now_ms(ev) + l->retry_ms;
	l->retry = event_timer_at(ev, l->retry_due, retry_cb, l);
}

/* ---- accept ---- */

static void
resume_cb(struct event_loop *ev, void *arg)
{
	struct msi_listen *l = arg;

	l->pause = NULL;
	(void)event_mod(ev, l->fd, EPOLLIN); /* level-triggered: tries again */
}

/*
 * Out of fds or memory: a readable listener would wake the loop at once
 * again. Stop watching it for a while; the pause doubles while accepts
 * keep failing and ends with the first that succeeds.
 */
static void
pause_accepts(struct msi_listen *l, int err)
{
	int64_t now = event_now_ms(l->ev);

	/*
	 * Once per minute at most: a peer that closes and opens connections
	 * at the limit ends and starts pause episodes at will.
	 */
	if (l->pause_logged == 0 || now - l->pause_logged >= PAUSE_LOG_MS) {
		log_warnx("%s: accept: %s; the %s pauses its accepts "
			  "(%d ms, doubling up to %d ms, until one succeeds; "
			  "%llu pauses since the last message)",
		    l->spec.tag, strerror(err), l->spec.what, PAUSE_FIRST_MS,
		    PAUSE_MAX_MS, (unsigned long long)l->pauses_unlogged);
		l->pause_logged = now;
		l->pauses_unlogged = 0;
	}
	l->pauses_unlogged++;
	l->pause_ms = l->pause_ms == 0	   ? PAUSE_FIRST_MS :
	    l->pause_ms * 2 < PAUSE_MAX_MS ? l->pause_ms * 2 :
					     PAUSE_MAX_MS;
	l->accept_pauses++;
	(void)event_mod(l->ev, l->fd, 0);
	event_timer_cancel(l->ev, &l->pause);
	l->pause = event_timer_in(l->ev, l->pause_ms, resume_cb, l);
	if (l->pause == NULL)
		(void)event_mod(l->ev, l->fd, EPOLLIN); /* never stay deaf */
}

static int
is_out_of_resources(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM;
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
		if (r != l->sockdiag_err) /* the host's problem: say it once */
			log_warnx(
			    "msi: sock_diag cannot tell callers' uids: %s",
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
			if (errno != EAGAIN) /* EMFILE, ENFILE, ENOBUFS, ... */
				pause_accepts(l, errno);
			return;
		}
		uid = (uid_t)-1;
		why = NULL;
		r = l->spec.is_public ?
		    0 :
		    prove(l, fd, (struct sockaddr *)&peer, &uid, &why);
		if (r < 0) { /* no fd left for the lookup: shed it */
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
	struct msi_listen_spec sp;

	msi_listen_spec_msi(cf, &sp);
	return msi_listen_new_spec(ev, &sp, sock, cb, arg, out);
}

int
msi_listen_new_spec(struct event_loop *ev, const struct msi_listen_spec *spec,
    const struct msi_listen_sock *sock, msi_listen_cb *cb, void *arg,
    struct msi_listen **out)
{
	const struct msi_listen_spec *sp;
	struct msi_listen *l;
	char f[192], hint[192];
	int r;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		if (sock->fd >= 0)
			close(sock->fd);
		return -ENOMEM;
	}
	l->ev = ev;
	l->fd = -1;
	l->cb = cb;
	l->cbarg = arg;
	l->spec = *spec;
	sp = &l->spec;
	if (spec->listen == NULL ||
	    spec_addr(spec, &l->addr, &l->addrlen) < 0) {
		if (sock->fd >= 0)
			close(sock->fd);
		free(l);
		return -EINVAL;
	}
	snprintf(l->text, sizeof(l->text), "%s", spec->listen);
	l->spec.listen = NULL; /* the config's; l->text from here */
	if (sock->fd >= 0) {
		r = go_up(l, sock->fd, sock->is_activated);
		if (r < 0) {
			free(l);
			return r;
		}
		(void)snprintf(f, sizeof(f),
		    "event=%s_endpoint_up listen=%s socket=%s", sp->event,
		    l->text, sock->is_activated ? "activated" : "bound");
		log_event_info(f, "%s: %s on http://%s%s (%s)", sp->tag,
		    sp->what, l->text, sp->path,
		    sock->is_activated ? "socket passed in by the service "
					 "manager" :
					 "bound by credd");
		*out = l;
		return 0;
	}
	l->err = sock->err < 0 ? sock->err : -EADDRNOTAVAIL;
	l->since = util_now();
	l->bind_failures = 1;
	(void)snprintf(f, sizeof(f), "event=%s_bind_failed listen=%s error=%s",
	    sp->event, l->text, log_errno_name(-l->err));
	log_event_warn(f,
	    "%s: %s %s: %s%s; credd serves its socket without the %s and "
	    "retries",
	    sp->tag, sp->key, l->text, strerror(-l->err),
	    bind_hint(sp, l->err, port_of((struct sockaddr *)&l->addr), hint,
		sizeof(hint)),
	    sp->what);
	l->retry_ms = RETRY_FIRST_MS;
	l->retry_due = event_now_ms(ev) + l->retry_ms;
	l->retry = event_timer_at(ev, l->retry_due, retry_cb, l);
	if (l->retry == NULL) {
		free(l);
		return -ENOMEM;
	}
	*out = l;
	return 0;
}

void
msi_listen_free(struct msi_listen *l)
{
	if (l == NULL)
		return;
	event_timer_cancel(l->ev, &l->retry);
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

int
msi_listen_report(const struct msi_listen *l, json_t *o, int is_stats)
{
	int64_t in;
	int bad = 0;

	reply_put(o, "state", json_string(l->fd >= 0 ? "up" : "down"), &bad);
	reply_put(o, "listen", json_string(l->text), &bad);
	if (l->fd >= 0)
		reply_put(o, "socket",
		    json_string(l->is_activated ? "activated" : "bound"), &bad);
	else {
		reply_put(o, "error", json_string(strerror(-l->err)), &bad);
		in = l->retry != NULL ? l->retry_due - event_now_ms(l->ev) : 0;
		reply_put(o, "retry_in_ms", json_integer(in > 0 ? in : 0),
		    &bad);
	}
	reply_put(o, "since", json_integer(l->since), &bad);
	if (!is_stats)
		return bad ? -ENOMEM : 0;
	reply_put(o, "bind_failures",
	    json_integer((json_int_t)l->bind_failures), &bad);
	reply_put(o, "accept_pauses",
	    json_integer((json_int_t)l->accept_pauses), &bad);
	reply_put(o, "connections_accepted",
	    json_integer((json_int_t)l->accepted), &bad);
	reply_put(o, "connections_unproven",
	    json_integer((json_int_t)l->unproven), &bad);
	return bad ? -ENOMEM : 0;
}

int
msi_listen_report_in(const struct msi_listen *l, int is_on, json_t *o,
    const char *name, int is_stats, const struct msi_listen_count *counts,
    size_t n)
{
	json_t *e;
	size_t i;
	int bad = 0;

	if (!is_on || l == NULL) {
		if (is_stats)
			reply_put(o, name, json_pack("{s:s}", "state", "off"),
			    &bad);
		return bad ? -ENOMEM : 0;
	}
	e = json_object();
	if (e == NULL)
		return -ENOMEM;
	if (msi_listen_report(l, e, is_stats) < 0)
		bad = 1;
	for (i = 0; is_stats && i < n; i++)
		reply_put(e, counts[i].name,
		    json_integer((json_int_t)counts[i].value), &bad);
	reply_put(o, name, e, &bad);
	return bad ? -ENOMEM : 0;
}
