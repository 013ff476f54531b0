/*
 * config_check.c - the value checks of credd.conf: what a tenant or
 * client id, a URL, a path, a %d/NAME credential, a user, group or node
 * name, an account_match pattern, a boolean, an [msi] listen address and
 * an [msi] resource list must look like, by key type (config_check_str),
 * plus the checks the [scopes] section, the defaults and the %d expansion
 * use on their own.
 *
 * Must never: echo a value in a reason (they are fixed strings: a URL or
 * a DSN may carry credentials), report file:line (the parser does), or
 * touch the file system.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "entra/util.h"

#include "config.h"
#include "config_int.h"

#define CONFIG_ID_MAX 253 /* a DNS name at most */
#define CONFIG_NAME_MAX 256

int
config_check_has_ctl_or_space(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

static int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

static int
is_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_ID_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-')
			return 0;
	return 1;
}

int
config_check_is_node(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("._-", *s) == NULL)
			return 0;
	return 1;
}

/* Group names are looser than login names (directory groups); no ':'. */
static int
is_group(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= CONFIG_NAME_MAX && s[0] != '-' &&
	    !config_check_has_ctl_or_space(s) && strchr(s, ':') == NULL;
}

/* scheme://host...; the host part must not be empty. */
static int
is_url(const char *s, const char *scheme)
{
	size_t n = strlen(scheme);

	if (strncmp(s, scheme, n) != 0 || config_check_has_ctl_or_space(s))
		return 0;
	return s[n] != '\0' && s[n] != '/';
}

static int
is_account_pattern(const char *s)
{
	if (*s == '\0' || strlen(s) > CONFIG_NAME_MAX ||
	    config_check_has_ctl_or_space(s))
		return 0;
	for (; *s != '\0'; s++) {
		if (*s != '%')
			continue;
		s++;
		if (*s != 'u' && *s != '%')
			return 0;
	}
	return 1;
}

int
config_check_parse_bool(const char *s)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 ||
	    strcmp(s, "1") == 0)
		return 1;
	if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 ||
	    strcmp(s, "0") == 0)
		return 0;
	return -1;
}

/* Indexed by enum config_client_auth. */
static const char *const client_auth_names[] = { "none", "secret",
	"certificate", "federated" };

int
config_check_parse_client_auth(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(client_auth_names) / sizeof(*client_auth_names);
	     i++)
		if (strcmp(s, client_auth_names[i]) == 0)
			return (int)i;
	return -1;
}

/* Indexed by enum config_signin. */
static const char *const signin_names[] = { "device_code", "auth_code",
	"device_code,auth_code" };

int
config_check_parse_signin(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(signin_names) / sizeof(*signin_names); i++)
		if (strcmp(s, signin_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
config_signin_name(int signin)
{
	if (signin < 0 ||
	    (size_t)signin >= sizeof(signin_names) / sizeof(*signin_names))
		return "?";
	return signin_names[signin];
}

/* https://host/path: an absolute https URL with no query or fragment. */
static const char *
check_redirect_url(const char *val)
{
	const char *host = val + 8, *path;

	if (strncmp(val, "https://", 8) != 0 || has_ctl(val) ||
	    strchr(val, ' ') != NULL)
		return "must be an https:// URL";
	path = strchr(host, '/');
	if (path == NULL || path == host)
		return "must be an https:// URL with a host and a path";
	if (strpbrk(val, "?#") != NULL)
		return "must not have a query or a fragment";
	return strlen(val) > 1024 ? "is too long (at most 1024)" : NULL;
}

const char *
config_client_auth_name(int client_auth)
{
	if (client_auth < 0 ||
	    (size_t)client_auth >=
		sizeof(client_auth_names) / sizeof(*client_auth_names))
		return "?";
	return client_auth_names[client_auth];
}

/* One resource: an https:// URL or an id (GUID), never a scope. */
int
config_check_is_resource(const char *s, size_t n)
{
	static const char suffix[] = "/.default";
	size_t i;

	if (n == 0 || n > CONFIG_SCOPE_MAX - sizeof(suffix))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	if (n >= sizeof(suffix) - 1 &&
	    memcmp(s + n - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) ==
		0)
		return 0;
	if (n > 8 && strncmp(s, "https://", 8) == 0 && s[8] != '/')
		return 1;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
			return 0;
	return 1;
}

static const char *
check_resources(const char *val)
{
	const char *s = val, *e;
	size_t n = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		e = s;
		while (*e != '\0' && *e != ' ' && *e != '\t')
			e++;
		if (*s == '@') {
			/* A well-known resource of [entra] cloud. */
			if (config_cloud_service(s + 1, (size_t)(e - s - 1)) <
			    0)
				return "names an unknown well-known resource "
				       "(known: @storage @vault @sql @graph "
				       "@arm @databricks)";
		} else if (!config_check_is_resource(s, (size_t)(e - s)))
			return "must be resources (https:// URLs, GUIDs or "
			       "@NAME; not scopes) separated by spaces";
		if (++n > CONFIG_MSI_RESOURCES_MAX)
			return "lists too many resources";
		s = e;
	}
	return n > 0 ? NULL : "must list at least one resource";
}

const char *
config_check_path(const char *val)
{
	if (val[0] != '/')
		return "must be an absolute path";
	if (strlen(val) >= PATH_MAX)
		return "path too long";
	return config_check_has_ctl_or_space(val) ?
	    "path has spaces or control characters" :
	    NULL;
}

/*
 * An absolute path without '%', or "%d/NAME": the credential NAME in
 * $CREDENTIALS_DIRECTORY (systemd's credential names have no '/').
 */
static const char *
check_cred_path(const char *val)
{
	const char *name = val + 3;

	if (strncmp(val, "%d/", 3) != 0)
		return strchr(val, '%') != NULL ?
		    "may use '%' only as a leading %d/ (the credentials "
		    "directory)" :
		    config_check_path(val);
	if (*name == '\0' || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strchr(name, '/') != NULL ||
	    strchr(name, '%') != NULL || strlen(name) > CONFIG_NAME_MAX ||
	    config_check_has_ctl_or_space(name))
		return "must be %d/NAME with a credential name (no '/', '%', "
		       "spaces or control characters)";
	return NULL;
}

/* Space-separated host[:port] names: [A-Za-z0-9.-], a port 1..65535. */
static const char *
check_hosts(const char *val)
{
	const char *p = val, *c;
	size_t n, nh = 0;
	long port;

	for (; *p != '\0'; p += n) {
		p += strspn(p, " \t");
		n = strcspn(p, " \t");
		if (n == 0)
			continue;
		nh++;
		c = memchr(p, ':', n);
		if (c == p || n > 255 ||
		    strspn(p,
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			"0123456789.-") !=
			(size_t)((c != NULL ? c : p + n) - p))
			return "must be host names (host or host:port), "
			       "separated by spaces";
		if (c != NULL) {
			if ((size_t)(c + 1 - p) >= n ||
			    strspn(c + 1, "0123456789") !=
				n - (size_t)(c + 1 - p))
				return "has a port that is not a number";
			port = strtol(c + 1, NULL, 10);
			if (port < 1 || port > 65535)
				return "has a port outside 1..65535";
		}
	}
	return nh > 0 ? NULL : "must name at least one host";
}

/* Check val for key k; NULL when good, else why (never echoing val). */
const char *
config_check_str(const struct key *k, const char *val)
{
	switch (k->type) {
	case KT_ID:
		return is_id(val) ?
		    NULL :
		    "must be a GUID or a domain name ([A-Za-z0-9.-])";
	case KT_AUTHORITY:
		return is_url(val, "https://") ? NULL :
						 "must be an https:// URL";
	case KT_CLOUD:
		return config_cloud_parse(val) >= 0 ?
		    NULL :
		    "must be public, usgov or china";
	case KT_PROVIDER:
		return config_cloud_parse_provider(val) >= 0 ?
		    NULL :
		    "must be entra or oidc";
	case KT_PROXY:
		return is_url(val, "http://") || is_url(val, "https://") ?
		    NULL :
		    "must be an http:// or https:// URL";
	case KT_PATH:
		return config_check_path(val);
	case KT_CRED_PATH:
		return check_cred_path(val);
	case KT_USER:
		return util_valid_username(val) ? NULL :
						  "is not a valid user name";
	case KT_GROUP:
		return is_group(val) ? NULL : "is not a valid group name";
	case KT_NODE:
		return config_check_is_node(val) ?
		    NULL :
		    "must be a host name ([A-Za-z0-9._-], at most 255)";
	case KT_ACCOUNT:
		return is_account_pattern(val) ?
		    NULL :
		    "must be a pattern without spaces; only %u and %% expand";
	case KT_BACKEND:
		return strcmp(val, "file") == 0 ||
			strcmp(val, "postgres") == 0 ?
		    NULL :
		    "must be 'file' or 'postgres'";
	case KT_DSN:
		return has_ctl(val) ? "has control characters" : NULL;
	case KT_BOOL:
		return config_check_parse_bool(val) >= 0 ? NULL :
							   "must be yes or no";
	case KT_LISTEN:
		return config_msi_addr(val, NULL, NULL) == 0 ?
		    NULL :
		    "must be a loopback address and port: 127.0.0.1:PORT "
		    "or [::1]:PORT";
	case KT_ADDR:
		return config_listen_addr(val, 1, NULL, NULL) == 0 ?
		    NULL :
		    "must be an IP address and port: 127.0.0.1:PORT, "
		    "10.0.0.5:PORT, [::1]:PORT or [::]:PORT";
	case KT_RESOURCES:
		return check_resources(val);
	case KT_CLIENT_AUTH:
		return config_check_parse_client_auth(val) >= 0 ?
		    NULL :
		    "must be none, secret, certificate or federated";
	case KT_CAPS:
		/* Entra knows one client capability today: cp1 (CAE). */
		return strcasecmp(val, "cp1") == 0 ?
		    NULL :
		    "must be cp1 (the one capability credd declares)";
	case KT_IDENTITY:
		return config_workload_check_identity(val);
	case KT_ALIASES:
		return config_workload_check_aliases(val);
	case KT_CGPATH:
		return config_workload_check_cgpath(val);
	case KT_SIGNIN:
		return config_check_parse_signin(val) >= 0 ?
		    NULL :
		    "must be device_code, auth_code or device_code,auth_code";
	case KT_URL:
		return check_redirect_url(val);
	case KT_HOSTS:
		return check_hosts(val);
	case KT_INT:
		break;
	}
	return "internal: bad key type";
}

int
config_check_is_alias(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_ALIAS_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (!islower((unsigned char)*s) &&
		    !isdigit((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	return 1;
}

int
config_listen_addr(const char *listen, int is_any, struct sockaddr_storage *ss,
    unsigned *sslen)
{
	struct sockaddr_in6 sin6 = { 0 };
	struct sockaddr_in sin = { 0 };
	char host[64];
	const char *colon;
	long long port;
	size_t n;

	if (listen == NULL)
		return -EINVAL;
	if (listen[0] == '[') {
		colon = strstr(listen, "]:");
		if (colon == NULL)
			return -EINVAL;
		n = (size_t)(colon - listen - 1);
		colon++;
		listen++;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL)
			return -EINVAL;
		n = (size_t)(colon - listen);
	}
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (util_strtonum(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		/* Loopback: 127.0.0.0/8. */
		if (!is_any && (ntohl(sin.sin_addr.s_addr) >> 24) != 127)
			return -EINVAL;
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		if (ss != NULL)
			memcpy(ss, &sin, sizeof(sin));
		if (sslen != NULL)
			*sslen = sizeof(sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		if (!is_any && !IN6_IS_ADDR_LOOPBACK(&sin6.sin6_addr))
			return -EINVAL;
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		if (ss != NULL)
			memcpy(ss, &sin6, sizeof(sin6));
		if (sslen != NULL)
			*sslen = sizeof(sin6);
		return 0;
	}
	return -EINVAL;
}

int
config_msi_addr(const char *listen, struct sockaddr_storage *ss,
    unsigned *sslen)
{
	return config_listen_addr(listen, 0, ss, sslen);
}

int
config_listen_same(const char *a, const char *b)
{
	struct sockaddr_storage sa, sb;

	if (config_listen_addr(a, 1, &sa, NULL) < 0 ||
	    config_listen_addr(b, 1, &sb, NULL) < 0)
		return strcmp(a, b) == 0;
	/* The port decides: 0.0.0.0:P and 127.0.0.1:P cannot both bind. */
	return ((struct sockaddr_in *)(void *)&sa)->sin_port ==
	    ((struct sockaddr_in *)(void *)&sb)->sin_port;
}
