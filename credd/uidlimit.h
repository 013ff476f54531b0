/*
 * uidlimit.h - per-uid connection counts and request rate, one table per
 * listener (the Unix socket, the SDK endpoint), the same rules for each.
 *
 * An entry exists while its uid has a connection open, or while its
 * token bucket is short (a flooder cannot wipe its debt by reconnecting);
 * 100k users who each came once hold nothing. Loop thread only.
 *
 * Must never: let one uid's connections or requests count against
 * another's, or free an entry that a connection still points to.
 */
#ifndef CREDD_UIDLIMIT_H
#define CREDD_UIDLIMIT_H

#include <stdint.h>
#include <sys/types.h>

struct event_loop;
struct uidlimit;

struct uidlimit_cfg {
	unsigned max_conns_per_uid;
	double requests_per_sec;	/* bucket refill rate */
	double request_burst;		/* bucket size */
};

/* One uid's entry; borrowed by a connection between open and close. */
struct uidlimit_entry {
	uid_t uid;
	unsigned conns;
	double tokens;		/* rate-limit bucket */
	int64_t refill_ms;
	struct uidlimit_entry *next;
};

struct uidlimit *uidlimit_new(struct event_loop *ev, const struct uidlimit_cfg *cfg);
void uidlimit_free(struct uidlimit *l);
/* New caps (SIGHUP); entries keep their counts and buckets. */
void uidlimit_set_config(struct uidlimit *l, const struct uidlimit_cfg *cfg);

/*
 * A connection of uid opens: 0 and *out (hand it back to uidlimit_close),
 * -EUSERS when uid is at max_conns_per_uid, -ENOMEM.
 */
int uidlimit_open(struct uidlimit *l, uid_t uid, struct uidlimit_entry **out);
/* That connection closed; u may be freed. NULL does nothing. */
void uidlimit_close(struct uidlimit *l, struct uidlimit_entry *u);
/* One request of u: 1 if the bucket allows it (and takes a token), else 0. */
int uidlimit_allow(struct uidlimit *l, struct uidlimit_entry *u);
/* Live entries (tests, stats). */
size_t uidlimit_count(const struct uidlimit *l);

#endif
