/*
 * scrape.h - the metrics page: every family credd exposes, in the
 * Prometheus text format 0.0.4 (metrics.h), gathered from the modules
 * that count (the socket listener, the SDK endpoint, the sessions, the
 * broker and its IdP client). Served by the metrics op (dispatch.c) and
 * the optional [metrics] listen HTTP endpoint (metrics_http.c).
 *
 * Must never: carry a user name, a token or any secret (labels are op,
 * outcome, class and listener names only), or change what it reads.
 */
#ifndef CREDD_SCRAPE_H
#define CREDD_SCRAPE_H

struct broker;
struct server;
struct sessions;
struct msi;
struct metrics_text;

/* What the page is gathered from, borrowed; msi NULL: endpoint off. */
struct scrape_sources {
	struct broker *broker;
	struct server *server;
	struct sessions *sessions;
	struct msi *msi;
};

/*
 * The whole page into *t (emptied first; metrics_text_free after).
 * 0 or -ENOMEM. The signature of metrics_http's page callback, so arg
 * is a struct scrape_sources.
 */
int scrape_page(void *arg, struct metrics_text *t);

#endif
