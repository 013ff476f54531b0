/*
 * memtrim.c - malloc_trim(0) every 30 s after enough churn (see
 * memtrim.h).
 *
 * Must never: trim on every change (a trim walks every free chunk), or
 * trim an idle node (nothing to give back).
 */
#include <malloc.h>
#include <stdlib.h>
#include <time.h>

#include "event.h"
#include "log.h"
#include "memtrim.h"

#define TRIM_EVERY_MS 30000
#define TRIM_CHURN 1000

struct memtrim {
	struct event_loop *ev;
	struct event_timer *trim_timer; /* hands freed heap pages back */
	uint64_t
	    churn; /* tokens cached + records evicted since the last trim */
};

static void
trim_cb(struct event_loop *ev, void *arg)
{
	struct memtrim *b = arg;
	struct timespec t0, t1;

	b->trim_timer = NULL;
	if (b->churn >= TRIM_CHURN) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		(void)malloc_trim(0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		log_debug("malloc_trim after %llu changes: %lld us",
		    (unsigned long long)b->churn,
		    (long long)((t1.tv_sec - t0.tv_sec) * 1000000 +
			(t1.tv_nsec - t0.tv_nsec) / 1000));
		b->churn = 0;
	}
	b->trim_timer = event_timer_in(ev, TRIM_EVERY_MS, trim_cb, b);
}

struct memtrim *
memtrim_new(struct event_loop *ev)
{
	struct memtrim *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ev = ev;
	t->trim_timer = event_timer_in(ev, TRIM_EVERY_MS, trim_cb, t);
	if (t->trim_timer == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void
memtrim_note(struct memtrim *t, uint64_t n)
{
	if (t != NULL)
		t->churn += n;
}

void
memtrim_free(struct memtrim *t)
{
	if (t == NULL)
		return;
	event_timer_cancel(t->ev, &t->trim_timer);
	free(t);
}
