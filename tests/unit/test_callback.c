/*
 * test_callback.c - the platform sign-in callback listener
 * (credd/callback.c) on a real loopback socket, with fake ops in place of
 * the broker: each answer's shape and security headers (302 to the
 * link's URL, 404 for a used or unknown link id, signed in, failed,
 * state mismatch and its audit record with the peer address, an error=
 * callback), HEAD changing nothing, malformed and over-long targets, a
 * body, a wrong method, a redemption answered late, inside the call, or
 * never (504 at the request timeout), shutdown with a redemption out, a
 * slow client dropped at the connection timeout, the connection limits
 * (total and per address), a squatted port bound once freed, the report,
 * and the canary: a code planted in callbacks never reaches the log or
 * the audit file.
 *
 * The loop runs in the test's thread; each request is one client thread
 * with blocking sockets (10 s timeouts), and the loop stops when it is
 * done.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <jansson.h>

#include "entra/secret.h"

#include "audit.h"
#include "callback.h"
#include "callback_parse.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "msi_listen.h"
#include "test.h"

#define ID1 "AAAAAAAAAAAAAAAAAAAAAA"
#define ID2 "BBBBBBBBBBBBBBBBBBBBBB"
/* A cluster flow's link id (flowref.h): looked up later (async). */
#define IDC                                                                    \
	"CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC" \
	"CCCCCCCCCCCCCCCCCC"
#define URL "https://login.example/t/oauth2/v2.0/authorize?client_id=c&state=s"
#define CANARY "CANARYc0de-4f1d9a7e"

/* ---- fake ops ---- */

struct fake {
	struct event_loop *ev;
	int links;	/* link calls */
	int ids_used;	/* bit 0: ID1 used */
	int redeems;	/* redeem calls */
	int mode;	/* below */
	char state[64]; /* what the last redeem got */
	char code[64];
	char err[64];
	char desc[128];
	callback_done_cb *cb; /* held (MODE_HOLD) */
	void *cbarg;
	struct event_timer *t;
	int result;
	const char *user, *reason;
	callback_link_cb *lcb; /* an async link's, held until lt fires */
	void *lcbarg;
	struct event_timer *lt;
	int link_hold; /* keep lcb until the test fires it */
	int lrc;       /* what lcb is told */
};

enum {
	MODE_LATER,  /* cb from a timer, 20 ms on */
	MODE_INLINE, /* cb inside redeem */
	MODE_ENOENT, /* redeem returns -ENOENT */
	MODE_HOLD,   /* cb held until the test fires it */
	MODE_EIO     /* redeem fails */
};

static void
fire_link(struct fake *f)
{
	callback_link_cb *cb = f->lcb;

	f->lcb = NULL;
	if (cb != NULL)
		cb(f->lcbarg, f->lrc, f->lrc == 0 ? URL : NULL);
}

static void
fire_link_cb(struct event_loop *ev, void *arg)
{
	struct fake *f = arg;

	(void)ev;
	f->lt = NULL;
	fire_link(f);
}

static int
fake_link(void *ctx, const char *id, char **url, callback_link_cb *cb,
    void *arg)
{
	struct fake *f = ctx;

	f->links++;
	*url = NULL;
	if (strcmp(id, IDC) == 0) {
		/* The store's answer, 20 ms on; single use as well. */
		f->lrc = (f->ids_used & 2) ? -ENOENT : 0;
		f->ids_used |= 2;
		f->lcb = cb;
		f->lcbarg = arg;
		if (!f->link_hold)
			f->lt = event_timer_in(f->ev, 20, fire_link_cb, f);
		return -EINPROGRESS;
	}
	if (strcmp(id, ID1) != 0 || (f->ids_used & 1))
		return -ENOENT;
	f->ids_used |= 1;
	*url = strdup(URL);
	return *url != NULL ? 0 : -ENOMEM;
}

static void
fire(struct fake *f)
{
	callback_done_cb *cb = f->cb;

	f->cb = NULL;
	if (cb != NULL)
		cb(f->cbarg, f->result, f->user, f->reason);
}

static void
fire_cb(struct event_loop *ev, void *arg)
{
	struct fake *f = arg;

	(void)ev;
	f->t = NULL;
	fire(f);
}

static int
fake_redeem(void *ctx, const char *state, const struct secret *code,
    const char *err, const char *err_desc, const char *iss,
    callback_done_cb *cb, void *arg)
{
	struct fake *f = ctx;

	(void)iss;
	f->redeems++;
	(void)snprintf(f->state, sizeof(f->state), "%s", state);
	(void)snprintf(f->code, sizeof(f->code), "%s",
	    code != NULL ? code->ptr : "");
	(void)snprintf(f->err, sizeof(f->err), "%s", err ? err : "");
	(void)snprintf(f->desc, sizeof(f->desc), "%s",
	    err_desc ? err_desc : "");
	if (f->mode == MODE_ENOENT)
		return -ENOENT;
	if (f->mode == MODE_EIO)
		return -EIO;
	f->cb = cb;
	f->cbarg = arg;
	if (f->mode == MODE_INLINE)
		fire(f);
	else if (f->mode == MODE_LATER)
		f->t = event_timer_in(f->ev, 20, fire_cb, f);
	return 0;
}

static const struct callback_ops fake_ops = { fake_link, fake_redeem };

/* ---- the listener and a client ---- */

struct env {
	struct event_loop *ev;
	struct callback *c;
	struct fake f;
	unsigned port;
	char listen[64];
};

/* A listening socket on 127.0.0.1, port chosen by the kernel. */
static int
bind_any(unsigned *port)
{
	struct sockaddr_in sin = { 0 };
	socklen_t sl = sizeof(sin);
	int s;

	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -1;
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(s, 64) < 0 ||
	    getsockname(s, (struct sockaddr *)&sin, &sl) < 0) {
		close(s);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return s;
}

static int
env_start(struct env *e, const struct callback_limits *lim)
{
	struct msi_listen_sock sock = { .fd = -1 };

	memset(e, 0, sizeof(*e));
	e->ev = event_new();
	if (e->ev == NULL)
		return -1;
	e->f.ev = e->ev;
	e->f.result = 0;
	e->f.user = "alice";
	sock.fd = bind_any(&e->port);
	if (sock.fd < 0)
		return -1;
	(void)snprintf(e->listen, sizeof(e->listen), "127.0.0.1:%u", e->port);
	return callback_new(e->ev, &sock, e->listen, &fake_ops, &e->f, lim,
	    &e->c);
}

static void
env_stop(struct env *e)
{
	event_timer_cancel(e->ev, &e->f.t);
	event_timer_cancel(e->ev, &e->f.lt);
	callback_free(e->c);
	e->c = NULL;
	fire(&e->f); /* a held cb after the listener went: must be harmless */
	fire_link(&e->f);
	audit_attach(NULL); /* its timer lives on this loop */
	event_free(e->ev);
}

struct resp {
	char text[16384]; /* head and body */
	int status;
	const char *body;
};

struct client {
	unsigned port;
	const char *req;
	struct resp *out;
	atomic_int is_done;
};

static int
connect_to(unsigned port)
{
	struct sockaddr_in sin = { 0 };
	struct timeval tv = { 10, 0 };
	int s;

	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	(void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static void *
client_main(void *arg)
{
	struct client *cl = arg;
	struct resp *r = cl->out;
	size_t n = 0, len = strlen(cl->req);
	ssize_t k;
	int s;

	r->status = -1;
	s = connect_to(cl->port);
	if (s >= 0) {
		if (write(s, cl->req, len) == (ssize_t)len) {
			while (n + 1 < sizeof(r->text) &&
			    (k = read(s, r->text + n,
				 sizeof(r->text) - 1 - n)) > 0)
				n += (size_t)k;
		}
		close(s);
	}
	r->text[n] = '\0';
	if (sscanf(r->text, "HTTP/1.%*d %d", &r->status) != 1)
		r->status = n == 0 ? 0 : -1;
	r->body = strstr(r->text, "\r\n\r\n");
	r->body = r->body != NULL ? r->body + 4 : "";
	atomic_store(&cl->is_done, 1);
	return NULL;
}

struct until {
	atomic_int *flag;
	int64_t end;
};

static void
poll_cb(struct event_loop *ev, void *arg)
{
	struct until *u = arg;

	if ((u->flag != NULL && atomic_load(u->flag)) ||
	    event_now_ms(ev) >= u->end) {
		event_stop(ev);
		return;
	}
	(void)event_timer_in(ev, 5, poll_cb, u);
}

/* Run the loop until *flag (NULL: none) or ms have passed. */
static void
run_until(struct env *e, atomic_int *flag, int64_t ms)
{
	struct until u = { flag, event_now_ms(e->ev) + ms };

	(void)event_timer_in(e->ev, 0, poll_cb, &u);
	(void)event_run(e->ev);
}

/* One request in a client thread while the loop runs. */
static int
req(struct env *e, const char *text, struct resp *out)
{
	struct client cl = { e->port, text, out, 0 };
	pthread_t th;

	if (pthread_create(&th, NULL, client_main, &cl) != 0)
		return -1;
	run_until(e, &cl.is_done, 15000);
	(void)pthread_join(th, NULL);
	return out->status;
}

static int
get(struct env *e, const char *target, struct resp *out)
{
	char text[12000];

	(void)snprintf(text, sizeof(text),
	    "GET %s HTTP/1.1\r\nHost: signin.example\r\nConnection: "
	    "close\r\n\r\n",
	    target);
	return req(e, text, out);
}

/* A GET whose target does not fit get()'s buffer. */
static int
get_big(struct env *e, const char *target, struct resp *out)
{
	size_t n = strlen(target) + 128;
	char *text = malloc(n);
	int r;

	if (text == NULL)
		return -1;
	(void)snprintf(text, n,
	    "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target);
	r = req(e, text, out);
	free(text);
	return r;
}

/* The header line "Name: value" is in r's head. */
static int
has_header(const struct resp *r, const char *line)
{
	const char *end = strstr(r->text, "\r\n\r\n");
	const char *p = strcasestr(r->text, line);

	return p != NULL && (end == NULL || p < end);
}

static int
has_security_headers(const struct resp *r)
{
	return has_header(r, "Cache-Control: no-store\r\n") &&
	    has_header(r, "Referrer-Policy: no-referrer\r\n") &&
	    has_header(r, "X-Content-Type-Options: nosniff\r\n") &&
	    has_header(r, "Content-Security-Policy: default-src 'none'") &&
	    has_header(r, "X-Frame-Options: DENY\r\n") &&
	    has_header(r, "Content-Type: text/html; charset=utf-8\r\n");
}

/* ---- tests ---- */

TEST(test_login_link)
{
	struct env e;
	struct resp r;

	ASSERT_EQ(env_start(&e, NULL), 0);
	/* HEAD first (a link preview): nothing used up. */
	ASSERT_EQ(req(&e,
		      "HEAD /entra/login/" ID1 " HTTP/1.1\r\nHost: x\r\n"
		      "Connection: close\r\n\r\n",
		      &r),
	    200);
	ASSERT_EQ(e.f.links, 0);
	ASSERT_EQ(get(&e, "/entra/login/" ID1, &r), 302);
	ASSERT_TRUE(has_header(&r, "Location: " URL "\r\n"));
	ASSERT_TRUE(has_security_headers(&r));
	ASSERT_TRUE(strstr(r.body, "Continue to sign in") != NULL);
	ASSERT_TRUE(strstr(r.body, "client_id=c&amp;state=s") != NULL);
	/* Replayed: the fake says -ENOENT, the page says what to do. */
	ASSERT_EQ(get(&e, "/entra/login/" ID1, &r), 404);
	ASSERT_TRUE(strstr(r.body, "expired or was already used") != NULL);
	ASSERT_TRUE(strstr(r.body, "credctl login") != NULL);
	ASSERT_TRUE(has_security_headers(&r));
	ASSERT_TRUE(!has_header(&r, "Location:"));
	ASSERT_EQ(get(&e, "/entra/login/" ID2, &r), 404);
	ASSERT_EQ(e.f.links, 3);
	/* Not an id: never reaches the ops. */
	ASSERT_EQ(get(&e, "/entra/login/short", &r), 404);
	ASSERT_EQ(e.f.links, 3);
	env_stop(&e);
}

/* A cluster link looked up later: parked, then 302; used: 404; no
 * answer in time: 504, and the late answer is harmless. */
TEST(test_login_link_async)
{
	struct callback_limits lim = { 16, 16, 1, 1 };
	struct env e;
	struct resp r;

	ASSERT_EQ(env_start(&e, NULL), 0);
	ASSERT_EQ(get(&e, "/entra/login/" IDC, &r), 302);
	ASSERT_TRUE(has_header(&r, "Location: " URL "\r\n"));
	ASSERT_TRUE(has_security_headers(&r));
	ASSERT_EQ(get(&e, "/entra/login/" IDC, &r), 404);
	ASSERT_TRUE(strstr(r.body, "expired or was already used") != NULL);
	ASSERT_EQ(e.f.links, 2);
	env_stop(&e);

	ASSERT_EQ(env_start(&e, &lim), 0);
	e.f.link_hold = 1;
	ASSERT_EQ(get(&e, "/entra/login/" IDC, &r), 504);
	ASSERT_TRUE(e.f.lcb != NULL);
	fire_link(&e.f); /* after the page: only counted */
	env_stop(&e);
}

TEST(test_signed_in)
{
	static const int modes[] = { MODE_LATER, MODE_INLINE };
	struct env e;
	struct resp r;
	size_t i;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(env_start(&e, NULL), 0);
		e.f.mode = modes[i];
		e.f.user = "<alice>";
		ASSERT_EQ(get(&e,
			      "/entra/callback?code=0.AXc%2Dd&state=st-1"
			      "&session_state=zz",
			      &r),
		    200);
		ASSERT_EQ(e.f.redeems, 1);
		ASSERT_STREQ(e.f.state, "st-1");
		ASSERT_STREQ(e.f.code, "0.AXc-d");
		ASSERT_STREQ(e.f.err, "");
		ASSERT_TRUE(has_security_headers(&r));
		/* The user's name is escaped on the page. */
		ASSERT_TRUE(
		    strstr(r.body, "Signed in as &lt;alice&gt;.") != NULL);
		/* HEAD changes nothing. */
		ASSERT_EQ(req(&e,
			      "HEAD /entra/callback?code=c&state=s HTTP/1.1\r\n"
			      "Host: x\r\nConnection: close\r\n\r\n",
			      &r),
		    200);
		ASSERT_EQ(e.f.redeems, 1);
		env_stop(&e);
	}
}

TEST(test_failed_and_error)
{
	struct env e;
	struct resp r;

	ASSERT_EQ(env_start(&e, NULL), 0);
	e.f.result = -EACCES;
	e.f.reason = "you declined the consent";
	ASSERT_EQ(get(&e,
		      "/entra/callback?error=access_denied&error_description="
		      "AADSTS65004%3a+User+declined&state=st-2",
		      &r),
	    403);
	ASSERT_STREQ(e.f.err, "access_denied");
	ASSERT_STREQ(e.f.desc, "AADSTS65004: User declined");
	ASSERT_STREQ(e.f.code, "");
	ASSERT_TRUE(
	    strstr(r.body, "Sign-in failed: you declined the consent") != NULL);
	ASSERT_TRUE(strstr(r.body, "credctl login") != NULL);
	/* A redeem that cannot run: 503, not a hang. */
	e.f.mode = MODE_EIO;
	ASSERT_EQ(get(&e, "/entra/callback?code=c&state=s", &r), 503);
	env_stop(&e);
}

TEST(test_state_mismatch)
{
	const char *dir = fixture_tmpdir("callback_audit");
	const char *path = fixture_path(dir, "audit.json");
	char buf[8192];
	struct env e;
	struct resp r;
	ssize_t n;
	int fd;

	ASSERT_TRUE(dir != NULL);
	ASSERT_EQ(audit_init("node-1", path), 0);
	ASSERT_EQ(env_start(&e, NULL), 0);
	audit_attach(e.ev);
	/* Unknown state at once, and one that the cb says is gone. */
	e.f.mode = MODE_ENOENT;
	ASSERT_EQ(get(&e, "/entra/callback?code=c1&state=old", &r), 400);
	ASSERT_TRUE(strstr(r.body, "not valid any more") != NULL);
	ASSERT_TRUE(has_security_headers(&r));
	e.f.mode = MODE_LATER;
	e.f.result = -ENOENT;
	ASSERT_EQ(req(&e,
		      "GET /entra/callback?code=c2&state=gone HTTP/1.1\r\n"
		      "Host: x\r\nX-Forwarded-For: 10.9.9.9, 198.51.100.7\r\n"
		      "Connection: close\r\n\r\n",
		      &r),
	    400);
	ASSERT_TRUE(strstr(r.body, "not valid any more") != NULL);
	env_stop(&e);
	audit_close();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_TRUE(n > 0);
	buf[n] = '\0';
	ASSERT_TRUE(strstr(buf, "state mismatch from 127.0.0.1") != NULL);
	/* The proxy's last X-Forwarded-For entry, and only that. */
	ASSERT_TRUE(strstr(buf,
			"state mismatch from 127.0.0.1 for "
			"198.51.100.7") != NULL);
	ASSERT_TRUE(strstr(buf, "10.9.9.9") == NULL);
	ASSERT_TRUE(strstr(buf, "\"op\":\"callback\"") != NULL ||
	    strstr(buf, "\"op\": \"callback\"") != NULL);
	ASSERT_TRUE(strstr(buf, "old") == NULL);
	ASSERT_TRUE(strstr(buf, "c1") == NULL);
}

TEST(test_malformed)
{
	static const struct {
		const char *req;
		int status;
	} cases[] = {
		{ "GET /entra/callback?code=a&code=b&state=s HTTP/1.1\r\n"
		  "Host: x\r\nConnection: close\r\n\r\n",
		    400 },
		{ "GET /entra/callback?code=a HTTP/1.1\r\nHost: x\r\n"
		  "Connection: close\r\n\r\n",
		    400 },
		{ "GET /entra/callback?code=%zz&state=s HTTP/1.1\r\nHost: x\r\n"
		  "Connection: close\r\n\r\n",
		    400 },
		{ "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		    404 },
		{ "PUT /entra/callback?code=a&state=s HTTP/1.1\r\nHost: x\r\n"
		  "Connection: close\r\n\r\n",
		    405 },
		{ "POST /entra/callback HTTP/1.1\r\nHost: x\r\n"
		  "Content-Type: application/x-www-form-urlencoded\r\n"
		  "Content-Length: 14\r\nConnection: close\r\n\r\n"
		  "code=a&state=s",
		    400 },
		/* A body announced and never sent: refused at once, not
		 * waited for. */
		{ "GET /entra/callback?code=a&state=s HTTP/1.1\r\nHost: x\r\n"
		  "Content-Length: 1000000\r\n\r\n",
		    400 },
		{ "GET /entra/callback?code=a&state=s HTTP/1.1\r\nHost: x\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n",
		    400 },
	};
	char big[CALLBACK_TARGET_MAX + 64];
	struct env e;
	struct resp r;
	size_t i;
	int len;

	ASSERT_EQ(env_start(&e, NULL), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (req(&e, cases[i].req, &r) != cases[i].status)
			FAILF("case %zu: %d, not %d: %.200s", i, r.status,
			    cases[i].status, r.text);
		ASSERT_TRUE(has_security_headers(&r));
		if (cases[i].status == 405)
			ASSERT_TRUE(has_header(&r, "Allow: GET, HEAD\r\n"));
	}
	/* Over-long: refused before anything is parsed. */
	len = snprintf(big, sizeof(big), "/entra/callback?state=s&code=");
	memset(big + len, 'a', sizeof(big) - 1 - (size_t)len);
	big[sizeof(big) - 1] = '\0';
	ASSERT_EQ(get(&e, big, &r), 414);
	ASSERT_EQ(e.f.redeems, 0);
	/* Past MHD's memory limit: MHD refuses it itself (never a 200). */
	{
		static char huge[CALLBACK_MEMORY_LIMIT + 1024];

		len = snprintf(huge, sizeof(huge),
		    "/entra/callback?state=s&code=");
		memset(huge + len, 'a', sizeof(huge) - 1 - (size_t)len);
		huge[sizeof(huge) - 1] = '\0';
		r.status = get_big(&e, huge, &r);
		ASSERT_TRUE(r.status != 200 && r.status != -1);
	}
	/* A malformed header after a request line MHD has logged: MHD
	 * answers 400 itself, and the request's copy of the target (code
	 * and all) is still freed (LeakSanitizer would say otherwise). */
	ASSERT_EQ(req(&e,
		      "GET /entra/callback?code="
		      "zz"
		      "&state=s HTTP/1.1\r\n"
		      "Host: x\r\nBad header line\r\n\r\n",
		      &r),
	    400);
	ASSERT_EQ(e.f.redeems, 0);
	env_stop(&e);
}

TEST(test_timeout_and_shutdown)
{
	struct callback_limits lim = { 16, 16, 1, 1 };
	struct env e;
	struct resp r;

	ASSERT_EQ(env_start(&e, &lim), 0);
	e.f.mode = MODE_HOLD;
	/* No outcome within request_timeout (1 s): 504, not a hang. */
	ASSERT_EQ(get(&e, "/entra/callback?code=c&state=s", &r), 504);
	ASSERT_TRUE(strstr(r.body, "credctl status") != NULL);
	ASSERT_TRUE(e.f.cb != NULL);
	fire(&e.f); /* the outcome arrives after the page: only counted */
	env_stop(&e);

	/* A redemption out when the listener is freed: 503 to the browser;
	 * the cb still held runs (harmlessly) in env_stop. */
	lim.request_timeout = 30;
	ASSERT_EQ(env_start(&e, &lim), 0);
	e.f.mode = MODE_HOLD;
	{
		struct client cl = { e.port,
			"GET /entra/callback?code=c&state=s HTTP/1.1\r\n"
			"Host: x\r\nConnection: close\r\n\r\n",
			&r, 0 };
		pthread_t th;

		ASSERT_EQ(pthread_create(&th, NULL, client_main, &cl), 0);
		run_until(&e, NULL, 300); /* parked by now */
		ASSERT_TRUE(e.f.cb != NULL);
		callback_free(e.c);
		e.c = NULL;
		(void)pthread_join(th, NULL);
		ASSERT_EQ(r.status, 503);
		ASSERT_TRUE(strstr(r.body, "shutting down") != NULL);
	}
	env_stop(&e);
}

TEST(test_slow_client)
{
	struct callback_limits lim = { 16, 16, 1, 30 };
	struct env e;
	char b[64];
	int64_t t0;
	int s, is_closed;

	ASSERT_EQ(env_start(&e, &lim), 0);
	s = connect_to(e.port);
	ASSERT_TRUE(s >= 0);
	ASSERT_EQ(write(s, "GET /entra/lo", 13), 13);
	t0 = event_now_ms(e.ev);
	(void)fcntl(s, F_SETFL, O_NONBLOCK);
	/* conn_timeout is 1 s: closed by the server (EOF or a reset). */
	for (is_closed = 0; !is_closed && event_now_ms(e.ev) - t0 < 6000;) {
		run_until(&e, NULL, 50);
		errno = 0;
		is_closed = read(s, b, sizeof(b)) <= 0 && errno != EAGAIN;
	}
	close(s);
	ASSERT_TRUE(is_closed);
	ASSERT_TRUE(event_now_ms(e.ev) - t0 >= 900); /* not before it */
	printf("# slow client dropped after %lld ms (conn_timeout 1 s)\n",
	    (long long)(event_now_ms(e.ev) - t0));
	env_stop(&e);
}

/* n connections held open; how many the server closed. */
static int
closed_of(struct env *e, int *fds, int n)
{
	char b[8];
	int i, closed = 0;

	for (i = 0; i < n; i++)
		fds[i] = connect_to(e->port);
	run_until(e, NULL, 300);
	for (i = 0; i < n; i++) {
		if (fds[i] < 0) {
			closed++;
			continue;
		}
		(void)fcntl(fds[i], F_SETFL, O_NONBLOCK);
		errno = 0;
		if (read(fds[i], b, sizeof(b)) <= 0 && errno != EAGAIN)
			closed++;
	}
	return closed;
}

TEST(test_conn_limits)
{
	struct callback_limits total = { 3, 16, 30, 30 };
	struct callback_limits peer = { 16, 2, 30, 30 };
	json_t *o, *cb;
	struct env e;
	int fds[5], i;

	ASSERT_EQ(env_start(&e, &total), 0);
	ASSERT_EQ(closed_of(&e, fds, 5), 2);
	o = json_object();
	ASSERT_EQ(callback_report(e.c, o, 1), 0);
	cb = json_object_get(o, "callback");
	ASSERT_EQ(json_integer_value(json_object_get(cb, "connections_open")),
	    3);
	ASSERT_EQ(json_integer_value(
		      json_object_get(cb, "connections_refused")),
	    2);
	json_decref(o);
	for (i = 0; i < 5; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	env_stop(&e);

	ASSERT_EQ(env_start(&e, &peer), 0);
	ASSERT_EQ(closed_of(&e, fds, 5), 3);
	for (i = 0; i < 5; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	env_stop(&e);
}

TEST(test_report_and_bind_retry)
{
	struct msi_listen_sock sock = { .fd = -1, .err = -EADDRINUSE };
	struct env e;
	json_t *o, *cb;
	unsigned port;
	int holder;

	o = json_object();
	ASSERT_EQ(callback_report(NULL, o, 0), 0);
	ASSERT_TRUE(json_object_get(o, "callback") == NULL);
	ASSERT_EQ(callback_report(NULL, o, 1), 0);
	ASSERT_STREQ(json_string_value(
			 json_object_get(json_object_get(o, "callback"),
			     "state")),
	    "off");
	json_decref(o);

	/* The port is held by someone else: down, then up once freed. */
	memset(&e, 0, sizeof(e));
	e.ev = event_new();
	ASSERT_TRUE(e.ev != NULL);
	e.f.ev = e.ev;
	holder = bind_any(&port);
	ASSERT_TRUE(holder >= 0);
	(void)snprintf(e.listen, sizeof(e.listen), "127.0.0.1:%u", port);
	ASSERT_EQ(callback_new(e.ev, &sock, e.listen, &fake_ops, &e.f, NULL,
		      &e.c),
	    0);
	ASSERT_EQ(callback_is_up(e.c), 0);
	o = json_object();
	ASSERT_EQ(callback_report(e.c, o, 0), 0);
	cb = json_object_get(o, "callback");
	ASSERT_STREQ(json_string_value(json_object_get(cb, "state")), "down");
	ASSERT_STREQ(json_string_value(json_object_get(cb, "listen")),
	    e.listen);
	json_decref(o);
	close(holder);
	run_until(&e, NULL, 1500); /* the first retry is after 1 s */
	ASSERT_EQ(callback_is_up(e.c), 1);
	e.port = port;
	o = json_object();
	ASSERT_EQ(callback_report(e.c, o, 1), 0);
	cb = json_object_get(o, "callback");
	ASSERT_STREQ(json_string_value(json_object_get(cb, "state")), "up");
	ASSERT_TRUE(json_object_get(cb, "signed_in") != NULL);
	ASSERT_TRUE(json_object_get(cb, "state_mismatch") != NULL);
	json_decref(o);
	env_stop(&e);
}

/* A listening socket on addr (host order), port chosen by the kernel. */
static int
bind_on(uint32_t addr, unsigned *port)
{
	struct sockaddr_in sin = { 0 };
	socklen_t sl = sizeof(sin);
	int s, one = 1;

	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(addr);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(s, 16) < 0 ||
	    getsockname(s, (struct sockaddr *)&sin, &sl) < 0) {
		close(s);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return s;
}

/* A config with [callback] listen = host:port, or NULL. */
static struct config *
conf_listen(const char *host, unsigned port)
{
	struct config *cf = NULL;
	char text[512], err[256];

	(void)snprintf(text, sizeof(text),
	    "[entra]\ntenant = t\nclient_id = c\n[scopes]\n"
	    "s = https://storage.azure.com/.default\ndefault = s\n"
	    "[callback]\nlisten = %s:%u\n",
	    host, port);
	if (config_parse("t.conf", text, strlen(text), &cf, err, sizeof(err)) <
	    0)
		return NULL;
	return cf;
}

/*
 * Socket activation, as for the SDK endpoint: the passed socket named
 * credd-callback is taken when it listens on exactly [callback] listen
 * (here a public address, 0.0.0.0), one named otherwise is left alone.
 */
TEST(test_activation)
{
	char err[256];
	struct msi_listen_sock sock;
	struct config *cf = NULL;
	char n_other[] = "other", n_ours[] = CALLBACK_LISTEN_FDNAME;
	char *names[2] = { n_other, n_ours };
	unsigned port, port2;
	json_t *o, *cb;
	struct env e;
	int fds[2], used;

	fds[0] = bind_on(INADDR_ANY, &port2);
	fds[1] = bind_on(INADDR_ANY, &port);
	ASSERT_TRUE(fds[0] >= 0 && fds[1] >= 0);
	cf = conf_listen("0.0.0.0", port);
	ASSERT_TRUE(cf != NULL);
	ASSERT_EQ(callback_listen_open(cf, fds, names, 2, &sock, &used, err,
		      sizeof(err)),
	    0);
	ASSERT_EQ(used, 1);
	ASSERT_EQ(sock.fd, fds[1]);
	ASSERT_EQ(sock.is_activated, 1);
	memset(&e, 0, sizeof(e));
	e.ev = event_new();
	ASSERT_TRUE(e.ev != NULL);
	e.f.ev = e.ev;
	e.port = port; /* 0.0.0.0 takes loopback connections too */
	ASSERT_EQ(callback_new(e.ev, &sock, cf->callback_listen, &fake_ops,
		      &e.f, NULL, &e.c),
	    0);
	o = json_object();
	ASSERT_EQ(callback_report(e.c, o, 0), 0);
	cb = json_object_get(o, "callback");
	ASSERT_STREQ(json_string_value(json_object_get(cb, "socket")),
	    "activated");
	json_decref(o);
	{
		struct resp r;

		ASSERT_EQ(get(&e, "/entra/login/" ID1, &r), 302);
	}
	env_stop(&e);
	/* The named socket on another port: not taken, bound here instead. */
	names[0] = n_ours;
	names[1] = n_other;
	fds[1] = bind_on(INADDR_ANY, &port);
	ASSERT_TRUE(fds[1] >= 0);
	close(fds[1]); /* a free port for credd to bind */
	config_free(cf);
	cf = conf_listen("127.0.0.1", port);
	ASSERT_TRUE(cf != NULL);
	ASSERT_EQ(callback_listen_open(cf, fds, names, 1, &sock, &used, err,
		      sizeof(err)),
	    0);
	ASSERT_EQ(used, -1);
	ASSERT_EQ(sock.is_activated, 0);
	ASSERT_TRUE(sock.fd >= 0 && sock.fd != fds[0]);
	close(sock.fd);
	close(fds[0]);
	config_free(cf);
}

/* The file's bytes contain needle. */
static int
file_has(const char *path, const char *needle)
{
	static char buf[1 << 20];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
}

TEST(test_canary)
{
	const char *dir = fixture_tmpdir("callback_canary");
	char logp[512], audp[512];
	struct env e;
	struct resp r;
	int fd, saved;

	ASSERT_TRUE(dir != NULL);
	(void)snprintf(logp, sizeof(logp), "%s/log", dir);
	(void)snprintf(audp, sizeof(audp), "%s/audit.json", dir);
	fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	(void)dup2(fd, 2);
	close(fd);
	log_init("test_callback", 1, 1); /* debug lines too */
	ASSERT_EQ(audit_init("node-1", audp), 0);
	ASSERT_EQ(env_start(&e, NULL), 0);
	audit_attach(e.ev);
	/* Every path a code can take: success, failure, mismatch, refusal. */
	(void)get(&e, "/entra/callback?code=" CANARY "&state=s1", &r);
	e.f.result = -EACCES;
	e.f.reason = "no";
	(void)get(&e, "/entra/callback?code=" CANARY "&state=s2", &r);
	e.f.mode = MODE_ENOENT;
	(void)get(&e, "/entra/callback?code=" CANARY "&state=s3", &r);
	(void)get(&e, "/entra/callback?code=" CANARY "&code=x&state=s4", &r);
	(void)get(&e, "/entra/callback?code=" CANARY, &r);
	(void)get(&e, "/entra/login/" ID2 "?code=" CANARY, &r);
	env_stop(&e);
	audit_close();
	fflush(stderr);
	(void)dup2(saved, 2);
	close(saved);
	log_init("test_callback", 1, 0);
	ASSERT_TRUE(file_has(audp, "state mismatch"));
	ASSERT_TRUE(file_has(logp, "callback:")); /* the log did run */
	ASSERT_TRUE(!file_has(logp, CANARY));
	ASSERT_TRUE(!file_has(audp, CANARY));
}

int
main(void)
{
	log_init("test_callback", 1, 0);
	RUN(test_login_link);
	RUN(test_login_link_async);
	RUN(test_signed_in);
	RUN(test_failed_and_error);
	RUN(test_state_mismatch);
	RUN(test_malformed);
	RUN(test_timeout_and_shutdown);
	RUN(test_slow_client);
	RUN(test_conn_limits);
	RUN(test_report_and_bind_retry);
	RUN(test_activation);
	RUN(test_canary);
	TEST_MAIN_END();
}
