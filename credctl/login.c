/*
 * login.c - `credctl login`: starts (or finds) the caller's sign-in.
 * A device code: shows its URL and code on stderr (and a QR code of the
 * URL for --qr), and on a terminal waits with a countdown until credd
 * says ready, the code expires or credd answers an error. An
 * authorization-code paste-back sign-in: shows the link, reads the
 * address the browser ended on from the terminal (echo off), or from
 * stdin with --paste, and hands it to credd (op login_code). A
 * platform-callback link: shown, then waited for like a device code.
 *
 * Must never: link libqrencode (it is dlopen()ed for --qr only: linking
 * it made every `credctl token` pay for loading it), poll credd in a
 * tight loop (at most once a second, even if credd ignores "wait"),
 * leave the countdown line under an error line, take the pasted address
 * from argv, echo it, or leave it unwiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#ifdef HAVE_QRENCODE
#include <dlfcn.h>
#include <qrencode.h>
#endif

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#include "call.h"
#include "cmd.h"
#include "countdown.h"
#include "exit.h"
#include "opts.h"
#include "out.h"

#define LOGIN_WAIT 5	     /* seconds per login poll */
#define LOGIN_SLACK_MS 10000 /* client deadline beyond the wait */

#ifdef HAVE_QRENCODE
/*
 * Draw a QR code of text on stderr with Unicode half blocks: two module
 * rows per line, light modules drawn (like qrencode -t UTF8), so it
 * scans on the usual dark terminal.
 */
static void
print_qr(const char *text)
{
	const int quiet = 2;
	QRcode *(*encode)(const char *, int, QRecLevel, QRencodeMode, int);
	void (*qfree)(QRcode *);
	QRcode *qr;
	void *lib;
	int x, y, w, top, bot;

	/*
	 * Loaded only for --qr: linking libqrencode made every `credctl
	 * token` pay for loading it (a third of its start-up instructions).
	 */
	lib = dlopen("libqrencode.so.4", RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		out_errorf(
		    "cannot draw a QR code: libqrencode is not installed");
		return;
	}
	*(void **)&encode = dlsym(lib, "QRcode_encodeString");
	*(void **)&qfree = dlsym(lib, "QRcode_free");
	qr = encode != NULL && qfree != NULL ?
	    encode(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1) :
	    NULL;
	if (qr == NULL) {
		out_errorf("cannot draw a QR code: %s", strerror(errno));
		dlclose(lib);
		return;
	}
	w = qr->width;
	for (y = -quiet; y < w + quiet; y += 2) {
		for (x = -quiet; x < w + quiet; x++) {
			top = y >= 0 && y < w && x >= 0 && x < w &&
			    (qr->data[y * w + x] & 1);
			bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
			    (qr->data[(y + 1) * w + x] & 1);
			fputs(!top && !bot ? "\u2588" :
				!top	   ? "\u2580" :
				!bot	   ? "\u2584" :
					     " ",
			    stderr);
		}
		fputc('\n', stderr);
	}
	qfree(qr);
	dlclose(lib);
}
#endif

/*
 * Show the device-code prompt: our own line with the URL, the code and
 * the time left, plus credd's (or Entra's) message when it says more.
 */
static void
show_prompt(const json_t *r, int is_qr)
{
	char msg[OUT_MSG_MAX], dev[2 * OUT_MSG_MAX], when[64];
	const char *uri = out_jstr(r, "verification_uri");
	const char *code = out_jstr(r, "user_code");
	const char *m = out_jstr(r, "message");
	int64_t end = out_jint(r, "expires_on", 0);

	if (out_device_clause(dev, sizeof(dev), r)) {
		if (end > 0)
			fprintf(stderr, "To sign in, %s (the code %s).\n", dev,
			    out_expiry(when, sizeof(when), end));
		else
			fprintf(stderr, "To sign in, %s.\n", dev);
	}
	if (m != NULL &&
	    (code == NULL || strstr(m, code) == NULL || uri == NULL))
		fprintf(stderr, "%s\n", out_clean(msg, sizeof(msg), m));
	if (is_qr && uri != NULL) {
#ifdef HAVE_QRENCODE
		print_qr(uri);
#else
		out_errorf("this credctl was built without QR code support");
#endif
	}
}

/* A paste-back sign-in (auth_code with "paste_back": true)? */
static int
is_paste_back(const json_t *r)
{
	const char *m = out_jstr(r, "method");

	return m != NULL && strcmp(m, "auth_code") == 0 &&
	    json_is_true(json_object_get(r, "paste_back")) &&
	    out_jstr(r, "signin_url") != NULL;
}

/*
 * One line from fd into buf (n bytes, NUL added): with a terminal, echo
 * and line editing off (a canonical line stops at 4095 bytes, shorter
 * than some of Entra's addresses). The length, -EMSGSIZE (the line was
 * read to its end and dropped), or -EIO (nothing before end of file).
 */
static ssize_t
read_address(int fd, char *buf, size_t n)
{
	struct termios old, raw;
	int is_raw = 0, is_long = 0;
	size_t o = 0;
	ssize_t k;
	char ch;

	if (isatty(fd) && tcgetattr(fd, &old) == 0) {
		raw = old;
		raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		is_raw = tcsetattr(fd, TCSAFLUSH, &raw) == 0;
	}
	for (;;) {
		k = read(fd, &ch, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || ch == '\n' || (is_raw && ch == '\r'))
			break;
		if (o + 1 < n)
			buf[o++] = ch;
		else
			is_long = 1;
	}
	ch = 0;
	if (is_raw) {
		(void)tcsetattr(fd, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	buf[o] = '\0';
	if (is_long) {
		explicit_bzero(buf, n);
		return -EMSGSIZE;
	}
	return o == 0 && k <= 0 ? -EIO : (ssize_t)o;
}

/*
 * The paste-back sign-in: show the link, read the address the browser
 * ended on (the terminal, or stdin for --paste), send it (login_code).
 */
static int
paste_back(struct ctx *c, const json_t *pending, int from_stdin)
{
	char url[8192 + 64], acct[OUT_MSG_MAX], note[OUT_MSG_MAX],
	    head[OUT_MSG_MAX];
	char buf[PROTO_URL_MAX + 2];
	const char *m = out_jstr(pending, "message"), *to;
	json_t *req = NULL, *resp = NULL;
	ssize_t len;
	int fd, r;

	/* credd's note (why this method) is what comes before its "To
	 * sign in" (which is PAM's wording; ours follows). */
	if (m != NULL && (to = strstr(m, "To sign in")) != NULL && to > m) {
		(void)snprintf(head, sizeof(head), "%.*s", (int)(to - m), m);
		fprintf(stderr, "%s\n", out_clean(note, sizeof(note), head));
	}
	fprintf(stderr,
	    "To sign in, open this address in a web browser:\n\n%s\n\n"
	    "After you sign in, the browser ends on a blank page. Copy the "
	    "whole address from its address bar and paste it here%s:\n",
	    out_clean(url, sizeof(url), out_jstr(pending, "signin_url")),
	    from_stdin ? "" : " (it is not shown)");
	fd = from_stdin ? STDIN_FILENO :
			  open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		out_errorf("no terminal to paste the address into; run "
			   "'credctl login --paste' and give it on stdin");
		return EXIT_ACT;
	}
	len = read_address(fd, buf, sizeof(buf));
	if (!from_stdin)
		close(fd);
	if (len < 0) {
		out_errorf(len == -EMSGSIZE ?
			"the pasted address is too long (at most %d bytes)" :
			"no address was pasted; run 'credctl login' again",
		    PROTO_URL_MAX);
		return EXIT_ACT;
	}
	req = call_new_request("login_code");
	r = req != NULL ?
	    json_object_set_new(req, "url", json_stringn(buf, (size_t)len)) :
	    -1;
	explicit_bzero(buf, sizeof(buf)); /* jansson's copy: wiped on free */
	if (r < 0) {
		json_decref(req);
		return EXIT_ERR;
	}
	r = call_roundtrip(c, req, &resp, LOGIN_SLACK_MS);
	json_decref(req);
	if (r != EXIT_OK)
		return r;
	printf("Signed in as %s\n",
	    out_clean(acct, sizeof(acct),
		out_account(json_object_get(resp, "account"))));
	json_decref(resp);
	return EXIT_OK;
}

/* Poll credd with login(wait) until ready, an error or expiry. */
static int
login_wait(struct ctx *c, json_t *pending, int is_qr)
{
	char code[64], acct[OUT_MSG_MAX];
	json_t *req = NULL, *resp = NULL;
	int64_t end = out_jint(pending, "expires_on", 0);
	int r = EXIT_ACT;

	out_clean(code, sizeof(code), out_jstr(pending, "user_code"));
	req = call_new_request("login");
	if (req == NULL ||
	    json_object_set_new(req, "wait", json_integer(LOGIN_WAIT)) < 0) {
		json_decref(req);
		return EXIT_ERR;
	}
	countdown_start(end);
	for (;;) {
		int64_t t0 = util_mono_ms();
		const char *state, *uc;

		r = call_roundtrip(c, req, &resp,
		    LOGIN_WAIT * 1000 + LOGIN_SLACK_MS - CALL_DEADLINE_MS);
		if (r != EXIT_OK)
			break;
		state = out_jstr(resp, "state");
		if (state != NULL && strcmp(state, "ready") == 0) {
			countdown_stop();
			printf("Signed in as %s\n",
			    out_clean(acct, sizeof(acct),
				out_account(json_object_get(resp, "account"))));
			json_decref(resp);
			json_decref(req);
			return EXIT_OK;
		}
		if (is_paste_back(resp)) {
			/* credd fell back from a blocked device flow. */
			countdown_stop();
			json_decref(req);
			r = paste_back(c, resp, 0);
			json_decref(resp);
			return r;
		}
		uc = out_jstr(resp, "user_code");
		if (uc != NULL && strcmp(uc, code) != 0) {
			/* credd started a new flow: show the new code. */
			countdown_stop();
			show_prompt(resp, is_qr);
			out_clean(code, sizeof(code), uc);
			end = out_jint(resp, "expires_on", end);
			countdown_start(end);
		}
		json_decref(resp);
		resp = NULL;
		if (end > 0 && util_now() >= end) {
			countdown_stop();
			out_errorf(
			    "the sign-in code expired; run 'credctl login' "
			    "to get a new one");
			json_decref(req);
			return EXIT_ACT;
		}
		/* Never spin, even against a credd that ignores "wait". */
		t0 = util_mono_ms() - t0;
		if (t0 < 1000)
			(void)usleep((useconds_t)(1000 - t0) * 1000);
	}
	/* call_roundtrip printed the error on its own line; clear ours first. */
	countdown_stop();
	json_decref(req);
	return r;
}

int
login_cmd(struct ctx *c, const struct cmd *cmd, int argc, char **argv)
{
	static const int allowed[] = { OPT_NO_WAIT, OPT_QR, OPT_PASTE, 0 };
	char acct[OUT_MSG_MAX];
	json_t *req = NULL, *resp = NULL;
	const char *state;
	struct opts o;
	int r;

	r = opts_parse(c, cmd, argc, argv, allowed, 0, &o);
	if (r >= 0)
		return r;
	req = call_new_request("login");
	if (req == NULL ||
	    json_object_set_new(req, "wait", json_integer(0)) < 0) {
		json_decref(req);
		return EXIT_ERR;
	}
	r = call_roundtrip(c, req, &resp, 0);
	json_decref(req);
	if (r != EXIT_OK)
		return r;
	state = out_jstr(resp, "state");
	if (state != NULL && strcmp(state, "ready") == 0) {
		printf("already signed in as %s\n",
		    out_clean(acct, sizeof(acct),
			out_account(json_object_get(resp, "account"))));
		json_decref(resp);
		return EXIT_OK;
	}
	if (is_paste_back(resp) && !o.is_no_wait) {
		r = paste_back(c, resp, o.is_paste);
		json_decref(resp);
		return r;
	}
	if (o.is_paste && !is_paste_back(resp))
		out_errorf("--paste: this sign-in has no address to paste; "
			   "follow the instructions below");
	show_prompt(resp, o.is_qr);
	/* Off a terminal nobody watches a countdown: behave as --no-wait. */
	if (o.is_no_wait || !isatty(STDERR_FILENO)) {
		json_decref(resp);
		return EXIT_ACT;
	}
	r = login_wait(c, resp, o.is_qr);
	json_decref(resp);
	return r;
}
