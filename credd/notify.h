/*
 * notify.h - the store's cluster change notifications on the event loop
 * (DESIGN.md §6: LISTEN/NOTIFY tells the other nodes to drop cached
 * tokens when a user logs out, is revoked or consents again).
 *
 * Watches the backend's notify_fd and hands every change to a callback:
 * the name of a user another node changed, or NULL once a lost
 * connection is back (changes may have been missed meanwhile). A lost
 * connection is reconnected on a timer, without blocking, with backoff.
 * What a change means (reload the user, forget what is cached) is the
 * callback's business, not this file's.
 */
#ifndef CREDD_NOTIFY_H
#define CREDD_NOTIFY_H

struct event_loop;
struct store;
struct notify;

/* Another node changed user name; NULL: reconnected, anything may have. */
typedef void notify_fn(void *arg, const char *name);

/*
 * Watch st's notifications (a backend without them is fine: nothing is
 * ever reported). st, fn and arg are borrowed and must outlive *out.
 * 0 or -ENOMEM.
 */
int notify_new(struct event_loop *ev, struct store *st, notify_fn *fn,
    void *arg, struct notify **out);
/* Stop watching; NULL is fine. */
void notify_free(struct notify *n);

#endif
