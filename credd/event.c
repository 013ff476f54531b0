/*
 * event.c - the epoll loop behind event.h: fd watchers and one-shot timers.
 *
 * Watchers live in a table indexed by fd (grown by doubling), so lookup
 * is O(1) and the table is as large as the highest fd ever watched.
 * Each registration gets a per-fd generation number that travels in
 * epoll_event.data.u64 as (gen << 32 | fd): an event that was already
 * fetched for a watcher deleted (or deleted and re-added on a reused fd)
 * by an earlier callback in the same batch is dropped rather than handed
 * to the wrong callback. Watchers are level-triggered.
 *
 * Timers sit in a binary min-heap ordered by (due, seq); seq is a
 * per-loop insertion counter, so timers due at the same ms fire FIFO.
 * Each timer knows its heap index, so cancel is O(log n).
 *
 * Limits: single-threaded and not async-signal-safe (event_stop from a
 * signal handler is not supported; use a signalfd). A timer that is due
 * and was armed while timers were being fired waits until after the
 * next epoll_wait (with timeout 0), so a callback that keeps re-arming
 * "now" cannot starve the fds. event_free must not be called from a
 * callback. The loop never closes fds it watches.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "entra/util.h"
#include "event.h"

#define EVENT_BATCH 256
#define EVENT_NOT_IN_HEAP SIZE_MAX

struct watcher {
	event_fd_cb *cb;
	void *arg;
	uint32_t events;
	uint32_t gen; /* bumped on every add and del */
	bool is_active;
};

struct event_timer {
	int64_t due;
	uint64_t seq;
	size_t idx; /* position in the heap, or EVENT_NOT_IN_HEAP */
	event_timer_cb *cb;
	void *arg;
	bool is_cancelled; /* cancelled from its own callback */
};

struct event_loop {
	int epfd;
	struct watcher *w;
	size_t nw;
	struct event_timer **heap;
	size_t nheap;
	size_t capheap;
	uint64_t seq;
	int64_t now;
	struct event_timer *firing; /* timer whose callback is running */
	bool is_stopped;
};

/* --- timer heap --- */

static bool
timer_before(const struct event_timer *a, const struct event_timer *b)
{
	if (a->due != b->due)
		return a->due < b->due;
	return a->seq < b->seq;
}

static void
heap_set(struct event_loop *ev, size_t i, struct event_timer *t)
{
	ev->heap[i] = t;
	t->idx = i;
}

static void
heap_sift_up(struct event_loop *ev, size_t i)
{
	struct event_timer *t = ev->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, ev->heap[parent]))
			break;
		heap_set(ev, i, ev->heap[parent]);
		i = parent;
	}
	heap_set(ev, i, t);
}

static void
heap_sift_down(struct event_loop *ev, size_t i)
{
	struct event_timer *t = ev->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m;

		if (l >= ev->nheap)
			break;
		m = (r < ev->nheap && timer_before(ev->heap[r], ev->heap[l])) ?
		    r :
		    l;
		if (!timer_before(ev->heap[m], t))
			break;
		heap_set(ev, i, ev->heap[m]);
		i = m;
	}
	heap_set(ev, i, t);
}

static int
heap_push(struct event_loop *ev, struct event_timer *t)
{
	if (ev->nheap == ev->capheap) {
		size_t ncap = ev->capheap ? ev->capheap * 2 : 64;
		struct event_timer **nh;

		nh = reallocarray(ev->heap, ncap, sizeof(*nh));
		if (nh == NULL)
			return -ENOMEM;
		ev->heap = nh;
		ev->capheap = ncap;
	}
	heap_set(ev, ev->nheap, t);
	ev->nheap++;
	heap_sift_up(ev, ev->nheap - 1);
	return 0;
}

/* Take t out of the heap; t stays allocated. */
static void
heap_remove(struct event_loop *ev, struct event_timer *t)
{
	size_t i = t->idx;
	struct event_timer *last;

	ev->nheap--;
	last = ev->heap[ev->nheap];
	t->idx = EVENT_NOT_IN_HEAP;
	if (i == ev->nheap)
		return;
	heap_set(ev, i, last);
	if (i > 0 && timer_before(last, ev->heap[(i - 1) / 2]))
		heap_sift_up(ev, i);
	else
		heap_sift_down(ev, i);
}

/* --- loop --- */

struct event_loop *
event_new(void)
{
	struct event_loop *ev;

	ev = calloc(1, sizeof(*ev));
	if (ev == NULL)
		return NULL;
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ev->epfd < 0) {
		int saved = errno;

		free(ev);
		errno = saved;
		return NULL;
	}
	ev->now = util_mono_ms();
	return ev;
}

void
event_free(struct event_loop *ev)
{
	size_t i;

	if (ev == NULL)
		return;
	for (i = 0; i < ev->nheap; i++)
		free(ev->heap[i]);
	free(ev->heap);
	free(ev->w);
	util_closep(&ev->epfd);
	free(ev);
}

static int
watcher_grow(struct event_loop *ev, int fd)
{
	size_t n = ev->nw ? ev->nw : 64;
	struct watcher *nw;

	while (n <= (size_t)fd)
		n *= 2;
	if (n == ev->nw)
		return 0;
	nw = reallocarray(ev->w, n, sizeof(*nw));
	if (nw == NULL)
		return -ENOMEM;
	memset(nw + ev->nw, 0, (n - ev->nw) * sizeof(*nw));
	ev->w = nw;
	ev->nw = n;
	return 0;
}

static uint64_t
watcher_tag(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int
event_add(struct event_loop *ev, int fd, uint32_t events, event_fd_cb *cb,
    void *arg)
{
	struct epoll_event ee = { 0 };
	struct watcher *w;
	int r;

	if (fd < 0 || cb == NULL)
		return -EINVAL;
	r = watcher_grow(ev, fd);
	if (r < 0)
		return r;
	w = &ev->w[fd];
	if (w->is_active)
		return -EEXIST;
	ee.events = events;
	ee.data.u64 = watcher_tag(fd, w->gen + 1);
	if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
		return -errno;
	w->gen++;
	w->cb = cb;
	w->arg = arg;
	w->events = events;
	w->is_active = true;
	return 0;
}

int
event_mod(struct event_loop *ev, int fd, uint32_t events)
{
	struct epoll_event ee = { 0 };
	struct watcher *w;

	if (fd < 0 || (size_t)fd >= ev->nw || !ev->w[fd].is_active)
		return -ENOENT;
	w = &ev->w[fd];
	if (w->events == events)
		return 0; /* a reply per request would re-set EPOLLIN each time */
	ee.events = events;
	ee.data.u64 = watcher_tag(fd, w->gen);
	if (epoll_ctl(ev->epfd, EPOLL_CTL_MOD, fd, &ee) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void
event_del(struct event_loop *ev, int fd)
{
	struct watcher *w;

	if (ev == NULL || fd < 0 || (size_t)fd >= ev->nw ||
	    !ev->w[fd].is_active)
		return;
	w = &ev->w[fd];
	/* Fails only if fd was already closed; the kernel dropped it then. */
	(void)epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->gen++; /* invalidates events already fetched */
	w->cb = NULL;
	w->arg = NULL;
	w->events = 0;
	w->is_active = false;
}

struct event_timer *
event_timer_at(struct event_loop *ev, int64_t due_ms, event_timer_cb *cb,
    void *arg)
{
	struct event_timer *t;

	if (cb == NULL) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->due = due_ms;
	t->seq = ev->seq++;
	t->cb = cb;
	t->arg = arg;
	if (heap_push(ev, t) < 0) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

struct event_timer *
event_timer_in(struct event_loop *ev, int64_t delay_ms, event_timer_cb *cb,
    void *arg)
{
	int64_t due;

	if (delay_ms < 0)
		delay_ms = 0;
	if (__builtin_add_overflow(ev->now, delay_ms, &due))
		due = INT64_MAX;
	return event_timer_at(ev, due, cb, arg);
}

int64_t
event_timer_due(const struct event_timer *t)
{
	return t->due;
}

void
event_timer_cancel(struct event_loop *ev, struct event_timer **tp)
{
	struct event_timer *t;

	if (tp == NULL || *tp == NULL)
		return;
	t = *tp;
	*tp = NULL;
	if (t == ev->firing) {
		/* Its own callback: freed by fire_timers() when it returns. */
		t->is_cancelled = true;
		return;
	}
	if (t->idx != EVENT_NOT_IN_HEAP)
		heap_remove(ev, t);
	free(t);
}

int64_t
event_now_ms(struct event_loop *ev)
{
	return ev->now;
}

void
event_stop(struct event_loop *ev)
{
	ev->is_stopped = true;
}

/*
 * Fire every timer due at ev->now that existed when this pass began.
 * A timer is popped before its callback runs, so the callback sees a
 * consistent heap and may arm or cancel anything.
 */
static void
fire_timers(struct event_loop *ev)
{
	uint64_t seq_limit = ev->seq;

	while (ev->nheap > 0 && !ev->is_stopped) {
		struct event_timer *t = ev->heap[0];

		if (t->due > ev->now || t->seq >= seq_limit)
			break;
		heap_remove(ev, t);
		ev->firing = t;
		t->cb(ev, t->arg);
		ev->firing = NULL;
		free(t);
	}
}

/* ms until the first timer, 0 if one is due, -1 if there is none. */
static int
next_timeout(struct event_loop *ev)
{
	int64_t d;

	if (ev->nheap == 0)
		return -1;
	d = ev->heap[0]->due - util_mono_ms();
	if (d <= 0)
		return 0;
	return d > INT_MAX ? INT_MAX : (int)d;
}

static void
dispatch(struct event_loop *ev, const struct epoll_event *ee, int n)
{
	int i;

	for (i = 0; i < n && !ev->is_stopped; i++) {
		int fd = (int)(uint32_t)ee[i].data.u64;
		uint32_t gen = (uint32_t)(ee[i].data.u64 >> 32);
		struct watcher *w;

		if ((size_t)fd >= ev->nw)
			continue;
		w = &ev->w[fd];
		if (!w->is_active || w->gen != gen)
			continue; /* deleted by an earlier callback */
		/* cb may grow ev->w: do not touch w after the call. */
		w->cb(ev, fd, ee[i].events, w->arg);
	}
}

int
event_run(struct event_loop *ev)
{
	struct epoll_event ee[EVENT_BATCH];
	int n;

	ev->is_stopped = false;
	while (!ev->is_stopped) {
		ev->now = util_mono_ms();
		fire_timers(ev);
		if (ev->is_stopped)
			break;
		n = epoll_wait(ev->epfd, ee, EVENT_BATCH, next_timeout(ev));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* The wait may have been long: fd callbacks see fresh time. */
		ev->now = util_mono_ms();
		dispatch(ev, ee, n);
	}
	return 0;
}
