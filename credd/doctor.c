/*
 * doctor.c - `credd doctor`: its options, the report lines, and the
 * checks run in order (doctor.h). The checks live in doctor_files.c,
 * doctor_store.c, doctor_net.c and doctor_pam.c.
 *
 * Must never: print a secret (the parts pass only paths, owners, modes,
 * counts and error texts that hold none), change the node, or exit 0 when
 * a check failed.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "entra/paths.h"

#include "config.h"
#include "doctor.h"
#include "doctor_int.h"

#define DOCTOR_LINE_MAX 1024
#define DOCTOR_PAM_DIR "/etc/pam.d"

static const char *const level_word[] = {
	[DOCTOR_OK] = "ok",
	[DOCTOR_WARN] = "warn",
	[DOCTOR_FAIL] = "FAIL",
};

/* One line, control characters flattened: a path cannot forge a line. */
static void __attribute__((format(printf, 3, 0)))
emit(struct doctor *d, const char *prefix, const char *fmt, va_list ap)
{
	char msg[DOCTOR_LINE_MAX];
	size_t i;

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	(void)fprintf(d->out, "%s%s\n", prefix, msg);
	(void)fflush(d->out);
}

void
doctor_say(struct doctor *d, enum doctor_level lv, const char *check,
    const char *fmt, ...)
{
	char prefix[96];
	va_list ap;

	if (lv == DOCTOR_FAIL)
		d->nfail++;
	else if (lv == DOCTOR_WARN)
		d->nwarn++;
	(void)snprintf(prefix, sizeof(prefix), "%-4s  %s: ", level_word[lv],
	    check);
	va_start(ap, fmt);
	emit(d, prefix, fmt, ap);
	va_end(ap);
}

void
doctor_fix(struct doctor *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(d, "      fix: ", fmt, ap);
	va_end(ap);
}

enum doctor_level
doctor_skew_level(int64_t skew_s)
{
	int64_t a = skew_s < 0 ? -skew_s : skew_s;

	if (a > DOCTOR_SKEW_FAIL_S)
		return DOCTOR_FAIL;
	if (a > DOCTOR_SKEW_WARN_S)
		return DOCTOR_WARN;
	return DOCTOR_OK;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: credd doctor [-c FILE] [-k KEYS] [--pam-dir DIR]\n");
	exit(2);
}

/* The key ring is read: keep it out of cores, as the daemon does. */
static int
harden(void)
{
	struct rlimit rl = { 0, 0 };

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &rl);
	umask(077);
	return sodium_init() < 0 ? -1 : 0;
}

int
doctor_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "pam-dir", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct doctor d = {
		.out = stdout,
		.conf_path = ENTRA_CONFIG_PATH,
		.pam_dir = DOCTOR_PAM_DIR,
		.run_uid = geteuid(),
		.run_gid = getegid(),
	};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:k:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.conf_path = optarg;
			break;
		case 'k':
			d.keys = optarg;
			break;
		case 'p':
			d.pam_dir = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (harden() < 0) {
		fprintf(stderr, "credd: libsodium cannot initialise\n");
		return 1;
	}
	if (geteuid() != 0)
		doctor_say(&d, DOCTOR_WARN, "privileges",
		    "not run as root: files only root can read are "
		    "reported as unreadable");
	doctor_check_config(&d);
	if (d.cf != NULL) {
		doctor_check_keys(&d);
		doctor_check_state(&d);
		doctor_check_store(&d);
		doctor_check_socket(&d);
		doctor_check_idp(&d);
		doctor_check_sdk_port(&d);
	}
	doctor_check_pam(&d);
	config_free(d.cf);
	fprintf(d.out, "%u failed, %u warnings\n", d.nfail, d.nwarn);
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer needs the process dumpable at exit (as main.c). */
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return d.nfail > 0 ? 1 : 0;
}
