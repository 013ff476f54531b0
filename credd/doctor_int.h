/*
 * doctor_int.h - what the parts of `credd doctor` share: the run's
 * context and the report lines. doctor.c owns the context and the output;
 * doctor_files.c (config, keys, state), doctor_net.c (socket, IdP, SDK
 * port), doctor_store.c (the store) and doctor_pam.c (the PAM stack) each
 * add their checks. Not for use outside credd/doctor*.c.
 */
#ifndef CREDD_DOCTOR_INT_H
#define CREDD_DOCTOR_INT_H

#include <stdio.h>
#include <sys/types.h>

#include "doctor.h"

struct config;

struct doctor {
	FILE *out;
	const char *conf_path;
	const char *keys;    /* -k, or NULL: [store] key_file */
	const char *pam_dir; /* --pam-dir, default /etc/pam.d */
	struct config *cf;   /* NULL when the configuration does not load */
	uid_t run_uid;	     /* [server] user's uid, or our euid */
	gid_t run_gid;
	int is_credd_up; /* the socket answered */
	unsigned nfail, nwarn;
};

/* One report line: "ok    check: what", "warn  ...", "FAIL  ...". */
void doctor_say(struct doctor *d, enum doctor_level lv, const char *check,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The "fix:" line under the last warn or FAIL. */
void doctor_fix(struct doctor *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void doctor_check_config(struct doctor *d);
void doctor_check_keys(struct doctor *d);
void doctor_check_state(struct doctor *d);
void doctor_check_store(struct doctor *d);
void doctor_check_socket(struct doctor *d);
void doctor_check_idp(struct doctor *d);
void doctor_check_sdk_port(struct doctor *d);
void doctor_check_pam(struct doctor *d);

#endif
