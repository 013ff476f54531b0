/*
 * refresh.c - refresh timing and retry backoff (refresh.h).
 *
 * Pure arithmetic on the arguments: no clock, no randomness source, no
 * state, so the tests drive it with fixed times and chosen rnd values.
 * Inputs come from an IdP response; they are clamped to
 * [0, REFRESH_LIFETIME_CAP] before any arithmetic so absurd values cannot
 * overflow. Jitter uses rnd % n, whose modulo bias (n <= 301 against
 * 2^32) is far below anything that matters for spreading refreshes.
 */
#include <stdint.h>

#include "refresh.h"

/* About 68 years: larger lifetimes are treated as this. */
#define REFRESH_LIFETIME_CAP INT64_C(0x7fffffff)

static int64_t
clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int64_t
refresh_due(int64_t issued, int64_t expires_in, int64_t refresh_in,
    uint32_t rnd)
{
	int64_t plan, jitter_max, due;

	expires_in = clamp(expires_in, 0, REFRESH_LIFETIME_CAP);
	if (refresh_in >= 0) /* a refresh after expiry is no refresh */
		plan = clamp(refresh_in, 0, expires_in);
	else if (expires_in >= REFRESH_HALF_LIFE_MIN)
		plan = expires_in / 2;
	else
		plan = expires_in - REFRESH_BEFORE_EXPIRY;

	/* Jitter only moves earlier, by at most a tenth of the delay. */
	jitter_max = plan > 0 ? plan / 10 : 0;
	if (jitter_max > REFRESH_BEFORE_EXPIRY)
		jitter_max = REFRESH_BEFORE_EXPIRY;
	due = issued + plan - (int64_t)(rnd % (uint64_t)(jitter_max + 1));

	if (due < issued + REFRESH_MIN_AGE)
		due = issued + REFRESH_MIN_AGE;
	/* A token shorter than the minimum age: refresh at expiry. */
	if (expires_in < REFRESH_MIN_AGE && due > issued + expires_in)
		due = issued + expires_in;
	return due;
}

int64_t
refresh_backoff(unsigned failures, int64_t retry_after, uint32_t rnd)
{
	int64_t d = REFRESH_BACKOFF_MIN, lo, r;
	unsigned i;

	/* Doubling stops at the cap, so d stays small for any failures. */
	for (i = 1; i < failures && d < REFRESH_BACKOFF_MAX; i++)
		d *= 2;
	if (d > REFRESH_BACKOFF_MAX)
		d = REFRESH_BACKOFF_MAX;
	lo = (d + 1) / 2; /* round up: never a zero-second retry */
	r = lo + (int64_t)(rnd % (uint64_t)(d - lo + 1));
	if (retry_after >= 0 && r < retry_after)
		r = retry_after;
	return r;
}
