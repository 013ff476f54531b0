/*
 * args.c - parse pam_entra's module arguments into struct
 * pam_entra_args. Numbers go through util_strtonum (whole string, range
 * checked); paths and names are checked for shape.
 *
 * Must never: accept a relative socket path, a number with trailing
 * garbage, or log an argument without quoting and capping it.
 */
#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <sys/un.h>
#include <security/pam_ext.h>

#include "entra/paths.h"
#include "entra/util.h"
#include "args.h"

#define ARGS_LOG_CAP 80
#define ARGS_SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* Log a bad value for a known argument; returns -EINVAL. */
static int
bad_value(pam_handle_t *pamh, const char *arg, const char *why)
{
	char q[ARGS_LOG_CAP + 1];

	pam_syslog(pamh, LOG_ERR, "bad module argument \"%s\": %s",
	    util_log_str(q, sizeof(q), arg, ARGS_LOG_CAP), why);
	return -EINVAL;
}

/* "name=value": the value when arg starts with name and '=', else NULL. */
static const char *
value_of(const char *arg, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return arg + n + 1;
	return NULL;
}

/* A-Z a-z 0-9 _ . - : workload and service names. */
static int
is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* NAME[,NAME...] or empty (no service counts as a switch by name). */
static int
is_valid_service_list(const char *s)
{
	size_t i;

	if (strlen(s) > ARGS_SWITCH_MAX)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == ',') {
			if (i == 0 || s[i + 1] == '\0' || s[i + 1] == ',')
				return 0;
		} else if (!is_name_char(s[i]))
			return 0;
	}
	return 1;
}

int
args_is_switch_service(const struct pam_entra_args *a, const char *service)
{
	const char *p = a->switch_services, *end;
	size_t n = strlen(service);

	if (p == NULL || n == 0)
		return 0;
	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) == n && strncmp(p, service, n) == 0)
			return 1;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

static int
is_valid_workload(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > ARGS_WORKLOAD_MAX)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!is_name_char(s[i]))
			return 0;
	return 1;
}

/* One "name=value" argument; 1 when known, 0 when not, -EINVAL when bad. */
static int
parse_valued(pam_handle_t *pamh, const char *arg, struct pam_entra_args *a)
{
	const char *v;
	long long n;

	if ((v = value_of(arg, "socket")) != NULL) {
		if (v[0] != '/' || strlen(v) >= ARGS_SUN_PATH_MAX)
			return bad_value(pamh, arg,
			    "need an absolute path shorter than 108 bytes");
		a->socket = v;
	} else if ((v = value_of(arg, "timeout")) != NULL) {
		if (util_strtonum(v, 1, ARGS_TIMEOUT_MAX_MS, &n) < 0)
			return bad_value(pamh, arg,
			    "need milliseconds, 1..60000");
		a->timeout_ms = n;
	} else if ((v = value_of(arg, "wait")) != NULL) {
		if (util_strtonum(v, 0, ARGS_WAIT_MAX_S, &n) < 0)
			return bad_value(pamh, arg, "need seconds, 0..900");
		a->wait_s = n;
	} else if ((v = value_of(arg, "workload")) != NULL) {
		if (!is_valid_workload(v))
			return bad_value(pamh, arg,
			    "need 1..64 of [A-Za-z0-9_.-]");
		a->workload = v;
	} else if ((v = value_of(arg, "switch_services")) != NULL) {
		if (!is_valid_service_list(v))
			return bad_value(pamh, arg,
			    "need service names separated by commas");
		a->switch_services = v;
	} else if ((v = value_of(arg, "minimum_uid")) != NULL) {
		if (util_strtonum(v, 0, (uid_t)-2, &n) < 0)
			return bad_value(pamh, arg, "need a uid");
		a->minimum_uid = (uid_t)n;
	} else
		return 0;
	return 1;
}

int
args_parse(pam_handle_t *pamh, int argc, const char **argv,
    struct pam_entra_args *out)
{
	char q[ARGS_LOG_CAP + 1];
	int i, r;

	memset(out, 0, sizeof(*out));
	out->socket = ENTRA_SOCKET_PATH;
	out->timeout_ms = ARGS_TIMEOUT_DEFAULT_MS;
	out->minimum_uid = ARGS_MINIMUM_UID_DEFAULT;
	out->switch_services = ARGS_SWITCH_DEFAULT;
	for (i = 0; i < argc; i++) {
		if (argv[i] == NULL)
			continue;
		if (strcmp(argv[i], "quiet") == 0) {
			out->is_quiet = 1;
			continue;
		}
		if (strcmp(argv[i], "debug") == 0) {
			out->is_debug = 1;
			continue;
		}
		if (strcmp(argv[i], "switch_signin") == 0) {
			out->is_switch_signin = 1;
			continue;
		}
		r = parse_valued(pamh, argv[i], out);
		if (r < 0)
			return r;
		if (r == 0)
			pam_syslog(pamh, LOG_WARNING,
			    "unknown module argument \"%s\" ignored",
			    util_log_str(q, sizeof(q), argv[i], ARGS_LOG_CAP));
	}
	return 0;
}
