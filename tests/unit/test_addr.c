/* Handles, relay names, addresses, HOST:PORT and invite tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

/* 32 bytes 0x00..0x1f in base64url: a valid relay key. */
#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define CODE "abcdefghijklmnop_-Q9"

static void test_handles(void **state)
{
    (void)state;
    char h33[34];
    memset(h33, 'a', 33);
    h33[33] = '\0';
    assert_false(kl_handle_valid(h33));
    h33[32] = '\0';
    assert_true(kl_handle_valid(h33)); /* exactly 32 */
    assert_true(kl_handle_valid("a"));
    assert_true(kl_handle_valid("0"));
    assert_true(kl_handle_valid("kari.nord_1-x"));
    assert_false(kl_handle_valid(""));
    assert_false(kl_handle_valid(NULL));
    assert_false(kl_handle_valid("Kari"));
    assert_false(kl_handle_valid("kAri"));
    assert_false(kl_handle_valid(".kari"));
    assert_false(kl_handle_valid("_kari"));
    assert_false(kl_handle_valid("-kari"));
    assert_false(kl_handle_valid("ka ri"));
    assert_false(kl_handle_valid("ka@ri"));
    assert_false(kl_handle_valid("k\xc3\xa5re"));
    assert_false(kl_handle_valid("#kari"));
}

static void test_relaynames(void **state)
{
    (void)state;
    char longname[300];
    assert_true(kl_relayname_valid("oslo.example.org"));
    assert_true(kl_relayname_valid("localhost"));
    assert_true(kl_relayname_valid("a-b.c1"));
    assert_false(kl_relayname_valid(""));
    assert_false(kl_relayname_valid(NULL));
    assert_false(kl_relayname_valid("Oslo.example.org"));
    assert_false(kl_relayname_valid(".oslo"));
    assert_false(kl_relayname_valid("oslo."));
    assert_false(kl_relayname_valid("oslo..org"));
    assert_false(kl_relayname_valid("-oslo.org"));
    assert_false(kl_relayname_valid("oslo-.org"));
    assert_false(kl_relayname_valid("oslo.-org"));
    assert_false(kl_relayname_valid("os_lo.org"));
    assert_false(kl_relayname_valid("oslo.org:7447"));
    /* 253 characters is the limit. */
    memset(longname, 'a', sizeof longname);
    for (size_t i = 50; i < 253; i += 51)
        longname[i] = '.';
    longname[253] = '\0';
    assert_true(kl_relayname_valid(longname));
    longname[253] = 'a';
    longname[254] = '\0';
    assert_false(kl_relayname_valid(longname));
}

static void test_addr_parse_valid(void **state)
{
    (void)state;
    kl_addr_t a;
    char buf[KL_ADDR_MAX + 1];
    assert_int_equal(kl_addr_parse("kari@oslo.example.org", &a), 0);
    assert_int_equal(a.is_group, 0);
    assert_string_equal(a.handle, "kari");
    assert_string_equal(a.relay, "oslo.example.org");
    assert_int_equal(kl_addr_format(&a, buf, sizeof buf), 0);
    assert_string_equal(buf, "kari@oslo.example.org");

    assert_int_equal(kl_addr_parse("#erfa-nord@tromso.example.no", &a), 0);
    assert_int_equal(a.is_group, 1);
    assert_string_equal(a.handle, "erfa-nord");
    assert_string_equal(a.relay, "tromso.example.no");
    assert_int_equal(kl_addr_format(&a, buf, sizeof buf), 0);
    assert_string_equal(buf, "#erfa-nord@tromso.example.no");
    /* Exactly the room needed, then one byte short. */
    assert_int_equal(kl_addr_format(&a, buf, strlen(buf) + 1), 0);
    assert_int_equal(kl_addr_format(&a, buf, strlen("#erfa-nord@tromso.example.no")),
                     KL_ETOOBIG);
}

static void test_addr_parse_invalid(void **state)
{
    (void)state;
    kl_addr_t a;
    char s[400];
    memset(&a, 0x5a, sizeof a);
    kl_addr_t before = a;
    const char *bad[] = {
        "",
        "kari",
        "@oslo.example.org",
        "kari@",
        "Kari@oslo.example.org",
        "kari@Oslo.example.org",
        ".kari@oslo.example.org",
        "kari@@oslo.example.org",
        "kari@oslo@example.org",
        "##kari@oslo.example.org",
        "# kari@oslo.example.org",
        " kari@oslo.example.org",
        "kari@oslo.example.org ",
        "kari@.oslo",
        "kari@oslo..org",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kl_addr_parse(bad[i], &a), KL_EINVAL);
    /* Handle of 32 ok, 33 rejected. */
    snprintf(s, sizeof s, "%s@oslo", "abcdefghijabcdefghijabcdefghijab");
    assert_int_equal(kl_addr_parse(s, &a), 0);
    assert_int_equal(strlen(a.handle), 32);
    a = before;
    snprintf(s, sizeof s, "%s@oslo", "abcdefghijabcdefghijabcdefghijabc");
    assert_int_equal(kl_addr_parse(s, &a), KL_EINVAL);
    assert_memory_equal(&a, &before, sizeof a); /* untouched on failure */
    assert_int_equal(kl_addr_parse(NULL, &a), KL_EINVAL);
    /* Formatting an invalid address is refused. */
    kl_addr_t inv = {0, "Bad", "oslo"};
    assert_int_equal(kl_addr_format(&inv, s, sizeof s), KL_EINVAL);
}

static void test_hostport(void **state)
{
    (void)state;
    char host[KL_HOST_MAX + 1];
    uint16_t port = 0;
    assert_int_equal(kl_hostport_parse("relay.example.org:7447", host, sizeof host, &port), 0);
    assert_string_equal(host, "relay.example.org");
    assert_int_equal(port, 7447);
    assert_int_equal(kl_hostport_parse("127.0.0.1:1", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 1);
    assert_int_equal(kl_hostport_parse("[::1]:65535", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 65535);
    assert_int_equal(kl_hostport_parse("[2001:db8::7]:7447", host, sizeof host, &port), 0);
    assert_string_equal(host, "2001:db8::7");
    assert_int_equal(kl_hostport_parse("Relay.Example.org:80", host, sizeof host, &port), 0);

    const char *bad[] = {
        "relay.example.org",  "relay.example.org:", ":7447",          "relay:0",
        "relay:65536",        "relay:99999",        "relay:-1",       "relay:+80",
        "relay:080",          "relay:80x",          "relay: 80",      "::1:7447",
        "[::1]",              "[::1]7447",          "[]:7447",        "[zz::1]:7447",
        "[127.0.0.1]:7447",   "999.1.1.1:7447",     "1.2.3:7447",     "re lay:7447",
        "relay..org:7447",    "-relay:7447",        "relay_x:7447",   "[::1]:123456",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kl_hostport_parse(bad[i], host, sizeof host, &port) != KL_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    /* The output buffer is checked. */
    assert_int_equal(kl_hostport_parse("relay.example.org:7447", host, 17, &port), KL_ETOOBIG);
    assert_int_equal(kl_hostport_parse("relay.example.org:7447", host, 18, &port), 0);
}

static void test_invite_valid(void **state)
{
    (void)state;
    kl_invite_t inv;
    char out[KL_INVITE_MAX + 1];
    const char *tok = "kollega:invite?relay=oslo.example.org&addr=relay.example.org:7447&key=" KEY_B64
                      "&code=" CODE;
    assert_int_equal(kl_invite_parse(tok, &inv), 0);
    assert_string_equal(inv.relay, "oslo.example.org");
    assert_string_equal(inv.host, "relay.example.org");
    assert_int_equal(inv.port, 7447);
    for (int i = 0; i < 32; i++)
        assert_int_equal(inv.key[i], i);
    assert_string_equal(inv.code, CODE);
    assert_int_equal(kl_invite_format(&inv, out, sizeof out), 0);
    assert_string_equal(out, tok);

    /* Any order, surrounding whitespace, IPv6. */
    const char *tok2 = "  \tkollega:invite?code=" CODE "&key=" KEY_B64
                       "&addr=[::1]:9000&relay=localhost\r\n";
    assert_int_equal(kl_invite_parse(tok2, &inv), 0);
    assert_string_equal(inv.host, "::1");
    assert_int_equal(inv.port, 9000);
    assert_string_equal(inv.relay, "localhost");
    assert_int_equal(kl_invite_format(&inv, out, sizeof out), 0);
    assert_string_equal(out, "kollega:invite?relay=localhost&addr=[::1]:9000&key=" KEY_B64
                             "&code=" CODE);
}

/* format -> parse -> equal, for random keys and codes. */
static void test_invite_round_trip(void **state)
{
    (void)state;
    assert_int_equal(kl_crypto_init(), 0);
    for (int i = 0; i < 50; i++) {
        kl_invite_t a, b;
        char out[KL_INVITE_MAX + 1];
        uint8_t raw[48];
        memset(&a, 0, sizeof a);
        strcpy(a.relay, "stockholm.example.se");
        strcpy(a.host, i % 2 ? "10.0.0.7" : "fe80::1");
        a.port = (uint16_t)(1 + i * 1000);
        kl_random(a.key, 32);
        kl_random(raw, sizeof raw);
        size_t clen = (size_t)(KL_CODE_MIN + i % (KL_CODE_MAX - KL_CODE_MIN + 1));
        char code[128];
        assert_int_equal(kl_b64_encode(raw, sizeof raw, code, sizeof code), 0);
        code[clen] = '\0';
        strcpy(a.code, code);
        assert_int_equal(kl_invite_format(&a, out, sizeof out), 0);
        assert_int_equal(kl_invite_parse(out, &b), 0);
        assert_string_equal(a.relay, b.relay);
        assert_string_equal(a.host, b.host);
        assert_int_equal(a.port, b.port);
        assert_memory_equal(a.key, b.key, 32);
        assert_string_equal(a.code, b.code);
    }
}

static void test_invite_invalid(void **state)
{
    (void)state;
    kl_invite_t inv;
    memset(&inv, 0x77, sizeof inv);
    kl_invite_t before = inv;
#define R "relay=oslo.example.org"
#define A "addr=relay.example.org:7447"
#define K "key=" KEY_B64
#define C "code=" CODE
#define P "kollega:invite?"
    const char *bad[] = {
        "",
        "garbage",
        P,
        P R "&" A "&" K,                           /* missing code */
        P R "&" A "&" C,                           /* missing key */
        P R "&" K "&" C,                           /* missing addr */
        P A "&" K "&" C,                           /* missing relay */
        P R "&" A "&" K "&" C "&" C,               /* duplicate */
        P R "&" R "&" A "&" K "&" C,               /* duplicate */
        P R "&" A "&" K "&" C "&x=1",              /* unknown field */
        P R "&" A "&" K "&" C "&",                 /* trailing & */
        P R "&&" A "&" K "&" C,                    /* empty field */
        P R "&" A "&" K "&code",                   /* no = */
        P R "&" A "&" K "&code=",                  /* empty value */
        P R "&" A "&" K "&code=abc",               /* code too short */
        P R "&" A "&" K "&code=abcdefghijklmnop!", /* bad code char */
        P R "&" A "&" K "&" C "=",                 /* '=' in value */
        P R "&" A "&key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg&" C,    /* 31 bytes */
        P R "&" A "&key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g&" C,  /* 33 bytes */
        P R "&" A "&key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=&" C,  /* padded */
        P R "&" A "&key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+&" C,   /* not url-safe */
        P R "&" A "&key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&" C,   /* all zero */
        P R "&addr=relay.example.org:0&" K "&" C,
        P R "&addr=relay.example.org:65536&" K "&" C,
        P R "&addr=relay.example.org&" K "&" C,
        P R "&addr=[::1&" K "&" C,
        P "relay=Oslo&" A "&" K "&" C,
        P "relay=&" A "&" K "&" C,
        "kollega:invite" R "&" A "&" K "&" C,
        "kollega:invite?" R "&" A "&" K "&" C " x",
        "xkollega:invite?" R "&" A "&" K "&" C,
        "KOLLEGA:invite?" R "&" A "&" K "&" C,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kl_invite_parse(bad[i], &inv) != KL_EINVAL)
            fail_msg("accepted invite #%zu: \"%s\"", i, bad[i]);
        assert_memory_equal(&inv, &before, sizeof inv);
    }
    assert_int_equal(kl_invite_parse(NULL, &inv), KL_EINVAL);
    /* Too long overall. */
    char *big = malloc(2000);
    assert_non_null(big);
    snprintf(big, 2000, P R "&" A "&" K "&" C "%*s", 600, "");
    assert_int_equal(kl_invite_parse(big, &inv), 0); /* trailing spaces only: fine */
    snprintf(big, 2000, "%*s" P R "&" A "&" K "&" C, 1500, "");
    assert_int_equal(kl_invite_parse(big, &inv), 0);
    memset(big, 'a', 1999);
    big[1999] = '\0';
    assert_int_equal(kl_invite_parse(big, &inv), KL_EINVAL);
    free(big);
#undef R
#undef A
#undef K
#undef C
#undef P
}

static void test_invite_format_invalid(void **state)
{
    (void)state;
    kl_invite_t inv;
    char out[KL_INVITE_MAX + 1];
    memset(&inv, 0, sizeof inv);
    strcpy(inv.relay, "oslo");
    strcpy(inv.host, "127.0.0.1");
    inv.port = 7447;
    inv.key[0] = 1;
    strcpy(inv.code, CODE);
    assert_int_equal(kl_invite_format(&inv, out, sizeof out), 0);
    assert_int_equal(kl_invite_format(&inv, out, strlen(out)), KL_ETOOBIG);
    inv.port = 0;
    assert_int_equal(kl_invite_format(&inv, out, sizeof out), KL_EINVAL);
    inv.port = 1;
    strcpy(inv.code, "short");
    assert_int_equal(kl_invite_format(&inv, out, sizeof out), KL_EINVAL);
    strcpy(inv.code, CODE);
    strcpy(inv.host, "::zz");
    assert_int_equal(kl_invite_format(&inv, out, sizeof out), KL_EINVAL);
    strcpy(inv.host, "h");
    memset(inv.key, 0, 32);
    assert_int_equal(kl_invite_format(&inv, out, sizeof out), KL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_relaynames),
        cmocka_unit_test(test_addr_parse_valid),
        cmocka_unit_test(test_addr_parse_invalid),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_invite_valid),
        cmocka_unit_test(test_invite_round_trip),
        cmocka_unit_test(test_invite_invalid),
        cmocka_unit_test(test_invite_format_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
