#include <string.h>

#include "kollega/err.h"

const char *kl_strerror(int err)
{
    switch (err) {
    case KL_OK: return "success";
    case KL_EINVAL: return "invalid argument or malformed input";
    case KL_EPROTO: return "protocol violation";
    case KL_ETOOBIG: return "over a size limit";
    case KL_ECRYPTO: return "authentication failed (tampered, forged or wrong key)";
    case KL_ENOMEM: return "out of memory";
    case KL_EAGAIN: return "more input needed";
    case KL_ESTATE: return "not valid in this state";
    case KL_ENOTFOUND: return "not found";
    case KL_EIO: return "input/output error";
    case KL_EEXIST: return "already exists";
    case KL_ELIMIT: return "limit reached";
    case KL_EREPLAY: return "already processed (replay)";
    case KL_EKEYCHANGED: return "identity key changed";
    case KL_EREFUSED: return "refused by the relay";
    case KL_ETIMEDOUT: return "timed out";
    case KL_EPASS: return "wrong passphrase";
    default: break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
