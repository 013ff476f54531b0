/*
 * event.h - a small epoll loop: fd watchers and timers.
 *
 * Single-threaded: every callback runs on the loop thread. Timers are
 * kept in a binary min-heap keyed by due time (monotonic ms), so arming
 * and cancelling are O(log n); thousands of timers (one per connection
 * idle timeout, curl, device polls, refresh) are fine. A callback may
 * add, modify or delete any watcher or timer, itself included.
 */
#ifndef CREDD_EVENT_H
#define CREDD_EVENT_H

#include <stdint.h>

struct event_loop;
struct event_timer;

/* events: EPOLLIN / EPOLLOUT bits (sys/epoll.h); revents as returned. */
typedef void event_fd_cb(struct event_loop *ev, int fd, uint32_t revents,
    void *arg);
typedef void event_timer_cb(struct event_loop *ev, void *arg);

/* NULL on failure (errno set). */
struct event_loop *event_new(void);
void event_free(struct event_loop *ev);

/* Watch fd for events. One watcher per fd. 0 or -errno. */
int event_add(struct event_loop *ev, int fd, uint32_t events, event_fd_cb *cb,
    void *arg);
/* Change fd's events; no system call when they are what they were. */
int event_mod(struct event_loop *ev, int fd, uint32_t events);
/* Stop watching (call before close(fd)). Unknown fd is not an error. */
void event_del(struct event_loop *ev, int fd);

/*
 * One-shot timer due at monotonic time due_ms. Returns a handle owned by
 * the loop until it fires or is cancelled; NULL on ENOMEM. After it fires
 * the handle is invalid.
 */
struct event_timer *event_timer_at(struct event_loop *ev, int64_t due_ms,
    event_timer_cb *cb, void *arg);
struct event_timer *event_timer_in(struct event_loop *ev, int64_t delay_ms,
    event_timer_cb *cb, void *arg);
/* When t is due (monotonic ms); t must be armed (not fired or cancelled). */
int64_t event_timer_due(const struct event_timer *t);
/* Cancel and free; *t set to NULL. NULL or *t == NULL does nothing. */
void event_timer_cancel(struct event_loop *ev, struct event_timer **t);

/* Cached monotonic ms, refreshed once per loop iteration. */
int64_t event_now_ms(struct event_loop *ev);

/* Run until event_stop(). Returns 0, or -errno on a fatal epoll error. */
int event_run(struct event_loop *ev);
void event_stop(struct event_loop *ev);

#endif
