/*
 * doctor.h - `credd doctor`: check a node the way an admin would by
 * hand, print one line per check with a fix, and exit 1 when one fails.
 *
 * Checks, in order: the configuration and its run-as user; the key ring
 * and the client secret file (owner, mode, parse); the state directory,
 * high-water marks and audit file (owner, mode); the store (file: the
 * directory; postgres: connect and schema version, read only); the
 * socket (a socket, owner, mode, and it answers `stats`); the IdP (the
 * discovery document over TLS with the configured CA, and the clock skew
 * from its Date header); the SDK endpoint's port ([msi] listen: held by
 * credd, or free while credd is down); the PAM stack (pam_entra.so in
 * common-session with arguments the module accepts).
 *
 * Output, one line per check, then "fix:" lines under each warn or FAIL:
 *     ok    keys: /etc/credd/credd.keys: owner root, mode 0600, active key 7
 *     FAIL  keys: /etc/credd/credd.keys: mode 0644: group or others can read it
 *           fix: chmod 0600 /etc/credd/credd.keys
 * Must never: print a secret (a DSN is shown without its password, a key
 * ring or a client secret only as owner and mode), change anything on the
 * node (no schema migration, no chmod, no socket bound for more than a
 * probe), or hang (every network check has a deadline).
 */
#ifndef CREDD_DOCTOR_H
#define CREDD_DOCTOR_H

#include <stddef.h>
#include <stdint.h>

/*
 * credd doctor [-c FILE] [-k KEYS] [--pam-dir DIR]: argv[0] is "doctor".
 * Writes the report to stdout. Returns the exit status: 0 when nothing
 * failed (warnings allowed), 1 when a check failed, 2 on a usage error.
 */
int doctor_main(int argc, char **argv);

/* Clock skew limits, seconds either way (the IdP's Date header). */
#define DOCTOR_SKEW_WARN_S 60
#define DOCTOR_SKEW_FAIL_S 300

enum doctor_level {
	DOCTOR_OK,
	DOCTOR_WARN,
	DOCTOR_FAIL,
};

/* The verdict for a clock skew of skew_s seconds (either sign). */
enum doctor_level doctor_skew_level(int64_t skew_s);

/*
 * One pam_entra.so argument, as the module reads it (pam_entra/args.c:
 * doctor keeps a copy of its table, since credd must not link libpam).
 * Returns DOCTOR_OK for a known argument with a good value, DOCTOR_WARN
 * for an unknown one (the module ignores it), DOCTOR_FAIL for a bad
 * value (the module then fails the session with PAM_SERVICE_ERR); *why
 * gets a static explanation for the last two.
 */
enum doctor_level doctor_pam_arg(const char *arg, const char **why);

/*
 * Split one line of a PAM service file. Returns 1 when it is a session
 * line (type "session" or "-session") for pam_entra.so, with *args set
 * to the text after the module path (leading blanks skipped; borrowed
 * from line); 2 when it is "@include NAME" with NAME copied to inc
 * (incsz bytes); 0 for anything else (comments, other modules, other
 * types). line is not modified.
 */
int doctor_pam_line(const char *line, const char **args, char *inc,
    size_t incsz);

#endif
