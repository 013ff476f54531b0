/*
 * clientauth.c - checks the app credential [entra] client_auth names,
 * and [offboarding]'s (clientauth.h): loads the certificate once, or
 * reads the federated token once, and throws both away.
 *
 * Must never: keep or print key material or a token; say a credential
 * is in use that no grant sends.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "assertion.h"
#include "clientauth.h"

static int
not_wired(const struct config *cf, char *msg, size_t msgsz)
{
	(void)snprintf(msg, msgsz,
	    "client_auth = %s: the file is good, but no grant sends it yet "
	    "(it takes effect with the sign-in work of issue 13); device "
	    "code sign-ins stay public-client requests",
	    config_client_auth_name(cf->client_auth));
	return CLIENTAUTH_NOT_WIRED;
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
			return not_wired(cf, msg, msgsz); /* startup's job */
		r = assertion_key_load(path, &k, msg, msgsz);
		assertion_key_free(k);
		break;
	case CONFIG_CLIENT_AUTH_FEDERATED:
		r = assertion_file_read(cf->client_assertion_file, now, &tok,
		    NULL, msg, msgsz);
		secret_free(tok);
		break;
	default:
		return 0;
	}
	return r < 0 ? r : not_wired(cf, msg, msgsz);
}
