/*
 * conv.c - talk to the user through the application's PAM conversation.
 * pam_entra only ever shows one informational message (the device-code
 * URL and code); it asks nothing.
 *
 * Must never: prompt, keep a pointer to the message after the call, or
 * free an application reply without wiping it first.
 */
#include <errno.h>
#include <stdlib.h>
#include <security/pam_appl.h>

#include "entra/secret.h"
#include "conv.h"

static const struct pam_conv *
get_conv(pam_handle_t *pamh)
{
	const void *item = NULL;
	const struct pam_conv *conv;

	if (pam_get_item(pamh, PAM_CONV, &item) != PAM_SUCCESS || item == NULL)
		return NULL;
	conv = item;
	return conv->conv != NULL ? conv : NULL;
}

/* Replies are the application's allocation; wipe, then free. */
static void
drop_replies(struct pam_response *resp, int n)
{
	int i;

	if (resp == NULL)
		return;
	for (i = 0; i < n; i++)
		secret_wipe_str(resp[i].resp); /* NULL does nothing */
	secret_wipe(resp, sizeof(*resp) * (size_t)n);
	free(resp);
}

int
conv_is_available(pam_handle_t *pamh)
{
	return get_conv(pamh) != NULL;
}

int
conv_info(pam_handle_t *pamh, const char *text)
{
	const struct pam_conv *conv = get_conv(pamh);
	struct pam_message msg;
	const struct pam_message *msgs[1];
	struct pam_response *resp = NULL;
	int r;

	if (conv == NULL)
		return -ENOTCONN;
	msg.msg_style = PAM_TEXT_INFO;
	msg.msg = text;
	msgs[0] = &msg;
	r = conv->conv(1, msgs, &resp, conv->appdata_ptr);
	drop_replies(resp, 1);
	return r == PAM_SUCCESS ? 0 : -EIO;
}
