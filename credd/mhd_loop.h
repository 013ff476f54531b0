/*
 * mhd_loop.h - a libmicrohttpd daemon in external-epoll mode driven by
 * credd's loop: its epoll fd watched with event_add, MHD_run when it is
 * ready or when the timer MHD_get_timeout asks for fires, and a "kick"
 * (run soon) after a suspended connection is resumed. Shared by the
 * HTTP listeners (the SDK endpoint, the metrics page, the sign-in
 * callback), which each embed one struct mhd_loop.
 *
 * Must never: block (MHD_run only handles what is ready), or run a
 * daemon after mhd_loop_stop.
 */
#ifndef CREDD_MHD_LOOP_H
#define CREDD_MHD_LOOP_H

#include <stddef.h>
#include <microhttpd.h>

struct event_loop;
struct event_timer;

/* A listener's MHD: external epoll, connections handed in, suspendable. */
#define MHD_LOOP_FLAGS                                                         \
	(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET)
#define MHD_LOOP_LIMITS_N 7

/*
 * The limits every listener sets, as an MHD_OPTION_ARRAY (ends with
 * MHD_OPTION_END): conn_timeout s of silence, memory bytes of request
 * line and headers per connection, max_conns in all, per_ip from one
 * address (0: no limit), strict parsing, SIGPIPE ignored by credd.
 */
void mhd_loop_limits(struct MHD_OptionItem items[MHD_LOOP_LIMITS_N],
    unsigned conn_timeout, size_t memory, unsigned max_conns, unsigned per_ip);

struct mhd_loop {
	struct event_loop *ev;
	struct MHD_Daemon *d;	   /* borrowed: the owner stops it */
	int epfd;		   /* MHD's epoll fd while watched, else -1 */
	struct event_timer *timer; /* MHD_get_timeout */
	struct event_timer *kick;  /* run soon */
	int is_stopped;
	/* A request's context ends (mhd_loop_completed); NULL: nothing. */
	void (*req_free)(void *req);
};

/*
 * Watch d's epoll fd on ev and run it once. ml is the caller's (zeroed
 * or not); 0, -EIO (no epoll fd: not MHD_USE_EPOLL) or event_add's
 * -errno (ml->epfd stays -1).
 */
int mhd_loop_start(struct mhd_loop *ml, struct event_loop *ev,
    struct MHD_Daemon *d);
/*
 * MHD_OPTION_NOTIFY_COMPLETED with ml as its argument: hands the
 * request's context to ml->req_free and clears it.
 */
void mhd_loop_completed(void *ml, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe);

/* Handle what is ready now and re-arm the timer. */
void mhd_loop_run(struct mhd_loop *ml);
/* Run soon from the loop (after MHD_resume_connection). */
void mhd_loop_kick(struct mhd_loop *ml);
/* Stop watching and cancel the timers; d is not stopped. Idempotent. */
void mhd_loop_stop(struct mhd_loop *ml);
/*
 * The end: let d send what was just resumed (one MHD_run, when it was
 * being run), stop watching, then stop d (NULL: none), which completes
 * every request and closes every connection.
 */
void mhd_loop_close(struct mhd_loop *ml, struct MHD_Daemon *d);

#endif
