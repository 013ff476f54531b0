/*
 * startup.c - what credd does before its loop runs, shared by the daemon
 * (main.c) and the offline subcommands (subcmd.c): harden the process,
 * read the config, the key ring and the client secret, check the state
 * directories, open the store and the marks, drop privileges, lock
 * secrets in memory.
 *
 * Start-up only: every function here either succeeds or ends the process
 * with a message (fatal/fatalx), except startup_read_secret. Must never:
 * print a secret or a DSN, accept a key or secret file that anyone but
 * root or credd can read, or leave the process dumpable.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <jansson.h>

#include "entra/secret.h"

#include "assertion.h"
#include "clientauth.h"
#include "config.h"
#include "fileperm.h"
#include "log.h"
#include "marks.h"
#include "offboard.h"
#include "procenv.h"
#include "seal.h"
#include "secmem.h"
#include "startup.h"
#include "store.h"
#ifdef ENTRA_HAVE_PG
#include "store_pg.h"
#endif

#define CLIENT_SECRET_MAX 4096

/* jansson may hold tokens: wipe every block it frees (credd only). */
static void
wipe_free(void *p)
{
	if (p != NULL) {
		sodium_memzero(p, malloc_usable_size(p));
		free(p);
	}
}

void
startup_harden(void)
{
	struct rlimit rl = { 0, 0 };

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); /* no setuid exec, ever */
	(void)setrlimit(RLIMIT_CORE, &rl);
	umask(077);
	json_set_alloc_funcs(malloc, wipe_free);
	if (sodium_init() < 0)
		fatalx("libsodium cannot initialise");
	signal(SIGPIPE, SIG_IGN);
}

/* Read a secret file that must be owner-only (fileperm.h). */
int
startup_read_secret(const char *path, struct secret **out)
{
	char buf[CLIENT_SECRET_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len;
	int fd, r = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	r = fileperm_private(fd, &st); /* root or us; an ACL for us only */
	if (r < 0) {
		close(fd);
		return r;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0)
		r = -errno;
	close(fd);
	if (r == 0 && (n == 0 || n > CLIENT_SECRET_MAX))
		r = -EINVAL;
	if (r == 0) {
		len = (size_t)n;
		while (
		    len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		*out = secret_new(buf, len);
		if (*out == NULL)
			r = -ENOMEM;
	}
	sodium_memzero(buf, sizeof(buf));
	return r;
}

struct config *
startup_config(const char *path)
{
	struct config *cf = NULL;
	char err[512];

	if (config_load(path, &cf, err, sizeof(err)) < 0)
		fatalx("%s", err);
	return cf;
}

void
startup_state_dir(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		fatal("state directory %s", dir);
	if (!S_ISDIR(st.st_mode))
		fatalx("state directory %s is not a directory", dir);
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0)
		fatalx(
		    "state directory %s must be owned by uid %u and mode 0700 "
		    "(is uid %u, mode %03o)",
		    dir, (unsigned)geteuid(), (unsigned)st.st_uid,
		    st.st_mode & 0777);
}

void
startup_drop_privileges(const struct passwd *pw)
{
	if (setgroups(0, NULL) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		fatal("cannot drop privileges to %s", pw->pw_name);
	if (setuid(0) == 0)
		fatalx("privileges were not dropped");
	/* setuid clears the dumpable flag's inheritance; set it again. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/*
 * key_file or client_secret_file = %d/NAME: NAME in systemd's credentials
 * directory, which must be as closed as the files in it (root's or ours,
 * nobody else's; systemd makes it 0500 with the files 0400).
 */
void
startup_credentials(struct config *cf)
{
	const char *dir;
	struct stat st;
	char err[512];
	int fd, r;

	r = config_expand_credentials(cf, procenv_credentials_directory(), err,
	    sizeof(err));
	if (r < 0)
		fatalx("%s", err[0] != '\0' ? err : strerror(-r));
	dir = cf->creds_dir;
	if (dir == NULL)
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fatal("credentials directory %s", dir);
	r = fstat(fd, &st) < 0 ? -errno : fileperm_private(fd, &st);
	(void)close(fd);
	if (r == -EPERM)
		fatalx("credentials directory %s must be owned by root or "
		       "uid %u and closed to group and others (is uid %u, mode "
		       "%03o)",
		    dir, (unsigned)geteuid(), (unsigned)st.st_uid,
		    st.st_mode & 0777);
	if (r < 0)
		fatalx("credentials directory %s: %s", dir, strerror(-r));
}

void
startup_load_keys(const struct config *cf, const char *path, struct seal **seal)
{
	char q[LOG_VALUE_MAX], f[LOG_VALUE_MAX + 96];
	int r;

	if (path == NULL)
		path = cf->key_file;
	r = seal_load(path, seal);
	if (r < 0)
		(void)snprintf(f, sizeof(f),
		    "event=keyring_failed path=%s error=%s", log_value(q, path),
		    log_errno_name(-r));
	if (r == -EPERM)
		log_event_fatal(f,
		    "key file %s: must be a regular file owned by root or "
		    "uid %u with mode 0400 or 0600",
		    path, (unsigned)geteuid());
	if (r < 0)
		log_event_fatal(f, "key file %s: %s", path, strerror(-r));
}

void
startup_open_store(const struct config *cf, const char *conf_path,
    struct store **st)
{
	char q[LOG_VALUE_MAX], f[LOG_VALUE_MAX + 128];
	int r;

	if (strcmp(cf->backend, "postgres") == 0) {
#ifdef ENTRA_HAVE_PG
		r = store_pg_open(cf->dsn, cf->node, st);
		if (r < 0) { /* never print the DSN: it may hold a password */
			(void)snprintf(f, sizeof(f),
			    "event=store_failed backend=postgres "
			    "error=%s",
			    log_errno_name(-r));
			log_event_fatal(f, "cannot open the postgres store: %s",
			    strerror(-r));
		}
		return;
#else
		fatalx("%s: store backend \"postgres\" is not built into this "
		       "credd",
		    conf_path);
#endif
	}
	if (strcmp(cf->backend, "file") != 0)
		fatalx("%s: store backend \"%s\" is not built into this credd",
		    conf_path, cf->backend);
	startup_state_dir(cf->store_path);
	r = store_file_open(cf->store_path, st);
	if (r < 0) {
		(void)snprintf(f, sizeof(f),
		    "event=store_failed backend=file path=%s error=%s",
		    log_value(q, cf->store_path), log_errno_name(-r));
		log_event_fatal(f, "cannot open the store at %s: %s",
		    cf->store_path, strerror(-r));
	}
}

/* The high-water marks ([store] marks), after the privilege drop. */
void
startup_open_marks(const struct config *cf, struct marks **marks)
{
	char err[512];
	int r;

	/* Started as the credd user: make it if the parent lets us. */
	(void)marks_prepare(cf->marks_path, geteuid(), getegid());
	r = marks_open(cf->marks_path, marks, err, sizeof(err));
	if (r < 0)
		fatalx("[store] marks: %s", err);
}

/*
 * Keep secrets out of swap where the kernel lets us: lock the key ring
 * again (daemon() forked, and locks do not survive fork) and give every
 * later secret a locked arena ([server] locked_memory_kib). Past it,
 * secrets go to ordinary memory: counted in stats, warned once (secmem.h).
 */
void
startup_lock_secrets(const struct config *cf, struct seal *seal,
    struct secmem **secmem, struct secret **client_secret)
{
	size_t want = (size_t)cf->locked_memory_kib * 1024;
	struct secmem_stats ss;
	struct secret *cs;
	int clamped = 0, r;

	r = seal_lock(seal);
	if (r < 0)
		log_event_warn("event=keyring_not_locked",
		    "the key ring cannot be locked in memory (%s): it may "
		    "be swapped; raise the unit's LimitMEMLOCK",
		    strerror(-r));
	if (want == 0) {
		log_info("secrets are not locked in memory "
			 "([server] locked_memory_kib = 0)");
		return;
	}
	r = secmem_new(want, secmem, &clamped);
	if (r < 0) {
		log_warnx("secret memory: %s; secrets stay in ordinary memory",
		    strerror(-r));
		return;
	}
	secmem_stats(*secmem, &ss);
	if (clamped)
		log_warnx(
		    "RLIMIT_MEMLOCK leaves room to lock %zu KiB of "
		    "secrets, less than [server] locked_memory_kib = %d; raise "
		    "the unit's LimitMEMLOCK",
		    ss.limit / 1024, cf->locked_memory_kib);
	secret_set_allocator(secmem_allocator(*secmem));
	/* Read before the arena existed: move it in. */
	if (*client_secret != NULL) {
		cs = secret_dup(*client_secret);
		if (cs == NULL)
			fatalx("out of memory");
		secret_free(*client_secret);
		*client_secret = cs;
	}
}

int
startup_check_as_user(const struct config *cf, clientauth_check_fn *check,
    int64_t now, char *msg, size_t msgsz)
{
	struct passwd *pw;
	ssize_t n;
	size_t got = 0;
	pid_t pid;
	int p[2], r, st;

	if (geteuid() != 0 || cf->user == NULL ||
	    (pw = getpwnam(cf->user)) == NULL || pw->pw_uid == 0)
		return check(cf, now, msg, msgsz);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		(void)close(p[0]);
		(void)close(p[1]);
		return r;
	}
	if (pid == 0) {
		(void)close(p[0]);
		if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
		    setuid(pw->pw_uid) < 0)
			_exit(EPERM);
		r = check(cf, now, msg, msgsz);
		if (r < 0 && msgsz > 0)
			(void)!write(p[1], msg, strnlen(msg, msgsz - 1));
		_exit(r < 0 ? (-r & 0xff) : 0);
	}
	(void)close(p[1]);
	if (msgsz > 0)
		msg[0] = '\0';
	while (msgsz > 0 && got < msgsz - 1) {
		n = read(p[0], msg + got, msgsz - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (msgsz > 0)
		msg[got] = '\0';
	(void)close(p[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st) && got > 0)
		return -WEXITSTATUS(st);
	(void)snprintf(msg, msgsz, "cannot check it as user %s", cf->user);
	return -EIO;
}

/*
 * The app credential (clientauth.h), as root before privilege drop: a
 * certificate's key is loaded now (a bad one is fatal like a bad
 * client_secret_file); a federated token file is checked but a stale
 * one is not fatal (the file rotates and is read per request).
 */
struct clientauth *
startup_client_auth(const struct config *cf)
{
	struct clientauth *ca = NULL;
	char msg[512];
	int r;

	if (cf->client_auth == CONFIG_CLIENT_AUTH_FEDERATED) {
		/* Read per request after the drop: checked as that user. */
		r = startup_check_as_user(cf, clientauth_check,
		    (int64_t)time(NULL), msg, sizeof(msg));
		if (r < 0)
			log_warnx("client_assertion_file %s; confidential "
				  "grants fail until it is fixed",
			    msg);
	}
	r = clientauth_new(cf, &ca, msg, sizeof(msg));
	if (r == -ENOMEM)
		fatalx("out of memory");
	if (r < 0)
		fatalx("client_certificate_file %s", msg);
	return ca;
}

/*
 * [offboarding]: its credential read as root, before the privilege drop
 * (the federated token is re-read per grant, so only checked here). A
 * bad secret or certificate ends the process, like [entra]'s.
 */
void
startup_offboard_cred(const struct config *cf, struct offboard_cred *cred)
{
	char msg[512];
	int r;

	memset(cred, 0, sizeof(*cred));
	if (cf->off_client_id == NULL)
		return;
	cred->client_id = cf->off_client_id;
	switch (cf->off_client_auth) {
	case CONFIG_CLIENT_AUTH_SECRET:
		r = startup_read_secret(cf->off_client_secret_file,
		    &cred->secret);
		if (r < 0)
			fatalx("[offboarding] client_secret_file %s: %s",
			    cf->off_client_secret_file,
			    r == -EPERM ? "must be owner-only (0400/0600) and "
					  "owned by root or the effective uid" :
					  strerror(-r));
		break;
	case CONFIG_CLIENT_AUTH_CERTIFICATE:
		r = assertion_key_load(cf->off_client_certificate_file,
		    &cred->key, msg, sizeof(msg));
		if (r < 0)
			fatalx("[offboarding] client_certificate_file %s", msg);
		break;
	case CONFIG_CLIENT_AUTH_FEDERATED:
		cred->assertion_file = cf->off_client_assertion_file;
		r = startup_check_as_user(cf, clientauth_check_offboarding,
		    (int64_t)time(NULL), msg, sizeof(msg));
		if (r < 0) /* it rotates: the next grant reads it again */
			log_warnx("[offboarding] client_assertion_file %s",
			    msg);
		break;
	default:
		fatalx("[offboarding] client_auth: internal error");
	}
}
