/*
 * conv.h - the PAM conversation as pam_entra uses it: one PAM_TEXT_INFO
 * message, nothing read back. Any reply the application hands back is
 * wiped before it is freed.
 */
#ifndef PAM_ENTRA_CONV_H
#define PAM_ENTRA_CONV_H

#include <security/pam_modules.h>

/* 1 when the application gave PAM a conversation function, else 0. */
int conv_is_available(pam_handle_t *pamh);

/*
 * Show text (borrowed) as one PAM_TEXT_INFO message. Returns 0,
 * -ENOTCONN when there is no conversation, or -EIO when it failed.
 */
int conv_info(pam_handle_t *pamh, const char *text);

#endif
