/*
 * main.c - credd: argv, config, process hardening, modules built in
 * order, the loop, and an orderly shutdown. The only file that knows
 * every module.
 *
 * Start-up as root: read the key ring and the client secret, bind the
 * socket, then drop to the configured user for good. Must never: run the
 * loop as root, start with loose permissions on keys or state, or leave
 * a core file (PR_SET_DUMPABLE 0, RLIMIT_CORE 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "entra/paths.h"
#include "entra/secret.h"
#include "entra/version.h"

#include "audit.h"
#include "broker.h"
#include "clientauth.h"
#include "config.h"
#include "dispatch.h"
#include "event.h"
#include "fileperm.h"
#include "http.h"
#include "log.h"
#include "marks.h"
#include "msi.h"
#include "msi_listen.h"
#include "migrate.h"
#include "procenv.h"
#include "record.h"
#include "seal.h"
#include "secmem.h"
#include "server.h"
#include "session.h"
#include "sessweep.h"
#include "store.h"
#include "userdb.h"
#ifdef ENTRA_HAVE_PG
#include "store_pg.h"
#endif

#define CLIENT_SECRET_MAX 4096
#define PASSED_FDS_MAX 16 /* sockets the service manager may pass */
/*
 * NSS off the loop: a few threads (one slow lookup must not hold up the
 * others), names cached 30 s (a deleted account's uid, reused, is seen
 * under its new name within that; consents and sessions ask afresh).
 */
#define USERDB_THREADS 4
#define USERDB_TTL_MS 30000
#define USERDB_CACHED_MAX 65536

struct credd {
	const char *conf_path;
	struct config *cf;
	struct config
	    *old_cf[8]; /* kept alive after SIGHUP: modules borrow them */
	unsigned nold;
	struct event_loop *ev;
	struct seal *seal;
	struct store *st;
	struct marks *marks; /* high-water marks (store rollback) */
	struct http *http;
	struct broker *broker;
	struct sessions *sessions;
	struct sessweep *sessweep; /* idle, liveness and account checks */
	struct userdb *userdb;	   /* NSS lookups, off the loop */
	struct server *server;
	struct msi *msi; /* the SDK endpoint; NULL when [msi] listen is unset */
	struct dispatch dispatch;
	struct secret *client_secret;
	struct secmem *secmem; /* locked secret memory; NULL when off */
	int sigfd;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: credd [-c FILE] [-k KEYS] [-f] [-d]\n"
	    "                                       run the daemon\n"
	    "       credd --check-config [-c FILE]  check a configuration\n"
	    "       credd --version                 print the version\n"
	    "       credd keygen [-k FILE] [--activate]\n"
	    "                                       make a key file, or add a key\n"
	    "       credd rekey [-c FILE]           reseal the store under the active key\n"
	    "       credd db-init [-c FILE]         create or migrate the postgres schema\n"
	    "       credd migrate -c FILE --from file|postgres --to file|postgres\n");
	exit(2);
}

/* jansson may hold tokens: wipe every block it frees (credd only). */
static void
wipe_free(void *p)
{
	if (p != NULL) {
		sodium_memzero(p, malloc_usable_size(p));
		free(p);
	}
}

static void
harden(void)
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
static int
read_secret_file(const char *path, struct secret **out)
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

static struct config *
load_config(const char *path)
{
	struct config *cf = NULL;
	char err[512];

	if (config_load(path, &cf, err, sizeof(err)) < 0)
		fatalx("%s", err);
	return cf;
}

static void
check_state_dir(const char *dir)
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

static void
drop_privileges(const struct passwd *pw)
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

static void
open_store(struct credd *c)
{
	int r;

	if (strcmp(c->cf->backend, "postgres") == 0) {
#ifdef ENTRA_HAVE_PG
		r = store_pg_open(c->cf->dsn, c->cf->node, &c->st);
		if (r < 0) /* never print the DSN: it may hold a password */
			fatalx("cannot open the postgres store: %s",
			    strerror(-r));
		return;
#else
		fatalx("%s: store backend \"postgres\" is not built into this "
		       "credd",
		    c->conf_path);
#endif
	}
	if (strcmp(c->cf->backend, "file") != 0)
		fatalx("%s: store backend \"%s\" is not built into this credd",
		    c->conf_path, c->cf->backend);
	check_state_dir(c->cf->store_path);
	r = store_file_open(c->cf->store_path, &c->st);
	if (r < 0)
		fatalx("cannot open the store at %s: %s", c->cf->store_path,
		    strerror(-r));
}

/*
 * key_file or client_secret_file = %d/NAME: NAME in systemd's credentials
 * directory, which must be as closed as the files in it (root's or ours,
 * nobody else's; systemd makes it 0500 with the files 0400).
 */
static void
resolve_credentials(struct credd *c)
{
	const char *dir;
	struct stat st;
	char err[512];
	int fd, r;

	r = config_expand_credentials(c->cf, procenv_credentials_directory(),
	    err, sizeof(err));
	if (r < 0)
		fatalx("%s", err[0] != '\0' ? err : strerror(-r));
	dir = c->cf->creds_dir;
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

/* The high-water marks ([store] marks), after the privilege drop. */
static void
open_marks(struct credd *c)
{
	char err[512];
	int r;

	/* Started as the credd user: make it if the parent lets us. */
	(void)marks_prepare(c->cf->marks_path, geteuid(), getegid());
	r = marks_open(c->cf->marks_path, &c->marks, err, sizeof(err));
	if (r < 0)
		fatalx("[store] marks: %s", err);
}

static void
load_keys(struct credd *c, const char *path)
{
	int r;

	if (path == NULL)
		path = c->cf->key_file;
	r = seal_load(path, &c->seal);
	if (r == -EPERM)
		fatalx("key file %s: must be a regular file owned by root or "
		       "uid %u with mode 0400 or 0600",
		    path, (unsigned)geteuid());
	if (r < 0)
		fatalx("key file %s: %s", path, strerror(-r));
}

/* The session checks' settings from the config. */
static void
sessweep_cfg_of(const struct config *cf, struct sessweep_cfg *sc)
{
	sc->check_ms = (int64_t)cf->session_check * 1000;
	sc->idle_s = cf->session_idle;
	sc->liveness = cf->session_liveness;
}

/*
 * Keep secrets out of swap where the kernel lets us: lock the key ring
 * again (daemon() forked, and locks do not survive fork) and give every
 * later secret a locked arena ([server] locked_memory_kib). Past it,
 * secrets go to ordinary memory: counted in stats, warned once (secmem.h).
 */
static void
lock_secrets(struct credd *c)
{
	size_t want = (size_t)c->cf->locked_memory_kib * 1024;
	struct secmem_stats ss;
	struct secret *cs;
	int clamped = 0, r;

	r = seal_lock(c->seal);
	if (r < 0)
		log_warnx(
		    "the key ring cannot be locked in memory (%s): it may "
		    "be swapped; raise the unit's LimitMEMLOCK",
		    strerror(-r));
	if (want == 0) {
		log_info("secrets are not locked in memory "
			 "([server] locked_memory_kib = 0)");
		return;
	}
	r = secmem_new(want, &c->secmem, &clamped);
	if (r < 0) {
		log_warnx("secret memory: %s; secrets stay in ordinary memory",
		    strerror(-r));
		return;
	}
	secmem_stats(c->secmem, &ss);
	if (clamped)
		log_warnx(
		    "RLIMIT_MEMLOCK leaves room to lock %zu KiB of "
		    "secrets, less than [server] locked_memory_kib = %d; raise "
		    "the unit's LimitMEMLOCK",
		    ss.limit / 1024, c->cf->locked_memory_kib);
	secret_set_allocator(secmem_allocator(c->secmem));
	/* Read before the arena existed: move it in. */
	if (c->client_secret != NULL) {
		cs = secret_dup(c->client_secret);
		if (cs == NULL)
			fatalx("out of memory");
		secret_free(c->client_secret);
		c->client_secret = cs;
	}
}

static void
reload(struct credd *c)
{
	struct sessweep_cfg sc;
	struct config *cf = NULL;
	char err[512];

	if (config_load(c->conf_path, &cf, err, sizeof(err)) < 0) {
		log_warnx("SIGHUP: keeping the old configuration: %s", err);
		return;
	}
	/* Scopes and limits change; the socket, store and IdP do not. */
	if (c->nold == sizeof(c->old_cf) / sizeof(c->old_cf[0])) {
		config_free(c->old_cf[0]);
		memmove(c->old_cf, c->old_cf + 1,
		    sizeof(c->old_cf) - sizeof(c->old_cf[0]));
		c->nold--;
	}
	c->old_cf[c->nold++] = c->cf;
	c->cf = cf;
	c->dispatch.cf = cf;
	server_set_config(c->server, cf);
	broker_set_config(c->broker, cf);
	msi_set_config(c->msi, cf);
	sessweep_cfg_of(cf, &sc);
	sessweep_set_config(c->sessweep, &sc);
	if (audit_reopen() < 0)
		log_warn("SIGHUP: cannot reopen the audit file");
	log_info("configuration reloaded");
}

static void
signal_cb(struct event_loop *ev, int fd, uint32_t revents, void *arg)
{
	struct credd *c = arg;
	struct signalfd_siginfo si;

	(void)revents;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload(c);
		else {
			log_info("signal %u: shutting down", si.ssi_signo);
			event_stop(ev);
		}
	}
}

/*
 * The sockets the service manager passed (LISTEN_FDS, LISTEN_FDNAMES):
 * read once, first thing, so nothing else can take those fds. procenv
 * took LISTEN_* out of the environment before any library could see it;
 * they go back for this one call to libsystemd, which checks LISTEN_PID
 * and unsets them again (unset_environment).
 */
static size_t
passed_fds(int fds[PASSED_FDS_MAX], char ***names)
{
	const char *v;
	int n, i;

	*names = NULL;
	if (procenv_listen_fds() == NULL || procenv_listen_pid() == NULL)
		return 0;
	if (setenv("LISTEN_FDS", procenv_listen_fds(), 1) < 0 ||
	    setenv("LISTEN_PID", procenv_listen_pid(), 1) < 0 ||
	    ((v = procenv_listen_fdnames()) != NULL &&
		setenv("LISTEN_FDNAMES", v, 1) < 0))
		fatal("LISTEN_FDS");
	n = sd_listen_fds_with_names(1, names);
	if (n < 0) {
		log_warnx("LISTEN_FDS: %s; ignoring the passed sockets",
		    strerror(-n));
		return 0;
	}
	if (n > PASSED_FDS_MAX) {
		for (i = PASSED_FDS_MAX; i < n; i++)
			(void)close(SD_LISTEN_FDS_START + i);
		log_warnx("LISTEN_FDS: %d sockets; only %d are looked at", n,
		    PASSED_FDS_MAX);
		n = PASSED_FDS_MAX;
	}
	for (i = 0; i < n; i++)
		fds[i] = SD_LISTEN_FDS_START + i;
	return (size_t)n;
}

/* Close the passed sockets nobody took (used: the one the endpoint took). */
static void
passed_fds_done(int *fds, char **names, size_t n, int used)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((int)i != used) {
			log_warnx("the socket passed as \"%s\" (fd %d) is not "
				  "used: it is not the [msi] listen socket",
			    names != NULL && names[i] != NULL ? names[i] :
								"unknown",
			    fds[i]);
			(void)close(fds[i]);
		}
		if (names != NULL)
			free(names[i]);
	}
	free(names);
}

/*
 * client_auth = certificate | federated: the file is checked (as root,
 * before privilege drop), and the log says that no grant sends it yet.
 * A bad certificate is fatal like a bad client_secret_file; a stale
 * federated token is not (the file rotates; the sign-in work reads it
 * per request).
 */
static void
check_client_auth(const struct config *cf)
{
	char msg[512];
	int r;

	r = clientauth_check(cf, (int64_t)time(NULL), msg, sizeof(msg));
	if (r < 0 && cf->client_auth == CONFIG_CLIENT_AUTH_CERTIFICATE)
		fatalx("client_certificate_file %s", msg);
	if (r != 0)
		log_warnx("%s", msg);
}

/*
 * keys: the key ring to read instead of [store] key_file, or NULL. The
 * systemd unit passes -k %d/credd.keys: the copy LoadCredential= hands
 * to the credd user, who cannot read the root-only original.
 */
static int
run(const char *conf_path, const char *keys, int foreground, int debug)
{
	struct credd c = { .conf_path = conf_path, .sigfd = -1 };
	struct sessweep_cfg sc;
	struct http_options ho = { 0 };
	struct broker_deps deps = { 0 };
	struct msi_listen_sock msi_sock = { .fd = -1 };
	struct passwd *pw = NULL;
	int act_fds[PASSED_FDS_MAX];
	char **act_names = NULL;
	size_t nact;
	sigset_t mask;
	char err[512];
	int lfd = -1, used = -1, r;
	size_t n;

	nact = passed_fds(act_fds, &act_names); /* before anything else */
	harden();
	c.cf = load_config(conf_path);
	if (c.cf->account_match == NULL)
		log_warnx(
		    "account_match is not set: a user could consent with "
		    "someone else's Entra account (device-code phishing)");
	if (geteuid() == 0) {
		pw = getpwnam(c.cf->user);
		if (pw == NULL)
			fatalx("%s: run-as user \"%s\" does not exist",
			    conf_path, c.cf->user);
		if (pw->pw_uid == 0)
			fatalx("%s: credd must not run as root", conf_path);
	}
	resolve_credentials(&c);
	load_keys(&c, keys);
	if (c.cf->client_secret_file != NULL) {
		r = read_secret_file(c.cf->client_secret_file,
		    &c.client_secret);
		if (r < 0)
			fatalx("client_secret_file %s: %s",
			    c.cf->client_secret_file,
			    r == -EPERM ?
				"must be owner-only (0400/0600) and owned by "
				"root or the effective uid" :
				strerror(-r));
	}
	check_client_auth(c.cf);
	r = server_listen(c.cf->socket, pw != NULL ? pw->pw_uid : geteuid(),
	    &lfd, err, sizeof(err));
	if (r < 0)
		fatalx("%s", err);
	/*
	 * Not fatal (issue 11): a port another user holds must never keep
	 * credd from serving its socket. msi_new reports it and retries.
	 */
	(void)msi_listen_open(c.cf, act_fds, act_names, nact, &msi_sock, &used,
	    err, sizeof(err));
	passed_fds_done(act_fds, act_names, nact, used);
	if (pw != NULL) {
		/* Made here when missing; systemd makes it (StateDirectory). */
		r = marks_prepare(c.cf->marks_path, pw->pw_uid, pw->pw_gid);
		if (r < 0)
			fatalx("[store] marks %s: %s", c.cf->marks_path,
			    strerror(-r));
		drop_privileges(pw);
	}
	if (!foreground && daemon(0, 0) < 0)
		fatal("daemon");
	lock_secrets(&c); /* after the fork, before the store thread */
	open_store(&c);
	open_marks(&c);
	r = audit_init(c.cf->node, c.cf->audit_file);
	if (r < 0)
		fatalx("audit file %s: %s", c.cf->audit_file, strerror(-r));

	c.ev = event_new();
	if (c.ev == NULL)
		fatal("event loop");
	audit_attach(c.ev);
	ho.ca_file = c.cf->ca_file;
	ho.proxy = c.cf->proxy;
	ho.timeout_sec = c.cf->timeout;
	r = http_new(c.ev, &ho, &c.http);
	if (r < 0)
		fatalx("http: %s", strerror(-r));
	r = userdb_new(c.ev, USERDB_THREADS, USERDB_TTL_MS, USERDB_CACHED_MAX,
	    &c.userdb);
	if (r < 0)
		fatalx("user lookups: %s", strerror(-r));
	deps.ev = c.ev;
	deps.cf = c.cf;
	deps.st = c.st;
	deps.seal = c.seal;
	deps.http = c.http;
	deps.client_secret = c.client_secret;
	deps.marks = c.marks;
	deps.db = c.userdb;
	r = broker_new(&deps, &c.broker);
	if (r < 0)
		fatalx("broker: %s", strerror(-r));
	c.sessions = sessions_new();
	if (c.sessions == NULL)
		fatalx("out of memory");
	sessweep_cfg_of(c.cf, &sc);
	r = sessweep_new(c.ev, c.sessions, &sessweep_system_ops, &sc,
	    &c.sessweep);
	if (r < 0)
		fatalx("session checks: %s", strerror(-r));
	c.dispatch.broker = c.broker;
	c.dispatch.secmem = c.secmem;
	c.dispatch.sessions = c.sessions;
	c.dispatch.db = c.userdb;
	c.dispatch.cf = c.cf;
	r = server_new(c.ev, lfd, c.cf, c.userdb, dispatch_request, &c.dispatch,
	    &c.server);
	if (r < 0)
		fatalx("server: %s", strerror(-r));
	c.dispatch.server = c.server;
	if (c.cf->msi_listen != NULL) {
		/* Fails only without memory or MHD: not a peer's doing. */
		r = msi_new(c.ev, &msi_sock, c.cf, c.broker, c.sessions,
		    c.userdb, &c.msi);
		if (r < 0)
			fatalx("[msi] endpoint: %s", strerror(-r));
	}
	c.dispatch.msi = c.msi;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		fatal("sigprocmask");
	c.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (c.sigfd < 0 || event_add(c.ev, c.sigfd, EPOLLIN, signal_cb, &c) < 0)
		fatal("signalfd");

	log_info("credd %s on %s as uid %u (node %s, %s store)", ENTRA_VERSION,
	    c.cf->socket, (unsigned)geteuid(), c.cf->node, c.cf->backend);
	(void)debug;
	r = event_run(c.ev);

	/* Orderly shutdown: clients first, then what they used. */
	server_free(c.server);
	msi_free(c.msi);
	broker_free(c.broker);
	sessweep_free(c.sessweep);
	sessions_free(c.sessions);
	userdb_free(c.userdb); /* after every user of it */
	http_free(c.http);
	audit_attach(NULL);
	event_del(c.ev, c.sigfd);
	close(c.sigfd);
	event_free(c.ev);
	store_close(c.st);
	marks_close(c.marks);
	seal_free(c.seal);
	secret_free(c.client_secret);
	secret_set_allocator(NULL); /* every secret is freed by now */
	n = secmem_free(c.secmem);
	if (n > 0)
		log_warnx("secret memory: %zu secrets still allocated at exit "
			  "(a leak)",
		    n);
	audit_close();
	(void)unlink(c.cf->socket);
	while (c.nold > 0)
		config_free(c.old_cf[--c.nold]);
	config_free(c.cf);
	log_info("stopped");
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer inspects the process at exit, which needs it dumpable;
	 * the setuid above cleared that. Sanitizer builds only. */
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return r < 0 ? 1 : 0;
}

static int
cmd_keygen(int argc, char **argv)
{
	const char *path = ENTRA_KEY_FILE;
	int activate = 0, i, r, is_new;
	struct stat st;
	uint32_t id = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-k") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--activate") == 0)
			activate = 1;
		else
			usage();
	}
	umask(077);
	if (sodium_init() < 0)
		fatalx("libsodium cannot initialise");
	is_new = lstat(path, &st) < 0 && errno == ENOENT; /* for the message */
	r = seal_keygen(path, activate, &id);
	if (r < 0)
		fatalx("keygen %s: %s", path, strerror(-r));
	printf("%s: key %u%s\n", path, id,
	    activate || is_new ? " (active)" : "");
	return 0;
}

static int
cmd_rekey(const char *conf_path)
{
	struct credd c = { .conf_path = conf_path };
	struct passwd *pw;
	size_t n = 0;
	int r;

	harden();
	c.cf = load_config(conf_path);
	resolve_credentials(&c);
	load_keys(&c, NULL);
	if (geteuid() == 0) {
		/* Write the store as its owner, as the daemon does. */
		pw = getpwnam(c.cf->user);
		if (pw == NULL)
			fatalx("run-as user \"%s\" does not exist", c.cf->user);
		drop_privileges(pw);
	}
	open_store(&c);
	r = record_rekey_all(c.st, c.seal, c.cf->tenant, &n);
	store_close(c.st);
	if (r < 0)
		fatalx("rekey: %s (%zu records resealed before the error)",
		    strerror(-r), n);
	printf("resealed %zu records under key %u\n", n,
	    seal_active_id(c.seal));
	seal_free(c.seal);
	config_free(c.cf);
	return 0;
}

/* credd db-init: create or migrate the postgres schema. */
static int
cmd_db_init(const char *conf_path)
{
	struct config *cf = load_config(conf_path);
	int r;

	if (strcmp(cf->backend, "postgres") != 0)
		fatalx("%s: [store] backend is not postgres", conf_path);
#ifdef ENTRA_HAVE_PG
	r = store_pg_init(cf->dsn);
#else
	r = -EPROTONOSUPPORT;
#endif
	config_free(cf);
	if (r < 0)
		fatalx("db-init: %s", strerror(-r));
	printf("schema ready\n");
	return 0;
}

/*
 * credd --check-config without account_match: loud, on stderr, several
 * lines. The exit status stays 0: the test harness, the README's install
 * steps and sites' own scripts run --check-config on configs without it.
 */
static void
warn_account_match(const char *conf)
{
	fprintf(stderr,
	    "credd: WARNING: %s: [entra] account_match is not set.\n"
	    "credd: WARNING: Any Entra account can then complete any user's "
	    "sign-in: whoever\n"
	    "credd: WARNING: sees a user's code (a phishing message, a shared "
	    "screen, a session\n"
	    "credd: WARNING: opened with sudo or su) can bind their own Entra "
	    "account to that user.\n"
	    "credd: WARNING: Set it, for example: account_match = "
	    "%%u@contoso.com\n",
	    conf);
}

/* A subcommand's only option, -c CONFIG (argv[1] is the subcommand). */
static const char *
sub_config(int argc, char **argv, const struct option *opts, const char *conf)
{
	int ch;

	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (ch == 'c')
			conf = optarg;
		else
			usage();
	}
	return conf;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "check-config", no_argument, NULL, 'n' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = ENTRA_CONFIG_PATH, *keys = NULL;
	int foreground = 0, debug = 0, check = 0, ch;

	/* Before anything can read it: libcurl, OpenSSL, libpq (procenv.h). */
	if (procenv_capture() < 0) {
		fprintf(stderr, "credd: cannot clear the environment: %s\n",
		    strerror(ENOMEM));
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "keygen") == 0) {
		log_init("credd", 1, 0);
		return cmd_keygen(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "migrate") == 0) {
		log_init("credd", 1, 0);
		return migrate_main(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "db-init") == 0) {
		log_init("credd", 1, 0);
		return cmd_db_init(sub_config(argc, argv, opts, conf));
	}
	if (argc > 1 && strcmp(argv[1], "rekey") == 0) {
		log_init("credd", 1, 0);
		return cmd_rekey(sub_config(argc, argv, opts, conf));
	}
	while ((ch = getopt_long(argc, argv, "c:k:fdh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'k':
			keys = optarg;
			break;
		case 'V':
			printf("credd %s\n", ENTRA_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("credd", foreground || check, debug);
	if (check) {
		struct config *cf = load_config(conf);
		char msg[512];
		int r;

		if (cf->account_match == NULL)
			warn_account_match(conf);
		r = clientauth_check(cf, (int64_t)time(NULL), msg, sizeof(msg));
		if (r < 0) {
			fprintf(stderr, "credd: %s: [entra] %s\n", conf, msg);
			config_free(cf);
			return 1;
		}
		if (r == CLIENTAUTH_NOT_WIRED)
			fprintf(stderr, "credd: WARNING: %s: [entra] %s\n",
			    conf, msg);
		printf("%s: ok\n", conf);
		config_free(cf);
		return 0; /* a warning is not an error: scripts keep working */
	}
	return run(conf, keys, foreground, debug);
}
