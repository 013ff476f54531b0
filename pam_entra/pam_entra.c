/*
 * pam_entra.c - the PAM session module (DESIGN.md §8). open_session asks
 * credd, over one short-lived connection, to open a session for the user
 * and prepare the user's tokens; when a consent is pending and the session
 * is interactive it shows what the sign-in method needs in one
 * PAM_TEXT_INFO message: the device-code URL and code, a platform
 * callback's short link, or (paste-back) the instruction to run credctl
 * login, which asks for the address the browser ends on. A session that one user opens for another (sudo
 * -u, su, runuser: PAM_RUSER names someone else, or the service is in
 * switch_services) is never interactive: its text reaches the invoking
 * user, who must not see the target's code. close_session tells credd
 * the session ended.
 *
 * Must never: show a user's code to another user, block its host past
 * timeout (+ wait), write the user code,
 * a token or the endpoint secret to syslog, keep the credd connection open
 * after returning (the fd carries our SO_PEERCRED into forks), talk to a
 * server that is neither root nor the credd user, or change process-wide
 * state of its host (no jansson allocator hooks, no signal handlers).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#include "entra/client.h"
#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"
#include "args.h"
#include "conv.h"

#define PAM_ENTRA_EXPORT __attribute__((visibility("default")))
#define PAM_ENTRA_DATA "pam_entra_session"
#define PAM_ENTRA_POLL_MS 2000 /* wait=: how often to ask credd again */
#define PAM_ENTRA_LOG_CAP 128
#define PAM_ENTRA_URI_CAP 256
#define PAM_ENTRA_CODE_CAP 32

/* One PAM call's view of credd: the arguments, the user, one fd. */
struct call {
	pam_handle_t *pamh;
	const struct pam_entra_args *a;
	const char *user;
	int64_t deadline_ms; /* hard: covers every socket operation */
	int fd;
};

/* What open_session leaves on the handle for close_session. */
struct session_data {
	char *user;
	char *id;
};

static void
session_data_free(pam_handle_t *pamh, void *data, int error_status)
{
	struct session_data *sd = data;

	(void)pamh;
	(void)error_status;
	if (sd == NULL)
		return;
	free(sd->user);
	free(sd->id);
	free(sd);
}

/* Wipe a string member of a reply in place (jansson's copy of a secret). */
static void
wipe_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		secret_wipe((char *)(uintptr_t)json_string_value(v),
		    json_string_length(v));
}

static void
reply_free(json_t *resp)
{
	if (resp == NULL)
		return;
	wipe_member(resp, "user_code");
	wipe_member(resp, "secret");
	json_decref(resp);
}

static const char *
reply_str(const json_t *resp, const char *key)
{
	return json_string_value(json_object_get(resp, key));
}

/* Log a failed socket step once, with a reason a sysadmin can act on. */
static void
log_io_error(const struct call *c, const char *op, int r)
{
	char q[PAM_ENTRA_LOG_CAP + 1];

	(void)util_log_str(q, sizeof(q), c->a->socket, PAM_ENTRA_LOG_CAP);
	if (r == -ENOENT || r == -ECONNREFUSED)
		pam_syslog(c->pamh, LOG_ERR,
		    "%s: credd is not running "
		    "(socket %s: %s)",
		    op, q, strerror(-r));
	else if (r == -ETIMEDOUT)
		pam_syslog(c->pamh, LOG_ERR,
		    "%s: credd did not answer in time "
		    "(socket %s)",
		    op, q);
	else if (r == -EPERM)
		pam_syslog(c->pamh, LOG_ERR,
		    "%s: refusing socket %s: its server "
		    "is neither root nor the credd user",
		    op, q);
	else
		pam_syslog(c->pamh, LOG_ERR, "%s: credd at %s: %s", op, q,
		    strerror(-r));
}

/* Log an {"ok":false} reply: code and message only, quoted and capped. */
static void
log_reply_error(const struct call *c, const char *op, const json_t *resp)
{
	const json_t *err = json_object_get(resp, "error");
	char qc[64], qm[PAM_ENTRA_LOG_CAP + 1], qu[64];

	pam_syslog(c->pamh, LOG_ERR, "%s for \"%s\": credd answered %s: %s", op,
	    util_log_str(qu, sizeof(qu), c->user, 40),
	    util_log_str(qc, sizeof(qc), proto_response_error(resp), 40),
	    util_log_str(qm, sizeof(qm), reply_str(err, "message"),
		PAM_ENTRA_LOG_CAP));
}

/*
 * Connect (once per PAM call) and send one request. Returns 0 with *resp
 * (ok or not; caller frees with reply_free), or -errno after logging.
 */
static int
call_credd(struct call *c, const char *op, json_t *req, json_t **resp)
{
	int r;

	*resp = NULL;
	if (req == NULL) {
		pam_syslog(c->pamh, LOG_CRIT, "%s: out of memory", op);
		return -ENOMEM;
	}
	if (c->fd < 0) {
		r = client_connect(c->a->socket, NULL, c->deadline_ms);
		if (r < 0) {
			log_io_error(c, op, r);
			return r;
		}
		c->fd = r;
	}
	r = client_call(c->fd, req, resp, c->deadline_ms);
	if (r < 0) {
		log_io_error(c, op, r);
		util_closep(&c->fd); /* the stream's state is unknown now */
	}
	return r;
}

/* Add a string field when value is set and fits the protocol. */
static int
add_str(json_t *req, const char *key, const char *value)
{
	if (value == NULL || strlen(value) > PROTO_STR_MAX)
		return 0;
	return json_object_set_new(req, key, json_string(value));
}

static json_t *
open_request(const struct call *c, int is_interactive)
{
	const void *service = NULL, *tty = NULL;
	json_t *req = client_request("session_open");

	(void)pam_get_item(c->pamh, PAM_SERVICE, &service);
	(void)pam_get_item(c->pamh, PAM_TTY, &tty);
	if (req == NULL || add_str(req, "user", c->user) < 0 ||
	    add_str(req, "service", service) < 0 ||
	    add_str(req, "tty", tty) < 0 ||
	    add_str(req, "workload", c->a->workload) < 0 ||
	    json_object_set_new(req, "interactive",
		json_boolean(is_interactive)) < 0) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/* session_open; 0 with an ok reply that names a session, else -errno. */
static int
session_open(struct call *c, int is_interactive, json_t **resp)
{
	json_t *req = open_request(c, is_interactive);
	int r;

	r = call_credd(c, "session_open", req, resp);
	json_decref(req);
	if (r < 0)
		return r;
	if (proto_response_error(*resp) != NULL) {
		log_reply_error(c, "session_open", *resp);
		r = -EPROTO;
	} else if (reply_str(*resp, "session") == NULL ||
	    reply_str(*resp, "state") == NULL) {
		pam_syslog(c->pamh, LOG_ERR, "session_open: malformed reply");
		r = -EBADMSG;
	}
	if (r < 0) {
		reply_free(*resp);
		*resp = NULL;
	}
	return r;
}

/* session_close for (c->user, id) on c's connection; 0 or -errno. */
static int
session_close(struct call *c, const char *id)
{
	json_t *req = client_request("session_close"), *resp = NULL;
	int r;

	if (req != NULL &&
	    (add_str(req, "user", c->user) < 0 ||
		add_str(req, "session", id) < 0)) {
		json_decref(req);
		req = NULL;
	}
	r = call_credd(c, "session_close", req, &resp);
	json_decref(req);
	if (r == 0 && proto_response_error(resp) != NULL) {
		log_reply_error(c, "session_close", resp);
		r = -EPROTO;
	}
	reply_free(resp);
	return r;
}

/* "The code expires at 14:05 UTC (in 15 minutes)." or "" */
static void
expiry_text(const json_t *resp, char *buf, size_t bufsz)
{
	json_t *v = json_object_get(resp, "expires_on");
	time_t when;
	struct tm tm;
	char hm[32];
	long long left;

	buf[0] = '\0';
	if (!json_is_integer(v))
		return;
	when = (time_t)json_integer_value(v);
	left = ((long long)when - (long long)util_now() + 59) / 60;
	if (left <= 0 || localtime_r(&when, &tm) == NULL ||
	    strftime(hm, sizeof(hm), "%H:%M %Z", &tm) == 0)
		return;
	(void)snprintf(buf, bufsz,
	    "\nThe code expires at %s (in %lld minute%s).", hm, left,
	    left == 1 ? "" : "s");
}

/*
 * An authorization-code sign-in (method auth_code): a platform
 * callback's short link fits the message; a paste-back sign-in cannot
 * be finished here (nothing to paste into), so the user is sent to
 * credctl login. credd's note on why (a fallback from a blocked device
 * code flow) comes first.
 */
static void
show_code_consent(const struct call *c, const json_t *resp, const char *user,
    const char *host)
{
	char uri[PAM_ENTRA_URI_CAP + 1], note[160], head[160];
	char msg[PAM_MAX_MSG_SIZE];
	const char *m = reply_str(resp, "message"), *to;

	note[0] = '\0';
	if (m != NULL && (to = strstr(m, "To sign in")) != NULL && to > m) {
		/* Cut before credd's own instruction, then quote it safely. */
		(void)snprintf(head, sizeof(head), "%.*s",
		    (int)((size_t)(to - m) < sizeof(head) ? to - m :
							    (long)sizeof(head)),
		    m);
		(void)util_log_str(note, sizeof(note), head, sizeof(note) - 1);
	}
	if (json_is_true(json_object_get(resp, "paste_back")) ||
	    reply_str(resp, "signin_url") == NULL) {
		(void)snprintf(msg, sizeof(msg),
		    "Azure sign-in needed for %s on %.64s.\n%.150s%s"
		    "Run 'credctl login': it shows a link to open in a browser "
		    "and asks for the address the browser ends on.",
		    user, host, note, note[0] ? "\n" : "");
		(void)conv_info(c->pamh, msg);
		return;
	}
	(void)util_log_str(uri, sizeof(uri), reply_str(resp, "signin_url"),
	    PAM_ENTRA_URI_CAP);
	(void)snprintf(msg, sizeof(msg),
	    "Azure sign-in needed for %s on %.64s.\n%.120s%s"
	    "Open %.200s in a browser to sign in.",
	    user, host, note, note[0] ? "\n" : "", uri);
	(void)conv_info(c->pamh, msg);
	secret_wipe(msg, sizeof(msg)); /* the link is single use, still */
}

/*
 * The one PAM_TEXT_INFO message: URL, code, expiry, and which user on
 * which host the consent is for. Without device-code fields (no flow
 * could start), point the user at credctl login instead.
 */
static void
show_consent(const struct call *c, const json_t *resp)
{
	char host[HOST_NAME_MAX + 1], uri[PAM_ENTRA_URI_CAP + 1];
	char code[PAM_ENTRA_CODE_CAP + 1], when[96], user[40];
	char msg[PAM_MAX_MSG_SIZE];

	if (gethostname(host, sizeof(host)) < 0)
		(void)snprintf(host, sizeof(host), "this host");
	host[sizeof(host) - 1] = '\0';
	(void)util_log_str(user, sizeof(user), c->user, sizeof(user) - 1);
	if (reply_str(resp, "method") != NULL &&
	    strcmp(reply_str(resp, "method"), "auth_code") == 0) {
		show_code_consent(c, resp, user, host);
		return;
	}
	if (reply_str(resp, "verification_uri") == NULL ||
	    reply_str(resp, "user_code") == NULL) {
		(void)snprintf(msg, sizeof(msg),
		    "Azure sign-in needed for %s on "
		    "%.64s: run 'credctl login'.",
		    user, host);
		(void)conv_info(c->pamh, msg);
		return;
	}
	(void)util_log_str(uri, sizeof(uri),
	    reply_str(resp, "verification_uri"), PAM_ENTRA_URI_CAP);
	(void)util_log_str(code, sizeof(code), reply_str(resp, "user_code"),
	    PAM_ENTRA_CODE_CAP);
	expiry_text(resp, when, sizeof(when));
	(void)snprintf(msg, sizeof(msg),
	    "Azure sign-in needed for %s on %.64s.\n"
	    "Open %.200s in a browser and enter the code %s%s",
	    user, host, uri, code, when);
	(void)conv_info(c->pamh, msg);
	secret_wipe(msg, sizeof(msg));
	secret_wipe(code, sizeof(code));
}

/* A value we put into the session's environment: printable ASCII only. */
static int
is_env_safe(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) > PROTO_STR_MAX)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * With the SDK endpoint enabled, credd's reply names the endpoint and the
 * per-session secret: export IDENTITY_ENDPOINT and IDENTITY_HEADER. The
 * secret is the one deliberate environment entry (DESIGN §3).
 */
static void
export_endpoint(const struct call *c, const json_t *resp)
{
	const char *ep = reply_str(resp, "endpoint");
	const char *sec = reply_str(resp, "secret");
	char buf[PROTO_STR_MAX + 32];

	if (ep == NULL && sec == NULL)
		return;
	if (!is_env_safe(ep) || !is_env_safe(sec)) {
		pam_syslog(c->pamh, LOG_ERR,
		    "session_open: unusable endpoint "
		    "fields in credd's reply; not exported");
		return;
	}
	(void)snprintf(buf, sizeof(buf), "IDENTITY_ENDPOINT=%s", ep);
	if (pam_putenv(c->pamh, buf) != PAM_SUCCESS)
		pam_syslog(c->pamh, LOG_ERR, "cannot set IDENTITY_ENDPOINT");
	(void)snprintf(buf, sizeof(buf), "IDENTITY_HEADER=%s", sec);
	if (pam_putenv(c->pamh, buf) != PAM_SUCCESS)
		pam_syslog(c->pamh, LOG_ERR, "cannot set IDENTITY_HEADER");
	secret_wipe(buf, sizeof(buf));
}

static int
remember_session(const struct call *c, const char *id)
{
	struct session_data *sd = calloc(1, sizeof(*sd));

	if (sd == NULL || (sd->user = strdup(c->user)) == NULL ||
	    (sd->id = strdup(id)) == NULL) {
		session_data_free(c->pamh, sd, 0);
		return -ENOMEM;
	}
	if (pam_set_data(c->pamh, PAM_ENTRA_DATA, sd, session_data_free) !=
	    PAM_SUCCESS) {
		session_data_free(c->pamh, sd, 0);
		return -ENOMEM;
	}
	return 0;
}

static void
sleep_ms(int64_t ms)
{
	if (ms > 0)
		(void)poll(NULL, 0, (int)(ms > INT_MAX ? INT_MAX : ms));
}

/*
 * wait=N: ask again until the consent is done or N seconds have passed.
 * credd has no per-user status op for root, so each check is a
 * non-interactive session_open (it joins the pending flow and never
 * starts one) whose extra session is closed at once; the session of the
 * first reply is the one this PAM session keeps. Returns 1 when ready,
 * 0 when still pending at the end of the wait, -errno on failure.
 */
static int
wait_consent(struct call *c, int64_t wait_until_ms)
{
	json_t *resp = NULL;
	const char *state;
	int is_ready, r;

	while (util_mono_ms() + PAM_ENTRA_POLL_MS <= wait_until_ms) {
		sleep_ms(PAM_ENTRA_POLL_MS);
		r = session_open(c, 0, &resp);
		if (r < 0)
			return r;
		state = reply_str(resp, "state");
		is_ready = strcmp(state, "ready") == 0;
		r = strcmp(state, "pending") == 0 || is_ready ? 0 :
								-EKEYREJECTED;
		(void)session_close(c, reply_str(resp, "session"));
		reply_free(resp);
		resp = NULL;
		if (r < 0 || is_ready)
			return r < 0 ? r : 1;
	}
	return 0;
}

/*
 * The user this PAM call is about: PAM_USER, resolved, at or above
 * minimum_uid and a name credd accepts. PAM_SUCCESS or PAM_IGNORE (skip)
 * or an error code.
 */
static int
get_user(pam_handle_t *pamh, const struct pam_entra_args *a, const char **out)
{
	const void *item = NULL;
	struct passwd *pw;
	char q[64];

	*out = NULL;
	if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS ||
	    item == NULL || ((const char *)item)[0] == '\0') {
		pam_syslog(pamh, LOG_ERR, "no user name in this PAM session");
		return PAM_SESSION_ERR;
	}
	(void)util_log_str(q, sizeof(q), item, 40);
	pw = pam_modutil_getpwnam(pamh, item);
	if (pw == NULL) {
		pam_syslog(pamh, LOG_ERR, "unknown user \"%s\"", q);
		return PAM_SESSION_ERR;
	}
	if (pw->pw_uid < a->minimum_uid) {
		if (a->is_debug)
			pam_syslog(pamh, LOG_DEBUG,
			    "skipping \"%s\": uid %u below "
			    "minimum_uid %u",
			    q, (unsigned)pw->pw_uid, (unsigned)a->minimum_uid);
		return PAM_IGNORE;
	}
	if (!util_valid_username(item)) {
		pam_syslog(pamh, LOG_NOTICE,
		    "skipping \"%s\": not a name credd "
		    "accepts",
		    q);
		return PAM_IGNORE;
	}
	*out = item;
	return PAM_SUCCESS;
}

/*
 * Is this session opened by one user for another (sudo -u, su, runuser)?
 * Its text then reaches the invoking user, who could complete the
 * target's sign-in with their own Entra account when credd's
 * account_match is unset. sudo and su set PAM_RUSER to the invoking
 * user's name; a service in switch_services counts even without it.
 */
static int
is_switch(pam_handle_t *pamh, const struct pam_entra_args *a, const char *user)
{
	const void *ruser = NULL, *service = NULL;

	if (pam_get_item(pamh, PAM_RUSER, &ruser) == PAM_SUCCESS &&
	    ruser != NULL && ((const char *)ruser)[0] != '\0' &&
	    strcmp(ruser, user) != 0)
		return 1;
	if (pam_get_item(pamh, PAM_SERVICE, &service) != PAM_SUCCESS ||
	    service == NULL)
		return 0;
	return args_is_switch_service(a, service);
}

/* After a ready/pending/none reply: message, wait, environment. */
static void
handle_state(struct call *c, const json_t *resp, int is_interactive,
    int64_t wait_until_ms)
{
	const char *state = reply_str(resp, "state");
	int is_pending = strcmp(state, "pending") == 0;
	int r;

	if (c->a->is_debug)
		pam_syslog(c->pamh, LOG_DEBUG,
		    "session_open for \"%s\": state "
		    "%.20s%s",
		    c->user, state, is_pending ? " (consent pending)" : "");
	if (is_interactive && !c->a->is_quiet && strcmp(state, "ready") != 0)
		show_consent(c, resp);
	export_endpoint(c, resp);
	if (!is_pending || c->a->wait_s == 0)
		return;
	r = wait_consent(c, wait_until_ms);
	if (c->a->is_debug || r < 0)
		pam_syslog(c->pamh, r < 0 ? LOG_WARNING : LOG_DEBUG,
		    "waited for the consent of \"%s\": %s", c->user,
		    r > 0      ? "ready" :
			r == 0 ? "still pending" :
				 "gave up");
}

PAM_ENTRA_EXPORT int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pam_entra_args a;
	struct call c = { .pamh = pamh, .a = &a, .fd = -1 };
	json_t *resp = NULL;
	int64_t start;
	int is_interactive, r;

	if (args_parse(pamh, argc, argv, &a) < 0)
		return PAM_SERVICE_ERR;
	r = get_user(pamh, &a, &c.user);
	if (r != PAM_SUCCESS)
		return r;
	start = util_mono_ms();
	c.deadline_ms = start + a.timeout_ms + a.wait_s * 1000;
	is_interactive = conv_is_available(pamh) && !(flags & PAM_SILENT);
	if (is_interactive && !a.is_switch_signin &&
	    is_switch(pamh, &a, c.user)) {
		/* No code for the invoker, and no sign-in nobody else sees. */
		is_interactive = 0;
		if (a.is_debug)
			pam_syslog(pamh, LOG_DEBUG,
			    "session for \"%s\" opened by another user "
			    "(PAM_RUSER or switch_services): not interactive",
			    c.user);
	}

	r = session_open(&c, is_interactive, &resp);
	if (r == 0 && remember_session(&c, reply_str(resp, "session")) < 0) {
		pam_syslog(pamh, LOG_CRIT, "out of memory");
		(void)session_close(&c, reply_str(resp, "session"));
		r = -ENOMEM;
	}
	if (r == 0)
		handle_state(&c, resp, is_interactive, start + a.wait_s * 1000);
	reply_free(resp);
	util_closep(&c.fd);
	return r == 0 ? PAM_SUCCESS : PAM_SESSION_ERR;
}

PAM_ENTRA_EXPORT int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pam_entra_args a;
	struct call c = { .pamh = pamh, .a = &a, .fd = -1 };
	const void *data = NULL;
	const struct session_data *sd;
	int r;

	(void)flags;
	if (args_parse(pamh, argc, argv, &a) < 0)
		return PAM_SERVICE_ERR;
	if (pam_get_data(pamh, PAM_ENTRA_DATA, &data) != PAM_SUCCESS ||
	    data == NULL)
		return PAM_IGNORE; /* we opened nothing (skipped, failed) */
	sd = data;
	c.user = sd->user;
	c.deadline_ms = util_mono_ms() + a.timeout_ms;
	r = session_close(&c, sd->id);
	util_closep(&c.fd);
	if (r < 0)
		return PAM_SESSION_ERR;
	if (a.is_debug)
		pam_syslog(pamh, LOG_DEBUG, "session closed for \"%s\"",
		    c.user);
	/* Closed once: a second close_session on this handle does nothing. */
	(void)pam_set_data(pamh, PAM_ENTRA_DATA, NULL, NULL);
	return PAM_SUCCESS;
}

PAM_ENTRA_EXPORT int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_IGNORE;
}
