/*
 * clock.c - the clock the broker reads (clock.h), and the real one: the
 * wall clock through util_now() and the loop's timers, exactly as the
 * broker used them before the clock was injected.
 *
 * Must never: sleep or block; keep process-wide state.
 */
#include <stdint.h>

#include "entra/util.h"

#include "clock.h"
#include "event.h"

static int64_t
real_now(const struct clock *c)
{
	(void)c;
	return util_now();
}

static int64_t
real_now_ms(const struct clock *c)
{
	return event_now_ms(c->ev);
}

static struct event_timer *
real_timer_at(const struct clock *c, int64_t due_ms, event_timer_cb *cb,
    void *arg)
{
	return event_timer_at(c->ev, due_ms, cb, arg);
}

static void
real_timer_cancel(const struct clock *c, struct event_timer **t)
{
	event_timer_cancel(c->ev, t);
}

static const struct clock_ops clock_real_ops = {
	.now = real_now,
	.now_ms = real_now_ms,
	.timer_at = real_timer_at,
	.timer_cancel = real_timer_cancel,
};

void
clock_init_real(struct clock *c, struct event_loop *ev)
{
	c->ops = &clock_real_ops;
	c->ev = ev;
	c->priv = NULL;
}

int64_t
clock_now(const struct clock *c)
{
	return c->ops->now(c);
}

int64_t
clock_now_ms(const struct clock *c)
{
	return c->ops->now_ms(c);
}

struct event_timer *
clock_timer_at(const struct clock *c, int64_t due_ms, event_timer_cb *cb,
    void *arg)
{
	return c->ops->timer_at(c, due_ms, cb, arg);
}

struct event_timer *
clock_timer_in(const struct clock *c, int64_t delay_ms, event_timer_cb *cb,
    void *arg)
{
	int64_t due;

	/* As event_timer_in: a negative delay is now, an overflow never. */
	if (delay_ms < 0)
		delay_ms = 0;
	if (__builtin_add_overflow(c->ops->now_ms(c), delay_ms, &due))
		due = INT64_MAX;
	return c->ops->timer_at(c, due, cb, arg);
}

void
clock_timer_cancel(const struct clock *c, struct event_timer **t)
{
	if (t == NULL || *t == NULL)
		return;
	c->ops->timer_cancel(c, t);
}
