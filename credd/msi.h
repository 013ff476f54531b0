/*
 * msi.h - the managed-identity-compatible loopback HTTP endpoint for
 * Azure SDKs, az, Spark and the Databricks SDK ([msi] in credd.conf).
 *
 * Two request shapes, GET only, on a loopback address:
 *   App Service: /msi/token?api-version=2019-08-01&resource=R with
 *     X-IDENTITY-HEADER: the per-session secret (session.h), which must
 *     belong to the uid that owns the caller's TCP socket (sockdiag.h);
 *   IMDS: /metadata/identity/oauth2/token[/]?api-version=..&resource=R
 *     with Metadata: true; the caller is proven by its socket uid alone.
 * R must be an allowed resource; the token is the broker's for the
 * scope R + "/.default". Requests carrying Forwarded, X-Forwarded-*,
 * Via or Origin, or a Host that is not loopback, are refused (no proxy,
 * no browser, no DNS rebinding); there is no CORS.
 *
 * The caller's uid is proven once per connection, at accept, before the
 * request is read (msi_listen.h); a connection whose uid cannot be proven
 * gets 403 for every request. The Unix socket's per-uid connection cap
 * and rate limit apply to the endpoint too.
 *
 * HTTP parsing is libmicrohttpd's, driven from credd's loop through its
 * epoll fd; a request that waits for a refresh suspends its connection.
 * Must never: log a token or a secret, answer a uid with another uid's
 * token, act for a uid the kernel did not prove, or block the loop.
 */
#ifndef CREDD_MSI_H
#define CREDD_MSI_H

#include <sys/types.h>
#include <jansson.h>

struct event_loop;
struct msi_listen_sock;
struct config;
struct broker;
struct sessions;
struct msi;

/*
 * Serve the endpoint on sock (msi_listen.h: msi_listen_open before
 * privileges are dropped; sock->fd is taken over, and -1 starts the
 * endpoint down, binding again on a timer). Each proven caller's login
 * name comes from db (off the loop) before MHD reads its request. cf,
 * broker, sessions and db are borrowed and must outlive the endpoint (or the next msi_set_config).
 * 0 or -errno.
 */
struct userdb;
int msi_new(struct event_loop *ev, const struct msi_listen_sock *sock,
    const struct config *cf, struct broker *broker, struct sessions *sessions,
    struct userdb *db, struct msi **out);
/* Answer parked requests with 503, close every connection. NULL is fine. */
void msi_free(struct msi *m);
/* After SIGHUP: resources, TTLs, timeouts and limits (not the address). */
void msi_set_config(struct msi *m, const struct config *cf);
/*
 * The endpoint's state as o's "sdk_endpoint" object (docs/protocol.md):
 * msi_listen_report's fields; with is_stats also connections_open,
 * connections_refused, requests, refused, rate_limited, uids_tracked.
 * m NULL (no [msi] listen): {"state": "off"} in stats, nothing in status.
 * 0, or -ENOMEM (o may lack some of it).
 */
int msi_report(const struct msi *m, json_t *o, int is_stats);

#endif
