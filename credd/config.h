/*
 * config.h - /etc/credd/credd.conf (INI), as in DESIGN.md §7.
 *
 * Sections [entra] [scopes] [server] [limits] [audit] [store] [msi]
 * [metrics] [callback] [sessions] [workload.NAME] [offboarding]. Each
 * section has a sorted key table; unknown sections and keys are errors,
 * and every error names "file:line: ...". Values are checked (numbers in
 * range, URLs https://, paths absolute). Secret files named by the
 * config (client_secret_file, key_file) are checked by their readers,
 * not here; they may also be "%d/NAME", a systemd credential, which
 * config_expand_credentials() resolves where the keys are read.
 * Comments start with ';' or '#', at line start or after whitespace.
 *
 * config.c reads the file and its INI syntax, config_keys.c holds the
 * section and key tables, config_check.c the value checks, config_err.c
 * the file:line message, config_lookup.c what credd asks at run time,
 * config_cloud.c the [entra] cloud presets (docs/clouds.md).
 */
#ifndef CREDD_CONFIG_H
#define CREDD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_SCOPES_MAX 64

/*
 * [entra] client_auth: how a confidential-client grant proves the app
 * (clientauth.h decorates those grants; public ones never carry it).
 */
enum config_client_auth {
	CONFIG_CLIENT_AUTH_NONE,	/* public client */
	CONFIG_CLIENT_AUTH_SECRET,	/* client_secret_file */
	CONFIG_CLIENT_AUTH_CERTIFICATE, /* client_certificate_file */
	CONFIG_CLIENT_AUTH_FEDERATED,	/* client_assertion_file */
};
#define CONFIG_MSI_RESOURCES_MAX 128

/*
 * [workload.NAME] (issue 14): what callers of each workload kind get.
 * The kinds, in this order: default (callers with no session), then
 * the kinds pam_entra names with workload=. workload.h applies them.
 */
enum config_workload_kind {
	CONFIG_WL_DEFAULT,
	CONFIG_WL_WORKSPACE,
	CONFIG_WL_JOB,
	CONFIG_WL_SCHEDULED,
	CONFIG_WL_APP,
	CONFIG_WORKLOADS
};
/* identity = none | user | app | user-or-app (app: needs client_auth). */
enum config_identity {
	CONFIG_IDENTITY_NONE,
	CONFIG_IDENTITY_USER,
	CONFIG_IDENTITY_APP,
	CONFIG_IDENTITY_USER_OR_APP,
};
/* The keys of a [workload.NAME] section, in table (name) order. */
enum config_wl_key {
	CONFIG_WLK_IDENTITY,
	CONFIG_WLK_SCOPES,
	CONFIG_WLK_SDK,
	CONFIG_WLK_START_SIGNIN,
	CONFIG_WL_KEYS
};
struct config_workload {
	int identity;	  /* enum config_identity */
	char *scopes;	  /* allowed aliases, space separated; "*": all */
	int sdk;	  /* the SDK endpoint serves this kind */
	int start_signin; /* may show a code and start a device flow */
	unsigned line[CONFIG_WL_KEYS]; /* where each key was set; 0: default */
};
/* [entra] signin: the sign-in methods, in preference order. */
/*
 * [entra] provider: whose protocol the authority speaks. entra (the
 * default): Entra ID's v2.0 endpoints under <authority>/<tenant>, the
 * tenant-specific issuer, tid and oid in the id_token. oidc: a generic
 * OpenID provider (Keycloak, oidc-provider): authority is its issuer URL,
 * the document is <authority>/.well-known/openid-configuration, the
 * account is the id_token's sub; tenant is only a name for this
 * deployment (records are sealed to it), never sent. Entra-only features
 * (client_capabilities, [offboarding]) are refused with oidc.
 */
enum config_provider {
	CONFIG_PROVIDER_ENTRA = 0,
	CONFIG_PROVIDER_OIDC = 1,
};

enum config_signin {
	CONFIG_SIGNIN_DEVICE_CODE,	/* device_code (the default) */
	CONFIG_SIGNIN_AUTH_CODE,	/* auth_code */
	CONFIG_SIGNIN_DEVICE_THEN_CODE, /* device_code,auth_code */
};

/*
 * [entra] cloud (issue 17; docs/clouds.md): the Azure cloud whose
 * authority and well-known resources ("@vault" in [scopes]) apply.
 * Default public. Only with provider = entra.
 */
enum config_cloud {
	CONFIG_CLOUD_PUBLIC = 0, /* login.microsoftonline.com */
	CONFIG_CLOUD_USGOV = 1,	 /* login.microsoftonline.us */
	CONFIG_CLOUD_CHINA = 2,	 /* login.chinacloudapi.cn */
	CONFIG_CLOUDS
};

struct config_scope {
	char *alias; /* "storage" */
	char *scope; /* "https://storage.azure.com/.default" (resolved) */
	/*
	 * The value as written when it named a well-known resource ("@vault",
	 * "@graph/User.Read"), resolved into scope for [entra] cloud; NULL
	 * when the file gave the scope string itself.
	 */
	char *preset;
	unsigned line; /* where the alias was set */
};

struct config {
	char *path;

	/* [entra] */
	int provider; /* enum config_provider */
	int cloud;    /* enum config_cloud; default public */
	/*
	 * Default: cloud's authority (public: https://login.microsoftonline.com);
	 * an explicit authority wins. No trailing '/'.
	 */
	char *authority;
	char *tenant;	 /* required */
	char *client_id; /* required */
	char
	    *client_secret_file; /* optional: confidential client; %d/NAME ok */
	/*
	 * client_auth: default secret when client_secret_file is set, else
	 * none. Exactly the file of the chosen method may be set.
	 */
	int client_auth;	       /* enum config_client_auth */
	char *client_certificate_file; /* PEM cert + key or PKCS#12; %d ok */
	char *client_assertion_file;   /* federated token, re-read per use */
	char *ca_file;		       /* optional */
	char *proxy;		       /* optional */
	int timeout; /* seconds per IdP request, default 10, 1..300 */
	/*
	 * The discovery document (discovery.h): hosts other than the
	 * authority's that its endpoints may name (space-separated
	 * host[:port]; NULL: none), and the floor of its TTL in seconds
	 * (default 300, 1..86400; Cache-Control max-age is clamped to it).
	 */
	char *discovery_hosts;
	int discovery_min_ttl;
	char *account_match; /* optional, "%u@contoso.com" */
	/*
	 * client_capabilities: "cp1" lets a token request that asks for it
	 * (the token op's cae) get a CAE token (xms_cc in the claims
	 * parameter); NULL (default): no CAE tokens, challenges still
	 * answered with the challenge's claims alone.
	 */
	char *client_capabilities;
	/* Sign-in (issue 13; docs/signin.md). */
	int signin; /* enum config_signin; auth_code needs account_match */
	char *domain_hint; /* optional: the authorize request's domain_hint */
	/* Where cloud and authority were set; 0: not in the file. */
	unsigned cloud_line;
	unsigned authority_line;

	/* [scopes]; "default = ALIAS" names the default alias (required) */
	struct config_scope scopes[CONFIG_SCOPES_MAX];
	size_t nscopes;
	char *default_alias;

	/* [server] */
	char *socket; /* default ENTRA_SOCKET_PATH */
	char *user;   /* run-as user when started as root, default "credd" */
	char *node;   /* default: gethostname() */
	char *admin_group; /* optional; default "credd-admin" */
	int session_check; /* seconds between session checks, default 60 */
	int session_idle; /* seconds a session may go unused, default 86400; 0: no bound */
	int session_liveness; /* end sessions whose uid has no process, default 1 */
	int max_conns_per_uid;	/* default 4096 */
	int idle_timeout;	/* seconds, default 60 */
	int max_conns;		/* total, default 65536 */
	int max_output_per_uid; /* unsent replies held per uid, default 1 MiB */
	int max_output;		/* the same in all, default 32 MiB */
	int locked_memory_kib;	/* locked secret RAM (secmem.h): 4096, 0 off */

	/* [limits] per uid */
	int requests_per_sec; /* token-bucket rate per uid, default 20000 */
	int request_burst;    /* default 40000 */
	int device_flows_per_hour; /* default 10 */
	int device_flow_cooldown; /* seconds after an unused flow expires, default 300 */
	int recent_use; /* seconds: a token used within this is refreshed proactively, default 3600 */

	/* [audit] */
	char *audit_file; /* optional JSON-lines file */

	/* [store] */
	char *backend;	  /* "file" (default) or "postgres" */
	char *store_path; /* default ENTRA_STATE_DIR */
	char *dsn;	  /* postgres only */
	char *key_file;	  /* default ENTRA_KEY_FILE; may be %d/NAME */
	char *marks_path; /* high-water marks; default store_path + "-marks" */
	int records_in_memory; /* users known before idle records leave memory, default 1000 */

	/*
	 * [callback]: the platform-callback sign-in. redirect_uri is the
	 * public https URL of GET /entra/callback behind the platform's
	 * proxy; with a client_auth other than none, auth-code sign-ins use
	 * it (a confidential web client), else they are paste-back.
	 */
	char *callback_redirect_uri; /* NULL: paste-back only */

	/* [metrics]: the Prometheus text page over loopback HTTP */
	char *metrics_listen; /* "127.0.0.1:PORT" / "[::1]:PORT"; NULL: off */

	/* [callback]: the platform sign-in callback listener (issue 13) */
	char *callback_listen; /* "ADDR:PORT", any IP literal; NULL: off */

	/* [msi]: the managed-identity-compatible loopback endpoint (SDKs) */
	char *msi_listen;   /* "127.0.0.1:PORT" / "[::1]:PORT"; NULL: off */
	int msi_secret_ttl; /* seconds a minted secret lives, default 86400 */
	char *msi_resources_text; /* as written; NULL: from [scopes] */
	int msi_imds; /* serve the IMDS shape (uid proof only), default 0 */
	int msi_request_timeout; /* seconds per request (own deadline), default 30 */
	int msi_conn_timeout; /* seconds of inactivity (slowloris), default 10 */
	int msi_max_conns;    /* total connections, default 1024 */
	int msi_secrets_per_uid; /* live credctl-env secrets per uid, default 64 */
	/*
	 * Allowed resources, parsed: msi_resources_text split on spaces, or
	 * by default every [scopes] scope "R/.default" as R, plus "R/" for
	 * URL resources (Hadoop ABFS asks for "https://storage.azure.com/").
	 */
	char *msi_resources[CONFIG_MSI_RESOURCES_MAX];
	size_t msi_nresources;

	/* [sessions] (issue 14): sessions bound to cgroups */
	int cgroups;	     /* resolve callers' cgroups at all, default yes */
	char *cgroup_prefix; /* bind only below it, default /user.slice/ */
	int peer_pidfd; /* use SO_PEERPIDFD when there; no: force fallback */
	/* [workload.NAME], by enum config_workload_kind */
	struct config_workload workload[CONFIG_WORKLOADS];
	/*
	 * [offboarding]: the admin app credential that asks Microsoft Graph
	 * to revoke a user's sign-in sessions (credctl admin revoke
	 * --entra). Its own app registration, never [entra] client_id (that
	 * one serves tokens to workloads): off unless client_id is set.
	 */
	char *off_client_id;		   /* NULL: offboarding off */
	int off_client_auth;		   /* secret|certificate|federated */
	char *off_client_secret_file;	   /* %d ok */
	char *off_client_certificate_file; /* %d ok */
	char *off_client_assertion_file;   /* federated token */
	char *off_graph_url; /* default: cloud's Graph (graph.microsoft.com) */
	unsigned graph_url_line; /* where set; 0: from the cloud */

	/*
	 * Not a key: $CREDENTIALS_DIRECTORY as config_expand_credentials()
	 * used it for a %d path, else NULL.
	 */
	char *creds_dir;
};

/*
 * Parse path into a new config. Returns 0 and *out, or a negative errno
 * with a "file:line: message" written to err (errsz bytes).
 */
int config_load(const char *path, struct config **out, char *err, size_t errsz);
/* Same, from a buffer (for tests); name is used in messages. */
int config_parse(const char *name, const char *buf, size_t len,
    struct config **out, char *err, size_t errsz);
void config_free(struct config *cf);

/*
 * Resolve "%d/NAME" in key_file, client_secret_file and
 * client_certificate_file (of [entra] and of [offboarding]) to
 * creds_dir/NAME: creds_dir is $CREDENTIALS_DIRECTORY, where systemd puts
 * LoadCredential= files (procenv.h). Not done by config_load, so that
 * --check-config and SIGHUP work anywhere; call it where the files are
 * read. On success cf->creds_dir is set when a path used %d. Returns 0;
 * -ENOENT when a path uses %d and creds_dir is NULL or empty; -EINVAL
 * when creds_dir is not absolute or the result is not a usable path;
 * -ENOMEM. err gets "file: key: why".
 */
int config_expand_credentials(struct config *cf, const char *creds_dir,
    char *err, size_t errsz);

/*
 * Resolve a client's scope argument: an alias or one of the configured
 * scope strings; NULL or "" means the default alias. Returns the
 * configured scope string (owned by cf) or NULL if unknown.
 */
/* "none", "secret", "certificate" or "federated". */
const char *config_client_auth_name(int client_auth);
/* "device_code", "auth_code" or "device_code,auth_code". */
const char *config_signin_name(int signin);

const char *config_scope_resolve(const struct config *cf, const char *arg);
/* The default alias's scope string. */
const char *config_default_scope(const struct config *cf);
/*
 * Expand account_match for user ("%u" -> user, "%%" -> "%") into dst.
 * Returns 0, -ENOENT if account_match is unset, -ENAMETOOLONG.
 */
int config_account_match(const struct config *cf, const char *user, char *dst,
    size_t dstsz);

/*
 * Parse an [msi] listen value: a loopback literal and a port,
 * "127.0.0.1:PORT" (any 127/8 address) or "[::1]:PORT". Fills *ss and
 * *sslen when they are not NULL. 0 or -EINVAL.
 */
struct sockaddr_storage;
int config_msi_addr(const char *listen, struct sockaddr_storage *ss,
    unsigned *sslen);
/*
 * The same for any listen value: is_any 0 is config_msi_addr (loopback
 * only); is_any 1 takes any IPv4 or IPv6 literal ([callback] listen,
 * which a reverse proxy on another host may reach). 0 or -EINVAL.
 */
int config_listen_addr(const char *listen, int is_any,
    struct sockaddr_storage *ss, unsigned *sslen);
/*
 * 1 when two listen values would bind the same port (or, unparsable,
 * are equal), else 0.
 */
int config_listen_same(const char *a, const char *b);
/*
 * The App Service endpoint URL for cf's [msi] listen, e.g.
 * "http://127.0.0.1:8391/msi/token". -ENOENT when the endpoint is off,
 * -ENAMETOOLONG.
 */
int config_msi_endpoint(const struct config *cf, char *dst, size_t dstsz);
/*
 * [workload.NAME] (config_workload.c): the kind called name ("job"),
 * or -1 (NULL and "" too); a kind's name; 1 when kind's scopes allow
 * alias.
 */
int config_workload_kind(const char *name);
const char *config_workload_name(int kind);
int config_workload_allows(const struct config *cf, int kind,
    const char *alias);
/* 1 when resource is in the allowed list (exact, case-sensitive). */
int config_msi_resource_allowed(const struct config *cf, const char *resource);

/*
 * [entra] cloud (config_cloud.c; docs/clouds.md). The name of a cloud
 * ("public", "usgov", "china"; "?" when out of range) and of a provider
 * ("entra", "oidc").
 */
const char *config_cloud_name(int cloud);
const char *config_provider_name(int provider);
/*
 * The resource of well-known service name ("vault") in cloud, e.g.
 * "https://vault.usgovcloudapi.net" (no trailing '/'; Databricks: its
 * application id). 0 and *out (static); -ENOENT: no such service;
 * -ENXIO: the service does not exist in that cloud.
 */
int config_cloud_resource(int cloud, const char *service, const char **out);
/*
 * What credd --check-config prints about the cloud: the provider and
 * cloud, the resolved authority, each alias's resolved scope (and the
 * preset it came from), [offboarding] graph_url. To f.
 */
void config_cloud_print(const struct config *cf, FILE *f);
/*
 * The cross-cloud warnings (not errors: admins may have reasons): a
 * scope string, an authority or a graph_url that names another cloud's
 * host than [entra] cloud. fn (when not NULL) gets each one as
 * "file:line: message", arg passed through. Returns how many.
 */
int config_cloud_warnings(const struct config *cf,
    void (*fn)(void *arg, const char *msg), void *arg);

#endif
