/*
 * scrape.c - the metrics page (scrape.h): the socket listener's replies
 * by op and outcome, the cached path's latency, connections and
 * refusals per listener, sessions, then the broker's families.
 *
 * Must never: print a label from anything but the fixed op, outcome and
 * listener names, or write to what it reads.
 */
#include <errno.h>
#include <string.h>
#include <jansson.h>

#include "entra/proto.h"
#include "entra/version.h"

#include "broker_metrics.h"
#include "metrics.h"
#include "msi.h"
#include "scrape.h"
#include "server.h"
#include "session.h"

static void
one(struct metrics_text *t, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_text_family(t, name, type, help);
	metrics_text_sample(t, name, NULL, v);
}

/* Every op with its "ok" line, then each outcome that happened. */
static void
replies(struct metrics_text *t, const struct server_stats *ss)
{
	const char *lab[5] = { "op", NULL, "outcome", NULL, NULL };
	unsigned op, o;

	metrics_text_family(t, "credd_requests_total", "counter",
	    "Requests answered on the socket, by op and outcome (ok or the "
	    "error code; op \"none\": refused before its op was read).");
	for (op = 0; op < PROTO_OP_COUNT; op++)
		for (o = 0; o < METRICS_OUTCOMES; o++) {
			if (o != 0 && ss->replies[op][o] == 0)
				continue;
			if (op == PROTO_OP_NONE && ss->replies[op][o] == 0)
				continue;
			lab[1] = proto_op_name((enum proto_op)op);
			lab[3] = metrics_outcome_name(o);
			metrics_text_sample(t, "credd_requests_total", lab,
			    ss->replies[op][o]);
		}
}

/* A counter of the SDK endpoint's stats object, 0 when absent. */
static uint64_t
msi_count(json_t *o, const char *key)
{
	json_t *v = json_object_get(json_object_get(o, "sdk_endpoint"), key);

	return json_is_integer(v) && json_integer_value(v) > 0 ?
	    (uint64_t)json_integer_value(v) :
	    0;
}

static void
refusals(struct metrics_text *t, const struct server_stats *ss,
    const struct msi *m)
{
	const char *lab[5] = { "listener", "socket", "reason", NULL, NULL };
	uint64_t forbidden = 0;
	unsigned op;
	json_t *o;

	metrics_text_family(t, "credd_listener_refusals_total", "counter",
	    "Connections and requests a listener refused, by listener and "
	    "reason.");
	lab[3] = "max_conns";
	metrics_text_sample(t, "credd_listener_refusals_total", lab,
	    ss->refused_conns);
	lab[3] = "rate_limit";
	metrics_text_sample(t, "credd_listener_refusals_total", lab,
	    ss->rate_limited);
	for (op = 0; op < PROTO_OP_COUNT; op++)
		forbidden += ss->replies[op][metrics_outcome_of("forbidden")];
	lab[3] = "forbidden";
	metrics_text_sample(t, "credd_listener_refusals_total", lab, forbidden);
	if (m == NULL)
		return;
	o = json_object();
	if (o == NULL || msi_report(m, o, 1) < 0) {
		json_decref(o);
		t->failed = 1;
		return;
	}
	lab[1] = "sdk_endpoint";
	lab[3] = "max_conns";
	metrics_text_sample(t, "credd_listener_refusals_total", lab,
	    msi_count(o, "connections_refused"));
	lab[3] = "refused";
	metrics_text_sample(t, "credd_listener_refusals_total", lab,
	    msi_count(o, "refused"));
	lab[3] = "rate_limit";
	metrics_text_sample(t, "credd_listener_refusals_total", lab,
	    msi_count(o, "rate_limited"));
	json_decref(o);
}

int
scrape_page(void *arg, struct metrics_text *t)
{
	const struct scrape_sources *src = arg;
	const struct server_stats *ss = server_stats(src->server);
	const char *ver[3] = { "version", ENTRA_VERSION, NULL };

	metrics_text_free(t);
	t->failed = 0;
	metrics_text_family(t, "credd_build_info", "gauge",
	    "credd's version (always 1).");
	metrics_text_sample(t, "credd_build_info", ver, 1);
	replies(t, ss);
	metrics_text_hist(t, "credd_cached_token_duration_seconds",
	    "Token requests answered at once from the cache, from the request "
	    "line read to the reply queued.",
	    &ss->cached_latency);
	one(t, "credd_connections_total", "counter",
	    "Socket connections accepted.", ss->connections);
	one(t, "credd_connections_open", "gauge", "Socket connections open.",
	    ss->open);
	one(t, "credd_bad_requests_total", "counter",
	    "Request lines that did not decode.", ss->bad_requests);
	refusals(t, ss, src->msi);
	one(t, "credd_sessions", "gauge", "Sessions open (session_open).",
	    sessions_count(src->sessions));
	one(t, "credd_sdk_secrets", "gauge", "SDK endpoint secrets alive.",
	    sessions_secret_count(src->sessions));
	broker_metrics_text(src->broker, t);
	return t->failed ? -ENOMEM : 0;
}
