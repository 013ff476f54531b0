/*
 * notify.c - the store's change notifications on the loop (see
 * notify.h): read every change the backend has queued when its fd is
 * readable, reconnect on a timer when it is lost.
 *
 * Must never: block (notify_reconnect answers -EINPROGRESS until it is
 * connected, and is asked again 50 ms later), or drop the fd from the
 * epoll set after the backend closed it (it is unwatched first).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sodium.h>

#include "event.h"
#include "log.h"
#include "notify.h"
#include "refresh.h"
#include "store.h"

struct notify {
	struct event_loop *ev;
	struct store *st;
	notify_fn *fn;
	void *arg;
	int notify_fd;
	struct event_timer *notify_timer; /* reconnecting the notifications */
	unsigned notify_failures;
};

static void notify_cb(struct event_loop *ev, int fd, uint32_t revents,
    void *arg);

/* The notification connection was lost: reconnect without blocking. */
static void
notify_reconnect_cb(struct event_loop *ev, void *arg)
{
	struct notify *b = arg;
	int r;

	b->notify_timer = NULL;
	r = b->st->ops->notify_reconnect(b->st);
	if (r == 0) {
		b->notify_fd = b->st->ops->notify_fd(b->st);
		if (b->notify_fd >= 0 &&
		    event_add(ev, b->notify_fd, EPOLLIN, notify_cb, b) == 0) {
			b->notify_failures = 0;
			log_event_info("event=store_notify_reconnected",
			    "store notifications reconnected");
			return;
		}
		b->notify_fd = -1;
	}
	if (r != -EINPROGRESS)
		b->notify_failures++;
	b->notify_timer = event_timer_in(ev,
	    r == -EINPROGRESS ?
		50 :
		refresh_backoff(b->notify_failures, -1, randombytes_random()) *
		    1000,
	    notify_reconnect_cb, b);
}

static void
notify_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct notify *b = arg;
	char *name = NULL;
	int r;

	(void)revents;
	while ((r = b->st->ops->notify_next(b->st, &name)) > 0) {
		/* name NULL: reconnected, changes may have been missed. */
		b->fn(b->arg, name);
		free(name);
		name = NULL;
	}
	if (r < 0 && b->st->ops->notify_reconnect != NULL) {
		/* Unwatch before the reconnect closes the fd. */
		char f[128];

		(void)snprintf(f, sizeof(f), "event=store_notify_lost error=%s",
		    log_errno_name(-r));
		log_event_warn(f, "store notifications lost (%s); reconnecting",
		    strerror(-r));
		event_del(ev, fd);
		b->notify_fd = -1;
		if (b->notify_timer == NULL)
			b->notify_timer =
			    event_timer_in(ev, 100, notify_reconnect_cb, b);
	}
}

int
notify_new(struct event_loop *ev, struct store *st, notify_fn *fn, void *arg,
    struct notify **out)
{
	struct notify *b;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->ev = ev;
	b->st = st;
	b->fn = fn;
	b->arg = arg;
	b->notify_fd = -1;
	if (st->ops->notify_fd != NULL) {
		b->notify_fd = st->ops->notify_fd(st);
		if (b->notify_fd >= 0)
			(void)event_add(ev, b->notify_fd, EPOLLIN, notify_cb,
			    b);
	}
	*out = b;
	return 0;
}

void
notify_free(struct notify *b)
{
	if (b == NULL)
		return;
	if (b->notify_fd >= 0)
		event_del(b->ev, b->notify_fd);
	event_timer_cancel(b->ev, &b->notify_timer);
	free(b);
}
