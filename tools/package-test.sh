#!/usr/bin/env bash
# Test the Debian packages the way an operator meets them, in a pristine
# Debian 12 root:
#  1. apt-get install kollega-relay kollega while systemd does not run (as in
#     a chroot or an image build): the unit is enabled, nothing started;
#  2. boot the root with systemd as PID 1 (systemd-nspawn -b): the relay
#     starts at boot, runs sandboxed as an unprivileged user with its state in
#     /var/lib/kollega-relay; two users set up with invites from
#     `kollega-relay invite` exchange messages through it; it comes back
#     after a crash (Restart=on-failure) and a restart with its state, and
#     stops cleanly; purging the package keeps the relay's key and database,
#     and installing it again (systemd running: the package starts it) brings
#     back the same relay.
#   tools/package-test.sh [DEB_DIR]     (default: tools/package.sh builds them)
# Needs root. Not part of tools/test.sh: it downloads Debian packages. The
# root image (mmdebstrap, ~35 s) is cached in $KL_IMAGE_CACHE
# (default /var/tmp/kollega-package-test).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "package-test: needs root (it boots a container)" >&2; exit 2; }
[ -d /sys/fs/cgroup ] && [ -n "$(ls -A /sys/fs/cgroup)" ] ||
  { echo "package-test: systemd-nspawn needs /sys/fs/cgroup: run it on a host or VM, not in a" \
    "chroot" >&2; exit 2; }
t0=$(date +%s)
tools/deps.sh mmdebstrap systemd-container
work=$(mktemp -d /tmp/kollega-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

debs=${1:-}
if [ -z "$debs" ]; then
  debs=$work/debs
  tools/package.sh "$debs"
fi
relay_deb=$(ls "$debs"/kollega-relay_*.deb)
client_deb=$(ls "$debs"/kollega_*.deb)

cache=${KL_IMAGE_CACHE:-/var/tmp/kollega-package-test}
image=$cache/bookworm-systemd.tar
if [ ! -s "$image" ]; then
  echo "== building a pristine Debian 12 root with systemd (mmdebstrap, once)"
  mkdir -p "$cache"
  rm -rf "$image.partial"
  mmdebstrap --variant=apt --format=tar --include=ca-certificates,systemd-sysv,dbus bookworm \
    "$image.partial" >"$work/mmdebstrap.log" 2>&1 ||
    { tail -20 "$work/mmdebstrap.log" >&2; echo "package-test: mmdebstrap failed" >&2; exit 1; }
  mv "$image.partial" "$image"
fi
root=$work/root
mkdir "$root"
tar -xf "$image" -C "$root"
mkdir "$root/debs"
cp "$relay_deb" "$client_deb" "$root/debs/"

nspawn=(systemd-nspawn -q --keep-unit --register=no -D "$root")
# Install while systemd does not run (a plain container command, with the
# network; man-db to check the man pages). The booted test then runs on a
# private network, where nothing else can hold the relay's port.
echo "== apt-get install kollega-relay kollega, systemd not running"
"${nspawn[@]}" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -q -y \
  --no-install-recommends /debs/*.deb man-db' >"$work/install.log" 2>&1 ||
  { tail -20 "$work/install.log" >&2; echo "package-test: apt-get install failed" >&2; exit 1; }
[ -L "$root/etc/systemd/system/multi-user.target.wants/kollega-relay.service" ] ||
  { echo "package-test: installing did not enable kollega-relay.service" >&2; exit 1; }
[ ! -e "$root/var/lib/private/kollega-relay" ] ||
  { echo "package-test: the relay ran at install without systemd" >&2; exit 1; }

cat >"$root/root/inside.sh" <<'EOF'
#!/bin/sh
# Runs in the booted container, as a service ordered after multi-user.target.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "== $*"; }
data=/var/lib/kollega-relay
unit=kollega-relay.service
main_pid() { systemctl show -p MainPID --value $unit; }
# Wait until the relay's journal has a line matching $1 (journald takes
# the relay's log a moment after the relay wrote it).
wait_journal() {
  i=0
  until journalctl -u $unit --no-pager -o cat | grep -q "$1"; do
    i=$((i + 1)); [ $i -lt 60 ] || fail "no '$1' in the journal"
    sleep 0.5
  done
}
# Wait until the relay answers: it is listening and has stored its address.
wait_listening() {
  i=0
  until systemctl is-active -q $unit &&
    kollega-relay status --data $data 2>/dev/null | grep -q "^last bound"; do
    i=$((i + 1)); [ $i -lt 60 ] || { journalctl -u $unit --no-pager | tail -20; fail "$1"; }
    sleep 0.5
  done
}

step "the relay started at boot (the package enabled it)"
wait_listening "the relay did not start at boot"
wait_journal "listening on 127.0.0.1:7447"
! journalctl --no-pager -o cat | grep -q "kollega:invite" || fail "an invite token is in the journal"

step "systemd-analyze verify and security"
systemd-analyze verify /lib/systemd/system/$unit || fail "systemd-analyze verify"
systemd-analyze security $unit --no-pager | tail -1

step "the relay runs sandboxed, its state private to it"
pid=$(main_pid)
uid=$(awk '/^Uid:/ {print $2}' /proc/$pid/status)
[ "$uid" != 0 ] || fail "the relay runs as root"
grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/$pid/status || fail "the relay has capabilities"
grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/$pid/status || fail "NoNewPrivileges is not set"
grep -q '^Seccomp:[[:space:]]*2$' /proc/$pid/status || fail "no seccomp filter"
real=$(readlink -f $data)
[ "$(stat -c %a "$real")" = 700 ] || fail "$real is not mode 0700"
[ "$(stat -c %u "$real/relay.key")" = "$uid" ] || fail "relay.key does not belong to the relay's user"
[ "$(stat -c %a "$real/relay.key")" = 600 ] || fail "relay.key is not mode 0600"
echo "relay pid $pid uid $uid, state in $real"

step "man pages and completions are where man and bash look"
for p in kollega kollega-relay relay.conf; do man -w $p >/dev/null || fail "man $p"; done
test -f /usr/share/bash-completion/completions/kollega-relay || fail "no kollega-relay completion"
test -f /usr/share/bash-completion/completions/kollega || fail "no kollega completion"

step "two users join with invites and exchange a message"
relay=$(kollega-relay status --data $data | awk '$1 == "relay" {print $2}')
for u in kari lena; do
  useradd -m $u
  inv=$(kollega-relay invite --data $data)
  runuser -u $u -- kollega --home /home/$u/.kollega init --invite "$inv" --name $u \
    --no-passphrase || fail "kollega init $u"
done
runuser -u kari -- kollega --home /home/kari/.kollega send lena@$relay "Hei Lena, fra pakken" ||
  fail "kari could not send"
runuser -u lena -- kollega --home /home/lena/.kollega receive | tee /tmp/recv
grep -q "kari@$relay.*Hei Lena, fra pakken" /tmp/recv || fail "lena did not receive kari's message"

step "status (as root) sees the running relay; reload re-reads the config and keeps it running"
kollega-relay status --data $data | tee /tmp/status
grep -q "^state .*running (pid $(main_pid), up" /tmp/status || fail "status does not see the running relay"
pid=$(main_pid)
systemctl reload $unit
wait_journal "config reload from /etc/kollega/relay.conf"
[ "$(main_pid)" = "$pid" ] && systemctl is-active -q $unit || fail "reload stopped or replaced the relay"
runuser -u kari -- kollega --home /home/kari/.kollega send lena@$relay "Etter reload" ||
  fail "send after the reload"

step "a crashed relay is restarted (Restart=on-failure)"
old=$(main_pid)
kill -KILL "$old"
i=0
while [ "$(main_pid)" = "$old" ] || [ "$(main_pid)" = 0 ]; do
  i=$((i + 1)); [ $i -lt 60 ] || fail "the relay was not restarted after SIGKILL"
  sleep 0.5
done
wait_listening "the relay did not listen after its restart"
runuser -u lena -- kollega --home /home/lena/.kollega send kari@$relay "Svar etter krasj" ||
  fail "send after the restart"

step "systemctl restart keeps the state; the message waits for kari"
systemctl restart $unit
wait_listening "the relay did not listen after systemctl restart"
runuser -u kari -- kollega --home /home/kari/.kollega receive | tee /tmp/recv
grep -q "Svar etter krasj" /tmp/recv || fail "kari did not receive lena's answer"

step "systemctl stop: a clean exit"
systemctl stop $unit
[ "$(systemctl show -p ExecMainStatus --value $unit)" = 0 ] || fail "the relay exited non-zero on stop"
wait_journal "received SIGTERM"

step "admin commands as root while the relay is stopped; it starts again after them"
kollega-relay status --data $data >/dev/null || fail "status while stopped"
kollega-relay invite --data $data >/dev/null || fail "invite while stopped"
systemctl start $unit
wait_listening "the relay did not start after admin commands run as root"

step "apt-get purge kollega-relay: the unit goes, the key and database stay"
key=$(kollega-relay status --data $data | awk '$1 == "public" {print $3}')
DEBIAN_FRONTEND=noninteractive apt-get purge -q -y kollega-relay >/tmp/apt.log 2>&1 ||
  { tail -20 /tmp/apt.log; fail "apt-get purge"; }
! systemctl is-enabled -q $unit 2>/dev/null || fail "$unit still enabled after purge"
test -f /var/lib/private/kollega-relay/relay.key || fail "purge removed the relay key"
test -f /var/lib/private/kollega-relay/relay.db || fail "purge removed the database"

step "apt-get install kollega-relay again, systemd running: the package starts the same relay"
DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends \
  /debs/kollega-relay_*.deb >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; fail "apt-get install"; }
systemctl is-enabled -q $unit || fail "$unit is not enabled after install"
systemctl is-active -q $unit || fail "installing did not start $unit"
wait_listening "the relay did not listen after the install"
[ "$(kollega-relay status --data $data | awk '$1 == "public" {print $3}')" = "$key" ] ||
  fail "the reinstalled relay has another key"
runuser -u kari -- kollega --home /home/kari/.kollega send lena@$relay "Fortsatt her" ||
  fail "send after reinstall"
echo "PASS"
EOF
chmod +x "$root/root/inside.sh"
cat >"$root/etc/systemd/system/kollega-package-test.service" <<'EOF'
[Unit]
Description=Kollega package test
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
TimeoutStartSec=600
ExecStart=/bin/sh -c '/root/inside.sh >/root/result.log 2>&1; echo $? >/root/result.rc'
[Install]
WantedBy=multi-user.target
EOF
ln -s ../kollega-package-test.service "$root/etc/systemd/system/multi-user.target.wants/"

echo "== boot the root with systemd (systemd-nspawn -b, private network) and run the test"
timeout 900 "${nspawn[@]}" -b --private-network >"$work/console.log" 2>&1 || true
cat "$root/root/result.log" 2>/dev/null || true
rc=$(cat "$root/root/result.rc" 2>/dev/null || echo none)
echo "package-test: $(($(date +%s) - t0)) s"
if [ "$rc" != 0 ]; then
  echo "--- container console (last 40 lines)" >&2
  sed 's/\x1b\[[0-9;]*m//g' "$work/console.log" | tail -40 >&2
  echo "package-test: FAILED (inside test exit: $rc)" >&2
  exit 1
fi
echo "package-test: passed"
