/*
 * uidlimit.c - per-uid connection counts, token buckets and queued output
 * (see uidlimit.h).
 * A fixed array of hash chains: lookups are O(uids per chain), fine for
 * the uids that hold connections on one node at once.
 */
#include <errno.h>
#include <stdlib.h>

#include "event.h"
#include "uidlimit.h"

#define UIDLIMIT_BUCKETS 1024

struct uidlimit {
	struct event_loop *ev;
	struct uidlimit_cfg cfg;
	struct uidlimit_entry *uids[UIDLIMIT_BUCKETS];
	size_t n;
	size_t max_out_per_uid, max_out; /* 0: no cap */
	size_t out;			 /* sum of the entries' out */
};

struct uidlimit *
uidlimit_new(struct event_loop *ev, const struct uidlimit_cfg *cfg)
{
	struct uidlimit *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->ev = ev;
	l->cfg = *cfg;
	return l;
}

void
uidlimit_free(struct uidlimit *l)
{
	struct uidlimit_entry *u, *next;
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < UIDLIMIT_BUCKETS; i++)
		for (u = l->uids[i]; u != NULL; u = next) {
			next = u->next;
			free(u);
		}
	free(l);
}

void
uidlimit_set_config(struct uidlimit *l, const struct uidlimit_cfg *cfg)
{
	l->cfg = *cfg;
}

static void
refill(struct uidlimit *l, struct uidlimit_entry *u)
{
	int64_t now = event_now_ms(l->ev);
	double add =
	    (double)(now - u->refill_ms) * l->cfg.requests_per_sec / 1000.0;

	u->refill_ms = now;
	u->tokens += add;
	if (u->tokens > l->cfg.request_burst)
		u->tokens = l->cfg.request_burst;
}

int
uidlimit_open(struct uidlimit *l, uid_t uid, struct uidlimit_entry **out)
{
	size_t h = uid % UIDLIMIT_BUCKETS;
	struct uidlimit_entry *u;

	*out = NULL;
	for (u = l->uids[h]; u != NULL; u = u->next)
		if (u->uid == uid)
			break;
	if (u == NULL) {
		u = calloc(1, sizeof(*u));
		if (u == NULL)
			return -ENOMEM;
		u->uid = uid;
		u->tokens = l->cfg.request_burst;
		u->refill_ms = event_now_ms(l->ev);
		u->next = l->uids[h];
		l->uids[h] = u;
		l->n++;
	}
	if (u->conns >= l->cfg.max_conns_per_uid) {
		if (u->conns == 0)
			uidlimit_close(l, u); /* a cap of 0: nothing to keep */
		return -EUSERS;
	}
	if (!uidlimit_out_ok(l, u))
		return -ENOBUFS; /* u->out > 0: it has connections */
	u->conns++;
	*out = u;
	return 0;
}

/*
 * The last connection frees u, unless its bucket is still short (it
 * would come back full): a flooding uid keeps its debt across reconnects.
 * Called with conns == 0 by uidlimit_open to drop an entry it just made.
 */
void
uidlimit_close(struct uidlimit *l, struct uidlimit_entry *u)
{
	struct uidlimit_entry **pp;

	if (u == NULL)
		return;
	if (u->conns > 0 && --u->conns > 0)
		return;
	refill(l, u);
	if (u->tokens < l->cfg.request_burst || u->out > 0)
		return;
	for (pp = &l->uids[u->uid % UIDLIMIT_BUCKETS]; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			free(u);
			l->n--;
			return;
		}
}

int
uidlimit_allow(struct uidlimit *l, struct uidlimit_entry *u)
{
	refill(l, u);
	if (u->tokens < 1.0)
		return 0;
	u->tokens -= 1.0;
	return 1;
}

void
uidlimit_set_out_caps(struct uidlimit *l, size_t max_out_per_uid,
    size_t max_out)
{
	l->max_out_per_uid = max_out_per_uid;
	l->max_out = max_out;
}

void
uidlimit_out_add(struct uidlimit *l, struct uidlimit_entry *u, size_t n)
{
	u->out += n;
	l->out += n;
}

void
uidlimit_out_sub(struct uidlimit *l, struct uidlimit_entry *u, size_t n)
{
	n = n < u->out ? n : u->out; /* never below zero */
	u->out -= n;
	l->out -= n;
}

int
uidlimit_out_ok(const struct uidlimit *l, const struct uidlimit_entry *u)
{
	if (l->max_out_per_uid > 0 && u->out >= l->max_out_per_uid)
		return 0;
	return l->max_out == 0 || l->out < l->max_out || u->out == 0;
}

size_t
uidlimit_out_total(const struct uidlimit *l)
{
	return l->out;
}

size_t
uidlimit_count(const struct uidlimit *l)
{
	return l->n;
}
