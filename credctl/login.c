/*
 * login.c - `credctl login`: starts (or finds) the caller's device-code
 * sign-in, shows its URL and code on stderr (and a QR code of the URL
 * for --qr), and on a terminal waits with a countdown until credd says
 * ready, the code expires or credd answers an error.
 *
 * Must never: link libqrencode (it is dlopen()ed for --qr only: linking
 * it made every `credctl token` pay for loading it), poll credd in a
 * tight loop (at most once a second, even if credd ignores "wait"), or
 * leave the countdown line under an error line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#ifdef HAVE_QRENCODE
#include <dlfcn.h>
#include <qrencode.h>
#endif

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
	static const int allowed[] = { OPT_NO_WAIT, OPT_QR, 0 };
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
