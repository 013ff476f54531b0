/*
 * store.c - backend-independent helpers for store.h: close a store and
 * free what its calls hand back.
 *
 * Must never: look inside a blob (backends hold sealed bytes only) or
 * know about a particular backend.
 */
#include <stdlib.h>

#include "store.h"

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->ops != NULL && st->ops->close != NULL)
		st->ops->close(st); /* frees st itself */
	else
		free(st);
}

void
blob_clear(struct blob *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->version = 0;
}

int
store_each(struct store *st, const char *tenant, size_t page,
    int (*fn)(void *arg, const struct store_entry *e), void *arg, size_t *count)
{
	struct store_entry *ents = NULL;
	char *cursor = NULL, *next = NULL;
	size_t n = 0, i;
	int r;

	*count = 0;
	do {
		r = st->ops->list(st, tenant, cursor, page, 1, &ents, &n,
		    &next);
		if (r < 0)
			break;
		for (i = 0; i < n && r >= 0; i++) {
			r = fn(arg, &ents[i]);
			if (r > 0)
				(*count)++;
		}
		store_entries_free(ents, n);
		ents = NULL;
		free(cursor);
		cursor = next;
		next = NULL;
	} while (r >= 0 && cursor != NULL);
	free(cursor);
	return r < 0 ? r : 0;
}

void
store_entries_free(struct store_entry *e, size_t n)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(e[i].user);
		blob_clear(&e[i].blob);
	}
	free(e);
}
