/*
 * ready.c - service notification to systemd (see ready.h).
 *
 * Must never: call sd_notify when NOTIFY_SOCKET was not given (nothing
 * changes without it), or send a STATUS= that names a user.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "event.h"
#include "log.h"
#include "ready.h"

#define READY_STATUS_MS 5000 /* STATUS= looked at this often */
#define READY_STATUS_MAX 200

struct ready {
	struct event_loop *ev;
	const struct ready_ops *ops;
	void *ops_arg;
	int is_enabled, is_stopping;
	uint64_t watchdog_usec; /* 0: no watchdog */
	ready_status_fn *status_fn;
	void *arg;
	struct event_timer *timer;
	char last[READY_STATUS_MAX];
	unsigned failures; /* sends that failed, logged once */
};

static int
systemd_notify(void *arg, const char *msg)
{
	(void)arg;
	return sd_notify(0, msg);
}

static int
systemd_watchdog(void *arg, uint64_t *usec)
{
	(void)arg;
	return sd_watchdog_enabled(0, usec);
}

const struct ready_ops ready_systemd_ops = { systemd_notify, systemd_watchdog };

static void
send_msg(struct ready *r, const char *msg)
{
	int rc;

	rc = r->ops->notify(r->ops_arg, msg);
	if (rc < 0 && r->failures++ == 0)
		log_warnx("sd_notify: %s (further failures not logged)",
		    strerror(-rc));
}

void
ready_status(struct ready *r, const char *text)
{
	char msg[READY_STATUS_MAX + 8];

	if (r == NULL || !r->is_enabled || strcmp(text, r->last) == 0)
		return;
	snprintf(r->last, sizeof(r->last), "%s", text);
	snprintf(msg, sizeof(msg), "STATUS=%s", r->last);
	send_msg(r, msg);
}

static void
status_now(struct ready *r)
{
	char text[READY_STATUS_MAX];

	text[0] = '\0';
	r->status_fn(r->arg, text, sizeof(text));
	ready_status(r, text);
}

int64_t
ready_period_ms(const struct ready *r)
{
	int64_t ms;

	if (r == NULL || !r->is_enabled)
		return 0;
	ms = READY_STATUS_MS;
	if (r->watchdog_usec > 0 && (int64_t)(r->watchdog_usec / 2000) < ms)
		ms = (int64_t)(r->watchdog_usec / 2000);
	return ms > 0 ? ms : 1;
}

static void
tick_cb(struct event_loop *ev, void *arg)
{
	struct ready *r = arg;

	r->timer = NULL;
	if (r->is_stopping)
		return;
	/* From the loop: a hung loop stops the pings, systemd restarts us. */
	if (r->watchdog_usec > 0)
		send_msg(r, "WATCHDOG=1");
	status_now(r);
	r->timer = event_timer_in(ev, ready_period_ms(r), tick_cb, r);
	if (r->timer == NULL)
		log_warnx("sd_notify: no memory for the watchdog timer");
}

int
ready_new(struct event_loop *ev, const struct ready_ops *ops, void *ops_arg,
    int is_enabled, ready_status_fn *status_fn, void *arg, struct ready **out)
{
	struct ready *r;
	uint64_t usec = 0;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->ev = ev;
	r->ops = ops;
	r->ops_arg = ops_arg;
	r->is_enabled = is_enabled;
	r->status_fn = status_fn;
	r->arg = arg;
	if (is_enabled && ops->watchdog(ops_arg, &usec) > 0)
		r->watchdog_usec = usec;
	*out = r;
	return 0;
}

void
ready_serving(struct ready *r)
{
	char text[READY_STATUS_MAX], msg[READY_STATUS_MAX + 16];

	if (r == NULL || !r->is_enabled)
		return;
	text[0] = '\0';
	r->status_fn(r->arg, text, sizeof(text));
	snprintf(r->last, sizeof(r->last), "%s", text);
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", r->last);
	send_msg(r, msg);
	if (r->watchdog_usec > 0)
		log_info("systemd watchdog: pinging every %lld ms",
		    (long long)ready_period_ms(r));
	r->timer = event_timer_in(r->ev, ready_period_ms(r), tick_cb, r);
	if (r->timer == NULL)
		log_warnx("sd_notify: no memory for the watchdog timer");
}

void
ready_stopping(struct ready *r)
{
	if (r == NULL || !r->is_enabled || r->is_stopping)
		return;
	r->is_stopping = 1;
	event_timer_cancel(r->ev, &r->timer);
	snprintf(r->last, sizeof(r->last), "stopping");
	send_msg(r, "STOPPING=1\nSTATUS=stopping");
}

void
ready_free(struct ready *r)
{
	if (r == NULL)
		return;
	event_timer_cancel(r->ev, &r->timer);
	free(r);
}
