/*
 * doctor_files.c - `credd doctor`'s file checks: the configuration and
 * its run-as user, the key ring and the client secret file (owner root or
 * the effective uid, closed to group and others, and the ring parses), and
 * the state directory, high-water marks and audit file (owned by the
 * run-as user, closed to others).
 *
 * Must never: print what a secret file holds (only its owner and mode),
 * or change an owner or a mode (the fix line says what to run).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "doctor_int.h"
#include "fileperm.h"
#include "seal.h"

static const char *
owner_name(uid_t uid, char *buf, size_t bufsz)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		(void)snprintf(buf, bufsz, "%s", pw->pw_name);
	else
		(void)snprintf(buf, bufsz, "uid %u", (unsigned)uid);
	return buf;
}

void
doctor_check_config(struct doctor *d)
{
	struct passwd *pw;
	char err[512];
	int r;

	r = config_load(d->conf_path, &d->cf, err, sizeof(err));
	if (r < 0) {
		doctor_say(d, DOCTOR_FAIL, "config", "%s", err);
		doctor_fix(d,
		    "correct the line named, then run credd --check-config "
		    "-c %s",
		    d->conf_path);
		return;
	}
	doctor_say(d, DOCTOR_OK, "config", "%s parses and passes the checks",
	    d->conf_path);
	if (d->cf->account_match == NULL) {
		doctor_say(d, DOCTOR_WARN, "config",
		    "[entra] account_match is not set: any Entra account can "
		    "complete any user's sign-in");
		doctor_fix(d,
		    "set [entra] account_match, e.g. %%u@contoso.com");
	}
	if (geteuid() != 0)
		return; /* the daemon keeps our uid: nothing to look up */
	pw = getpwnam(d->cf->user);
	if (pw == NULL || pw->pw_uid == 0) {
		doctor_say(d, DOCTOR_FAIL, "user",
		    pw == NULL ? "run-as user \"%s\" does not exist" :
				 "run-as user \"%s\" is root",
		    d->cf->user);
		doctor_fix(d,
		    "adduser --system --group --no-create-home %s, or set "
		    "[server] user",
		    d->cf->user);
		return;
	}
	d->run_uid = pw->pw_uid;
	d->run_gid = pw->pw_gid;
	doctor_say(d, DOCTOR_OK, "user", "credd runs as %s (uid %u)",
	    d->cf->user, (unsigned)pw->pw_uid);
}

/*
 * A secret file: a regular file (not a symlink), owned by root (or by us
 * when not root: the rule of fileperm.h and seal_load), closed to group
 * and others (ACLs understood).
 * 0 when so (the ok line is the caller's), -1 after a FAIL line.
 */
static int
check_secret_file(struct doctor *d, const char *check, const char *path,
    const char *missing_fix, struct stat *stp)
{
	struct stat st;
	char who[64];
	int fd, r;

	if (lstat(path, &st) < 0) {
		doctor_say(d, DOCTOR_FAIL, check, "%s: %s", path,
		    strerror(errno));
		if (errno == ENOENT)
			doctor_fix(d, "%s", missing_fix);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		doctor_say(d, DOCTOR_FAIL, check, "%s: not a regular file%s",
		    path, S_ISLNK(st.st_mode) ? " (a symlink)" : "");
		doctor_fix(d, "replace %s with the file itself", path);
		return -1;
	}
	/* credd reads it before dropping root: root's (or ours, not root). */
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		doctor_say(d, DOCTOR_FAIL, check,
		    "%s: owned by %s (credd reads it as root: it must be "
		    "root's)",
		    path, owner_name(st.st_uid, who, sizeof(who)));
		doctor_fix(d, "chown root:root %s", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? ((st.st_mode & 077) != 0 ? -EPERM : 0) :
		     fileperm_private(fd, &st);
	if (fd >= 0)
		(void)close(fd);
	if (r == 0 && (st.st_mode & 0177) != 0)
		r = -EPERM; /* the owner: read, maybe write, never execute */
	if (r < 0) {
		doctor_say(d, DOCTOR_FAIL, check, "%s: mode %04o: %s", path,
		    (unsigned)(st.st_mode & 07777),
		    r == -EPERM ? "open to group or others (must be 0400 or "
				  "0600)" :
				  strerror(-r));
		doctor_fix(d, "chmod 0600 %s", path);
		return -1;
	}
	*stp = st;
	return 0;
}

void
doctor_check_keys(struct doctor *d)
{
	const char *path = d->keys != NULL ? d->keys : d->cf->key_file;
	struct seal *seal = NULL;
	char who[64], fix[600];
	struct stat st;
	int r;

	if (strncmp(path, "%d/", 3) == 0) {
		doctor_say(d, DOCTOR_WARN, "keys",
		    "key_file %s is a systemd credential: not checked", path);
		doctor_fix(d,
		    "run credd doctor -k FILE with the file the unit's "
		    "LoadCredential= reads");
		return;
	}
	(void)snprintf(fix, sizeof(fix),
	    "make one with credd keygen -k %s (or restore it from backup)",
	    path);
	if (check_secret_file(d, "keys", path, fix, &st) < 0)
		return;
	r = seal_load(path, &seal);
	if (r < 0) {
		doctor_say(d, r == -EACCES ? DOCTOR_WARN : DOCTOR_FAIL, "keys",
		    "%s: %s", path,
		    r == -EBADMSG ? "not a key ring (bad syntax)" :
				    strerror(-r));
		doctor_fix(d,
		    r == -EACCES ? "run credd doctor as root" :
				   "restore the key ring from backup");
		return;
	}
	doctor_say(d, DOCTOR_OK, "keys",
	    "%s: owner %s, mode %04o, active key %u", path,
	    owner_name(st.st_uid, who, sizeof(who)),
	    (unsigned)(st.st_mode & 07777), (unsigned)seal_active_id(seal));
	seal_free(seal);
	if (d->cf->client_secret_file == NULL ||
	    strncmp(d->cf->client_secret_file, "%d/", 3) == 0)
		return;
	path = d->cf->client_secret_file;
	(void)snprintf(fix, sizeof(fix),
	    "write the app registration's secret to %s (mode 0600)", path);
	if (check_secret_file(d, "client secret", path, fix, &st) == 0)
		doctor_say(d, DOCTOR_OK, "client secret",
		    "%s: owner-only, mode %04o", path,
		    (unsigned)(st.st_mode & 07777));
}

/*
 * A directory (or file) credd writes after dropping root: owned by the
 * run-as user, closed to group and others. is_optional: missing is ok
 * (credd makes it).
 */
static void
check_owned(struct doctor *d, const char *check, const char *path, int is_dir,
    int is_optional)
{
	char who[64];
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT && is_optional) {
			doctor_say(d, DOCTOR_OK, check,
			    "%s: not there yet (credd makes it)", path);
			return;
		}
		doctor_say(d, DOCTOR_FAIL, check, "%s: %s", path,
		    strerror(errno));
		if (is_dir)
			doctor_fix(d, "install -d -m 0700 -o %s %s",
			    d->cf->user, path);
		return;
	}
	if (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		doctor_say(d, DOCTOR_FAIL, check, "%s: not a %s", path,
		    is_dir ? "directory" : "regular file");
		doctor_fix(d, "move it away; credd expects a %s there",
		    is_dir ? "directory" : "file");
		return;
	}
	if (st.st_uid != d->run_uid || (st.st_mode & 077) != 0) {
		doctor_say(d, DOCTOR_FAIL, check,
		    "%s: owner %s, mode %04o (credd needs owner %s, closed to "
		    "group and others)",
		    path, owner_name(st.st_uid, who, sizeof(who)),
		    (unsigned)(st.st_mode & 07777), d->cf->user);
		doctor_fix(d, "chown %s %s && chmod %s %s", d->cf->user, path,
		    is_dir ? "0700" : "0600", path);
		return;
	}
	doctor_say(d, DOCTOR_OK, check, "%s: owner %s, mode %04o", path,
	    owner_name(st.st_uid, who, sizeof(who)),
	    (unsigned)(st.st_mode & 07777));
}

void
doctor_check_state(struct doctor *d)
{
	if (strcmp(d->cf->backend, "file") == 0)
		check_owned(d, "state", d->cf->store_path, 1, 0);
	check_owned(d, "marks", d->cf->marks_path, 1, 1);
	if (d->cf->audit_file != NULL)
		check_owned(d, "audit file", d->cf->audit_file, 0, 1);
}
