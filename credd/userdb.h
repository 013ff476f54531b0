/*
 * userdb.h - user and group lookups (NSS) off the event loop.
 *
 * getpwuid_r, getpwnam_r and getgrnam_r may block for as long as the
 * directory behind NSS takes (LDAP, sssd, a slow DNS server behind
 * them). They run here on a few worker threads, never on the loop;
 * answers come back to the loop through an eventfd, like the store
 * thread's. Lookups of the same key in flight at once share one call.
 *
 * A bounded uid -> name cache answers the hot path (every accept).
 * Entries expire after a TTL (at most 60 s); failures and "no such
 * user" are never cached, so a new account is seen at once. Any lookup
 * that binds an identity (a consent, a session) asks afresh
 * (userdb_lookup_uid) rather than trusting the cache, so a uid that was
 * reused for another account never inherits a deleted account's name
 * for longer than the TTL, and never for a new consent.
 *
 * Buffers grow on ERANGE (a group with thousands of members is found,
 * not read as missing).
 *
 * Must never: run NSS on the loop thread, call a callback off the loop,
 * or cache a negative answer.
 */
#ifndef CREDD_USERDB_H
#define CREDD_USERDB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define USERDB_TTL_MAX_MS 60000
#define USERDB_NAME_MAX 256

struct event_loop;
struct userdb;
struct userdb_req;

/*
 * The answer, on the loop: result 0 with uid/gid and name (borrowed for
 * the call), -ENOENT when no such user or group exists, or another
 * -errno when the lookup itself failed (the directory is down). The
 * request is freed after the callback returns.
 */
typedef void userdb_cb(void *arg, int result, uid_t uid, gid_t gid,
    const char *name);

/*
 * threads workers (1..16), ttl_ms for cache entries (capped at
 * USERDB_TTL_MAX_MS), at most max_cached entries. 0 or -errno.
 */
int userdb_new(struct event_loop *ev, unsigned threads, int64_t ttl_ms,
    size_t max_cached, struct userdb **out);
/*
 * Cancel what is queued (no callbacks run), wait for lookups in progress
 * (an NSS call cannot be interrupted), stop the threads.
 */
void userdb_free(struct userdb *db);

/*
 * The cached name of uid, when an entry younger than the TTL exists:
 * copied into buf, 0. -ENOENT when not cached (ask userdb_lookup_uid),
 * -ENAMETOOLONG when buf is too small.
 */
int userdb_cached_name(struct userdb *db, uid_t uid, char *buf, size_t bufsz);

/*
 * Look up uid's passwd entry (getpwuid_r), refreshing the cache. NULL
 * on ENOMEM (no callback will run). cb runs later, never from here.
 */
struct userdb_req *userdb_lookup_uid(struct userdb *db, uid_t uid,
    userdb_cb *cb, void *arg);
/* The same by name (getpwnam_r); the answer also refreshes the cache. */
struct userdb_req *userdb_lookup_name(struct userdb *db, const char *name,
    userdb_cb *cb, void *arg);
/* A group by name (getgrnam_r): gid in the answer, name = the group. */
struct userdb_req *userdb_lookup_group(struct userdb *db, const char *group,
    userdb_cb *cb, void *arg);
/*
 * Start-up only (before the loop runs, or in a command): the gid of
 * group, looked up in this thread with the same buffer growth. 0,
 * -ENOENT, or -errno.
 */
int userdb_group_now(const char *group, gid_t *gid);
/* Forget a request: its callback will not run. NULL does nothing. */
void userdb_cancel(struct userdb *db, struct userdb_req *r);

struct userdb_stats {
	uint64_t lookups; /* NSS calls made */
	uint64_t cache_hits;
	uint64_t coalesced; /* requests that shared a call in flight */
	uint64_t failures;  /* lookups that failed (not "no such") */
	size_t cached;	    /* entries now */
	size_t in_flight;   /* calls queued or running */
};
void userdb_stats(const struct userdb *db, struct userdb_stats *st);

#endif
