/*
 * clientauth.h - the app credential that [entra] client_auth names,
 * checked as credd --check-config and startup see it.
 *
 * Today it only checks: the certificate file loads and matches its key,
 * the federated token file is readable, private, shaped as a JWT and
 * not stale. The grants do not use certificate or federated yet (the
 * sign-in work of issue 13 wires them into the broker's requests); the
 * check says so rather than let a configured credential look used.
 */
#ifndef CREDD_CLIENTAUTH_H
#define CREDD_CLIENTAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* clientauth_check's "good, but read the message" result. */
#define CLIENTAUTH_NOT_WIRED 1

/*
 * Check the file of cf->client_auth (none and secret: nothing here; the
 * secret file is read at startup). A %d/NAME certificate path is left
 * to startup, where $CREDENTIALS_DIRECTORY exists. now: the clock for
 * the federated token's exp. Returns 0 (nothing to say),
 * CLIENTAUTH_NOT_WIRED (good; msg says the method is not used by any
 * grant yet), or a negative errno from assertion.h with "path: why" in
 * msg. The key is loaded and freed again; nothing secret is kept.
 */
int clientauth_check(const struct config *cf, int64_t now, char *msg,
    size_t msgsz);

/*
 * The same for [offboarding]'s credential (certificate: loads and
 * matches; federated: readable, private, a JWT, not stale; secret: left
 * to startup, which reads it). 0 (good, or offboarding off), or a
 * negative errno with "path: why" in msg. Nothing secret is kept.
 */
int clientauth_check_offboarding(const struct config *cf, int64_t now,
    char *msg, size_t msgsz);

#endif
