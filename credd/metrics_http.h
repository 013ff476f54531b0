/*
 * metrics_http.h - the optional [metrics] listen endpoint: GET /metrics
 * on a loopback address answers the Prometheus text page, served with
 * libmicrohttpd on the loop (as the SDK endpoint is). Anyone on the node
 * who can reach the port can read it (docs/threat-model.md): the page
 * holds counts only, no user name and nothing secret.
 *
 * Must never: accept a body, answer anything but the page, 404 or 405,
 * serve a non-loopback address (config refuses one), or hold more than
 * METRICS_HTTP_CONNS connections.
 */
#ifndef CREDD_METRICS_HTTP_H
#define CREDD_METRICS_HTTP_H

#include <stddef.h>

struct event_loop;
struct metrics_text;
struct metrics_http;

/* Builds the page (scrape_page): 0 or -ENOMEM. */
typedef int metrics_http_page_fn(void *arg, struct metrics_text *t);

/*
 * Bind and listen on listen ("127.0.0.1:PORT" or "[::1]:PORT"; call
 * before dropping privileges). *fd set; 0 or -errno with err filled in.
 */
int metrics_http_listen(const char *listen, int *fd, char *err, size_t errsz);

/*
 * Serve on fd (taken: closed on failure too). fn and arg borrowed.
 * 0, -ENOMEM or -EIO (libmicrohttpd refused).
 */
int metrics_http_new(struct event_loop *ev, int fd, metrics_http_page_fn *fn,
    void *arg, struct metrics_http **out);
/* Close the listener and every connection; NULL is fine. */
void metrics_http_free(struct metrics_http *mh);

#endif
