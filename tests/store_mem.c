/*
 * store_mem.c - an in-memory store backend (store.h) for unit tests:
 * rows of (tenant, user) -> blob and version under a mutex (the store
 * thread writes, the test reads), compare-and-swap as the file backend
 * does, no notifications, no cluster lock. It counts its writes and
 * numbers each from a counter the test shares, so a test can tell
 * whether a write came before a reply.
 *
 * Must never: keep process-wide state; hold more than STORE_MEM_ROWS
 * rows (-ENOSPC past that).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_mem.h"

struct mem_row {
	char *tenant, *user;
	struct blob blob;
};

struct mem_store {
	struct store st;
	pthread_mutex_t mu;
	struct mem_row rows[STORE_MEM_ROWS];
	atomic_uint_fast64_t *seq; /* numbers the writes */
	unsigned puts, dels;
	uint64_t last_put;
};

static struct mem_row *
mem_find(struct mem_store *m, const char *tenant, const char *user)
{
	size_t i;

	for (i = 0; i < STORE_MEM_ROWS; i++)
		if (m->rows[i].user != NULL &&
		    strcmp(m->rows[i].tenant, tenant) == 0 &&
		    strcmp(m->rows[i].user, user) == 0)
			return &m->rows[i];
	return NULL;
}

static int
blob_copy(const uint8_t *data, size_t len, uint64_t version, struct blob *out)
{
	out->data = malloc(len > 0 ? len : 1);
	if (out->data == NULL)
		return -ENOMEM;
	memcpy(out->data, data, len);
	out->len = len;
	out->version = version;
	return 0;
}

static int
mem_get(struct store *st, const char *tenant, const char *user,
    struct blob *out)
{
	struct mem_store *m = st->priv;
	struct mem_row *row;
	int r = -ENOENT;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&m->mu);
	row = mem_find(m, tenant, user);
	if (row != NULL)
		r = blob_copy(row->blob.data, row->blob.len, row->blob.version,
		    out);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int
mem_put_if(struct store *st, const char *tenant, const char *user,
    const uint8_t *data, size_t len, uint64_t expect, uint64_t *new_version)
{
	struct mem_store *m = st->priv;
	struct mem_row *row;
	struct blob nb = { 0 };
	size_t i;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	row = mem_find(m, tenant, user);
	if ((row == NULL && expect != 0) ||
	    (row != NULL && row->blob.version != expect)) {
		r = -ESTALE;
		goto out;
	}
	for (i = 0; row == NULL && i < STORE_MEM_ROWS; i++)
		if (m->rows[i].user == NULL) {
			row = &m->rows[i];
			row->tenant = strdup(tenant);
			row->user = strdup(user);
			if (row->tenant == NULL || row->user == NULL)
				abort();
		}
	if (row == NULL) {
		r = -ENOSPC;
		goto out;
	}
	r = blob_copy(data, len, expect + 1, &nb);
	if (r < 0)
		goto out;
	blob_clear(&row->blob);
	row->blob = nb;
	*new_version = expect + 1;
	m->puts++;
	m->last_put = atomic_fetch_add(m->seq, 1) + 1;
out:
	pthread_mutex_unlock(&m->mu);
	return r;
}

static void
row_clear(struct mem_row *row)
{
	free(row->tenant);
	free(row->user);
	blob_clear(&row->blob);
	memset(row, 0, sizeof(*row));
}

static int
mem_del_if(struct store *st, const char *tenant, const char *user,
    uint64_t expect)
{
	struct mem_store *m = st->priv;
	struct mem_row *row;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	row = mem_find(m, tenant, user);
	if (row == NULL)
		r = -ENOENT;
	else if (row->blob.version != expect)
		r = -ESTALE;
	else {
		row_clear(row);
		m->dels++;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_entry *)a)->user,
	    ((const struct store_entry *)b)->user);
}

static int
mem_list(struct store *st, const char *tenant, const char *cursor, size_t limit,
    int want_blobs, struct store_entry **out, size_t *n, char **next)
{
	struct mem_store *m = st->priv;
	struct store_entry *e;
	size_t i, k = 0;

	*out = NULL;
	*n = 0;
	*next = NULL;
	e = calloc(STORE_MEM_ROWS, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&m->mu);
	for (i = 0; i < STORE_MEM_ROWS; i++) {
		struct mem_row *row = &m->rows[i];

		if (row->user == NULL || strcmp(row->tenant, tenant) != 0 ||
		    (cursor != NULL && strcmp(row->user, cursor) <= 0))
			continue;
		e[k].user = strdup(row->user);
		e[k].version = row->blob.version;
		if (e[k].user == NULL ||
		    (want_blobs &&
			blob_copy(row->blob.data, row->blob.len,
			    row->blob.version, &e[k].blob) < 0))
			abort();
		k++;
	}
	pthread_mutex_unlock(&m->mu);
	qsort(e, k, sizeof(*e), entry_cmp);
	if (k > limit) {
		*next = strdup(e[limit - 1].user);
		store_entries_free(e + limit, k - limit);
		k = limit;
	}
	*out = e;
	*n = k;
	return 0;
}

static int
mem_notify_fd(struct store *st)
{
	(void)st;
	return -1;
}

static int
mem_notify_next(struct store *st, char **user)
{
	(void)st;
	*user = NULL;
	return 0;
}

static void
mem_close(struct store *st)
{
	struct mem_store *m = st->priv;
	size_t i;

	for (i = 0; i < STORE_MEM_ROWS; i++)
		row_clear(&m->rows[i]);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static const struct store_ops mem_ops = {
	.name = "memory",
	.get = mem_get,
	.put_if = mem_put_if,
	.del_if = mem_del_if,
	.list = mem_list,
	.notify_fd = mem_notify_fd,
	.notify_next = mem_notify_next,
	.close = mem_close,
};

/* The cluster variant's lock: one process, so always taken. */
static int
mem_trylock(struct store *st, const char *tenant, const char *user)
{
	(void)st;
	(void)tenant;
	(void)user;
	return 0;
}

static int
mem_unlock(struct store *st, const char *tenant, const char *user)
{
	(void)st;
	(void)tenant;
	(void)user;
	return 0;
}

static const struct store_ops mem_cluster_ops = {
	.name = "memory-cluster",
	.get = mem_get,
	.put_if = mem_put_if,
	.del_if = mem_del_if,
	.list = mem_list,
	.notify_fd = mem_notify_fd,
	.notify_next = mem_notify_next,
	.trylock = mem_trylock,
	.unlock = mem_unlock,
	.close = mem_close,
};

int
store_mem_open_cluster(atomic_uint_fast64_t *seq, struct store **out)
{
	int r = store_mem_open(seq, out);

	if (r == 0)
		(*out)->ops = &mem_cluster_ops;
	return r;
}

int
store_mem_open(atomic_uint_fast64_t *seq, struct store **out)
{
	struct mem_store *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (m == NULL)
		return -ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	m->seq = seq;
	m->st.ops = &mem_ops;
	m->st.priv = m;
	*out = &m->st;
	return 0;
}

unsigned
store_mem_puts(const struct store *st)
{
	const struct mem_store *m = st->priv;

	return m->puts;
}

unsigned
store_mem_dels(const struct store *st)
{
	const struct mem_store *m = st->priv;

	return m->dels;
}

uint64_t
store_mem_last_put(const struct store *st)
{
	const struct mem_store *m = st->priv;

	return m->last_put;
}

int
store_mem_has(struct store *st, const char *tenant, const char *user)
{
	struct mem_store *m = st->priv;
	int has;

	pthread_mutex_lock(&m->mu);
	has = mem_find(m, tenant, user) != NULL;
	pthread_mutex_unlock(&m->mu);
	return has;
}
