/*
 * test_metrics.c - metrics.c: histogram buckets at their bounds, outcome
 * names, and the text builder's format (HELP/TYPE, escaped label values
 * and help text, cumulative buckets ending at +Inf with _sum and
 * _count); a page built at the limit of memory reports the failure.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "test.h"

TEST(test_hist_buckets)
{
	struct metrics_hist h = { 0 };

	metrics_hist_observe(&h, 0);	    /* le 1e-05 */
	metrics_hist_observe(&h, 10);	    /* le 1e-05: bounds are inclusive */
	metrics_hist_observe(&h, 11);	    /* le 2.5e-05 */
	metrics_hist_observe(&h, 10000000); /* le 10 */
	metrics_hist_observe(&h, 10000001); /* +Inf */
	ASSERT_EQ(h.bucket[0], 2);
	ASSERT_EQ(h.bucket[1], 1);
	ASSERT_EQ(h.bucket[METRICS_HIST_BOUNDS - 1], 1);
	ASSERT_EQ(h.bucket[METRICS_HIST_BOUNDS], 1);
	ASSERT_EQ(h.count, 5);
	ASSERT_EQ(h.sum_us, 20000022);
}

TEST(test_outcomes)
{
	ASSERT_EQ(metrics_outcome_of(NULL), 0);
	ASSERT_STREQ(metrics_outcome_name(0), "ok");
	ASSERT_STREQ(metrics_outcome_name(metrics_outcome_of("forbidden")),
	    "forbidden");
	ASSERT_STREQ(metrics_outcome_name(metrics_outcome_of("rate_limited")),
	    "rate_limited");
	/* A code this file does not know is counted as internal. */
	ASSERT_STREQ(metrics_outcome_name(metrics_outcome_of("brand_new")),
	    "internal");
	ASSERT_STREQ(metrics_outcome_name(METRICS_OUTCOMES), "internal");
}

TEST(test_text_format)
{
	struct metrics_text t = { 0 };
	const char *lab[] = { "op", "to\"k\\e\nn", "outcome", "ok", NULL };

	metrics_text_family(&t, "credd_x_total", "counter", "a\\b\nc");
	metrics_text_sample(&t, "credd_x_total", lab, 42);
	metrics_text_sample(&t, "credd_x_total", NULL, 7);
	metrics_text_gauge(&t, "credd_g", NULL, -3);
	ASSERT_EQ(t.failed, 0);
	ASSERT_STREQ(t.buf,
	    "# HELP credd_x_total a\\\\b\\nc\n"
	    "# TYPE credd_x_total counter\n"
	    "credd_x_total{op=\"to\\\"k\\\\e\\nn\",outcome=\"ok\"} 42\n"
	    "credd_x_total 7\n"
	    "credd_g -3\n");
	metrics_text_free(&t);
	ASSERT_TRUE(t.buf == NULL);
	metrics_text_free(NULL);
}

TEST(test_text_hist)
{
	struct metrics_text t = { 0 };
	struct metrics_hist h = { 0 };

	metrics_hist_observe(&h, 5);
	metrics_hist_observe(&h, 40);
	metrics_hist_observe(&h, 20000000);
	metrics_text_hist(&t, "credd_d_seconds", "d", &h);
	ASSERT_EQ(t.failed, 0);
	ASSERT_TRUE(
	    strstr(t.buf, "# TYPE credd_d_seconds histogram\n") != NULL);
	ASSERT_TRUE(
	    strstr(t.buf, "credd_d_seconds_bucket{le=\"1e-05\"} 1\n") != NULL);
	ASSERT_TRUE(strstr(t.buf,
			"credd_d_seconds_bucket{le=\"2.5e-05\"} 1\n") != NULL);
	ASSERT_TRUE(
	    strstr(t.buf, "credd_d_seconds_bucket{le=\"5e-05\"} 2\n") != NULL);
	ASSERT_TRUE(
	    strstr(t.buf, "credd_d_seconds_bucket{le=\"10\"} 2\n") != NULL);
	ASSERT_TRUE(
	    strstr(t.buf, "credd_d_seconds_bucket{le=\"+Inf\"} 3\n") != NULL);
	ASSERT_TRUE(strstr(t.buf, "credd_d_seconds_sum 20.000045\n") != NULL);
	ASSERT_TRUE(strstr(t.buf, "credd_d_seconds_count 3\n") != NULL);
	metrics_text_free(&t);
}

/* A builder that failed stays failed and writes nothing more. */
TEST(test_text_failed_is_sticky)
{
	struct metrics_text t = { 0 };

	t.failed = 1;
	metrics_text_family(&t, "credd_x", "gauge", "x");
	metrics_text_sample(&t, "credd_x", NULL, 1);
	ASSERT_TRUE(t.buf == NULL);
	ASSERT_EQ(t.len, 0);
	ASSERT_EQ(t.failed, 1);
}

int
main(void)
{
	RUN(test_hist_buckets);
	RUN(test_outcomes);
	RUN(test_text_format);
	RUN(test_text_hist);
	RUN(test_text_failed_is_sticky);
	TEST_MAIN_END();
}
