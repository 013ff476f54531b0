/*
 * ready.h - credd's side of systemd's service notification (Type=notify,
 * sd_notify(3)): READY=1 once it serves, STATUS= lines when what it
 * reports changes, WATCHDOG=1 from the loop at half of WATCHDOG_USEC,
 * STOPPING=1 on the way out. Nothing happens without NOTIFY_SOCKET.
 *
 * The pings come from a loop timer, so a loop that hangs stops them and
 * systemd's watchdog restarts credd (WatchdogSec= in credd.service).
 *
 * Must never: put a user name or anything secret in a STATUS= line
 * (systemctl status shows it to every user), or block (sd_notify sends
 * one datagram, non-blocking).
 */
#ifndef CREDD_READY_H
#define CREDD_READY_H

#include <stddef.h>
#include <stdint.h>

struct event_loop;
struct ready;

/* libsystemd, behind an ops struct so tests can listen instead. */
struct ready_ops {
	/* sd_notify(0, msg): > 0 sent, 0 no NOTIFY_SOCKET, -errno. */
	int (*notify)(void *arg, const char *msg);
	/* sd_watchdog_enabled(0, usec): > 0 with *usec, 0 off, -errno. */
	int (*watchdog)(void *arg, uint64_t *usec);
};
extern const struct ready_ops ready_systemd_ops;

/* The STATUS= text now (e.g. "serving, 3 users; healthy"), into buf. */
typedef void ready_status_fn(void *arg, char *buf, size_t size);

/*
 * is_enabled: NOTIFY_SOCKET was given (procenv); when 0 nothing is ever
 * sent and no timer runs. status_fn and arg are borrowed. The timer
 * starts at ready_serving. 0 or -ENOMEM.
 */
int ready_new(struct event_loop *ev, const struct ready_ops *ops, void *ops_arg,
    int is_enabled, ready_status_fn *status_fn, void *arg, struct ready **out);
/* READY=1 with the first STATUS=, then the watchdog and status timer. */
void ready_serving(struct ready *r);
/* STATUS=text now (a reload, a shutdown), if it differs from the last. */
void ready_status(struct ready *r, const char *text);
/* STOPPING=1 and a last STATUS=; the timer stops. */
void ready_stopping(struct ready *r);
/* The timer's period in ms (0: none): half of WATCHDOG_USEC, at most
 * READY_STATUS_MS. For tests. */
int64_t ready_period_ms(const struct ready *r);
void ready_free(struct ready *r);

#endif
