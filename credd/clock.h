/*
 * clock.h - the time the broker decides by: the wall clock (unix s:
 * token expiry, proactive refresh, backoff and the 429 breaker, flow
 * expiry), the loop's monotonic ms (a login's wait) and the timers
 * armed from them. The real clock (clock.c) is util_now() and event.c's
 * loop, as before; a unit test fixes the time and fires the timers as
 * it advances it.
 *
 * Must never: keep process-wide state (a clock is passed, never found).
 */
#ifndef CREDD_CLOCK_H
#define CREDD_CLOCK_H

#include <stdint.h>

#include "event.h"

struct clock;

struct clock_ops {
	/* Wall clock, unix seconds. */
	int64_t (*now)(const struct clock *c);
	/* Monotonic ms (event_now_ms's scale). */
	int64_t (*now_ms)(const struct clock *c);
	/* One-shot timer at monotonic due_ms, as event_timer_at. */
	struct event_timer *(*timer_at)(const struct clock *c, int64_t due_ms,
	    event_timer_cb *cb, void *arg);
	/* As event_timer_cancel. */
	void (*timer_cancel)(const struct clock *c, struct event_timer **t);
};

struct clock {
	const struct clock_ops *ops;
	struct event_loop *ev; /* the loop its callbacks run on */
	void *priv;
};

/* The real clock over ev: util_now(), event_now_ms(), event.c's timers. */
void clock_init_real(struct clock *c, struct event_loop *ev);

int64_t clock_now(const struct clock *c);
int64_t clock_now_ms(const struct clock *c);
/* NULL on ENOMEM. */
struct event_timer *clock_timer_at(const struct clock *c, int64_t due_ms,
    event_timer_cb *cb, void *arg);
/* due in delay_ms from clock_now_ms. NULL on ENOMEM. */
struct event_timer *clock_timer_in(const struct clock *c, int64_t delay_ms,
    event_timer_cb *cb, void *arg);
/* Cancel and free; *t set to NULL. NULL or *t == NULL does nothing. */
void clock_timer_cancel(const struct clock *c, struct event_timer **t);

#endif
