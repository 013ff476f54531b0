/*
 * test_cache.c - cache.c: put/get/replace, per-user walk, purge by user
 * through cache_foreach with delete, growth past 10000 entries, and the
 * freshness rule (min_valid capped at half the lifetime), and the
 * pre-serialized reply lines: dropped with their token, kept within a
 * byte budget (CLOCK: a line served again survives), swept when idle.
 * ASan checks that replaced and deleted tokens and lines are freed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "cache.h"
#include "entra/secret.h"
#include "reply.h"
#include "test.h"

static struct secret *
tok(const char *s)
{
	return secret_from_str(s);
}

/* e's token, unpacked (NUL-terminated in a static buffer). */
static const char *
tokstr(struct cache *c, const struct cache_entry *e)
{
	static char buf[4096];
	ssize_t n = cache_token(c, e, buf, sizeof(buf) - 1);

	if (n < 0)
		return "(does not unpack)";
	buf[n] = '\0';
	return buf;
}

TEST(put_get_replace)
{
	struct cache *c = cache_new();
	struct cache_entry *e, *e2;
	struct secret *t;
	struct event_timer *fake_timer = (struct event_timer *)&t;

	ASSERT_TRUE(c != NULL);
	ASSERT_TRUE(cache_get(c, "alice", "graph") == NULL);
	t = tok("tok-1");
	e = cache_put(c, "alice", "graph", &t, "Bearer", 1000, 4600, 4300);
	ASSERT_TRUE(e != NULL);
	ASSERT_TRUE(t == NULL); /* transferred */
	ASSERT_EQ(cache_count(c), 1);
	ASSERT_STREQ(e->user, "alice");
	ASSERT_STREQ(e->scope, "graph");
	ASSERT_STREQ(tokstr(c, e), "tok-1");
	ASSERT_EQ(cache_token_len(e), 5);
	ASSERT_STREQ(e->token_type, "Bearer");
	ASSERT_STREQ(e->fp, "");
	ASSERT_EQ(e->issued_at, 1000);
	ASSERT_EQ(e->expires_on, 4600);
	ASSERT_EQ(e->refresh_at, 4300);
	ASSERT_EQ(e->last_used, 0);
	ASSERT_TRUE(e->timer == NULL);
	ASSERT_TRUE(cache_get(c, "alice", "graph") == e);
	ASSERT_TRUE(cache_get(c, "alice", "other") == NULL);
	ASSERT_TRUE(cache_get(c, "bob", "graph") == NULL);
	/* "ab"+"c" and "a"+"bc" are different keys. */
	ASSERT_TRUE(cache_get(c, "alicegraph", "") == NULL);

	e->timer = fake_timer;
	e->last_used = 2000;
	memcpy(e->fp, "abcd1234", 9);
	e->audited = 1;
	t = tok("tok-2");
	e2 = cache_put(c, "alice", "graph", &t,
	    "a-token-type-longer-than-thirty-one-bytes", 3000, 9000, 6000);
	ASSERT_TRUE(e2 == e);
	ASSERT_TRUE(t == NULL);
	ASSERT_EQ(cache_count(c), 1);
	ASSERT_STREQ(tokstr(c, e), "tok-2");
	ASSERT_EQ(strlen(e->token_type), CACHE_TOKEN_TYPE_MAX);
	ASSERT_STREQ(e->fp, ""); /* new token: fingerprint reset */
	ASSERT_EQ(e->audited, 0);
	ASSERT_EQ(e->issued_at, 3000);
	ASSERT_EQ(e->expires_on, 9000);
	ASSERT_EQ(e->refresh_at, 6000);
	ASSERT_EQ(e->last_used, 2000);	     /* kept */
	ASSERT_TRUE(e->timer == fake_timer); /* kept */
	e->timer = NULL;

	t = tok("tok-3");
	ASSERT_TRUE(
	    cache_put(c, "alice", "storage", &t, NULL, 1, 2, 3) != NULL);
	ASSERT_STREQ(cache_get(c, "alice", "storage")->token_type, "");
	ASSERT_EQ(cache_count(c), 2);
	cache_del(c, e);
	ASSERT_EQ(cache_count(c), 1);
	ASSERT_TRUE(cache_get(c, "alice", "graph") == NULL);
	cache_free(c); /* wipes tok-3 */
	cache_free(NULL);
}

static void
fill(struct cache *c, const char *user, const char *scope)
{
	struct secret *t = tok("t");

	(void)cache_put(c, user, scope, &t, "Bearer", 0, 3600, 3300);
}

static void
count_fn(struct cache_entry *e, void *arg)
{
	(*(int *)arg)++;
}

struct purge {
	struct cache *c;
	const char *user;
	int deleted;
};

static void
purge_fn(struct cache_entry *e, void *arg)
{
	struct purge *p = arg;

	if (strcmp(e->user, p->user) == 0) {
		cache_del(p->c, e);
		p->deleted++;
	}
}

struct user_check {
	const char *user;
	int n;
	int wrong;
};

static void
user_fn(struct cache_entry *e, void *arg)
{
	struct user_check *u = arg;

	u->n++;
	if (strcmp(e->user, u->user) != 0)
		u->wrong++;
}

TEST(foreach_user_and_purge)
{
	struct cache *c = cache_new();
	struct user_check u = { .user = "bob" };
	struct purge p;
	char scope[32];
	int i, n = 0;

	ASSERT_TRUE(c != NULL);
	for (i = 0; i < 200; i++) {
		snprintf(scope, sizeof(scope), "scope%d", i);
		fill(c, "alice", scope);
		if (i % 2 == 0)
			fill(c, "bob", scope);
		if (i % 4 == 0)
			fill(c, "carol", scope);
	}
	ASSERT_EQ(cache_count(c), 350);
	cache_foreach_user(c, "bob", user_fn, &u);
	ASSERT_EQ(u.n, 100);
	ASSERT_EQ(u.wrong, 0);
	u = (struct user_check){ .user = "nobody" };
	cache_foreach_user(c, "nobody", user_fn, &u);
	ASSERT_EQ(u.n, 0);

	p = (struct purge){ .c = c, .user = "alice" };
	cache_foreach(c, purge_fn, &p);
	ASSERT_EQ(p.deleted, 200);
	ASSERT_EQ(cache_count(c), 150);
	ASSERT_TRUE(cache_get(c, "alice", "scope0") == NULL);
	ASSERT_TRUE(cache_get(c, "bob", "scope0") != NULL);
	ASSERT_TRUE(cache_get(c, "carol", "scope196") != NULL);
	cache_foreach(c, count_fn, &n);
	ASSERT_EQ(n, 150);
	cache_free(c);
}

TEST(grows_past_10000)
{
	static char users[1000][8]; /* borrowed by the cache: must outlive it */
	struct cache *c = cache_new();
	char user[32], scope[32];
	int i, n = 0, missing = 0;

	ASSERT_TRUE(c != NULL);
	for (i = 0; i < 1000; i++)
		snprintf(users[i], sizeof(users[i]), "u%d", i);
	for (i = 0; i < 20000; i++) {
		snprintf(scope, sizeof(scope), "s%d", i);
		fill(c, users[i % 1000], scope);
	}
	ASSERT_EQ(cache_count(c), 20000);
	for (i = 0; i < 20000; i++) {
		struct cache_entry *e;

		snprintf(user, sizeof(user), "u%d", i % 1000);
		snprintf(scope, sizeof(scope), "s%d", i);
		e = cache_get(c, user, scope);
		if (e == NULL || strcmp(e->scope, scope) != 0)
			missing++;
	}
	ASSERT_EQ(missing, 0);
	cache_foreach(c, count_fn, &n);
	ASSERT_EQ(n, 20000);
	cache_free(c);
}

/* A JWT-shaped token: base64url JSON header and claims, 256 random bytes. */
/* base64url of src[0..n) at out + *pos (room checked by the caller), then sep. */
static void
b64_part(char *out, size_t cap, size_t *pos, const void *src, size_t n,
    char sep)
{
	sodium_bin2base64(out + *pos, cap - *pos, src, n,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	*pos += strlen(out + *pos);
	if (sep != '\0' && *pos + 1 < cap) {
		out[(*pos)++] = sep;
		out[*pos] = '\0';
	}
}

static char *
jwt(const char *user, int n)
{
	unsigned char sig[256];
	char claims[256], *out;
	const char *head = "{\"typ\":\"JWT\",\"alg\":\"RS256\"}";
	size_t len, pos = 0;

	snprintf(claims, sizeof(claims),
	    "{\"aud\":\"https://storage.azure.com\","
	    "\"upn\":\"%s@contoso.com\",\"iat\":%d,\"uti\":\"x%d\"}",
	    user, n, n);
	randombytes_buf(sig, sizeof(sig));
	len = sodium_base64_ENCODED_LEN(strlen(head),
		  sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    sodium_base64_ENCODED_LEN(strlen(claims),
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    sodium_base64_ENCODED_LEN(sizeof(sig),
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
	    2;
	if ((out = malloc(len)) == NULL)
		abort();
	b64_part(out, len, &pos, head, strlen(head), '.');
	b64_part(out, len, &pos, claims, strlen(claims), '.');
	b64_part(out, len, &pos, sig, sizeof(sig), '\0');
	return out;
}

TEST(jwt_round_trip_and_interning)
{
	static const char *users[] = { "alice", "bob", "carol" };
	struct cache *c = cache_new();
	struct cache_entry *e[3];
	struct secret *t;
	char *want[3];
	int i;

	ASSERT_TRUE(c != NULL);
	for (i = 0; i < 3; i++) {
		want[i] = jwt(users[i], i);
		t = tok(want[i]);
		e[i] = cache_put(c, users[i], "storage", &t, "Bearer", 0, 3600,
		    3000);
		ASSERT_TRUE(e[i] != NULL);
	}
	for (i = 0; i < 3; i++) {
		ASSERT_STREQ(tokstr(c, e[i]), want[i]);
		ASSERT_EQ(cache_token_len(e[i]), strlen(want[i]));
	}
	/* one copy of each scope and token type */
	ASSERT_TRUE(e[0]->scope == e[1]->scope && e[1]->scope == e[2]->scope);
	ASSERT_TRUE(e[0]->token_type == e[2]->token_type);
	ASSERT_TRUE(e[0]->user == users[0]); /* borrowed */
	{
		char small[8];

		ASSERT_ERR(cache_token(c, e[0], small, sizeof(small)),
		    -EMSGSIZE);
		ASSERT_ERR(cache_token(c, NULL, small, sizeof(small)), -EINVAL);
	}
	/* replacing bob's token keeps the others intact */
	free(want[1]);
	want[1] = jwt("bob", 7);
	t = tok(want[1]);
	ASSERT_TRUE(
	    cache_put(c, "bob", "storage", &t, "pop", 0, 3600, 3000) == e[1]);
	ASSERT_STREQ(tokstr(c, e[1]), want[1]);
	ASSERT_STREQ(e[1]->token_type, "pop");
	ASSERT_STREQ(e[0]->token_type, "Bearer");
	cache_del(c, e[0]);
	ASSERT_STREQ(tokstr(c, e[2]), want[2]);
	ASSERT_STREQ(e[2]->scope, "storage");
	for (i = 0; i < 3; i++)
		free(want[i]);
	cache_free(c);
}

static struct cache_entry
entry(int64_t issued, int64_t expires)
{
	static char x[16]; /* never read: freshness only tests for a token */

	return (struct cache_entry){ .token = (struct tokblob *)(void *)x,
		.issued_at = issued,
		.expires_on = expires };
}

TEST(freshness)
{
	struct cache_entry e;

	/* One-hour token, min_valid 300: fresh while >= 300 s remain. */
	e = entry(1000, 4600);
	ASSERT_TRUE(cache_is_fresh(&e, 1000, 300));
	ASSERT_TRUE(cache_is_fresh(&e, 4300, 300));
	ASSERT_TRUE(!cache_is_fresh(&e, 4301, 300));
	ASSERT_TRUE(cache_is_fresh(&e, 4599, 0));
	ASSERT_TRUE(!cache_is_fresh(&e, 4600, 0));

	/* 120-s token, min_valid 300: capped at 60, fresh until expiry-60. */
	e = entry(1000, 1120);
	ASSERT_TRUE(cache_is_fresh(&e, 1000, 300));
	ASSERT_TRUE(cache_is_fresh(&e, 1060, 300));
	ASSERT_TRUE(!cache_is_fresh(&e, 1061, 300));
	/* Smaller min_valid than half-life wins. */
	ASSERT_TRUE(cache_is_fresh(&e, 1110, 10));
	ASSERT_TRUE(!cache_is_fresh(&e, 1111, 10));

	/* Expired is never fresh, whatever min_valid says. */
	ASSERT_TRUE(!cache_is_fresh(&e, 1120, 0));
	ASSERT_TRUE(!cache_is_fresh(&e, 5000, -100));
	e = entry(1000, 1000); /* zero lifetime */
	ASSERT_TRUE(!cache_is_fresh(&e, 1000, 0));
	ASSERT_TRUE(!cache_is_fresh(NULL, 0, 0));
}

/* A line of n bytes, as tokens.c would make one (one reference). */
static struct reply_line *
mkline(size_t n)
{
	struct reply_line *l = reply_line_new(n);

	if (l != NULL) {
		memset(l->bytes, 'L', n);
		l->len = n;
	}
	return l;
}

TEST(lines_follow_their_token)
{
	struct cache *c = cache_new();
	struct cache_entry *e, *e2;
	struct reply_line *l;
	struct secret *t;

	t = tok("tok-1");
	e = cache_put(c, "alice", "graph", &t, "Bearer", 1000, 4600, 4300);
	ASSERT_TRUE(e != NULL && e->line == NULL);
	l = mkline(100);
	ASSERT_EQ(cache_line_keep(c, e, l), 1);
	ASSERT_TRUE(e->line == l);
	ASSERT_EQ(l->refs, 2); /* ours and the cache's */
	ASSERT_EQ(cache_line_count(c), 1);
	ASSERT_EQ(cache_line_bytes(c), sizeof(*l) + 100);
	/* A new token for the entry: its old reply goes with the old token. */
	t = tok("tok-2");
	e2 = cache_put(c, "alice", "graph", &t, "Bearer", 2000, 5600, 5300);
	ASSERT_TRUE(e2 == e && e->line == NULL);
	ASSERT_EQ(l->refs, 1);
	ASSERT_EQ(cache_line_count(c), 0);
	ASSERT_EQ(cache_line_bytes(c), 0);
	/* Keeping a line again replaces the entry's line. */
	ASSERT_EQ(cache_line_keep(c, e, l), 1);
	ASSERT_EQ(cache_line_keep(c, e, l), 1);
	ASSERT_EQ(l->refs, 2);
	ASSERT_EQ(cache_line_count(c), 1);
	cache_line_drop(c, e);
	ASSERT_TRUE(e->line == NULL && l->refs == 1);
	cache_line_drop(c, e); /* none: nothing */
	/* A deleted entry drops its line. */
	ASSERT_EQ(cache_line_keep(c, e, l), 1);
	cache_del(c, e);
	ASSERT_EQ(l->refs, 1);
	ASSERT_EQ(cache_line_count(c), 0);
	/* cache_free drops what is left (ASan: nothing leaks). */
	t = tok("tok-3");
	e = cache_put(c, "bob", "graph", &t, "Bearer", 1000, 4600, 4300);
	ASSERT_EQ(cache_line_keep(c, e, l), 1);
	cache_free(c);
	ASSERT_EQ(l->refs, 1);
	reply_line_unref(l);
}

TEST(lines_within_budget)
{
	static const char *const names[6] = { "u0", "u1", "u2", "u3", "u4",
		"u5" };
	struct cache *c = cache_new();
	struct cache_entry *e[6];
	struct reply_line *l;
	struct secret *t;
	size_t i, cost = sizeof(struct reply_line) + 100;

	for (i = 0; i < 6; i++) {
		t = tok("t");
		e[i] = cache_put(c, names[i], "graph", &t, "Bearer", 1000, 4600,
		    4300);
		ASSERT_TRUE(e[i] != NULL);
	}
	cache_line_budget(c, 3 * cost);
	for (i = 0; i < 3; i++) {
		l = mkline(100);
		ASSERT_EQ(cache_line_keep(c, e[i], l), 1);
		reply_line_unref(l); /* the cache's reference remains */
	}
	ASSERT_EQ(cache_line_bytes(c), 3 * cost);
	/* u0 and u2 were served again, u1 not: u1 makes room for u3. */
	e[0]->line_used = 1;
	e[2]->line_used = 1;
	l = mkline(100);
	ASSERT_EQ(cache_line_keep(c, e[3], l), 1);
	reply_line_unref(l);
	ASSERT_TRUE(e[0]->line != NULL && e[1]->line == NULL &&
	    e[2]->line != NULL && e[3]->line != NULL);
	ASSERT_EQ(cache_line_count(c), 3);
	ASSERT_EQ(cache_line_bytes(c), 3 * cost);
	/* The next one finds every second chance spent: one goes. */
	l = mkline(100);
	ASSERT_EQ(cache_line_keep(c, e[4], l), 1);
	reply_line_unref(l);
	ASSERT_EQ(cache_line_count(c), 3);
	ASSERT_TRUE(e[4]->line != NULL);
	/* A line larger than the budget is not kept; nothing is evicted. */
	l = mkline(4 * cost);
	ASSERT_EQ(cache_line_keep(c, e[5], l), 0);
	ASSERT_TRUE(e[5]->line == NULL && l->refs == 1);
	reply_line_unref(l);
	ASSERT_EQ(cache_line_count(c), 3);
	/* A smaller budget evicts at once. */
	cache_line_budget(c, cost);
	ASSERT_EQ(cache_line_count(c), 1);
	ASSERT_EQ(cache_line_bytes(c), cost);
	/* The sweep lets lines of idle entries go. */
	cache_line_budget(c, 10 * cost);
	for (i = 0; i < 6; i++) {
		cache_line_drop(c, e[i]);
		e[i]->last_used = 100 + (int64_t)i;
	}
	for (i = 0; i < 3; i++) {
		l = mkline(100);
		ASSERT_EQ(cache_line_keep(c, e[i], l), 1);
		reply_line_unref(l);
	}
	ASSERT_EQ(cache_line_sweep(c, 102), 2); /* used at 100 and 101 */
	ASSERT_TRUE(
	    e[0]->line == NULL && e[1]->line == NULL && e[2]->line != NULL);
	ASSERT_EQ(cache_line_count(c), 1);
	ASSERT_EQ(cache_line_sweep(c, INT64_MAX), 1);
	ASSERT_EQ(cache_line_count(c), 0);
	ASSERT_EQ(cache_line_bytes(c), 0);
	cache_free(c);
}

/* Serve e as tokens.c does: its line if kept, else a new line kept. */
static int
serve(struct cache *c, struct cache_entry *e)
{
	struct reply_line *l;

	if (e->line != NULL) {
		e->line_used = 1;
		return 0;
	}
	l = mkline(100);
	if (l == NULL || cache_line_keep(c, e, l) != 1)
		return -1;
	reply_line_unref(l);
	return 1; /* built */
}

/*
 * A full budget of lines nobody asks for any more (a warm-up's), then a
 * working set that fits the budget, served round robin: after one turn
 * every line of the working set is kept and nothing is rebuilt. Before
 * issue 16's fix the swap-remove put the newest line under the hand, so
 * each keep evicted the line kept just before it while the unused old
 * lines stayed: every request rebuilt its line.
 */
TEST(lines_working_set_stays)
{
	static const char *const names[8] = { "u0", "u1", "u2", "u3", "u4",
		"u5", "u6", "u7" };
	struct cache *c = cache_new();
	struct cache_entry *e[8];
	struct secret *t;
	size_t i, round, cost = sizeof(struct reply_line) + 100;
	int built;

	for (i = 0; i < 8; i++) {
		t = tok("t");
		e[i] = cache_put(c, names[i], "graph", &t, "Bearer", 1000, 4600,
		    4300);
		ASSERT_TRUE(e[i] != NULL);
	}
	cache_line_budget(c, 4 * cost);
	for (i = 0; i < 4; i++) /* the warm-up: u0..u3, served once */
		ASSERT_EQ(serve(c, e[i]), 1);
	for (round = 0; round < 4; round++) {
		built = 0;
		for (i = 4; i < 7; i++) { /* u4..u6: three of four slots */
			int r = serve(c, e[i]);

			ASSERT_TRUE(r >= 0);
			built += r;
		}
		if (round == 0)
			ASSERT_EQ(built, 3);
		else
			ASSERT_EQ(built, 0);
		ASSERT_EQ(cache_line_count(c), 4);
		ASSERT_TRUE(cache_line_bytes(c) <= 4 * cost);
	}
	for (i = 4; i < 7; i++)
		ASSERT_TRUE(e[i]->line != NULL);
	/* A newcomer takes an old line's place, not a working one's. */
	ASSERT_EQ(serve(c, e[7]), 1);
	for (i = 4; i < 8; i++)
		ASSERT_TRUE(e[i]->line != NULL);
	for (i = 0; i < 4; i++)
		ASSERT_TRUE(e[i]->line == NULL);
	cache_free(c);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(put_get_replace);
	RUN(foreach_user_and_purge);
	RUN(grows_past_10000);
	RUN(jwt_round_trip_and_interning);
	RUN(freshness);
	RUN(lines_follow_their_token);
	RUN(lines_within_budget);
	RUN(lines_working_set_stays);
	TEST_MAIN_END();
}
