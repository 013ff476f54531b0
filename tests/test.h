/*
 * test.h - a tiny test harness. A test file defines TEST(name) functions
 * and lists them in main via RUN(name). An assertion failure prints
 * file:line and makes the test (and the program) fail.
 */
#ifndef TEST_H
#define TEST_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int test_failed;
static int test_total_failed;
static int test_count;

#define TEST(name) static void name(void)
#define RUN(name)                                                        \
	do {                                                             \
		test_failed = 0;                                         \
		test_count++;                                            \
		name();                                                  \
		printf("%s %s\n", test_failed ? "FAIL" : "ok  ", #name); \
		if (test_failed)                                         \
			test_total_failed++;                             \
	} while (0)
#define TEST_MAIN_END()                                                     \
	do {                                                                \
		printf("%d passed, %d failed\n", test_count - test_total_failed, \
		    test_total_failed);                                     \
		return test_total_failed ? 1 : 0;                           \
	} while (0)

#define FAILF(...)                                                 \
	do {                                                       \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);    \
		fprintf(stderr, __VA_ARGS__);                      \
		fputc('\n', stderr);                               \
		test_failed = 1;                                   \
		return;                                            \
	} while (0)
#define ASSERT_TRUE(e) \
	do { if (!(e)) FAILF("assertion failed: %s", #e); } while (0)
#define ASSERT_EQ(a, b)                                                  \
	do {                                                             \
		long long a_ = (long long)(a), b_ = (long long)(b);      \
		if (a_ != b_)                                            \
			FAILF("%s == %s: %lld != %lld", #a, #b, a_, b_); \
	} while (0)
#define ASSERT_NE(a, b)                                                  \
	do {                                                             \
		long long a_ = (long long)(a), b_ = (long long)(b);      \
		if (a_ == b_)                                            \
			FAILF("%s != %s: both %lld", #a, #b, a_);        \
	} while (0)
#define ASSERT_STREQ(a, b)                                               \
	do {                                                             \
		const char *a_ = (a), *b_ = (b);                         \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                   \
			FAILF("%s == %s: \"%s\" != \"%s\"", #a, #b,      \
			    a_ ? a_ : "(null)", b_ ? b_ : "(null)");     \
	} while (0)
#define ASSERT_ERR(e, err) ASSERT_EQ((e), (err))

#endif
