/*
 * uidlimit.h - per-uid connection counts, request rate and queued output,
 * one table per listener (the Unix socket, the SDK endpoint), the same
 * rules for each.
 *
 * An entry exists while its uid has a connection open, or while its
 * token bucket is short (a flooder cannot wipe its debt by reconnecting);
 * 100k users who each came once hold nothing. Loop thread only.
 *
 * Queued output is what the listener holds for a uid's connections
 * because their peers do not read (reply buffers the kernel would not
 * take). A uid over max_out_per_uid waits, and its new connections are
 * refused; at max_out (the listener's total) every uid that holds output
 * waits, and uids that hold none are still served: whoever holds the
 * memory pays for it.
 *
 * Must never: let one uid's connections, requests or output count
 * against another's, or free an entry that a connection still points to.
 */
#ifndef CREDD_UIDLIMIT_H
#define CREDD_UIDLIMIT_H

#include <stdint.h>
#include <sys/types.h>

struct event_loop;
struct uidlimit;

struct uidlimit_cfg {
	unsigned max_conns_per_uid;
	double requests_per_sec; /* bucket refill rate */
	double request_burst;	 /* bucket size */
};

/* One uid's entry; borrowed by a connection between open and close. */
struct uidlimit_entry {
	uid_t uid;
	unsigned conns;
	double tokens; /* rate-limit bucket */
	int64_t refill_ms;
	size_t out; /* output bytes queued for its connections */
	struct uidlimit_entry *next;
};

struct uidlimit *uidlimit_new(struct event_loop *ev,
    const struct uidlimit_cfg *cfg);
void uidlimit_free(struct uidlimit *l);
/* New caps (SIGHUP); entries keep their counts and buckets. */
void uidlimit_set_config(struct uidlimit *l, const struct uidlimit_cfg *cfg);

/*
 * A connection of uid opens: 0 and *out (hand it back to uidlimit_close),
 * -EUSERS when uid is at max_conns_per_uid, -ENOBUFS when it may not
 * queue more output (uidlimit_out_ok), -ENOMEM.
 */
int uidlimit_open(struct uidlimit *l, uid_t uid, struct uidlimit_entry **out);
/* That connection closed; u may be freed. NULL does nothing. */
void uidlimit_close(struct uidlimit *l, struct uidlimit_entry *u);
/* One request of u: 1 if the bucket allows it (and takes a token), else 0. */
int uidlimit_allow(struct uidlimit *l, struct uidlimit_entry *u);
/*
 * Caps on queued output (uidlimit_out_ok): bytes per uid and in all;
 * 0 is no cap (the default). Entries keep what they hold.
 */
void uidlimit_set_out_caps(struct uidlimit *l, size_t max_out_per_uid,
    size_t max_out);
/*
 * Output bytes now queued (n more, or n fewer) for one of u's
 * connections. A connection releases all it added before it closes.
 */
void uidlimit_out_add(struct uidlimit *l, struct uidlimit_entry *u, size_t n);
void uidlimit_out_sub(struct uidlimit *l, struct uidlimit_entry *u, size_t n);
/*
 * 1 when u may queue more output: it holds less than max_out_per_uid,
 * and either the listener's total is under max_out or u holds none.
 */
int uidlimit_out_ok(const struct uidlimit *l, const struct uidlimit_entry *u);
/* Output bytes queued for every uid. */
size_t uidlimit_out_total(const struct uidlimit *l);
/* Live entries (tests, stats). */
size_t uidlimit_count(const struct uidlimit *l);

#endif
