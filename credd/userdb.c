/*
 * userdb.c - NSS lookups on worker threads, a TTL cache of uid -> name
 * (see userdb.h).
 *
 * The loop owns the cache, the table of calls in flight and every
 * request; the workers only see jobs (a key in, an answer out) between
 * the queue and the done list, both under one mutex. An eventfd wakes
 * the loop, which files the answers, refreshes the cache and runs the
 * callbacks.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "event.h"
#include "userdb.h"

#define USERDB_THREADS_MAX 16
#define USERDB_BUF_START 4096
#define USERDB_BUF_MAX (4 * 1024 * 1024) /* a group of ~100k members */
#define USERDB_CACHE_BUCKETS 4096
#define USERDB_FLIGHT_BUCKETS 1024
#define USERDB_SWEEP_MS 1000

enum job_kind { JOB_UID, JOB_NAME, JOB_GROUP };

struct userdb_req {
	struct job *job;
	userdb_cb *cb;
	void *arg;
	struct userdb_req *next;
};

struct job {
	enum job_kind kind;
	uid_t uid;		    /* JOB_UID in; JOB_NAME out */
	gid_t gid;		    /* out */
	char key[USERDB_NAME_MAX];  /* JOB_NAME, JOB_GROUP in */
	char name[USERDB_NAME_MAX]; /* out */
	int result;
	struct userdb_req *reqs; /* loop only */
	struct job *fnext;	 /* in-flight hash chain, loop only */
	struct job *qnext;	 /* queue or done list, under mu */
};

struct cached {
	uid_t uid;
	int64_t expires_ms;
	char *name;
	struct cached *next;
};

struct userdb {
	struct event_loop *ev;
	int64_t ttl_ms;
	size_t max_cached;
	struct cached *cache[USERDB_CACHE_BUCKETS];
	size_t ncached;
	int64_t last_sweep_ms;
	struct job *flight[USERDB_FLIGHT_BUCKETS];
	size_t nflight;
	struct userdb_stats st;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *qhead, *qtail; /* to run */
	struct job *dhead, *dtail; /* answered */
	int stopping;
	int efd;
	unsigned nthreads;
	pthread_t threads[USERDB_THREADS_MAX];
};

static void
push(struct job **head, struct job **tail, struct job *j)
{
	j->qnext = NULL;
	if (*tail != NULL)
		(*tail)->qnext = j;
	else
		*head = j;
	*tail = j;
}

static struct job *
pop(struct job **head, struct job **tail)
{
	struct job *j = *head;

	if (j != NULL) {
		*head = j->qnext;
		if (*head == NULL)
			*tail = NULL;
		j->qnext = NULL;
	}
	return j;
}

/* ---- the NSS calls (worker threads) ---- */

/* An NSS error code as a result: "not found" in any of its spellings. */
static int
nss_result(int err, const void *res)
{
	if (err == 0)
		return res != NULL ? 0 : -ENOENT;
	if (err == ENOENT || err == ESRCH || err == EBADF || err == EPERM)
		return -ENOENT;
	return -err;
}

static int
copy_name(char *dst, const char *src)
{
	size_t n = strlen(src);

	if (n >= USERDB_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(dst, src, n + 1);
	return 0;
}

static void
job_run(struct job *j)
{
	size_t sz = USERDB_BUF_START;
	struct passwd pw, *pres;
	struct group gr, *gres;
	char *buf;
	int err;

	for (;;) {
		buf = malloc(sz);
		if (buf == NULL) {
			j->result = -ENOMEM;
			return;
		}
		pres = NULL;
		gres = NULL;
		if (j->kind == JOB_UID)
			err = getpwuid_r(j->uid, &pw, buf, sz, &pres);
		else if (j->kind == JOB_NAME)
			err = getpwnam_r(j->key, &pw, buf, sz, &pres);
		else
			err = getgrnam_r(j->key, &gr, buf, sz, &gres);
		if (err != ERANGE || sz >= USERDB_BUF_MAX)
			break;
		free(buf);
		sz *= 2; /* a large group (or a long gecos): grow */
	}
	j->result =
	    nss_result(err, j->kind == JOB_GROUP ? (void *)gres : (void *)pres);
	if (j->result == 0 && j->kind == JOB_GROUP) {
		j->gid = gres->gr_gid;
		j->result = copy_name(j->name, gres->gr_name);
	} else if (j->result == 0) {
		j->uid = pres->pw_uid;
		j->gid = pres->pw_gid;
		j->result = copy_name(j->name, pres->pw_name);
	}
	free(buf);
}

int
userdb_group_now(const char *group, gid_t *gid)
{
	struct job j = { .kind = JOB_GROUP };
	size_t n = strlen(group);

	if (n >= sizeof(j.key))
		return -ENAMETOOLONG;
	memcpy(j.key, group, n + 1);
	job_run(&j);
	if (j.result == 0)
		*gid = j.gid;
	return j.result;
}

static void *
worker(void *arg)
{
	struct userdb *db = arg;
	struct job *j;
	uint64_t one = 1;

	pthread_mutex_lock(&db->mu);
	for (;;) {
		while (db->qhead == NULL && !db->stopping)
			pthread_cond_wait(&db->cv, &db->mu);
		if (db->stopping)
			break;
		j = pop(&db->qhead, &db->qtail);
		pthread_mutex_unlock(&db->mu);
		job_run(j);
		pthread_mutex_lock(&db->mu);
		push(&db->dhead, &db->dtail, j);
		(void)!write(db->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

/* ---- the cache (loop) ---- */

static struct cached **
cache_slot(struct userdb *db, uid_t uid)
{
	struct cached **pp;

	for (pp = &db->cache[uid % USERDB_CACHE_BUCKETS]; *pp != NULL;
	     pp = &(*pp)->next)
		if ((*pp)->uid == uid)
			break;
	return pp;
}

static void
cache_unlink(struct userdb *db, struct cached **pp)
{
	struct cached *c = *pp;

	*pp = c->next;
	free(c->name);
	free(c);
	db->ncached--;
}

static void
cache_sweep(struct userdb *db, int64_t now)
{
	struct cached **pp;
	size_t i;

	db->last_sweep_ms = now;
	for (i = 0; i < USERDB_CACHE_BUCKETS; i++)
		for (pp = &db->cache[i]; *pp != NULL;)
			if ((*pp)->expires_ms <= now)
				cache_unlink(db, pp);
			else
				pp = &(*pp)->next;
}

static void
cache_put(struct userdb *db, uid_t uid, const char *name)
{
	int64_t now = event_now_ms(db->ev);
	struct cached **pp = cache_slot(db, uid), *c = *pp;
	char *dup;

	if (c == NULL && db->ncached >= db->max_cached &&
	    now - db->last_sweep_ms >= USERDB_SWEEP_MS) {
		cache_sweep(db, now);
		pp = cache_slot(db, uid);
	}
	if (c == NULL && db->ncached >= db->max_cached)
		return; /* full of live entries: answer without caching */
	dup = strdup(name);
	if (dup == NULL)
		return;
	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			free(dup);
			return;
		}
		c->uid = uid;
		c->next = *pp;
		*pp = c;
		db->ncached++;
	}
	free(c->name);
	c->name = dup;
	c->expires_ms = now + db->ttl_ms;
}

/* A uid found to have no user (or another user's uid): no stale entry. */
static void
cache_forget(struct userdb *db, uid_t uid)
{
	struct cached **pp = cache_slot(db, uid);

	if (*pp != NULL)
		cache_unlink(db, pp);
}

int
userdb_cached_name(struct userdb *db, uid_t uid, char *buf, size_t bufsz)
{
	struct cached **pp = cache_slot(db, uid);
	size_t n;

	if (*pp == NULL)
		return -ENOENT;
	if ((*pp)->expires_ms <= event_now_ms(db->ev)) {
		cache_unlink(db, pp);
		return -ENOENT;
	}
	n = strlen((*pp)->name);
	if (n >= bufsz)
		return -ENAMETOOLONG;
	memcpy(buf, (*pp)->name, n + 1);
	db->st.cache_hits++;
	return 0;
}

/* ---- requests (loop) ---- */

static size_t
flight_hash(enum job_kind kind, uid_t uid, const char *key)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;
	const char *p;

	if (kind == JOB_UID)
		return ((uint32_t)uid * 2654435761u ^ h) %
		    USERDB_FLIGHT_BUCKETS;
	for (p = key; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % USERDB_FLIGHT_BUCKETS;
}

static struct userdb_req *
request(struct userdb *db, enum job_kind kind, uid_t uid, const char *key,
    userdb_cb *cb, void *arg)
{
	size_t h = flight_hash(kind, uid, key != NULL ? key : "");
	struct userdb_req *r;
	struct job *j;

	if (key != NULL && strlen(key) >= USERDB_NAME_MAX)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->cb = cb;
	r->arg = arg;
	for (j = db->flight[h]; j != NULL; j = j->fnext)
		if (j->kind == kind &&
		    (kind == JOB_UID ? j->uid == uid :
				       strcmp(j->key, key) == 0))
			break;
	if (j != NULL) {
		db->st.coalesced++;
	} else {
		j = calloc(1, sizeof(*j));
		if (j == NULL) {
			free(r);
			return NULL;
		}
		j->kind = kind;
		j->uid = uid;
		if (key != NULL)
			memcpy(j->key, key, strlen(key) + 1);
		j->fnext = db->flight[h];
		db->flight[h] = j;
		db->nflight++;
		db->st.lookups++;
		pthread_mutex_lock(&db->mu);
		push(&db->qhead, &db->qtail, j);
		pthread_cond_signal(&db->cv);
		pthread_mutex_unlock(&db->mu);
	}
	r->job = j;
	r->next = j->reqs;
	j->reqs = r;
	return r;
}

struct userdb_req *
userdb_lookup_uid(struct userdb *db, uid_t uid, userdb_cb *cb, void *arg)
{
	return request(db, JOB_UID, uid, NULL, cb, arg);
}

struct userdb_req *
userdb_lookup_name(struct userdb *db, const char *name, userdb_cb *cb,
    void *arg)
{
	return request(db, JOB_NAME, 0, name, cb, arg);
}

struct userdb_req *
userdb_lookup_group(struct userdb *db, const char *group, userdb_cb *cb,
    void *arg)
{
	return request(db, JOB_GROUP, 0, group, cb, arg);
}

void
userdb_cancel(struct userdb *db, struct userdb_req *r)
{
	struct userdb_req **pp;

	(void)db;
	if (r == NULL)
		return;
	for (pp = &r->job->reqs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	free(r); /* the job runs on; its answer still fills the cache */
}

static void
flight_remove(struct userdb *db, struct job *j)
{
	struct job **pp;

	for (pp = &db->flight[flight_hash(j->kind, j->uid, j->key)];
	     *pp != NULL; pp = &(*pp)->fnext)
		if (*pp == j) {
			*pp = j->fnext;
			db->nflight--;
			return;
		}
}

/* File one answer: cache, then every request's callback. */
static void
finish(struct userdb *db, struct job *j)
{
	struct userdb_req *r;

	flight_remove(db, j);
	if (j->result < 0 && j->result != -ENOENT)
		db->st.failures++;
	if (j->kind == JOB_UID && j->result == -ENOENT)
		cache_forget(db, j->uid);
	else if (j->kind != JOB_GROUP && j->result == 0)
		cache_put(db, j->uid, j->name);
	/* Callbacks may start or cancel other requests, never this job's:
	 * it is out of the in-flight table, so a new lookup makes a new job. */
	while ((r = j->reqs) != NULL) {
		j->reqs = r->next;
		r->cb(r->arg, j->result, j->uid, j->gid,
		    j->result == 0 ? j->name : NULL);
		free(r);
	}
	free(j);
}

static void
drain_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct userdb *db = arg;
	struct job *head, *j;
	uint64_t n;

	(void)ev;
	(void)revents;
	(void)!read(fd, &n, sizeof(n));
	pthread_mutex_lock(&db->mu);
	head = db->dhead;
	db->dhead = db->dtail = NULL;
	pthread_mutex_unlock(&db->mu);
	while ((j = head) != NULL) {
		head = j->qnext;
		finish(db, j);
	}
}

/* ---- life cycle ---- */

int
userdb_new(struct event_loop *ev, unsigned threads, int64_t ttl_ms,
    size_t max_cached, struct userdb **out)
{
	sigset_t all, old;
	struct userdb *db;
	unsigned i;
	int r;

	*out = NULL;
	if (threads < 1 || threads > USERDB_THREADS_MAX || ttl_ms < 0)
		return -EINVAL;
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return -ENOMEM;
	db->ev = ev;
	db->ttl_ms = ttl_ms > USERDB_TTL_MAX_MS ? USERDB_TTL_MAX_MS : ttl_ms;
	db->max_cached = max_cached;
	pthread_mutex_init(&db->mu, NULL);
	pthread_cond_init(&db->cv, NULL);
	db->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (db->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = event_add(ev, db->efd, EPOLLIN, drain_cb, db);
	if (r < 0)
		goto fail;
	/* Signals stay with the loop thread (signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < threads; i++) {
		r = -pthread_create(&db->threads[i], NULL, worker, db);
		if (r < 0)
			break;
		db->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		userdb_free(db);
		return r;
	}
	*out = db;
	return 0;
fail:
	if (db->efd >= 0)
		close(db->efd);
	pthread_mutex_destroy(&db->mu);
	pthread_cond_destroy(&db->cv);
	free(db);
	return r;
}

static void
job_free_silent(struct job *j)
{
	struct userdb_req *r;

	while ((r = j->reqs) != NULL) {
		j->reqs = r->next;
		free(r);
	}
	free(j);
}

void
userdb_free(struct userdb *db)
{
	struct job *j;
	size_t i;
	unsigned t;

	if (db == NULL)
		return;
	pthread_mutex_lock(&db->mu);
	db->stopping = 1;
	pthread_cond_broadcast(&db->cv);
	pthread_mutex_unlock(&db->mu);
	for (t = 0; t < db->nthreads; t++)
		pthread_join(db->threads[t], NULL);
	/* Every job is now queued, answered or in the flight table only via
	 * those lists: free them without callbacks. */
	while ((j = pop(&db->qhead, &db->qtail)) != NULL)
		job_free_silent(j);
	while ((j = pop(&db->dhead, &db->dtail)) != NULL)
		job_free_silent(j);
	for (i = 0; i < USERDB_CACHE_BUCKETS; i++)
		while (db->cache[i] != NULL)
			cache_unlink(db, &db->cache[i]);
	event_del(db->ev, db->efd);
	close(db->efd);
	pthread_mutex_destroy(&db->mu);
	pthread_cond_destroy(&db->cv);
	free(db);
}

void
userdb_stats(const struct userdb *db, struct userdb_stats *st)
{
	*st = db->st;
	st->cached = db->ncached;
	st->in_flight = db->nflight;
}
