/* kl-probe internals shared by kl_probe.c (connections, abuse modes, main)
 * and kl_probe_user.c (modes of a registered user: register, send loops,
 * receive, flood). A test tool: it links libkollega only and speaks the
 * protocol from its own plain blocking sockets. */
#ifndef KL_PROBE_H
#define KL_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/noise.h"
#include "kollega/wire.h"

/* recv_sealed results besides 0. */
#define PR_TIMEOUT 1
#define PR_CLOSED 2
#define PR_BAD 3

typedef struct pconn {
    int fd;
    kl_noise_transport_t t;
    uint32_t next_id;
} pconn_t;

/* TCP connect to the relay named on the command line; 0 or -1. */
int pconn_connect(pconn_t *c);
/* Connect and run the Noise NK handshake; 0 or -1 (closed on failure). */
int pconn_open(pconn_t *c);
void pconn_close(pconn_t *c);
/* A fresh non-zero request id. */
uint32_t pconn_id(pconn_t *c);
/* Seal and send f: 0 or -1. */
int pconn_send(pconn_t *c, const kl_frame_t *f);
/* Receive one frame within timeout_ms (-1: forever): 0 with *out, or
 * PR_TIMEOUT / PR_CLOSED / PR_BAD (undecryptable). */
int pconn_recv(pconn_t *c, int timeout_ms, kl_frame_t **out);
/* Send raw bytes: 0 or -1. */
int probe_send_all(int fd, const uint8_t *p, size_t n);

/* Print s as a JSON string (quotes included). */
void probe_json_str(const char *s);
/* 1 once stdin has reached EOF (poll only, never blocks). */
int probe_stdin_eof(void);
/* Sleep ms milliseconds. */
void probe_sleep_ms(int ms);

/* kl_probe_user.c: argv after MODE. Each returns the process exit code. */
int probe_register(int argc, char **argv);
int probe_sendloop(int argc, char **argv);
int probe_recv(int argc, char **argv);
int probe_flood(int argc, char **argv);
int probe_drain(int argc, char **argv);

#endif
