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
	secret_wipe(NULL, 10);	/* harmless */
	s = strdup("wipe me");
	ASSERT_TRUE(s != NULL);
	secret_wipe_str(s);
	secret_wipe_str(NULL);
	secret_free(NULL);
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
	TEST_MAIN_END();
}
