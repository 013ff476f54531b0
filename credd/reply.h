/*
 * reply.h - an answer to one request, as a value (DESIGN.md §10): a
 * protocol response object, or the same response already serialized as
 * one protocol line, so that a hot path can serve bytes built once. The
 * listener that owns the request turns it into what its peer reads:
 * server.c encodes the JSON (proto_encode) or sends the bytes as they
 * are; msi.c shapes either into its HTTP answer.
 *
 * An empty reply (neither set) is an answer that could not be built (out
 * of memory): the listener answers "internal" without allocating.
 *
 * Must never: leave bytes unwiped when it lets them go (a token reply
 * carries the token).
 */
#ifndef CREDD_REPLY_H
#define CREDD_REPLY_H

#include <stddef.h>
#include <jansson.h>

struct reply {
	json_t *json; /* a response object (owned), or NULL */
	char *bytes;  /* or the response as one protocol line, its newline
			 * included (owned, malloc'd; wiped when let go) */
	size_t len;
};

/* Take o as r's answer (r emptied first). 0, or -ENOMEM when o is NULL. */
int reply_set_json(struct reply *r, json_t *o);
/*
 * Take bytes[0..len) (malloc'd; proto_encode's output, or the same bytes
 * built earlier) as r's answer (r emptied first). 0, or -ENOMEM when
 * bytes is NULL.
 */
int reply_set_bytes(struct reply *r, char *bytes, size_t len);
/* Let go of what r holds (bytes wiped); r is empty after. NULL is fine. */
void reply_clear(struct reply *r);
int reply_is_empty(const struct reply *r);

/*
 * json_object_set_new and json_array_append_new for reply builders:
 * take v; when o or v is NULL (a constructor failed) or the set fails,
 * *failed becomes 1 and v is released. A builder makes its whole reply,
 * then checks once.
 */
void reply_put(json_t *o, const char *key, json_t *v, int *failed);
void reply_append(json_t *a, json_t *v, int *failed);

#endif
