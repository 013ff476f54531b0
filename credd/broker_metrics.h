/*
 * broker_metrics.h - what the broker tells an operator: its counters on
 * the metrics page (Prometheus text, metrics.h) and the health of what
 * it depends on (the store, the IdP, the key ring) for the health op.
 *
 * Must never: name a user, a token or anything secret (both are read by
 * callers who may not see who uses credd: health by any local uid).
 */
#ifndef CREDD_BROKER_METRICS_H
#define CREDD_BROKER_METRICS_H

#include <stddef.h>
#include <jansson.h>

struct broker;
struct metrics_text;

/*
 * Append the broker's families to t: cache lookups, refresh grants by
 * outcome, IdP errors by class, device flows, the IdP's latency
 * histogram, store errors, refresh tokens pinned in memory, users.
 * A failed allocation sets t->failed.
 */
void broker_metrics_text(struct broker *b, struct metrics_text *t);

/*
 * Adds the broker's counters to obj, the `stats` op's fields
 * (docs/protocol.md). 0 or -ENOMEM (some may be missing).
 */
int broker_metrics_stats(struct broker *b, json_t *obj);

/* A component's health: usable or not, and why (constant or numbers). */
enum broker_metrics_level {
	BROKER_METRICS_HEALTHY = 0,
	BROKER_METRICS_DEGRADED,
	BROKER_METRICS_UNHEALTHY
};

/*
 * Add "store", "idp" and "keyring" ({"usable":bool,"reason":str}) and
 * "health" ("healthy", "degraded", "unhealthy") to obj, from what credd
 * already knows: no probe, no load on the store or the IdP.
 *   store    unusable when its last answer was a failure, or refresh
 *            tokens wait in memory for a write (unhealthy)
 *   keyring  unusable without an active key, or when a stored record
 *            needed a key the ring lacks in the last hour (unhealthy)
 *   idp      unusable when its last contact failed (no answer, or a
 *            5xx) or the tenant is throttled (degraded: cached tokens
 *            are still served); "no contact yet" counts as usable
 * Returns the level, or -ENOMEM.
 */
int broker_metrics_health(struct broker *b, json_t *obj);
/* Users known on this node (the STATUS= line). */
size_t broker_metrics_users(struct broker *b);

#endif
