/*
 * reply.c - replies as values (see reply.h) and the checked setters
 * their builders use.
 *
 * Must never: free bytes without wiping them, or take a reference it
 * was not given (every setter takes the value it is handed, whatever
 * happens).
 */
#include <errno.h>
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
	if (r->bytes != NULL) {
		secret_wipe(r->bytes, r->len);
		free(r->bytes);
	}
	r->json = NULL;
	r->bytes = NULL;
	r->len = 0;
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
