/*
 * storeq.c - the store thread (see storeq.h).
 *
 * One worker thread, one FIFO: jobs for one user run in the order they
 * were submitted, so a save submitted after another always lands after
 * it. The thread only calls record.c, seal.c, marks.c and the backend;
 * it never touches broker state. Completed jobs go on a done list and an
 * eventfd wakes the loop, which runs their callbacks.
 *
 * Must never: run a callback off the loop, block the loop (the loop only
 * takes the mutex to move list heads), or adopt a row older than this
 * node's high-water mark.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "entra/secret.h"

#include "event.h"
#include "log.h"
#include "marks.h"
#include "record.h"
#include "seal.h"
#include "store.h"
#include "storeq.h"

struct storeq {
	struct event_loop *ev;
	struct store *st;
	const struct seal *seal;
	struct marks *marks; /* NULL: no rollback check */
	char *tenant;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct storeq_job *head, *tail; /* to run */
	struct storeq_job *done_head, *done_tail;
	size_t pending;
	int stopping;
	int efd;
};

static void
list_push(struct storeq_job **head, struct storeq_job **tail,
    struct storeq_job *j)
{
	j->qnext = NULL;
	if (*tail != NULL)
		(*tail)->qnext = j;
	else
		*head = j;
	*tail = j;
}

/* A LOAD checked against the mark; a mark write failure is kept in j. */
static int
load_marked(struct storeq *q, struct storeq_job *j, struct record **out)
{
	int me = 0, r;

	r = record_load_marked(q->st, q->seal, q->marks, q->tenant, j->user,
	    out, &j->rb, &me);
	if (r == RECORD_EROLLBACK)
		j->rollback = 1;
	if (me < 0)
		j->marks_err = me;
	return r;
}

static int
save_marked(struct storeq *q, struct storeq_job *j, struct record *rec,
    int may_create)
{
	int me = 0, r;

	r = record_save_marked(q->st, q->seal, q->marks, q->tenant, rec,
	    may_create, &me);
	if (me < 0)
		j->marks_err = me;
	return r;
}

/* SAVE: CAS, merging a lost race for the same account (see storeq.h). */
static int
save_merging(struct storeq *q, struct storeq_job *j)
{
	struct record *cur = NULL;
	int r = -ESTALE, tries;

	for (tries = 0; tries < 8 && r == -ESTALE; tries++) {
		r = save_marked(q, j, j->rec, j->may_create);
		if (r == -ENOENT) {
			/* The mark says this record's epoch was deleted. */
			return r;
		}
		if (r != -ESTALE)
			break;
		r = load_marked(q, j, &cur);
		if (r == RECORD_EROLLBACK) {
			/* An older row was put back: ours is newer, write it
			 * over that row (its version is the CAS). */
			j->rollback = 2;
			j->rec->version = j->rb.version;
			r = -ESTALE;
			continue;
		}
		if (r == -ENOENT) {
			/* Deleted meanwhile (an admin revoke): only a new consent
			 * may bring the record back. */
			if (!j->may_create)
				return -ENOENT;
			j->rec->version = 0;
			r = -ESTALE;
			continue;
		}
		if (r < 0)
			break;
		if (j->rec->oid != NULL && cur->oid != NULL &&
		    strcmp(j->rec->oid, cur->oid) != 0) {
			record_free(j->rec);
			j->rec = cur; /* another account's consent won */
			j->replaced = 1;
			return 0;
		}
		/* Ours goes after theirs: their version, epoch, generation. */
		j->rec->version = cur->version;
		j->rec->epoch = cur->epoch;
		j->rec->gen = cur->gen;
		record_free(cur);
		cur = NULL;
		r = -ESTALE;
	}
	return r;
}

static int
job_save(struct storeq *q, struct storeq_job *j)
{
	int r = save_merging(q, j);

	if ((r != 0 || j->replaced) && j->rollback == 2)
		j->rollback = 1; /* refused, but ours was not written over it */
	return r;
}

/* The sealed epoch of a stored blob, if it opens; else *epoch unchanged. */
static void
blob_epoch(struct storeq *q, const char *user, const struct blob *b,
    uint64_t *epoch, int *known)
{
	struct secret *plain = NULL;
	struct record *rec = NULL;

	if (seal_open(q->seal, q->tenant, user, b->data, b->len, &plain) == 0 &&
	    record_decode(plain, b->version, &rec) == 0) {
		if (!*known || rec->epoch > *epoch)
			*epoch = rec->epoch;
		*known = 1;
	}
	record_free(rec);
	secret_free(plain);
}

/*
 * DELETE: whatever the newest version is. Then no row of the deleted
 * epoch (or an older one) is admitted again on this node.
 */
static int
job_delete(struct storeq *q, struct storeq_job *j)
{
	struct marks_mark m;
	struct blob b = { 0 };
	uint64_t epoch = 0;
	int known = 0, r = -ESTALE, tries;

	for (tries = 0; tries < 8; tries++) {
		r = q->st->ops->get(q->st, q->tenant, j->user, &b);
		if (r < 0)
			break;
		if (q->marks != NULL)
			blob_epoch(q, j->user, &b, &epoch, &known);
		r = q->st->ops->del_if(q->st, q->tenant, j->user, b.version);
		blob_clear(&b);
		if (r != -ESTALE)
			break;
	}
	if (r == -ENOENT)
		r = 0;
	if (r < 0 || q->marks == NULL)
		return r;
	if (marks_get(q->marks, q->tenant, j->user, &m) == 0) {
		if (m.epoch > epoch || !known)
			epoch = m.epoch;
		known = 1;
	}
	if (known)
		j->marks_err =
		    marks_deleted(q->marks, q->tenant, j->user, epoch);
	return 0;
}

static int
job_list(struct storeq *q, struct storeq_job *j)
{
	struct store_entry *ents = NULL;
	size_t n = 0, i;
	int r;

	r = q->st->ops->list(q->st, q->tenant, j->cursor, j->limit, 1, &ents,
	    &n, &j->next);
	if (r < 0)
		return r;
	j->items = calloc(n ? n : 1, sizeof(*j->items));
	if (j->items == NULL) {
		store_entries_free(ents, n);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct storeq_item *it = &j->items[i];
		struct secret *plain = NULL;
		struct record *rec = NULL;

		it->user = strdup(ents[i].user);
		if (seal_open(q->seal, q->tenant, ents[i].user,
			ents[i].blob.data, ents[i].blob.len, &plain) == 0 &&
		    record_decode(plain, ents[i].version, &rec) == 0) {
			const char *a =
			    rec->username ? rec->username : rec->oid;
			struct marks_mark m;

			/* Looked at only: a listing never moves a mark. */
			it->rolled_back = marks_get(q->marks, q->tenant,
					      ents[i].user, &m) == 0 &&
			    !marks_admits(&m, rec->epoch, rec->gen);
			it->readable = 1;
			it->account = a ? strdup(a) : NULL;
			it->last_refresh = rec->last_refresh;
			it->has_refresh_token = rec->refresh_token != NULL;
		}
		record_free(rec);
		secret_free(plain);
		j->nitems++;
	}
	store_entries_free(ents, n);
	return 0;
}

/* Is f a flow another node runs, still pending? */
static int
foreign_pending(const char *node, int64_t expires_on, const char *ours,
    int64_t now)
{
	return expires_on > now && (ours == NULL || strcmp(node, ours) != 0);
}

/*
 * FLOW_CLAIM of a code flow: ours unless another node's flow (either
 * method) is pending; this node's own (a device flow it falls back
 * from, or one it forgot in a restart) gives way.
 */
static int
job_cflow_claim(struct storeq *q, struct storeq_job *j)
{
	struct record *cur = NULL;
	int64_t now = time(NULL);
	int r = -ESTALE, tries;

	for (tries = 0; tries < 8 && r == -ESTALE; tries++) {
		r = load_marked(q, j, &cur);
		if (r == -ENOENT) {
			cur = record_new(j->user, j->uid);
			r = cur != NULL ? 0 : -ENOMEM;
		}
		if (r < 0)
			return r;
		if ((cur->flow != NULL &&
			foreign_pending(cur->flow->node, cur->flow->expires_on,
			    j->node, now)) ||
		    (cur->cflow != NULL &&
			foreign_pending(cur->cflow->node,
			    cur->cflow->expires_on, j->node, now))) {
			j->rec = cur;
			j->claimed = 0;
			return 0;
		}
		record_flow_free(cur->flow);
		cur->flow = NULL;
		record_flow_code_free(cur->cflow);
		cur->cflow = record_flow_code_dup(j->cflow);
		if (cur->cflow == NULL) {
			record_free(cur);
			return -ENOMEM;
		}
		r = save_marked(q, j, cur, 0);
		if (r == 0) {
			j->rec = cur;
			j->claimed = 1;
			return 0;
		}
		record_free(cur);
		cur = NULL;
	}
	return r;
}

/* Wipe s in place, leaving "" (a used state or link). */
static void
use_up(char *s)
{
	secret_wipe(s, strlen(s));
}

/* FLOW_TAKE: the key used up cluster-wide, exactly once (CAS). */
static int
job_flow_take(struct storeq *q, struct storeq_job *j)
{
	struct record *cur = NULL;
	struct record_cflow *f;
	const char *have;
	size_t kl = strlen(j->key);
	int r = -ESTALE, tries;

	for (tries = 0; tries < 8 && r == -ESTALE; tries++) {
		r = load_marked(q, j, &cur);
		if (r < 0)
			return r;
		f = cur->cflow;
		have = f == NULL ? "" : j->take_link ? f->link : f->state;
		if (f == NULL || f->expires_on <= time(NULL) || kl == 0 ||
		    strlen(have) != kl || !secret_memeq(have, j->key, kl)) {
			record_free(cur);
			return -ENOENT; /* unknown, used or expired */
		}
		record_flow_code_free(j->cflow);
		j->cflow = record_flow_code_dup(f);
		if (j->cflow == NULL) {
			record_free(cur);
			return -ENOMEM;
		}
		use_up(f->link);
		if (!j->take_link)
			use_up(f->state);
		r = save_marked(q, j, cur, 0);
		if (r == 0) {
			j->rec = cur;
			return 0;
		}
		record_free(cur);
		cur = NULL;
	}
	return r;
}

/* FLOW_CLAIM: one device flow per user across the cluster. */
static int
job_flow_claim(struct storeq *q, struct storeq_job *j)
{
	struct record *cur = NULL;
	int r = -ESTALE, tries;

	for (tries = 0; tries < 8 && r == -ESTALE; tries++) {
		r = load_marked(q, j, &cur);
		if (r == -ENOENT) {
			cur = record_new(j->user, j->uid);
			r = cur != NULL ? 0 : -ENOMEM;
		}
		if (r < 0)
			return r;
		if ((cur->flow != NULL && cur->flow->expires_on > time(NULL)) ||
		    (cur->cflow != NULL &&
			foreign_pending(cur->cflow->node,
			    cur->cflow->expires_on, j->node, time(NULL)))) {
			j->rec = cur; /* another node's code is the one shown */
			j->claimed = 0;
			return 0;
		}
		/* A code flow of ours (forgotten in a restart) gives way. */
		record_flow_code_free(cur->cflow);
		cur->cflow = NULL;
		record_flow_free(cur->flow);
		cur->flow = record_flow_dup(j->flow);
		if (cur->flow == NULL) {
			record_free(cur);
			return -ENOMEM;
		}
		r = save_marked(q, j, cur, 0);
		if (r == 0) {
			j->rec = cur;
			j->claimed = 1;
			return 0;
		}
		record_free(cur);
		cur = NULL;
	}
	return r;
}

static void
job_run(struct storeq *q, struct storeq_job *j)
{
	const struct store_ops *ops = q->st->ops;

	switch (j->op) {
	case STOREQ_LOAD:
		j->result = load_marked(q, j, &j->rec);
		break;
	case STOREQ_SAVE:
		j->result = job_save(q, j);
		break;
	case STOREQ_DELETE:
		j->result = job_delete(q, j);
		break;
	case STOREQ_LIST:
		j->result = job_list(q, j);
		break;
	case STOREQ_LOCK:
		j->result = ops->trylock != NULL ?
		    ops->trylock(q->st, q->tenant, j->user) :
		    0;
		j->locked = j->result == 0;
		if (j->result == 0)
			j->result = load_marked(q, j, &j->rec);
		break;
	case STOREQ_UNLOCK:
		j->result = ops->unlock != NULL ?
		    ops->unlock(q->st, q->tenant, j->user) :
		    0;
		break;
	case STOREQ_FLOW_CLAIM:
		j->result = j->cflow != NULL ? job_cflow_claim(q, j) :
					       job_flow_claim(q, j);
		break;
	case STOREQ_FLOW_TAKE:
		j->result = job_flow_take(q, j);
		break;
	}
	if ((j->op == STOREQ_LOAD || j->op == STOREQ_LOCK) &&
	    (j->result == -ENOKEY || j->result == -EBADMSG))
		(void)record_explain(q->st, q->seal, q->tenant, j->user, j->why,
		    sizeof(j->why));
	/* Backends announce their own writes (store.h): no extra notify. */
}

static void *
worker(void *arg)
{
	struct storeq *q = arg;
	struct storeq_job *j;
	uint64_t one = 1;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->head == NULL && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->head == NULL)
			break;
		j = q->head;
		q->head = j->qnext;
		if (q->head == NULL)
			q->tail = NULL;
		pthread_mutex_unlock(&q->mu);
		job_run(q, j);
		pthread_mutex_lock(&q->mu);
		list_push(&q->done_head, &q->done_tail, j);
		if (write(q->efd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is already non-zero */
		}
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Run the callbacks of finished jobs (loop thread). */
static void
drain(struct storeq *q)
{
	struct storeq_job *list, *j;
	uint64_t v;

	if (read(q->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: woken by storeq_free, not the thread */
	}
	pthread_mutex_lock(&q->mu);
	list = q->done_head;
	q->done_head = q->done_tail = NULL;
	pthread_mutex_unlock(&q->mu);
	while ((j = list) != NULL) {
		list = j->qnext;
		q->pending--;
		if (j->done != NULL)
			j->done(j);
		storeq_job_free(j);
	}
}

static void
efd_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	(void)ev;
	(void)fd;
	(void)revents;
	drain(arg);
}

int
storeq_new(struct event_loop *ev, struct store *st, const struct seal *seal,
    struct marks *marks, const char *tenant, struct storeq **out)
{
	struct storeq *q;
	int r;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (q == NULL || (q->tenant = strdup(tenant)) == NULL) {
		free(q);
		return -ENOMEM;
	}
	q->ev = ev;
	q->st = st;
	q->seal = seal;
	q->marks = marks;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = event_add(ev, q->efd, EPOLLIN, efd_cb, q);
	if (r < 0)
		goto fail;
	{
		/* The thread takes no signals: they belong to the loop's signalfd. */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		r = -pthread_create(&q->thread, NULL, worker, q);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (r < 0) {
		event_del(ev, q->efd);
		goto fail;
	}
	*out = q;
	return 0;
fail:
	if (q->efd >= 0)
		close(q->efd);
	free(q->tenant);
	free(q);
	return r;
}

void
storeq_free(struct storeq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	/* The thread is gone: run what is left (callbacks may queue more,
	 * such as an unlock) here, on the loop thread, until nothing is. */
	for (;;) {
		struct storeq_job *j = q->head;

		if (j != NULL) {
			q->head = j->qnext;
			if (q->head == NULL)
				q->tail = NULL;
			job_run(q, j);
			list_push(&q->done_head, &q->done_tail, j);
			continue;
		}
		if (q->done_head == NULL)
			break;
		drain(q);
	}
	event_del(q->ev, q->efd);
	close(q->efd);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->tenant);
	free(q);
}

struct storeq_job *
storeq_job_new(enum storeq_op op, const char *user, storeq_done_cb *done,
    void *arg)
{
	struct storeq_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->op = op;
	j->done = done;
	j->arg = arg;
	if (user != NULL && (j->user = strdup(user)) == NULL) {
		free(j);
		return NULL;
	}
	return j;
}

void
storeq_submit(struct storeq *q, struct storeq_job *j)
{
	pthread_mutex_lock(&q->mu);
	list_push(&q->head, &q->tail, j);
	q->pending++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void
storeq_job_free(struct storeq_job *j)
{
	size_t i;

	if (j == NULL)
		return;
	for (i = 0; i < j->nitems; i++) {
		free(j->items[i].user);
		free(j->items[i].account);
	}
	free(j->items);
	free(j->next);
	free(j->cursor);
	record_free(j->rec);
	record_flow_free(j->flow);
	record_flow_code_free(j->cflow);
	secret_wipe_str(j->key);
	free(j->node);
	free(j->user);
	free(j);
}

size_t
storeq_pending(const struct storeq *q)
{
	return q->pending;
}

int
storeq_is_cluster(const struct storeq *q)
{
	return q->st->ops->trylock != NULL;
}
