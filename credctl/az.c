/*
 * az.c - credctl's az shim: `credctl az ...`, or credctl run through a
 * symlink named `az`. It answers `az account get-access-token` and `az
 * account show` from credd, in az's own output shapes and wording, so
 * AzureCliCredential and tools that run az get the user's tokens; any
 * other az command runs the real Azure CLI. `az login --claims-challenge
 * B64` (the one place the real az takes a claims challenge, since
 * Azure/azure-cli#31778 and #31856, mid-2025) makes credd redeem the
 * challenge, so the next get-access-token has a token that satisfies
 * it; the shim's tokens are ordinary (never CAE).
 *
 * Must never: exec an az found through PATH (the real az is run by
 * absolute path only, and never this program), print a token anywhere
 * but stdout, or trust the token's claims for anything but display
 * (the tenant id is read unverified).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "entra/proto.h"
#include "entra/secret.h"

#include "call.h"
#include "cmd.h"
#include "exit.h"
#include "out.h"

#define AZ_REAL_DEFAULT "/usr/bin/az"

/* The "tid" claim of a JWT access token (unverified; only for display). */
static char *
jwt_tid(const char *tok)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *p = strchr(tok, '.'), *e, *pos;
	unsigned char *bin;
	size_t n, i, o = 0;
	uint32_t acc = 0;
	int bits = 0;
	json_t *claims;
	char *tid = NULL;

	if (p == NULL || (e = strchr(++p, '.')) == NULL)
		return NULL;
	n = (size_t)(e - p);
	bin = malloc(n + 1);
	if (bin == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		pos = memchr(tbl, p[i], 64);
		if (pos == NULL)
			break;
		acc = acc << 6 | (uint32_t)(pos - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			bin[o++] = (unsigned char)(acc >> bits);
		}
	}
	claims = json_loadb((const char *)bin, o, 0, NULL);
	secret_wipe(bin, n + 1);
	free(bin);
	if (json_is_string(json_object_get(claims, "tid")))
		tid = strdup(json_string_value(json_object_get(claims, "tid")));
	json_decref(claims);
	return tid;
}

/* az's wording for an error reply, on stderr; returns az's exit code 1. */
static int
az_error(const json_t *err_resp)
{
	const json_t *e = json_object_get(err_resp, "error");
	const char *code = proto_response_error(err_resp);
	char msg[OUT_MSG_MAX], dev[2 * OUT_MSG_MAX];

	out_clean(msg, sizeof(msg), out_jstr(e, "message"));
	if (strcmp(code, "consent_required") == 0 ||
	    strcmp(code, "consent_pending") == 0 ||
	    strcmp(code, "reauth_required") == 0 ||
	    strcmp(code, "consent_declined") == 0) {
		/* "az login" makes SDK credential chains move on. */
		if (out_device_clause(dev, sizeof(dev), e))
			fprintf(stderr,
			    "ERROR: Please run 'az login' to setup "
			    "account. credd: sign-in needed: %s, then run this "
			    "again.\n",
			    dev);
		else
			fprintf(stderr,
			    "ERROR: Please run 'az login' to setup "
			    "account. credd: %s (%s); run 'credctl login'.\n",
			    code, msg);
		return EXIT_ERR;
	}
	fprintf(stderr, "ERROR: credd: %s: %s\n", code, msg);
	return EXIT_ERR;
}

struct az_opts {
	const char *resource, *scope, *tenant, *subscription, *output, *query;
	const char *claims; /* az login --claims-challenge */
};

enum { AZ_TOKEN, AZ_SHOW, AZ_LOGIN };

/* az-style options: --name value or --name=value; unknown ones refused. */
static int
az_parse(int argc, char **argv, int mode, struct az_opts *o)
{
	static const struct {
		const char *name, *alias;
		size_t off;
	} names[] = {
		{ "--resource", NULL, offsetof(struct az_opts, resource) },
		{ "--scope", NULL, offsetof(struct az_opts, scope) },
		{ "--tenant", "-t", offsetof(struct az_opts, tenant) },
		{ "--subscription", NULL,
		    offsetof(struct az_opts, subscription) },
		{ "--output", "-o", offsetof(struct az_opts, output) },
		{ "--query", NULL, offsetof(struct az_opts, query) },
		{ "--claims-challenge", NULL,
		    offsetof(struct az_opts, claims) },
	};
	const char *arg, *val, *eq;
	size_t i, n;
	int k;

	memset(o, 0, sizeof(*o));
	for (k = 0; k < argc; k++) {
		arg = argv[k];
		if (strcmp(arg, "--only-show-errors") == 0 ||
		    strcmp(arg, "--verbose") == 0 ||
		    strcmp(arg, "--debug") == 0)
			continue;
		/* az login's flags: credd signs in its own way. */
		if (mode == AZ_LOGIN &&
		    (strcmp(arg, "--use-device-code") == 0 ||
			strcmp(arg, "--allow-no-subscriptions") == 0))
			continue;
		eq = strchr(arg, '=');
		n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if ((strlen(names[i].name) == n &&
				strncmp(arg, names[i].name, n) == 0) ||
			    (names[i].alias != NULL &&
				strlen(names[i].alias) == n &&
				strncmp(arg, names[i].alias, n) == 0))
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			fprintf(stderr,
			    "ERROR: credd's az shim does not support "
			    "'%.64s' here\n",
			    arg);
			return EXIT_USAGE;
		}
		if (eq != NULL)
			val = eq + 1;
		else if (k + 1 < argc)
			val = argv[++k];
		else {
			fprintf(stderr,
			    "ERROR: argument %s: expected one "
			    "argument\n",
			    names[i].name);
			return EXIT_USAGE;
		}
		*(const char **)(void *)((char *)o + names[i].off) = val;
	}
	if (o->claims != NULL && mode != AZ_LOGIN) {
		/* As az: only az login takes a claims challenge. */
		fprintf(stderr,
		    "ERROR: unrecognized arguments: --claims-challenge; run "
		    "'az login --claims-challenge ...' and then this again\n");
		return EXIT_USAGE;
	}
	if (o->claims != NULL &&
	    (o->claims[0] == '\0' || strlen(o->claims) > PROTO_CLAIMS_MAX)) {
		fprintf(stderr,
		    "ERROR: --claims-challenge: 1..%d bytes of "
		    "base64\n",
		    PROTO_CLAIMS_MAX);
		return EXIT_USAGE;
	}
	if (o->output != NULL && strcmp(o->output, "json") != 0 &&
	    strcmp(o->output, "jsonc") != 0 && strcmp(o->output, "tsv") != 0 &&
	    strcmp(o->output, "none") != 0) {
		fprintf(stderr, "ERROR: credd's az shim prints json or tsv\n");
		return EXIT_USAGE;
	}
	return -1;
}

/* Print obj (or obj[query]) as az would: indented JSON, or a tsv value. */
static int
az_print(json_t *obj, const struct az_opts *o)
{
	struct secret *line;
	json_t *v = obj;
	char *s, num[32];
	int r;

	if (o->query != NULL) {
		v = json_object_get(obj, o->query);
		if (v == NULL) {
			fprintf(stderr,
			    "ERROR: credd's az shim supports --query "
			    "with one top-level field name\n");
			return EXIT_USAGE;
		}
	}
	if (o->output != NULL && strcmp(o->output, "none") == 0)
		return EXIT_OK;
	if (o->output != NULL && strcmp(o->output, "tsv") == 0 &&
	    !json_is_object(v)) {
		if (json_is_string(v))
			s = strdup(json_string_value(v));
		else {
			snprintf(num, sizeof(num), "%lld",
			    (long long)json_integer_value(v));
			s = strdup(num);
		}
	} else
		s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s == NULL) {
		fprintf(stderr, "ERROR: out of memory\n");
		return EXIT_ERR;
	}
	line = secret_new(s, strlen(s) + 1);
	if (line != NULL)
		line->ptr[line->len - 1] = '\n';
	secret_wipe_str(s);
	if (line == NULL)
		return EXIT_ERR;
	r = out_secret(line);
	secret_free(line);
	return r;
}

static int
az_get_token(struct ctx *c, int argc, char **argv, int mode)
{
	int is_show = mode != AZ_TOKEN;
	char scope[PROTO_STR_MAX + 16], stamp[64], name[128];
	json_t *resp = NULL, *err = NULL, *out = NULL;
	const char *tok, *sub, *acct;
	struct az_opts o;
	struct tm tm;
	time_t t;
	int64_t exp;
	char *tid;
	int r;

	r = az_parse(argc, argv, mode, &o);
	if (r >= 0)
		return r;
	if (o.scope != NULL && o.resource != NULL) {
		fprintf(stderr,
		    "ERROR: usage error: --resource and --scope are "
		    "mutually exclusive\n");
		return EXIT_USAGE;
	}
	if (mode == AZ_SHOW && (o.scope != NULL || o.resource != NULL)) {
		fprintf(stderr, "ERROR: account show takes no resource\n");
		return EXIT_USAGE;
	}
	if (o.resource != NULL) {
		/* R + "/.default": "R/" keeps its slash, as az does. */
		if (snprintf(scope, sizeof(scope), "%s/.default", o.resource) >=
		    (int)sizeof(scope)) {
			fprintf(stderr, "ERROR: resource too long\n");
			return EXIT_USAGE;
		}
	} else if (o.scope != NULL)
		snprintf(scope, sizeof(scope), "%s", o.scope);
	r = call_token_claims(c,
	    o.resource != NULL || o.scope != NULL ? scope : NULL,
	    PROTO_MIN_VALID_DEFAULT, o.claims, &resp, &err);
	if (err != NULL) {
		r = az_error(err);
		json_decref(err);
		return r;
	}
	if (r != EXIT_OK)
		return EXIT_ERR;
	tok = out_jstr(resp, "access_token");
	exp = out_jint(resp, "expires_on", 0);
	tid = tok != NULL ? jwt_tid(tok) : NULL;
	if (tid == NULL) {
		fprintf(stderr, "ERROR: credd's token carries no tenant\n");
		json_decref(resp);
		return EXIT_ERR;
	}
	if (o.tenant != NULL && strcmp(o.tenant, tid) != 0 &&
	    strcmp(o.tenant, "organizations") != 0 &&
	    strcmp(o.tenant, "common") != 0) {
		fprintf(stderr, "ERROR: credd serves tenant %s only\n", tid);
		free(tid);
		json_decref(resp);
		return EXIT_ERR;
	}
	/* No subscriptions here: like az's tenant-level account. */
	sub = o.subscription != NULL ? o.subscription : tid;
	if (is_show) {
		acct = out_jstr(resp, "account");
		snprintf(name, sizeof(name), "N/A(tenant level account)");
		out = json_pack("{s:s, s:s, s:s, s:b, s:[], s:s, s:s, s:s, "
				"s:{s:s, s:s}}",
		    "environmentName", "AzureCloud", "homeTenantId", tid, "id",
		    sub, "isDefault", 1, "managedByTenants", "name", name,
		    "state", "Enabled", "tenantId", tid, "user", "name",
		    acct != NULL ? acct : "", "type", "user");
		if (out != NULL && mode == AZ_LOGIN)
			out = json_pack("[o]", out); /* az login: a list */
	} else {
		t = (time_t)exp;
		if (localtime_r(&t, &tm) == NULL ||
		    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S.000000",
			&tm) == 0)
			stamp[0] = '\0';
		out = json_pack("{s:O, s:s, s:I, s:s, s:s, s:s}", "accessToken",
		    json_object_get(resp, "access_token"), "expiresOn", stamp,
		    "expires_on", (json_int_t)exp, "subscription", sub,
		    "tenant", tid, "tokenType",
		    out_jstr(resp, "token_type") != NULL ?
			out_jstr(resp, "token_type") :
			"Bearer");
	}
	free(tid);
	json_decref(resp);
	if (out == NULL) {
		fprintf(stderr, "ERROR: out of memory\n");
		return EXIT_ERR;
	}
	r = az_print(out, &o);
	json_decref(out);
	return r;
}

/* az login with a claims challenge is ours; without one, the real az's. */
static int
az_has_claims(int argc, char **argv)
{
	int k;

	for (k = 0; k < argc; k++)
		if (strncmp(argv[k], "--claims-challenge", 18) == 0 &&
		    (argv[k][18] == '\0' || argv[k][18] == '='))
			return 1;
	return 0;
}

/* Everything else: the real az, by absolute path, never ourselves. */
static int
az_exec_real(char **argv)
{
	const char *real = getenv("CREDCTL_REAL_AZ");
	char a[PATH_MAX], b[PATH_MAX];

	if (real == NULL || real[0] == '\0')
		real = AZ_REAL_DEFAULT;
	if (real[0] != '/') {
		fprintf(stderr,
		    "ERROR: CREDCTL_REAL_AZ must be an absolute "
		    "path\n");
		return 127;
	}
	if (realpath(real, a) == NULL) {
		fprintf(stderr,
		    "ERROR: the Azure CLI is not installed at %s "
		    "(credd's az shim answers only 'account get-access-token' "
		    "and 'account show'; set CREDCTL_REAL_AZ)\n",
		    real);
		return 127;
	}
	if (realpath("/proc/self/exe", b) != NULL && strcmp(a, b) == 0) {
		fprintf(stderr, "ERROR: CREDCTL_REAL_AZ names this shim\n");
		return 127;
	}
	argv[0] = (char *)(uintptr_t) "az";
	execv(a, argv);
	fprintf(stderr, "ERROR: cannot run %s: %s\n", a, strerror(errno));
	return 127;
}

int
az_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	if (argc >= 3 && strcmp(argv[1], "account") == 0 &&
	    strcmp(argv[2], "get-access-token") == 0)
		return az_get_token(c, argc - 3, argv + 3, AZ_TOKEN);
	if (argc >= 3 && strcmp(argv[1], "account") == 0 &&
	    strcmp(argv[2], "show") == 0)
		return az_get_token(c, argc - 3, argv + 3, AZ_SHOW);
	if (argc >= 2 && strcmp(argv[1], "login") == 0 &&
	    az_has_claims(argc - 2, argv + 2))
		return az_get_token(c, argc - 2, argv + 2, AZ_LOGIN);
	return az_exec_real(argv);
}
