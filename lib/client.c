/*
 * client.c - the blocking one-request client shared by pam_entra and
 * credctl: connect to credd's socket, check that the server is root or
 * the credd user (SO_PEERCRED), write one request line and read one
 * response line, all bounded by a CLOCK_MONOTONIC deadline.
 *
 * Must never: log, block past the deadline in socket I/O, raise SIGPIPE
 * in the host process (MSG_NOSIGNAL), leave a request or response line
 * (they may hold tokens) in freed memory unwiped, or trust the socket
 * file's owner instead of the peer's credentials.
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "entra/client.h"
#include "entra/paths.h"
#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#define CLIENT_CONNECT_RETRY_MS 10 /* backlog full: retry this often */
#define CLIENT_PW_BUF_MAX (1 << 20)

/* Milliseconds left before deadline_ms, clamped to int; 0 when passed. */
static int
remaining_ms(int64_t deadline_ms)
{
	int64_t left = deadline_ms - util_mono_ms();

	if (left <= 0)
		return 0;
	if (left > 1000000)
		return 1000000;
	return (int)left;
}

/* Wait for events on fd; 0 when ready, -ETIMEDOUT or -errno. */
static int
wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd pfd;
	int ms, r;

	for (;;) {
		ms = remaining_ms(deadline_ms);
		if (ms == 0)
			return -ETIMEDOUT;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			continue; /* re-check the deadline */
		if (pfd.revents & POLLNVAL)
			return -EBADF;
		/* POLLERR and POLLHUP surface through the next send/recv. */
		return 0;
	}
}

static int
sleep_ms(int ms)
{
	int r;

	do {
		r = poll(NULL, 0, ms);
	} while (r < 0 && errno == EINTR);
	return 0;
}

/* connect(2) a non-blocking AF_UNIX socket before the deadline. */
static int
connect_deadline(int fd, const struct sockaddr_un *sun, int64_t deadline_ms)
{
	socklen_t elen;
	int err, ms, r;

	for (;;) {
		r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
		if (r == 0 || errno == EISCONN)
			return 0;
		if (errno == EAGAIN) {
			/*
			 * AF_UNIX: the listen backlog is full and nothing is
			 * in progress; try again shortly.
			 */
			ms = remaining_ms(deadline_ms);
			if (ms == 0)
				return -ETIMEDOUT;
			(void)sleep_ms(ms < CLIENT_CONNECT_RETRY_MS ?
				ms :
				CLIENT_CONNECT_RETRY_MS);
			continue;
		}
		if (errno != EINPROGRESS && errno != EINTR && errno != EALREADY)
			return -errno;
		r = wait_fd(fd, POLLOUT, deadline_ms);
		if (r < 0)
			return r;
		err = 0;
		elen = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			return -errno;
		if (err != 0)
			return -err;
		return 0;
	}
}

/* Look up a user's uid with getpwnam_r; 0 or -ENOENT/-errno. */
static int
lookup_uid(const char *name, uid_t *out)
{
	struct passwd pw, *res = NULL;
	size_t sz;
	long hint;
	char *buf;
	int r;

	hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	sz = hint > 0 ? (size_t)hint : 16384;
	for (;;) {
		buf = malloc(sz);
		if (buf == NULL)
			return -ENOMEM;
		r = getpwnam_r(name, &pw, buf, sz, &res);
		if (r == ERANGE && sz < CLIENT_PW_BUF_MAX) {
			free(buf);
			sz *= 2;
			continue;
		}
		if (r == 0 && res != NULL)
			*out = pw.pw_uid;
		free(buf);
		if (r != 0)
			return -r;
		return res != NULL ? 0 : -ENOENT;
	}
}

/* The server must be root or server_user (SSSD's check, race-free). */
static int
check_server(int fd, const char *server_user)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t want;
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (len != sizeof(cred))
		return -EPERM;
	if (cred.uid == 0)
		return 0;
	r = lookup_uid(server_user != NULL ? server_user : ENTRA_CREDD_USER,
	    &want);
	if (r < 0)
		return r == -ENOMEM ? r : -EPERM;
	return cred.uid == want ? 0 : -EPERM;
}

int
client_connect(const char *path, const char *server_user, int64_t deadline_ms)
{
	struct sockaddr_un sun;
	size_t plen;
	int fd, r;

	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	plen = strlen(path);
	if (plen >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect_deadline(fd, &sun, deadline_ms);
	if (r == 0)
		r = check_server(fd, server_user);
	if (r < 0) {
		util_closep(&fd);
		return r;
	}
	return fd;
}

/* Write all of buf before the deadline. */
static int
send_deadline(int fd, const char *buf, size_t len, int64_t deadline_ms)
{
	ssize_t n;
	int r;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return -ECONNRESET;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			r = wait_fd(fd, POLLOUT, deadline_ms);
			if (r < 0)
				return r;
			continue;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read one line into buf (cap bytes) before the deadline. The bytes are
 * first peeked and only the line itself is consumed, so whatever follows
 * it stays in the socket for the next call. Returns the line length
 * including the newline, -EBADMSG when no newline comes within cap bytes,
 * -ECONNRESET on EOF, -ETIMEDOUT or -errno; *touched is how much of buf
 * was written, whatever the result (a peek can copy past the line).
 */
static ssize_t
recv_line(int fd, char *buf, size_t cap, int64_t deadline_ms, size_t *touched)
{
	size_t used = 0, take;
	ssize_t n, m;
	char *nl;
	int r;

	*touched = 0;
	while (used < cap) {
		n = recv(fd, buf + used, cap - used, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET || errno == EPIPE)
				return -ECONNRESET;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			r = wait_fd(fd, POLLIN, deadline_ms);
			if (r < 0)
				return r;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		/* A peek may copy more than the line: all of it is wiped. */
		if (used + (size_t)n > *touched)
			*touched = used + (size_t)n;
		nl = memchr(buf + used, '\n', (size_t)n);
		take = nl != NULL ? (size_t)(nl - (buf + used)) + 1 : (size_t)n;
		do {
			m = recv(fd, buf + used, take, MSG_DONTWAIT);
		} while (m < 0 && errno == EINTR);
		/* We are the only reader: the peeked bytes are there. */
		if (m < 0)
			return -errno;
		if ((size_t)m != take)
			return -EIO;
		used += take;
		if (nl != NULL)
			return (ssize_t)used;
	}
	return -EBADMSG;
}

/*
 * Read one reply line into a buffer of PROTO_LINE_MAX: its length
 * (newline included) and *bufp (malloc'd; the caller wipes the first
 * *touched bytes, all that was ever written, and frees it), or a
 * negative errno. Wiping what was written, not the whole 64 KiB, was a
 * seventh of a `credctl token` run.
 */
static ssize_t
recv_reply(int fd, char **bufp, size_t *touched, int64_t deadline_ms)
{
	char *buf;
	ssize_t n;

	*bufp = NULL;
	*touched = 0;
	buf = malloc(PROTO_LINE_MAX);
	if (buf == NULL)
		return -ENOMEM;
	n = recv_line(fd, buf, PROTO_LINE_MAX, deadline_ms, touched);
	if (n < 0) {
		secret_wipe(buf, *touched);
		free(buf);
		return n;
	}
	*bufp = buf;
	return n;
}

/* Send line[0..len), then wipe it (a request may carry a secret). */
static int
send_request(int fd, char *line, size_t len, int64_t deadline_ms)
{
	int r = send_deadline(fd, line, len, deadline_ms);

	secret_wipe(line, len);
	return r;
}

int
client_call(int fd, const json_t *req, json_t **resp, int64_t deadline_ms)
{
	char *line, *buf;
	size_t len, touched;
	ssize_t n;
	int r;

	*resp = NULL;
	if (fd < 0 || req == NULL)
		return -EINVAL;
	line = proto_encode(req, &len);
	if (line == NULL)
		return errno != 0 ? -errno : -ENOMEM;
	r = send_request(fd, line, len, deadline_ms);
	free(line);
	if (r < 0)
		return r;
	n = recv_reply(fd, &buf, &touched, deadline_ms);
	if (n < 0)
		return (int)n;
	r = proto_response_decode(buf, (size_t)n - 1, resp);
	secret_wipe(buf, touched); /* the reply may carry a token */
	free(buf);
	return r;
}

/* *tok from an ok token reply read by proto_lite_token_reply. */
static int
token_fill(struct client_token *tok, const struct proto_token_reply *tr)
{
	tok->access_token = secret_new(tr->access_token, tr->access_token_len);
	tok->token_type = tr->token_type != NULL ?
	    strndup(tr->token_type, tr->token_type_len) :
	    NULL;
	tok->scope =
	    tr->scope != NULL ? strndup(tr->scope, tr->scope_len) : NULL;
	tok->account =
	    tr->account != NULL ? strndup(tr->account, tr->account_len) : NULL;
	tok->expires_on = tr->expires_on;
	if (tok->access_token == NULL ||
	    (tr->token_type != NULL && tok->token_type == NULL) ||
	    (tr->scope != NULL && tok->scope == NULL) ||
	    (tr->account != NULL && tok->account == NULL)) {
		client_token_clear(tok);
		return -ENOMEM;
	}
	return 0;
}

/* The token request line: without jansson when the scope is plain. */
static char *
token_request(const char *scope, int64_t min_valid, size_t *len)
{
	char *line;
	json_t *req;
	ssize_t n;

	line = malloc(PROTO_STR_MAX + 128);
	if (line == NULL)
		return NULL;
	n = proto_lite_token_request(line, PROTO_STR_MAX + 128, scope,
	    min_valid);
	if (n > 0) {
		*len = (size_t)n;
		return line;
	}
	free(line);
	req = client_request("token");
	if (req == NULL ||
	    (scope != NULL &&
		json_object_set_new(req, "scope", json_string(scope)) < 0) ||
	    (min_valid >= 0 &&
		json_object_set_new(req, "min_valid", json_integer(min_valid)) <
		    0)) {
		json_decref(req);
		errno = ENOMEM;
		return NULL;
	}
	line = proto_encode(req, len);
	json_decref(req);
	return line;
}

int
client_token_call(int fd, const char *scope, int64_t min_valid,
    struct client_token *tok, json_t **resp, int64_t deadline_ms)
{
	struct proto_token_reply tr;
	char *line, *buf;
	size_t len, touched;
	ssize_t n;
	int r;

	memset(tok, 0, sizeof(*tok));
	*resp = NULL;
	if (fd < 0)
		return -EINVAL;
	errno = 0;
	line = token_request(scope, min_valid, &len);
	if (line == NULL)
		return errno != 0 ? -errno : -ENOMEM;
	r = send_request(fd, line, len, deadline_ms);
	free(line);
	if (r < 0)
		return r;
	n = recv_reply(fd, &buf, &touched, deadline_ms);
	if (n < 0)
		return (int)n;
	if (proto_lite_token_reply(buf, (size_t)n - 1, &tr))
		r = token_fill(tok, &tr);
	else
		r = proto_response_decode(buf, (size_t)n - 1, resp);
	secret_wipe(&tr, sizeof(tr)); /* pointers into the token */
	secret_wipe(buf, touched);
	free(buf);
	return r;
}

void
client_token_clear(struct client_token *tok)
{
	if (tok == NULL)
		return;
	secret_free(tok->access_token);
	free(tok->token_type);
	free(tok->scope);
	free(tok->account);
	memset(tok, 0, sizeof(*tok));
}

json_t *
client_request(const char *op)
{
	if (op == NULL)
		return NULL;
	return json_pack("{s:i,s:s}", "v", PROTO_VERSION, "op", op);
}
