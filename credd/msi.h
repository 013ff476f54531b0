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
 * HTTP parsing is libmicrohttpd's, driven from credd's loop through its
 * epoll fd; a request that waits for a refresh suspends its connection.
 * Must never: log a token or a secret, answer a uid with another uid's
 * token, or block the loop.
 */
#ifndef CREDD_MSI_H
#define CREDD_MSI_H

#include <sys/types.h>

struct event_loop;
struct config;
struct broker;
struct sessions;
struct msi;

/*
 * Create the listening socket for cf->msi_listen (before dropping
 * privileges). *fd is -1 when the endpoint is off. 0 or -errno with a
 * message in err.
 */
int msi_listen(const struct config *cf, int *fd, char *err, size_t errsz);

/*
 * Serve on listen_fd (taken over; closed by msi_free). cf, broker and
 * sessions are borrowed and must outlive the endpoint (or the next
 * msi_set_config). 0 or -errno.
 */
int msi_new(struct event_loop *ev, int listen_fd, const struct config *cf,
    struct broker *broker, struct sessions *sessions, struct msi **out);
/* Answer parked requests with 503, close every connection. NULL is fine. */
void msi_free(struct msi *m);
/* After SIGHUP: resources, TTLs and timeouts (not the address). */
void msi_set_config(struct msi *m, const struct config *cf);

#endif
