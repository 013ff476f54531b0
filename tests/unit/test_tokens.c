/*
 * test_tokens.c - tokens.c's cached-token replies against the slow path:
 * for every shape of the ok token reply (JWT and opaque tokens, every
 * plain byte, token types, expiries, scopes, a null, an oid or a
 * username account) the line built once per token (proto_lite) is byte
 * for byte what the JSON path before issue 16 wrote (proto_ok, the
 * members set one by one, proto_encode), on the first hit and on every
 * later one (the same shared line); a changed account rebuilds it; a
 * string that needs escapes takes the JSON path and still gives the
 * same bytes; a line over the cache's budget is served but not kept; a
 * new token drops the old token's line; the unpacked token is wiped.
 *
 * The broker here is the few members tokens.c's reply path reads (the
 * cache, the loop for the idle sweep, the token buffer); the entries are
 * marked audited so that no audit sink is needed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "entra/proto.h"
#include "entra/secret.h"

#include "broker_int.h"
#include "cache.h"
#include "clock.h"
#include "event.h"
#include "reply.h"
#include "tokens.h"
#include "user.h"
#include "test.h"

/* A user whose account is acct (NULL: none; "" after oid: the oid). */
static struct user *
mkuser(const char *name, const char *oid, const char *acct)
{
	size_t nl = strlen(name) + 1;
	struct user *u = calloc(1, sizeof(*u) + nl);
	size_t ol, al;

	if (u == NULL)
		return NULL;
	memcpy(u->name, name, nl);
	if (oid != NULL) {
		ol = strlen(oid) + 1;
		al = strlen(acct != NULL ? acct : "") + 1;
		u->evicted = malloc(ol + al);
		if (u->evicted == NULL) {
			free(u);
			return NULL;
		}
		memcpy(u->evicted, oid, ol);
		memcpy(u->evicted + ol, acct != NULL ? acct : "", al);
	}
	return u;
}

static void
freeuser(struct user *u)
{
	if (u != NULL)
		free(u->evicted);
	free(u);
}

/*
 * The reply as tokens.c wrote it before issue 16: proto_ok, then the
 * members in order, then proto_encode. NULL on ENOMEM.
 */
static char *
slow_line(const char *tok, const char *type, int64_t exp, const char *scope,
    const char *account, size_t *len)
{
	json_t *resp = proto_ok();
	char *line;
	int bad = 0;

	reply_put(resp, "access_token", json_stringn_nocheck(tok, strlen(tok)),
	    &bad);
	reply_put(resp, "token_type", json_string(type), &bad);
	reply_put(resp, "expires_on", json_integer(exp), &bad);
	reply_put(resp, "scope", json_string(scope), &bad);
	reply_put(resp, "account", account ? json_string(account) : json_null(),
	    &bad);
	line = bad ? NULL : proto_encode(resp, len);
	json_decref(resp);
	return line;
}

/* What a listener sends for r: its bytes, or its JSON encoded. */
static char *
sent(const struct reply *r, size_t *len)
{
	char *s;

	if (r->bytes != NULL) {
		s = malloc(r->len + 1);
		if (s != NULL) {
			memcpy(s, r->bytes, r->len);
			s[r->len] = '\0';
		}
		*len = r->len;
		return s;
	}
	return r->json != NULL ? proto_encode(r->json, len) : NULL;
}

struct fix {
	struct broker b;
	struct clock clk; /* the real one, over b.ev */
};

static void
fix_init(struct fix *f)
{
	memset(f, 0, sizeof(*f));
	f->b.ev = event_new();
	f->b.cache = cache_new();
	clock_init_real(&f->clk, f->b.ev);
	f->b.clk = &f->clk;
}

static void
fix_free(struct fix *f)
{
	clock_timer_cancel(f->b.clk, &f->b.line_sweep);
	cache_free(f->b.cache);
	if (f->b.tokbuf != NULL)
		sodium_memzero(f->b.tokbuf, f->b.tokbuf_len);
	free(f->b.tokbuf);
	event_free(f->b.ev);
}

static struct cache_entry *
put(struct fix *f, struct user *u, const char *scope, const char *tok,
    const char *type, int64_t exp)
{
	struct secret *t = secret_from_str(tok);
	struct cache_entry *e;

	if (t == NULL)
		return NULL;
	e = cache_put(f->b.cache, u->name, scope, &t, type, 1000, exp, exp);
	secret_free(t); /* NULL: cache_put took it */
	if (e != NULL) {
		e->audited = 1; /* no audit sink here */
		e->owner = u;
	}
	return e;
}

/*
 * Serve (u, scope) twice and compare both with the slow path: 1 when
 * both are byte-identical to it (and, when served as a line, the second
 * is the same shared line), -1 otherwise (printed). *as_line says
 * whether the bytes came as a kept line.
 */
static int
same_as_slow(struct fix *f, struct user *u, struct cache_entry *e,
    const char *tok, const char *scope, int *as_line)
{
	struct reply r1 = { 0 }, r2 = { 0 };
	size_t slen = 0, l1 = 0, l2 = 0;
	char *want, *got1 = NULL, *got2 = NULL;
	int ok = -1;

	want = slow_line(tok, e->token_type, e->expires_on, scope,
	    user_account(u), &slen);
	if (want == NULL ||
	    tokens_reply_entry(&f->b, u, NULL, e, scope, &r1) != 0 ||
	    tokens_reply_entry(&f->b, u, NULL, e, scope, &r2) != 0)
		goto out;
	got1 = sent(&r1, &l1);
	got2 = sent(&r2, &l2);
	if (got1 == NULL || got2 == NULL)
		goto out;
	*as_line = r1.line != NULL;
	if (l1 == slen && l2 == slen && memcmp(got1, want, slen) == 0 &&
	    memcmp(got2, want, slen) == 0 &&
	    (r1.line == NULL || (r2.line == r1.line && e->line == r1.line)))
		ok = 1;
	else
		fprintf(stderr, "slow: %s\nfast: %s\nagain: %s\n", want, got1,
		    got2);
out:
	reply_clear(&r1);
	reply_clear(&r2);
	free(want);
	free(got1);
	free(got2);
	return ok;
}

TEST(every_shape_matches_the_slow_path)
{
	static const char jwt[] =
	    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6IngifQ."
	    "eyJhdWQiOiJodHRwczovL3N0b3JhZ2UuYXp1cmUuY29tIiwib2lkIjoiMSJ9."
	    "c2lnbmF0dXJlLXNpZ25hdHVyZQ-_";
	char plainb[0x7f - 0x20 + 1];
	const char *toks[] = { jwt, plainb, "t", "opaque-token_0123.~+/=" };
	const char *types[] = { "Bearer", "pop", "" };
	const int64_t exps[] = { 1796302006, 0, 1, 4102444800,
		INT32_MAX + 1LL };
	const char *scopes[] = { "https://storage.azure.com/.default",
		"2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default", "api://x/y z",
		"s" };
	/* oid, username: NULL oid = no record (account null). */
	const char *accts[][2] = { { NULL, NULL },
		{ "00000000-0000-0000-0000-000000000001", "alice@contoso.com" },
		{ "00000000-0000-0000-0000-000000000002", "" },
		{ "o", "a'b`c$(d)<e>&f" } };
	struct user *us[sizeof(accts) / sizeof(accts[0])] = { 0 };
	struct fix f;
	size_t i, n = 0, a, t, y, x, s, lines = 0;

	for (i = 0x20; i < 0x7f; i++)
		if (i != '"' && i != '\\')
			plainb[n++] = (char)i;
	plainb[n] = '\0';
	fix_init(&f);
	ASSERT_TRUE(f.b.ev != NULL && f.b.cache != NULL);
	for (a = 0; a < sizeof(accts) / sizeof(accts[0]); a++) {
		struct user *u = mkuser("alice", accts[a][0], accts[a][1]);

		ASSERT_TRUE(u != NULL);
		us[a] = u; /* entries keep its name: freed after the cache */
		for (t = 0; t < sizeof(toks) / sizeof(toks[0]); t++)
			for (y = 0; y < sizeof(types) / sizeof(types[0]); y++)
				for (x = 0; x < sizeof(exps) / sizeof(exps[0]);
				     x++)
					for (s = 0; s <
					     sizeof(scopes) / sizeof(scopes[0]);
					     s++) {
						struct cache_entry *e;
						int as_line = 0;

						e = put(&f, u, scopes[s],
						    toks[t], types[y], exps[x]);
						ASSERT_TRUE(e != NULL);
						ASSERT_EQ(same_as_slow(&f, u, e,
							      toks[t],
							      scopes[s],
							      &as_line),
						    1);
						lines += (size_t)as_line;
					}
		/* Every one of these is plain: all served as lines. */
		ASSERT_EQ(lines,
		    (a + 1) * sizeof(toks) / sizeof(toks[0]) * sizeof(types) /
			sizeof(types[0]) * sizeof(exps) / sizeof(exps[0]) *
			sizeof(scopes) / sizeof(scopes[0]));
		/* The token buffer holds nothing after a reply. */
		for (i = 0; i < f.b.tokbuf_len; i++)
			ASSERT_EQ(f.b.tokbuf[i], 0);
	}
	fix_free(&f);
	for (a = 0; a < sizeof(us) / sizeof(us[0]); a++)
		freeuser(us[a]);
}

TEST(escapes_take_the_json_path_with_the_same_bytes)
{
	const char *odd[] = { "j\xc3\xb6rg@contoso.com", "a\"b", "a\\b",
		"tab\there", "\xe2\x82\xac" };
	struct user *us[sizeof(odd) / sizeof(odd[0])] = { 0 };
	struct fix f;
	size_t i;

	fix_init(&f);
	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		struct user *u = mkuser("bob", "oid-1", odd[i]);
		struct cache_entry *e;
		int as_line = 1;

		ASSERT_TRUE(u != NULL);
		us[i] = u;
		/* In the account. */
		e = put(&f, u, "https://storage.azure.com/.default", "eyJ.a.b",
		    "Bearer", 1796302006);
		ASSERT_TRUE(e != NULL);
		ASSERT_EQ(same_as_slow(&f, u, e, "eyJ.a.b",
			      "https://storage.azure.com/.default", &as_line),
		    1);
		ASSERT_EQ(as_line, 0);
		ASSERT_TRUE(e->line == NULL);
		/* In the scope (a configured scope string may hold anything). */
		e = put(&f, u, odd[i], "eyJ.a.b", "Bearer", 1796302006);
		ASSERT_TRUE(e != NULL);
		as_line = 1;
		ASSERT_EQ(same_as_slow(&f, u, e, "eyJ.a.b", odd[i], &as_line),
		    1);
		ASSERT_EQ(as_line, 0);
		/* In the token itself (the IdP's bytes, checked as UTF-8). */
		e = put(&f, u, "s", odd[i], "Bearer", 1796302006);
		ASSERT_TRUE(e != NULL);
		as_line = 1;
		ASSERT_EQ(same_as_slow(&f, u, e, odd[i], "s", &as_line), 1);
		ASSERT_EQ(as_line, 0);
	}
	fix_free(&f);
	for (i = 0; i < sizeof(us) / sizeof(us[0]); i++)
		freeuser(us[i]);
}

TEST(account_change_rebuilds_the_line)
{
	struct user *u1 = mkuser("carol", NULL, NULL);
	struct user *u2 = mkuser("carol", "oid-2", "carol@contoso.com");
	struct user *u3 = mkuser("carol", "oid-3", "j\xc3\xb6rg");
	struct cache_entry *e;
	struct reply_line *first;
	struct fix f;
	int as_line = 0;

	ASSERT_TRUE(u1 != NULL && u2 != NULL && u3 != NULL);
	fix_init(&f);
	e = put(&f, u1, "s", "tok", "Bearer", 1796302006);
	ASSERT_TRUE(e != NULL);
	/* null, then an account (the consent arrived), then null again. */
	ASSERT_EQ(same_as_slow(&f, u1, e, "tok", "s", &as_line), 1);
	ASSERT_TRUE(as_line && e->line != NULL);
	first = reply_line_ref(e->line);
	ASSERT_EQ(same_as_slow(&f, u2, e, "tok", "s", &as_line), 1);
	ASSERT_TRUE(as_line && e->line != NULL && e->line != first);
	ASSERT_EQ(first->refs, 1); /* the cache let the old one go */
	reply_line_unref(first);
	ASSERT_EQ(same_as_slow(&f, u1, e, "tok", "s", &as_line), 1);
	ASSERT_TRUE(as_line);
	/* An account with escapes: JSON, and no line is kept for it. */
	ASSERT_EQ(same_as_slow(&f, u3, e, "tok", "s", &as_line), 1);
	ASSERT_TRUE(!as_line && e->line == NULL);
	ASSERT_EQ(same_as_slow(&f, u2, e, "tok", "s", &as_line), 1);
	ASSERT_TRUE(as_line && e->line != NULL);
	/* A new token for the entry: the old line goes with the old token. */
	e = put(&f, u2, "s", "tok-2", "Bearer", 1796303006);
	ASSERT_TRUE(e != NULL && e->line == NULL);
	ASSERT_EQ(same_as_slow(&f, u2, e, "tok-2", "s", &as_line), 1);
	ASSERT_TRUE(as_line);
	fix_free(&f);
	freeuser(u1);
	freeuser(u2);
	freeuser(u3);
}

TEST(over_budget_is_served_not_kept)
{
	struct user *u = mkuser("dave", "oid-4", "dave@contoso.com");
	struct cache_entry *e;
	struct fix f;

	ASSERT_TRUE(u != NULL);
	fix_init(&f);
	cache_line_budget(f.b.cache, 16); /* smaller than any reply */
	e = put(&f, u, "s", "eyJ.a.b", "Bearer", 1796302006);
	ASSERT_TRUE(e != NULL);
	{
		struct reply r = { 0 };
		size_t slen = 0, glen = 0;
		char *want = slow_line("eyJ.a.b", "Bearer", 1796302006, "s",
		    "dave@contoso.com", &slen);
		char *got;

		ASSERT_EQ(tokens_reply_entry(&f.b, u, NULL, e, "s", &r), 0);
		got = sent(&r, &glen);
		ASSERT_TRUE(want != NULL && got != NULL);
		ASSERT_EQ(glen, slen);
		ASSERT_TRUE(memcmp(got, want, slen) == 0);
		/* Served from a line only the reply holds. */
		ASSERT_TRUE(r.line != NULL && r.line->refs == 1);
		ASSERT_TRUE(e->line == NULL);
		ASSERT_EQ(cache_line_count(f.b.cache), 0);
		reply_clear(&r);
		free(want);
		free(got);
	}
	fix_free(&f);
	freeuser(u);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(every_shape_matches_the_slow_path);
	RUN(escapes_take_the_json_path_with_the_same_bytes);
	RUN(account_change_rebuilds_the_line);
	RUN(over_budget_is_served_not_kept);
	TEST_MAIN_END();
}
