/*
 * sessweep.h - the periodic check of the session table (session.h).
 *
 * Every [server] session_check seconds, on the loop: sessions idle for
 * [server] session_idle end, and expired secrets go. Then a snapshot of
 * the distinct (user, uid) bindings of sessions and secrets goes to a
 * thread of its own, which asks NSS whether each user name still names
 * its uid and scans /proc once for the uids of sessions that have a
 * live process left; back on the loop, sessions_apply ends what no
 * longer holds. The loop's share is O(sessions + secrets) per check;
 * the lookups and the scan, whose cost grows with the directory's speed
 * and the number of processes, never run on it. At most one check is in
 * flight: a slow directory delays the next check, never the loop.
 *
 * Every session credd ends is audited (session_end, with the reason).
 */
#ifndef CREDD_SESSWEEP_H
#define CREDD_SESSWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_loop;
struct sessions;
struct sessweep;

/* What the check thread asks the system; a test passes fakes. */
struct sessweep_ops {
	/*
	 * Check thread. uids sorted and distinct; set alive[i] to 1 when a
	 * process runs with uids[i] as its real or effective uid, else 0.
	 * 0, or -errno when no conclusion can be drawn (for example /proc
	 * hides other users' processes): then no session ends for it.
	 */
	int (*scan)(void *arg, const uid_t *uids, size_t n,
	    unsigned char *alive);
	/*
	 * Check thread. 1 when user still names uid, 0 when it no longer
	 * does (no such user, or another uid), -errno when the lookup failed
	 * (nothing ends on a failed lookup).
	 */
	int (*account)(void *arg, const char *user, uid_t uid);
	/* Loop thread: unix seconds (NULL: util_now). */
	int64_t (*now)(void *arg);
	void *arg;
};

/* /proc, getpwnam_r and the real clock. */
extern const struct sessweep_ops sessweep_system_ops;

struct sessweep_cfg {
	int64_t check_ms; /* between checks, > 0; also a new session's grace */
	int64_t idle_s;	  /* idle bound; 0: none */
	int liveness;	  /* end sessions whose uid has no live process */
};

/*
 * Arm the first check check_ms from now and start the thread. ss must
 * outlive the sweeper. 0 or -errno.
 */
int sessweep_new(struct event_loop *ev, struct sessions *ss,
    const struct sessweep_ops *ops, const struct sessweep_cfg *cfg,
    struct sessweep **out);
/* New settings (SIGHUP); the timer is re-armed only if check_ms changed. */
void sessweep_set_config(struct sessweep *sw, const struct sessweep_cfg *cfg);
/*
 * Stop: waits for a check in progress (an NSS call cannot be
 * interrupted), drops its result. NULL does nothing.
 */
void sessweep_free(struct sessweep *sw);
/*
 * Run a check now: idle sessions end at once, the lookups start on the
 * thread. 0, or -EBUSY while a check is in flight.
 */
int sessweep_run(struct sessweep *sw);
/* Checks completed since start. */
uint64_t sessweep_checks(const struct sessweep *sw);

/*
 * The /proc scan of sessweep_system_ops, on a directory given (tests):
 * proc_dir names a procfs mount. Same contract as ops->scan.
 */
int sessweep_proc_scan(const char *proc_dir, const uid_t *uids, size_t n,
    unsigned char *alive);

#endif
