/*
 * main.c - credd: argv, the modules built in order, the loop, signals,
 * and an orderly shutdown. The only file that knows every module. The
 * start-up steps are in startup.c, the offline subcommands in subcmd.c.
 *
 * Start-up as root: read the key ring and the client secret, bind the
 * socket, then drop to the configured user for good. Must never: run the
 * loop as root, start with loose permissions on keys or state, or leave
 * a core file (PR_SET_DUMPABLE 0, RLIMIT_CORE 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "entra/paths.h"
#include "entra/secret.h"
#include "entra/version.h"

#include "audit.h"
#include "broker.h"
#include "broker_metrics.h"
#include "clientauth.h"
#include "config.h"
#include "dispatch.h"
#include "ident.h"
#include "workload.h"
#include "clock.h"
#include "discovery.h"
#include "doctor.h"
#include "event.h"
#include "http.h"
#include "log.h"
#include "marks.h"
#include "metrics_http.h"
#include "callback.h"
#include "callback_broker.h"
#include "msi.h"
#include "offboard.h"
#include "msi_listen.h"
#include "migrate.h"
#include "procenv.h"
#include "ready.h"
#include "scrape.h"
#include "seal.h"
#include "secmem.h"
#include "server.h"
#include "session.h"
#include "startup.h"
#include "subcmd.h"
#include "sessweep.h"
#include "store.h"
#include "userdb.h"

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
	struct discovery *disc; /* the IdP's endpoints */
	struct clock clock;	/* the real one, for discovery */
	struct broker *broker;
	struct offboard *offboard; /* [offboarding]; NULL: off */
	struct sessions *sessions;
	struct sessweep *sessweep; /* idle, liveness and account checks */
	struct ident *ident;	   /* cgroup-bound sessions (issue 14) */
	struct userdb *userdb;	   /* NSS lookups, off the loop */
	struct server *server;
	struct msi *msi; /* the SDK endpoint; NULL when [msi] listen is unset */
	struct callback *callback; /* [callback] listen; NULL: off */
	struct dispatch dispatch;
	struct scrape_sources scrape; /* the metrics page's sources */
	struct metrics_http *mhttp;   /* [metrics] listen; NULL: off */
	struct ready *ready;	      /* sd_notify; inert without systemd */
	struct secret *client_secret;
	struct clientauth *clientauth; /* the app credential (clientauth.h) */
	struct secmem *secmem;	       /* locked secret memory; NULL when off */
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
	    "       credd doctor [-c FILE] [-k KEYS] check this node, with fixes\n"
	    "       credd migrate -c FILE --from file|postgres --to file|postgres\n");
	exit(2);
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
 * SIGHUP, or SIGUSR1 alone: logrotate moved the audit file
 * (debian/credd.logrotate). A failure keeps the old file open.
 */
static void
reopen_audit(const char *sig)
{
	char f[128];
	int r;

	r = audit_reopen();
	if (r < 0) {
		(void)snprintf(f, sizeof(f),
		    "event=audit_reopen_failed signal=%s error=%s", sig,
		    log_errno_name(-r));
		log_event_warn(f,
		    "%s: cannot reopen the audit file; still "
		    "writing the old one",
		    sig);
		return;
	}
	(void)snprintf(f, sizeof(f), "event=audit_reopened signal=%s", sig);
	log_event_info(f, "%s: audit file reopened", sig);
}

/* A cross-cloud warning of the config (config_cloud_warnings). */
static void
log_cloud_warning(void *arg, const char *msg)
{
	(void)arg;
	log_warnx("%s", msg);
}

static void
reload(struct credd *c)
{
	struct sessweep_cfg sc;
	struct config *cf = NULL;
	char err[512];

	if (config_load(c->conf_path, &cf, err, sizeof(err)) < 0) {
		log_event_warn("event=config_reload_failed signal=SIGHUP",
		    "SIGHUP: keeping the old configuration: %s", err);
		return;
	}
	/*
	 * Scopes and limits change; the socket, store and IdP do not: a new
	 * cloud resolves the "@NAME" scopes at once, but the IdP and
	 * offboarding keep the authority and Graph they started with.
	 */
	if (strcmp(cf->authority, c->cf->authority) != 0)
		log_warnx("SIGHUP: [entra] authority changed (cloud = %s): it "
			  "takes effect at the next restart",
		    config_cloud_name(cf->cloud));
	if (strcmp(cf->off_graph_url, c->cf->off_graph_url) != 0)
		log_warnx("SIGHUP: [offboarding] graph_url changed (cloud = "
			  "%s): it takes effect at the next restart",
		    config_cloud_name(cf->cloud));
	(void)config_cloud_warnings(cf, log_cloud_warning, NULL);
	if (c->nold == sizeof(c->old_cf) / sizeof(c->old_cf[0])) {
		config_free(c->old_cf[0]);
		memmove(c->old_cf, c->old_cf + 1,
		    sizeof(c->old_cf) - sizeof(c->old_cf[0]));
		c->nold--;
	}
	c->old_cf[c->nold++] = c->cf;
	c->cf = cf;
	c->dispatch.cf = cf;
	ident_set_config(c->ident, cf); /* live sessions: the new policy */
	server_set_config(c->server, cf);
	broker_set_config(c->broker, cf);
	if (clientauth_set_config(c->clientauth, cf) == -EINVAL)
		log_warnx("[entra] client_auth changed: it takes effect at the "
			  "next restart");
	msi_set_config(c->msi, cf);
	if ((cf->callback_listen == NULL) !=
		(c->old_cf[c->nold - 1]->callback_listen == NULL) ||
	    (cf->callback_listen != NULL &&
		strcmp(cf->callback_listen,
		    c->old_cf[c->nold - 1]->callback_listen) != 0))
		log_warnx("callback: [callback] listen changed; restart credd "
			  "to move or start the sign-in callback");
	sessweep_cfg_of(cf, &sc);
	sessweep_set_config(c->sessweep, &sc);
	reopen_audit("SIGHUP");
	log_event_info("event=config_reloaded signal=SIGHUP",
	    "configuration reloaded");
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
		else if (si.ssi_signo == SIGUSR1)
			reopen_audit("SIGUSR1");
		else {
			log_event_info(si.ssi_signo == SIGTERM ?
				"event=shutdown signal=SIGTERM" :
				"event=shutdown signal=SIGINT",
			    "signal %u: shutting down", si.ssi_signo);
			ready_stopping(c->ready);
			event_stop(ev);
		}
	}
}

/* STATUS= for systemd: counts and health only, never a user's name. */
static void
status_text(void *arg, char *buf, size_t size)
{
	static const char *const names[] = { "healthy", "degraded",
		"unhealthy" };
	struct credd *c = arg;
	json_t *o = json_object();
	int level = o != NULL ? broker_metrics_health(c->broker, o) : -ENOMEM;

	json_decref(o);
	(void)snprintf(buf, size, "serving, %zu users, %zu sessions; %s",
	    broker_metrics_users(c->broker), sessions_count(c->sessions),
	    level >= 0 && level <= 2 ? names[level] : "health unknown");
}

/* [metrics] listen: bound as root like the other sockets; not fatal. */
static int
metrics_listen(const struct config *cf)
{
	char err[512];
	int fd = -1;

	if (cf->metrics_listen == NULL)
		return -1;
	if (metrics_http_listen(cf->metrics_listen, &fd, err, sizeof(err)) <
	    0) {
		log_warnx("%s; serving metrics through 'credctl admin metrics' "
			  "only",
		    err);
		return -1;
	}
	return fd;
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

/*
 * Close the passed sockets nobody took (used, used2: the ones the SDK
 * endpoint and the sign-in callback took, or -1).
 */
static void
passed_fds_done(int *fds, char **names, size_t n, int used, int used2)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((int)i != used && (int)i != used2) {
			log_warnx("the socket passed as \"%s\" (fd %d) is not "
				  "used: it is neither the [msi] nor the "
				  "[callback] listen socket",
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
 * [callback] listen: its socket, bound as root like the SDK endpoint's
 * (not fatal: the listener starts down and retries).
 */
static void
callback_open(const struct config *cf, const int *fds, char *const *names,
    size_t nfds, struct msi_listen_sock *sock, int *used)
{
	char err[512];

	*used = -1;
	if (cf->callback_listen == NULL)
		return;
	(void)callback_listen_open(cf, fds, names, nfds, sock, used, err,
	    sizeof(err));
}

/* The start line: what an operator's alert or dashboard keys on. */
static void
log_started(const struct credd *c)
{
	char q1[LOG_VALUE_MAX], q2[LOG_VALUE_MAX], f[3 * LOG_VALUE_MAX];

	(void)snprintf(f, sizeof(f),
	    "event=startup version=%s socket=%s uid=%u node=%s backend=%s",
	    ENTRA_VERSION, log_value(q1, c->cf->socket), (unsigned)geteuid(),
	    log_value(q2, c->cf->node), c->cf->backend);
	log_event_info(f, "credd %s on %s as uid %u (node %s, %s store)",
	    ENTRA_VERSION, c->cf->socket, (unsigned)geteuid(), c->cf->node,
	    c->cf->backend);
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
	struct discovery_rules rules = { 0 };
	struct broker_deps deps = { 0 };
	struct msi_listen_sock msi_sock = { .fd = -1 };
	struct msi_listen_sock cb_sock = { .fd = -1 };
	struct passwd *pw = NULL;
	struct offboard_cred ocred;
	int act_fds[PASSED_FDS_MAX];
	char **act_names = NULL;
	size_t nact;
	sigset_t mask;
	char err[512];
	int lfd = -1, mfd = -1, used = -1, used2 = -1, r;
	size_t n;

	nact = passed_fds(act_fds, &act_names); /* before anything else */
	startup_harden();
	c.cf = startup_config(conf_path);
	if (c.cf->account_match == NULL)
		log_warnx(
		    "account_match is not set: a user could consent with "
		    "someone else's Entra account (device-code phishing)");
	(void)config_cloud_warnings(c.cf, log_cloud_warning, NULL);
	if (geteuid() == 0) {
		pw = getpwnam(c.cf->user);
		if (pw == NULL)
			fatalx("%s: run-as user \"%s\" does not exist",
			    conf_path, c.cf->user);
		if (pw->pw_uid == 0)
			fatalx("%s: credd must not run as root", conf_path);
	}
	startup_credentials(c.cf);
	startup_load_keys(c.cf, keys, &c.seal);
	if (c.cf->client_secret_file != NULL) {
		r = startup_read_secret(c.cf->client_secret_file,
		    &c.client_secret);
		if (r < 0)
			fatalx("client_secret_file %s: %s",
			    c.cf->client_secret_file,
			    r == -EPERM ?
				"must be owner-only (0400/0600) and owned by "
				"root or the effective uid" :
				strerror(-r));
	}
	c.clientauth = startup_client_auth(c.cf); /* the key: before the drop */
	startup_offboard_cred(c.cf, &ocred); /* before the privilege drop */
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
	callback_open(c.cf, act_fds, act_names, nact, &cb_sock, &used2);
	passed_fds_done(act_fds, act_names, nact, used, used2);
	mfd = metrics_listen(c.cf);
	if (pw != NULL) {
		/* Made here when missing; systemd makes it (StateDirectory). */
		r = marks_prepare(c.cf->marks_path, pw->pw_uid, pw->pw_gid);
		if (r < 0)
			fatalx("[store] marks %s: %s", c.cf->marks_path,
			    strerror(-r));
		startup_drop_privileges(pw);
	}
	if (!foreground && daemon(0, 0) < 0)
		fatal("daemon");
	startup_lock_secrets(c.cf, c.seal, &c.secmem,
	    &c.client_secret); /* after the fork, before the store thread */
	clientauth_set_secret(c.clientauth, c.client_secret);
	if (c.secmem != NULL && ocred.secret != NULL) {
		/* [offboarding]'s secret, read before the arena: move it in. */
		struct secret *s = secret_dup(ocred.secret);

		if (s == NULL)
			fatalx("out of memory");
		secret_free(ocred.secret);
		ocred.secret = s;
	}
	startup_open_store(c.cf, conf_path, &c.st);
	startup_open_marks(c.cf, &c.marks);
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
	rules.authority = c.cf->authority;
	rules.tenant = c.cf->tenant;
	rules.hosts = c.cf->discovery_hosts;
	rules.is_oidc = c.cf->provider == CONFIG_PROVIDER_OIDC;
	clock_init_real(&c.clock, c.ev);
	r = discovery_new(&c.clock, &discovery_http_ops, c.http, &rules,
	    c.cf->discovery_min_ttl, &c.disc);
	if (r < 0)
		fatalx("discovery: %s", strerror(-r));
	discovery_start(c.disc); /* on the loop; requests wait for it */
	if (ocred.client_id != NULL) {
		r = offboard_http_new(c.ev, c.http, c.disc, c.cf->off_graph_url,
		    &ocred, &c.offboard);
		if (r < 0)
			fatalx("offboarding: %s", strerror(-r));
	}
	r = userdb_new(c.ev, USERDB_THREADS, USERDB_TTL_MS, USERDB_CACHED_MAX,
	    &c.userdb);
	if (r < 0)
		fatalx("user lookups: %s", strerror(-r));
	deps.ev = c.ev;
	deps.cf = c.cf;
	deps.st = c.st;
	deps.seal = c.seal;
	deps.http = c.http;
	deps.disc = c.disc;
	deps.clientauth = c.clientauth;
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
	r = ident_new(c.ev, c.cf, c.sessions, NULL, &c.ident);
	if (r < 0)
		fatalx("cgroup watch: %s", strerror(-r));
	c.dispatch.ident = c.ident;
	c.dispatch.broker = c.broker;
	c.dispatch.secmem = c.secmem;
	c.dispatch.sessions = c.sessions;
	c.dispatch.db = c.userdb;
	c.dispatch.offboard = c.offboard;
	broker_set_offboard(c.broker, dispatch_offboard_resume, &c.dispatch);
	c.dispatch.cf = c.cf;
	r = server_new(c.ev, lfd, c.cf, c.userdb, dispatch_request, &c.dispatch,
	    &c.server);
	if (r < 0)
		fatalx("server: %s", strerror(-r));
	c.dispatch.server = c.server;
	server_set_identify(c.server, ident_identify, c.ident);
	if (c.cf->msi_listen != NULL) {
		/* Fails only without memory or MHD: not a peer's doing. */
		r = msi_new(c.ev, &msi_sock, c.cf, c.broker, c.sessions,
		    c.userdb, &c.msi);
		if (r < 0)
			fatalx("[msi] endpoint: %s", strerror(-r));
	}
	c.dispatch.msi = c.msi;
	if (c.cf->callback_listen != NULL) {
		/* Fails only without memory or MHD, like the SDK endpoint. */
		r = callback_new(c.ev, &cb_sock, c.cf->callback_listen,
		    callback_broker_ops(), c.broker, NULL, &c.callback);
		if (r < 0)
			fatalx("[callback] listener: %s", strerror(-r));
	}
	c.dispatch.callback = c.callback;
	c.scrape.broker = c.broker;
	c.scrape.server = c.server;
	c.scrape.sessions = c.sessions;
	c.scrape.msi = c.msi;
	if (mfd >= 0) {
		r = metrics_http_new(c.ev, mfd, scrape_page, &c.scrape,
		    &c.mhttp);
		if (r < 0)
			fatalx("[metrics] endpoint: %s", strerror(-r));
	}
	r = ready_new(c.ev, &ready_systemd_ops, NULL,
	    procenv_notify_socket() != NULL, status_text, &c, &c.ready);
	if (r < 0)
		fatalx("sd_notify: %s", strerror(-r));

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		fatal("sigprocmask");
	c.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (c.sigfd < 0 || event_add(c.ev, c.sigfd, EPOLLIN, signal_cb, &c) < 0)
		fatal("signalfd");

	log_started(&c);
	(void)debug;
	/* Sockets listening, key ring and store open: tell systemd. */
	ready_serving(c.ready);
	r = event_run(c.ev);

	/* Orderly shutdown: clients first, then what they used. */
	ready_stopping(c.ready); /* once: a signal may have said it */
	ready_free(c.ready);
	metrics_http_free(c.mhttp);
	server_free(c.server);
	msi_free(c.msi);
	callback_free(c.callback);
	offboard_http_free(c.offboard); /* after the admins' waiters */
	broker_free(c.broker);
	sessweep_free(c.sessweep);
	ident_free(c.ident);
	sessions_free(c.sessions);
	userdb_free(c.userdb);	/* after every user of it */
	discovery_free(c.disc); /* after the broker, its listener */
	http_free(c.http);
	audit_attach(NULL);
	event_del(c.ev, c.sigfd);
	close(c.sigfd);
	event_free(c.ev);
	store_close(c.st);
	marks_close(c.marks);
	seal_free(c.seal);
	clientauth_free(c.clientauth); /* after the broker, its user */
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
	log_event_info("event=stopped", "stopped");
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer inspects the process at exit, which needs it dumpable;
	 * the setuid above cleared that. Sanitizer builds only. */
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return r < 0 ? 1 : 0;
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

/* credd --check-config: a config warning on stderr (exit status 0). */
static void
print_warning(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "credd: %s\n", msg);
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
	int foreground = 0, debug = 0, check = 0, ch, r;

	/* Before anything can read it: libcurl, OpenSSL, libpq (procenv.h). */
	if (procenv_capture() < 0) {
		fprintf(stderr, "credd: cannot clear the environment: %s\n",
		    strerror(ENOMEM));
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "keygen") == 0) {
		log_init("credd", 1, 0);
		r = subcmd_keygen(argc - 1, argv + 1);
		if (r < 0)
			usage();
		return r;
	}
	if (argc > 1 && strcmp(argv[1], "doctor") == 0) {
		log_init("credd", 1, 0);
		return doctor_main(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "migrate") == 0) {
		log_init("credd", 1, 0);
		return migrate_main(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "db-init") == 0) {
		log_init("credd", 1, 0);
		return subcmd_db_init(sub_config(argc, argv, opts, conf));
	}
	if (argc > 1 && strcmp(argv[1], "rekey") == 0) {
		log_init("credd", 1, 0);
		return subcmd_rekey(sub_config(argc, argv, opts, conf));
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
		struct config *cf = startup_config(conf);
		char msg[512];

		if (cf->account_match == NULL)
			warn_account_match(conf);
		(void)config_cloud_warnings(cf, print_warning, NULL);
		/* A federated token file is read as [server] user later. */
		r = cf->client_auth == CONFIG_CLIENT_AUTH_FEDERATED ?
		    startup_check_as_user(cf, clientauth_check,
			(int64_t)time(NULL), msg, sizeof(msg)) :
		    clientauth_check(cf, (int64_t)time(NULL), msg, sizeof(msg));
		if (r < 0) {
			fprintf(stderr, "credd: %s: [entra] %s\n", conf, msg);
			config_free(cf);
			return 1;
		}
		r = cf->off_client_auth == CONFIG_CLIENT_AUTH_FEDERATED ?
		    startup_check_as_user(cf, clientauth_check_offboarding,
			(int64_t)time(NULL), msg, sizeof(msg)) :
		    clientauth_check_offboarding(cf, (int64_t)time(NULL), msg,
			sizeof(msg));
		if (r < 0) {
			fprintf(stderr, "credd: %s: [offboarding] %s\n", conf,
			    msg);
			config_free(cf);
			return 1;
		}
		printf("%s: ok\n", conf);
		config_cloud_print(cf, stdout);	  /* issue 17 */
		workload_print_table(cf, stdout); /* issue 14 */
		config_free(cf);
		return 0; /* a warning is not an error: scripts keep working */
	}
	return run(conf, keys, foreground, debug);
}
