/*
 * bench_socket.c - the socket benchmark: an echo server built from
 * credd's own server (credd/server.c on credd/event.c: listen, accept,
 * SO_PEERCRED, line framing, the lib/proto.c request decoder,
 * non-blocking replies) and a closed-loop load client. The floor both
 * are measured against is bench_floor.c (no credd code at all).
 *
 *   bench_socket echo --socket PATH --reply-bytes N [--duration S]
 *	Serve every request with a canned token-shaped reply of N bytes
 *	(newline included), a line built once and shared as credd serves
 *	a cached token (reply_set_line). Only the broker (dispatch, cache,
 *	token reply) is missing compared with credd, so credd / echo is
 *	the cost of the broker itself, and echo / floor that of the
 *	server code.
 *   bench_socket load --socket PATH --request LINE [--conns C]
 *	[--inflight I] [--duration S] [--warmup S] [--uid-first U]
 *	[--uids K]
 *	[--uid-stride S]
 *	C persistent connections (connection i made as uid
 *	U + (i * S) % K when run as root, so a few connections can sample
 *	many users), I requests in flight, after one priming request per
 *	connection; prints one JSON line with
 *	requests/s, p50, p99, p99.9 and max latency (microseconds).
 *   bench_socket sweep --socket PATH --request LINE --count N
 *	[--inflight I] [--uid-first U] [--uids K] [--timeout S]
 *	N requests, each on a new connection (as uid U + i % K), at most I
 *	at once; the same JSON line. With I = N it is a burst of N
 *	concurrent waiters.
 *   bench_socket smoke
 *	Start the echo floor in a child and run the client for a second
 *	(CTest; checks that replies come back, never timing).
 *
 * Must never: put timing into a pass/fail decision, run without a time
 * or count bound, or talk to anything but a Unix socket. Uids are
 * switched with setresuid(-1, uid, -1) around connect() only, because
 * SO_PEERCRED records the effective uid at connect.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "entra/proto.h"

#include "config.h"
#include "event.h"
#include "log.h"
#include "reply.h"
#include "server.h"

#define BENCH_SAMPLES_MAX (8u * 1024 * 1024) /* latency samples kept */
#define BENCH_REPLY_MAX 65536
#define BENCH_CONNS_MAX 20000

struct opts {
	const char *socket;
	const char *request;
	long reply_bytes;
	long conns, inflight, count, uids, stride;
	long uid_first; /* -1: do not switch uid */
	double duration, warmup, timeout;
};

struct bconn {
	int fd;
	int busy;
	int64_t sent_ns;
	size_t inlen;
	char *in;
};

struct stats {
	uint64_t *lat_ns;
	size_t nlat;
	uint64_t ok, errors, io_errors;
	char first_error[160];
};

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
	    "usage: bench_socket echo --socket PATH --reply-bytes N [--duration S]\n"
	    "       bench_socket load --socket PATH --request LINE [--conns C] [--inflight I]\n"
	    "                    [--duration S] [--warmup S] [--uid-first U] [--uids K]\n"
	    "                    [--uid-stride S]\n"
	    "       bench_socket sweep --socket PATH --request LINE --count N [--inflight I]\n"
	    "                    [--uid-first U] [--uids K] [--timeout S]\n"
	    "       bench_socket smoke\n");
	exit(2);
}

static void
parse_opts(int argc, char **argv, struct opts *o)
{
	int i;

	*o = (struct opts){ .reply_bytes = 1400,
		.conns = 1,
		.inflight = 0,
		.count = 1,
		.uids = 1,
		.stride = 1,
		.uid_first = -1,
		.duration = 3.0,
		.warmup = 0.5,
		.timeout = 60.0 };
	for (i = 0; i < argc; i += 2) { /* --key value pairs */
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(k, "--socket") == 0)
			o->socket = v;
		else if (strcmp(k, "--request") == 0)
			o->request = v;
		else if (strcmp(k, "--reply-bytes") == 0)
			o->reply_bytes = atol(v);
		else if (strcmp(k, "--conns") == 0)
			o->conns = atol(v);
		else if (strcmp(k, "--inflight") == 0)
			o->inflight = atol(v);
		else if (strcmp(k, "--count") == 0)
			o->count = atol(v);
		else if (strcmp(k, "--uids") == 0)
			o->uids = atol(v);
		else if (strcmp(k, "--uid-stride") == 0)
			o->stride = atol(v);
		else if (strcmp(k, "--uid-first") == 0)
			o->uid_first = atol(v);
		else if (strcmp(k, "--duration") == 0)
			o->duration = atof(v);
		else if (strcmp(k, "--warmup") == 0)
			o->warmup = atof(v);
		else if (strcmp(k, "--timeout") == 0)
			o->timeout = atof(v);
		else
			usage();
	}
	if (o->socket == NULL || o->conns < 1 || o->conns > BENCH_CONNS_MAX ||
	    o->uids < 1 || o->stride < 1 || o->count < 1 || o->duration <= 0 ||
	    o->duration > 600 || o->timeout <= 0 || o->timeout > 1800 ||
	    o->warmup < 0 || o->warmup > 60 || o->inflight > BENCH_CONNS_MAX)
		usage();
}

/* load: at most one request in flight per connection. */
static void
clamp_inflight(struct opts *o)
{
	if (o->inflight <= 0 || o->inflight > o->conns)
		o->inflight = o->conns;
}

/* ---- echo: credd's server.c with a canned reply ---- */

static struct reply_line *canned;

static int
echo_cb(void *arg, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	(void)arg;
	(void)w;
	(void)req;
	/* a line built once, shared, as credd serves a cached token */
	return reply_set_line(out, canned);
}

static void
echo_stop_cb(struct event_loop *ev, void *arg)
{
	(void)arg;
	event_stop(ev);
}

static const char echo_conf[] =
    "[entra]\n"
    "authority = https://127.0.0.1:1\n"
    "tenant = 72f988bf-86f1-41af-91ab-2d7cd011db47\n"
    "client_id = 04b07795-8ddb-461a-bbee-02f9e1bf7b46\n"
    "[scopes]\n"
    "storage = https://storage.azure.com/.default\n"
    "default = storage\n"
    "[server]\n"
    "max_conns_per_uid = 20000\n"
    "[limits]\n"
    "requests_per_sec = 1000000\n"
    "request_burst = 1000000\n";

/* A reply shaped like credd's token reply, padded to total bytes. */
static json_t *
make_canned_json(long total)
{
	json_t *o;
	char *tok, *enc;
	size_t base, len;

	o = json_pack("{s:b, s:s, s:s, s:I, s:s, s:s}", "ok", 1, "access_token",
	    "", "token_type", "Bearer", "expires_on", (json_int_t)1900000000,
	    "scope", "https://storage.azure.com/.default", "account",
	    "bench@contoso.com");
	if (o == NULL)
		return NULL;
	enc = json_dumps(o, JSON_COMPACT);
	base = enc != NULL ? strlen(enc) + 1 : 0; /* + newline */
	free(enc);
	len = total > (long)base ? (size_t)total - base : 1;
	if (len >= BENCH_REPLY_MAX)
		len = BENCH_REPLY_MAX - 1;
	tok = malloc(len + 1);
	if (tok == NULL) {
		json_decref(o);
		return NULL;
	}
	memset(tok, 'A', len);
	tok[len] = '\0';
	json_object_set_new(o, "access_token", json_string(tok));
	free(tok);
	return o;
}

/* That reply as one protocol line (proto_encode's bytes), shared. */
static struct reply_line *
make_canned(long total)
{
	json_t *o = make_canned_json(total);
	struct reply_line *l = NULL;
	char *enc;
	size_t len;

	enc = o != NULL ? proto_encode(o, &len) : NULL;
	if (enc != NULL && (l = reply_line_new(len)) != NULL) {
		memcpy(l->bytes, enc, len);
		l->len = len;
	}
	free(enc);
	json_decref(o);
	return l;
}

static int
run_echo(const struct opts *o, int ready_fd)
{
	struct config *cf = NULL;
	struct event_loop *ev;
	struct server *srv = NULL;
	char err[512];
	int lfd = -1, r;

	log_init("bench_socket", 1, 0);
	signal(SIGPIPE, SIG_IGN);
	r = config_parse("bench-echo.conf", echo_conf, sizeof(echo_conf) - 1,
	    &cf, err, sizeof(err));
	if (r < 0)
		fatalx("echo config: %s", err);
	canned = make_canned(o->reply_bytes);
	if (canned == NULL)
		fatalx("out of memory");
	r = server_listen(o->socket, geteuid(), &lfd, err, sizeof(err));
	if (r < 0)
		fatalx("%s", err);
	ev = event_new();
	if (ev == NULL)
		fatal("event_new");
	r = server_new(ev, lfd, cf, NULL, echo_cb, NULL, &srv);
	if (r < 0)
		fatalx("server_new: %s", strerror(-r));
	if (event_timer_in(ev, (int64_t)(o->duration * 1000), echo_stop_cb,
		NULL) == NULL)
		fatal("timer");
	if (ready_fd >= 0) {
		if (write(ready_fd, "R", 1) != 1)
			fatal("ready pipe");
		close(ready_fd);
	}
	r = event_run(ev);
	server_free(srv);
	event_free(ev);
	(void)unlink(o->socket);
	reply_line_unref(canned);
	config_free(cf);
	return r < 0 ? 1 : 0;
}

/* ---- load client ---- */

static int
connect_as(const char *path, long uid)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, r, saved;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (uid >= 0 && setresuid((uid_t)-1, (uid_t)uid, (uid_t)-1) < 0) {
		saved = -errno;
		close(fd);
		return saved;
	}
	for (;;) {
		r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
		if (r == 0 || errno != EAGAIN)
			break;
		usleep(1000); /* full backlog: retry (bounded by the caller) */
	}
	saved = r < 0 ? -errno : 0;
	if (uid >= 0 && setresuid((uid_t)-1, 0, (uid_t)-1) < 0) {
		perror("setresuid back to 0");
		exit(1);
	}
	if (saved < 0) {
		close(fd);
		return saved;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static long
uid_for(const struct opts *o, long i)
{
	if (o->uid_first < 0)
		return -1;
	return o->uid_first + (i * o->stride) % o->uids;
}

static int
send_req(struct bconn *c, const char *line, size_t len)
{
	size_t off = 0;
	ssize_t n;

	c->sent_ns = now_ns();
	while (off < len) {
		n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno; /* a 100-byte line never fills the buffer */
		off += (size_t)n;
	}
	c->busy = 1;
	return 0;
}

/*
 * Read what is there: 0 not yet, 1 an ok reply, 2 an error reply (the
 * first one is kept in err for the report), <0 an I/O error.
 */
static int
recv_reply(struct bconn *c, char *err, size_t errsz)
{
	ssize_t n;
	char *nl;

	for (;;) {
		n = recv(c->fd, c->in + c->inlen, BENCH_REPLY_MAX - c->inlen,
		    0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -ECONNRESET;
		c->inlen += (size_t)n;
		nl = memchr(c->in, '\n', c->inlen);
		if (nl != NULL) {
			*nl = '\0';
			c->inlen =
			    0; /* one reply per request: nothing follows */
			if (strstr(c->in, "\"ok\":true") != NULL)
				return 1;
			if (err[0] == '\0') /* error replies carry no token */
				snprintf(err, errsz, "%.150s", c->in);
			return 2;
		}
		if (c->inlen == BENCH_REPLY_MAX)
			return -EMSGSIZE;
	}
}

/* Count a reply; its latency too when it falls in the measured window. */
static void
account(struct stats *st, int r, int measured, uint64_t ns)
{
	if (!measured)
		return;
	if (r == 1)
		st->ok++;
	else
		st->errors++;
	if (st->nlat < BENCH_SAMPLES_MAX)
		st->lat_ns[st->nlat++] = ns;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_us(const struct stats *st, double p)
{
	size_t i;

	if (st->nlat == 0)
		return 0.0;
	i = (size_t)(p * (double)(st->nlat - 1) + 0.5);
	return (double)st->lat_ns[i] / 1000.0;
}

static void
print_json(const char *mode, const struct opts *o, struct stats *st,
    double secs)
{
	qsort(st->lat_ns, st->nlat, sizeof(st->lat_ns[0]), cmp_u64);
	printf(
	    "{\"mode\":\"%s\",\"conns\":%ld,\"inflight\":%ld,\"requests\":%zu,"
	    "\"ok\":%llu,\"errors\":%llu,\"io_errors\":%llu,\"seconds\":%.3f,"
	    "\"rps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
	    "\"max_us\":%.1f,\"first_error\":",
	    mode, o->conns, o->inflight, st->nlat, (unsigned long long)st->ok,
	    (unsigned long long)st->errors, (unsigned long long)st->io_errors,
	    secs, secs > 0 ? (double)st->nlat / secs : 0.0, pct_us(st, 0.50),
	    pct_us(st, 0.99), pct_us(st, 0.999),
	    st->nlat ? (double)st->lat_ns[st->nlat - 1] / 1000.0 : 0.0);
	{
		json_t *s = json_string(st->first_error);
		char *e = s != NULL ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

		printf("%s}\n", e != NULL ? e : "\"\"");
		free(e);
		json_decref(s);
	}
	fflush(stdout);
}

static struct bconn *
conns_new(size_t n)
{
	struct bconn *cs = calloc(n, sizeof(*cs));
	size_t i;

	if (cs == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		cs[i].fd = -1;
		cs[i].in = malloc(BENCH_REPLY_MAX);
		if (cs[i].in == NULL)
			return NULL; /* exits right after; no cleanup */
	}
	return cs;
}

static void
conns_free(struct bconn *cs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (cs[i].fd >= 0)
			close(cs[i].fd);
		free(cs[i].in);
	}
	free(cs);
}

/* Send on every connection and wait for every reply (at most 120 s). */
static int
prime(int ep, struct bconn *cs, size_t n, const char *line, size_t len,
    struct stats *st)
{
	struct epoll_event evs[256];
	int64_t deadline = now_ns() + (int64_t)120 * 1000000000;
	size_t i, left = n;
	int k, m, r;

	for (i = 0; i < n; i++)
		if (send_req(&cs[i], line, len) < 0)
			return -1;
	while (left > 0 && now_ns() < deadline) {
		m = epoll_wait(ep, evs, 256, 100);
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0)
			return -1;
		for (k = 0; k < m; k++) {
			r = recv_reply(&cs[evs[k].data.u64], st->first_error,
			    sizeof(st->first_error));
			if (r < 0)
				return -1;
			if (r > 0) {
				cs[evs[k].data.u64].busy = 0;
				left--;
			}
		}
	}
	if (left > 0)
		fprintf(stderr, "prime: %zu connections never answered\n",
		    left);
	return left > 0 ? -1 : 0;
}

/* Persistent connections, closed loop, fixed duration after a warm-up. */
static int
run_load(const struct opts *o)
{
	struct stats st = { 0 };
	struct epoll_event evs[256];
	struct bconn *cs;
	size_t len = strlen(o->request), i;
	long *idle, nidle = 0, head = 0;
	int64_t t0, t_measure, t_end;
	int ep, n, k, r;

	st.lat_ns = malloc(BENCH_SAMPLES_MAX * sizeof(*st.lat_ns));
	cs = conns_new((size_t)o->conns);
	idle = calloc((size_t)o->conns, sizeof(*idle));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (st.lat_ns == NULL || cs == NULL || idle == NULL || ep < 0) {
		perror("setup");
		return 1;
	}
	for (i = 0; i < (size_t)o->conns; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = i };

		cs[i].fd = connect_as(o->socket, uid_for(o, (long)i));
		if (cs[i].fd < 0) {
			fprintf(stderr, "connect %s: %s\n", o->socket,
			    strerror(-cs[i].fd));
			return 1;
		}
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e) < 0) {
			perror("epoll_ctl");
			return 1;
		}
	}
	/*
	 * Priming round: one request on every connection, all answered,
	 * before the clock starts. connect() returns once the kernel queues
	 * the connection; the server accepts (and resolves the uid) later,
	 * and that start-up backlog is not what we measure.
	 */
	if (prime(ep, cs, (size_t)o->conns, o->request, len, &st) < 0)
		return 1;
	for (i = 0; i < (size_t)o->conns; i++) {
		if ((long)i < o->inflight) {
			if (send_req(&cs[i], o->request, len) < 0)
				st.io_errors++;
		} else
			idle[(head + nidle++) % o->conns] = (long)i;
	}
	t0 = now_ns();
	t_measure = t0 + (int64_t)(o->warmup * 1e9);
	t_end = t_measure + (int64_t)(o->duration * 1e9);
	while (now_ns() < t_end) {
		n = epoll_wait(ep, evs, 256, 100);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("epoll_wait");
			break;
		}
		for (k = 0; k < n; k++) {
			struct bconn *c = &cs[evs[k].data.u64];
			int64_t t;
			long nx;

			r = recv_reply(c, st.first_error,
			    sizeof(st.first_error));
			if (r == 0)
				continue;
			if (r < 0) {
				st.io_errors++;
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
				continue;
			}
			t = now_ns();
			c->busy = 0;
			account(&st, r, c->sent_ns >= t_measure && t <= t_end,
			    (uint64_t)(t - c->sent_ns));
			/* Next request: the longest-idle connection, else this one. */
			if (nidle > 0) {
				nx = idle[head];
				head = (head + 1) % o->conns;
				idle[(head + nidle - 1) % o->conns] =
				    (long)(c - cs);
			} else
				nx = (long)(c - cs);
			if (cs[nx].fd >= 0 &&
			    send_req(&cs[nx], o->request, len) < 0)
				st.io_errors++;
		}
	}
	print_json("load", o, &st, o->duration);
	conns_free(cs, (size_t)o->conns);
	free(idle);
	free(st.lat_ns);
	close(ep);
	return st.io_errors > 0 || st.ok == 0 ? 1 : 0;
}

/* New connection per request; at most inflight at once; count in all. */
static int
run_sweep(const struct opts *o)
{
	struct stats st = { 0 };
	struct epoll_event evs[256];
	struct bconn *cs;
	size_t len = strlen(o->request);
	long started = 0, done = 0, nslots = o->inflight, i;
	int64_t t0, deadline;
	int ep, n, k, r;

	if (nslots > o->count)
		nslots = o->count;
	st.lat_ns = malloc(BENCH_SAMPLES_MAX * sizeof(*st.lat_ns));
	cs = conns_new((size_t)nslots);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (st.lat_ns == NULL || cs == NULL || ep < 0) {
		perror("setup");
		return 1;
	}
	t0 = now_ns();
	deadline = t0 + (int64_t)(o->timeout * 1e9);
	/* Start: connect and send on every slot. */
	for (i = 0; i < nslots; i++) {
		struct epoll_event e = { .events = EPOLLIN,
			.data.u64 = (uint64_t)i };

		cs[i].fd = connect_as(o->socket, uid_for(o, started++));
		if (cs[i].fd < 0 || send_req(&cs[i], o->request, len) < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e) < 0) {
			st.io_errors++;
			done++;
			if (cs[i].fd >= 0)
				close(cs[i].fd);
			cs[i].fd = -1;
		}
	}
	while (done < o->count && now_ns() < deadline) {
		n = epoll_wait(ep, evs, 256, 100);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (k = 0; k < n; k++) {
			long s = (long)evs[k].data.u64;
			struct bconn *c = &cs[s];
			struct epoll_event e = { .events = EPOLLIN,
				.data.u64 = (uint64_t)s };

			r = recv_reply(c, st.first_error,
			    sizeof(st.first_error));
			if (r == 0)
				continue;
			if (r < 0)
				st.io_errors++;
			else
				account(&st, r, 1,
				    (uint64_t)(now_ns() - c->sent_ns));
			done++;
			(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->fd = -1;
			c->inlen = 0;
			while (started < o->count && c->fd < 0) {
				c->fd = connect_as(o->socket,
				    uid_for(o, started++));
				if (c->fd < 0 ||
				    send_req(c, o->request, len) < 0 ||
				    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) <
					0) {
					st.io_errors++;
					done++;
					if (c->fd >= 0)
						close(c->fd);
					c->fd = -1;
				}
			}
		}
	}
	print_json("sweep", o, &st, (double)(now_ns() - t0) / 1e9);
	conns_free(cs, (size_t)nslots);
	free(st.lat_ns);
	close(ep);
	return st.io_errors > 0 || done < o->count ? 1 : 0;
}

/* ---- smoke (CTest): the floor and the client, about a second ---- */

static int
run_smoke(void)
{
	char dir[] = "/tmp/bench-socket-XXXXXX";
	char path[PATH_MAX];
	int p[2], status = 0, rc;
	pid_t srv, cli;
	char c;

	if (mkdtemp(dir) == NULL || pipe(p) < 0) {
		perror("smoke setup");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/echo.sock", dir);
	srv = fork();
	if (srv == 0) {
		struct opts o = { .socket = path,
			.reply_bytes = 1400,
			.duration = 10 };

		close(p[0]);
		_exit(run_echo(&o, p[1]));
	}
	close(p[1]);
	if (srv < 0 || read(p[0], &c, 1) != 1) {
		fprintf(stderr, "smoke: echo server did not start\n");
		return 1;
	}
	close(p[0]);
	cli = fork();
	if (cli == 0) {
		struct opts o = { .socket = path,
			.conns = 4,
			.inflight = 4,
			.duration = 1.0,
			.warmup = 0.1,
			.uids = 1,
			.uid_first = -1,
			.request = "{\"v\":1,\"op\":\"token\"}\n" };

		_exit(run_load(&o));
	}
	rc = cli > 0 && waitpid(cli, &status, 0) == cli && WIFEXITED(status) &&
		WEXITSTATUS(status) == 0 ?
	    0 :
	    1;
	kill(srv, SIGTERM);
	(void)waitpid(srv, NULL, 0);
	(void)unlink(path);
	(void)rmdir(dir);
	fprintf(stderr, "smoke: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o;

	if (argc < 2)
		usage();
	if (strcmp(argv[1], "smoke") == 0)
		return run_smoke();
	parse_opts(argc - 2, argv + 2, &o);
	if (strcmp(argv[1], "echo") == 0)
		return run_echo(&o, -1);
	if (o.request == NULL)
		usage();
	if (strchr(o.request, '\n') == NULL) {
		/* The line as the protocol frames it: with its newline. */
		size_t n = strlen(o.request);
		char *line = malloc(n + 2);

		if (line == NULL)
			return 1;
		memcpy(line, o.request, n);
		memcpy(line + n, "\n", 2);
		o.request = line; /* lives until exit */
	}
	if (o.uid_first >= 0 && geteuid() != 0) {
		fprintf(stderr, "--uid-first needs root\n");
		return 2;
	}
	if (strcmp(argv[1], "load") == 0) {
		clamp_inflight(&o);
		return run_load(&o);
	}
	if (strcmp(argv[1], "sweep") == 0) {
		if (o.inflight <= 0)
			o.inflight = 1;
		o.conns = o.inflight; /* reported as such */
		return run_sweep(&o);
	}
	usage();
	return 2;
}
