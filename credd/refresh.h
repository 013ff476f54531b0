/*
 * refresh.h - when to refresh and how long to back off. Pure functions
 * of their arguments (time and randomness passed in) so they are tested
 * on a fake clock. The timers themselves are event.c's heap.
 */
#ifndef CREDD_REFRESH_H
#define CREDD_REFRESH_H

#include <stdint.h>

#define REFRESH_MIN_AGE 30	   /* never sooner than 30 s after issue */
#define REFRESH_BEFORE_EXPIRY 300  /* short tokens: 5 minutes before expiry */
#define REFRESH_HALF_LIFE_MIN 7200 /* lifetimes >= 2 h refresh at half-life */
#define REFRESH_BACKOFF_MIN 1
#define REFRESH_BACKOFF_MAX 300

/*
 * Proactive refresh time (unix s) for a token issued at `issued` with
 * lifetime expires_in and optional refresh_in (-1 if absent).
 * - refresh_in given: issued + refresh_in;
 * - else lifetime >= 2 h: issued + lifetime / 2;
 * - else: issued + lifetime - 300.
 * Jitter: subtract rnd % (span / 10 + 1) seconds, where span is the
 * planned delay, at most 300 s. Clamped to >= issued + 30 (and to
 * <= expiry when the lifetime is shorter than 30 s).
 */
int64_t refresh_due(int64_t issued, int64_t expires_in, int64_t refresh_in,
    uint32_t rnd);

/*
 * Backoff after `failures` consecutive RETRY failures (1, 2, ...):
 * exponential from REFRESH_BACKOFF_MIN doubling, capped at
 * REFRESH_BACKOFF_MAX, full jitter in [d/2, d]; never below
 * retry_after when the IdP sent one (>= 0). Seconds.
 */
int64_t refresh_backoff(unsigned failures, int64_t retry_after, uint32_t rnd);

#endif
