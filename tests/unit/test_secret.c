/*
 * test_secret.c - lib/secret.c: copies are NUL-terminated and owned,
 * comparisons are exact, wiping clears the bytes, NULL is harmless.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"
#include "test.h"

TEST(test_new_copies_and_terminates)
{
	const char raw[4] = { 'a', 'b', 'c', 'd' };
	struct secret *s;

	s = secret_new(raw, 3);
	ASSERT_TRUE(s != NULL);
	ASSERT_EQ(s->len, 3);
	ASSERT_TRUE(s->ptr != raw);
	ASSERT_EQ(s->ptr[3], '\0');
	ASSERT_STREQ(s->ptr, "abc");
	secret_free(s);
}

TEST(test_new_empty_and_binary)
{
	const char bin[3] = { 'x', '\0', 'y' };
	struct secret *s;

	s = secret_new(NULL, 0);
	ASSERT_TRUE(s != NULL);
	ASSERT_EQ(s->len, 0);
	ASSERT_EQ(s->ptr[0], '\0');
	secret_free(s);
	s = secret_new(bin, sizeof(bin));
	ASSERT_TRUE(s != NULL);
	ASSERT_EQ(s->len, 3);
	ASSERT_TRUE(memcmp(s->ptr, bin, 3) == 0);
	ASSERT_EQ(s->ptr[3], '\0');
	secret_free(s);
	errno = 0;
	ASSERT_TRUE(secret_new(NULL, 5) == NULL);
	ASSERT_EQ(errno, EINVAL);
}

TEST(test_from_str_and_dup)
{
	struct secret *a, *b;

	errno = 0;
	ASSERT_TRUE(secret_from_str(NULL) == NULL);
	ASSERT_EQ(errno, EINVAL);
	a = secret_from_str("token-value");
	ASSERT_TRUE(a != NULL);
	ASSERT_EQ(a->len, 11);
	b = secret_dup(a);
	ASSERT_TRUE(b != NULL);
	ASSERT_TRUE(b->ptr != a->ptr);
	ASSERT_STREQ(b->ptr, "token-value");
	ASSERT_TRUE(secret_equal(a, b));
	secret_free(a);
	secret_free(b);
	ASSERT_TRUE(secret_dup(NULL) == NULL);
}

TEST(test_equal)
{
	struct secret *a = secret_from_str("abcdef");
	struct secret *b = secret_from_str("abcdeg");
	struct secret *c = secret_from_str("abcde");
	struct secret *d = secret_from_str("abcdef");

	ASSERT_TRUE(a && b && c && d);
	ASSERT_TRUE(secret_equal(a, d));
	ASSERT_TRUE(!secret_equal(a, b));
	ASSERT_TRUE(!secret_equal(a, c));
	ASSERT_TRUE(!secret_equal(a, NULL));
	ASSERT_TRUE(secret_equal(NULL, NULL));
	secret_free(a);
	secret_free(b);
	secret_free(c);
	secret_free(d);
}

TEST(test_memeq)
{
	unsigned char x[256], y[256];
	int i;

	for (i = 0; i < 256; i++)
		x[i] = y[i] = (unsigned char)i;
	ASSERT_EQ(secret_memeq(x, y, sizeof(x)), 1);
	ASSERT_EQ(secret_memeq(x, y, 0), 1);
	/* Every single-bit difference, at both ends, is seen. */
	for (i = 0; i < 8; i++) {
		y[0] ^= (unsigned char)(1 << i);
		ASSERT_EQ(secret_memeq(x, y, sizeof(x)), 0);
		y[0] ^= (unsigned char)(1 << i);
		y[255] ^= (unsigned char)(1 << i);
		ASSERT_EQ(secret_memeq(x, y, sizeof(x)), 0);
		y[255] ^= (unsigned char)(1 << i);
	}
	ASSERT_EQ(secret_memeq(x, y, sizeof(x)), 1);
}

TEST(test_wipe)
{
	char buf[16];
	char *s;
	size_t i;

	memset(buf, 'A', sizeof(buf));
	secret_wipe(buf, sizeof(buf));
	for (i = 0; i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0);
	secret_wipe(NULL, 10); /* harmless */
	s = strdup("wipe me");
	ASSERT_TRUE(s != NULL);
	secret_wipe_str(s);
	secret_wipe_str(NULL);
	secret_free(NULL);
}

/* A counting allocator over malloc, as credd's arena would be. */
struct counting {
	int allocs, frees, dirty;
	size_t last_n;
};

static void *
count_alloc(void *arg, size_t n)
{
	struct counting *c = arg;

	c->allocs++;
	c->last_n = n;
	return malloc(n);
}

static void
count_free(void *arg, void *p, size_t n)
{
	struct counting *c = arg;
	const unsigned char *b = p;
	size_t i;

	c->frees++;
	for (i = 0; i < n; i++) /* secret.c wipes before it hands it back */
		c->dirty += b[i] != 0;
	free(p);
}

TEST(test_allocator_hook)
{
	struct counting c = { 0 };
	const struct secret_allocator a = { count_alloc, count_free, &c };
	struct secret *before, *s, *d;
	void *raw;

	before = secret_from_str("malloc'd before the hook");
	secret_set_allocator(&a);
	s = secret_from_str("token");
	d = secret_dup(s);
	ASSERT_EQ(c.allocs, 2);
	ASSERT_EQ(c.last_n, 6);
	raw = secret_mem_alloc(40);
	ASSERT_TRUE(raw != NULL);
	memset(raw, 0x77, 40);
	secret_mem_free(raw, 40);
	secret_free(s);
	secret_free(d);
	secret_free(before); /* the hook must take malloc memory too */
	ASSERT_EQ(c.frees, 4);
	ASSERT_EQ(c.dirty, 0);
	secret_set_allocator(NULL);
	/* Without a hook: plain malloc and free, as in pam_entra. */
	s = secret_from_str("again");
	ASSERT_STREQ(s->ptr, "again");
	secret_free(s);
	ASSERT_EQ(c.allocs, 3);
	secret_mem_free(NULL, 10);
}

int
main(void)
{
	RUN(test_new_copies_and_terminates);
	RUN(test_new_empty_and_binary);
	RUN(test_from_str_and_dup);
	RUN(test_equal);
	RUN(test_memeq);
	RUN(test_wipe);
	RUN(test_allocator_hook);
	TEST_MAIN_END();
}
