/*
 * session.h - open PAM sessions (session_open / session_close).
 *
 * In memory only: a session id (128 random bits, hex) bound to a user
 * and uid, with the service, tty and workload for status and audit. The
 * consent outlives sessions; this table only counts them.
 *
 * With the SDK endpoint ([msi] listen) it also holds the endpoint
 * secrets (IDENTITY_HEADER): 256 random bits as 64 hex digits, each
 * bound at minting to one uid and user name (the name credd resolved
 * for that uid when it minted it), with an expiry; minted by
 * session_open (and ended with its session) or by sdk_env (credctl env;
 * at most a configured number per uid, the oldest evicted). Presented
 * secrets are compared in constant time with every live one. Secrets
 * are kept in struct secret and wiped when they end; they are never
 * logged.
 *
 * Sessions end by session_close, or by credd: when idle (neither opened
 * nor their secret presented for [server] session_idle), or when a
 * check finds that their uid has no live process left or that their
 * user name no longer names their uid (a deleted account whose uid was
 * reused). That check runs off the loop (sessweep.c) on a snapshot of
 * the table: sessions_snapshot copies the (user, uid) bindings out,
 * another thread fills in the answers, sessions_apply acts on them. A
 * secret ends with its session; an sdk_env secret ends when its binding
 * no longer holds.
 */
#ifndef CREDD_SESSION_H
#define CREDD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SESSION_ID_LEN 32
#define SESSION_SECRET_LEN 64 /* hex digits: 256 random bits */

struct sessions;

/* Why credd ended sessions, counted for stats. */
struct sessions_counters {
	uint64_t ended_idle;	   /* session_idle passed without use */
	uint64_t ended_no_process; /* their uid had no live process left */
	uint64_t ended_account;	   /* the user no longer names that uid */
	uint64_t dropped; /* a session_open that failed or was abandoned */
	uint64_t secrets_ended_account; /* sdk_env secrets of such bindings */
	uint64_t ended_cgroup; /* their bound cgroup emptied or went away */
};

/*
 * Called for each session credd ends (not for session_close), before it
 * is freed: reason is "idle", "no_process" or "account_gone". Borrowed
 * strings; service may be NULL.
 */
typedef void sessions_end_fn(void *arg, const char *user, uid_t uid,
    const char *service, const char *reason);
/* A sessions_end_fn that writes the session_end audit record (arg unused). */
void sessions_audit_end(void *arg, const char *user, uid_t uid,
    const char *service, const char *reason);

struct sessions *sessions_new(void);
/* Ends every session and wipes every secret. NULL does nothing. */
void sessions_free(struct sessions *ss);
/*
 * New session opened at now; id receives SESSION_ID_LEN hex chars + NUL.
 * 0 or -ENOMEM.
 */
int sessions_open(struct sessions *ss, const char *user, uid_t uid,
    const char *service, const char *tty, const char *workload, int64_t now,
    char id[SESSION_ID_LEN + 1]);
/* -ENOENT if no such session for this user. Its secret ends with it. */
int sessions_close(struct sessions *ss, const char *user, const char *id);
/*
 * End a session nobody will close: its session_open failed, or its
 * caller went away before the reply. Counted as dropped. -ENOENT if none.
 */
int sessions_drop(struct sessions *ss, const char *id);
size_t sessions_count(const struct sessions *ss);
const struct sessions_counters *sessions_counters(const struct sessions *ss);

/*
 * Mint an endpoint secret for (user, uid), alive until now + ttl. With
 * session set (an open session's id) it is that session's and ends with
 * it (user and uid are then the session's; -ENOENT when no such
 * session). Without, it is an sdk_env secret, and a uid holding
 * max_per_uid of those loses its oldest. out receives
 * SESSION_SECRET_LEN hex digits + NUL (the caller wipes it);
 * *expires_on the expiry. 0, -ENOENT or -ENOMEM.
 */
int sessions_secret_mint(struct sessions *ss, const char *user, uid_t uid,
    const char *session, int64_t now, int64_t ttl, size_t max_per_uid,
    char out[SESSION_SECRET_LEN + 1], int64_t *expires_on);
/*
 * Check a presented secret (len bytes, need not be NUL-terminated)
 * against every live one in constant time. 0 with *uid and *user
 * (borrowed: valid until the table changes), and the secret's session
 * counts as used at now; -EKEYEXPIRED for a secret past its expiry
 * (then dropped); -ENOENT for an unknown one (never minted, or ended:
 * with its session, or because its binding no longer held). The caller
 * checks that the presenting peer's uid is *uid.
 */
int sessions_secret_check(struct sessions *ss, const char *presented,
    size_t len, int64_t now, uid_t *uid, const char **user);
/*
 * The secret of an open session (for a deferred session_open reply):
 * copies it into out and its expiry into *expires_on. -ENOENT if none.
 */
int sessions_secret_of(const struct sessions *ss, const char *session,
    char out[SESSION_SECRET_LEN + 1], int64_t *expires_on);
/* Live secrets (for stats). */
size_t sessions_secret_count(const struct sessions *ss);

/*
 * End sessions idle since now - idle (idle <= 0: no idle bound) with
 * their secrets, and drop secrets past their expiry. O(sessions +
 * secrets). fn (may be NULL) hears of each session ended. Returns the
 * number of sessions ended.
 */
size_t sessions_expire(struct sessions *ss, int64_t now, int64_t idle,
    sessions_end_fn *fn, void *arg);

/* One distinct (user, uid) binding of a snapshot, and what a check found. */
struct sessions_binding {
	char *user; /* owned by the snapshot */
	uid_t uid;
	int has_session; /* a session (not only sdk_env secrets) uses it */
	int account;	 /* 1 user still names uid, 0 no longer, <0 unknown */
	int alive;	 /* 1 uid has a live process, 0 none, <0 unknown */
};

struct sessions_snapshot {
	struct sessions_binding *b; /* sorted by (uid, user), distinct */
	size_t n;
	int64_t taken; /* the now it was taken at */
};

/*
 * Copy out the distinct bindings of every session and secret, sorted,
 * with account and alive unknown (-1). 0 or -ENOMEM (out cleared).
 */
int sessions_snapshot(const struct sessions *ss, int64_t now,
    struct sessions_snapshot *out);
void sessions_snapshot_clear(struct sessions_snapshot *snap);
/*
 * Act on a checked snapshot. Only what existed when it was taken is
 * judged (opened or minted at or before snap->taken):
 *   - account == 0: the session or secret ends ("account_gone");
 *   - alive == 0: a session opened at or before snap->taken - grace
 *     ends ("no_process"); a new session gets grace seconds for its
 *     processes to start.
 * Unknown answers (< 0) end nothing. Returns the sessions ended.
 */
size_t sessions_apply(struct sessions *ss, const struct sessions_snapshot *snap,
    int64_t grace, sessions_end_fn *fn, void *arg);

/*
 * ---- cgroup bindings (issue 14; ident.h decides, this only records) ----
 * A session is bound to a cgroup v2 path (a caller in it or below it is
 * that session's user, whatever its uid) or known by uid, with why it
 * could not be bound. kind is a workload kind index (workload.h); the
 * table does not interpret it. A bound session does not end for lack of
 * a process of its uid: it ends when its cgroup empties or goes
 * (sessions_end_cgroup), is closed, or idles out.
 */
struct sessions_info {
	const char *id, *user, *cgroup, *why, *service; /* borrowed */
	uid_t uid;
	int kind;
};

/*
 * Bind session id to cgroup (NULL: known by uid, why says why; a static
 * string) with workload kind. 0, -ENOENT or -ENOMEM.
 */
int sessions_set_binding(struct sessions *ss, const char *id, int kind,
    const char *cgroup, const char *why);
/*
 * The session bound to the innermost cgroup that holds path (path or
 * an ancestor). 0 with *out (borrowed: valid until the table changes),
 * or -ENOENT. O(sessions).
 */
int sessions_bound_find(const struct sessions *ss, const char *path,
    struct sessions_info *out);
/* Session id's facts. 0 or -ENOENT. */
int sessions_info(const struct sessions *ss, const char *id,
    struct sessions_info *out);
/* The user of a session bound to exactly cgroup. 0 or -ENOENT. */
int sessions_cgroup_user(const struct sessions *ss, const char *cgroup,
    const char **user);
/*
 * The kinds (and ids, when ids is not NULL) of uid's live sessions that
 * are not bound, up to max. Returns how many were stored.
 */
size_t sessions_unbound_kinds(const struct sessions *ss, uid_t uid, int *kinds,
    size_t max, const char **ids);
/*
 * The kinds of all of uid's live sessions, bound or not, up to max
 * (the SDK endpoint cannot tell which cgroup a TCP caller is in).
 */
size_t sessions_all_kinds(const struct sessions *ss, uid_t uid, int *kinds,
    size_t max);
/*
 * The workload kind of the session that owns a presented secret (in
 * constant time, as sessions_secret_check). 0 with *kind, or -ENOENT
 * (unknown, or an sdk_env secret that belongs to no session).
 */
int sessions_secret_kind(const struct sessions *ss, const char *presented,
    size_t len, int *kind);
/*
 * End every session bound to exactly cgroup (fn hears each); with
 * keep_service set, not those of that service (admin binds, "bind",
 * outlive their cgroup emptying: only its removal or unbind ends them).
 */
size_t sessions_end_cgroup(struct sessions *ss, const char *cgroup,
    const char *keep_service, const char *reason, sessions_end_fn *fn,
    void *arg);
typedef void sessions_each_fn(void *arg, const struct sessions_info *in);
/* Call fn for each bound session; returns how many there are. */
size_t sessions_list_bound(const struct sessions *ss, sessions_each_fn *fn,
    void *arg);

#endif
