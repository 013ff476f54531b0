/*
 * resolve.h - host-name lookups off the event loop, for http.c.
 *
 * libcurl's threaded resolver starts one thread per lookup and, in the
 * 7.88 that Debian 12 ships, joins it when a transfer is removed while
 * the lookup runs (multi_done -> Curl_resolver_kill): a 6 s DNS server
 * froze the loop. Here a bounded pool of RESOLVE_WORKERS threads runs the
 * blocking getaddrinfo; one lookup per host:port runs at a time, however
 * many requests wait for it; answers come back to the loop through an
 * eventfd and are cached, and http.c hands them to libcurl as
 * CURLOPT_RESOLVE entries, so libcurl finds the name in its own cache and
 * never starts a resolver thread of its own.
 *
 * A cached answer is fresh for RESOLVE_FRESH_MS (libcurl's own DNS cache
 * time). After that it is still served, at once, for up to
 * RESOLVE_STALE_MS while a lookup in the background replaces it (serve
 * stale, RFC 8767), so a slow DNS server delays no request once the name
 * was known, and a DNS outage does not cut credd off from an IdP it can
 * still reach. A name the DNS says does not exist is dropped at once.
 *
 * Must never: block the loop (the loop takes the mutex only to move list
 * heads), run a callback off the loop or inside resolve_lookup, join a
 * thread that may be inside a lookup, or start more than RESOLVE_WORKERS
 * threads. A lookup stuck for ever costs one worker and makes the
 * requests that wait for its name time out; nothing else.
 */
#ifndef CREDD_RESOLVE_H
#define CREDD_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

struct event_loop;
struct resolve;
struct resolve_query;

#define RESOLVE_WORKERS 2	     /* lookup threads, at most */
#define RESOLVE_FRESH_MS (60 * 1000) /* libcurl's DNS cache default */
#define RESOLVE_STALE_MS (60 * 60 * 1000)
#define RESOLVE_ADDRS_MAX 8 /* addresses kept per name */
/* "a,b,[v6]" for RESOLVE_ADDRS_MAX bracketed IPv6 addresses, NUL. */
#define RESOLVE_ADDRS_LEN (RESOLVE_ADDRS_MAX * 48)
#define RESOLVE_HOST_MAX 253 /* a DNS name */
#define RESOLVE_CACHE_MAX 16 /* names (the authority, a proxy) */

/*
 * The outside world, for tests. lookup runs on a worker thread and may
 * block: it fills addrs with up to RESOLVE_ADDRS_MAX comma-separated
 * numeric addresses (IPv6 in brackets, as CURLOPT_RESOLVE wants them)
 * and returns 0, -ENOENT when the name does not exist (the cached answer
 * is dropped), or another -errno for a failure that may pass (a stale
 * answer is kept). now_ms is the clock for cache ages; NULL: the loop's.
 */
struct resolve_ops {
	int (*lookup)(void *arg, const char *host, int port,
	    char addrs[RESOLVE_ADDRS_LEN]);
	int64_t (*now_ms)(void *arg);
	void *arg;
};

struct resolve_options {
	const struct resolve_ops *ops; /* NULL: getaddrinfo */
	int64_t wait_ms;	       /* how long a query waits; 0: 10 s */
	int64_t fresh_ms;	       /* 0: RESOLVE_FRESH_MS */
	int64_t stale_ms;	       /* 0: RESOLVE_STALE_MS */
};

/* error 0: addrs as in struct resolve_ops (valid during the call);
 * else -EHOSTUNREACH (no answer) or -ETIMEDOUT (waited wait_ms). */
typedef void resolve_done_cb(void *arg, int error, const char *addrs);

/* 0 or -errno. Starts no thread yet. Copies the options (ops is borrowed
 * and must outlive r and every lookup it started). */
int resolve_new(struct event_loop *ev, const struct resolve_options *opt,
    struct resolve **out);
/*
 * Cancels every query (no callbacks) and returns at once: idle workers
 * are joined, a worker inside a lookup is detached and frees what it
 * shares with r when the lookup returns. NULL-safe. Not from a callback;
 * the loop must outlive r.
 */
void resolve_free(struct resolve *r);

/*
 * Addresses for host:port. 0: a cached answer (fresh, or stale while a
 * refresh runs) is in addrs, and *out is NULL. -EINPROGRESS: *out is a
 * query; cb runs later on the loop, once, unless resolve_cancel. Else
 * -EINVAL (host empty or too long), -ENOMEM.
 */
int resolve_lookup(struct resolve *r, const char *host, int port,
    char addrs[RESOLVE_ADDRS_LEN], resolve_done_cb *cb, void *arg,
    struct resolve_query **out);
/* The callback will not run; *q set to NULL. The lookup itself goes on
 * (its answer is cached). NULL-safe. */
void resolve_cancel(struct resolve *r, struct resolve_query **q);

struct resolve_stats {
	unsigned workers; /* threads started and not yet gone */
	unsigned running; /* lookups in a worker now */
	uint64_t lookups; /* lookups started, in total */
	uint64_t stale;	  /* stale answers served */
};
void resolve_get_stats(const struct resolve *r, struct resolve_stats *st);

#endif
