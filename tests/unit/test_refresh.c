/*
 * test_refresh.c - refresh.c on fixed times: which rule picks the due
 * time, the 30-s floor, the jitter bounds over sampled rnd values, and
 * the backoff sequence with its cap, jitter range and Retry-After.
 */
#include <stdint.h>

#include "refresh.h"
#include "test.h"

#define T0 INT64_C(1700000000)

TEST(refresh_in_honoured)
{
	/* 1800 s planned: jitter up to 180 s. */
	ASSERT_EQ(refresh_due(T0, 3600, 1800, 0), T0 + 1800);
	ASSERT_EQ(refresh_due(T0, 3600, 1800, 180), T0 + 1620);
	ASSERT_EQ(refresh_due(T0, 3600, 1800, 181), T0 + 1800);
	/* Wins over the half-life rule for long tokens too. */
	ASSERT_EQ(refresh_due(T0, 86400, 1000, 0), T0 + 1000);
	/* A 28 h CAE token (issue 17): Entra's refresh_in, not 14 h. */
	ASSERT_EQ(refresh_due(T0, 100800, 75600, 301), T0 + 75600);
	ASSERT_EQ(refresh_due(T0, 100800, 75600, 300), T0 + 75300);
	/* Still never sooner than 30 s after issue. */
	ASSERT_EQ(refresh_due(T0, 3600, 10, 0), T0 + 30);
	ASSERT_EQ(refresh_due(T0, 3600, 0, 0), T0 + 30);
	/* Never later than expiry. */
	ASSERT_EQ(refresh_due(T0, 3600, 5000, 0), T0 + 3600);
}

TEST(half_life_for_long_tokens)
{
	ASSERT_EQ(refresh_due(T0, 7200, -1, 0), T0 + 3600);
	ASSERT_EQ(refresh_due(T0, 86400, -1, 0), T0 + 43200);
	/* Jitter capped at 300 s however long the delay. */
	ASSERT_EQ(refresh_due(T0, 86400, -1, 300), T0 + 43200 - 300);
	ASSERT_EQ(refresh_due(T0, 86400, -1, 301), T0 + 43200);
	/* Just under 2 h: the 5-minutes-before rule. */
	ASSERT_EQ(refresh_due(T0, 7199, -1, 0), T0 + 6899);
}

TEST(five_minutes_before_for_short_tokens)
{
	ASSERT_EQ(refresh_due(T0, 3600, -1, 0), T0 + 3300);
	ASSERT_EQ(refresh_due(T0, 3600, -1, 1), T0 + 3299);
	ASSERT_EQ(refresh_due(T0, 3600, -1, 300), T0 + 3000);
	ASSERT_EQ(refresh_due(T0, 3600, -1, 301), T0 + 3300);
	/* 400 s: planned 100, jitter up to 10. */
	ASSERT_EQ(refresh_due(T0, 400, -1, 0), T0 + 100);
	ASSERT_EQ(refresh_due(T0, 400, -1, 10), T0 + 90);
}

TEST(never_sooner_than_30s)
{
	uint32_t r;

	for (r = 0; r < 1000; r++) {
		ASSERT_EQ(refresh_due(T0, 60, -1, r), T0 + 30);
		ASSERT_EQ(refresh_due(T0, 120, -1, r), T0 + 30);
		ASSERT_EQ(refresh_due(T0, 330, -1, r), T0 + 30);
	}
	/* Shorter than 30 s: refresh at expiry instead. */
	ASSERT_EQ(refresh_due(T0, 20, -1, 0), T0 + 20);
	ASSERT_EQ(refresh_due(T0, 0, -1, 0), T0);
	ASSERT_EQ(refresh_due(T0, -5, -1, 0), T0);
}

/* The rule's planned delay, without clamps or jitter. */
static int64_t
planned(int64_t expires_in, int64_t refresh_in)
{
	if (refresh_in >= 0)
		return refresh_in < expires_in ? refresh_in : expires_in;
	if (expires_in >= 7200)
		return expires_in / 2;
	return expires_in - 300;
}

static const int64_t lifetimes[] = { 0, 20, 29, 30, 60, 301, 330, 331, 400,
	1000, 3599, 3600, 4000, 5000, 7199, 7200, 7201, 86400, 1000000 };
static const int64_t refresh_ins[] = { -1, 0, 29, 30, 31, 100, 1800, 3000,
	100000 };

/* Check one (lifetime, refresh_in, rnd); 0 ok, else a failure. */
static int
check_bounds(int64_t life, int64_t rin, uint32_t rnd, int64_t *jitter)
{
	int64_t plan = planned(life, rin);
	int64_t jmax = plan > 0 ? plan / 10 : 0;
	int64_t due = refresh_due(T0, life, rin, rnd);
	int64_t lo, hi;

	if (jmax > 300)
		jmax = 300;
	hi = T0 + plan;
	lo = T0 + plan - jmax;
	if (lo < T0 + 30)
		lo = T0 + 30;
	if (hi < T0 + 30)
		hi = T0 + 30;
	if (life < 30) {
		int64_t cap = T0 + (life > 0 ? life : 0);

		lo = lo > cap ? cap : lo;
		hi = hi > cap ? cap : hi;
	}
	*jitter = T0 + plan - due;
	if (due < lo || due > hi)
		return 1;
	if (life >= 30 && due < T0 + 30)
		return 2;
	if (*jitter > 300 && due != T0 + 30)
		return 3;
	return 0;
}

TEST(jitter_bounds_over_rnd)
{
	size_t i, j;

	for (i = 0; i < sizeof(lifetimes) / sizeof(lifetimes[0]); i++) {
		for (j = 0; j < sizeof(refresh_ins) / sizeof(refresh_ins[0]);
		     j++) {
			int64_t life = lifetimes[i], rin = refresh_ins[j];
			int64_t jit, max_jit = INT64_MIN;
			uint64_t r;
			int bad;

			/* Every small rnd, then a stride over 2^32. */
			for (r = 0; r <= 700; r++) {
				bad =
				    check_bounds(life, rin, (uint32_t)r, &jit);
				if (bad)
					FAILF("life %lld rin %lld rnd %llu: %d",
					    (long long)life, (long long)rin,
					    (unsigned long long)r, bad);
				if (jit > max_jit)
					max_jit = jit;
			}
			for (r = 0; r <= UINT32_MAX; r += 65521) {
				bad =
				    check_bounds(life, rin, (uint32_t)r, &jit);
				if (bad)
					FAILF("life %lld rin %lld rnd %llu: %d",
					    (long long)life, (long long)rin,
					    (unsigned long long)r, bad);
			}
			bad = check_bounds(life, rin, UINT32_MAX, &jit);
			ASSERT_EQ(bad, 0);
			/* The full jitter range is used when the floor allows.
			 */
			if (planned(life, rin) - 300 >= 30 &&
			    planned(life, rin) >= 3000)
				ASSERT_EQ(max_jit, 300);
		}
	}
}

TEST(backoff_doubles_and_caps)
{
	/* rnd 0 gives the low end (ceil(d/2)); rnd = d - ceil(d/2) the top. */
	static const int64_t d[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300,
		300 };
	unsigned f;

	for (f = 1; f <= sizeof(d) / sizeof(d[0]); f++) {
		int64_t dd = d[f - 1], lo = (dd + 1) / 2;

		ASSERT_EQ(refresh_backoff(f, -1, 0), lo);
		ASSERT_EQ(refresh_backoff(f, -1, (uint32_t)(dd - lo)), dd);
	}
	ASSERT_EQ(refresh_backoff(1000, -1, 150), 300);
	ASSERT_EQ(refresh_backoff(UINT32_MAX, -1, 0), 150);
	ASSERT_EQ(refresh_backoff(0, -1, 0), 1); /* treated as the first */
}

TEST(backoff_jitter_range)
{
	unsigned f;
	uint64_t r;

	for (f = 1; f <= 12; f++) {
		int64_t dd = f >= 10 ? 300 : (INT64_C(1) << (f - 1));

		for (r = 0; r <= UINT32_MAX; r += 40009) {
			int64_t b = refresh_backoff(f, -1, (uint32_t)r);

			if (b < (dd + 1) / 2 || b > dd || b < 1)
				FAILF("failures %u rnd %llu: %lld", f,
				    (unsigned long long)r, (long long)b);
		}
	}
}

TEST(backoff_honours_retry_after)
{
	ASSERT_EQ(refresh_backoff(1, 120, 0), 120);
	ASSERT_EQ(refresh_backoff(10, 3600, 0), 3600); /* above the cap too */
	ASSERT_EQ(refresh_backoff(10, 0, 0), 150);     /* smaller: ignored */
	ASSERT_EQ(refresh_backoff(10, 200, 150), 300);
	ASSERT_EQ(refresh_backoff(10, 200, 0), 200);
}

int
main(void)
{
	RUN(refresh_in_honoured);
	RUN(half_life_for_long_tokens);
	RUN(five_minutes_before_for_short_tokens);
	RUN(never_sooner_than_30s);
	RUN(jitter_bounds_over_rnd);
	RUN(backoff_doubles_and_caps);
	RUN(backoff_jitter_range);
	RUN(backoff_honours_retry_after);
	TEST_MAIN_END();
}
