/*
 * doctor_pam.c - `credd doctor`'s PAM check: is pam_entra.so in the
 * session stack, with arguments the module accepts?
 *
 * Looked at, in --pam-dir (default /etc/pam.d): common-session, which
 * must have a session line for pam_entra.so (FAIL otherwise: that is
 * what pam-auth-update --enable entra writes, and what sshd, login, su
 * and runuser include on Debian); common-session-noninteractive (cron, at:
 * warn when missing); and sshd and login, which must include
 * common-session or name pam_entra.so themselves (warn; a service not
 * installed is skipped). Every pam_entra.so line's arguments are checked
 * against a copy of the module's table (pam_entra/args.c; credd must not
 * link libpam, so the two are kept in step by hand and by the tests of
 * both); socket= naming another socket than [server] socket is a FAIL.
 *
 * Must never: write a PAM file, or follow more than one level of
 * @include (the common-* files are flat on Debian).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/util.h"

#include "config.h"
#include "doctor_int.h"

#define PAM_LINE_MAX 1024
#define PAM_ARGS_MAX 32
#define PAM_SUN_PATH_MAX 108
#define PAM_TIMEOUT_MAX_MS 60000 /* ARGS_TIMEOUT_MAX_MS */
#define PAM_WAIT_MAX_S 900	 /* ARGS_WAIT_MAX_S */
#define PAM_WORKLOAD_MAX 64	 /* ARGS_WORKLOAD_MAX */
#define PAM_SWITCH_MAX 1024	 /* ARGS_SWITCH_MAX */

static int
is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

static int
is_name(const char *s, size_t max)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > max)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!is_name_char(s[i]))
			return 0;
	return 1;
}

static int
is_service_list(const char *s)
{
	size_t i;

	if (strlen(s) > PAM_SWITCH_MAX)
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

static int
is_num(const char *s, long long min, long long max)
{
	long long n;

	return util_strtonum(s, min, max, &n) == 0;
}

enum doctor_level
doctor_pam_arg(const char *arg, const char **why)
{
	static const char *const flags[] = { "quiet", "debug",
		"switch_signin" };
	const char *eq = strchr(arg, '=');
	const char *v = eq != NULL ? eq + 1 : NULL;
	size_t i, n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	int ok = -1;

	*why = NULL;
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strcmp(arg, flags[i]) == 0)
			return DOCTOR_OK;
#define IS(name) (n == strlen(name) && strncmp(arg, name, n) == 0 && v != NULL)
	if (IS("socket")) {
		ok = v[0] == '/' && strlen(v) < PAM_SUN_PATH_MAX;
		*why = "need an absolute path shorter than 108 bytes";
	} else if (IS("timeout")) {
		ok = is_num(v, 1, PAM_TIMEOUT_MAX_MS);
		*why = "need milliseconds, 1..60000";
	} else if (IS("wait")) {
		ok = is_num(v, 0, PAM_WAIT_MAX_S);
		*why = "need seconds, 0..900";
	} else if (IS("workload")) {
		ok = is_name(v, PAM_WORKLOAD_MAX);
		*why = "need 1..64 of [A-Za-z0-9_.-]";
	} else if (IS("switch_services")) {
		ok = is_service_list(v);
		*why = "need service names separated by commas";
	} else if (IS("minimum_uid")) {
		ok = is_num(v, 0, (uid_t)-2);
		*why = "need a uid";
	}
#undef IS
	if (ok < 0) {
		*why = "unknown argument: the module ignores it";
		return DOCTOR_WARN;
	}
	if (ok)
		*why = NULL;
	return ok ? DOCTOR_OK : DOCTOR_FAIL;
}

/* The next blank-separated word of *p, or NULL; *p moves past it. */
static const char *
word(const char **p, size_t *len)
{
	const char *s = *p, *e;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || *s == '#' || *s == '\n' || *s == '\r')
		return NULL;
	if (*s == '[') { /* [value=action ...]: up to the closing bracket */
		e = strchr(s, ']');
		e = e != NULL ? e + 1 : s + strlen(s);
	} else
		e = s + strcspn(s, " \t\r\n");
	*len = (size_t)(e - s);
	*p = e;
	return s;
}

int
doctor_pam_line(const char *line, const char **args, char *inc, size_t incsz)
{
	const char *p = line, *w, *base;
	size_t n;

	*args = NULL;
	w = word(&p, &n);
	if (w == NULL)
		return 0;
	if (n == 8 && strncmp(w, "@include", 8) == 0) {
		w = word(&p, &n);
		if (w == NULL || n >= incsz)
			return 0;
		memcpy(inc, w, n);
		inc[n] = '\0';
		return 2;
	}
	if (!((n == 7 && strncmp(w, "session", 7) == 0) ||
		(n == 8 && strncmp(w, "-session", 8) == 0)))
		return 0;
	if (word(&p, &n) == NULL) /* control */
		return 0;
	w = word(&p, &n); /* module path */
	if (w == NULL)
		return 0;
	for (base = w + n; base > w && base[-1] != '/'; base--)
		;
	if ((size_t)(w + n - base) != strlen("pam_entra.so") ||
	    strncmp(base, "pam_entra.so", strlen("pam_entra.so")) != 0)
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	*args = p;
	return 1;
}

/* Check one pam_entra.so line's arguments; the number of FAILs. */
static unsigned
check_args(struct doctor *d, const char *where, const char *args)
{
	char buf[PAM_LINE_MAX], *save = NULL, *a;
	enum doctor_level lv;
	const char *why;
	unsigned nbad = 0;

	(void)snprintf(buf, sizeof(buf), "%s", args);
	buf[strcspn(buf, "#\r\n")] = '\0';
	for (a = strtok_r(buf, " \t", &save); a != NULL;
	     a = strtok_r(NULL, " \t", &save)) {
		lv = doctor_pam_arg(a, &why);
		if (lv == DOCTOR_OK && strncmp(a, "socket=", 7) == 0 &&
		    d->cf != NULL && strcmp(a + 7, d->cf->socket) != 0) {
			lv = DOCTOR_FAIL;
			why = "not credd's [server] socket";
		}
		if (lv == DOCTOR_OK)
			continue;
		nbad += lv == DOCTOR_FAIL;
		doctor_say(d, lv, "pam", "%s: pam_entra.so argument \"%s\": %s",
		    where, a, why);
		doctor_fix(d,
		    lv == DOCTOR_FAIL ?
			"correct it (man pam_entra); the module fails the "
			"session until then" :
			"remove it (man pam_entra lists the arguments)");
	}
	return nbad;
}

/*
 * Scan DIR/name. Returns -errno when it cannot be read, else the number
 * of session lines for pam_entra.so; *includes_common is set when it
 * includes common-session.
 */
static int
scan(struct doctor *d, const char *name, int *includes_common)
{
	char path[PAM_LINE_MAX], line[PAM_LINE_MAX], inc[256];
	char where[PAM_LINE_MAX + 16];
	const char *args;
	unsigned lineno = 0;
	int count = 0, k;
	FILE *fp;

	*includes_common = 0;
	(void)snprintf(path, sizeof(path), "%s/%s", d->pam_dir, name);
	fp = fopen(path, "re");
	if (fp == NULL)
		return -errno;
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		k = doctor_pam_line(line, &args, inc, sizeof(inc));
		if (k == 2 && strcmp(inc, "common-session") == 0)
			*includes_common = 1;
		if (k != 1)
			continue;
		count++;
		(void)snprintf(where, sizeof(where), "%s:%u", path, lineno);
		(void)check_args(d, where, args);
	}
	(void)fclose(fp);
	return count;
}

void
doctor_check_pam(struct doctor *d)
{
	static const char *const services[] = { "sshd", "login" };
	int n, inc;
	size_t i;

	n = scan(d, "common-session", &inc);
	if (n <= 0) {
		doctor_say(d, DOCTOR_FAIL, "pam", "%s/common-session: %s",
		    d->pam_dir,
		    n == 0 ? "no session line for pam_entra.so" : strerror(-n));
		doctor_fix(d,
		    "pam-auth-update --enable entra (Debian), or add "
		    "\"session optional pam_entra.so\" (docs/pam.md)");
	} else
		doctor_say(d, DOCTOR_OK, "pam",
		    "%s/common-session has pam_entra.so", d->pam_dir);
	n = scan(d, "common-session-noninteractive", &inc);
	if (n == 0) {
		doctor_say(d, DOCTOR_WARN, "pam",
		    "%s/common-session-noninteractive: no session line for "
		    "pam_entra.so (cron and at jobs get no session)",
		    d->pam_dir);
		doctor_fix(d, "pam-auth-update --enable entra (Debian)");
	}
	for (i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		n = scan(d, services[i], &inc);
		if (n == -ENOENT || n > 0 || (n == 0 && inc))
			continue; /* not installed, or covered */
		doctor_say(d, DOCTOR_WARN, "pam", "%s/%s: %s", d->pam_dir,
		    services[i],
		    n < 0 ? strerror(-n) :
			    "neither includes common-session nor has "
			    "pam_entra.so");
		doctor_fix(d,
		    "add \"@include common-session\" or \"session "
		    "optional pam_entra.so\" to it");
	}
}
