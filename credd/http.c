/*
 * http.c - HTTPS POSTs (and the discovery GET) to the IdP on libcurl's multi interface, driven
 * by event.c: curl tells us which sockets to watch (socket callback ->
 * event_add/mod/del) and when to wake it (timer callback -> one event
 * timer); fd events and the timer go back in via curl_multi_socket_action.
 *
 * Must never: follow redirects, speak anything but https, relax
 * certificate or host checks, read a proxy from the environment, set
 * CURLOPT_VERBOSE (it prints headers), or log or keep a body. Request and
 * response bodies live in buffers that are wiped before they are freed.
 *
 * Re-entrancy: user callbacks never run inside curl. After each
 * curl_multi_socket_action we drain curl_multi_info_read, remove the
 * finished easy handle, and only then call the user, who may start or
 * cancel requests. curl's own callbacks only touch the loop.
 *
 * Names: libcurl never looks one up itself. resolve.c does, off the
 * loop, and the answer goes to libcurl as a CURLOPT_RESOLVE entry before
 * the transfer is added; a request waits (in h->reqs, not yet in curl)
 * while the lookup runs, and cancelling it then only drops the query.
 * libcurl 7.88's own threaded resolver joins its thread on the loop when
 * a transfer is removed mid-lookup; CURLOPT_QUICK_EXIT makes it detach
 * instead, should it ever run (on_resolver_start in http_req.c counts
 * that).
 *
 * http_req.c sets up each request's easy handle: its options, headers,
 * response buffer and Retry-After; this file drives the multi handle,
 * looks names up, completes and cancels requests.
 *
 * credd is single-threaded on the loop; curl_global_init runs once, in
 * the first http_new, and curl_global_cleanup never (process lifetime).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "entra/secret.h"
#include "entra/util.h"
#include "event.h"
#include "http.h"
#include "http_int.h"
#include "log.h"
#include "metrics.h"
#include "resolve.h"

/*
 * Connections per host. Entra speaks HTTP/2, where curl multiplexes
 * requests over one connection; this bounds HTTP/1.1 (and the test
 * server). Queued requests wait for a free connection; their timeout
 * counts from http_post_form, so a long queue shows up as timeouts.
 */
#define HTTP_MAX_HOST_CONNS 32

struct http_sock {
	int fd;
	struct http_sock *prev, *next;
};

static bool http_is_global_init;

/* --- curl <-> loop ----------------------------------------------------- */

static void complete_done(struct http *h);

static void
on_fd(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct http *h = arg;
	int flags = 0, running;

	if (revents & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
		flags |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	(void)curl_multi_socket_action(h->multi, fd, flags, &running);
	complete_done(h);
}

static void
on_timer(struct event_loop *ev, void *arg)
{
	struct http *h = arg;
	int running;

	h->timer = NULL; /* fired: the handle is gone */
	(void)curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	complete_done(h);
}

/* CURLMOPT_TIMERFUNCTION: one timer; -1 cancels, 0 means "soon". */
static int
curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;

	event_timer_cancel(h->ev, &h->timer);
	if (timeout_ms < 0 || h->is_closing)
		return 0;
	/* Never call socket_action from here: curl is on the stack. */
	h->timer = event_timer_in(h->ev, timeout_ms, on_timer, h);
	return h->timer == NULL ? -1 : 0;
}

static void
sock_forget(struct http *h, struct http_sock *s)
{
	event_del(h->ev, s->fd);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		h->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest into the loop. */
static int
curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *socketp)
{
	struct http *h = userp;
	struct http_sock *s = socketp;
	uint32_t events = 0;
	int r;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			(void)curl_multi_assign(h->multi, fd, NULL);
			sock_forget(h, s);
		}
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EPOLLOUT;
	if (s != NULL)
		return event_mod(h->ev, fd, events) < 0 ? -1 : 0;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -1;
	s->fd = fd;
	r = event_add(h->ev, fd, events, on_fd, h);
	if (r == -EEXIST) {
		/* A stale watcher on a reused fd number: replace it. */
		event_del(h->ev, fd);
		r = event_add(h->ev, fd, events, on_fd, h);
	}
	if (r < 0) {
		free(s);
		return -1;
	}
	s->next = h->socks;
	if (h->socks != NULL)
		h->socks->prev = s;
	h->socks = s;
	(void)curl_multi_assign(h->multi, fd, s);
	return 0;
}

/* --- requests ---------------------------------------------------------- */

static void
req_unlink(struct http *h, struct http_req *req)
{
	if (req->prev != NULL)
		req->prev->next = req->next;
	else if (h->reqs == req)
		h->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
	if (h->ninflight > 0)
		h->ninflight--;
}

/* Free a request that is no longer in the multi handle. */
static void
req_free(struct http_req *req)
{
	if (req == NULL)
		return;
	if (req->easy != NULL)
		curl_easy_cleanup(req->easy);
	http_req_headers_free(req);
	curl_slist_free_all(req->resolve);
	free(req->host);
	secret_free(req->body);
	http_req_buf_free(req);
	free(req);
}

static int
map_curl_error(CURLcode rc, bool is_over_cap)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
		return -EPROTO;
	case CURLE_FILESIZE_EXCEEDED:
		return -EMSGSIZE;
	case CURLE_WRITE_ERROR:
		return is_over_cap ? -EMSGSIZE : -EIO;
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EPROTONOSUPPORT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* Take one finished request out of curl and tell its owner. */
/* The metrics page's latency, and health's last contact with the IdP. */
static void
note_contact(struct http *h, const struct http_req *req,
    const struct http_response *resp)
{
	metrics_hist_observe(&h->latency, metrics_now_us() - req->start_us);
	if (resp->error == 0 && resp->status > 0 && resp->status < 500) {
		h->last_ok = util_now();
		h->is_failing = 0;
		return;
	}
	h->last_fail = util_now();
	h->is_failing = 1;
	h->last_error = resp->error;
	h->last_status = resp->status;
}

static void
complete_one(struct http *h, CURL *easy, CURLcode rc)
{
	struct http_response resp = { 0 };
	struct http_req *req;
	struct secret body;
	char *priv = NULL;
	char empty[1] = "";
	long status = 0;

	if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
	    priv == NULL)
		return;
	req = (struct http_req *)(void *)priv;
	(void)curl_multi_remove_handle(h->multi, easy);
	req_unlink(h, req);
	/* Nothing to send any more: wipe the request body now. */
	secret_free(req->body);
	req->body = NULL;

	resp.retry_after = req->retry_after;
	resp.max_age = req->max_age;
	resp.error = map_curl_error(rc, req->is_over_cap);
	resp.error_msg = rc == CURLE_OK ? NULL : curl_easy_strerror(rc);
	if (resp.error == 0) {
		(void)curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		resp.status = status;
		body.ptr = req->buf != NULL ? req->buf : empty;
		body.len = req->len;
		resp.body = &body;
	}
	/* status stays 0 on error: oauth treats that as a network failure. */
	note_contact(h, req, &resp);
	h->completing = req;
	req->cb(req->arg, &resp);
	h->completing = NULL;
	req_free(req);
}

/*
 * Drain finished transfers. The user callback may add or remove
 * handles; curl_multi_remove_handle drops a cancelled handle's pending
 * message, so info_read never returns a freed handle.
 */
static void
complete_done(struct http *h)
{
	CURLMsg *msg;
	CURLcode rc;
	CURL *easy;
	int left;

	while (!h->is_closing &&
	    (msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy =
		    msg->easy_handle; /* msg is invalid after the next call */
		rc = msg->data.result;
		complete_one(h, easy, rc);
	}
}

/* --- names (resolve.c) ------------------------------------------------ */

/*
 * What libcurl would look up for url, and on which port: the proxy's
 * name when there is one (config.c allows http:// and https:// proxies,
 * which look the IdP up themselves), else the URL's host. Parsed as
 * lib/url.c in libcurl 7.88 does, so the CURLOPT_RESOLVE entry matches
 * the key libcurl then looks for. -EBADMSG: libcurl will refuse the URL
 * itself, before any lookup.
 */
static int
req_target(const struct http *h, struct http_req *req, const char *url)
{
	char *host = NULL, *port = NULL, *scheme = NULL;
	const char *p;
	struct in_addr a4;
	long long num = 0;
	CURLU *u;
	int r = -EBADMSG;

	u = curl_url();
	if (u == NULL)
		return -ENOMEM;
	if (h->proxy != NULL) {
		if (curl_url_set(u, CURLUPART_URL, h->proxy,
			CURLU_NON_SUPPORT_SCHEME | CURLU_GUESS_SCHEME) !=
			CURLUE_OK ||
		    curl_url_get(u, CURLUPART_HOST, &host, CURLU_URLDECODE) !=
			CURLUE_OK ||
		    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
			goto out;
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
			/* CURL_DEFAULT_HTTPS_PROXY_PORT, CURL_DEFAULT_PROXY_PORT */
			num = strcasecmp(scheme, "https") == 0 ? 443 : 1080;
	} else {
		if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_PORT, &port,
			CURLU_DEFAULT_PORT) != CURLUE_OK)
			goto out;
	}
	if (port != NULL && util_strtonum(port, 0, 65535, &num) < 0)
		goto out;
	req->port = (int)num;
	/* libcurl looks no address up ([v6] or a normalised IPv4). */
	req->is_literal = host[0] == '[' || inet_pton(AF_INET, host, &a4) == 1;
	/* A non-ASCII (IDN) name: libcurl looks up its punycode form, which
	 * we do not compute; it resolves that one itself (QUICK_EXIT). */
	for (p = host; *p != '\0' && !req->is_idn; p++)
		req->is_idn = (unsigned char)*p >= 0x80;
	req->host = strdup(host);
	r = req->host == NULL ? -ENOMEM : 0;
out:
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	return r;
}

/* Hand libcurl the addresses: "+host:port:a,b,[v6]" (not permanent). */
static int
req_set_addrs(struct http_req *req, const char *addrs)
{
	char entry[RESOLVE_HOST_MAX + 16 + RESOLVE_ADDRS_LEN];
	struct curl_slist *l;
	int n;

	n = snprintf(entry, sizeof(entry), "+%s:%d:%s", req->host, req->port,
	    addrs);
	if (n < 0 || (size_t)n >= sizeof(entry))
		return -EMSGSIZE;
	l = curl_slist_append(NULL, entry);
	if (l == NULL)
		return -ENOMEM;
	curl_slist_free_all(req->resolve);
	req->resolve = l;
	return curl_easy_setopt(req->easy, CURLOPT_RESOLVE, l) == CURLE_OK ?
	    0 :
	    -EINVAL;
}

/* A request that never reached curl ends here: tell its owner. */
static void
req_fail(struct http *h, struct http_req *req, int error)
{
	struct http_response resp = { 0 };

	req_unlink(h, req);
	secret_free(req->body);
	req->body = NULL;
	resp.retry_after = -1;
	resp.error = error;
	switch (error) { /* the texts libcurl would have given */
	case -ETIMEDOUT:
		resp.error_msg = curl_easy_strerror(CURLE_OPERATION_TIMEDOUT);
		break;
	case -EHOSTUNREACH:
		resp.error_msg = curl_easy_strerror(CURLE_COULDNT_RESOLVE_HOST);
		break;
	case -ENOMEM:
		resp.error_msg = curl_easy_strerror(CURLE_OUT_OF_MEMORY);
		break;
	default:
		resp.error_msg = curl_easy_strerror(CURLE_FAILED_INIT);
	}
	note_contact(h, req, &resp);
	h->completing = req;
	req->cb(req->arg, &resp);
	h->completing = NULL;
	req_free(req);
}

/* resolve.c answered (on the loop, never inside curl): now into curl. */
static void
on_resolved(void *arg, int error, const char *addrs)
{
	struct http_req *req = arg;
	struct http *h = req->h;
	int64_t left = req->deadline - event_now_ms(h->ev);

	req->rq = NULL;
	if (error == 0 && left <= 0)
		error = -ETIMEDOUT;
	if (error == 0)
		error = req_set_addrs(req, addrs);
	/* The timeout counts from http_post_form, the lookup included. */
	if (error == 0 &&
	    (curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, (long)left) !=
		    CURLE_OK ||
		curl_easy_setopt(req->easy, CURLOPT_CONNECTTIMEOUT_MS,
		    (long)left) != CURLE_OK))
		error = -EINVAL;
	if (error == 0 &&
	    curl_multi_add_handle(h->multi, req->easy) != CURLM_OK)
		error = -ENOMEM;
	if (error < 0)
		req_fail(h, req, error);
}

/*
 * Ready for curl (0), waiting for a lookup (-EINPROGRESS, req->rq set),
 * or -errno.
 */
static int
req_resolve(struct http *h, struct http_req *req, const char *url)
{
	char addrs[RESOLVE_ADDRS_LEN];
	int r;

	r = req_target(h, req, url);
	if (r == -EBADMSG || (r == 0 && (req->is_literal || req->is_idn)))
		return 0;
	if (r < 0)
		return r;
	r = resolve_lookup(h->res, req->host, req->port, addrs, on_resolved,
	    req, &req->rq);
	if (r == 0)
		r = req_set_addrs(req, addrs);
	return r;
}

/*
 * A POST of body; with bearer, a JSON body and that Authorization; body
 * NULL: a GET.
 */
static int
post(struct http *h, const char *url, const struct secret *body,
    const struct secret *bearer, http_done_cb *cb, void *arg,
    struct http_req **out)
{
	struct http_req *req;
	int r;

	*out = NULL;
	if (h == NULL || url == NULL || cb == NULL || h->is_closing)
		return -EINVAL;
	if (strncasecmp(url, "https://", 8) != 0)
		return -EPROTONOSUPPORT;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -ENOMEM;
	req->h = h;
	req->cb = cb;
	req->arg = arg;
	req->retry_after = -1;
	req->max_age = -1;
	req->start_us = metrics_now_us();
	req->is_get = body == NULL;
	req->body = body != NULL ? secret_dup(body) : NULL;
	req->easy = curl_easy_init();
	if ((body != NULL && req->body == NULL) || req->easy == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	r = http_req_headers(req, bearer);
	if (r < 0)
		goto fail;
	r = http_req_setup(h, req, url);
	if (r < 0)
		goto fail;
	req->deadline = event_now_ms(h->ev) + (int64_t)h->timeout_sec * 1000;
	r = req_resolve(h, req, url);
	if (r == 0 && curl_multi_add_handle(h->multi, req->easy) != CURLM_OK)
		r = -ENOMEM;
	if (r < 0 && r != -EINPROGRESS)
		goto fail;
	req->next = h->reqs;
	if (h->reqs != NULL)
		h->reqs->prev = req;
	h->reqs = req;
	h->ninflight++;
	*out = req;
	return 0;
fail:
	req_free(req);
	return r;
}

int
http_post_form(struct http *h, const char *url, const struct secret *body,
    http_done_cb *cb, void *arg, struct http_req **out)
{
	return post(h, url, body, NULL, cb, arg, out);
}

int
http_get(struct http *h, const char *url, http_done_cb *cb, void *arg,
    struct http_req **out)
{
	return post(h, url, NULL, NULL, cb, arg, out);
}

int
http_post_bearer(struct http *h, const char *url, const struct secret *token,
    http_done_cb *cb, void *arg, struct http_req **out)
{
	static const char empty[] = "{}";
	struct secret body = { (char *)(uintptr_t)empty, sizeof(empty) - 1 };

	*out = NULL;
	if (token == NULL || token->len == 0 ||
	    strcspn(token->ptr, "\r\n") != token->len)
		return -EINVAL;
	return post(h, url, &body, token, cb, arg, out);
}

void
http_cancel(struct http *h, struct http_req **rp)
{
	struct http_req *req;

	if (h == NULL || rp == NULL || *rp == NULL)
		return;
	req = *rp;
	*rp = NULL;
	/* Inside its own callback the request is already out; freed after. */
	if (req == h->completing)
		return;
	if (req->rq != NULL) /* not in curl yet: no resolver to stop */
		resolve_cancel(h->res, &req->rq);
	else
		(void)curl_multi_remove_handle(h->multi, req->easy);
	req_unlink(h, req);
	req_free(req);
}

size_t
http_inflight(const struct http *h)
{
	return h == NULL ? 0 : h->ninflight;
}

/*
 * The libcurl we run on (not the one we were built with) must resolve
 * names off the loop and know CURLOPT_QUICK_EXIT: a synchronous resolver
 * would block the loop for every lookup, and without QUICK_EXIT a
 * cancelled lookup is joined on the loop. -ENOTSUP otherwise.
 */
static int
check_resolver(void)
{
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	CURLcode rc;
	CURL *e;

	if (vi == NULL || !(vi->features & CURL_VERSION_ASYNCHDNS)) {
		log_warnx(
		    "http: libcurl %s resolves host names synchronously, "
		    "which would block credd's event loop; use a libcurl with "
		    "the threaded resolver or c-ares",
		    vi != NULL ? vi->version : "(unknown)");
		return -ENOTSUP;
	}
	e = curl_easy_init();
	if (e == NULL)
		return -ENOMEM;
	rc = curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
	curl_easy_cleanup(e);
	if (rc != CURLE_OK) {
		log_warnx(
		    "http: libcurl %s lacks CURLOPT_QUICK_EXIT (7.87.0 or "
		    "later needed): a slow DNS server would block credd's event "
		    "loop",
		    vi->version);
		return -ENOTSUP;
	}
	return 0;
}

void
http_get_stats(const struct http *h, struct http_stats *st)
{
	struct resolve_stats rs;
	const struct http_req *req;

	memset(st, 0, sizeof(*st));
	if (h == NULL)
		return;
	st->inflight = h->ninflight;
	for (req = h->reqs; req != NULL; req = req->next)
		if (req->rq != NULL)
			st->resolving++;
	st->curl_resolves = h->ncurl_resolves;
	st->latency = h->latency;
	st->last_ok = h->last_ok;
	st->last_fail = h->last_fail;
	st->is_failing = h->is_failing;
	st->last_error = h->last_error;
	st->last_status = h->last_status;
	resolve_get_stats(h->res, &rs);
	st->resolver_threads = rs.workers;
	st->lookups = rs.lookups;
	st->stale_answers = rs.stale;
}

int
http_new(struct event_loop *ev, const struct http_options *opt,
    struct http **out)
{
	struct resolve_options ropt = { 0 };
	struct http *h;
	int r;

	*out = NULL;
	if (ev == NULL || opt == NULL)
		return -EINVAL;
	if (!http_is_global_init) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -EIO;
		http_is_global_init = true;
	}
	r = check_resolver();
	if (r < 0)
		return r;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->ev = ev;
	h->timeout_sec = opt->timeout_sec > 0 ? opt->timeout_sec : 10;
	h->max_body = opt->max_body > 0 ? opt->max_body : HTTP_BODY_MAX;
	if ((opt->ca_file != NULL &&
		(h->ca_file = strdup(opt->ca_file)) == NULL) ||
	    (opt->proxy != NULL && (h->proxy = strdup(opt->proxy)) == NULL))
		goto nomem;
	ropt.ops = opt->resolver;
	ropt.wait_ms = (int64_t)h->timeout_sec * 1000;
	r = resolve_new(ev, &ropt, &h->res);
	if (r < 0) {
		http_free(h);
		return r;
	}
	h->multi = curl_multi_init();
	if (h->multi == NULL)
		goto nomem;
	if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION,
		curl_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION,
		curl_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
		(long)HTTP_MAX_HOST_CONNS) != CURLM_OK) {
		http_free(h);
		return -EINVAL;
	}
	*out = h;
	return 0;
nomem:
	http_free(h);
	return -ENOMEM;
}

/*
 * Must not be called from an http callback; the loop must outlive h.
 * Transfers still resolving leave their resolver threads detached
 * (QUICK_EXIT): shutdown does not wait for DNS.
 */
void
http_free(struct http *h)
{
	struct http_req *req;

	if (h == NULL)
		return;
	while ((req = h->reqs) != NULL) {
		if (req->rq != NULL)
			resolve_cancel(h->res, &req->rq);
		else
			(void)curl_multi_remove_handle(h->multi, req->easy);
		req_unlink(h, req);
		req_free(req);
	}
	h->is_closing = true;
	/* Never waits for a lookup in progress (resolve.h). */
	resolve_free(h->res);
	if (h->multi != NULL)
		(void)curl_multi_cleanup(h->multi);
	/* Sockets curl closed without telling us (cached connections). */
	while (h->socks != NULL)
		sock_forget(h, h->socks);
	event_timer_cancel(h->ev, &h->timer);
	free(h->ca_file);
	free(h->proxy);
	free(h);
}
