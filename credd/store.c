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
