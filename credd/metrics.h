/*
 * metrics.h - counters' building blocks and the Prometheus text format
 * (exposition format 0.0.4): a fixed-bucket latency histogram cheap
 * enough for the cached path (an add and a bucket increment, no
 * allocation, no lock: it is only touched on the loop thread), the
 * request outcomes as a small index, and a text builder that writes
 * HELP/TYPE lines, samples with escaped labels, and histograms.
 *
 * What is counted, and where, belongs to the modules that see the
 * events (server_conn.c, http.c, the broker); scrape.c gathers them into
 * one page. This file knows no module above it.
 *
 * Must never: be handed a token, a secret or a user name (metrics are
 * readable by whoever may scrape them: labels are fixed op, outcome and
 * class names only), or allocate on the observe path.
 */
#ifndef CREDD_METRICS_H
#define CREDD_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the histogram buckets, in microseconds (then +Inf). */
#define METRICS_HIST_BOUNDS 19

struct metrics_hist {
	uint64_t bucket[METRICS_HIST_BOUNDS + 1]; /* per bucket; last: +Inf */
	uint64_t count;
	uint64_t sum_us;
};

/* Count one observation of us microseconds. */
void metrics_hist_observe(struct metrics_hist *h, uint64_t us);
/* Microseconds from start_us (metrics_now_us) to now. */
uint64_t metrics_now_us(void);

/*
 * A request's outcome: "ok" or one of the wire error codes of
 * docs/protocol.md §5 (index 0 is "ok"; an unknown code is "internal").
 */
#define METRICS_OUTCOMES 17
unsigned metrics_outcome_of(const char *code);
const char *metrics_outcome_name(unsigned i);

/*
 * The page being built. failed becomes 1 when memory ran out; the
 * builder goes on as a no-op and the caller checks once at the end.
 */
struct metrics_text {
	char *buf;
	size_t len, cap;
	int failed;
};

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void metrics_text_family(struct metrics_text *t, const char *name,
    const char *type, const char *help);
/*
 * One sample: name{k1="v1",...} value. labels is NULL or a NULL-ended
 * list of key, value pairs; values are escaped (\\, \", \n).
 */
void metrics_text_sample(struct metrics_text *t, const char *name,
    const char *const *labels, uint64_t value);
/* The same for a value that may be negative (a gauge). */
void metrics_text_gauge(struct metrics_text *t, const char *name,
    const char *const *labels, int64_t value);
/* A whole histogram family: HELP, TYPE, cumulative buckets (le in
 * seconds), _sum (seconds) and _count. */
void metrics_text_hist(struct metrics_text *t, const char *name,
    const char *help, const struct metrics_hist *h);
/* Let go of the page (no secret in it: a plain free). NULL is fine. */
void metrics_text_free(struct metrics_text *t);

#endif
