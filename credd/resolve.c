/*
 * resolve.c - host-name lookups off the event loop (see resolve.h).
 *
 * The loop owns the cache, the jobs (one per host:port being looked up)
 * and the queries waiting for them. What the workers see sits in a
 * separate struct rs_shared under one mutex: the queue of jobs to run,
 * the list of jobs answered, the eventfd that wakes the loop, and a
 * reference count, because a worker stuck in getaddrinfo may outlive
 * resolve_free and must then free the job and the shared part itself.
 *
 * Must never: block the loop (it only takes the mutex to move list
 * heads), join a worker that may be inside a lookup, run a callback off
 * the loop or inside resolve_lookup, or start more than RESOLVE_WORKERS
 * threads. Host names are not secrets; nothing here logs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event.h"
#include "resolve.h"

struct rs_job {
	char host[RESOLVE_HOST_MAX + 1];
	int port;
	int error;		       /* written by the worker */
	char addrs[RESOLVE_ADDRS_LEN]; /* written by the worker */
	bool is_taken;		       /* a worker has it (under mu) */
	bool is_done;		       /* on the done list (under mu) */
	bool is_orphan;		    /* resolve is gone: the worker frees it */
	struct rs_job *qnext;	    /* todo or done list (under mu) */
	struct rs_job *prev, *next; /* r->jobs (loop) */
	struct resolve_query *wq_head, *wq_tail; /* waiting (loop) */
};

struct resolve_query {
	struct rs_job *job;
	resolve_done_cb *cb;
	void *arg;
	int64_t deadline;		     /* loop clock */
	struct resolve_query *jprev, *jnext; /* job->wq */
	struct resolve_query *dprev, *dnext; /* r->dl, by deadline */
};

struct rs_worker {
	struct rs_shared *sh;
	pthread_t tid;
	bool is_started;
	bool is_busy; /* inside ops.lookup (under mu) */
};

struct rs_shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned refs; /* the loop's, plus one per worker */
	bool is_closing;
	struct rs_job *todo_head, *todo_tail;
	struct rs_job *done_head, *done_tail;
	unsigned ntodo, nworkers, nbusy;
	struct rs_worker w[RESOLVE_WORKERS];
	struct resolve_ops ops;
	int efd;
};

struct rs_entry {
	char host[RESOLVE_HOST_MAX + 1];
	int port;
	char addrs[RESOLVE_ADDRS_LEN];
	int64_t at; /* ops clock */
	struct rs_entry *next;
};

struct resolve {
	struct event_loop *ev;
	struct rs_shared *sh;
	int64_t wait_ms, fresh_ms, stale_ms;
	struct rs_job *jobs;
	struct resolve_query *dl_head, *dl_tail;
	struct event_timer *timer;
	struct rs_entry *cache;
	size_t ncache;
	uint64_t nlookups, nstale;
};

/* --- the system resolver (worker threads) ----------------------------- */

static int
addrs_append(char addrs[RESOLVE_ADDRS_LEN], size_t *o, const char *a,
    bool is_v6)
{
	int n;

	n = snprintf(addrs + *o, RESOLVE_ADDRS_LEN - *o, "%s%s%s%s",
	    *o > 0 ? "," : "", is_v6 ? "[" : "", a, is_v6 ? "]" : "");
	if (n < 0 || (size_t)n >= RESOLVE_ADDRS_LEN - *o) {
		addrs[*o] = '\0';
		return -EMSGSIZE;
	}
	*o += (size_t)n;
	return 0;
}

static int
sys_lookup(void *arg, const char *host, int port, char addrs[RESOLVE_ADDRS_LEN])
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	char serv[8], seen[RESOLVE_ADDRS_MAX][INET6_ADDRSTRLEN];
	size_t o = 0, n = 0, i;
	int r;

	(void)arg;
	addrs[0] = '\0';
	/* As libcurl asks: both families, stream sockets, no AI_ADDRCONFIG
	 * (it ignores loopback, and the IdP may be on it in tests). */
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	(void)snprintf(serv, sizeof(serv), "%d", port);
	r = getaddrinfo(host, serv, &hints, &res);
	switch (r) {
	case 0:
		break;
	case EAI_NONAME:
	case EAI_NODATA:
		return -ENOENT;
	case EAI_MEMORY:
		return -ENOMEM;
	default:
		return -EHOSTUNREACH; /* EAI_AGAIN, EAI_FAIL, EAI_SYSTEM */
	}
	for (ai = res; ai != NULL && n < RESOLVE_ADDRS_MAX; ai = ai->ai_next) {
		const void *p;

		if (ai->ai_family == AF_INET)
			p = &((const struct sockaddr_in *)(const void *)
				  ai->ai_addr)
				 ->sin_addr;
		else if (ai->ai_family == AF_INET6)
			p = &((const struct sockaddr_in6 *)(const void *)
				  ai->ai_addr)
				 ->sin6_addr;
		else
			continue;
		if (inet_ntop(ai->ai_family, p, seen[n], sizeof(seen[n])) ==
		    NULL)
			continue;
		for (i = 0; i < n && strcmp(seen[i], seen[n]) != 0; i++)
			;
		if (i < n)
			continue; /* listed twice (/etc/hosts) */
		if (addrs_append(addrs, &o, seen[n],
			ai->ai_family == AF_INET6) < 0)
			break;
		n++;
	}
	freeaddrinfo(res);
	return n > 0 ? 0 : -ENOENT;
}

static const struct resolve_ops sys_ops = { .lookup = sys_lookup };

/* --- workers ----------------------------------------------------------- */

static void
shared_free(struct rs_shared *sh)
{
	if (sh->efd >= 0)
		(void)close(sh->efd);
	pthread_mutex_destroy(&sh->mu);
	pthread_cond_destroy(&sh->cv);
	free(sh);
}

/* Drop one reference; the last one frees. Called with mu held. */
static void
shared_unref_locked(struct rs_shared *sh)
{
	bool is_last = --sh->refs == 0;

	pthread_mutex_unlock(&sh->mu);
	if (is_last)
		shared_free(sh);
}

static void
list_push(struct rs_job **head, struct rs_job **tail, struct rs_job *j)
{
	j->qnext = NULL;
	if (*tail != NULL)
		(*tail)->qnext = j;
	else
		*head = j;
	*tail = j;
}

static void *
worker_main(void *arg)
{
	struct rs_worker *w = arg;
	struct rs_shared *sh = w->sh;
	uint64_t one = 1;
	struct rs_job *j;

	(void)pthread_setname_np(pthread_self(), "credd-resolve");
	pthread_mutex_lock(&sh->mu);
	for (;;) {
		while (sh->todo_head == NULL && !sh->is_closing)
			pthread_cond_wait(&sh->cv, &sh->mu);
		if (sh->is_closing)
			break;
		j = sh->todo_head;
		sh->todo_head = j->qnext;
		if (sh->todo_head == NULL)
			sh->todo_tail = NULL;
		sh->ntodo--;
		j->is_taken = true;
		w->is_busy = true;
		sh->nbusy++;
		pthread_mutex_unlock(&sh->mu);
		/* May take as long as the DNS likes; the loop does not wait. */
		j->error =
		    sh->ops.lookup(sh->ops.arg, j->host, j->port, j->addrs);
		pthread_mutex_lock(&sh->mu);
		w->is_busy = false;
		sh->nbusy--;
		if (j->is_orphan) {
			free(j); /* resolve_free left it to us */
			continue;
		}
		j->is_done = true;
		list_push(&sh->done_head, &sh->done_tail, j);
		if (write(sh->efd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is already non-zero */
		}
	}
	sh->nworkers--;
	shared_unref_locked(sh);
	return NULL;
}

/* Another worker when jobs outnumber idle workers. Called with mu held. */
static int
worker_maybe_start_locked(struct rs_shared *sh)
{
	sigset_t all, old;
	struct rs_worker *w = NULL;
	unsigned i;
	int r;

	if (sh->ntodo <= sh->nworkers - sh->nbusy ||
	    sh->nworkers >= RESOLVE_WORKERS)
		return 0;
	for (i = 0; i < RESOLVE_WORKERS && w == NULL; i++)
		if (!sh->w[i].is_started)
			w = &sh->w[i];
	if (w == NULL)
		return 0;
	w->sh = sh;
	/* Workers take no signals: they belong to the loop's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&w->tid, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return r;
	w->is_started = true;
	sh->nworkers++;
	sh->refs++;
	return 0;
}

/* --- cache (loop) ------------------------------------------------------ */

static int64_t
clock_now(const struct resolve *r)
{
	if (r->sh->ops.now_ms != NULL)
		return r->sh->ops.now_ms(r->sh->ops.arg);
	return event_now_ms(r->ev);
}

static struct rs_entry *
cache_find(const struct resolve *r, const char *host, int port)
{
	struct rs_entry *e;

	for (e = r->cache; e != NULL; e = e->next) /* a few names */
		if (e->port == port && strcasecmp(e->host, host) == 0)
			return e;
	return NULL;
}

static void
cache_drop(struct resolve *r, struct rs_entry *e)
{
	struct rs_entry **pp;

	for (pp = &r->cache; *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e);
			r->ncache--;
			return;
		}
}

static void
cache_put(struct resolve *r, const struct rs_job *j)
{
	struct rs_entry *e = cache_find(r, j->host, j->port), *old;

	if (e == NULL) {
		if (r->ncache >= RESOLVE_CACHE_MAX) {
			for (old = e = r->cache; e != NULL; e = e->next)
				if (e->at < old->at)
					old = e;
			cache_drop(r, old);
		}
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return; /* answered, just not cached */
		memcpy(e->host, j->host, sizeof(e->host));
		e->port = j->port;
		e->next = r->cache;
		r->cache = e;
		r->ncache++;
	}
	memcpy(e->addrs, j->addrs, sizeof(e->addrs));
	e->at = clock_now(r);
}

/* --- queries (loop) ---------------------------------------------------- */

static void on_deadline(struct event_loop *ev, void *arg);

/* The timer follows the head of the deadline list (all waits are equal,
 * so the list is in deadline order). */
static void
arm(struct resolve *r)
{
	event_timer_cancel(r->ev, &r->timer);
	if (r->dl_head != NULL)
		r->timer =
		    event_timer_at(r->ev, r->dl_head->deadline, on_deadline, r);
}

static void
query_unlink(struct resolve *r, struct resolve_query *q)
{
	struct rs_job *j = q->job;
	bool was_head = r->dl_head == q;

	if (q->jprev != NULL)
		q->jprev->jnext = q->jnext;
	else
		j->wq_head = q->jnext;
	if (q->jnext != NULL)
		q->jnext->jprev = q->jprev;
	else
		j->wq_tail = q->jprev;
	if (q->dprev != NULL)
		q->dprev->dnext = q->dnext;
	else
		r->dl_head = q->dnext;
	if (q->dnext != NULL)
		q->dnext->dprev = q->dprev;
	else
		r->dl_tail = q->dprev;
	q->job = NULL;
	if (was_head)
		arm(r);
}

static void
on_deadline(struct event_loop *ev, void *arg)
{
	struct resolve *r = arg;
	struct resolve_query *q;
	resolve_done_cb *cb;
	void *cbarg;

	r->timer = NULL; /* fired: the handle is gone */
	while ((q = r->dl_head) != NULL && q->deadline <= event_now_ms(ev)) {
		cb = q->cb;
		cbarg = q->arg;
		query_unlink(r, q);
		free(q);
		/* The lookup goes on; its answer will be cached. */
		cb(cbarg, -ETIMEDOUT, NULL);
	}
	if (r->timer == NULL)
		arm(r);
}

/* --- jobs (loop) ------------------------------------------------------- */

static struct rs_job *
job_find(const struct resolve *r, const char *host, int port)
{
	struct rs_job *j;

	for (j = r->jobs; j != NULL; j = j->next)
		if (j->port == port && strcasecmp(j->host, host) == 0)
			return j;
	return NULL;
}

static void
job_unlink(struct resolve *r, struct rs_job *j)
{
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		r->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
}

/* The running or queued lookup of host:port, or a new one. */
static int
job_get(struct resolve *r, const char *host, int port, struct rs_job **out)
{
	struct rs_shared *sh = r->sh;
	struct rs_job *j;
	int err;

	*out = job_find(r, host, port);
	if (*out != NULL)
		return 0;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	memcpy(j->host, host, strlen(host) + 1);
	j->port = port;
	pthread_mutex_lock(&sh->mu);
	list_push(&sh->todo_head, &sh->todo_tail, j);
	sh->ntodo++;
	err = worker_maybe_start_locked(sh);
	if (err < 0 && sh->nworkers == 0) {
		/* No thread at all: take the job back. */
		sh->todo_head = sh->todo_tail = NULL;
		sh->ntodo = 0;
		pthread_mutex_unlock(&sh->mu);
		free(j);
		return err;
	}
	pthread_cond_signal(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	j->next = r->jobs;
	if (r->jobs != NULL)
		r->jobs->prev = j;
	r->jobs = j;
	r->nlookups++;
	*out = j;
	return 0;
}

/* A job came back: cache its answer, then tell whoever still waits. */
static void
job_finish(struct resolve *r, struct rs_job *j)
{
	struct rs_entry *e = cache_find(r, j->host, j->port);
	struct resolve_query *q;
	resolve_done_cb *cb;
	void *cbarg;
	int err;

	job_unlink(r, j); /* from now on a lookup starts afresh */
	if (j->error == 0)
		cache_put(r, j);
	else if (j->error == -ENOENT && e != NULL)
		cache_drop(r, e); /* the name is gone */
	/* else: a failure that may pass; a stale answer stays usable */
	err = j->error == 0 ? 0 : j->error == -ENOMEM ? -ENOMEM : -EHOSTUNREACH;
	/* One at a time: a callback may cancel the next waiter. */
	while ((q = j->wq_head) != NULL) {
		cb = q->cb;
		cbarg = q->arg;
		query_unlink(r, q);
		free(q);
		cb(cbarg, err, err == 0 ? j->addrs : NULL);
	}
	free(j);
}

static void
on_efd(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct resolve *r = arg;
	struct rs_job *list, *j;
	uint64_t v;

	(void)ev;
	(void)revents;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already drained */
	}
	pthread_mutex_lock(&r->sh->mu);
	list = r->sh->done_head;
	r->sh->done_head = r->sh->done_tail = NULL;
	pthread_mutex_unlock(&r->sh->mu);
	while ((j = list) != NULL) {
		list = j->qnext;
		job_finish(r, j);
	}
}

/* --- API --------------------------------------------------------------- */

int
resolve_new(struct event_loop *ev, const struct resolve_options *opt,
    struct resolve **out)
{
	struct resolve *r;
	struct rs_shared *sh;
	int err;

	*out = NULL;
	if (ev == NULL)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	sh = calloc(1, sizeof(*sh));
	if (r == NULL || sh == NULL) {
		free(r);
		free(sh);
		return -ENOMEM;
	}
	r->ev = ev;
	r->sh = sh;
	r->wait_ms = opt != NULL && opt->wait_ms > 0 ? opt->wait_ms : 10000;
	r->fresh_ms =
	    opt != NULL && opt->fresh_ms > 0 ? opt->fresh_ms : RESOLVE_FRESH_MS;
	r->stale_ms =
	    opt != NULL && opt->stale_ms > 0 ? opt->stale_ms : RESOLVE_STALE_MS;
	sh->ops = opt != NULL && opt->ops != NULL ? *opt->ops : sys_ops;
	if (sh->ops.lookup == NULL)
		sh->ops.lookup = sys_lookup;
	sh->refs = 1;
	pthread_mutex_init(&sh->mu, NULL);
	pthread_cond_init(&sh->cv, NULL);
	sh->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sh->efd < 0) {
		err = -errno;
		goto fail;
	}
	err = event_add(ev, sh->efd, EPOLLIN, on_efd, r);
	if (err < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	shared_free(sh);
	free(r);
	return err;
}

void
resolve_free(struct resolve *r)
{
	struct rs_shared *sh;
	struct resolve_query *q;
	struct rs_job *j, *next;
	struct rs_entry *e;
	pthread_t join[RESOLVE_WORKERS], detach[RESOLVE_WORKERS];
	unsigned i, njoin = 0, ndetach = 0;

	if (r == NULL)
		return;
	sh = r->sh;
	while ((q = r->dl_head) != NULL) {
		query_unlink(r, q);
		free(q);
	}
	event_timer_cancel(r->ev, &r->timer);
	event_del(r->ev, sh->efd);
	pthread_mutex_lock(&sh->mu);
	sh->is_closing = true;
	sh->todo_head = sh->todo_tail = NULL; /* r->jobs still has them */
	sh->done_head = sh->done_tail = NULL; /* likewise */
	sh->ntodo = 0;
	for (j = r->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->is_taken && !j->is_done)
			j->is_orphan = true; /* its worker frees it */
		else
			free(j);
	}
	r->jobs = NULL;
	/* An idle worker exits at once and is joined; a busy one may be in
	 * a lookup for minutes, so it is detached, never waited for. */
	for (i = 0; i < RESOLVE_WORKERS; i++) {
		if (!sh->w[i].is_started)
			continue;
		if (sh->w[i].is_busy)
			detach[ndetach++] = sh->w[i].tid;
		else
			join[njoin++] = sh->w[i].tid;
	}
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	for (i = 0; i < ndetach; i++)
		(void)pthread_detach(detach[i]);
	for (i = 0; i < njoin; i++)
		(void)pthread_join(join[i], NULL);
	while ((e = r->cache) != NULL) {
		r->cache = e->next;
		free(e);
	}
	pthread_mutex_lock(&sh->mu);
	shared_unref_locked(sh);
	free(r);
}

int
resolve_lookup(struct resolve *r, const char *host, int port,
    char addrs[RESOLVE_ADDRS_LEN], resolve_done_cb *cb, void *arg,
    struct resolve_query **out)
{
	struct resolve_query *q;
	struct rs_entry *e;
	struct rs_job *j;
	int64_t age;
	size_t len;
	int err;

	*out = NULL;
	addrs[0] = '\0';
	len = host != NULL ? strlen(host) : 0;
	if (r == NULL || len == 0 || len > RESOLVE_HOST_MAX || port < 0 ||
	    port > 65535 || cb == NULL)
		return -EINVAL;
	e = cache_find(r, host, port);
	age = e != NULL ? clock_now(r) - e->at : 0;
	if (e != NULL && age < r->stale_ms) {
		memcpy(addrs, e->addrs, RESOLVE_ADDRS_LEN);
		if (age < r->fresh_ms)
			return 0;
		/* Stale: serve it now, refresh it in the background. */
		r->nstale++;
		(void)job_get(r, host, port, &j);
		return 0;
	}
	if (e != NULL)
		cache_drop(r, e); /* too old to serve */
	err = job_get(r, host, port, &j);
	if (err < 0)
		return err;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM; /* the job runs on; its answer is cached */
	q->job = j;
	q->cb = cb;
	q->arg = arg;
	q->deadline = event_now_ms(r->ev) + r->wait_ms;
	q->jprev = j->wq_tail;
	if (j->wq_tail != NULL)
		j->wq_tail->jnext = q;
	else
		j->wq_head = q;
	j->wq_tail = q;
	q->dprev = r->dl_tail;
	if (r->dl_tail != NULL)
		r->dl_tail->dnext = q;
	else
		r->dl_head = q;
	r->dl_tail = q;
	if (r->dl_head == q)
		arm(r);
	*out = q;
	return -EINPROGRESS;
}

void
resolve_cancel(struct resolve *r, struct resolve_query **qp)
{
	struct resolve_query *q;

	if (r == NULL || qp == NULL || *qp == NULL)
		return;
	q = *qp;
	*qp = NULL;
	query_unlink(r, q);
	free(q);
}

void
resolve_get_stats(const struct resolve *r, struct resolve_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->sh->mu);
	st->workers = r->sh->nworkers;
	st->running = r->sh->nbusy;
	pthread_mutex_unlock(&r->sh->mu);
	st->lookups = r->nlookups;
	st->stale = r->nstale;
}
