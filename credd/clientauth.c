/*
 * clientauth.c - the app credential [entra] client_auth names
 * (clientauth.h): decorates a confidential grant's form with the client
 * secret, a fresh signed assertion (assertion.c) or the federated token
 * read afresh (assertion_file.c); and checks the configured file once
 * for credd --check-config and startup, and [offboarding]'s
 * the same way (loaded or read once, then thrown away).
 *
 * Must never: keep or print key material or a token; decorate a public
 * grant (the caller decides; Entra answers 700025 to that).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

#include "assertion.h"
#include "clientauth.h"
#include "http.h"
#include "oauth.h"

struct clientauth {
	int method;		     /* enum config_client_auth */
	char *client_id;	     /* iss and sub of an assertion */
	char *assertion_file;	     /* client_auth = federated */
	const struct secret *secret; /* borrowed: client_auth = secret */
	struct assertion_key *key;   /* client_auth = certificate */
};

/* Copy what a request reads from cf. 0 or -ENOMEM (ca unchanged). */
static int
take_config(struct clientauth *ca, const struct config *cf)
{
	char *id = strdup(cf->client_id != NULL ? cf->client_id : "");
	char *file = NULL;

	if (cf->client_assertion_file != NULL)
		file = strdup(cf->client_assertion_file);
	if (id == NULL || (cf->client_assertion_file != NULL && file == NULL)) {
		free(id);
		free(file);
		return -ENOMEM;
	}
	free(ca->client_id);
	free(ca->assertion_file);
	ca->client_id = id;
	ca->assertion_file = file;
	return 0;
}

int
clientauth_new(const struct config *cf, struct clientauth **out, char *msg,
    size_t msgsz)
{
	struct clientauth *ca;
	int r;

	*out = NULL;
	if (msgsz > 0)
		msg[0] = '\0';
	ca = calloc(1, sizeof(*ca));
	if (ca == NULL)
		return -ENOMEM;
	ca->method = cf->client_auth;
	r = take_config(ca, cf);
	if (r == 0 && ca->method == CONFIG_CLIENT_AUTH_CERTIFICATE)
		r = assertion_key_load(cf->client_certificate_file, &ca->key,
		    msg, msgsz);
	if (r < 0) {
		clientauth_free(ca);
		return r;
	}
	*out = ca;
	return 0;
}

void
clientauth_set_secret(struct clientauth *ca, const struct secret *secret)
{
	if (ca != NULL)
		ca->secret = secret;
}

int
clientauth_set_config(struct clientauth *ca, const struct config *cf)
{
	if (ca == NULL)
		return 0;
	if (cf->client_auth != ca->method)
		return -EINVAL;
	return take_config(ca, cf);
}

void
clientauth_free(struct clientauth *ca)
{
	if (ca == NULL)
		return;
	assertion_key_free(ca->key);
	free(ca->client_id);
	free(ca->assertion_file);
	free(ca);
}

int
clientauth_is_configured(const struct clientauth *ca)
{
	return ca != NULL && ca->method != CONFIG_CLIENT_AUTH_NONE;
}

/* The assertion of a certificate or federated credential, made now. */
static int
make_assertion(const struct clientauth *ca, const char *token_url, int64_t now,
    struct secret **out, char *msg, size_t msgsz)
{
	int r;

	if (ca->method == CONFIG_CLIENT_AUTH_FEDERATED) {
		r = assertion_file_read(ca->assertion_file, now, out, NULL, msg,
		    msgsz);
		return r == -ENOMEM ? r : r < 0 ? -EKEYREJECTED : 0;
	}
	r = assertion_sign(ca->key, ASSERTION_PS256, ca->client_id, token_url,
	    now, out);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		(void)snprintf(msg, msgsz,
		    "client_certificate_file: cannot sign a client assertion "
		    "(%s)",
		    strerror(-r));
		return -EKEYREJECTED;
	}
	return 0;
}

int
clientauth_decorate(const struct clientauth *ca, const char *token_url,
    int64_t now, struct secret **form, char *msg, size_t msgsz)
{
	struct secret *a = NULL;
	int r;

	if (msgsz > 0)
		msg[0] = '\0';
	if (!clientauth_is_configured(ca))
		return 0;
	if (ca->method == CONFIG_CLIENT_AUTH_SECRET) {
		if (ca->secret == NULL || ca->secret->len == 0) {
			(void)snprintf(msg, msgsz,
			    "client_auth = secret but no client secret was "
			    "read");
			return -EKEYREJECTED;
		}
		r = http_form_add(form, "client_secret", ca->secret->ptr);
		if (r < 0) {
			secret_free(*form);
			*form = NULL;
		}
		return r;
	}
	r = make_assertion(ca, token_url, now, &a, msg, msgsz);
	if (r < 0) {
		if (r == -ENOMEM) {
			secret_free(*form);
			*form = NULL;
		}
		return r;
	}
	r = oauth_form_add_assertion(form, a);
	secret_free(a);
	return r;
}

int
clientauth_check_offboarding(const struct config *cf, int64_t now, char *msg,
    size_t msgsz)
{
	struct assertion_key *k = NULL;
	struct secret *tok = NULL;
	const char *path;
	int r = 0;

	if (msgsz > 0)
		msg[0] = '\0';
	if (cf->off_client_id == NULL)
		return 0;
	switch (cf->off_client_auth) {
	case CONFIG_CLIENT_AUTH_CERTIFICATE:
		path = cf->off_client_certificate_file;
		if (strncmp(path, "%d/", 3) == 0)
			return 0; /* startup's job */
		r = assertion_key_load(path, &k, msg, msgsz);
		assertion_key_free(k);
		break;
	case CONFIG_CLIENT_AUTH_FEDERATED:
		r = assertion_file_read(cf->off_client_assertion_file, now,
		    &tok, NULL, msg, msgsz);
		secret_free(tok);
		break;
	default:
		break;
	}
	return r;
}

int
clientauth_check(const struct config *cf, int64_t now, char *msg, size_t msgsz)
{
	struct assertion_key *k = NULL;
	struct secret *tok = NULL;
	const char *path;
	int r;

	if (msgsz > 0)
		msg[0] = '\0';
	switch (cf->client_auth) {
	case CONFIG_CLIENT_AUTH_CERTIFICATE:
		path = cf->client_certificate_file;
		if (strncmp(path, "%d/", 3) == 0)
			return 0; /* startup's job */
		r = assertion_key_load(path, &k, msg, msgsz);
		assertion_key_free(k);
		return r;
	case CONFIG_CLIENT_AUTH_FEDERATED:
		r = assertion_file_read(cf->client_assertion_file, now, &tok,
		    NULL, msg, msgsz);
		secret_free(tok);
		return r;
	default:
		return 0;
	}
}
