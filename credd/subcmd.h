/*
 * subcmd.h - credd's offline subcommands (subcmd.c). Each returns the
 * process's exit status, or ends it with a message on failure;
 * subcmd_keygen returns -1 on a usage error (the caller prints usage).
 */
#ifndef CREDD_SUBCMD_H
#define CREDD_SUBCMD_H

/* credd keygen [-k FILE] [--activate]; argv[0] is "keygen". */
int subcmd_keygen(int argc, char **argv);
/* credd rekey -c CONFIG */
int subcmd_rekey(const char *conf_path);
/* credd db-init -c CONFIG */
int subcmd_db_init(const char *conf_path);

#endif
