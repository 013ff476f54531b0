/*
 * reply.h - an answer to one request, as a value (DESIGN.md §10): a
 * protocol response object, or the same response already serialized as
 * one protocol line, so that a hot path can serve bytes built once. The
 * listener that owns the request turns it into what its peer reads:
 * server.c encodes the JSON (proto_encode) or sends the bytes as they
 * are; msi.c shapes either into its HTTP answer.
 *
 * Bytes are owned by the reply, or shared: a struct reply_line is a
 * refcounted line in secret memory (the cache keeps a recently used
 * token reply as one, tokens.c), and a reply that serves it holds a
 * reference instead of a copy.
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

struct reply_line;

struct reply {
	json_t *json; /* a response object (owned), or NULL */
	char *bytes;  /* or the response as one protocol line, its newline
			 * included (owned, malloc'd; wiped when let go), or
			 * line's bytes */
	size_t len;
	struct reply_line *line; /* a reference when bytes are line's */
};

/*
 * A protocol line several replies may send: made once, read by many,
 * wiped when the last reference goes. Its memory comes from
 * secret_mem_alloc (credd's locked arena while it has room).
 */
struct reply_line {
	unsigned refs;
	size_t len; /* the line, newline included */
	size_t cap; /* bytes[] as allocated; bytes[len..cap) is the maker's */
	char bytes[];
};

/* A line of cap bytes (len 0, one reference); NULL on ENOMEM. */
struct reply_line *reply_line_new(size_t cap);
/* Another reference to l (not NULL). */
struct reply_line *reply_line_ref(struct reply_line *l);
/* Drop one reference; the last wipes and frees l. NULL is fine. */
void reply_line_unref(struct reply_line *l);
/* Serve l (a new reference) as r's answer (r emptied first). 0. */
int reply_set_line(struct reply *r, struct reply_line *l);

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
