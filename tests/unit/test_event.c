/*
 * test_event.c - event.c: timer order and FIFO ties, cancel and arm from
 * callbacks, pipe watchers, stale events after delete, event_stop, and
 * the heap order over 10000 random timers. Timers are armed in the past
 * (due <= now) so nothing waits on the clock.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "event.h"
#include "test.h"

#define NREC 16

struct rec {
	int order[NREC];
	int n;
};

struct targ {
	struct rec *rec;
	int id;
	struct event_timer **victim; /* cancel this one */
	struct targ *child;
	int is_last; /* stop the loop */
};

static void
on_timer(struct event_loop *ev, void *arg)
{
	struct targ *a = arg;

	if (a->rec->n < NREC)
		a->rec->order[a->rec->n++] = a->id;
	if (a->victim != NULL)
		event_timer_cancel(ev, a->victim);
	if (a->child != NULL)
		(void)event_timer_at(ev, event_now_ms(ev), on_timer, a->child);
	if (a->is_last)
		event_stop(ev);
}

TEST(timers_fire_in_due_order_fifo_ties)
{
	struct event_loop *ev = event_new();
	struct rec rec = { 0 };
	struct targ a[5];
	int64_t now;
	int i;

	ASSERT_TRUE(ev != NULL);
	now = event_now_ms(ev);
	for (i = 0; i < 5; i++)
		a[i] = (struct targ){ .rec = &rec, .id = i };
	a[4].is_last = 1;
	/* due order: 3 (now-30), then 0, 1, 2 tied at now-20, then 4. */
	ASSERT_TRUE(event_timer_at(ev, now - 20, on_timer, &a[0]) != NULL);
	ASSERT_TRUE(event_timer_at(ev, now - 20, on_timer, &a[1]) != NULL);
	ASSERT_TRUE(event_timer_at(ev, now - 10, on_timer, &a[4]) != NULL);
	ASSERT_TRUE(event_timer_at(ev, now - 20, on_timer, &a[2]) != NULL);
	ASSERT_TRUE(event_timer_at(ev, now - 30, on_timer, &a[3]) != NULL);
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(rec.n, 5);
	ASSERT_EQ(rec.order[0], 3);
	ASSERT_EQ(rec.order[1], 0);
	ASSERT_EQ(rec.order[2], 1);
	ASSERT_EQ(rec.order[3], 2);
	ASSERT_EQ(rec.order[4], 4);
	event_free(ev);
}

TEST(cancel_from_another_timer)
{
	struct event_loop *ev = event_new();
	struct rec rec = { 0 };
	struct event_timer *tb, *tnull = NULL;
	struct targ a = { .rec = &rec, .id = 1 };
	struct targ b = { .rec = &rec, .id = 2 };
	struct targ c = { .rec = &rec, .id = 3, .is_last = 1 };
	int64_t now;

	ASSERT_TRUE(ev != NULL);
	now = event_now_ms(ev);
	ASSERT_TRUE(event_timer_at(ev, now - 3, on_timer, &a) != NULL);
	tb = event_timer_at(ev, now - 2, on_timer, &b);
	ASSERT_TRUE(tb != NULL);
	ASSERT_TRUE(event_timer_at(ev, now - 1, on_timer, &c) != NULL);
	a.victim = &tb;
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_TRUE(tb == NULL);
	ASSERT_EQ(rec.n, 2);
	ASSERT_EQ(rec.order[0], 1);
	ASSERT_EQ(rec.order[1], 3);
	event_timer_cancel(ev, &tnull); /* NULL handle: no-op */
	event_timer_cancel(ev, NULL);
	event_free(ev);
}

struct self_cancel {
	struct event_timer *t;
	int fired;
};

static void
on_self_cancel(struct event_loop *ev, void *arg)
{
	struct self_cancel *s = arg;

	s->fired++;
	event_timer_cancel(ev, &s->t); /* itself, while firing */
	event_stop(ev);
}

TEST(timer_cancels_itself)
{
	struct event_loop *ev = event_new();
	struct self_cancel s = { 0 };

	ASSERT_TRUE(ev != NULL);
	s.t = event_timer_in(ev, 0, on_self_cancel, &s);
	ASSERT_TRUE(s.t != NULL);
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(s.fired, 1);
	ASSERT_TRUE(s.t == NULL);
	event_free(ev);
}

TEST(timer_added_due_now_fires_in_same_run)
{
	struct event_loop *ev = event_new();
	struct rec rec = { 0 };
	struct targ child = { .rec = &rec, .id = 2, .is_last = 1 };
	struct targ parent = { .rec = &rec, .id = 1, .child = &child };

	ASSERT_TRUE(ev != NULL);
	ASSERT_TRUE(event_timer_in(ev, 0, on_timer, &parent) != NULL);
	/* A pending far timer must not delay the child. */
	ASSERT_TRUE(event_timer_in(ev, 3600 * 1000, on_timer, &parent) != NULL);
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(rec.n, 2);
	ASSERT_EQ(rec.order[0], 1);
	ASSERT_EQ(rec.order[1], 2);
	event_free(ev); /* frees the far timer */
}

struct pipe_ctx {
	int rfd;
	int reads;
	uint32_t revents;
};

static void
on_readable(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct pipe_ctx *p = arg;
	char buf[8];

	p->revents = revents;
	if (read(fd, buf, sizeof(buf)) > 0)
		p->reads++;
	event_stop(ev);
}

TEST(fd_watcher_on_pipe)
{
	struct event_loop *ev = event_new();
	struct pipe_ctx p = { 0 };
	int fds[2];

	ASSERT_TRUE(ev != NULL);
	ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	p.rfd = fds[0];
	ASSERT_EQ(event_add(ev, fds[0], EPOLLIN, on_readable, &p), 0);
	ASSERT_ERR(event_add(ev, fds[0], EPOLLIN, on_readable, &p), -EEXIST);
	ASSERT_ERR(event_mod(ev, fds[1], EPOLLOUT), -ENOENT);
	ASSERT_EQ(event_mod(ev, fds[0], EPOLLIN), 0);
	ASSERT_EQ(write(fds[1], "x", 1), 1);
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(p.reads, 1);
	ASSERT_TRUE(p.revents & EPOLLIN);
	event_del(ev, fds[0]);
	event_del(ev, fds[0]); /* twice: no-op */
	event_del(ev, 12345);  /* unknown: no-op */
	close(fds[0]);
	close(fds[1]);
	event_free(ev);
}

/*
 * Two readable pipes in one batch. Whichever callback runs first deletes
 * the other watcher, closes that fd, puts a fresh (empty) pipe on the same
 * fd number and watches it with a different callback. The event already
 * fetched for the old fd must reach neither callback.
 */
struct stale_ctx {
	struct event_loop *ev;
	int rfd[2];
	int wfd[2];
	int extra_w;
	int first_calls;
	int wrong_calls;
};

static void
on_wrong(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct stale_ctx *s = arg;

	s->wrong_calls++;
}

static void
on_stop(struct event_loop *ev, void *arg)
{
	event_stop(ev);
}

static void
on_first(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct stale_ctx *s = arg;
	int other = s->rfd[0] == fd ? s->rfd[1] : s->rfd[0];
	int np[2];

	s->first_calls++;
	if (s->first_calls > 1)
		return;
	event_del(ev, other);
	close(other);
	if (pipe2(np, O_CLOEXEC | O_NONBLOCK) < 0)
		return;
	if (np[0] != other) {
		(void)dup3(np[0], other, O_CLOEXEC);
		close(np[0]);
	}
	s->extra_w = np[1];
	(void)event_add(ev, other, EPOLLIN, on_wrong, s);
	/* Stop at the next iteration, after this batch is done. */
	(void)event_timer_in(ev, 0, on_stop, NULL);
}

TEST(deleted_watcher_gets_no_stale_event)
{
	struct event_loop *ev = event_new();
	struct stale_ctx s = { .extra_w = -1 };
	int i, fds[2];

	ASSERT_TRUE(ev != NULL);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
		s.rfd[i] = fds[0];
		s.wfd[i] = fds[1];
		ASSERT_EQ(write(fds[1], "x", 1), 1);
		ASSERT_EQ(event_add(ev, fds[0], EPOLLIN, on_first, &s), 0);
	}
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(s.first_calls, 1);
	ASSERT_EQ(s.wrong_calls, 0);
	for (i = 0; i < 2; i++) {
		event_del(ev, s.rfd[i]);
		close(s.rfd[i]);
		close(s.wfd[i]);
	}
	close(s.extra_w);
	event_free(ev);
}

static void
on_count(struct event_loop *ev, void *arg)
{
	(*(int *)arg)++;
}

TEST(stop_ends_run_and_later_timers_wait)
{
	struct event_loop *ev = event_new();
	int later = 0;
	int64_t now;

	ASSERT_TRUE(ev != NULL);
	now = event_now_ms(ev);
	ASSERT_TRUE(event_timer_at(ev, now - 1, on_stop, NULL) != NULL);
	ASSERT_TRUE(
	    event_timer_at(ev, now + 3600 * 1000, on_count, &later) != NULL);
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(later, 0);
	/* Running again works: a new stop timer ends it again. */
	ASSERT_TRUE(event_timer_in(ev, 0, on_stop, NULL) != NULL);
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(later, 0);
	ASSERT_TRUE(event_now_ms(ev) >= now);
	event_free(ev);
}

static void
on_rearm(struct event_loop *ev, void *arg)
{
	(*(int *)arg)++;
	(void)event_timer_in(ev, 0, on_rearm, arg);
}

/* A timer that re-arms itself "now" forever must not starve the fds. */
TEST(rearming_timer_does_not_starve_fds)
{
	struct event_loop *ev = event_new();
	struct pipe_ctx p = { 0 };
	int fds[2], spins = 0;

	ASSERT_TRUE(ev != NULL);
	ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	ASSERT_EQ(event_add(ev, fds[0], EPOLLIN, on_readable, &p), 0);
	ASSERT_EQ(write(fds[1], "x", 1), 1);
	ASSERT_TRUE(event_timer_in(ev, 0, on_rearm, &spins) != NULL);
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(p.reads, 1);
	ASSERT_TRUE(spins >= 1 && spins <= 2);
	event_del(ev, fds[0]);
	close(fds[0]);
	close(fds[1]);
	event_free(ev); /* frees the pending re-armed timer */
}

#define NMANY 10000

struct many {
	int64_t last_due;
	int last_idx;
	int fired;
	int bad;
	int64_t due[NMANY];
	int idx[NMANY];
	struct event_timer *t[NMANY];
};

static struct many *many;

static void
on_many(struct event_loop *ev, void *arg)
{
	struct many *m = many;
	int i = *(int *)arg;

	/* Non-decreasing due; equal due -> insertion (index) order. */
	if (m->fired > 0 &&
	    (m->due[i] < m->last_due ||
		(m->due[i] == m->last_due && i < m->last_idx)))
		m->bad++;
	m->last_due = m->due[i];
	m->last_idx = i;
	m->t[i] = NULL;
	m->fired++;
	if (m->fired == NMANY - NMANY / 10)
		event_stop(ev);
}

TEST(many_random_timers_fire_in_order)
{
	struct many *m = calloc(1, sizeof(*m));
	struct event_loop *ev = event_new();
	int64_t now;
	int i;

	ASSERT_TRUE(m != NULL && ev != NULL);
	many = m;
	srand(42);
	now = event_now_ms(ev);
	for (i = 0; i < NMANY; i++) {
		/* Small range: many ties. All in the past. */
		m->due[i] = now - 1 - rand() % 5000;
		m->idx[i] = i;
		m->t[i] = event_timer_at(ev, m->due[i], on_many, &m->idx[i]);
		ASSERT_TRUE(m->t[i] != NULL);
	}
	/* Cancel every tenth timer, from the middle of the heap. */
	for (i = 0; i < NMANY; i += 10)
		event_timer_cancel(ev, &m->t[i]);
	ASSERT_EQ(event_run(ev), 0);
	ASSERT_EQ(m->fired, NMANY - NMANY / 10);
	ASSERT_EQ(m->bad, 0);
	for (i = 0; i < NMANY; i++)
		ASSERT_TRUE(m->t[i] == NULL);
	event_free(ev);
	free(m);
}

int
main(void)
{
	RUN(timers_fire_in_due_order_fifo_ties);
	RUN(cancel_from_another_timer);
	RUN(timer_cancels_itself);
	RUN(timer_added_due_now_fires_in_same_run);
	RUN(fd_watcher_on_pipe);
	RUN(deleted_watcher_gets_no_stale_event);
	RUN(stop_ends_run_and_later_timers_wait);
	RUN(rearming_timer_does_not_starve_fds);
	RUN(many_random_timers_fire_in_order);
	TEST_MAIN_END();
}
