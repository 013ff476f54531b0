/*
 * test_pam_wrapper.c - drives the BUILT pam_entra.so (sanitized when the
 * build is) through libpamtest and pam_wrapper: service files live in a
 * temp dir (PAM_WRAPPER_SERVICE_DIR), and a fake credd thread answers on
 * a temp socket with canned replies.
 *
 * Usage: test_pam_wrapper /path/to/pam_entra.so
 * It sets up pam_wrapper itself (PAM_WRAPPER=1, LD_PRELOAD of
 * libpam_wrapper.so, or $PAM_ENTRA_PRELOAD, which a sanitized build
 * points at the sanitizer runtime first) and re-executes once.
 *
 * The client checks that the server is root or the credd user, so every
 * case that needs the fake credd to answer runs only as root; as another
 * user those cases are skipped with a message (argument parsing, credd
 * down and the skipped users still run).
 *
 * Exit: 0 all passed, 1 a failure.
 *
 * How return codes are observed: a service file with the module alone
 * ("session required") makes the stack's result the module's own code.
 * PAM_IGNORE cannot be seen that way (PAM turns an undecided stack into
 * PAM_PERM_DENIED), so the skip case uses
 * "[ignore=ignore default=bad]" + pam_permit: success means IGNORE.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpamtest.h>
#include <security/pam_appl.h>

#define MAX_REQS 16
#define REQ_MAX 4096
#define FAKE_CODE "QWER7TYU"
#define FAKE_URI "https://microsoft.com/devicelogin"
#define FAKE_SECRET "s3cr3t-endpoint-header-value"

enum fake_mode {
	FAKE_PENDING,
	FAKE_READY,
	FAKE_HUNG,
	FAKE_PENDING_THEN_READY,
	FAKE_CODE_PASTE, /* auth_code, paste-back, after a fallback */
	FAKE_CODE_LINK,	 /* auth_code, a platform callback's short link */
};
#define FAKE_LINK "https://ds.example.com/entra/login/AAAAAAAAAAAAAAAAAAAAAA"
#define FAKE_AUTHORIZE                                                         \
	"https://login.microsoftonline.com/t/oauth2/v2.0/authorize?state=x"
#define FAKE_NOTE                                                              \
	"Your organization blocks sign-in with a device code here; sign in "   \
	"with a browser link instead."

/* The fake credd: one thread, poll over the listener and its clients. */
struct fake {
	enum fake_mode mode;
	int lfd;
	int stop[2];
	pthread_t thr;
	pthread_mutex_t mu;
	int nconn;
	int nreq;
	char reqs[MAX_REQS][REQ_MAX];
	int nopen;
};

/* What the conversation saw. */
struct seen {
	int ninfo;
	int nother;
	char info[PAM_MAX_MSG_SIZE * 2];
};

static const char *module;
static const char *bad_args[] = { "timeout=abc", "timeout=0", "timeout=-5",
	"timeout=99999999", "timeout=20x", "wait=-1", "wait=901",
	"minimum_uid=x", "minimum_uid=", "socket=relative.sock",
	"workload=", "workload=a;b", "switch_services=su,,sudo",
	"switch_services=,su", "switch_services=su,", "switch_services=su;id" };
#define NBAD (sizeof(bad_args) / sizeof(bad_args[0]))
static char tmpdir[] = "/tmp/pam-entra-test-XXXXXX";
static char sock_path[100];
static int failures, is_root;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stdout, "  FAIL: ");
	vfprintf(stdout, fmt, ap);
	fprintf(stdout, "\n");
	va_end(ap);
	failures++;
}

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fail(__VA_ARGS__);                                     \
	} while (0)

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------- fake credd */

static void
fake_answer(struct fake *f, int fd, const char *line)
{
	char out[1024];
	int is_open = strstr(line, "\"op\":\"session_open\"") != NULL;
	int is_ready;

	pthread_mutex_lock(&f->mu);
	if (f->nreq < MAX_REQS)
		snprintf(f->reqs[f->nreq++], REQ_MAX, "%s", line);
	if (is_open)
		f->nopen++;
	is_ready = f->mode == FAKE_READY ||
	    (f->mode == FAKE_PENDING_THEN_READY && f->nopen > 1);
	pthread_mutex_unlock(&f->mu);
	if (!is_open)
		snprintf(out, sizeof(out), "{\"ok\":true}\n");
	else if (f->mode == FAKE_CODE_PASTE || f->mode == FAKE_CODE_LINK)
		snprintf(out, sizeof(out),
		    "{\"ok\":true,\"session\":\"sess-%d\","
		    "\"state\":\"pending\",\"account\":null,"
		    "\"method\":\"auth_code\",\"signin_url\":\"%s\","
		    "\"paste_back\":%s,\"expires_on\":%lld,"
		    "\"message\":\"%sTo sign in, ...\"}\n",
		    f->nopen,
		    f->mode == FAKE_CODE_PASTE ? FAKE_AUTHORIZE : FAKE_LINK,
		    f->mode == FAKE_CODE_PASTE ? "true" : "false",
		    (long long)time(NULL) + 900,
		    f->mode == FAKE_CODE_PASTE ? FAKE_NOTE " " : "");
	else if (is_ready)
		snprintf(out, sizeof(out),
		    "{\"ok\":true,\"session\":\"sess-%d\","
		    "\"state\":\"ready\",\"account\":\"a@contoso.com\","
		    "\"endpoint\":\"http://127.0.0.1:40342/msi/token\","
		    "\"secret\":\"" FAKE_SECRET "\"}\n",
		    f->nopen);
	else
		snprintf(out, sizeof(out),
		    "{\"ok\":true,\"session\":\"sess-%d\","
		    "\"state\":\"pending\",\"account\":null,"
		    "\"verification_uri\":\"" FAKE_URI
		    "\",\"user_code\":\"" FAKE_CODE
		    "\",\"expires_on\":%lld,\"message\":\"To sign in, "
		    "use a web browser\"}\n",
		    f->nopen, (long long)time(NULL) + 900);
	(void)!write(fd, out, strlen(out));
}

/* Read what is there and answer every complete line. */
static int
fake_client(struct fake *f, int fd, char *buf, size_t *used)
{
	char *nl;
	ssize_t n;

	n = read(fd, buf + *used, REQ_MAX - 1 - *used);
	if (n <= 0)
		return -1;
	*used += (size_t)n;
	buf[*used] = '\0';
	while ((nl = strchr(buf, '\n')) != NULL) {
		*nl = '\0';
		fake_answer(f, fd, buf);
		memmove(buf, nl + 1, *used - (size_t)(nl + 1 - buf) + 1);
		*used -= (size_t)(nl + 1 - buf);
	}
	return 0;
}

static void *
fake_loop(void *arg)
{
	struct fake *f = arg;
	struct pollfd p[3];
	char buf[REQ_MAX];
	size_t used = 0;
	int cfd = -1;

	for (;;) {
		p[0] = (struct pollfd){ .fd = f->stop[0], .events = POLLIN };
		p[1] = (struct pollfd){ .fd = cfd < 0 ? f->lfd : -1,
			.events = POLLIN };
		p[2] = (struct pollfd){ .fd = f->mode == FAKE_HUNG ? -1 : cfd,
			.events = POLLIN };
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			break;
		/* Serve what is ready before honouring a stop. */
		if (p[1].revents & POLLIN) {
			cfd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
			used = 0;
			pthread_mutex_lock(&f->mu);
			f->nconn++;
			pthread_mutex_unlock(&f->mu);
		}
		if ((p[2].revents & (POLLIN | POLLHUP)) &&
		    fake_client(f, cfd, buf, &used) < 0) {
			close(cfd);
			cfd = -1;
		}
		if (p[0].revents)
			break;
	}
	if (cfd >= 0)
		close(cfd);
	return NULL;
}

static int
listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	unlink(path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 16) < 0) {
		perror("fake credd: socket");
		exit(1);
	}
	return fd;
}

static void
fake_start(struct fake *f, enum fake_mode mode)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	pthread_mutex_init(&f->mu, NULL);
	f->lfd = listen_unix(sock_path);
	if (pipe2(f->stop, O_CLOEXEC) < 0 ||
	    pthread_create(&f->thr, NULL, fake_loop, f) != 0) {
		perror("fake credd");
		exit(1);
	}
}

static void
fake_stop(struct fake *f)
{
	(void)!write(f->stop[1], "x", 1);
	pthread_join(f->thr, NULL);
	close(f->stop[0]);
	close(f->stop[1]);
	close(f->lfd);
	unlink(sock_path);
	pthread_mutex_destroy(&f->mu);
}

/* ------------------------------------------------------------ PAM glue */

static int
conv_fn(int n, const struct pam_message **msg, struct pam_response **resp,
    void *data)
{
	struct seen *s = data;
	struct pam_response *r;
	int i;

	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_TEXT_INFO) {
			s->ninfo++;
			snprintf(s->info, sizeof(s->info), "%s", msg[i]->msg);
		} else
			s->nother++;
	}
	*resp = r; /* the module must wipe and free it */
	return PAM_SUCCESS;
}

/* Write service file "name" with the given session lines. */
static void service(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
service(const char *name, const char *fmt, ...)
{
	char path[512];
	va_list ap;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	if (fp == NULL) {
		perror(path);
		exit(1);
	}
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fclose(fp);
}

/* A one-module stack: the module's own return code is the stack's. */
static void
service_alone(const char *name, const char *args)
{
	service(name, "session required %s %s\n", module, args);
}

/*
 * Run open_session (and optionally close_session) for user. Returns the
 * open_session result; *elapsed_ms is the time the whole run took.
 */
static int
run(const char *svc, const char *user, int flags, int also_close,
    struct seen *s, long long *elapsed_ms, char ***env)
{
	struct pam_testcase tc[3] = {
		pam_test_flags(PAMTEST_OPEN_SESSION, PAM_SUCCESS, flags),
		pam_test(PAMTEST_GETENVLIST, PAM_SUCCESS),
		pam_test(PAMTEST_CLOSE_SESSION, PAM_SUCCESS),
	};
	size_t ncases = also_close ? 3 : (env != NULL ? 2 : 1);
	long long t0 = now_ms();

	memset(s, 0, sizeof(*s));
	(void)_pamtest_conv(svc, user, conv_fn, s, tc, ncases, NULL);
	if (elapsed_ms != NULL)
		*elapsed_ms = now_ms() - t0;
	if (env != NULL)
		*env = ncases >= 2 ? tc[1].case_out.envlist : NULL;
	else if (ncases >= 2)
		pamtest_free_env(tc[1].case_out.envlist);
	if (also_close && tc[2].op_rv != PAM_SUCCESS)
		fail("close_session returned %d", tc[2].op_rv);
	return tc[0].op_rv;
}

static const char *
env_get(char **env, const char *name)
{
	size_t n = strlen(name);

	for (; env != NULL && *env != NULL; env++)
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

/*
 * Every service file, written before pam_wrapper starts (it copies the
 * service directory when the process starts).
 */
static void
write_services(void)
{
	char name[32], args[512];
	size_t i;

	for (i = 0; i < NBAD; i++) {
		snprintf(name, sizeof(name), "args-bad-%zu", i);
		snprintf(args, sizeof(args), "socket=%s %s", sock_path,
		    bad_args[i]);
		service_alone(name, args);
	}
	snprintf(args, sizeof(args),
	    "frobnicate socket=%s/none.sock "
	    "timeout=1500 wait=0 minimum_uid=1000 workload=job quiet debug",
	    tmpdir);
	service_alone("args-good", args);
	service("skip",
	    "session [ignore=ignore default=bad] %s socket=%s\n"
	    "session required pam_permit.so\n",
	    module, sock_path);
	service("other", "session required pam_deny.so\n");
	snprintf(args, sizeof(args), "socket=%s workload=job debug", sock_path);
	service_alone("msg", args);
	snprintf(args, sizeof(args), "socket=%s", sock_path);
	service_alone("silent", args);
	snprintf(args, sizeof(args), "socket=%s debug", sock_path);
	service_alone("ready", args);
	service_alone("wrong", args);
	snprintf(args, sizeof(args), "socket=%s quiet", sock_path);
	service_alone("quiet", args);
	snprintf(args, sizeof(args), "socket=%s wait=3 debug", sock_path);
	service_alone("wait", args);
	snprintf(args, sizeof(args), "socket=%s/absent.sock", tmpdir);
	service_alone("down", args);
	snprintf(args, sizeof(args), "socket=%s/stale.sock", tmpdir);
	service_alone("stale", args);
	service("down-optional",
	    "session required pam_permit.so\n"
	    "session optional %s socket=%s/absent.sock\n",
	    module, tmpdir);
	snprintf(args, sizeof(args), "socket=%s timeout=1500", sock_path);
	service_alone("hung", args);
	/* Sessions one user opens for another (issue 11, item 12). */
	snprintf(args, sizeof(args), "socket=%s debug", sock_path);
	service_alone("su", args);
	service_alone("sudo", args);
	service_alone("sudo-i", args);
	service_alone("runuser-l", args);
	snprintf(args, sizeof(args), "socket=%s switch_signin", sock_path);
	service_alone("su-l", args); /* the override */
	snprintf(args, sizeof(args), "socket=%s switch_services=", sock_path);
	service_alone("runuser", args); /* an empty list: no service by name */
	snprintf(args, sizeof(args), "socket=%s switch_services=doas,pkexec",
	    sock_path);
	service_alone("doas", args);
	service_alone("sshd-like", args); /* not in that list */
#ifdef PAM_SET_ITEMS_MODULE
	/* PAM_RUSER from the environment (pam_set_items), then the module. */
	service("ruser",
	    "session required " PAM_SET_ITEMS_MODULE "\n"
	    "session required %s socket=%s debug\n",
	    module, sock_path);
	service("ruser-signin",
	    "session required " PAM_SET_ITEMS_MODULE "\n"
	    "session required %s socket=%s switch_signin\n",
	    module, sock_path);
#endif
}

/* ---------------------------------------------------------------- cases */

static void
test_args(void)
{
	struct seen s;
	char svc[32];
	size_t i;
	int r;

	printf("# argument parsing\n");
	for (i = 0; i < NBAD; i++) {
		snprintf(svc, sizeof(svc), "args-bad-%zu", i);
		r = run(svc, "nobody", 0, 0, &s, NULL, NULL);
		CHECK(r == PAM_SERVICE_ERR, "%s: want PAM_SERVICE_ERR, got %d",
		    bad_args[i], r);
	}
	/* Good values and an unknown argument: parsing goes on to connect. */
	r = run("args-good", "nobody", 0, 0, &s, NULL, NULL);
	CHECK(r == PAM_SESSION_ERR,
	    "good args + unknown one: want "
	    "PAM_SESSION_ERR (credd down), got %d",
	    r);
	CHECK(s.ninfo == 0, "credd down: no message expected");
}

static void
test_skipped_users(void)
{
	static const char *users[] = { "root", "daemon" };
	struct fake f;
	struct seen s;
	size_t i;
	int r;

	printf("# root and system users are skipped (PAM_IGNORE)\n");
	/* success only when the module returns PAM_IGNORE (see below). */
	fake_start(&f, FAKE_PENDING);
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		r = run("skip", users[i], 0, 1, &s, NULL, NULL);
		CHECK(r == PAM_SUCCESS,
		    "%s: the module did not return "
		    "PAM_IGNORE (stack gave %d)",
		    users[i], r);
		CHECK(s.ninfo == 0, "%s: unexpected message", users[i]);
	}
	/* A regular user is not skipped: the same stack then fails. */
	r = run("skip", "nobody", PAM_SILENT, 0, &s, NULL, NULL);
	CHECK(r != PAM_SUCCESS, "nobody: expected not to be skipped");
	fake_stop(&f);
	CHECK(f.nconn == 1,
	    "skipped users must not connect; "
	    "connections %d (want 1, for nobody)",
	    f.nconn);
}

static void
test_message(void)
{
	struct fake f;
	struct seen s;
	char host[256];
	int r;

	printf(
	    "# interactive + pending: one PAM_TEXT_INFO with URL and code\n");
	fake_start(&f, FAKE_PENDING);
	r = run("msg", "nobody", 0, 1, &s, NULL, NULL);
	fake_stop(&f);
	gethostname(host, sizeof(host));
	CHECK(r == PAM_SUCCESS, "pending: want PAM_SUCCESS, got %d", r);
	CHECK(s.ninfo == 1 && s.nother == 0,
	    "want one info message, got %d "
	    "info + %d other",
	    s.ninfo, s.nother);
	CHECK(strstr(s.info, FAKE_URI) != NULL, "no URL in: %s", s.info);
	CHECK(strstr(s.info, FAKE_CODE) != NULL, "no code in: %s", s.info);
	CHECK(strstr(s.info, "nobody") != NULL, "no user in: %s", s.info);
	CHECK(strstr(s.info, host) != NULL, "no host in: %s", s.info);
	CHECK(strstr(s.info, "expires") != NULL, "no expiry in: %s", s.info);
	printf("  message: %s\n", s.info);
	CHECK(f.nconn == 2, "want one connection per PAM call (2), got %d",
	    f.nconn);
	CHECK(f.nreq == 2, "want 2 requests, got %d", f.nreq);
	CHECK(strstr(f.reqs[0], "\"user\":\"nobody\"") &&
		strstr(f.reqs[0], "\"interactive\":true") &&
		strstr(f.reqs[0], "\"workload\":\"job\"") &&
		strstr(f.reqs[0], "\"service\":\"msg\""),
	    "session_open request: %s", f.reqs[0]);
	CHECK(strstr(f.reqs[1], "\"op\":\"session_close\"") &&
		strstr(f.reqs[1], "\"session\":\"sess-1\""),
	    "session_close "
	    "request: %s",
	    f.reqs[1]);
}

/* [entra] signin with auth_code: what each redirect kind shows. */
static void
test_code_messages(void)
{
	struct fake f;
	struct seen s;
	int r;

	printf("# auth_code: paste-back says run credctl login (with the "
	       "fallback's reason); a callback shows its short link\n");
	fake_start(&f, FAKE_CODE_PASTE);
	r = run("msg", "nobody", 0, 1, &s, NULL, NULL);
	fake_stop(&f);
	CHECK(r == PAM_SUCCESS, "paste: want PAM_SUCCESS, got %d", r);
	CHECK(s.ninfo == 1, "paste: want one info message, got %d", s.ninfo);
	CHECK(strstr(s.info, "credctl login") != NULL,
	    "paste: no credctl login in: %s", s.info);
	CHECK(strstr(s.info, "blocks sign-in with a device code") != NULL,
	    "paste: no fallback reason in: %s", s.info);
	CHECK(strstr(s.info, "authorize") == NULL,
	    "paste: the long authorize URL is for credctl: %s", s.info);
	printf("  message: %s\n", s.info);

	fake_start(&f, FAKE_CODE_LINK);
	r = run("msg", "nobody", 0, 1, &s, NULL, NULL);
	fake_stop(&f);
	CHECK(r == PAM_SUCCESS, "link: want PAM_SUCCESS, got %d", r);
	CHECK(s.ninfo == 1 && strstr(s.info, FAKE_LINK) != NULL,
	    "link: no short link in: %s", s.info);
	printf("  message: %s\n", s.info);

	/* Silent sessions start nothing and show nothing, whatever the
	 * method. */
	fake_start(&f, FAKE_CODE_LINK);
	r = run("silent", "nobody", PAM_SILENT, 0, &s, NULL, NULL);
	fake_stop(&f);
	CHECK(r == PAM_SUCCESS && s.ninfo == 0,
	    "silent: want no message, got %d", s.ninfo);
	CHECK(f.nreq == 1 && strstr(f.reqs[0], "\"interactive\":false"),
	    "silent must be non-interactive: %s", f.reqs[0]);
}

static void
test_silent_and_quiet(void)
{
	struct fake f;
	struct seen s;
	int r;

	printf("# PAM_SILENT sends nothing; quiet sends nothing\n");
	fake_start(&f, FAKE_PENDING);
	r = run("silent", "nobody", PAM_SILENT, 0, &s, NULL, NULL);
	fake_stop(&f);
	CHECK(r == PAM_SUCCESS, "silent: want PAM_SUCCESS, got %d", r);
	CHECK(s.ninfo == 0 && s.nother == 0, "silent: %d messages", s.ninfo);
	CHECK(f.nreq == 1 && strstr(f.reqs[0], "\"interactive\":false"),
	    "silent must be non-interactive: %s", f.reqs[0]);

	fake_start(&f, FAKE_PENDING);
	r = run("quiet", "nobody", 0, 0, &s, NULL, NULL);
	fake_stop(&f);
	CHECK(r == PAM_SUCCESS, "quiet: want PAM_SUCCESS, got %d", r);
	CHECK(s.ninfo == 0, "quiet: %d messages", s.ninfo);
}

static void
test_ready_env(void)
{
	struct fake f;
	struct seen s;
	char **env = NULL;
	int r;

	printf("# ready: no message; endpoint and secret exported\n");
	fake_start(&f, FAKE_READY);
	r = run("ready", "nobody", 0, 0, &s, NULL, &env);
	fake_stop(&f);
	CHECK(r == PAM_SUCCESS, "ready: want PAM_SUCCESS, got %d", r);
	CHECK(s.ninfo == 0, "ready: %d messages", s.ninfo);
	CHECK(env_get(env, "IDENTITY_ENDPOINT") != NULL &&
		strcmp(env_get(env, "IDENTITY_ENDPOINT"),
		    "http://127.0.0.1:40342/msi/token") == 0,
	    "IDENTITY_ENDPOINT not exported");
	CHECK(env_get(env, "IDENTITY_HEADER") != NULL &&
		strcmp(env_get(env, "IDENTITY_HEADER"), FAKE_SECRET) == 0,
	    "IDENTITY_HEADER not exported");
	pamtest_free_env(env);
}

static void
test_wait(void)
{
	struct fake f;
	struct seen s;
	long long ms;
	int r;

	printf("# wait=3: polls until the consent is ready\n");
	fake_start(&f, FAKE_PENDING_THEN_READY);
	r = run("wait", "nobody", 0, 0, &s, &ms, NULL);
	fake_stop(&f);
	printf("  wait=3 returned after %lld ms\n", ms);
	CHECK(r == PAM_SUCCESS, "wait: want PAM_SUCCESS, got %d", r);
	CHECK(s.ninfo == 1, "wait: want the message before waiting");
	CHECK(f.nconn == 1, "wait: want one connection, got %d", f.nconn);
	CHECK(f.nreq == 3 && strstr(f.reqs[1], "\"interactive\":false") &&
		strstr(f.reqs[2], "\"session\":\"sess-2\""),
	    "wait: want open, open(non-interactive), close(sess-2); got %d",
	    f.nreq);
	CHECK(ms >= 1500 && ms < 3000 + 2000 + 1000, "wait: %lld ms", ms);
}

static void
test_credd_down(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct seen s;
	long long ms;
	int r, fd;

	printf("# credd down: PAM_SESSION_ERR well inside the timeout\n");
	r = run("down", "nobody", 0, 0, &s, &ms, NULL);
	printf("  no socket: %lld ms (timeout 2000)\n", ms);
	CHECK(r == PAM_SESSION_ERR, "no socket: want PAM_SESSION_ERR, got %d",
	    r);
	CHECK(ms < 500, "no socket: took %lld ms", ms);

	/* A socket file nobody listens on: ECONNREFUSED. */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/stale.sock", tmpdir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		perror("stale socket");
	close(fd);
	r = run("stale", "nobody", 0, 0, &s, &ms, NULL);
	printf("  stale socket (refused): %lld ms\n", ms);
	CHECK(r == PAM_SESSION_ERR, "stale: want PAM_SESSION_ERR, got %d", r);
	CHECK(ms < 500, "stale: took %lld ms", ms);

	/* With pam_permit beside it, optional never fails the login. */
	r = run("down-optional", "nobody", 0, 1, &s, NULL, NULL);
	CHECK(r == PAM_SUCCESS, "optional + pam_permit: got %d", r);
}

static void
test_credd_hung(void)
{
	struct fake f;
	struct seen s;
	long long ms;
	int r;

	printf("# credd hung: returns within timeout + 1 s\n");
	fake_start(&f, FAKE_HUNG);
	r = run("hung", "nobody", 0, 0, &s, &ms, NULL);
	fake_stop(&f);
	printf("  hung credd, timeout=1500: returned after %lld ms\n", ms);
	CHECK(r == PAM_SESSION_ERR, "hung: want PAM_SESSION_ERR, got %d", r);
	CHECK(ms >= 1400 && ms <= 2500, "hung: took %lld ms", ms);
}

/*
 * One open_session against a fake credd with a pending consent: whether
 * the message came and what "interactive" the module sent.
 */
static void
switch_case(const char *svc, const char *ruser, int want_code)
{
	struct fake f;
	struct seen s;
	int r, is_interactive;

	if (ruser != NULL)
		setenv("PAM_RUSER", ruser, 1);
	fake_start(&f, FAKE_PENDING);
	r = run(svc, "nobody", 0, 0, &s, NULL, NULL);
	fake_stop(&f);
	unsetenv("PAM_RUSER");
	is_interactive =
	    f.nreq >= 1 && strstr(f.reqs[0], "\"interactive\":true") != NULL;
	printf("  %-12s PAM_RUSER=%-7s -> %s, interactive %s\n", svc,
	    ruser ? ruser : "(unset)", s.ninfo ? "code shown" : "no message",
	    is_interactive ? "true" : "false");
	CHECK(r == PAM_SUCCESS, "%s: want PAM_SUCCESS, got %d", svc, r);
	CHECK(f.nreq == 1, "%s: want one request, got %d", svc, f.nreq);
	if (want_code) {
		CHECK(s.ninfo == 1 && strstr(s.info, FAKE_CODE) != NULL,
		    "%s: want the code shown (%d messages)", svc, s.ninfo);
		CHECK(is_interactive, "%s: want interactive:true: %s", svc,
		    f.reqs[0]);
	} else {
		CHECK(s.ninfo == 0 && s.nother == 0,
		    "%s: the code was shown to "
		    "the invoking user: %s",
		    svc, s.info);
		CHECK(!is_interactive,
		    "%s: credd was asked for an interactive "
		    "session (it would start a sign-in): %s",
		    svc, f.reqs[0]);
	}
}

static void
test_switch_sessions(void)
{
	printf("# sessions opened for another user show no code, start no "
	       "sign-in\n");
	switch_case("su", NULL, 0);
	switch_case("sudo", NULL, 0);
	switch_case("sudo-i", NULL, 0);
	switch_case("runuser-l", NULL, 0);
	switch_case("su-l", NULL, 1);	 /* switch_signin */
	switch_case("runuser", NULL, 1); /* switch_services= (empty) */
	switch_case("doas", NULL, 0);	 /* switch_services=doas,pkexec */
	switch_case("sshd-like", NULL, 1);
#ifdef PAM_SET_ITEMS_MODULE
	switch_case("ruser", "bob", 0);	   /* sudo -u nobody, by bob */
	switch_case("ruser", "nobody", 1); /* the user themself */
	switch_case("ruser-signin", "bob", 1);
#else
	printf("SKIP: PAM_RUSER cases (pam_wrapper's pam_set_items.so not "
	       "found at build time)\n");
#endif
}

/* A server that is neither root nor credd: the module sends nothing. */
static void
test_wrong_server(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct seen s;
	char buf[64];
	int r, fd, st, pfd[2];
	pid_t pid;

	printf("# a server running as nobody is refused\n");
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	unlink(sock_path);
	if (pipe(pfd) < 0) {
		fail("pipe");
		return;
	}
	pid = fork();
	if (pid == 0) {
		alarm(10); /* never outlive a broken run */
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 ||
		    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
		    chmod(sock_path, 0666) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0 || listen(fd, 4) < 0)
			_exit(2);
		(void)!write(pfd[1], "r", 1);
		r = accept(fd, NULL, NULL);
		/* Report how many request bytes arrived (want 0). */
		st = r >= 0 ? (int)read(r, buf, sizeof(buf)) : -1;
		_exit(st == 0 ? 0 : 1);
	}
	close(pfd[1]);
	(void)!read(pfd[0], buf, 1);
	close(pfd[0]);
	r = run("wrong", "nobody", 0, 0, &s, NULL, NULL);
	CHECK(r == PAM_SESSION_ERR,
	    "wrong server: want PAM_SESSION_ERR, got %d", r);
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "wrong server received a "
	    "request (status %d)",
	    st);
	unlink(sock_path);
}

/*
 * pam_wrapper hands the module's pam_syslog lines (debug included) to
 * stderr, which main() sends to a file: the user code and the endpoint
 * secret must not be in it.
 */
static void
check_log(const char *path)
{
	static char buf[1 << 20];
	size_t n;
	FILE *fp = fopen(path, "r");

	printf("# no user code or secret in the module's syslog lines\n");
	if (fp == NULL) {
		fail("cannot read %s", path);
		return;
	}
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	CHECK(strstr(buf, "bad module argument") != NULL,
	    "log capture "
	    "is not working: no module line in %s",
	    path);
	CHECK(strstr(buf, FAKE_CODE) == NULL, "the user code was logged");
	CHECK(strstr(buf, FAKE_SECRET) == NULL, "the secret was logged");
	if (failures)
		fputs(buf, stdout);
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static void
cleanup(void)
{
	if (nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) < 0)
		perror(tmpdir);
}

/*
 * pam_wrapper reads its environment when the process starts: set it up
 * (temp service dir, LD_PRELOAD) and exec ourselves once.
 */
static void
reexec(char **argv)
{
	const char *preload = getenv("PAM_ENTRA_PRELOAD");

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	chmod(tmpdir, 0755);
	snprintf(sock_path, sizeof(sock_path), "%s/credd.sock", tmpdir);
	write_services();
	setenv("PAM_ENTRA_TEST_DIR", tmpdir, 1);
	setenv("PAM_WRAPPER", "1", 1);
	setenv("PAM_WRAPPER_SERVICE_DIR", tmpdir, 1);
	setenv("PAM_WRAPPER_CONFDIR", tmpdir, 1); /* older releases */
	/* pam_syslog lines, debug included, go to our stderr log. */
	setenv("PAM_WRAPPER_DEBUGLEVEL", "2", 1);
	/* Deep binding and sanitizers do not mix (pam_wrapper(1)). */
	setenv("PAM_WRAPPER_DISABLE_DEEPBIND", "1", 1);
	setenv("LD_PRELOAD", preload != NULL ? preload : PAM_WRAPPER_LIB, 1);
	execv("/proc/self/exe", argv);
	perror("exec");
	exit(1);
}

int
main(int argc, char **argv)
{
	const char *dir = getenv("PAM_ENTRA_TEST_DIR");
	static char log_path[256];
	static char abs_module[PATH_MAX];

	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/pam_entra.so\n", argv[0]);
		return 2;
	}
	/* PAM reads a relative module path as relative to its own dir. */
	if (realpath(argv[1], abs_module) == NULL) {
		perror(argv[1]);
		return 2;
	}
	module = abs_module;
	if (dir == NULL)
		reexec(argv);
	if (strlen(dir) >= sizeof(tmpdir))
		return 2;
	memcpy(tmpdir, dir, strlen(dir) + 1);
	snprintf(log_path, sizeof(log_path), "%s/stderr.log", tmpdir);
	fflush(stderr);
	if (freopen(log_path, "w", stderr) == NULL) {
		perror(log_path);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	snprintf(sock_path, sizeof(sock_path), "%s/credd.sock", tmpdir);
	is_root = geteuid() == 0;
	printf("# module %s, service dir %s, %s\n", module, tmpdir,
	    is_root ? "root" : "not root");

	test_args();
	test_skipped_users();
	test_credd_down();
	if (is_root) {
		test_message();
		test_code_messages();
		test_silent_and_quiet();
		test_ready_env();
		test_wait();
		test_credd_hung();
		test_switch_sessions();
		test_wrong_server();
	} else
		printf(
		    "SKIP (not root): message, PAM_SILENT, quiet, endpoint, "
		    "wait=, hung credd, su/sudo/PAM_RUSER, wrong server -- the "
		    "client accepts only "
		    "a server running as root or credd\n");
	fflush(stderr);
	check_log(log_path);
	cleanup();
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
