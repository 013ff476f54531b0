/*
 * sink.c - `credctl sink --scope S --out FILE`: keeps FILE holding a
 * fresh access token for tools that read a bearer token from a file.
 * It wakes at half the token's time left, replaces the file atomically
 * when the token changed, and stops on SIGTERM, SIGINT or SIGHUP, or
 * when its session's endpoint secret (IDENTITY_HEADER) is refused.
 *
 * Must never: write the token anywhere but FILE (never stdout or a log
 * line), leave FILE or its temporary readable by anyone but its owner,
 * leave a partly written FILE in place, or hammer credd (it sleeps at
 * least SINK_MIN_SLEEP_S between requests, SINK_RETRY_S after an
 * error).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "out.h"

#define SINK_RETRY_S 30 /* after an error */
#define SINK_PROBE_S 30 /* session-end check */
#define SINK_MIN_SLEEP_S 5
#define SINK_MAX_SLEEP_S 3600

static volatile sig_atomic_t sink_stop;

static void
sink_signal(int sig)
{
	sink_stop = sig;
}

/* Replace path with tok: temp file 0600 in the same directory, rename. */
static int
sink_write(const char *path, const struct secret *tok)
{
	char tmp[PATH_MAX];
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) < 0 ||
	    util_write_all(fd, tok->ptr, tok->len) < 0 || fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

/*
 * Has the session ended? With IDENTITY_ENDPOINT and IDENTITY_HEADER set
 * (a PAM session, or credctl env), ask the endpoint: a 401 means the
 * secret ended (session closed, or expired). No endpoint, or credd not
 * answering: not ended.
 */
static int
sink_session_ended(void)
{
	const char *ep = getenv("IDENTITY_ENDPOINT");
	const char *sec = getenv("IDENTITY_HEADER");
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct timeval tv = { 5, 0 };
	char host[64], req[512], resp[64];
	const char *h, *e, *colon;
	long long port;
	ssize_t n;
	int fd, is6, ended = 0;
	size_t got = 0;

	if (ep == NULL || sec == NULL || strncmp(ep, "http://", 7) != 0 ||
	    !out_is_shell_safe(sec) || strlen(sec) > 128)
		return 0;
	h = ep + 7;
	e = strchr(h, '/');
	if (e == NULL || (size_t)(e - h) >= sizeof(host))
		return 0;
	memcpy(host, h, (size_t)(e - h));
	host[e - h] = '\0';
	colon = strrchr(host, ':');
	if (colon == NULL || util_strtonum(colon + 1, 1, 65535, &port) < 0)
		return 0;
	is6 = host[0] == '[';
	if (is6) {
		char a[64];

		snprintf(a, sizeof(a), "%.*s", (int)(colon - host - 2),
		    host + 1);
		if (inet_pton(AF_INET6, a, &s6.sin6_addr) != 1)
			return 0;
		s6.sin6_port = htons((uint16_t)port);
	} else {
		char a[64];

		snprintf(a, sizeof(a), "%.*s", (int)(colon - host), host);
		if (inet_pton(AF_INET, a, &s4.sin_addr) != 1)
			return 0;
		s4.sin_port = htons((uint16_t)port);
	}
	fd = socket(is6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, is6 ? (struct sockaddr *)&s6 : (struct sockaddr *)&s4,
		is6 ? sizeof(s6) : sizeof(s4)) < 0)
		goto out;
	/* No resource: a live secret gets 400, an ended one 401. */
	n = snprintf(req, sizeof(req),
	    "GET /msi/token?api-version=2019-08-01 "
	    "HTTP/1.1\r\nHost: %s\r\nX-IDENTITY-HEADER: %s\r\n"
	    "Connection: close\r\n\r\n",
	    host, sec);
	if (n < 0 || (size_t)n >= sizeof(req) ||
	    util_write_all(fd, req, (size_t)n) < 0)
		goto out;
	while (got < sizeof(resp) - 1) {
		n = read(fd, resp + got, sizeof(resp) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	resp[got] = '\0';
	ended = strncmp(resp, "HTTP/1.1 401", 12) == 0;
out:
	secret_wipe(req, sizeof(req));
	close(fd);
	return ended;
}

/* Sleep up to s seconds; 1 when told to stop (signal or session end). */
static int
sink_sleep(int64_t s, int64_t *next_probe)
{
	int64_t end = util_mono_ms() + s * 1000;
	struct timespec ts;

	while (!sink_stop && util_mono_ms() < end) {
		ts.tv_sec = 1;
		ts.tv_nsec = 0;
		(void)nanosleep(&ts, NULL);
		if (util_mono_ms() >= *next_probe) {
			*next_probe = util_mono_ms() + SINK_PROBE_S * 1000;
			if (sink_session_ended())
				return 1;
		}
	}
	return sink_stop != 0;
}

int
sink_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = { { "scope", required_argument,
						  NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ "once", no_argument, NULL, '1' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	const char *scope = NULL, *out = NULL;
	struct secret *last = NULL, *tok;
	struct sigaction sa;
	json_t *resp = NULL;
	int64_t exp, left, wait, next_probe;
	int ch, is_once = 0, r = EXIT_OK, is_first = 1;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			scope = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case '1':
			is_once = 1;
			break;
		case 's':
			c->socket = optarg;
			break;
		case 'h':
			printf("usage: credctl %s\n", cmd->usage);
			return EXIT_OK;
		default:
			out_errorf("sink: unknown option; usage: credctl %s",
			    cmd->usage);
			return EXIT_USAGE;
		}
	}
	if (scope == NULL || out == NULL || optind != argc ||
	    scope[0] == '\0' || strlen(scope) > PROTO_STR_MAX) {
		out_errorf("sink: usage: credctl %s", cmd->usage);
		return EXIT_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sink_signal; /* no SA_RESTART: sleeps end early */
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	next_probe = util_mono_ms() + SINK_PROBE_S * 1000;
	if (sink_session_ended()) {
		out_errorf(
		    "sink: the session's IDENTITY_HEADER is no longer valid");
		return EXIT_REFUSED;
	}
	while (!sink_stop) {
		r = call_token(c, scope, PROTO_MIN_VALID_DEFAULT, &resp, NULL);
		if (r == EXIT_REFUSED || r == EXIT_USAGE || r == EXIT_MISCONF ||
		    (is_once && r != EXIT_OK))
			break;
		if (r != EXIT_OK) {
			/* Sign-in needed or credd away: said once, retried. */
			util_closep(&c->fd);
			if (sink_sleep(SINK_RETRY_S, &next_probe))
				break;
			continue;
		}
		tok = secret_from_str(out_jstr(resp, "access_token"));
		exp = out_jint(resp, "expires_on", 0);
		json_decref(resp);
		resp = NULL;
		if (tok == NULL) {
			out_errorf("sink: credd's reply has no token");
			r = EXIT_ERR;
			break;
		}
		if (last == NULL || !secret_equal(last, tok)) {
			int w = sink_write(out, tok);

			if (w < 0) {
				out_errorf("sink: cannot write %s: %s", out,
				    strerror(-w));
				secret_free(tok);
				r = EXIT_ERR;
				break;
			}
			if (is_first)
				fprintf(stderr,
				    "%s: sink: %s kept fresh "
				    "(mode 0600)\n",
				    out_progname(), out);
			is_first = 0;
		}
		secret_free(last);
		last = tok;
		if (is_once)
			break;
		/* Wake at half the time left; credd refreshes before expiry. */
		left = exp - util_now();
		wait = left / 2;
		if (wait < SINK_MIN_SLEEP_S)
			wait = SINK_MIN_SLEEP_S;
		if (wait > SINK_MAX_SLEEP_S)
			wait = SINK_MAX_SLEEP_S;
		if (sink_sleep(wait, &next_probe)) {
			if (!sink_stop)
				fprintf(stderr,
				    "%s: sink: the session ended; "
				    "stopping\n",
				    out_progname());
			break;
		}
	}
	secret_free(last);
	return r;
}
