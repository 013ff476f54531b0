/*
 * metrics_http.c - GET /metrics over loopback HTTP (metrics_http.h):
 * libmicrohttpd in external-epoll mode on credd's loop (mhd_loop.c),
 * its own listen socket, few short connections.
 *
 * Must never: block the loop (MHD runs only when its epoll fd is ready
 * or its timeout is due), or answer with anything but the page built
 * now (no caching: a scrape sees the counters as they are).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "mhd_loop.h"
#include "metrics.h"
#include "metrics_http.h"

#define METRICS_HTTP_CONNS 16	/* a scraper or two, and curl by hand */
#define METRICS_HTTP_TIMEOUT 10 /* s of silence before a drop */
#define METRICS_HTTP_MEMORY (16 * 1024)

struct metrics_http {
	struct MHD_Daemon *d;
	struct mhd_loop ml; /* MHD on the loop */
	metrics_http_page_fn *fn;
	void *arg;
};

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
    const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	resp =
	    MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		    "GET, HEAD");
	ok = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result
answer_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	char *body = strdup(text);

	if (body == NULL)
		return MHD_NO;
	return answer(conn, status, body, strlen(body),
	    "text/plain; charset=utf-8");
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct metrics_http *mh = cls;
	struct metrics_text t = { 0 };
	enum MHD_Result ok;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size != 0)
		return MHD_NO; /* a body: drop the connection */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed\n");
	if (strcmp(url, "/metrics") != 0)
		return answer_text(conn, MHD_HTTP_NOT_FOUND,
		    "not found; the page is /metrics\n");
	if (mh->fn(mh->arg, &t) < 0) {
		metrics_text_free(&t);
		return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "out of memory\n");
	}
	ok = answer(conn, MHD_HTTP_OK, t.buf, t.len,
	    "text/plain; version=0.0.4; charset=utf-8");
	t.buf = NULL; /* transferred (freed by MHD, or by answer) */
	return ok;
}

int
metrics_http_listen(const char *listen_addr, int *fd, char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	unsigned sslen = 0;
	int one = 1, s, r;

	*fd = -1;
	if (config_msi_addr(listen_addr, &ss, &sslen) < 0) {
		snprintf(err, errsz,
		    "[metrics] listen: not a loopback address");
		return -EINVAL;
	}
	s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0) {
		r = -errno;
		snprintf(err, errsz, "[metrics] listen: socket: %s",
		    strerror(-r));
		return r;
	}
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&ss, (socklen_t)sslen) < 0 ||
	    listen(s, 16) < 0) {
		r = -errno;
		snprintf(err, errsz, "[metrics] listen %s: %s", listen_addr,
		    strerror(-r));
		close(s);
		return r;
	}
	*fd = s;
	return 0;
}

int
metrics_http_new(struct event_loop *ev, int fd, metrics_http_page_fn *fn,
    void *arg, struct metrics_http **out)
{
	struct metrics_http *mh;
	int r;

	*out = NULL;
	mh = calloc(1, sizeof(*mh));
	if (mh == NULL) {
		close(fd);
		return -ENOMEM;
	}
	mh->fn = fn;
	mh->arg = arg;
	mh->ml.epfd = -1;
	mh->d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, access_cb, mh,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)METRICS_HTTP_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)METRICS_HTTP_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)METRICS_HTTP_CONNS, MHD_OPTION_STRICT_FOR_CLIENT, 1,
	    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_END);
	r = -EIO;
	if (mh->d == NULL) {
		close(fd);
		goto fail;
	}
	r = mhd_loop_start(&mh->ml, ev, mh->d);
	if (r < 0)
		goto fail;
	*out = mh;
	return 0;
fail:
	metrics_http_free(mh);
	return r;
}

void
metrics_http_free(struct metrics_http *mh)
{
	if (mh == NULL)
		return;
	mhd_loop_close(&mh->ml, mh->d); /* closes the listen socket too */
	free(mh);
}
