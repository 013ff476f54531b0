/*
 * nss_slow.c - libnss_credd_slow.so.2, a test NSS module that makes
 * chosen passwd and group lookups slow, for tests that prove credd never
 * waits on NSS on its event loop. It works under ASan (no LD_PRELOAD):
 * a test puts "passwd: credd_slow files" in an nsswitch.conf of its own
 * mount namespace and the module's directory on credd's LD_LIBRARY_PATH.
 *
 * The control file (NSS_SLOW_CONF, fixed at build time, re-read on every
 * call) holds lines "uid N MS", "name USER MS" or "group NAME MS": a
 * lookup of that key sleeps MS milliseconds. Every lookup then answers
 * NOTFOUND, so the next module (files) gives the real entry.
 *
 * Tests only: never installed.
 */
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef NSS_SLOW_CONF
#error "NSS_SLOW_CONF must name the control file"
#endif

enum nss_status _nss_credd_slow_getpwuid_r(uid_t uid, struct passwd *pw,
    char *buf, size_t len, int *errnop);
enum nss_status _nss_credd_slow_getpwnam_r(const char *name, struct passwd *pw,
    char *buf, size_t len, int *errnop);
enum nss_status _nss_credd_slow_getgrnam_r(const char *name, struct group *gr,
    char *buf, size_t len, int *errnop);

static void
delay_for(const char *kind, const char *key)
{
	char line[512], k[16], v[256];
	long ms = 0, m;
	struct timespec ts;
	FILE *f;

	f = fopen(NSS_SLOW_CONF, "re");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%15s %255s %ld", k, v, &m) == 3 &&
		    strcmp(k, kind) == 0 && strcmp(v, key) == 0)
			ms = m;
	fclose(f);
	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

enum nss_status
_nss_credd_slow_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len,
    int *errnop)
{
	char key[32];

	(void)pw;
	(void)buf;
	(void)len;
	snprintf(key, sizeof(key), "%lu", (unsigned long)uid);
	delay_for("uid", key);
	*errnop = ENOENT;
	return NSS_STATUS_NOTFOUND;
}

enum nss_status
_nss_credd_slow_getpwnam_r(const char *name, struct passwd *pw, char *buf,
    size_t len, int *errnop)
{
	(void)pw;
	(void)buf;
	(void)len;
	delay_for("name", name);
	*errnop = ENOENT;
	return NSS_STATUS_NOTFOUND;
}

enum nss_status
_nss_credd_slow_getgrnam_r(const char *name, struct group *gr, char *buf,
    size_t len, int *errnop)
{
	(void)gr;
	(void)buf;
	(void)len;
	delay_for("group", name);
	*errnop = ENOENT;
	return NSS_STATUS_NOTFOUND;
}
