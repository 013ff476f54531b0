/*
 * reply.c - replies as values (see reply.h): JSON, owned bytes or a
 * shared line (refcounted, in secret memory), and the checked setters
 * their builders use. Single-threaded, like the loop: references are
 * plain counters.
 *
 * Must never: free bytes without wiping them, or take a reference it
 * was not given (every setter takes the value it is handed, whatever
 * happens).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "entra/secret.h"

#include "reply.h"

int
reply_set_json(struct reply *r, json_t *o)
{
	reply_clear(r);
	if (o == NULL)
		return -ENOMEM;
	r->json = o;
	return 0;
}

int
reply_set_bytes(struct reply *r, char *bytes, size_t len)
{
	reply_clear(r);
	if (bytes == NULL)
		return -ENOMEM;
	r->bytes = bytes;
	r->len = len;
	return 0;
}

void
reply_clear(struct reply *r)
{
	if (r == NULL)
		return;
	json_decref(r->json); /* credd's jansson allocator wipes */
	if (r->line != NULL)
		reply_line_unref(r->line); /* the bytes are its */
	else if (r->bytes != NULL) {
		secret_wipe(r->bytes, r->len);
		free(r->bytes);
	}
	r->json = NULL;
	r->bytes = NULL;
	r->len = 0;
	r->line = NULL;
}

struct reply_line *
reply_line_new(size_t cap)
{
	struct reply_line *l;

	if (cap > SIZE_MAX - sizeof(*l))
		return NULL;
	l = secret_mem_alloc(sizeof(*l) + cap);
	if (l == NULL)
		return NULL;
	l->refs = 1;
	l->len = 0;
	l->cap = cap;
	return l;
}

struct reply_line *
reply_line_ref(struct reply_line *l)
{
	l->refs++;
	return l;
}

void
reply_line_unref(struct reply_line *l)
{
	if (l == NULL || --l->refs > 0)
		return;
	secret_mem_free(l, sizeof(*l) + l->cap); /* wipes it all */
}

int
reply_set_line(struct reply *r, struct reply_line *l)
{
	reply_clear(r);
	r->line = reply_line_ref(l);
	r->bytes = l->bytes;
	r->len = l->len;
	return 0;
}

int
reply_is_empty(const struct reply *r)
{
	return r->json == NULL && r->bytes == NULL;
}

void
reply_put(json_t *o, const char *key, json_t *v, int *failed)
{
	/* json_object_set_new releases v on every failure, o NULL too. */
	if (v == NULL || json_object_set_new(o, key, v) != 0)
		*failed = 1;
}

void
reply_append(json_t *a, json_t *v, int *failed)
{
	if (v == NULL || json_array_append_new(a, v) != 0)
		*failed = 1;
}
