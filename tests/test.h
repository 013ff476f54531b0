/*
 * test.h - a tiny test harness. A test file defines TEST(name) functions
 * and lists them in main via RUN(name), then ends main with
 * TEST_MAIN_END(). An assertion failure prints file:line and makes the
 * test (and the program) fail. SKIP(fmt, ...) ends a test that cannot run
 * here (no root, no ACLs) and says why. Each test prints one line
 * ("ok   name", "FAIL name", "skip name: why"), the program a last one,
 * "N passed, M failed, K skipped", and exits 1 if a test failed, 77 (the
 * CTest SKIP_RETURN_CODE) if every test skipped, else 0.
 *
 * What a test starts through fixture.h (temp dirs, forked servers) is
 * registered: a failed test's children are killed and reaped when it
 * returns, and everything left is cleaned at TEST_MAIN_END or exit.
 */
#ifndef TEST_H
#define TEST_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static int test_failed;
static int test_skipped;
static int test_total_failed;
static int test_total_skipped;
static int test_count;
static char test_skip_why[256];

#define TEST(name) static void name(void)
#define RUN(name)                                                              \
	do {                                                                   \
		test_failed = 0;                                               \
		test_skipped = 0;                                              \
		test_count++;                                                  \
		fixture_test_begin();                                          \
		name();                                                        \
		fixture_test_end(test_failed);                                 \
		if (test_failed) {                                             \
			printf("FAIL %s\n", #name);                            \
			test_total_failed++;                                   \
		} else if (test_skipped) {                                     \
			printf("skip %s: %s\n", #name, test_skip_why);         \
			test_total_skipped++;                                  \
		} else {                                                       \
			printf("ok   %s\n", #name);                            \
		}                                                              \
	} while (0)
#define TEST_MAIN_END()                                                        \
	do {                                                                   \
		fixture_end();                                                 \
		printf("%d passed, %d failed, %d skipped\n",                   \
		    test_count - test_total_failed - test_total_skipped,       \
		    test_total_failed, test_total_skipped);                    \
		if (test_total_failed)                                         \
			return 1;                                              \
		return test_count > 0 && test_total_skipped == test_count ?    \
		    77 :                                                       \
		    0;                                                         \
	} while (0)

#define FAILF(...)                                                             \
	do {                                                                   \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		test_failed = 1;                                               \
		return;                                                        \
	} while (0)
/* End the test as skipped (not failed); the reason is printed. */
#define SKIP(...)                                                              \
	do {                                                                   \
		snprintf(test_skip_why, sizeof(test_skip_why), __VA_ARGS__);   \
		test_skipped = 1;                                              \
		return;                                                        \
	} while (0)
#define ASSERT_TRUE(e)                                                         \
	do {                                                                   \
		if (!(e))                                                      \
			FAILF("assertion failed: %s", #e);                     \
	} while (0)
#define ASSERT_EQ(a, b)                                                        \
	do {                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);            \
		if (a_ != b_)                                                  \
			FAILF("%s == %s: %lld != %lld", #a, #b, a_, b_);       \
	} while (0)
#define ASSERT_NE(a, b)                                                        \
	do {                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);            \
		if (a_ == b_)                                                  \
			FAILF("%s != %s: both %lld", #a, #b, a_);              \
	} while (0)
#define ASSERT_STREQ(a, b)                                                     \
	do {                                                                   \
		const char *a_ = (a), *b_ = (b);                               \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                         \
			FAILF("%s == %s: \"%s\" != \"%s\"", #a, #b,            \
			    a_ ? a_ : "(null)", b_ ? b_ : "(null)");           \
	} while (0)
#define ASSERT_ERR(e, err) ASSERT_EQ((e), (err))

#endif
