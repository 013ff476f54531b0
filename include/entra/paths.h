/*
 * paths.h - default paths; each can be overridden at build time
 * (-DENTRA_SOCKET_PATH=...) and at run time (config, --socket, CREDD_SOCKET).
 */
#ifndef ENTRA_PATHS_H
#define ENTRA_PATHS_H

#ifndef ENTRA_SOCKET_PATH
#define ENTRA_SOCKET_PATH "/run/credd/credd.sock"
#endif
#ifndef ENTRA_CONFIG_PATH
#define ENTRA_CONFIG_PATH "/etc/credd/credd.conf"
#endif
#ifndef ENTRA_STATE_DIR
#define ENTRA_STATE_DIR "/var/lib/credd"
#endif
#ifndef ENTRA_KEY_FILE
#define ENTRA_KEY_FILE "/etc/credd/credd.keys"
#endif
#ifndef ENTRA_CREDD_USER
#define ENTRA_CREDD_USER "credd"
#endif

#endif
