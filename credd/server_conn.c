/*
 * server_conn.c - one connection of the Unix socket (server.h): its
 * peer's identity, read once (SO_PEERCRED from accept, SO_PEERGROUPS
 * for admin_group, the uid's name from userdb: the cache, or the
 * resolver thread while its requests wait in its buffer), its per-uid
 * caps and rate limit, line framing (one request answered at a time;
 * a started line must end within LINE_DEADLINE_MS), replies (struct
 * reply: JSON encoded, bytes as they are) and bounded output.
 *
 * Output is bounded three ways (issue 11): a connection whose unsent
 * replies pass OUT_PENDING_MAX is not read from (backpressure: its
 * requests wait in the kernel, on the client's side); a uid whose
 * connections hold [server] max_output_per_uid of unsent replies waits,
 * and its new connections are refused; at max_output in all, every uid
 * holding output waits and the others are served (uidlimit.h). Reply
 * buffers are freed (wiped) as soon as they are sent, so an idle
 * connection holds none. A connection that waits is on s->paused and is
 * looked at again when output is released. Refusals a peer can repeat
 * (caps, the rate limit) are audited through audit_refusal, coalesced.
 *
 * Must never: block on a client (all I/O is non-blocking), keep a reply
 * buffer unwiped (replies carry access tokens), process a second
 * request of a connection while the first is still being answered,
 * refuse to queue a reply it has started to answer (a reply always fits:
 * the caps are checked before a request is taken, not when it is
 * answered), or believe anything a client says about itself.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "entra/proto.h"
#include "entra/secret.h"

#include "audit.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "server_conn.h"
#include "server_int.h"
#include "uidlimit.h"
#include "userdb.h"

/* Stop taking requests of a connection while this much is unsent; one
 * reply (up to PROTO_LINE_MAX) is always queued whole. */
#define OUT_PENDING_MAX (16 * 1024)
#define OUT_CHUNK 4096 /* reply buffers grow in these steps */
/* Requested SO_SNDBUF of a connection; the kernel doubles it, so a peer
 * that does not read pins ~32 KiB of kernel memory (its default would be
 * net.core.wmem_default, ~208 KiB), credd's own buffer takes the rest. */
#define CONN_SNDBUF (16 * 1024)
#define RESUME_DELAY_MS 10 /* paused connections: looked at again after */
#define IN_INITIAL 1024	   /* input buffer grows to PROTO_LINE_MAX on demand */
#define LINE_DEADLINE_MS                                                       \
	10000 /* a started line must end within this (slowloris) */
#define GROUPS_MAX 1024

struct conn {
	struct server *s;
	int fd;
	struct caller caller;
	struct uidlimit_entry *us;
	struct userdb_req *name_req; /* uid -> name lookup in flight */
	char *in;		     /* requests only: no secrets, not wiped */
	size_t inlen, incap;	     /* incap grows up to PROTO_LINE_MAX */
	int64_t line_start; /* when the pending partial line began, or 0 */
	char *out;
	size_t outlen, outoff, outcap;
	struct waiter w;
	enum proto_op op;  /* of the request being answered (metrics) */
	uint64_t start_us; /* when its line was read (metrics_now_us) */
	int is_paused;	   /* on s->paused: may not take requests now */
	LIST_ENTRY(conn) plink;
	int busy;    /* a request is being answered */
	int closing; /* close once the output is flushed */
	int in_process;
	int eof; /* the peer shut its writing side */
	int64_t last_active;
	struct event_timer *idle;
	LIST_ENTRY(conn) link;
};

static void conn_close(struct conn *c);
static void conn_process(struct conn *c);
static int in_has_line(const struct conn *c);
static int conn_flush(struct conn *c);
static void conn_reply(struct waiter *w, struct reply *rep);

/* Free what the caller's identity owns. */
static void
caller_clear(struct caller *c)
{
	free(c->user);
	free(c->cgroup);
	free(c->session);
	c->user = c->cgroup = c->session = NULL;
}

static int
peer_is_admin(struct server *s, int fd, uid_t uid, gid_t gid)
{
	gid_t stack[GROUPS_MAX], *groups = stack;
	socklen_t len = sizeof(stack);
	size_t i, n;
	int is_admin = 0;

	if (uid == 0)
		return 1;
	if (!s->has_admin_gid)
		return 0;
	if (gid == s->admin_gid)
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		/* ERANGE: more groups than fit; len says how many bytes. */
		if (errno != ERANGE || len <= sizeof(stack) ||
		    (groups = malloc(len)) == NULL)
			return 0;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) <
		    0) {
			free(groups);
			return 0;
		}
	}
	n = len / sizeof(gid_t);
	for (i = 0; i < n && !is_admin; i++)
		is_admin = groups[i] == s->admin_gid;
	if (groups != stack)
		free(groups);
	return is_admin;
}

static void
idle_cb(struct event_loop *ev, void *arg)
{
	struct conn *c = arg;
	int64_t limit = (int64_t)c->s->cf->idle_timeout * 1000;
	int64_t now = event_now_ms(ev), due;
	/* Whole requests that wait (for their turn, or for output to drain)
	 * are not a slow line; the idle timeout bounds how long they wait.
	 * Nor is a line that came while the one before is answered (a due
	 * time in the past would re-fire this timer until the answer). */
	int is_partial = !c->busy && c->line_start != 0 && !in_has_line(c);

	c->idle = NULL;
	if (is_partial && now - c->line_start >= LINE_DEADLINE_MS) {
		log_debug("uid %u: request line not finished in time; closing",
		    (unsigned)c->caller.uid);
		conn_close(c);
		return;
	}
	if (!c->busy && now - c->last_active >= limit) {
		conn_close(c);
		return;
	}
	/* Lazy re-arm: activity only stamps last_active. */
	due = (c->busy ? now : c->last_active) + limit;
	if (is_partial && c->line_start + LINE_DEADLINE_MS < due)
		due = c->line_start + LINE_DEADLINE_MS;
	c->idle = event_timer_at(ev, due, idle_cb, c);
}

/* Account n more (or fewer) queued reply bytes to c's uid and the listener. */
static void
out_charge(struct conn *c, size_t n, int is_release)
{
	struct server *s = c->s;
	size_t total;

	if (is_release)
		uidlimit_out_sub(s->limits, c->us, n);
	else
		uidlimit_out_add(s->limits, c->us, n);
	total = uidlimit_out_total(s->limits);
	s->stats.output_bytes = total;
	if (total > s->stats.output_bytes_peak)
		s->stats.output_bytes_peak = total;
	if (is_release)
		server_conn_resume_soon(s);
}

/*
 * Wipe and free the reply buffer: sent, or nobody will read it. Only
 * [0, outlen) was ever written (out_append keeps what lies beyond clean).
 */
static void
out_free(struct conn *c)
{
	if (c->out == NULL)
		return;
	secret_wipe(c->out, c->outlen);
	free(c->out);
	out_charge(c, c->outcap, 1);
	c->out = NULL;
	c->outcap = c->outlen = c->outoff = 0;
}

static int
out_append(struct conn *c, const char *p, size_t len)
{
	size_t pending = c->outlen - c->outoff, need, ncap;
	char *n;

	if (c->outoff > 0) {
		/* The sent prefix is dead: move the rest down, wipe the tail. */
		memmove(c->out, c->out + c->outoff, pending);
		secret_wipe(c->out + pending, c->outlen - pending);
		c->outoff = 0;
		c->outlen = pending;
	}
	need = pending + len;
	if (need > c->outcap) {
		/* Sized to fit, not doubled: a connection queues a few replies
		 * at most (OUT_PENDING_MAX), and every byte here is counted. */
		ncap = (need + OUT_CHUNK - 1) / OUT_CHUNK * OUT_CHUNK;
		n = malloc(ncap);
		if (n == NULL)
			return -ENOMEM;
		if (c->out != NULL) {
			memcpy(n, c->out, c->outlen);
			secret_wipe(c->out, c->outlen);
			free(c->out);
		}
		out_charge(c, ncap - c->outcap, 0);
		c->out = n;
		c->outcap = ncap;
	}
	memcpy(c->out + c->outlen, p, len);
	c->outlen += len;
	return 0;
}

/*
 * Send line[0..len) now, as far as the kernel takes it without waiting:
 * the bytes sent. A peer that is gone sets c->closing.
 */
static size_t
out_direct(struct conn *c, const char *line, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(c->fd, line + off, len - off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->closing = 1; /* the peer is gone */
			break;
		}
		off += (size_t)n;
	}
	return off;
}

/*
 * Send rep (emptied): bytes as they are, JSON encoded as one line; an
 * empty reply (nothing could be built) is answered "internal" from
 * static memory. When nothing is queued before it, the reply goes
 * straight from its own bytes to the kernel (a cached token's line is
 * never copied), and only what the kernel does not take is queued. A
 * reply that cannot be encoded or queued closes c.
 */
static unsigned
conn_send(struct conn *c, struct reply *rep)
{
	const char *line;
	char *enc = NULL;
	size_t len, off = 0;
	unsigned outcome = 0; /* ok: pre-built bytes are a token's answer */

	if (rep->bytes != NULL) {
		line = rep->bytes;
		len = rep->len;
	} else if (rep->json != NULL) {
		line = enc = proto_encode(rep->json, &len);
		if (!json_is_true(json_object_get(rep->json, "ok")))
			outcome =
			    metrics_outcome_of(proto_response_error(rep->json));
	} else {
		line = errmap_nomem_line(&len);
		outcome = metrics_outcome_of("internal");
	}
	c->s->stats.replies[c->op][outcome]++;
	if (line != NULL && c->outoff == c->outlen)
		off = out_direct(c, line, len);
	if (line == NULL ||
	    (off < len && !c->closing &&
		out_append(c, line + off, len - off) < 0)) {
		log_warnx("uid %u: cannot encode or queue a reply",
		    (unsigned)c->caller.uid);
		c->closing = 1;
	}
	secret_wipe_str(enc);
	reply_clear(rep);
	return outcome;
}

/* Queue resp (taken; NULL, a builder's failure, answers "internal"). */
static void
conn_send_json(struct conn *c, json_t *resp)
{
	struct reply rep = { 0 };

	(void)reply_set_json(&rep, resp); /* NULL: empty, "internal" */
	(void)conn_send(c, &rep);
}

/*
 * May c take another request now? Not while its own unsent replies pass
 * OUT_PENDING_MAX, nor while its uid may not queue more output (uidlimit).
 */
static int
conn_may_take(const struct conn *c)
{
	if (c->outlen - c->outoff >= OUT_PENDING_MAX)
		return 0;
	return uidlimit_out_ok(c->s->limits, c->us);
}

static void
conn_pause(struct conn *c)
{
	if (c->is_paused)
		return;
	c->is_paused = 1;
	LIST_INSERT_HEAD(&c->s->paused, c, plink);
	c->s->stats.output_stalls++;
}

static void
conn_unpause(struct conn *c)
{
	if (!c->is_paused)
		return;
	LIST_REMOVE(c, plink);
	c->is_paused = 0;
}

static int
in_has_line(const struct conn *c)
{
	return c->inlen > 0 && memchr(c->in, '\n', c->inlen) != NULL;
}

/*
 * Read only while c may take requests, and only while its buffer has
 * room or no whole request waits in it (a burst of small requests is
 * answered before more is read: input stays at IN_INITIAL, and the
 * rest of a flood waits in the kernel, charged to its sender).
 */
static void
conn_update_events(struct conn *c)
{
	uint32_t evs = 0;
	int is_ok = conn_may_take(c);

	if (!c->closing && !c->eof && c->inlen < PROTO_LINE_MAX && is_ok &&
	    !(c->inlen == c->incap && in_has_line(c)))
		evs |= EPOLLIN;
	if (c->outoff < c->outlen)
		evs |= EPOLLOUT;
	if (!c->closing && !is_ok)
		conn_pause(c);
	else
		conn_unpause(c);
	(void)event_mod(c->s->ev, c->fd, evs);
}

/* Send what the kernel takes; free the buffer once all is sent. */
static void
out_send(struct conn *c)
{
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			c->closing = 1; /* the peer is gone */
			break;
		}
		c->outoff += (size_t)n;
	}
	out_free(c);
}

/* Write what is queued. Returns 1 if the connection was closed. */
static int
conn_flush(struct conn *c)
{
	out_send(c);
	if (c->closing && c->outoff == c->outlen) {
		conn_close(c);
		return 1;
	}
	conn_update_events(c);
	return 0;
}

/* A refusal a peer can repeat at will: audited, coalesced per (uid, reason). */
static void
audit_refused(struct server *s, const char *event, uid_t uid, const char *user,
    const char *reason)
{
	struct audit_event ev = {
		.event = event,
		.uid = uid,
		.user = user,
		.outcome = "refused",
		.reason = reason,
	};

	audit_refusal(&ev, event_now_ms(s->ev));
}

/* Handle one complete line; returns 1 if the request was parked. */
static int
conn_handle_line(struct conn *c, const char *line, size_t len)
{
	struct server *s = c->s;
	struct proto_request req;
	struct reply rep = { 0 };
	const char *code = NULL, *msg = NULL;
	json_t *resp;
	int r, bad = 0;

	s->stats.requests++;
	c->op = PROTO_OP_NONE;
	c->start_us = metrics_now_us();
	if (c->us != NULL && !uidlimit_allow(s->limits, c->us)) {
		s->stats.rate_limited++;
		audit_refused(s, "request_refused", c->caller.uid,
		    c->caller.user, "rate limit ([limits] requests_per_sec)");
		resp = errmap_error(-EBUSY,
		    "too many requests from this user; slow down");
		reply_put(proto_error_obj(resp), "retry_after", json_integer(1),
		    &bad);
		if (bad) {
			json_decref(resp);
			resp = NULL; /* answered "internal" */
		}
		conn_send_json(c, resp);
		return 0;
	}
	r = proto_request_decode(line, len, &req, &code, &msg);
	if (r < 0) {
		s->stats.bad_requests++;
		/* The decoder's own message, without errmap_error's cause. */
		resp = proto_error(errmap_code(r), msg);
		if (r == -EPROTONOSUPPORT)
			reply_put(proto_error_obj(resp), "versions",
			    proto_versions(), &bad);
		if (bad) {
			json_decref(resp);
			resp = NULL; /* answered "internal" */
		}
		log_debug("uid %u: refused request: %s",
		    (unsigned)c->caller.uid, msg);
		conn_send_json(c, resp);
		return 0;
	}
	c->op = req.op;
	memset(&c->w, 0, sizeof(c->w));
	c->w.reply = conn_reply;
	c->w.caller = &c->caller;
	c->w.op = req.op;
	c->busy = 1;
	r = s->cb(s->cbarg, &c->w, &req, &rep);
	proto_request_clear(&req);
	if (r == WAITER_PARKED) {
		reply_clear(&rep); /* nothing, by contract */
		return c->busy;	   /* parked (or already completed) */
	}
	c->busy = 0;
	c->w.hook = NULL;
	waiter_release(&c->w);
	if (r < 0)
		(void)errmap_reply(&rep, r, NULL); /* empty: "internal" */
	if (conn_send(c, &rep) == 0 && c->op == PROTO_OP_TOKEN)
		metrics_hist_observe(&s->stats.cached_latency,
		    metrics_now_us() - c->start_us);
	return 0;
}

static void
conn_process(struct conn *c)
{
	char *nl;
	size_t len;

	if (c->in_process)
		return;
	c->in_process = 1;
	while (!c->busy && !c->closing && c->name_req == NULL && c->inlen > 0) {
		if (!conn_may_take(c)) {
			out_send(c); /* the kernel may take it now */
			if (c->closing || !conn_may_take(c))
				break; /* paused by conn_update_events below */
		}
		nl = memchr(c->in, '\n', c->inlen);
		if (nl == NULL) {
			if (c->inlen >= PROTO_LINE_MAX) {
				c->s->stats.bad_requests++;
				conn_send_json(c,
				    errmap_error(-EMSGSIZE,
					"request line exceeds 65536 bytes"));
				c->closing = 1;
				c->inlen = 0;
			}
			break;
		}
		len = (size_t)(nl - c->in);
		(void)conn_handle_line(c, c->in, len);
		memmove(c->in, nl + 1, c->inlen - len - 1);
		c->inlen -= len + 1;
		/* What is left, if anything, is a new line starting now. */
		c->line_start = c->inlen > 0 ? event_now_ms(c->s->ev) : 0;
	}
	if (c->inlen == 0 && c->incap > 4 * IN_INITIAL) {
		/* One large request must not pin 64 KiB per idle connection. */
		char *n = realloc(c->in, IN_INITIAL);

		if (n != NULL) {
			c->in = n;
			c->incap = IN_INITIAL;
		}
	}
	/* Half-closed and nothing left to answer: close after the flush. */
	if (c->eof && !c->busy && memchr(c->in, '\n', c->inlen) == NULL)
		c->closing = 1;
	c->in_process = 0;
	(void)conn_flush(c); /* may close c */
}

static void
conn_read_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct conn *c = arg;
	size_t room;
	char *nb;
	ssize_t n;

	if ((revents & EPOLLOUT) && conn_flush(c))
		return;
	if (revents & (EPOLLHUP | EPOLLERR)) {
		/* Both directions are shut: nobody can read a reply. */
		conn_close(c);
		return;
	}
	if (!(revents & EPOLLIN)) {
		/* Output drained below the bound: answer what waits. */
		if (!c->busy && in_has_line(c) && conn_may_take(c))
			conn_process(c);
		return;
	}
	while (!c->eof && c->inlen < PROTO_LINE_MAX) {
		if (c->inlen == c->incap) {
			size_t ncap;

			if (in_has_line(c))
				break; /* answer what waits, then read */
			ncap = c->incap * 2 < PROTO_LINE_MAX ? c->incap * 2 :
							       PROTO_LINE_MAX;
			nb = realloc(c->in, ncap);

			if (nb == NULL) {
				conn_close(c);
				return;
			}
			c->in = nb;
			c->incap = ncap;
		}
		room = c->incap - c->inlen;
		n = recv(fd, c->in + c->inlen, room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			conn_close(c);
			return;
		}
		if (n == 0) {
			c->eof = 1; /* answer what was sent, then close */
			break;
		}
		c->inlen += (size_t)n;
		/* A short read emptied the socket: no second recv for EAGAIN
		 * (the loop is level-triggered; more data wakes us again). */
		if ((size_t)n < room)
			break;
	}
	c->last_active = event_now_ms(ev);
	if (c->inlen > 0 && c->line_start == 0) {
		int64_t due = c->last_active + LINE_DEADLINE_MS;

		c->line_start = c->last_active;
		/* The timer is lazy (idle_cb re-arms): move it only when it
		 * would fire after this line's deadline, not per request. */
		if (c->idle == NULL || event_timer_due(c->idle) > due) {
			event_timer_cancel(ev, &c->idle);
			c->idle = event_timer_at(ev, due, idle_cb, c);
		}
	}
	conn_process(c);
}

/* Refuse fd at accept: the peer sees the connection closed unanswered. */
void
server_conn_refuse(struct server *s, int fd, uid_t uid, const char *reason)
{
	s->stats.refused_conns++;
	audit_refused(s, "connection_refused", uid, NULL, reason);
	close(fd);
}

/* The uid's name came back from the resolver thread: run what waited. */
static void
name_cb(void *arg, int result, uid_t uid, gid_t gid, const char *name)
{
	struct conn *c = arg;

	(void)uid;
	(void)gid;
	c->name_req = NULL;
	if (result == 0 && (c->caller.user = strdup(name)) == NULL)
		result = -ENOMEM;
	if (result < 0 && result != -ENOENT) {
		log_warnx("uid %u: cannot look up the user name: %s",
		    (unsigned)c->caller.uid, strerror(-result));
		c->caller.user_err = result;
	}
	conn_process(c); /* the lines that arrived meanwhile */
}

/*
 * c's login name: from the cache when it is fresh, otherwise looked up
 * on the resolver thread (requests wait in c's buffer meanwhile: a slow
 * directory delays this connection only). 0 or -ENOMEM.
 */
static int
conn_name(struct conn *c)
{
	struct server *s = c->s;
	char name[USERDB_NAME_MAX];

	if (s->db == NULL)
		return 0;
	if (userdb_cached_name(s->db, c->caller.uid, name, sizeof(name)) == 0) {
		c->caller.user = strdup(name);
		return c->caller.user != NULL ? 0 : -ENOMEM;
	}
	c->name_req = userdb_lookup_uid(s->db, c->caller.uid, name_cb, c);
	return c->name_req != NULL ? 0 : -ENOMEM;
}

void
server_conn_open(struct server *s, int fd, const struct ucred *cred)
{
	struct conn *c;
	int r, sndbuf = CONN_SNDBUF;

	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->in = malloc(IN_INITIAL)) == NULL) {
		free(c);
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->incap = IN_INITIAL;
	c->caller.uid = cred->uid;
	c->caller.gid = cred->gid;
	c->caller.pid = cred->pid;
	c->caller.is_root = cred->uid == 0;
	c->caller.kind = -1;
	/* Who it is (a bound cgroup's user), before the caps that key on it. */
	if (s->identify != NULL &&
	    s->identify(s->identify_arg, fd, &c->caller) < 0) {
		caller_clear(&c->caller);
		free(c->in);
		free(c);
		server_conn_refuse(s, fd, cred->uid, "out of memory");
		return;
	}
	r = uidlimit_open(s->limits, c->caller.uid, &c->us);
	if (r < 0) {
		caller_clear(&c->caller);
		free(c->in);
		free(c);
		server_conn_refuse(s, fd, cred->uid,
		    r == -EUSERS ?
			"max_conns_per_uid" :
			r == -ENOBUFS ?
			"unsent output over max_output_per_uid/max_output" :
			"out of memory");
		return;
	}
	/* What a peer that does not read can pin in the kernel. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (c->caller.user == NULL && conn_name(c) < 0) {
		uidlimit_close(s->limits, c->us);
		caller_clear(&c->caller);
		free(c->in);
		free(c);
		close(fd);
		return;
	}
	c->caller.is_admin = peer_is_admin(s, fd, cred->uid, cred->gid);
	c->last_active = event_now_ms(s->ev);
	if (event_add(s->ev, fd, EPOLLIN, conn_read_cb, c) < 0) {
		uidlimit_close(s->limits, c->us);
		if (s->db != NULL)
			userdb_cancel(s->db, c->name_req);
		caller_clear(&c->caller);
		free(c->in);
		free(c);
		close(fd);
		return;
	}
	c->idle = event_timer_in(s->ev, (int64_t)s->cf->idle_timeout * 1000,
	    idle_cb, c);
	LIST_INSERT_HEAD(&s->conns, c, link);
	s->stats.connections++;
	s->stats.open++;
}

static void
conn_close(struct conn *c)
{
	struct server *s = c->s;

	if (c->w.linked && c->w.cancel != NULL)
		c->w.cancel(&c->w);
	if (c->busy && c->w.abandon != NULL)
		c->w.abandon(&c->w); /* its reply will never be read */
	waiter_release(&c->w);
	event_timer_cancel(s->ev, &c->idle);
	event_del(s->ev, c->fd);
	close(c->fd);
	LIST_REMOVE(c, link);
	if (s->db != NULL)
		userdb_cancel(s->db, c->name_req);
	conn_unpause(c);
	out_free(c); /* releases its share of the caps (resume_soon) */
	uidlimit_close(s->limits, c->us);
	s->stats.open--;
	free(c->in);
	caller_clear(&c->caller);
	free(c);
	if (s->accept_timer != NULL)
		server_accept_resume(s); /* a descriptor is free again */
}

static void
conn_reply(struct waiter *w, struct reply *rep)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, w));

	waiter_release(w);
	c->busy = 0;
	(void)conn_send(c, rep);
	if (c->in_process)
		return;	 /* the caller's loop sends and goes on */
	conn_process(c); /* sends, then handles the next buffered line */
}

/*
 * Look at the paused connections again: each that may take requests
 * now is processed (and paused again by conn_update_events if it must).
 * They are moved to a list of their own first, since processing one may
 * close others (a reply completes other waiters).
 */
static void
resume_cb(struct event_loop *ev, void *arg)
{
	struct server *s = arg;
	LIST_HEAD(, conn) todo = LIST_HEAD_INITIALIZER(todo);
	struct conn *c;

	(void)ev;
	s->resume = NULL;
	while ((c = LIST_FIRST(&s->paused)) != NULL) {
		LIST_REMOVE(c, plink);
		LIST_INSERT_HEAD(&todo, c, plink); /* still is_paused */
	}
	while ((c = LIST_FIRST(&todo)) != NULL) {
		LIST_REMOVE(c, plink);
		if (conn_may_take(c)) {
			c->is_paused = 0;
			conn_process(c); /* may close c */
		} else
			LIST_INSERT_HEAD(&s->paused, c,
			    plink); /* still waits */
	}
}

/*
 * Output was released (or the caps changed): soon, see whether paused
 * connections may go on. A timer, so a release deep in a callback never
 * re-enters request processing; one pass per RESUME_DELAY_MS at most,
 * O(paused connections).
 */
void
server_conn_resume_soon(struct server *s)
{
	if (LIST_EMPTY(&s->paused) || s->resume != NULL)
		return;
	s->resume = event_timer_in(s->ev, RESUME_DELAY_MS, resume_cb, s);
}

void
server_conn_close_all(struct server *s)
{
	while (!LIST_EMPTY(&s->conns))
		conn_close(LIST_FIRST(&s->conns));
}
