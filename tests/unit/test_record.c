/*
 * test_record.c - record.c: JSON encode/decode, load/save/delete through
 * the file store with sealing, versions, moved blobs, and rekey; the
 * sealed (epoch, generation) and the rollback check against high-water
 * marks (issue 11, finding 8): an older blob put back by a store writer
 * is refused, a deleted record is not resurrected, a new consent after a
 * deletion and a newer row from another node are admitted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "entra/secret.h"
#include "marks.h"
#include "record.h"
#include "seal.h"
#include "store.h"
#include "test.h"

static const char *root;

static struct record *
sample(const char *user)
{
	struct record *r = record_new(user, 1001);

	if (r == NULL)
		return NULL;
	r->oid = strdup("00000000-0000-0000-0000-0000000000aa");
	r->tid = strdup("11111111-1111-1111-1111-111111111111");
	r->username = strdup("alice@contoso.com");
	r->refresh_token =
	    secret_from_str("0.AAAA-refresh\"token\\with/quotes");
	r->created = 1700000000;
	r->updated = 1700000100;
	r->last_refresh = 1700000200;
	if (record_set_scopes(r, "  openid profile\toffline_access  ") < 0) {
		record_free(r);
		return NULL;
	}
	return r;
}

static int
same_record(const struct record *a, const struct record *b)
{
	size_t i;

	if (strcmp(a->user, b->user) != 0 || a->uid != b->uid ||
	    strcmp(a->oid, b->oid) != 0 || strcmp(a->tid, b->tid) != 0 ||
	    strcmp(a->username, b->username) != 0 ||
	    !secret_equal(a->refresh_token, b->refresh_token) ||
	    a->created != b->created || a->updated != b->updated ||
	    a->last_refresh != b->last_refresh)
		return 0;
	for (i = 0; a->scopes[i] != NULL || b->scopes[i] != NULL; i++)
		if (a->scopes[i] == NULL || b->scopes[i] == NULL ||
		    strcmp(a->scopes[i], b->scopes[i]) != 0)
			return 0;
	return 1;
}

TEST(test_encode_decode)
{
	struct record *r = sample("alice"), *d = NULL, *c = NULL;
	struct secret *plain = NULL;

	ASSERT_TRUE(r != NULL);
	ASSERT_STREQ(r->scopes[0], "openid");
	ASSERT_STREQ(r->scopes[2], "offline_access");
	ASSERT_TRUE(r->scopes[3] == NULL);
	ASSERT_EQ(record_encode(r, &plain), 0);
	ASSERT_TRUE(strstr(plain->ptr, "\"v\":1") != NULL);
	ASSERT_EQ(record_decode(plain, 7, &d), 0);
	ASSERT_TRUE(same_record(r, d));
	ASSERT_EQ(d->version, 7);
	c = record_dup(d);
	ASSERT_TRUE(c != NULL && same_record(c, d) && c->version == 7);
	record_free(c);
	record_free(d);
	d = NULL;
	secret_free(plain);
	plain = NULL;

	/* No refresh token (dropped consent), no scopes, no account yet. */
	secret_free(r->refresh_token);
	r->refresh_token = NULL;
	free(r->username);
	r->username = NULL;
	ASSERT_EQ(record_set_scopes(r, NULL), 0);
	ASSERT_EQ(record_encode(r, &plain), 0);
	ASSERT_TRUE(strstr(plain->ptr, "\"refresh_token\":null") != NULL);
	ASSERT_EQ(record_decode(plain, 1, &d), 0);
	ASSERT_TRUE(d->refresh_token == NULL && d->username == NULL);
	ASSERT_TRUE(d->scopes != NULL && d->scopes[0] == NULL);
	record_free(d);
	secret_free(plain);
	record_free(r);
	record_free(NULL);
	ASSERT_TRUE(record_dup(NULL) == NULL);
}

TEST(test_decode_malformed)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{",
		"{\"v\":2,\"user\":\"a\",\"uid\":1,\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0}",
		"{\"user\":\"a\",\"uid\":1,\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0}",
		"{\"v\":1,\"user\":\"\",\"uid\":1,\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0}",
		"{\"v\":1,\"user\":\"a\",\"uid\":-1,\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0}",
		"{\"v\":1,\"user\":\"a\",\"uid\":\"1\",\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0}",
		"{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[1],\"created\":0,\"updated\":0,\"last_refresh\":0}",
		"{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":\"x\",\"created\":0,\"updated\":0,\"last_refresh\":0}",
		"{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],\"created\":0,\"updated\":0}",
		"{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0,\"refresh_token\":5}",
		"{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0,\"refresh_token\":\"\"}",
		"{\"v\":1,\"user\":\"a\\u0000b\",\"uid\":1,\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0}",
		"{\"v\":1,\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0}",
	};
	const char *ok =
	    "{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],"
	    "\"created\":0,\"updated\":0,\"last_refresh\":0,\"future\":true}";
	struct secret *p;
	struct record *r = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = secret_from_str(bad[i]);
		if (record_decode(p, 1, &r) != -EBADMSG)
			FAILF("case %zu accepted", i);
		ASSERT_TRUE(r == NULL);
		secret_free(p);
	}
	p = secret_from_str(ok);
	ASSERT_EQ(record_decode(p, 1, &r), 0); /* unknown members ignored */
	ASSERT_TRUE(r->oid == NULL && r->refresh_token == NULL);
	record_free(r);
	secret_free(p);
}

TEST(test_load_save)
{
	const char *d = fixture_subdir(root);
	char keys[256] = "";
	struct seal *s;
	struct store *st = NULL;
	struct record *r = sample("alice"), *l = NULL, *l2 = NULL;
	struct blob b = { 0 };
	uint64_t v = 0;

	fixture_ring_key(keys, sizeof(keys), 1, 0x42, 1);
	s = fixture_ring_text(keys);
	ASSERT_TRUE(s != NULL && r != NULL);
	ASSERT_EQ(store_file_open(d, &st), 0);
	ASSERT_ERR(record_load(st, s, "T", "alice", &l), -ENOENT);
	ASSERT_EQ(r->version, 0);
	ASSERT_EQ(record_save(st, s, "T", r), 0);
	ASSERT_EQ(r->version, 1);
	/* The backend holds sealed bytes only. */
	ASSERT_EQ(st->ops->get(st, "T", "alice", &b), 0);
	ASSERT_TRUE(memcmp(b.data, "CRS1", 4) == 0);
	ASSERT_TRUE(memmem(b.data, b.len, "refresh", 7) == NULL);
	ASSERT_TRUE(memmem(b.data, b.len, "contoso", 7) == NULL);

	ASSERT_EQ(record_load(st, s, "T", "alice", &l), 0);
	ASSERT_TRUE(same_record(r, l));
	ASSERT_EQ(l->version, 1);
	ASSERT_EQ(record_load(st, s, "T", "alice", &l2), 0);

	/* Two writers from version 1: the second loses with -ESTALE. */
	l->last_refresh = 1;
	ASSERT_EQ(record_save(st, s, "T", l), 0);
	ASSERT_EQ(l->version, 2);
	l2->last_refresh = 2;
	ASSERT_ERR(record_save(st, s, "T", l2), -ESTALE);
	ASSERT_EQ(l2->version, 1);
	ASSERT_ERR(record_delete(st, "T", l2), -ESTALE);
	/* Creating over an existing record is a conflict too. */
	record_free(r);
	r = sample("alice");
	ASSERT_ERR(record_save(st, s, "T", r), -ESTALE);
	record_free(l2);
	ASSERT_EQ(record_load(st, s, "T", "alice", &l2), 0);
	ASSERT_EQ(l2->last_refresh, 1);
	ASSERT_EQ(l2->version, 2);

	/* Another tenant sees nothing. */
	record_free(l2);
	l2 = NULL;
	ASSERT_ERR(record_load(st, s, "U", "alice", &l2), -ENOENT);

	/* The blob moved to another user's record does not open. */
	ASSERT_EQ(st->ops->put_if(st, "T", "bob", b.data, b.len, 0, &v), 0);
	ASSERT_ERR(record_load(st, s, "T", "bob", &l2), -EBADMSG);
	ASSERT_TRUE(l2 == NULL);

	ASSERT_EQ(record_delete(st, "T", l), 0);
	ASSERT_ERR(record_load(st, s, "T", "alice", &l2), -ENOENT);
	blob_clear(&b);
	record_free(l);
	record_free(r);
	store_close(st);
	seal_free(s);
}

/*
 * A store that forwards to the file store, but lets a "concurrent writer"
 * bump the record just before the first put_if of each user reaches it.
 */
struct race_store {
	struct store st;
	struct store *inner;
	char raced[8][8];
	int nraced;
};

static int
race_get(struct store *st, const char *t, const char *u, struct blob *out)
{
	struct race_store *rs = st->priv;

	return rs->inner->ops->get(rs->inner, t, u, out);
}

static int
race_put_if(struct store *st, const char *t, const char *u, const uint8_t *data,
    size_t len, uint64_t expect, uint64_t *nv)
{
	struct race_store *rs = st->priv;
	struct blob b = { 0 };
	uint64_t v = 0;
	int i;

	for (i = 0; i < rs->nraced; i++)
		if (strcmp(rs->raced[i], u) == 0)
			break;
	if (i == rs->nraced && rs->nraced < 8) {
		snprintf(rs->raced[rs->nraced++], sizeof(rs->raced[0]), "%s",
		    u);
		/* The other writer rewrites the same bytes: version + 1. */
		if (rs->inner->ops->get(rs->inner, t, u, &b) == 0)
			(void)rs->inner->ops->put_if(rs->inner, t, u, b.data,
			    b.len, b.version, &v);
		blob_clear(&b);
	}
	return rs->inner->ops->put_if(rs->inner, t, u, data, len, expect, nv);
}

static int
race_del_if(struct store *st, const char *t, const char *u, uint64_t expect)
{
	struct race_store *rs = st->priv;

	return rs->inner->ops->del_if(rs->inner, t, u, expect);
}

static int
race_list(struct store *st, const char *t, const char *cursor, size_t limit,
    int want_blobs, struct store_entry **out, size_t *n, char **next)
{
	struct race_store *rs = st->priv;

	return rs->inner->ops->list(rs->inner, t, cursor, limit, want_blobs,
	    out, n, next);
}

static const struct store_ops race_ops = {
	.name = "race",
	.get = race_get,
	.put_if = race_put_if,
	.del_if = race_del_if,
	.list = race_list,
};

TEST(test_rekey_race)
{
	const char *d = fixture_subdir(root);
	char k1[256] = "", k12[512] = "";
	struct seal *s1, *s12;
	struct race_store rs = { 0 };
	struct record *r, *l = NULL;
	size_t i, count = 0;
	char user[8];

	fixture_ring_key(k1, sizeof(k1), 1, 0x01, 1);
	fixture_ring_key(k12, sizeof(k12), 1, 0x01, 0);
	fixture_ring_key(k12, sizeof(k12), 2, 0x02, 1);
	s1 = fixture_ring_text(k1);
	s12 = fixture_ring_text(k12);
	ASSERT_TRUE(s1 && s12);
	ASSERT_EQ(store_file_open(d, &rs.inner), 0);
	rs.st.ops = &race_ops;
	rs.st.priv = &rs;
	for (i = 0; i < 3; i++) {
		snprintf(user, sizeof(user), "r%zu", i);
		r = sample(user);
		ASSERT_EQ(record_save(rs.inner, s1, "T", r), 0);
		record_free(r);
	}
	ASSERT_EQ(record_rekey_all(&rs.st, s12, "T", &count), 0);
	ASSERT_EQ(count, 3);
	ASSERT_EQ(rs.nraced, 3);
	for (i = 0; i < 3; i++) {
		snprintf(user, sizeof(user), "r%zu", i);
		ASSERT_EQ(record_load(rs.inner, s12, "T", user, &l), 0);
		ASSERT_EQ(l->version, 3); /* save, the racer, the rekey */
		record_free(l);
		l = NULL;
	}
	store_close(rs.inner);
	seal_free(s1);
	seal_free(s12);
}

TEST(test_rekey)
{
	static const char *const users[] = { "u1", "u2", "u3", "u4", "u5" };
	const char *d = fixture_subdir(root);
	char k1[256] = "", k12[512] = "", k2[256] = "";
	struct seal *s1, *s12, *s2;
	struct store *st = NULL;
	struct record *r, *l = NULL;
	struct store_entry *e = NULL;
	char *next = NULL, why[192];
	size_t i, n = 0, count = 99;

	fixture_ring_key(k1, sizeof(k1), 1, 0x01, 1);
	fixture_ring_key(k12, sizeof(k12), 1, 0x01, 0);
	fixture_ring_key(k12, sizeof(k12), 2, 0x02, 1);
	fixture_ring_key(k2, sizeof(k2), 2, 0x02, 1);
	s1 = fixture_ring_text(k1);
	s12 = fixture_ring_text(k12);
	s2 = fixture_ring_text(k2);
	ASSERT_TRUE(s1 && s12 && s2);
	ASSERT_EQ(store_file_open(d, &st), 0);
	ASSERT_EQ(record_rekey_all(st, s12, "T", &count), 0);
	ASSERT_EQ(count, 0);
	for (i = 0; i < 5; i++) {
		r = sample(users[i]);
		ASSERT_TRUE(r != NULL);
		/* u5 is already under key 2. */
		ASSERT_EQ(record_save(st, i == 4 ? s12 : s1, "T", r), 0);
		record_free(r);
	}
	/* Before the rekey, the new ring alone cannot open old records;
	 * the explanation names the key the record needs. */
	ASSERT_ERR(record_load(st, s2, "T", "u1", &l), -ENOKEY);
	ASSERT_EQ(record_explain(st, s2, "T", "u1", why, sizeof(why)), 0);
	ASSERT_STREQ(why,
	    "sealed with key 1, which this key ring does not have "
	    "(its keys: 2)");
	/* (Asked of a record that does open: the wording for a bad writer.) */
	ASSERT_EQ(record_explain(st, s12, "T", "u1", why, sizeof(why)), 0);
	ASSERT_STREQ(why, "it opens, but is not a valid record of this user");
	ASSERT_ERR(record_explain(st, s2, "T", "nobody", why, sizeof(why)),
	    -ENOENT);
	ASSERT_EQ(record_rekey_all(st, s12, "T", &count), 0);
	ASSERT_EQ(count, 4);
	ASSERT_EQ(st->ops->list(st, "T", NULL, 100, 1, &e, &n, &next), 0);
	ASSERT_EQ(n, 5);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(seal_blob_key_id(e[i].blob.data, e[i].blob.len), 2);
		ASSERT_EQ(e[i].version, i == 4 ? 1 : 2);
	}
	store_entries_free(e, n);
	/* Key 1 retired: everything still opens. */
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(record_load(st, s2, "T", users[i], &l), 0);
		ASSERT_STREQ(l->user, users[i]);
		ASSERT_STREQ(l->refresh_token->ptr,
		    "0.AAAA-refresh\"token\\with/quotes");
		record_free(l);
		l = NULL;
	}
	/* Idempotent. */
	ASSERT_EQ(record_rekey_all(st, s12, "T", &count), 0);
	ASSERT_EQ(count, 0);
	/* A record no key in the ring opens stops the rekey. */
	ASSERT_ERR(record_rekey_all(st, s1, "T", &count), -ENOKEY);
	store_close(st);
	seal_free(s1);
	seal_free(s12);
	seal_free(s2);
}

/* ---- sealed epoch and generation; the rollback check ---- */

static uint64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A store writer without the key: put these bytes back, any version. */
static int
writer_restore(struct store *st, const char *user, const struct blob *old)
{
	struct blob cur = { 0 };
	uint64_t nv = 0;
	int r;

	r = st->ops->get(st, "T", user, &cur);
	if (r < 0 && r != -ENOENT)
		return r;
	r = st->ops->put_if(st, "T", user, old->data, old->len,
	    r == 0 ? cur.version : 0, &nv);
	blob_clear(&cur);
	return r;
}

static char last_marks_dir[128];

/* Marks in a fresh directory (its path kept in last_marks_dir). */
static struct marks *
new_marks(void)
{
	struct marks *m = NULL;
	const char *d = fixture_subdir(root);

	if (d == NULL)
		return NULL;
	snprintf(last_marks_dir, sizeof(last_marks_dir), "%s", d);
	return marks_open(d, &m, NULL, 0) == 0 ? m : NULL;
}

static struct seal *
one_key(void)
{
	char keys[256] = "";

	fixture_ring_key(keys, sizeof(keys), 1, 0x42, 1);
	return fixture_ring_text(keys);
}

TEST(test_sealed_generation)
{
	const char *d = fixture_subdir(root);
	struct seal *s = one_key();
	struct store *st = NULL;
	struct record *r = sample("alice"), *l = NULL;
	struct secret *p;
	uint64_t t0 = wall_us(), e1;
	size_t n = 0;

	ASSERT_TRUE(s != NULL && r != NULL);
	ASSERT_EQ(store_file_open(d, &st), 0);
	/* A create starts an epoch (now) at generation 1. */
	ASSERT_EQ(record_save(st, s, "T", r), 0);
	ASSERT_TRUE(r->epoch >= t0 && r->epoch <= wall_us());
	ASSERT_EQ(r->gen, 1);
	e1 = r->epoch;
	/* Every write after it: same epoch, generation + 1, sealed. */
	ASSERT_EQ(record_save(st, s, "T", r), 0);
	ASSERT_EQ(record_save(st, s, "T", r), 0);
	ASSERT_EQ(r->gen, 3);
	ASSERT_EQ(record_load(st, s, "T", "alice", &l), 0);
	ASSERT_EQ(l->epoch, e1);
	ASSERT_EQ(l->gen, 3);
	record_free(l);
	l = NULL;
	/* A lost CAS leaves the record as it was. */
	r->version = 1;
	ASSERT_ERR(record_save(st, s, "T", r), -ESTALE);
	ASSERT_EQ(r->gen, 3);
	ASSERT_EQ(r->epoch, e1);
	/* rekey reseals as is: the same epoch and generation. */
	{
		char k12[512] = "";
		struct seal *s12;

		fixture_ring_key(k12, sizeof(k12), 1, 0x42, 0);
		fixture_ring_key(k12, sizeof(k12), 2, 0x43, 1);
		s12 = fixture_ring_text(k12);
		ASSERT_EQ(record_rekey_all(st, s12, "T", &n), 0);
		ASSERT_EQ(n, 1);
		ASSERT_EQ(record_load(st, s12, "T", "alice", &l), 0);
		ASSERT_EQ(l->epoch, e1);
		ASSERT_EQ(l->gen, 3);
		ASSERT_EQ(l->version, 4);
		/* Deleted and created again: a new, larger epoch. */
		ASSERT_EQ(record_delete(st, "T", l), 0);
		l->version = 0;
		ASSERT_EQ(record_save(st, s12, "T", l), 0);
		ASSERT_TRUE(l->epoch > e1);
		ASSERT_EQ(l->gen, 1);
		record_free(l);
		l = NULL;
		seal_free(s12);
	}
	/* Sealed before epoch and gen existed: both read as 0. */
	p = secret_from_str("{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],"
			    "\"created\":0,\"updated\":0,\"last_refresh\":0}");
	ASSERT_EQ(record_decode(p, 1, &l), 0);
	ASSERT_EQ(l->epoch, 0);
	ASSERT_EQ(l->gen, 0);
	record_free(l);
	l = NULL;
	secret_free(p);
	p = secret_from_str(
	    "{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],"
	    "\"created\":0,\"updated\":0,\"last_refresh\":0,\"gen\":-1}");
	ASSERT_ERR(record_decode(p, 1, &l), -EBADMSG);
	secret_free(p);
	p = secret_from_str(
	    "{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],"
	    "\"created\":0,\"updated\":0,\"last_refresh\":0,\"epoch\":\"9\"}");
	ASSERT_ERR(record_decode(p, 1, &l), -EBADMSG);
	secret_free(p);
	record_free(r);
	store_close(st);
	seal_free(s);
}

TEST(test_rollback_refused)
{
	struct seal *s = one_key();
	struct marks *mk = new_marks();
	struct store *st = NULL;
	struct record *r = sample("alice"), *l = NULL;
	struct record_rollback rb;
	struct marks_mark m;
	struct blob old = { 0 };
	char mdir[128];
	int me = 0;

	snprintf(mdir, sizeof(mdir), "%s", last_marks_dir);
	ASSERT_TRUE(s != NULL && mk != NULL && r != NULL);
	ASSERT_EQ(store_file_open(fixture_subdir(root), &st), 0);
	ASSERT_EQ(record_save_marked(st, s, mk, "T", r, 1, &me), 0);
	ASSERT_EQ(me, 0);
	/* A backup taken now: the first refresh token. */
	ASSERT_EQ(st->ops->get(st, "T", "alice", &old), 0);
	/* Two rotations later the node's mark is generation 3. */
	secret_free(r->refresh_token);
	r->refresh_token = secret_from_str("rt-newest");
	ASSERT_EQ(record_save_marked(st, s, mk, "T", r, 0, &me), 0);
	ASSERT_EQ(record_save_marked(st, s, mk, "T", r, 0, &me), 0);
	ASSERT_EQ(marks_get(mk, "T", "alice", &m), 0);
	ASSERT_EQ(m.epoch, r->epoch);
	ASSERT_EQ(m.gen, 3);
	/* The same row read back is admitted. */
	ASSERT_EQ(record_load_marked(st, s, mk, "T", "alice", &l, &rb, &me), 0);
	ASSERT_STREQ(l->refresh_token->ptr, "rt-newest");
	record_free(l);
	l = NULL;

	/* The writer puts the old blob back, under a newer version. */
	ASSERT_EQ(writer_restore(st, "alice", &old), 0);
	/* Without the mark it would be taken (the version is not sealed)... */
	ASSERT_EQ(record_load(st, s, "T", "alice", &l), 0);
	ASSERT_EQ(l->version, 4);
	ASSERT_EQ(l->gen, 1);
	record_free(l);
	l = NULL;
	/* ...with it, it is refused, and said why. */
	ASSERT_ERR(record_load_marked(st, s, mk, "T", "alice", &l, &rb, &me),
	    RECORD_EROLLBACK);
	ASSERT_TRUE(l == NULL);
	ASSERT_EQ(rb.version, 4);
	ASSERT_EQ(rb.epoch, r->epoch);
	ASSERT_EQ(rb.gen, 1);
	ASSERT_EQ(rb.mark.gen, 3);
	ASSERT_EQ(rb.mark.deleted, 0);
	/* The mark is not lowered by what was refused. */
	ASSERT_EQ(marks_get(mk, "T", "alice", &m), 0);
	ASSERT_EQ(m.gen, 3);

	/* A key holder's newer record goes over it (the store thread merges:
	 * the refused row's version is the CAS). */
	ASSERT_ERR(record_save_marked(st, s, mk, "T", r, 0, &me), -ESTALE);
	r->version = rb.version;
	ASSERT_EQ(record_save_marked(st, s, mk, "T", r, 0, &me), 0);
	ASSERT_EQ(r->gen, 4);
	ASSERT_EQ(record_load_marked(st, s, mk, "T", "alice", &l, &rb, &me), 0);
	ASSERT_STREQ(l->refresh_token->ptr, "rt-newest");
	ASSERT_EQ(l->gen, 4);
	record_free(l);
	l = NULL;

	/* The marks outlive the process: a restarted credd refuses too. */
	ASSERT_EQ(writer_restore(st, "alice", &old), 0);
	marks_close(mk);
	mk = NULL;
	ASSERT_EQ(marks_open(mdir, &mk, NULL, 0), 0);
	ASSERT_ERR(record_load_marked(st, s, mk, "T", "alice", &l, &rb, &me),
	    RECORD_EROLLBACK);
	ASSERT_EQ(rb.mark.gen, 4);
	blob_clear(&old);
	record_free(r);
	marks_close(mk);
	store_close(st);
	seal_free(s);
}

TEST(test_deleted_not_resurrected)
{
	struct seal *s = one_key();
	struct marks *mk = new_marks();
	struct store *st = NULL;
	struct record *r = sample("bob"), *l = NULL, *fresh;
	struct record_rollback rb;
	struct marks_mark m;
	struct blob old = { 0 };
	uint64_t e1;
	int me = 0;

	ASSERT_TRUE(s != NULL && mk != NULL && r != NULL);
	ASSERT_EQ(store_file_open(fixture_subdir(root), &st), 0);
	ASSERT_EQ(record_save_marked(st, s, mk, "T", r, 1, &me), 0);
	e1 = r->epoch;
	ASSERT_EQ(st->ops->get(st, "T", "bob", &old), 0);
	/* An admin revoke deletes the row; this node sees it gone. */
	ASSERT_EQ(record_delete(st, "T", r), 0);
	ASSERT_ERR(record_load_marked(st, s, mk, "T", "bob", &l, &rb, &me),
	    -ENOENT);
	ASSERT_EQ(marks_get(mk, "T", "bob", &m), 0);
	ASSERT_EQ(m.deleted, 1);
	ASSERT_EQ(m.epoch, e1);
	/* The writer restores the revoked row: not resurrected. */
	ASSERT_EQ(writer_restore(st, "bob", &old), 0);
	ASSERT_ERR(record_load_marked(st, s, mk, "T", "bob", &l, &rb, &me),
	    RECORD_EROLLBACK);
	ASSERT_EQ(rb.mark.deleted, 1);
	ASSERT_EQ(rb.epoch, e1);
	/* Nor written back by a late rotation of the revoked record. */
	r->version = rb.version;
	ASSERT_ERR(record_save_marked(st, s, mk, "T", r, 0, &me), -ENOENT);
	/* A new consent after the revoke works, even over that row. */
	fresh = sample("bob");
	secret_free(fresh->refresh_token);
	fresh->refresh_token = secret_from_str("rt-new-consent");
	ASSERT_ERR(record_save_marked(st, s, mk, "T", fresh, 1, &me), -ESTALE);
	fresh->version = rb.version;
	ASSERT_EQ(record_save_marked(st, s, mk, "T", fresh, 1, &me), 0);
	ASSERT_TRUE(fresh->epoch > e1);
	ASSERT_EQ(fresh->gen, 1);
	ASSERT_EQ(record_load_marked(st, s, mk, "T", "bob", &l, &rb, &me), 0);
	ASSERT_STREQ(l->refresh_token->ptr, "rt-new-consent");
	record_free(l);
	l = NULL;
	/* And the revoked row still cannot come back over it. */
	ASSERT_EQ(writer_restore(st, "bob", &old), 0);
	ASSERT_ERR(record_load_marked(st, s, mk, "T", "bob", &l, &rb, &me),
	    RECORD_EROLLBACK);
	ASSERT_EQ(rb.mark.deleted, 0);
	ASSERT_EQ(rb.mark.epoch, fresh->epoch);
	/* A new consent with no row at all (deleted again) is a create. */
	ASSERT_EQ(st->ops->del_if(st, "T", "bob", rb.version), 0);
	record_free(fresh);
	fresh = sample("bob");
	ASSERT_EQ(record_save_marked(st, s, mk, "T", fresh, 1, &me), 0);
	ASSERT_EQ(fresh->version, 1);
	blob_clear(&old);
	record_free(fresh);
	record_free(r);
	marks_close(mk);
	store_close(st);
	seal_free(s);
}

TEST(test_other_node_newer_admitted)
{
	struct seal *s = one_key();
	struct marks *ma = new_marks(), *mb = new_marks();
	struct store *st = NULL;
	struct record *ra = sample("carol"), *lb = NULL, *l = NULL;
	struct record_rollback rb;
	struct blob old = { 0 };
	uint64_t e1;
	int me = 0, i;

	ASSERT_TRUE(s != NULL && ma != NULL && mb != NULL && ra != NULL);
	ASSERT_EQ(store_file_open(fixture_subdir(root), &st), 0);
	/* Node A consents; node B reads it. */
	ASSERT_EQ(record_save_marked(st, s, ma, "T", ra, 1, &me), 0);
	e1 = ra->epoch;
	ASSERT_EQ(st->ops->get(st, "T", "carol", &old), 0);
	ASSERT_EQ(record_load_marked(st, s, mb, "T", "carol", &lb, &rb, &me),
	    0);
	/* A rotates three times; B adopts each newer row. */
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(record_save_marked(st, s, ma, "T", ra, 0, &me), 0);
		ASSERT_EQ(record_load_marked(st, s, mb, "T", "carol", &l, &rb,
			      &me),
		    0);
		ASSERT_EQ(l->gen, (uint64_t)i + 2);
		record_free(l);
		l = NULL;
	}
	/* B writes with the record it held: merged onto A's newer row. */
	ASSERT_ERR(record_save_marked(st, s, mb, "T", lb, 0, &me), -ESTALE);
	ASSERT_EQ(record_load_marked(st, s, mb, "T", "carol", &l, &rb, &me), 0);
	lb->version = l->version;
	lb->epoch = l->epoch;
	lb->gen = l->gen;
	record_free(l);
	l = NULL;
	ASSERT_EQ(record_save_marked(st, s, mb, "T", lb, 0, &me), 0);
	ASSERT_EQ(lb->gen, 5);
	/* A admits B's newer write. */
	ASSERT_EQ(record_load_marked(st, s, ma, "T", "carol", &l, &rb, &me), 0);
	ASSERT_EQ(l->gen, 5);
	record_free(l);
	l = NULL;
	/* A revokes and carol consents again on A: B, which never saw the
	 * deletion, admits the new epoch... */
	ASSERT_EQ(st->ops->del_if(st, "T", "carol", lb->version), 0);
	record_free(ra);
	ra = sample("carol");
	ASSERT_EQ(record_save_marked(st, s, ma, "T", ra, 1, &me), 0);
	ASSERT_TRUE(ra->epoch > e1);
	ASSERT_EQ(record_load_marked(st, s, mb, "T", "carol", &l, &rb, &me), 0);
	ASSERT_EQ(l->epoch, ra->epoch);
	record_free(l);
	l = NULL;
	/* ...and from then on refuses the old epoch's rows. */
	ASSERT_EQ(writer_restore(st, "carol", &old), 0);
	ASSERT_ERR(record_load_marked(st, s, mb, "T", "carol", &l, &rb, &me),
	    RECORD_EROLLBACK);
	ASSERT_ERR(record_load_marked(st, s, ma, "T", "carol", &l, &rb, &me),
	    RECORD_EROLLBACK);
	blob_clear(&old);
	record_free(lb);
	record_free(ra);
	marks_close(ma);
	marks_close(mb);
	store_close(st);
	seal_free(s);
}

TEST(test_pre_upgrade_records)
{
	static const char plain_text[] =
	    "{\"v\":1,\"user\":\"dave\","
	    "\"uid\":1001,\"oid\":\"o\",\"tid\":\"t\",\"username\":null,"
	    "\"refresh_token\":\"rt-legacy\",\"scopes\":[],\"created\":0,"
	    "\"updated\":0,\"last_refresh\":0}";
	struct seal *s = one_key();
	struct marks *mk = new_marks();
	struct store *st = NULL;
	struct record *l = NULL;
	struct record_rollback rb;
	struct secret *plain = secret_from_str(plain_text);
	struct blob old = { 0 };
	uint8_t *blob = NULL;
	size_t len = 0;
	uint64_t nv = 0;
	int me = 0;

	ASSERT_TRUE(s != NULL && mk != NULL && plain != NULL);
	ASSERT_EQ(store_file_open(fixture_subdir(root), &st), 0);
	/* A record sealed by credd before this change (or migrated). */
	ASSERT_EQ(seal_seal(s, "T", "dave", plain, &blob, &len), 0);
	ASSERT_EQ(st->ops->put_if(st, "T", "dave", blob, len, 0, &nv), 0);
	ASSERT_EQ(st->ops->get(st, "T", "dave", &old), 0);
	ASSERT_EQ(record_load_marked(st, s, mk, "T", "dave", &l, &rb, &me), 0);
	ASSERT_EQ(l->epoch, 0);
	ASSERT_EQ(l->gen, 0);
	/* Its first write by this credd: generation 1 in epoch 0. */
	ASSERT_EQ(record_save_marked(st, s, mk, "T", l, 0, &me), 0);
	ASSERT_EQ(l->epoch, 0);
	ASSERT_EQ(l->gen, 1);
	/* From then on the pre-upgrade copy is a rollback. */
	ASSERT_EQ(writer_restore(st, "dave", &old), 0);
	record_free(l);
	l = NULL;
	ASSERT_ERR(record_load_marked(st, s, mk, "T", "dave", &l, &rb, &me),
	    RECORD_EROLLBACK);
	/* Without marks nothing is checked (credd rekey, credd migrate). */
	ASSERT_EQ(record_load_marked(st, s, NULL, "T", "dave", &l, &rb, &me),
	    0);
	record_free(l);
	free(blob);
	blob_clear(&old);
	secret_free(plain);
	marks_close(mk);
	store_close(st);
	seal_free(s);
}

/*
 * Which kind of client obtained the refresh token: sealed additively as
 * "client":"confidential"; absent (older records, public) reads public;
 * an unknown value is malformed.
 */
TEST(test_client_kind)
{
	static const char older[] =
	    "{\"v\":1,\"user\":\"dave\",\"uid\":1001,\"oid\":\"o\","
	    "\"tid\":\"t\",\"username\":null,\"refresh_token\":\"rt\","
	    "\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0";
	struct record *r = sample("alice"), *d = NULL, *c;
	struct secret *plain = NULL;
	char text[512];

	ASSERT_EQ(record_encode(r, &plain), 0);
	ASSERT_TRUE(strstr(plain->ptr, "\"client\"") == NULL);
	secret_free(plain);
	r->client = 1;
	ASSERT_EQ(record_encode(r, &plain), 0);
	ASSERT_TRUE(strstr(plain->ptr, "\"client\":\"confidential\"") != NULL);
	ASSERT_EQ(record_decode(plain, 2, &d), 0);
	ASSERT_EQ(d->client, 1);
	c = record_dup(d);
	ASSERT_TRUE(c != NULL && c->client == 1);
	record_free(c);
	record_free(d);
	secret_free(plain);
	record_free(r);
	snprintf(text, sizeof(text), "%s}", older);
	plain = secret_from_str(text);
	ASSERT_EQ(record_decode(plain, 1, &d), 0);
	ASSERT_EQ(d->client, 0);
	record_free(d);
	secret_free(plain);
	snprintf(text, sizeof(text), "%s,\"client\":\"public\"}", older);
	plain = secret_from_str(text);
	ASSERT_EQ(record_decode(plain, 1, &d), 0);
	ASSERT_EQ(d->client, 0);
	record_free(d);
	secret_free(plain);
	snprintf(text, sizeof(text), "%s,\"client\":\"web\"}", older);
	plain = secret_from_str(text);
	ASSERT_ERR(record_decode(plain, 1, &d), -EBADMSG);
	secret_free(plain);
}

/* A code flow (cluster) round-trips sealed; an older record has none. */
TEST(test_code_flow)
{
	struct record *r = sample("alice"), *d = NULL, *c;
	struct record_cflow *f = calloc(1, sizeof(*f));
	struct secret *plain = NULL;

	ASSERT_TRUE(r != NULL && f != NULL);
	f->verifier = secret_from_str("verifier-0123456789abcdef");
	f->state = strdup("state-ref");
	f->link = strdup("");
	f->redirect_uri = strdup("https://platform.test/entra/callback");
	f->authorize_url = strdup("https://login.test/authorize?state=x");
	f->signin_url = strdup("https://platform.test/entra/login/L");
	f->scope = strdup("https://storage.azure.com/.default");
	f->node = strdup("node1");
	f->client = 1;
	f->expires_on = 1700000900;
	r->cflow = f;
	ASSERT_EQ(record_encode(r, &plain), 0);
	ASSERT_TRUE(strstr(plain->ptr, "\"code_flow\"") != NULL);
	ASSERT_EQ(record_decode(plain, 3, &d), 0);
	secret_free(plain);
	ASSERT_TRUE(d->cflow != NULL && d->flow == NULL);
	ASSERT_TRUE(secret_equal(d->cflow->verifier, f->verifier));
	ASSERT_STREQ(d->cflow->state, "state-ref");
	ASSERT_STREQ(d->cflow->link, "");
	ASSERT_STREQ(d->cflow->signin_url, f->signin_url);
	ASSERT_STREQ(d->cflow->node, "node1");
	ASSERT_TRUE(d->cflow->note == NULL);
	ASSERT_EQ(d->cflow->client, 1);
	ASSERT_EQ(d->cflow->expires_on, 1700000900);
	c = record_dup(d);
	ASSERT_TRUE(c != NULL && c->cflow != NULL &&
	    strcmp(c->cflow->authorize_url, f->authorize_url) == 0);
	record_free(c);
	record_free(d);
	record_free(r);
	/* A code flow without its verifier does not open as a record. */
	plain = secret_from_str(
	    "{\"v\":1,\"user\":\"dave\",\"uid\":1001,\"oid\":null,"
	    "\"tid\":null,\"username\":null,\"refresh_token\":null,"
	    "\"scopes\":[],\"created\":0,\"updated\":0,\"last_refresh\":0,"
	    "\"code_flow\":{\"verifier\":\"\",\"state\":\"s\"}}");
	ASSERT_ERR(record_decode(plain, 1, &d), -EBADMSG);
	secret_free(plain);
}

int
main(void)
{
	root = fixture_tmpdir("record");
	if (root == NULL)
		return 1;
	RUN(test_encode_decode);
	RUN(test_decode_malformed);
	RUN(test_load_save);
	RUN(test_rekey);
	RUN(test_rekey_race);
	RUN(test_sealed_generation);
	RUN(test_rollback_refused);
	RUN(test_deleted_not_resurrected);
	RUN(test_other_node_newer_admitted);
	RUN(test_pre_upgrade_records);
	RUN(test_client_kind);
	RUN(test_code_flow);
	TEST_MAIN_END();
}
