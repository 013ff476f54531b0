/*
 * mhd_loop.c - libmicrohttpd on credd's loop (see mhd_loop.h).
 *
 * Must never: block, or leave a timer armed on a stopped loop.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <microhttpd.h>

#include "event.h"
#include "mhd_loop.h"

static void
timer_cb(struct event_loop *ev, void *arg)
{
	struct mhd_loop *ml = arg;

	(void)ev;
	ml->timer = NULL;
	mhd_loop_run(ml);
}

static void
kick_cb(struct event_loop *ev, void *arg)
{
	struct mhd_loop *ml = arg;

	(void)ev;
	ml->kick = NULL;
	mhd_loop_run(ml);
}

static void
epoll_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	(void)ev;
	(void)fd;
	(void)revents;
	mhd_loop_run(arg);
}

void
mhd_loop_run(struct mhd_loop *ml)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (ml->is_stopped)
		return;
	(void)MHD_run(ml->d);
	event_timer_cancel(ml->ev, &ml->timer);
	if (MHD_get_timeout(ml->d, &t) == MHD_YES)
		ml->timer = event_timer_in(ml->ev,
		    t > INT32_MAX ? INT32_MAX : (int64_t)t, timer_cb, ml);
}

void
mhd_loop_limits(struct MHD_OptionItem items[MHD_LOOP_LIMITS_N],
    unsigned conn_timeout, size_t memory, unsigned max_conns, unsigned per_ip)
{
	const struct MHD_OptionItem v[MHD_LOOP_LIMITS_N] = {
		{ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)conn_timeout, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)memory, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, (intptr_t)max_conns, NULL },
		{ MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)per_ip, NULL },
		{ MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL },
		{ MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	size_t i;

	for (i = 0; i < MHD_LOOP_LIMITS_N; i++)
		items[i] = v[i];
}

void
mhd_loop_completed(void *arg, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct mhd_loop *ml = arg;

	(void)conn;
	(void)toe;
	if (ml->req_free != NULL && *con_cls != NULL)
		ml->req_free(*con_cls);
	*con_cls = NULL;
}

void
mhd_loop_kick(struct mhd_loop *ml)
{
	if (ml->kick == NULL && !ml->is_stopped)
		ml->kick = event_timer_in(ml->ev, 0, kick_cb, ml);
}

int
mhd_loop_start(struct mhd_loop *ml, struct event_loop *ev, struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *di;
	int r;

	ml->ev = ev;
	ml->d = d;
	ml->epfd = -1;
	ml->timer = NULL;
	ml->kick = NULL;
	ml->is_stopped = 0;
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL)
		return -EIO;
	r = event_add(ev, di->epoll_fd, EPOLLIN, epoll_cb, ml);
	if (r < 0)
		return r;
	ml->epfd = di->epoll_fd;
	mhd_loop_run(ml);
	return 0;
}

void
mhd_loop_stop(struct mhd_loop *ml)
{
	if (ml->ev == NULL)
		return;
	if (ml->epfd >= 0)
		event_del(ml->ev, ml->epfd);
	ml->epfd = -1;
	event_timer_cancel(ml->ev, &ml->timer);
	event_timer_cancel(ml->ev, &ml->kick);
	ml->is_stopped = 1;
}

void
mhd_loop_close(struct mhd_loop *ml, struct MHD_Daemon *d)
{
	if (d != NULL && ml->ev != NULL && !ml->is_stopped)
		(void)MHD_run(d);
	mhd_loop_stop(ml);
	if (d != NULL)
		MHD_stop_daemon(d);
}
