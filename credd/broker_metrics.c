/*
 * broker_metrics.c - the broker's counters as Prometheus text, and the
 * health of the store, the IdP and the key ring (broker_metrics.h).
 * Reads struct broker (broker_int.h) and the IdP client's statistics;
 * changes nothing.
 *
 * Must never: put a user name, a token or an IdP message into its
 * output (reasons are constant text, strerror and numbers), or probe
 * the store or the IdP (health is what credd saw while serving).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "entra/util.h"

#include "apptoken.h"
#include "broker_int.h"
#include "broker_metrics.h"
#include "cache.h"
#include "clock.h"
#include "http.h"
#include "idp.h"
#include "metrics.h"
#include "oauth.h"
#include "reply.h"
#include "seal.h"
#include "user.h"

#define KEY_MISSING_WINDOW 3600 /* s: a record the ring cannot open */

/* Users with an unwritten refresh token, a record in memory, a row refused. */
struct tally {
	uint64_t unsaved, resident, rolled;
};

static void
tally_user(struct user *u, void *arg)
{
	struct tally *t = arg;

	t->unsaved += u->dirty != 0;
	t->resident += u->rec != NULL;
	t->rolled += u->rolled_back != 0;
}

static void
one(struct metrics_text *t, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_text_family(t, name, type, help);
	metrics_text_sample(t, name, NULL, v);
}

static void
classes(struct metrics_text *t, const char *name, const char *key,
    const uint64_t *n, const char *ok_label, uint64_t ok)
{
	const char *labels[3] = { key, NULL, NULL };
	unsigned i;

	if (ok_label != NULL) {
		labels[1] = ok_label;
		metrics_text_sample(t, name, labels, ok);
	}
	for (i = OAUTH_PENDING; i < OAUTH_CLASS_COUNT; i++) {
		labels[1] = oauth_class_name((enum oauth_class)i);
		metrics_text_sample(t, name, labels, n[i]);
	}
}

void
broker_metrics_text(struct broker *b, struct metrics_text *t)
{
	const char *lab[3] = { "result", NULL, NULL };
	struct http_stats hs;
	struct tally ut = { 0 };

	metrics_text_family(t, "credd_cache_lookups_total", "counter",
	    "Token requests looked up in the access-token cache, by result.");
	lab[1] = "hit";
	metrics_text_sample(t, "credd_cache_lookups_total", lab,
	    b->n.cache_hits);
	lab[1] = "miss";
	metrics_text_sample(t, "credd_cache_lookups_total", lab,
	    b->n.cache_misses);
	one(t, "credd_cached_tokens", "gauge", "Access tokens in the cache.",
	    cache_count(b->cache));
	one(t, "credd_refresh_grants_sent_total", "counter",
	    "Refresh-token grants sent to the IdP.", b->n.refreshes);
	metrics_text_family(t, "credd_refresh_grants_total", "counter",
	    "Refresh-token grants answered, by outcome (ok or the IdP error "
	    "class).");
	classes(t, "credd_refresh_grants_total", "outcome", b->n.refresh_errors,
	    "ok", b->n.refresh_ok);
	metrics_text_family(t, "credd_idp_errors_total", "counter",
	    "IdP errors of every kind (refresh grants and device flows), by "
	    "class.");
	classes(t, "credd_idp_errors_total", "class", b->n.idp_errors, NULL, 0);
	one(t, "credd_stale_tokens_served_total", "counter",
	    "Still-valid tokens served while their refresh failed.",
	    b->n.stale_served);
	one(t, "credd_cae_refreshes_total", "counter",
	    "Refreshes driven by a resource's claims challenge.",
	    b->n.cae_refreshes);
	one(t, "credd_cae_limited_total", "counter",
	    "Claims challenges refused inside the 30 s window per user and "
	    "scope.",
	    b->n.cae_limited);
	one(t, "credd_device_flows_started_total", "counter",
	    "Device-code flows started.", b->n.flows_started);
	one(t, "credd_device_flows_completed_total", "counter",
	    "Device-code flows that ended in a consent.", b->n.flows_completed);
	one(t, "credd_device_flows_rejected_total", "counter",
	    "Device-code flows declined or with the wrong account.",
	    b->n.flows_rejected);
	one(t, "credd_device_flows_expired_total", "counter",
	    "Device-code flows that expired unused.", b->n.flows_expired);
	http_get_stats(b->http, &hs);
	one(t, "credd_idp_requests_in_flight", "gauge",
	    "Requests to the IdP in flight.", hs.inflight);
	metrics_text_hist(t, "credd_idp_request_duration_seconds",
	    "Requests to the IdP, from sending to the answer or failure.",
	    &hs.latency);
	one(t, "credd_store_errors_total", "counter",
	    "Store reads and writes that failed.", b->n.store_errors);
	one(t, "credd_store_rollbacks_total", "counter",
	    "Stored records refused as rolled back.", b->n.store_rollbacks);
	user_foreach(b, tally_user, &ut);
	one(t, "credd_pinned_refresh_tokens", "gauge",
	    "Users whose newest refresh token is held in memory, not yet "
	    "written to the store.",
	    ut.unsaved);
	one(t, "credd_users", "gauge", "Users known to credd on this node.",
	    user_count(b));
	one(t, "credd_records_in_memory", "gauge",
	    "Users whose record is held in memory.", ut.resident);
}

/* One component: {"usable":usable,"reason":reason}; *bad on ENOMEM. */
static void
component(json_t *obj, const char *name, int usable, const char *reason,
    int *bad)
{
	reply_put(obj, name,
	    json_pack("{s:b,s:s}", "usable", usable, "reason", reason), bad);
}

static int
store_health(struct broker *b, json_t *obj, int64_t now, int *bad)
{
	struct tally ut = { 0 };
	char why[160];

	user_foreach(b, tally_user, &ut);
	if (b->n.store_failing) {
		snprintf(why, sizeof(why),
		    "the last store operation failed %" PRId64 " s ago: %s",
		    now - b->n.store_last_fail,
		    strerror(-b->n.store_last_error));
		component(obj, "store", 0, why, bad);
		return BROKER_METRICS_UNHEALTHY;
	}
	if (ut.unsaved > 0) {
		snprintf(why, sizeof(why),
		    "%" PRIu64 " refresh token(s) not yet written", ut.unsaved);
		component(obj, "store", 0, why, bad);
		return BROKER_METRICS_UNHEALTHY;
	}
	component(obj, "store", 1,
	    b->n.store_last_ok != 0 ? "ok" : "ok (not used yet)", bad);
	return BROKER_METRICS_HEALTHY;
}

static int
keyring_health(struct broker *b, json_t *obj, int64_t now, int *bad)
{
	char why[160];

	if (seal_active_id(b->seal) == 0) {
		component(obj, "keyring", 0, "no active key", bad);
		return BROKER_METRICS_UNHEALTHY;
	}
	if (b->n.key_missing_at != 0 &&
	    now - b->n.key_missing_at < KEY_MISSING_WINDOW) {
		snprintf(why, sizeof(why),
		    "a stored record needed a key the ring lacks %" PRId64
		    " s ago",
		    now - b->n.key_missing_at);
		component(obj, "keyring", 0, why, bad);
		return BROKER_METRICS_UNHEALTHY;
	}
	snprintf(why, sizeof(why), "ok (active key %" PRIu32 ")",
	    seal_active_id(b->seal));
	component(obj, "keyring", 1, why, bad);
	return BROKER_METRICS_HEALTHY;
}

static int
idp_health(struct broker *b, json_t *obj, int64_t now, int *bad)
{
	struct http_stats hs;
	char why[160];

	http_get_stats(b->http, &hs);
	if (hs.is_failing) {
		if (hs.last_status > 0)
			snprintf(why, sizeof(why),
			    "the last contact failed %" PRId64
			    " s ago: HTTP %ld",
			    now - hs.last_fail, hs.last_status);
		else
			snprintf(why, sizeof(why),
			    "the last contact failed %" PRId64 " s ago: %s",
			    now - hs.last_fail, strerror(-hs.last_error));
		component(obj, "idp", 0, why, bad);
		return BROKER_METRICS_DEGRADED;
	}
	if (b->throttle_until > now) {
		snprintf(why, sizeof(why),
		    "throttled by the IdP (429) for %" PRId64 " s more",
		    b->throttle_until - now);
		component(obj, "idp", 0, why, bad);
		return BROKER_METRICS_DEGRADED;
	}
	component(obj, "idp", 1, hs.last_ok != 0 ? "ok" : "ok (no contact yet)",
	    bad);
	return BROKER_METRICS_HEALTHY;
}

int
broker_metrics_health(struct broker *b, json_t *obj)
{
	static const char *const names[] = { "healthy", "degraded",
		"unhealthy" };
	int64_t now = clock_now(b->clk);
	int level = 0, r, bad = 0;

	r = store_health(b, obj, now, &bad);
	level = r > level ? r : level;
	r = keyring_health(b, obj, now, &bad);
	level = r > level ? r : level;
	r = idp_health(b, obj, now, &bad);
	level = r > level ? r : level;
	reply_put(obj, "health", json_string(names[level]), &bad);
	return bad ? -ENOMEM : level;
}

size_t
broker_metrics_users(struct broker *b)
{
	return user_count(b);
}

int
broker_metrics_stats(struct broker *b, json_t *o)
{
	json_t *idp = json_object();
	struct tally t = { 0 };
	size_t i;
	int bad = 0;

	reply_put(o, "cache_hits", json_integer((json_int_t)b->n.cache_hits),
	    &bad);
	reply_put(o, "cache_misses",
	    json_integer((json_int_t)b->n.cache_misses), &bad);
	/* Claims challenges (cae.h): grants they made, ones refused. */
	reply_put(o, "cae_refreshes",
	    json_integer((json_int_t)b->n.cae_refreshes), &bad);
	reply_put(o, "cae_limited", json_integer((json_int_t)b->n.cae_limited),
	    &bad);
	reply_put(o, "cached_tokens",
	    json_integer((json_int_t)cache_count(b->cache)), &bad);
	/* Pre-serialized token replies kept (tokens.c; issue 16). */
	reply_put(o, "reply_lines",
	    json_integer((json_int_t)cache_line_count(b->cache)), &bad);
	reply_put(o, "reply_line_bytes",
	    json_integer((json_int_t)cache_line_bytes(b->cache)), &bad);
	/* The platform's app tokens (apptoken.c, identity = app). */
	reply_put(o, "app_tokens", json_integer((json_int_t)apptoken_count(b)),
	    &bad);
	reply_put(o, "app_hits", json_integer((json_int_t)b->n.app_hits), &bad);
	reply_put(o, "app_grants", json_integer((json_int_t)b->n.app_grants),
	    &bad);
	reply_put(o, "app_grant_errors",
	    json_integer((json_int_t)b->n.app_grant_errors), &bad);
	reply_put(o, "refreshes", json_integer((json_int_t)b->n.refreshes),
	    &bad);
	reply_put(o, "refresh_ok", json_integer((json_int_t)b->n.refresh_ok),
	    &bad);
	reply_put(o, "stale_served",
	    json_integer((json_int_t)b->n.stale_served), &bad);
	reply_put(o, "records_evicted",
	    json_integer((json_int_t)b->n.evictions), &bad);
	for (i = 1; i < OAUTH_CLASS_COUNT; i++)
		reply_put(idp, oauth_class_name((enum oauth_class)i),
		    json_integer((json_int_t)b->n.idp_errors[i]), &bad);
	reply_put(o, "idp_errors", idp, &bad);
	reply_put(o, "device_flows_started",
	    json_integer((json_int_t)b->n.flows_started), &bad);
	reply_put(o, "device_flows_completed",
	    json_integer((json_int_t)b->n.flows_completed), &bad);
	reply_put(o, "device_flows_rejected",
	    json_integer((json_int_t)b->n.flows_rejected), &bad);
	reply_put(o, "device_flows_expired",
	    json_integer((json_int_t)b->n.flows_expired), &bad);
	reply_put(o, "idp_requests_in_flight",
	    json_integer((json_int_t)b->idp->ops->inflight(b->idp)), &bad);
	reply_put(o, "users", json_integer((json_int_t)user_count(b)), &bad);
	user_foreach(b, tally_user, &t);
	reply_put(o, "records_in_memory", json_integer((json_int_t)t.resident),
	    &bad);
	reply_put(o, "store",
	    json_string(t.unsaved ? "refresh tokens not yet written" : "ok"),
	    &bad);
	reply_put(o, "store_unwritten_users",
	    json_integer((json_int_t)t.unsaved), &bad);
	reply_put(o, "store_errors",
	    json_integer((json_int_t)b->n.store_errors), &bad);
	reply_put(o, "store_conflicts",
	    json_integer((json_int_t)b->n.store_conflicts), &bad);
	reply_put(o, "store_rollbacks",
	    json_integer((json_int_t)b->n.store_rollbacks), &bad);
	reply_put(o, "store_rollback_users", json_integer((json_int_t)t.rolled),
	    &bad);
	reply_put(o, "marks_errors",
	    json_integer((json_int_t)b->n.marks_errors), &bad);
	reply_put(o, "throttled_until",
	    b->throttle_until > clock_now(b->clk) ?
		json_integer(b->throttle_until) :
		json_null(),
	    &bad);
	return bad ? -ENOMEM : 0;
}
