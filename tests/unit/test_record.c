/*
 * test_record.c - record.c: JSON encode/decode, load/save/delete through
 * the file store with sealing, versions, moved blobs, and rekey.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "entra/secret.h"
#include "record.h"
#include "seal.h"
#include "store.h"
#include "test.h"

static char root[64];
static int dir_seq;

static const char *
new_dir(void)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/d%d", root, dir_seq++);
	if (mkdir(p, 0700) < 0)
		return NULL;
	return p;
}

static void
add_key(char *buf, size_t cap, unsigned id, unsigned char fill, int active)
{
	unsigned char k[32];
	char b64[64];
	size_t n = strlen(buf);

	memset(k, fill, sizeof(k));
	sodium_bin2base64(b64, sizeof(b64), k, sizeof(k),
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(buf + n, cap - n, "key %u %s%s\n", id, b64,
	    active ? " active" : "");
}

static struct seal *
ring(const char *text)
{
	struct seal *s = NULL;

	if (seal_load_buf(text, strlen(text), &s) < 0)
		return NULL;
	return s;
}

static struct record *
sample(const char *user)
{
	struct record *r = record_new(user, 1001);

	if (r == NULL)
		return NULL;
	r->oid = strdup("00000000-0000-0000-0000-0000000000aa");
	r->tid = strdup("11111111-1111-1111-1111-111111111111");
	r->username = strdup("alice@contoso.com");
	r->refresh_token = secret_from_str("0.AAAA-refresh\"token\\with/quotes");
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
	const char *ok = "{\"v\":1,\"user\":\"a\",\"uid\":1,\"scopes\":[],"
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
	const char *d = new_dir();
	char keys[256] = "";
	struct seal *s;
	struct store *st = NULL;
	struct record *r = sample("alice"), *l = NULL, *l2 = NULL;
	struct blob b = { 0 };
	uint64_t v = 0;

	add_key(keys, sizeof(keys), 1, 0x42, 1);
	s = ring(keys);
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
		snprintf(rs->raced[rs->nraced++], sizeof(rs->raced[0]), "%s", u);
		/* The other writer rewrites the same bytes: version + 1. */
		if (rs->inner->ops->get(rs->inner, t, u, &b) == 0)
			(void)rs->inner->ops->put_if(rs->inner, t, u, b.data, b.len,
			    b.version, &v);
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
	const char *d = new_dir();
	char k1[256] = "", k12[512] = "";
	struct seal *s1, *s12;
	struct race_store rs = { 0 };
	struct record *r, *l = NULL;
	size_t i, count = 0;
	char user[8];

	add_key(k1, sizeof(k1), 1, 0x01, 1);
	add_key(k12, sizeof(k12), 1, 0x01, 0);
	add_key(k12, sizeof(k12), 2, 0x02, 1);
	s1 = ring(k1);
	s12 = ring(k12);
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
	const char *d = new_dir();
	char k1[256] = "", k12[512] = "", k2[256] = "";
	struct seal *s1, *s12, *s2;
	struct store *st = NULL;
	struct record *r, *l = NULL;
	struct store_entry *e = NULL;
	char *next = NULL, why[192];
	size_t i, n = 0, count = 99;

	add_key(k1, sizeof(k1), 1, 0x01, 1);
	add_key(k12, sizeof(k12), 1, 0x01, 0);
	add_key(k12, sizeof(k12), 2, 0x02, 1);
	add_key(k2, sizeof(k2), 2, 0x02, 1);
	s1 = ring(k1);
	s12 = ring(k12);
	s2 = ring(k2);
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
	ASSERT_STREQ(why, "sealed with key 1, which this key ring does not have "
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
		ASSERT_STREQ(l->refresh_token->ptr, "0.AAAA-refresh\"token\\with/quotes");
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

int
main(void)
{
	char cmd[128];
	int rc;

	snprintf(root, sizeof(root), "/tmp/test_record.XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	RUN(test_encode_decode);
	RUN(test_decode_malformed);
	RUN(test_load_save);
	RUN(test_rekey);
	RUN(test_rekey_race);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	rc = system(cmd);
	(void)rc;
	TEST_MAIN_END();
}
