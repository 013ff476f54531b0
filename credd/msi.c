/*
 * msi.c - the SDK endpoint (see msi.h): libmicrohttpd in external-epoll
 * mode on credd's loop, its connections, the parked request and the
 * life cycle. The request checks, the caller proof and the two
 * managed-identity response shapes are msi_req.c's.
 *
 * Loop integration (mhd_loop.c, shared with the other HTTP listeners):
 * MHD's epoll fd is watched with event_add; on readiness, and when the
 * timer from MHD_get_timeout fires, MHD_run handles what is ready
 * without blocking. MHD has no listening socket
 * (MHD_USE_NO_LISTEN_SOCKET): msi_listen.c accepts on the loop and
 * proves the caller's uid before a byte is read; conn_cb applies the
 * per-uid connection cap and hands the fd to MHD (MHD_add_connection),
 * whose connection-notify callback attaches that proof to the
 * connection (its socket context) for every request it carries. A request whose token needs a
 * refresh (or a device flow) is parked with the broker through the
 * struct waiter embedded in struct msi_req, and its connection is
 * suspended (MHD_ALLOW_SUSPEND_RESUME). The broker's answer, or our own
 * per-request deadline (MHD's timeout only measures inactivity), builds
 * the response and resumes the connection.
 *
 * Limits: MHD_OPTION_CONNECTION_MEMORY_LIMIT caps the request line and
 * headers (MHD answers 431/414 past it), a request body is refused,
 * MHD_OPTION_CONNECTION_TIMEOUT drops slow or idle clients (slowloris),
 * MHD_OPTION_CONNECTION_LIMIT and conn_cb cap connections. Every caller
 * is 127.0.0.1 on loopback, so MHD's per-IP limit is off; the per-uid
 * limits of the Unix socket ([server] max_conns_per_uid, [limits]
 * requests_per_sec and request_burst, uidlimit.h) apply here too, in a
 * table of the endpoint's own. Refusals a caller can repeat are audited
 * through audit_refusal (coalesced per uid and reason, true counts).
 *
 * Secrets: the token goes into a response buffer that is wiped when MHD
 * frees it. MHD copies headers (not the body) into its connection pool,
 * which it does not wipe: the request's X-IDENTITY-HEADER stays there
 * until the pool is reused. Nothing here logs a header value or a body.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <jansson.h>
#include <microhttpd.h>

#include "entra/proto.h"
#include "entra/secret.h"

#include "audit.h"
#include "broker.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "log.h"
#include "mhd_loop.h"
#include "msi.h"
#include "msi_int.h"
#include "msi_req.h"
#include "msi_listen.h"
#include "reply.h"
#include "uidlimit.h"
#include "userdb.h"
#include "waiter.h"

#define MSI_MEMORY_LIMIT                                                       \
	(32 * 1024) /* request line + headers, per connection */

/* ---- the parked request ---- */

static void
kick(struct msi *m)
{
	if (!m->is_closing)
		mhd_loop_kick(&m->ml);
}

static void
req_resume(struct msi_req *r)
{
	event_timer_cancel(r->m->ev, &r->deadline);
	waiter_release(&r->w);
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
	kick(r->m);
}

/* w->reply: the broker's answer for a parked request. */
static void
req_reply(struct waiter *w, struct reply *rep)
{
	struct msi_req *r =
	    (struct msi_req *)(void *)((char *)w - offsetof(struct msi_req, w));

	w->linked = 0;
	msi_req_from_broker(r, rep);
	reply_clear(rep);
	if (r->is_parking) {
		r->state = REQ_READY; /* not suspended yet: req_token goes on */
		return;
	}
	if (r->state == REQ_PARKED)
		req_resume(r);
}

static void
deadline_cb(struct event_loop *ev, void *arg)
{
	struct msi_req *r = arg;

	(void)ev;
	r->deadline = NULL;
	if (r->w.linked && r->w.cancel != NULL)
		r->w.cancel(&r->w);
	r->retry_after = 5;
	msi_req_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
	    "temporarily_unavailable",
	    "credd: no token within the request deadline; try again");
	req_resume(r);
}

static void
req_free(struct msi_req *r)
{
	if (r == NULL)
		return;
	if (r->w.linked && r->w.cancel != NULL)
		r->w.cancel(&r->w);
	event_timer_cancel(r->m->ev, &r->deadline);
	LIST_REMOVE(r, link);
	waiter_release(&r->w);
	free(r->caller.user);
	free(r->resource);
	if (r->body != NULL)
		secret_wipe_str(r->body);
	free(r);
}

static unsigned
listen_port(const struct config *cf)
{
	struct sockaddr_storage ss;
	unsigned len;

	if (config_msi_addr(cf->msi_listen, &ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
}

/* Ask the broker: answer now, or park and suspend. */
static void
req_token(struct msi_req *r)
{
	struct reply rep = { 0 };
	int rc;

	r->w.reply = req_reply;
	r->w.caller = &r->caller;
	r->w.op = PROTO_OP_TOKEN;
	/* identity = app (issue 14): the app's token, never the user's. */
	r->w.policy_kind = r->kind;
	switch (r->m->cf->workload[r->kind].identity) {
	case CONFIG_IDENTITY_APP:
		r->w.app_identity = WAITER_APP;
		break;
	case CONFIG_IDENTITY_USER_OR_APP:
		r->w.app_identity = WAITER_USER_OR_APP;
		break;
	default:
		r->w.app_identity = 0;
	}
	r->state = REQ_PARKED;
	r->is_parking = 1;
	rc = broker_token(r->m->broker, &r->w, r->caller.user, r->caller.uid,
	    r->scope, PROTO_MIN_VALID_DEFAULT, &rep);
	r->is_parking = 0;
	if (rc != WAITER_PARKED) {
		if (rc < 0)
			(void)errmap_reply(&rep, rc, NULL); /* empty: 500 */
		msi_req_from_broker(r, &rep);
		reply_clear(&rep);
		r->state = REQ_READY;
	}
	if (r->state != REQ_PARKED) {
		waiter_release(&r->w);
		return;
	}
	MHD_suspend_connection(r->conn);
	r->deadline = event_timer_in(r->m->ev,
	    (int64_t)r->m->cf->msi_request_timeout * 1000, deadline_cb, r);
}

/* ---- MHD callbacks ---- */

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	const union MHD_ConnectionInfo *ci;
	struct msi *m = cls;
	struct msi_req *r = *con_cls;

	(void)version;
	(void)upload_data;
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		r->m = m;
		r->conn = conn;
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->mc = ci != NULL ? ci->socket_context : NULL;
		m->n.requests++;
		LIST_INSERT_HEAD(&m->reqs, r, link);
		*con_cls = r;
		return MHD_YES; /* called again for the body, then the end */
	}
	if (*upload_data_size > 0) {
		r->has_body = 1; /* refused at the end; never kept */
		*upload_data_size = 0;
		return MHD_YES;
	}
	switch (r->state) {
	case REQ_NEW:
		if (msi_req_check(r, url, method) == 0) {
			req_token(r);
			if (r->state == REQ_PARKED)
				return MHD_YES;
		}
		log_debug("msi: uid %d %s %s -> %u",
		    r->caller.user != NULL ? (int)r->caller.uid : -1,
		    r->is_imds ? "imds" : "app-service", method, r->status);
		return msi_req_queue(r);
	case REQ_READY:
		log_debug("msi: uid %d %s -> %u", (int)r->caller.uid,
		    r->is_imds ? "imds" : "app-service", r->status);
		return msi_req_queue(r);
	case REQ_PARKED:
	case REQ_QUEUED:
		break;
	}
	return MHD_YES;
}

/* mhd_loop_completed's hook. */
static void
req_free_cb(void *r)
{
	req_free(r);
}

/* ---- connections ---- */

static void
conn_release(struct msi *m, struct msi_conn *mc)
{
	if (mc == NULL)
		return;
	uidlimit_close(m->limits, mc->ul);
	free(mc->user);
	free(mc);
}

/* A connection-level refusal (no request read): coalesced as well. */
static void
audit_conn_refused(struct msi *m, uid_t uid, const char *reason)
{
	struct audit_event ev = {
		.event = "request_refused",
		.uid = uid,
		.op = "msi",
		.outcome = "refused",
		.reason = reason,
	};

	m->n.refused++;
	audit_refusal(&ev, event_now_ms(m->ev));
}

/* MHD takes the connection; notify_cb attaches mc to it. */
static void
conn_add(struct msi *m, struct msi_conn *mc, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	m->adding = mc;
	(void)MHD_add_connection(m->d, fd, peer, peerlen); /* MHD owns fd */
	if (m->adding != NULL) { /* refused by MHD, which closed fd */
		m->adding = NULL;
		conn_release(m, mc);
	}
	kick(m);
}

/* The uid's name came back: MHD may read the request now. */
static void
naming_cb(void *arg, int result, uid_t uid, gid_t gid, const char *name)
{
	struct msi_conn *mc = arg;
	struct msi *m = mc->m;

	(void)uid;
	(void)gid;
	mc->name_req = NULL;
	LIST_REMOVE(mc, nlink);
	m->nnaming--;
	if (result == 0 && (mc->user = strdup(name)) == NULL)
		result = -ENOMEM;
	mc->user_err = result;
	conn_add(m, mc, mc->fd, (struct sockaddr *)&mc->peer, mc->peerlen);
}

/*
 * The proven uid's login name, before MHD reads a byte: from the cache
 * when fresh, else looked up off the loop while the request waits in
 * the kernel (a slow directory delays this connection only). 0: known
 * (or not needed), go on; 1: looking it up (naming_cb goes on).
 */
static int
conn_name(struct msi *m, struct msi_conn *mc, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	char name[USERDB_NAME_MAX];

	mc->user_err = -ENOENT;
	if (mc->unproven != NULL || m->db == NULL)
		return 0;
	if (userdb_cached_name(m->db, mc->uid, name, sizeof(name)) == 0) {
		mc->user = strdup(name);
		mc->user_err = mc->user != NULL ? 0 : -ENOMEM;
		return 0;
	}
	mc->m = m;
	mc->fd = fd;
	memcpy(&mc->peer, peer,
	    peerlen < sizeof(mc->peer) ? peerlen : sizeof(mc->peer));
	mc->peerlen = peerlen;
	mc->name_req = userdb_lookup_uid(m->db, mc->uid, naming_cb, mc);
	if (mc->name_req == NULL) {
		mc->user_err = -ENOMEM;
		return 0;
	}
	LIST_INSERT_HEAD(&m->naming, mc, nlink);
	m->nnaming++;
	return 1;
}

/*
 * msi_listen's accept: uid proven (or why not). Over its uid's cap or the
 * endpoint's, the connection is closed before anything is read; else MHD
 * takes it, and notify_cb attaches mc to it.
 */
static void
conn_cb(void *arg, int fd, const struct sockaddr *peer, socklen_t peerlen,
    uid_t uid, const char *unproven)
{
	struct msi *m = arg;
	const char *refused = NULL;
	struct msi_conn *mc;
	int r;

	mc = calloc(1, sizeof(*mc));
	if (mc == NULL) {
		close(fd);
		return;
	}
	mc->uid = unproven == NULL ? uid : (uid_t)-1;
	mc->unproven = unproven;
	if (unproven == NULL) {
		r = uidlimit_open(m->limits, uid, &mc->ul);
		if (r == -EUSERS)
			refused = "over max_conns_per_uid";
		else if (r < 0)
			refused = "out of memory";
	}
	if (refused == NULL &&
	    m->nconns + m->nnaming >= (unsigned)m->cf->msi_max_conns)
		refused = "over [msi] max_connections";
	if (refused != NULL) {
		m->n.refused_conns++;
		audit_conn_refused(m, mc->uid, refused);
		conn_release(m, mc);
		close(fd);
		return;
	}
	if (conn_name(m, mc, fd, peer, peerlen) == 0)
		conn_add(m, mc, fd, peer, peerlen);
}

/* MHD: a connection starts (inside MHD_add_connection) or ends. */
static void
notify_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct msi *m = cls;

	(void)conn;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = m->adding; /* NULL: every request refused */
		m->adding = NULL;
		m->nconns++;
		return;
	}
	m->nconns--;
	conn_release(m, *socket_context);
	*socket_context = NULL;
}

/* The socket's per-uid caps, from the same keys. */
static void
limits_of(const struct config *cf, struct uidlimit_cfg *lc)
{
	lc->max_conns_per_uid = (unsigned)cf->max_conns_per_uid;
	lc->requests_per_sec = cf->requests_per_sec;
	lc->request_burst = cf->request_burst;
}

int
msi_new(struct event_loop *ev, const struct msi_listen_sock *sock,
    const struct config *cf, struct broker *broker, struct sessions *sessions,
    struct userdb *db, struct msi **out)
{
	struct MHD_OptionItem lim[MHD_LOOP_LIMITS_N];
	struct uidlimit_cfg lc;
	struct msi *m;
	int r = -ENOMEM;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto fail;
	m->ev = ev;
	m->cf = cf;
	m->broker = broker;
	m->sessions = sessions;
	m->db = db;
	LIST_INIT(&m->naming);
	m->port = listen_port(cf);
	m->ml.epfd = -1;
	m->ml.req_free = req_free_cb;
	LIST_INIT(&m->reqs);
	limits_of(cf, &lc);
	m->limits = uidlimit_new(ev, &lc);
	if (m->limits == NULL)
		goto fail;
	mhd_loop_limits(lim, (unsigned)cf->msi_conn_timeout,
	    (size_t)MSI_MEMORY_LIMIT, (unsigned)cf->msi_max_conns, 0);
	m->d = MHD_start_daemon(MHD_LOOP_FLAGS, 0, NULL, NULL, access_cb, m,
	    MHD_OPTION_ARRAY, lim, MHD_OPTION_NOTIFY_COMPLETED,
	    mhd_loop_completed, &m->ml, MHD_OPTION_NOTIFY_CONNECTION, notify_cb,
	    m, MHD_OPTION_END);
	r = -EIO;
	if (m->d == NULL)
		goto fail;
	r = mhd_loop_start(&m->ml, ev, m->d);
	if (r < 0)
		goto fail;
	/* Last: it takes sock->fd (and closes it when it fails). */
	r = msi_listen_new(ev, cf, sock, conn_cb, m, &m->l);
	if (r < 0)
		goto fail_listen;
	*out = m;
	return 0;
fail:
	if (sock->fd >= 0)
		close(sock->fd);
fail_listen:
	if (m != NULL) {
		mhd_loop_close(&m->ml, m->d);
		uidlimit_free(m->limits);
		free(m);
	}
	return r;
}

void
msi_set_config(struct msi *m, const struct config *cf)
{
	struct uidlimit_cfg lc;

	if (m == NULL)
		return;
	/* Always take the new one: main frees old configs after a while. */
	m->cf = cf;
	limits_of(cf, &lc);
	uidlimit_set_config(m->limits, &lc);
	if (cf->msi_listen == NULL || listen_port(cf) != m->port)
		log_warnx(
		    "msi: [msi] listen changed; restart credd to move the "
		    "endpoint (still on port %u)",
		    m->port);
}

int
msi_report(const struct msi *m, json_t *o, int is_stats)
{
	const struct msi_listen_count n[] = {
		{ "connections_open", m != NULL ? m->nconns : 0 },
		{ "connections_refused", m != NULL ? m->n.refused_conns : 0 },
		{ "requests", m != NULL ? m->n.requests : 0 },
		{ "refused", m != NULL ? m->n.refused : 0 },
		{ "rate_limited", m != NULL ? m->n.rate_limited : 0 },
		{ "uids_tracked", m != NULL ? uidlimit_count(m->limits) : 0 },
	};

	return msi_listen_report_in(m != NULL ? m->l : NULL, m != NULL, o,
	    "sdk_endpoint", is_stats, n, sizeof(n) / sizeof(n[0]));
}

void
msi_free(struct msi *m)
{
	struct msi_conn *mc;
	struct msi_req *r;

	if (m == NULL)
		return;
	m->is_closing = 1;
	msi_listen_free(m->l); /* no new connections from here */
	while ((mc = LIST_FIRST(&m->naming)) != NULL) {
		LIST_REMOVE(mc, nlink);
		userdb_cancel(m->db, mc->name_req);
		close(mc->fd);
		conn_release(m, mc);
	}
	m->nnaming = 0;
	/* MHD cannot stop with suspended connections: answer them first. */
	LIST_FOREACH(r, &m->reqs, link)
	{
		if (r->state != REQ_PARKED)
			continue;
		if (r->w.linked && r->w.cancel != NULL)
			r->w.cancel(&r->w);
		r->w.linked = 0;
		msi_req_wire_error(r, -ECONNREFUSED, "credd is shutting down");
		event_timer_cancel(m->ev, &r->deadline);
		r->state = REQ_READY;
		MHD_resume_connection(r->conn);
	}
	mhd_loop_close(&m->ml, m->d); /* completes (frees) every request, closes
				 * every connection (notify_cb frees its mc) */
	uidlimit_free(m->limits);
	free(m);
}
