/*
 * record.c - a user's consent record: JSON encode/decode (jansson), seal
 * and open via seal.c, load/save/delete through a store backend with
 * compare-and-swap versions, the sealed (epoch, generation) of every
 * write and its check against this node's high-water marks (marks.h),
 * and `credd rekey`. The flows a record carries while they run (device
 * and code) are record_flow.c's.
 *
 * Must never: let the refresh token or the encoded plaintext sit in a
 * loose char * that outlives a function (they live in struct secret, and
 * library buffers are wiped as soon as they are copied), hand a backend
 * anything but sealed bytes, or log. jansson's own internal copies are
 * wiped by the allocator credd installs (json_set_alloc_funcs in main.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "entra/secret.h"
#include "marks.h"
#include "record.h"
#include "record_int.h"
#include "seal.h"
#include "store.h"

#define RECORD_VERSION 1
#define RECORD_REKEY_PAGE 64
#define RECORD_REKEY_TRIES 5

struct record *
record_new(const char *user, uid_t uid)
{
	struct record *r;

	if (user == NULL)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->user = strdup(user);
	r->scopes = calloc(1, sizeof(*r->scopes));
	if (r->user == NULL || r->scopes == NULL) {
		record_free(r);
		return NULL;
	}
	r->uid = uid;
	return r;
}

static void
free_scopes(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

void
record_free(struct record *r)
{
	if (r == NULL)
		return;
	record_flow_free(r->flow);
	record_flow_code_free(r->cflow);
	free(r->user);
	free(r->oid);
	free(r->tid);
	free(r->username);
	secret_free(r->refresh_token);
	free_scopes(r->scopes);
	free(r);
}

int
record_dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return 0;
	*out = strdup(s);
	return *out != NULL ? 0 : -ENOMEM;
}

static size_t
count_scopes(char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

struct record *
record_dup(const struct record *r)
{
	struct record *d;
	size_t i, n;

	if (r == NULL)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	*d = (struct record){ .uid = r->uid,
		.created = r->created,
		.updated = r->updated,
		.last_refresh = r->last_refresh,
		.version = r->version,
		.epoch = r->epoch,
		.gen = r->gen,
		.client = r->client };
	if (record_dup_opt(r->user, &d->user) < 0 ||
	    record_dup_opt(r->oid, &d->oid) < 0 ||
	    record_dup_opt(r->tid, &d->tid) < 0 ||
	    record_dup_opt(r->username, &d->username) < 0)
		goto fail;
	if (r->refresh_token != NULL) {
		d->refresh_token = secret_dup(r->refresh_token);
		if (d->refresh_token == NULL)
			goto fail;
	}
	if (r->flow != NULL && (d->flow = record_flow_dup(r->flow)) == NULL)
		goto fail;
	if (r->cflow != NULL &&
	    (d->cflow = record_flow_code_dup(r->cflow)) == NULL)
		goto fail;
	n = count_scopes(r->scopes);
	d->scopes = calloc(n + 1, sizeof(*d->scopes));
	if (d->scopes == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		d->scopes[i] = strdup(r->scopes[i]);
		if (d->scopes[i] == NULL)
			goto fail;
	}
	return d;
fail:
	record_free(d);
	return NULL;
}

int
record_set_scopes(struct record *r, const char *space_list)
{
	const char *p = space_list != NULL ? space_list : "";
	char **v;
	size_t n = 0, len;

	/* Upper bound: one scope per two bytes, plus the NULL. */
	v = calloc(strlen(p) / 2 + 2, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	for (;;) {
		p += strspn(p, " \t");
		len = strcspn(p, " \t");
		if (len == 0)
			break;
		v[n] = strndup(p, len);
		if (v[n] == NULL) {
			free_scopes(v);
			return -ENOMEM;
		}
		n++;
		p += len;
	}
	free_scopes(r->scopes);
	r->scopes = v;
	return 0;
}

json_t *
record_json_str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
encode_obj(const struct record *r)
{
	json_t *o, *scopes, *rt;
	size_t i;

	scopes = json_array();
	rt = r->refresh_token != NULL ?
	    json_stringn(r->refresh_token->ptr, r->refresh_token->len) :
	    json_null();
	for (i = 0; scopes != NULL && r->scopes != NULL && r->scopes[i] != NULL;
	     i++) {
		if (json_array_append_new(scopes, json_string(r->scopes[i])) <
		    0) {
			json_decref(scopes);
			scopes = NULL;
		}
	}
	if (scopes == NULL || rt == NULL) {
		json_decref(scopes);
		json_decref(rt);
		return NULL;
	}
	/* "o" steals each reference, even when pack fails. */
	o = json_pack("{s:i, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I, "
		      "s:I, s:I}",
	    "v", RECORD_VERSION, "user", r->user, "uid", (json_int_t)r->uid,
	    "oid", record_json_str_or_null(r->oid), "tid",
	    record_json_str_or_null(r->tid), "username",
	    record_json_str_or_null(r->username), "refresh_token", rt, "scopes",
	    scopes, "created", (json_int_t)r->created, "updated",
	    (json_int_t)r->updated, "last_refresh", (json_int_t)r->last_refresh,
	    "epoch", (json_int_t)r->epoch, "gen", (json_int_t)r->gen);
	if (o != NULL && r->flow != NULL) {
		json_t *fo = record_flow_encode(r->flow);

		if (fo == NULL || json_object_set_new(o, "flow", fo) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	if (o != NULL && r->cflow != NULL &&
	    json_object_set_new(o, "code_flow",
		record_flow_code_encode(r->cflow)) < 0) {
		json_decref(o);
		return NULL;
	}
	if (o != NULL && r->client != 0 &&
	    json_object_set_new(o, "client", json_string("confidential")) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
record_encode(const struct record *r, struct secret **out)
{
	json_t *o;
	char *text;

	*out = NULL;
	if (r == NULL || r->user == NULL)
		return -EINVAL;
	o = encode_obj(r);
	if (o == NULL)
		return -ENOMEM;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL)
		return -ENOMEM;
	*out = secret_from_str(text);
	secret_wipe_str(text);
	return *out != NULL ? 0 : -ENOMEM;
}

int
record_get_str(json_t *o, const char *key, int may_be_null, char **out)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return may_be_null ? 0 : -EBADMSG;
	if (!json_is_string(v))
		return -EBADMSG;
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return -EBADMSG;
	*out = strdup(s);
	return *out != NULL ? 0 : -ENOMEM;
}

int
record_get_int(json_t *o, const char *key, int64_t min, int64_t max,
    int64_t *out)
{
	json_t *v = json_object_get(o, key);
	json_int_t i;

	if (!json_is_integer(v))
		return -EBADMSG;
	i = json_integer_value(v);
	if (i < min || i > max)
		return -EBADMSG;
	*out = (int64_t)i;
	return 0;
}

/* An optional integer in 0..INT64_MAX; absent (sealed before) reads 0. */
static int
get_opt_u63(json_t *o, const char *key, uint64_t *out)
{
	int64_t v = 0;
	int e;

	*out = 0;
	if (json_object_get(o, key) == NULL)
		return 0;
	e = record_get_int(o, key, 0, INT64_MAX, &v);
	if (e == 0)
		*out = (uint64_t)v;
	return e;
}

static int
decode_scopes(json_t *a, char ***out)
{
	char **v;
	size_t i, n;
	json_t *e;

	*out = NULL;
	if (!json_is_array(a))
		return -EBADMSG;
	n = json_array_size(a);
	v = calloc(n + 1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	json_array_foreach(a, i, e)
	{
		if (!json_is_string(e) ||
		    strlen(json_string_value(e)) != json_string_length(e)) {
			free_scopes(v);
			return -EBADMSG;
		}
		v[i] = strdup(json_string_value(e));
		if (v[i] == NULL) {
			free_scopes(v);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

int
record_get_client(json_t *v, int *out)
{
	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return -EBADMSG;
	if (strcmp(json_string_value(v), "confidential") == 0)
		*out = 1;
	else if (strcmp(json_string_value(v), "public") != 0)
		return -EBADMSG;
	return 0;
}

/* Fill r from the parsed object. Unknown members are ignored. */
static int
decode_obj(json_t *o, struct record *r)
{
	int64_t v = 0, uid = 0;
	json_t *rt;
	int e;

	if (!json_is_object(o))
		return -EBADMSG;
	e = record_get_int(o, "v", RECORD_VERSION, RECORD_VERSION, &v);
	if (e == 0)
		e = record_get_str(o, "user", 0, &r->user);
	if (e == 0)
		e = record_get_int(o, "uid", 0, (int64_t)UINT32_MAX - 1, &uid);
	if (e == 0)
		e = record_get_str(o, "oid", 1, &r->oid);
	if (e == 0)
		e = record_get_str(o, "tid", 1, &r->tid);
	if (e == 0)
		e = record_get_str(o, "username", 1, &r->username);
	if (e == 0)
		e = decode_scopes(json_object_get(o, "scopes"), &r->scopes);
	if (e == 0)
		e = record_get_int(o, "created", INT64_MIN, INT64_MAX,
		    &r->created);
	if (e == 0)
		e = record_get_int(o, "updated", INT64_MIN, INT64_MAX,
		    &r->updated);
	if (e == 0)
		e = record_get_int(o, "last_refresh", INT64_MIN, INT64_MAX,
		    &r->last_refresh);
	if (e == 0)
		e = get_opt_u63(o, "epoch", &r->epoch);
	if (e == 0)
		e = get_opt_u63(o, "gen", &r->gen);
	if (e < 0)
		return e;
	if (r->user[0] == '\0')
		return -EBADMSG;
	r->uid = (uid_t)uid;
	e = record_flow_decode(json_object_get(o, "flow"), &r->flow);
	if (e < 0)
		return e;
	e = record_flow_code_decode(json_object_get(o, "code_flow"), &r->cflow);
	if (e < 0)
		return e;
	e = record_get_client(json_object_get(o, "client"), &r->client);
	if (e < 0)
		return e;
	rt = json_object_get(o, "refresh_token");
	if (rt == NULL || json_is_null(rt))
		return 0;
	if (!json_is_string(rt) || json_string_length(rt) == 0)
		return -EBADMSG;
	r->refresh_token =
	    secret_new(json_string_value(rt), json_string_length(rt));
	return r->refresh_token != NULL ? 0 : -ENOMEM;
}

int
record_decode(const struct secret *plain, uint64_t version, struct record **out)
{
	struct record *r = NULL;
	json_error_t err;
	json_t *o;
	int e;

	*out = NULL;
	if (plain == NULL)
		return -EINVAL;
	o = json_loadb(plain->ptr, plain->len, JSON_REJECT_DUPLICATES, &err);
	secret_wipe(&err, sizeof(err)); /* err.text may quote the input */
	if (o == NULL)
		return -EBADMSG;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		e = -ENOMEM;
		goto out;
	}
	e = decode_obj(o, r);
	if (e < 0)
		goto out;
	r->version = version;
	*out = r;
	r = NULL; /* transferred */
out:
	record_free(r);
	json_decref(o);
	return e;
}

int
record_load(struct store *st, const struct seal *seal, const char *tenant,
    const char *user, struct record **out)
{
	struct secret *plain = NULL;
	struct blob blob = { 0 };
	struct record *r = NULL;
	int e;

	*out = NULL;
	e = st->ops->get(st, tenant, user, &blob); /* opaque bytes + version */
	if (e < 0)
		goto out;
	e = seal_open(seal, tenant, user, blob.data, blob.len, &plain);
	if (e < 0)
		goto out;
	e = record_decode(plain, blob.version, &r);
	if (e < 0)
		goto out;
	/* The AD binds the blob to user already; this catches a bad writer. */
	if (strcmp(r->user, user) != 0) {
		e = -EBADMSG;
		goto out;
	}
	*out = r;
	r = NULL; /* transferred */
out:
	record_free(r);
	secret_free(plain);
	blob_clear(&blob);
	return e;
}

int
record_explain(struct store *st, const struct seal *seal, const char *tenant,
    const char *user, char *buf, size_t n)
{
	struct secret *plain = NULL;
	struct blob blob = { 0 };
	int e;

	if (n == 0)
		return -EINVAL;
	e = st->ops->get(st, tenant, user, &blob);
	if (e < 0) {
		snprintf(buf, n, "cannot read it again: %s", strerror(-e));
		return e;
	}
	if (seal_open(seal, tenant, user, blob.data, blob.len, &plain) == 0)
		snprintf(buf, n,
		    "it opens, but is not a valid record of this "
		    "user");
	else
		seal_explain(seal, blob.data, blob.len, buf, n);
	secret_free(plain);
	blob_clear(&blob);
	return 0;
}

/* Unix microseconds now (the epoch of a row created now). */
static uint64_t
now_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || ts.tv_sec < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Seal r numbered after (epoch, gen) and put_if(r->version): fresh, a
 * new epoch above epoch (now, if that is later) at generation 1; else
 * epoch at gen + 1. r keeps what was sealed on success, else is as it was.
 */
static int
save_numbered(struct store *st, const struct seal *seal, const char *tenant,
    struct record *r, int fresh, uint64_t epoch, uint64_t gen)
{
	const uint64_t e0 = r->epoch, g0 = r->gen, t = now_us();
	struct secret *plain = NULL;
	uint8_t *blob = NULL;
	size_t len = 0;
	uint64_t nv = 0;
	int e;

	if ((fresh ? epoch : gen) >= (uint64_t)INT64_MAX)
		return -EOVERFLOW; /* sealed as a JSON integer */
	r->epoch = fresh ? (t > epoch ? t : epoch + 1) : epoch;
	r->gen = fresh ? 1 : gen + 1;
	e = record_encode(r, &plain);
	if (e == 0) {
		e = seal_seal(seal, tenant, r->user, plain, &blob, &len);
		secret_free(plain);
	}
	if (e == 0) {
		e = st->ops->put_if(st, tenant, r->user, blob, len, r->version,
		    &nv);
		free(blob);
	}
	if (e < 0) {
		r->epoch = e0;
		r->gen = g0;
		return e;
	}
	r->version = nv;
	return 0;
}

int
record_save(struct store *st, const struct seal *seal, const char *tenant,
    struct record *r)
{
	return save_numbered(st, seal, tenant, r, r->version == 0, r->epoch,
	    r->gen);
}

int
record_load_marked(struct store *st, const struct seal *seal, struct marks *mk,
    const char *tenant, const char *user, struct record **out,
    struct record_rollback *rb, int *marks_err)
{
	struct marks_mark m;
	int e, have;

	memset(rb, 0, sizeof(*rb));
	*marks_err = 0;
	e = record_load(st, seal, tenant, user, out);
	if (mk == NULL || (e < 0 && e != -ENOENT))
		return e;
	have = marks_get(mk, tenant, user, &m) == 0;
	if (e == -ENOENT) {
		/* This node saw the row gone: no row of that epoch comes back. */
		if (have && !m.deleted)
			*marks_err = marks_deleted(mk, tenant, user, m.epoch);
		return e;
	}
	if (have && !marks_admits(&m, (*out)->epoch, (*out)->gen)) {
		*rb = (struct record_rollback){ .version = (*out)->version,
			.epoch = (*out)->epoch,
			.gen = (*out)->gen,
			.mark = m };
		record_free(*out);
		*out = NULL;
		return RECORD_EROLLBACK;
	}
	*marks_err = marks_raise(mk, tenant, user, (*out)->epoch, (*out)->gen);
	return 0;
}

int
record_save_marked(struct store *st, const struct seal *seal, struct marks *mk,
    const char *tenant, struct record *r, int may_create, int *marks_err)
{
	struct marks_mark m;
	uint64_t epoch = r->epoch, gen = r->gen;
	int e, fresh = r->version == 0;

	*marks_err = 0;
	if (mk != NULL && marks_get(mk, tenant, r->user, &m) == 0) {
		if (m.deleted && r->epoch <= m.epoch && !fresh) {
			/* Its epoch was deleted: only a new consent writes,
			 * and as a new row (even over a refused one). */
			if (!may_create)
				return -ENOENT;
			fresh = 1;
		} else if (!fresh && r->epoch < m.epoch)
			return -ESTALE; /* a newer row exists: merge first */
		if (fresh && m.epoch > epoch)
			epoch = m.epoch;
		else if (!fresh && r->epoch == m.epoch && m.gen > gen)
			gen = m.gen;
	}
	e = save_numbered(st, seal, tenant, r, fresh, epoch, gen);
	if (e == 0 && mk != NULL)
		*marks_err = marks_raise(mk, tenant, r->user, r->epoch, r->gen);
	return e;
}

int
record_delete(struct store *st, const char *tenant, const struct record *r)
{
	return st->ops->del_if(st, tenant, r->user, r->version);
}

/*
 * Reseal one blob under the active key and put it back if the version is
 * still the one it was read at. 1 rewritten, 0 already current, -errno.
 */
static int
rekey_blob(struct store *st, const struct seal *seal, const char *tenant,
    const char *user, const struct blob *b)
{
	struct secret *plain = NULL;
	uint8_t *out = NULL;
	size_t len = 0;
	uint64_t nv = 0;
	int e;

	if (seal_blob_key_id(b->data, b->len) == seal_active_id(seal))
		return 0;
	e = seal_open(seal, tenant, user, b->data, b->len, &plain);
	if (e < 0)
		return e;
	/* Reseal the plaintext as is: no decode, so nothing is lost. */
	e = seal_seal(seal, tenant, user, plain, &out, &len);
	secret_free(plain);
	if (e < 0)
		return e;
	e = st->ops->put_if(st, tenant, user, out, len, b->version, &nv);
	free(out);
	return e < 0 ? e : 1;
}

/* rekey_blob, rereading on -ESTALE; a record deleted meanwhile is skipped. */
static int
rekey_one(struct store *st, const struct seal *seal, const char *tenant,
    const struct store_entry *ent)
{
	struct blob fresh = { 0 };
	int e, tries;

	e = rekey_blob(st, seal, tenant, ent->user, &ent->blob);
	for (tries = 0; e == -ESTALE && tries < RECORD_REKEY_TRIES; tries++) {
		blob_clear(&fresh);
		e = st->ops->get(st, tenant, ent->user, &fresh);
		if (e == -ENOENT) {
			e = 0;
			break;
		}
		if (e < 0)
			break;
		e = rekey_blob(st, seal, tenant, ent->user, &fresh);
	}
	blob_clear(&fresh);
	return e;
}

struct rekey_in {
	struct store *st;
	const struct seal *seal;
	const char *tenant;
};

static int
rekey_cb(void *arg, const struct store_entry *e)
{
	const struct rekey_in *k = arg;

	return rekey_one(k->st, k->seal, k->tenant, e);
}

int
record_rekey_all(struct store *st, const struct seal *seal, const char *tenant,
    size_t *count)
{
	struct rekey_in k = { st, seal, tenant };

	return store_each(st, tenant, RECORD_REKEY_PAGE, rekey_cb, &k, count);
}
