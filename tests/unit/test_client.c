/*
 * test_client.c - lib/client.c against small forked servers on a unix
 * socket in a temp directory: a silent server times out within the
 * deadline, a closing server gives -ECONNRESET, oversized or malformed
 * replies give -EBADMSG, pipelined replies are read one per call, and
 * the server's peer uid is checked (root or the named server user).
 * client_token_call writes the token request and reads the usual reply
 * as bytes, and hands anything else to jansson.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "entra/client.h"
#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"
#include "test.h"

enum mode {
	M_ECHO_OK,     /* {"ok":true,"n":N} per request */
	M_SILENT,      /* read, never answer */
	M_CLOSE,       /* read the request, close */
	M_HUGE,	       /* PROTO_LINE_MAX bytes, no newline */
	M_EXACT,       /* a reply of exactly PROTO_LINE_MAX bytes */
	M_OVER_BY_ONE, /* PROTO_LINE_MAX + 1 bytes with the newline */
	M_GARBAGE,     /* "not json\n" */
	M_PIPELINED,   /* two replies at once after the first request */
	M_TRICKLE      /* one reply a byte at a time */
};

static const char *dir;
static char sock_path[128];
static char my_name[256];

/* Read one request line from fd (blocking); 0 on success. */
static int
read_request(int fd)
{
	char c;
	ssize_t n;

	for (;;) {
		n = read(fd, &c, 1);
		if (n <= 0)
			return -1;
		if (c == '\n')
			return 0;
	}
}

static void
serve(int lfd, enum mode m)
{
	char *big;
	int fd, n = 0;

	signal(SIGPIPE, SIG_IGN);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		_exit(1);
	while (read_request(fd) == 0) {
		char line[64];
		size_t len;

		n++;
		switch (m) {
		case M_ECHO_OK:
			len = (size_t)snprintf(line, sizeof(line),
			    "{\"ok\":true,\"n\":%d}\n", n);
			(void)util_write_all(fd, line, len);
			break;
		case M_SILENT:
			pause();
			break;
		case M_CLOSE:
			_exit(0);
		case M_HUGE:
		case M_EXACT:
		case M_OVER_BY_ONE:
			/* {"ok":true,"x":"aaa..."}\n of the chosen size */
			len = m == M_HUGE ? PROTO_LINE_MAX + 100 :
			    m == M_EXACT  ? PROTO_LINE_MAX :
					    PROTO_LINE_MAX + 1;
			big = malloc(len);
			if (big == NULL)
				_exit(1);
			memset(big, 'a', len);
			memcpy(big, "{\"ok\":true,\"x\":\"", 16);
			if (m != M_HUGE)
				memcpy(big + len - 3, "\"}\n", 3);
			(void)util_write_all(fd, big, len);
			free(big);
			break;
		case M_GARBAGE:
			(void)util_write_all(fd, "not json\n", 9);
			break;
		case M_PIPELINED:
			if (n == 1)
				(void)util_write_all(fd,
				    "{\"ok\":true,\"n\":1}\n"
				    "{\"ok\":true,\"n\":2}\n",
				    36);
			break;
		case M_TRICKLE: {
			const char *r = "{\"ok\":true,\"n\":7}\n";
			size_t i;

			for (i = 0; r[i] != '\0'; i++) {
				(void)util_write_all(fd, r + i, 1);
				usleep(2000);
			}
			break;
		}
		}
	}
	_exit(0);
}

static void
serve_mode(int lfd, void *arg)
{
	serve(lfd, *(const enum mode *)arg);
}

/* Listen at sock_path and fork a server; uid > 0 drops to it first. */
static pid_t
start_server(enum mode m, uid_t uid)
{
	return fixture_unix_server(sock_path, uid, serve_mode, &m);
}

static void
stop_server(pid_t pid)
{
	fixture_kill(pid, SIGKILL);
}

/* Connect to our own server: as root, uid 0 passes; else name ourselves. */
static int
connect_own(int64_t ms)
{
	int64_t deadline = util_mono_ms() + ms;
	int fd, i;

	/* The child may not be listening yet. */
	for (i = 0; i < 200; i++) {
		fd = client_connect(sock_path, my_name, deadline);
		if (fd != -ECONNREFUSED)
			return fd;
		usleep(5000);
	}
	return fd;
}

static int
call(int fd, json_t **resp, int64_t ms)
{
	json_t *req = client_request("status");
	int r;

	if (req == NULL)
		return -ENOMEM;
	r = client_call(fd, req, resp, util_mono_ms() + ms);
	json_decref(req);
	return r;
}

/*
 * One call to a fresh server in mode m with a deadline of ms from now;
 * the server is stopped before this returns. *is_connected says whether
 * the connection was made (else the result is connect's error); *took,
 * when given, is the call's duration in ms.
 */
static int
call_server(enum mode m, int64_t ms, json_t **resp, int *is_connected,
    int64_t *took)
{
	pid_t pid = start_server(m, 0);
	int64_t t0;
	int fd, r;

	fd = connect_own(2000);
	*is_connected = fd >= 0;
	if (fd < 0) {
		stop_server(pid);
		return fd;
	}
	t0 = util_mono_ms();
	r = call(fd, resp, ms);
	if (took != NULL)
		*took = util_mono_ms() - t0;
	close(fd);
	stop_server(pid);
	return r;
}

TEST(test_request)
{
	json_t *r = client_request("token");

	ASSERT_TRUE(r != NULL);
	ASSERT_EQ(json_integer_value(json_object_get(r, "v")), PROTO_VERSION);
	ASSERT_STREQ(json_string_value(json_object_get(r, "op")), "token");
	json_decref(r);
	ASSERT_TRUE(client_request(NULL) == NULL);
}

TEST(test_not_running)
{
	struct sockaddr_un sun;
	char path[160];
	int fd;

	ASSERT_ERR(client_connect("/nonexistent/credd.sock", NULL,
		       util_mono_ms() + 1000),
	    -ENOENT);
	/* A socket file nobody listens on. */
	snprintf(path, sizeof(path), "%s/dead.sock", dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_TRUE(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	ASSERT_ERR(client_connect(path, NULL, util_mono_ms() + 1000),
	    -ECONNREFUSED);
	ASSERT_ERR(client_connect("", NULL, util_mono_ms() + 1000), -EINVAL);
	memset(path, 'x', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	ASSERT_ERR(client_connect(path, NULL, util_mono_ms() + 1000),
	    -ENAMETOOLONG);
}

TEST(test_round_trip_and_cloexec)
{
	json_t *resp = NULL;
	pid_t pid;
	int fd, i;

	pid = start_server(M_ECHO_OK, 0);
	ASSERT_TRUE(pid > 0);
	fd = connect_own(2000);
	if (fd < 0) {
		stop_server(pid);
		FAILF("connect: %s", strerror(-fd));
	}
	ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* Several requests in turn on one connection. */
	for (i = 1; i <= 3; i++) {
		ASSERT_EQ(call(fd, &resp, 2000), 0);
		ASSERT_EQ(json_integer_value(json_object_get(resp, "n")), i);
		json_decref(resp);
	}
	close(fd);
	stop_server(pid);
}

TEST(test_peer_uid_check)
{
	pid_t pid;
	int fd;

	if (geteuid() == 0) {
		/* Root: a server running as nobody is refused... */
		pid = start_server(M_ECHO_OK, 65534);
		ASSERT_TRUE(pid > 0);
		usleep(50000);
		fd = client_connect(sock_path, "root", util_mono_ms() + 2000);
		stop_server(pid);
		ASSERT_ERR(fd, -EPERM);
		/* ...unless it is the named server user. */
		pid = start_server(M_ECHO_OK, 65534);
		usleep(50000);
		fd = client_connect(sock_path, "nobody", util_mono_ms() + 2000);
		stop_server(pid);
		if (getpwnam("nobody") != NULL && fd < 0)
			FAILF("nobody refused: %s", strerror(-fd));
		if (fd >= 0)
			close(fd);
		/* An unknown server user only lets root through. */
		pid = start_server(M_ECHO_OK, 65534);
		usleep(50000);
		fd = client_connect(sock_path, "no-such-user-xyz",
		    util_mono_ms() + 2000);
		stop_server(pid);
		ASSERT_ERR(fd, -EPERM);
	} else {
		/* Not root: our own server is not root nor "root". */
		pid = start_server(M_ECHO_OK, 0);
		usleep(50000);
		fd = client_connect(sock_path, "root", util_mono_ms() + 2000);
		stop_server(pid);
		ASSERT_ERR(fd, -EPERM);
	}
	/* Our own server passes: as root it is uid 0, else we name us. */
	pid = start_server(M_ECHO_OK, 0);
	fd = connect_own(2000);
	stop_server(pid);
	ASSERT_TRUE(fd >= 0);
	close(fd);
}

TEST(test_silent_server_times_out)
{
	json_t *resp = NULL;
	int64_t dt = 0;
	int ok, r;

	r = call_server(M_SILENT, 300, &resp, &ok, &dt);
	ASSERT_TRUE(ok);
	ASSERT_ERR(r, -ETIMEDOUT);
	ASSERT_TRUE(resp == NULL);
	ASSERT_TRUE(dt >= 250 && dt < 2000);
}

TEST(test_deadline_already_passed)
{
	json_t *resp = NULL;
	int ok, r;

	r = call_server(M_SILENT, -1, &resp, &ok, NULL);
	ASSERT_TRUE(ok);
	/* The line fits the socket buffer; the read cannot finish. */
	ASSERT_ERR(r, -ETIMEDOUT);
}

TEST(test_backlog_full_times_out)
{
	struct sockaddr_un sun;
	int lfd, fds[64], n = 0, r = 0, i;
	int64_t t0;

	(void)unlink(sock_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_TRUE(lfd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1);
	ASSERT_EQ(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ASSERT_EQ(listen(lfd, 0), 0); /* never accepts */
	t0 = util_mono_ms();
	while (n < 64) {
		r = client_connect(sock_path, my_name, util_mono_ms() + 100);
		if (r < 0)
			break;
		fds[n++] = r;
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);
	ASSERT_ERR(r, -ETIMEDOUT);
	ASSERT_TRUE(util_mono_ms() - t0 < 5000);
}

TEST(test_closing_server)
{
	json_t *resp = NULL;
	pid_t pid;
	int fd, r;

	pid = start_server(M_CLOSE, 0);
	fd = connect_own(2000);
	ASSERT_TRUE(fd >= 0);
	r = call(fd, &resp, 2000);
	ASSERT_ERR(r, -ECONNRESET);
	/* The next call on the dead connection fails too, without SIGPIPE. */
	r = call(fd, &resp, 2000);
	ASSERT_ERR(r, -ECONNRESET);
	close(fd);
	stop_server(pid);
}

TEST(test_oversized_reply)
{
	json_t *resp = NULL;
	int ok, r;

	r = call_server(M_HUGE, 5000, &resp, &ok, NULL);
	ASSERT_TRUE(ok);
	ASSERT_ERR(r, -EBADMSG);
	ASSERT_TRUE(resp == NULL);

	r = call_server(M_OVER_BY_ONE, 5000, &resp, &ok, NULL);
	ASSERT_TRUE(ok);
	ASSERT_ERR(r, -EBADMSG);
}

TEST(test_exact_limit_reply)
{
	json_t *resp = NULL;
	int ok, r;

	r = call_server(M_EXACT, 5000, &resp, &ok, NULL);
	ASSERT_TRUE(ok);
	ASSERT_EQ(r, 0);
	ASSERT_EQ(strlen(json_string_value(json_object_get(resp, "x"))),
	    PROTO_LINE_MAX - 16 - 3);
	json_decref(resp);
}

TEST(test_garbage_reply)
{
	json_t *resp = NULL;
	int ok, r;

	r = call_server(M_GARBAGE, 2000, &resp, &ok, NULL);
	ASSERT_TRUE(ok);
	ASSERT_ERR(r, -EBADMSG);
	ASSERT_TRUE(resp == NULL);
}

TEST(test_pipelined_replies)
{
	json_t *resp = NULL;
	pid_t pid;
	int fd;

	pid = start_server(M_PIPELINED, 0);
	fd = connect_own(2000);
	ASSERT_TRUE(fd >= 0);
	usleep(20000);
	ASSERT_EQ(call(fd, &resp, 2000), 0);
	ASSERT_EQ(json_integer_value(json_object_get(resp, "n")), 1);
	json_decref(resp);
	/* The second reply was left in the socket for this call. */
	ASSERT_EQ(call(fd, &resp, 2000), 0);
	ASSERT_EQ(json_integer_value(json_object_get(resp, "n")), 2);
	json_decref(resp);
	close(fd);
	stop_server(pid);
}

TEST(test_trickled_reply)
{
	json_t *resp = NULL;
	pid_t pid;
	int fd;

	pid = start_server(M_TRICKLE, 0);
	fd = connect_own(2000);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(call(fd, &resp, 5000), 0);
	ASSERT_EQ(json_integer_value(json_object_get(resp, "n")), 7);
	json_decref(resp);
	close(fd);
	stop_server(pid);
}

TEST(test_socketpair_blocking_fd)
{
	json_t *resp = NULL;
	int sv[2], r;
	char buf[256];
	ssize_t n;

	/* client_call copes with a blocking fd it did not create. */
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ(util_write_all(sv[1], "{\"ok\":true}\n", 12), 0);
	r = call(sv[0], &resp, 1000);
	ASSERT_EQ(r, 0);
	json_decref(resp);
	n = read(sv[1], buf, sizeof(buf) - 1);
	ASSERT_TRUE(n > 0);
	buf[n] = '\0';
	ASSERT_STREQ(buf, "{\"v\":1,\"op\":\"status\"}\n");
	r = call(sv[0], &resp, 200);
	ASSERT_ERR(r, -ETIMEDOUT);
	close(sv[1]);
	r = call(sv[0], &resp, 200);
	ASSERT_ERR(r, -ECONNRESET);
	close(sv[0]);
}

static int
put(int fd, const char *s)
{
	return util_write_all(fd, s, strlen(s));
}

/* The token call: bytes both ways for the usual reply, jansson otherwise. */
TEST(test_token_call)
{
	static const char ok[] =
	    "{\"ok\":true,\"access_token\":\"eyJ.a.b\","
	    "\"token_type\":\"Bearer\",\"expires_on\":1796302006,\"scope\":"
	    "\"https://storage.azure.com/.default\",\"account\":\"a@b.c\"}\n";
	struct client_token tok;
	json_t *resp = NULL;
	char buf[512];
	int sv[2];
	ssize_t n;

	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* The usual reply: read as bytes, no JSON tree. */
	ASSERT_EQ(util_write_all(sv[1], ok, sizeof(ok) - 1), 0);
	ASSERT_EQ(client_token_call(sv[0], "storage", 60, &tok, &resp,
		      util_mono_ms() + 1000),
	    0);
	ASSERT_TRUE(resp == NULL && tok.access_token != NULL);
	ASSERT_STREQ(tok.access_token->ptr, "eyJ.a.b");
	ASSERT_EQ(tok.access_token->len, 7);
	ASSERT_STREQ(tok.token_type, "Bearer");
	ASSERT_EQ(tok.expires_on, 1796302006);
	ASSERT_STREQ(tok.scope, "https://storage.azure.com/.default");
	ASSERT_STREQ(tok.account, "a@b.c");
	client_token_clear(&tok);
	ASSERT_TRUE(tok.access_token == NULL && tok.scope == NULL);
	n = read(sv[1], buf, sizeof(buf) - 1);
	ASSERT_TRUE(n > 0);
	buf[n] = '\0';
	ASSERT_STREQ(buf,
	    "{\"v\":1,\"op\":\"token\",\"scope\":\"storage\","
	    "\"min_valid\":60}\n");

	/* An error reply: jansson's object, for the caller to report. */
	ASSERT_EQ(put(sv[1],
		      "{\"ok\":false,\"error\":{\"code\":"
		      "\"unknown_scope\",\"message\":\"m\"}}\n"),
	    0);
	ASSERT_EQ(client_token_call(sv[0], NULL, -1, &tok, &resp,
		      util_mono_ms() + 1000),
	    0);
	ASSERT_TRUE(resp != NULL && tok.access_token == NULL);
	ASSERT_STREQ(proto_response_error(resp), "unknown_scope");
	json_decref(resp);
	n = read(sv[1], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	ASSERT_STREQ(buf, "{\"v\":1,\"op\":\"token\"}\n");

	/* Escapes in the reply, and in the scope: the JSON path both ways. */
	ASSERT_EQ(put(sv[1],
		      "{\"ok\":true,\"access_token\":\"t\","
		      "\"account\":\"j\\u00f6rg\"}\n"),
	    0);
	ASSERT_EQ(client_token_call(sv[0], "a\"b", 0, &tok, &resp,
		      util_mono_ms() + 1000),
	    0);
	ASSERT_TRUE(resp != NULL && tok.access_token == NULL);
	ASSERT_STREQ(json_string_value(json_object_get(resp, "account")),
	    "j\xc3\xb6rg");
	json_decref(resp);
	n = read(sv[1], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	ASSERT_STREQ(buf,
	    "{\"v\":1,\"op\":\"token\",\"scope\":\"a\\\"b\","
	    "\"min_valid\":0}\n");

	/* Malformed: as client_call says. */
	ASSERT_EQ(put(sv[1], "{\"ok\":true,\"access_token\":\"t\"\n"), 0);
	ASSERT_ERR(client_token_call(sv[0], NULL, -1, &tok, &resp,
		       util_mono_ms() + 1000),
	    -EBADMSG);
	ASSERT_TRUE(resp == NULL && tok.access_token == NULL);
	close(sv[1]);
	ASSERT_ERR(client_token_call(sv[0], NULL, -1, &tok, &resp,
		       util_mono_ms() + 1000),
	    -ECONNRESET);
	close(sv[0]);
	client_token_clear(NULL);
}

int
main(void)
{
	struct passwd *pw;

	signal(SIGPIPE, SIG_DFL); /* the client must not need SIG_IGN */
	dir = fixture_tmpdir("client");
	if (dir == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/credd.sock", dir);
	pw = getpwuid(geteuid());
	snprintf(my_name, sizeof(my_name), "%s",
	    pw != NULL ? pw->pw_name : "root");

	RUN(test_request);
	RUN(test_not_running);
	RUN(test_round_trip_and_cloexec);
	RUN(test_peer_uid_check);
	RUN(test_silent_server_times_out);
	RUN(test_deadline_already_passed);
	RUN(test_backlog_full_times_out);
	RUN(test_closing_server);
	RUN(test_oversized_reply);
	RUN(test_exact_limit_reply);
	RUN(test_garbage_reply);
	RUN(test_pipelined_replies);
	RUN(test_trickled_reply);
	RUN(test_socketpair_blocking_fd);
	RUN(test_token_call);
	TEST_MAIN_END();
}
