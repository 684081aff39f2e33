/* One error space for all of Kollega: 0 is success, every failure a negative
 * kl_err. Values start far below libuv's negative errno range so the two can
 * share an int return without colliding; kl_strerror() names both. */
#ifndef KOLLEGA_ERR_H
#define KOLLEGA_ERR_H

enum kl_err {
    KL_OK = 0,
    KL_EINVAL = -10001,    /* bad argument or malformed input */
    KL_EPROTO = -10002,    /* protocol violation */
    KL_ETOOBIG = -10003,   /* over a size limit */
    KL_ECRYPTO = -10004,   /* authentication / decryption / signature failure */
    KL_ENOMEM = -10005,    /* allocation failed */
    KL_EAGAIN = -10006,    /* need more input */
    KL_ESTATE = -10007,    /* call not valid in this state */
    KL_ENOTFOUND = -10008, /* no such thing */
    KL_EIO = -10009,       /* file, socket or database failure */
    KL_EEXIST = -10010,    /* already exists */
    KL_ELIMIT = -10011,    /* a bound (skipped keys, quota, rate) was reached */
    KL_EREPLAY = -10012,   /* message already processed */
    KL_EKEYCHANGED = -10013, /* a contact's identity key differs from the pinned one */
    KL_EREFUSED = -10014,  /* the relay refused the request */
    KL_ETIMEDOUT = -10015, /* no answer in time */
    KL_EPASS = -10016,     /* wrong passphrase */
};

/* Human-readable text for a kl_err or a negative errno/libuv code. Never NULL. */
const char *kl_strerror(int err);

#endif
