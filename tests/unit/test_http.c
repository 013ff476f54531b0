/*
 * test_http.c - http*.c against a real TLS server on loopback: a small
 * Python http.server behind ssl, with a certificate from a test CA made
 * by the openssl CLI in a temp dir, plus a second server whose
 * self-signed certificate the CA did not sign. Checks status and body,
 * a bearer POST (JSON body, Authorization, CR/LF refused), the body
 * cap, certificate checks, timeouts, https-only, Retry-After,
 * cancellation and 50 concurrent requests on one loop. Host names go
 * through a fake resolver (fake_resolve.h) whose lookups hang until the
 * test lets them go: cancel, free and time out while a lookup hangs,
 * libcurl never resolving a name itself, and the proxy's name looked up.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "entra/secret.h"
#include "entra/version.h"
#include "entra/util.h"
#include "event.h"
#include "fake_resolve.h"
#include "http.h"
#include "test.h"

extern char **environ;

static const char server_py[] =
    "import http.server, ssl, sys, threading, time, json, email.utils\n"
    "d = sys.argv[1]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def setup(self):\n"
    "        self.request.do_handshake()\n"
    "        super().setup()\n"
    "    def reply(self, code, body, hdrs=()):\n"
    "        self.send_response(code)\n"
    "        for k, v in hdrs: self.send_header(k, v)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def do_POST(self):\n"
    "        n = int(self.headers.get('Content-Length', '0'))\n"
    "        body = self.rfile.read(n)\n"
    "        p = self.path\n"
    "        if p == '/echo':\n"
    "            h = self.headers\n"
    "            out = json.dumps({'body': body.decode(), 'ct': h.get('Content-Type'),\n"
    "                'accept': h.get('Accept'), 'rid': h.get('client-request-id'),\n"
    "                'sku': h.get('x-client-SKU'), 'ua': h.get('User-Agent'),\n"
    "                'expect': h.get('Expect'),\n"
    "                'authz': h.get('Authorization')}).encode()\n"
    "            self.reply(200, out, [('Content-Type', 'application/json')])\n"
    "        elif p == '/big':\n"
    "            self.send_response(200)\n"
    "            self.send_header('Connection', 'close')\n"
    "            self.end_headers()\n"
    "            try:\n"
    "                for i in range(300): self.wfile.write(b'x' * 1024)\n"
    "            except OSError: pass\n"
    "            self.close_connection = True\n"
    "        elif p == '/bigcl':\n"
    "            try: self.reply(200, b'y' * (300 * 1024))\n"
    "            except OSError: pass\n"
    "        elif p == '/busy':\n"
    "            self.reply(503, b'{\"error\":\"temporarily_unavailable\"}',\n"
    "                [('Retry-After', '7')])\n"
    "        elif p == '/throttle':\n"
    "            self.reply(429, b'Too Many Requests', [('Retry-After',\n"
    "                email.utils.formatdate(time.time() + 120, usegmt=True))])\n"
    "        elif p == '/slow':\n"
    "            time.sleep(5)\n"
    "            try: self.reply(200, b'{}')\n"
    "            except OSError: pass\n"
    "        else:\n"
    "            self.reply(404, b'nope')\n"
    "class S(http.server.ThreadingHTTPServer):\n"
    "    daemon_threads = True\n"
    "    request_queue_size = 128\n"
    "    def handle_error(self, request, addr): pass\n"
    "def serve(cert, key):\n"
    "    s = S(('127.0.0.1', 0), H)\n"
    "    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "    ctx.load_cert_chain(d + '/' + cert, d + '/' + key)\n"
    "    s.socket = ctx.wrap_socket(s.socket, server_side=True,\n"
    "        do_handshake_on_connect=False)\n"
    "    threading.Thread(target=s.serve_forever, daemon=True).start()\n"
    "    return s.server_address[1]\n"
    "a = serve('srv.pem', 'srv.key')\n"
    "b = serve('rogue.pem', 'rogue.key')\n"
    "print(a, b, flush=True)\n"
    "sys.stdin.read()\n";

static const char certs_sh[] =
    "set -e\n"
    "EC='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
    "openssl req -x509 $EC -keyout ca.key -out ca.pem -days 2 "
    "-subj /CN=credd-test-ca\n"
    "openssl req $EC -keyout srv.key -out srv.csr -subj /CN=localhost\n"
    "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n"
    "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf\n"
    "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
    "-CAcreateserial -out srv.pem -days 2 -extfile ext.cnf\n"
    "openssl req -x509 $EC -keyout rogue.key -out rogue.pem -days 2 "
    "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1\n";

static const char *tmpdir;
static char ca_path[128];
static pid_t srv_pid = -1;
static int srv_stdin = -1;
static int port_ok, port_rogue;

static int
run_sh(const char *script)
{
	char cmd[4096];
	int n, st;

	n = snprintf(cmd, sizeof(cmd), "cd '%s' && { %s } >/dev/null 2>&1",
	    tmpdir, script);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	st = system(cmd);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	r = fputs(text, f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

/* Start the server; read "PORT_OK PORT_ROGUE" from its stdout. */
static int
server_start(void)
{
	posix_spawn_file_actions_t fa;
	int in[2], out[2], devnull;
	char script[256], line[64];
	char *argv[4];
	struct pollfd pfd;
	ssize_t n;
	size_t len = 0;

	snprintf(script, sizeof(script), "%s/server.py", tmpdir);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -1;
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	argv[0] = (char *)(uintptr_t) "python3";
	argv[1] = script;
	argv[2] = (char *)(uintptr_t)tmpdir;
	argv[3] = NULL;
	if (posix_spawn(&srv_pid, "/usr/bin/python3", &fa, NULL, argv,
		environ) != 0)
		srv_pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	fixture_child_add(
	    srv_pid); /* killed at exit if teardown is not reached */
	close(in[0]);
	close(out[1]);
	close(devnull);
	srv_stdin = in[1];
	if (srv_pid < 0)
		return -1;
	pfd.fd = out[0];
	pfd.events = POLLIN;
	while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
		if (poll(&pfd, 1, 15000) <= 0)
			break;
		n = read(out[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(out[0]);
	line[len] = '\0';
	return sscanf(line, "%d %d", &port_ok, &port_rogue) == 2 ? 0 : -1;
}

static int
setup(void)
{
	tmpdir = fixture_tmpdir("http");
	if (tmpdir == NULL)
		return -1;
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	if (run_sh(certs_sh) < 0) {
		fprintf(stderr, "openssl failed\n");
		return -1;
	}
	if (write_file("server.py", server_py) < 0 || server_start() < 0) {
		fprintf(stderr, "test server failed\n");
		return -1;
	}
	return 0;
}

static void
teardown(void)
{
	if (srv_stdin >= 0)
		close(srv_stdin); /* the server exits at EOF */
	fixture_kill(srv_pid, SIGTERM);
	srv_pid = -1;
	if (tmpdir != NULL)
		(void)fixture_rmtree(tmpdir);
}

/* --- one request at a time ------------------------------------------- */

struct result {
	int is_done;
	long status;
	int error;
	int64_t retry_after;
	char body[4096];
	size_t body_len;
	int has_body;
};

static void
on_done(void *arg, const struct http_response *resp)
{
	struct result *res = arg;

	res->is_done++;
	res->status = resp->status;
	res->error = resp->error;
	res->retry_after = resp->retry_after;
	res->has_body = resp->body != NULL;
	if (resp->body != NULL) {
		res->body_len = resp->body->len;
		snprintf(res->body, sizeof(res->body), "%s", resp->body->ptr);
	}
}

struct ctx {
	struct event_loop *ev;
	struct http *h;
	struct event_timer *watchdog;
	int is_timed_out;
};

static void
on_watchdog(struct event_loop *ev, void *arg)
{
	struct ctx *c = arg;

	c->watchdog = NULL;
	c->is_timed_out = 1;
	event_stop(ev);
}

static void
stop_when_done(struct event_loop *ev, void *arg)
{
	struct result *res = arg;

	if (res->is_done)
		event_stop(ev);
	else
		(void)event_timer_in(ev, 10, stop_when_done, res);
}

static int
ctx_init_opt(struct ctx *c, const struct http_options *opt)
{
	memset(c, 0, sizeof(*c));
	c->ev = event_new();
	if (c->ev == NULL)
		return -1;
	return http_new(c->ev, opt, &c->h);
}

static int
ctx_init(struct ctx *c, const char *ca, int timeout_sec, size_t max_body)
{
	struct http_options opt = { .ca_file = ca,
		.timeout_sec = timeout_sec,
		.max_body = max_body };

	return ctx_init_opt(c, &opt);
}

static void
ctx_fini(struct ctx *c)
{
	event_timer_cancel(c->ev, &c->watchdog);
	http_free(c->h);
	event_free(c->ev);
}

/* Run the loop until res is done (or 20 s pass). */
static int
run_one(struct ctx *c, struct result *res)
{
	c->watchdog = event_timer_in(c->ev, 20000, on_watchdog, c);
	(void)event_timer_in(c->ev, 10, stop_when_done, res);
	(void)event_run(c->ev);
	event_timer_cancel(c->ev, &c->watchdog);
	/* Drain stop_when_done timers that may remain: harmless, freed by event_free. */
	return c->is_timed_out ? -ETIMEDOUT : 0;
}

static int
post(struct ctx *c, int port, const char *path, const char *body,
    struct result *res)
{
	struct secret *b = secret_from_str(body);
	struct http_req *req = NULL;
	char url[128];
	int r;

	memset(res, 0, sizeof(*res));
	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
	r = http_post_form(c->h, url, b, on_done, res, &req);
	secret_free(b);
	if (r < 0)
		return r;
	return run_one(c, res);
}

TEST(test_post_ok)
{
	struct ctx c;
	struct result res;

	ASSERT_EQ(ctx_init(&c, ca_path, 10, 0), 0);
	ASSERT_EQ(post(&c, port_ok, "/echo", "a=1&b=x%20y", &res), 0);
	ASSERT_EQ(res.is_done, 1);
	ASSERT_EQ(res.error, 0);
	ASSERT_EQ(res.status, 200);
	ASSERT_EQ(res.retry_after, -1);
	ASSERT_TRUE(res.has_body);
	ASSERT_EQ(res.body_len, strlen(res.body));
	ASSERT_TRUE(strstr(res.body, "\"body\": \"a=1&b=x%20y\"") != NULL);
	ASSERT_TRUE(
	    strstr(res.body, "\"ct\": \"application/x-www-form-urlencoded\"") !=
	    NULL);
	ASSERT_TRUE(
	    strstr(res.body, "\"accept\": \"application/json\"") != NULL);
	ASSERT_TRUE(strstr(res.body, "\"sku\": \"credd\"") != NULL);
	ASSERT_TRUE(
	    strstr(res.body, "\"ua\": \"credd/" ENTRA_VERSION "\"") != NULL);
	ASSERT_TRUE(strstr(res.body, "\"expect\": null") != NULL);
	{
		const char *p = strstr(res.body, "\"rid\": \"");

		ASSERT_TRUE(p != NULL);
		p += 8;
		/* xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx */
		ASSERT_EQ(strcspn(p, "\""), 36);
		ASSERT_EQ(p[8], '-');
		ASSERT_EQ(p[14], '4');
		ASSERT_TRUE(strchr("89ab", p[19]) != NULL);
	}
	ASSERT_EQ(http_inflight(c.h), 0);
	/* A 404 is a response, not an error. */
	ASSERT_EQ(post(&c, port_ok, "/nothing", "x=1", &res), 0);
	ASSERT_EQ(res.error, 0);
	ASSERT_EQ(res.status, 404);
	ASSERT_STREQ(res.body, "nope");
	ctx_fini(&c);
}

/* http_post_bearer: "{}" as JSON with the bearer token (offboard.c). */
TEST(test_post_bearer)
{
	struct secret *tok = secret_from_str("canary-app-token"), *bad;
	struct http_req *req = NULL;
	struct ctx c;
	struct result res;
	char url[128];

	ASSERT_EQ(ctx_init(&c, ca_path, 10, 0), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/echo", port_ok);
	memset(&res, 0, sizeof(res));
	ASSERT_EQ(http_post_bearer(c.h, url, tok, on_done, &res, &req), 0);
	ASSERT_EQ(run_one(&c, &res), 0);
	ASSERT_EQ(res.status, 200);
	ASSERT_TRUE(strstr(res.body, "\"body\": \"{}\"") != NULL);
	ASSERT_TRUE(strstr(res.body, "\"ct\": \"application/json\"") != NULL);
	ASSERT_TRUE(
	    strstr(res.body, "\"authz\": \"Bearer canary-app-token\"") != NULL);
	/* A form POST sends no Authorization. */
	ASSERT_EQ(post(&c, port_ok, "/echo", "a=1", &res), 0);
	ASSERT_TRUE(strstr(res.body, "\"authz\": null") != NULL);
	/* A token that would split the header is refused. */
	bad = secret_from_str("a\r\nX-Injected: 1");
	ASSERT_EQ(http_post_bearer(c.h, url, bad, on_done, &res, &req),
	    -EINVAL);
	ASSERT_TRUE(req == NULL);
	secret_free(bad);
	ASSERT_EQ(http_post_bearer(c.h, "http://127.0.0.1/x", tok, on_done,
		      &res, &req),
	    -EPROTONOSUPPORT);
	secret_free(tok);
	ctx_fini(&c);
}

TEST(test_body_cap)
{
	struct ctx c;
	struct result res;

	ASSERT_EQ(ctx_init(&c, ca_path, 10, 1024), 0);
	/* No Content-Length: the write callback stops it. */
	ASSERT_EQ(post(&c, port_ok, "/big", "x=1", &res), 0);
	ASSERT_EQ(res.error, -EMSGSIZE);
	ASSERT_EQ(res.status, 0);
	ASSERT_TRUE(!res.has_body);
	/* With Content-Length. */
	ASSERT_EQ(post(&c, port_ok, "/bigcl", "x=1", &res), 0);
	ASSERT_EQ(res.error, -EMSGSIZE);
	ASSERT_TRUE(!res.has_body);
	ctx_fini(&c);

	/* The default cap (256 KiB) stops 300 KiB too. */
	ASSERT_EQ(ctx_init(&c, ca_path, 10, 0), 0);
	ASSERT_EQ(post(&c, port_ok, "/big", "x=1", &res), 0);
	ASSERT_EQ(res.error, -EMSGSIZE);
	ctx_fini(&c);
}

TEST(test_untrusted_cert)
{
	struct ctx c;
	struct result res;

	/* Self-signed, not from ca_file. */
	ASSERT_EQ(ctx_init(&c, ca_path, 10, 0), 0);
	ASSERT_EQ(post(&c, port_rogue, "/echo", "x=1", &res), 0);
	ASSERT_EQ(res.error, -EPROTO);
	ASSERT_EQ(res.status, 0);
	ASSERT_TRUE(!res.has_body);
	ctx_fini(&c);
	/* The system bundle does not know the test CA. */
	ASSERT_EQ(ctx_init(&c, NULL, 60, 0), 0); /* slow under valgrind */
	ASSERT_EQ(post(&c, port_ok, "/echo", "x=1", &res), 0);
	ASSERT_EQ(res.error, -EPROTO);
	ctx_fini(&c);
}

TEST(test_timeout)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sa);
	struct ctx c;
	struct result res;
	int fd;

	ASSERT_EQ(ctx_init(&c, ca_path, 1, 0), 0);
	/* The server answers after 5 s. */
	ASSERT_EQ(post(&c, port_ok, "/slow", "x=1", &res), 0);
	ASSERT_EQ(res.error, -ETIMEDOUT);
	ASSERT_EQ(res.status, 0);
	/* A listener that never accepts: TCP connects, TLS never starts. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_EQ(listen(fd, 4), 0);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	ASSERT_EQ(post(&c, ntohs(sa.sin_port), "/", "x=1", &res), 0);
	close(fd);
	ASSERT_EQ(res.error, -ETIMEDOUT);
	ctx_fini(&c);
}

TEST(test_refused)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sa);
	struct http_req *req = (struct http_req *)&sa;
	struct secret *b = secret_from_str("x=1");
	struct ctx c;
	struct result res;
	int fd;

	ASSERT_EQ(ctx_init(&c, ca_path, 5, 0), 0);
	/* https only, refused before anything is sent. */
	ASSERT_ERR(http_post_form(c.h, "http://127.0.0.1:1/", b, on_done, &res,
		       &req),
	    -EPROTONOSUPPORT);
	ASSERT_TRUE(req == NULL);
	ASSERT_ERR(http_post_form(c.h, "ftp://127.0.0.1/", b, on_done, &res,
		       &req),
	    -EPROTONOSUPPORT);
	ASSERT_EQ(http_inflight(c.h), 0);
	secret_free(b);
	/* A closed port. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	close(fd);
	ASSERT_EQ(post(&c, ntohs(sa.sin_port), "/", "x=1", &res), 0);
	ASSERT_EQ(res.error, -ECONNREFUSED);
	ASSERT_EQ(res.status, 0);
	ctx_fini(&c);
}

TEST(test_retry_after)
{
	struct ctx c;
	struct result res;

	ASSERT_EQ(ctx_init(&c, ca_path, 10, 0), 0);
	ASSERT_EQ(post(&c, port_ok, "/busy", "x=1", &res), 0);
	ASSERT_EQ(res.error, 0);
	ASSERT_EQ(res.status, 503);
	ASSERT_EQ(res.retry_after, 7);
	ASSERT_STREQ(res.body, "{\"error\":\"temporarily_unavailable\"}");
	/* HTTP-date form, 120 s ahead. */
	ASSERT_EQ(post(&c, port_ok, "/throttle", "x=1", &res), 0);
	ASSERT_EQ(res.status, 429);
	ASSERT_TRUE(res.retry_after >= 110 && res.retry_after <= 121);
	ASSERT_STREQ(res.body, "Too Many Requests");
	ctx_fini(&c);
}

/* --- many at once, cancellation, re-entrancy --------------------------- */

#define NCONC 50

struct many {
	struct ctx *c;
	int ndone;
	int nbad;
	int idx[NCONC];
};

struct one {
	struct many *m;
	int i;
};

static void
on_many(void *arg, const struct http_response *resp)
{
	struct one *o = arg;
	char want[64];

	snprintf(want, sizeof(want), "\"body\": \"n=%d&pad=", o->i);
	if (resp->error != 0 || resp->status != 200 || resp->body == NULL ||
	    strstr(resp->body->ptr, want) == NULL)
		o->m->nbad++;
	if (++o->m->ndone == NCONC)
		event_stop(o->m->c->ev);
}

TEST(test_concurrent)
{
	static struct one ones[NCONC];
	struct many m = { 0 };
	struct http_req *req;
	struct secret *b;
	struct ctx c;
	char url[128], body[128];
	int i;

	ASSERT_EQ(ctx_init(&c, ca_path, 20, 0), 0);
	m.c = &c;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/echo", port_ok);
	for (i = 0; i < NCONC; i++) {
		ones[i].m = &m;
		ones[i].i = i;
		snprintf(body, sizeof(body), "n=%d&pad=%d", i, i * 7);
		b = secret_from_str(body);
		ASSERT_EQ(http_post_form(c.h, url, b, on_many, &ones[i], &req),
		    0);
		secret_free(b);
	}
	ASSERT_EQ(http_inflight(c.h), NCONC);
	c.watchdog = event_timer_in(c.ev, 30000, on_watchdog, &c);
	(void)event_run(c.ev);
	ASSERT_TRUE(!c.is_timed_out);
	ASSERT_EQ(m.ndone, NCONC);
	ASSERT_EQ(m.nbad, 0);
	ASSERT_EQ(http_inflight(c.h), 0);
	ctx_fini(&c);
}

struct chain {
	struct ctx *c;
	struct http_req *slow;
	struct http_req *next;
	int nslow;
	int nfirst;
	int nsecond;
	char url[128];
};

static void
on_slow(void *arg, const struct http_response *resp)
{
	struct chain *ch = arg;

	ch->nslow++;
}

static void
on_second(void *arg, const struct http_response *resp)
{
	struct chain *ch = arg;

	ch->next = NULL;
	if (resp->error == 0 && resp->status == 200)
		ch->nsecond++;
	event_stop(ch->c->ev);
}

/* From inside a callback: cancel another request and start a new one. */
static void
on_first(void *arg, const struct http_response *resp)
{
	struct chain *ch = arg;
	struct secret *b = secret_from_str("second=1");

	if (resp->error == 0 && resp->status == 200)
		ch->nfirst++;
	http_cancel(ch->c->h, &ch->slow);
	if (http_post_form(ch->c->h, ch->url, b, on_second, ch, &ch->next) < 0)
		event_stop(ch->c->ev);
	secret_free(b);
}

TEST(test_cancel_reentrant)
{
	struct chain ch = { 0 };
	struct http_req *first, *doomed;
	struct secret *b = secret_from_str("x=1");
	char slow[128];
	struct ctx c;

	ASSERT_EQ(ctx_init(&c, ca_path, 10, 0), 0);
	ch.c = &c;
	snprintf(ch.url, sizeof(ch.url), "https://127.0.0.1:%d/echo", port_ok);
	snprintf(slow, sizeof(slow), "https://127.0.0.1:%d/slow", port_ok);
	ASSERT_EQ(http_post_form(c.h, slow, b, on_slow, &ch, &ch.slow), 0);
	ASSERT_EQ(http_post_form(c.h, slow, b, on_slow, &ch, &doomed), 0);
	ASSERT_EQ(http_post_form(c.h, ch.url, b, on_first, &ch, &first), 0);
	ASSERT_EQ(http_inflight(c.h), 3);
	/* Cancelled before the loop ever ran. */
	http_cancel(c.h, &doomed);
	ASSERT_TRUE(doomed == NULL);
	http_cancel(c.h, &doomed); /* NULL-safe */
	ASSERT_EQ(http_inflight(c.h), 2);
	c.watchdog = event_timer_in(c.ev, 20000, on_watchdog, &c);
	(void)event_run(c.ev);
	ASSERT_TRUE(!c.is_timed_out);
	ASSERT_EQ(ch.nfirst, 1);
	ASSERT_EQ(ch.nsecond, 1);
	ASSERT_EQ(ch.nslow, 0);
	ASSERT_TRUE(ch.slow == NULL);
	ASSERT_EQ(http_inflight(c.h), 0);

	/* http_free with requests in flight: no callback, no leak. */
	ASSERT_EQ(http_post_form(c.h, slow, b, on_slow, &ch, &ch.slow), 0);
	ASSERT_EQ(http_post_form(c.h, ch.url, b, on_slow, &ch, &first), 0);
	c.watchdog = event_timer_in(c.ev, 2000, on_watchdog, &c);
	(void)event_run(c.ev);
	secret_free(b);
	ctx_fini(&c);
	ASSERT_EQ(ch.nslow, 1); /* the echo finished within 2 s; slow did not */
}

/* --- names: the resolver, never libcurl's own ------------------------- */

static int
post_url(struct ctx *c, const char *url, struct result *res,
    struct http_req **reqp)
{
	struct secret *b = secret_from_str("x=1");
	struct http_req *req = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	r = http_post_form(c->h, url, b, on_done, res,
	    reqp != NULL ? reqp : &req);
	secret_free(b);
	return r;
}

TEST(test_name_lookup)
{
	struct fake_resolver f;
	struct http_options opt = { .ca_file = ca_path, .timeout_sec = 10 };
	struct http_stats st;
	struct result res;
	struct ctx c;
	char url[128];

	fake_init(&f, true, false);
	opt.resolver = &f.ops;
	ASSERT_EQ(ctx_init_opt(&c, &opt), 0);
	/* The certificate names localhost: TLS checks the name as usual. */
	snprintf(url, sizeof(url), "https://localhost:%d/echo", port_ok);
	ASSERT_EQ(post_url(&c, url, &res, NULL), 0);
	ASSERT_EQ(run_one(&c, &res), 0);
	ASSERT_EQ(res.error, 0);
	ASSERT_EQ(res.status, 200);
	ASSERT_STREQ(f.last_host, "localhost");
	ASSERT_EQ(f.last_port, port_ok);
	/* Again: from the cache. An address: no lookup at all. */
	ASSERT_EQ(post_url(&c, url, &res, NULL), 0);
	ASSERT_EQ(run_one(&c, &res), 0);
	ASSERT_EQ(res.status, 200);
	ASSERT_EQ(post(&c, port_ok, "/echo", "x=1", &res), 0);
	ASSERT_EQ(res.status, 200);
	http_get_stats(c.h, &st);
	ASSERT_EQ(fake_get(&f, &f.calls), 1);
	ASSERT_EQ(st.lookups, 1);
	ASSERT_EQ(st.curl_resolves, 0); /* libcurl used our answer */
	ASSERT_TRUE(
	    st.resolver_threads >= 1 && st.resolver_threads <= RESOLVE_WORKERS);
	/* A wrong answer is a connection failure, not a trusted name. */
	ctx_fini(&c);
	fake_init(&f, true, false);
	snprintf(f.addrs, sizeof(f.addrs), "127.0.0.2");
	ASSERT_EQ(ctx_init_opt(&c, &opt), 0);
	snprintf(url, sizeof(url), "https://localhost:%d/echo", port_rogue);
	ASSERT_EQ(post_url(&c, url, &res, NULL), 0);
	ASSERT_EQ(run_one(&c, &res), 0);
	ASSERT_TRUE(res.error == -ECONNREFUSED || res.error == -EPROTO);
	ctx_fini(&c);
}

TEST(test_cancel_while_lookup_hangs)
{
	struct fake_resolver f;
	struct http_options opt = { .ca_file = ca_path, .timeout_sec = 10 };
	struct http_req *req = NULL, *other = NULL;
	struct http_stats st;
	struct result res, res2;
	struct ctx c;
	char url[128];
	int64_t t0;

	fake_init(&f, false, false);
	opt.resolver = &f.ops;
	ASSERT_EQ(ctx_init_opt(&c, &opt), 0);
	snprintf(url, sizeof(url), "https://localhost:%d/echo", port_ok);
	ASSERT_EQ(post_url(&c, url, &res, &req), 0);
	ASSERT_EQ(post_url(&c, url, &res2, &other), 0);
	ASSERT_EQ(fake_wait(&f, &f.running, 1), 0);
	http_get_stats(c.h, &st);
	ASSERT_EQ(st.inflight, 2);
	ASSERT_EQ(st.resolving, 2);
	ASSERT_EQ(st.lookups, 1); /* one lookup for both */
	t0 = util_mono_ms();
	http_cancel(c.h, &req);
	ASSERT_TRUE(util_mono_ms() - t0 < 100); /* waits for no DNS */
	ASSERT_TRUE(req == NULL);
	ASSERT_EQ(http_inflight(c.h), 1);
	/* The other one goes on once the name is known. */
	fake_open(&f);
	ASSERT_EQ(run_one(&c, &res2), 0);
	ASSERT_EQ(res2.status, 200);
	ASSERT_EQ(res.is_done, 0);
	/* http_free while a lookup hangs returns at once too. */
	fake_close(&f);
	snprintf(url, sizeof(url), "https://other.test:%d/echo", port_ok);
	ASSERT_EQ(post_url(&c, url, &res, &req), 0);
	ASSERT_EQ(fake_wait(&f, &f.running, 1), 0);
	t0 = util_mono_ms();
	ctx_fini(&c);
	ASSERT_TRUE(util_mono_ms() - t0 < 500);
	ASSERT_EQ(res.is_done, 0);
	fake_open(&f); /* the detached worker returns and exits */
	ASSERT_EQ(fake_wait(&f, &f.finished, 2), 0);
	(void)nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000 }, NULL);
}

TEST(test_lookup_timeout_and_failure)
{
	struct fake_resolver f;
	struct http_options opt = { .ca_file = ca_path, .timeout_sec = 1 };
	struct result res;
	struct ctx c;
	char url[128];
	int64_t t0;

	fake_init(&f, false, false);
	opt.resolver = &f.ops;
	ASSERT_EQ(ctx_init_opt(&c, &opt), 0);
	snprintf(url, sizeof(url), "https://localhost:%d/echo", port_ok);
	t0 = util_mono_ms();
	ASSERT_EQ(post_url(&c, url, &res, NULL), 0);
	ASSERT_EQ(run_one(&c, &res), 0);
	ASSERT_EQ(res.error, -ETIMEDOUT); /* the timeout covers the lookup */
	ASSERT_EQ(res.status, 0);
	ASSERT_TRUE(!res.has_body);
	ASSERT_TRUE(util_mono_ms() - t0 >= 900);
	ASSERT_EQ(http_inflight(c.h), 0);
	fake_set(&f, -ENOENT);
	fake_open(&f);
	ASSERT_EQ(fake_wait(&f, &f.finished, 1), 0);
	snprintf(url, sizeof(url), "https://nowhere.test:%d/echo", port_ok);
	ASSERT_EQ(post_url(&c, url, &res, NULL), 0);
	ASSERT_EQ(run_one(&c, &res), 0);
	ASSERT_EQ(res.error, -EHOSTUNREACH);
	ctx_fini(&c);
}

/* With a proxy, libcurl looks up the proxy's name: so do we. */
TEST(test_proxy_name)
{
	static const struct {
		const char *proxy, *host;
		int port;
	} cases[] = {
		{ "http://proxy.test:3128", "proxy.test", 3128 },
		{ "http://Proxy.Test", "Proxy.Test", 1080 },
		{ "https://proxy.test", "proxy.test", 443 },
	};
	struct fake_resolver f;
	struct http_options opt = { .ca_file = ca_path, .timeout_sec = 5 };
	struct http_stats st;
	struct result res;
	struct ctx c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_init(&f, true, false);
		fake_set(&f, -ENOENT);
		opt.resolver = &f.ops;
		opt.proxy = cases[i].proxy;
		ASSERT_EQ(ctx_init_opt(&c, &opt), 0);
		ASSERT_EQ(post_url(&c, "https://idp.test/x", &res, NULL), 0);
		ASSERT_EQ(run_one(&c, &res), 0);
		ASSERT_EQ(res.error, -EHOSTUNREACH);
		ASSERT_STREQ(f.last_host, cases[i].host);
		ASSERT_EQ(f.last_port, cases[i].port);
		http_get_stats(c.h, &st);
		ASSERT_EQ(st.curl_resolves, 0);
		ctx_fini(&c);
	}
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (setup() < 0) {
		teardown();
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	RUN(test_post_ok);
	RUN(test_post_bearer);
	RUN(test_body_cap);
	RUN(test_untrusted_cert);
	RUN(test_timeout);
	RUN(test_refused);
	RUN(test_retry_after);
	RUN(test_concurrent);
	RUN(test_cancel_reentrant);
	RUN(test_name_lookup);
	RUN(test_cancel_while_lookup_hangs);
	RUN(test_lookup_timeout_and_failure);
	RUN(test_proxy_name);
	teardown();
	TEST_MAIN_END();
}
