/*
 * args.h - pam_entra's module arguments (DESIGN.md §8):
 *   socket=PATH timeout=MS wait=SECONDS workload=NAME minimum_uid=N
 *   switch_services=LIST switch_signin quiet debug
 * Unknown arguments are logged and ignored, as Linux-PAM's own modules do;
 * a bad value for a known argument is a configuration error.
 */
#ifndef PAM_ENTRA_ARGS_H
#define PAM_ENTRA_ARGS_H

#include <stdint.h>
#include <sys/types.h>
#include <security/pam_modules.h>

#define ARGS_TIMEOUT_DEFAULT_MS 2000
#define ARGS_TIMEOUT_MAX_MS 60000 /* a login must never wait longer */
#define ARGS_WAIT_MAX_S 900	  /* PROTO_WAIT_MAX */
#define ARGS_MINIMUM_UID_DEFAULT 1000
#define ARGS_WORKLOAD_MAX 64
#define ARGS_SWITCH_MAX 1024
/* Services that switch users: their sessions show no code (issue 11, 12). */
#define ARGS_SWITCH_DEFAULT "su,su-l,sudo,sudo-i,runuser,runuser-l"

struct pam_entra_args {
	const char *socket;   /* borrowed: argv or ENTRA_SOCKET_PATH */
	const char *workload; /* borrowed from argv; NULL = credd's default */
	int64_t timeout_ms;
	int64_t wait_s;
	/* Comma-separated service names whose sessions are opened by one
	 * user for another; borrowed from argv or ARGS_SWITCH_DEFAULT. */
	const char *switch_services;
	uid_t minimum_uid;
	int is_quiet;
	int is_debug;
	int is_switch_signin; /* switch sessions may show a code anyway */
};

/*
 * Fill *out from the module's argv (strings stay borrowed from argv, which
 * PAM keeps for the life of the handle). Defaults first, the last
 * occurrence of an argument wins. Returns 0, or -EINVAL after logging the
 * offending argument when a known argument has a bad value.
 */
int args_parse(pam_handle_t *pamh, int argc, const char **argv,
    struct pam_entra_args *out);
/* 1 when service is one of a->switch_services (exact match), else 0. */
int args_is_switch_service(const struct pam_entra_args *a, const char *service);

#endif
