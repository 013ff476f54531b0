/*
 * clientauth.h - the app credential that [entra] client_auth names: the
 * one function that decorates a confidential grant's form with it
 * (DESIGN §10; nothing else knows which method is configured), and the
 * check credd --check-config and startup run.
 *
 * Which grants carry a credential is Entra's rule, not ours: the device
 * code flow, the paste-back code flow and their refreshes are public
 * (a credential there is AADSTS700025); the platform-callback code flow,
 * its refreshes and client credentials are confidential (no credential
 * there is AADSTS7000218). The IdP (idp_http.c) asks for decoration only
 * on confidential grants.
 *
 * Must never: keep an assertion or a federated token past the request
 * that carries it, or put key material, a secret or a token in an error.
 */
#ifndef CREDD_CLIENTAUTH_H
#define CREDD_CLIENTAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct secret;
struct clientauth;

/*
 * The credential cf names, ready to decorate forms: the certificate's
 * key is loaded here (call it before privilege drop, like the key ring;
 * a %d/NAME path must be expanded first). none, secret and federated
 * load nothing (the secret is given with clientauth_set_secret, the
 * federated file is read per request). client_id and the federated
 * file's path are copied. 0 and *out, or a negative errno from
 * assertion.h with "path: why" in msg.
 */
int clientauth_new(const struct config *cf, struct clientauth **out, char *msg,
    size_t msgsz);
/* The client secret (borrowed; client_auth = secret). NULL-safe ca. */
void clientauth_set_secret(struct clientauth *ca, const struct secret *secret);
/*
 * After SIGHUP: client_id and the federated file's path. The method and
 * the certificate need a restart: -EINVAL (nothing changed) when cf
 * names another method; -ENOMEM; 0. NULL ca: 0.
 */
int clientauth_set_config(struct clientauth *ca, const struct config *cf);
/* Frees the key (OpenSSL clears it). NULL does nothing. */
void clientauth_free(struct clientauth *ca);
/* Is a credential configured (client_auth is not none)? NULL: no. */
int clientauth_is_configured(const struct clientauth *ca);

/*
 * Add the credential to a confidential grant's form (built without
 * one): client_secret, or client_assertion_type + a fresh assertion
 * (aud = token_url, signed now) or the federated file's token, read
 * now. The assertion or token is wiped once the form holds it.
 * ca NULL or none: nothing is added (0). Returns 0, or:
 *   -EKEYREJECTED  the credential cannot be made: the federated file
 *                  is missing, unreadable, loose or stale, signing
 *                  failed, or the secret was never read; "why" in msg
 *                  (an admin's message: never a token or key byte)
 *   -ENOMEM        (*form is then wiped and freed, NULL)
 */
int clientauth_decorate(const struct clientauth *ca, const char *token_url,
    int64_t now, struct secret **form, char *msg, size_t msgsz);

/*
 * Check the file of cf->client_auth (none and secret: nothing here; the
 * secret file is read at startup). A %d/NAME certificate path is left
 * to startup, where $CREDENTIALS_DIRECTORY exists. now: the clock for
 * the federated token's exp. Returns 0 (good), or a negative errno from
 * assertion.h with "path: why" in msg. The key is loaded and freed
 * again; nothing secret is kept.
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

/* Either check above (startup_check_as_user runs one as the run-as user). */
typedef int clientauth_check_fn(const struct config *cf, int64_t now, char *msg,
    size_t msgsz);

#endif
