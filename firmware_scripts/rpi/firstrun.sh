#!/bin/bash
# firstrun.sh: first boot of a Raspberry Pi OS image written by `edgekit flash rpi`.
#
# Bookworm runs it from cmdline.txt (systemd.run=/boot/firstrun.sh, in kernel-command-line.target, before the
# network is up): it sets hostname, user, SSH, Wi-Fi and timezone itself, and the system reboots when it exits.
# Trixie runs it from cloud-init's runcmd (--stage cloud-init), after cloud-init applied those settings from
# user-data and network-config.
# Either way it then moves the edgekit payload, and the secrets in it, off the FAT boot partition (which every
# local user can read) into /var/lib/edgekit-firstboot (root only); enables edgekit-firstboot.service, which
# installs and starts the agent once the network is up and retries at each boot until that succeeds; removes
# its hooks from cmdline.txt (and the cloud-init seed, which holds the Wi-Fi key); and deletes itself.
# Secret values are never printed.
#
# Usage: firstrun.sh [--root DIR] [--boot DIR] [--stage bookworm|cloud-init]
#   --root DIR   apply everything under DIR instead of / (tests: nothing on the running system changes)
#   --boot DIR   the FAT boot partition (default: whichever of ROOT/boot/firmware, ROOT/boot holds edgekit/)
#   --stage S    bookworm (default: the systemd.run path) or cloud-init (the Trixie runcmd path)
set -Eeuo pipefail
umask 022

ROOT=/
BOOT=""
STAGE=bookworm

die() { echo "edgekit firstrun: error: $*" >&2; exit 1; }
say() { echo "edgekit firstrun: $*"; }
trap 'echo "edgekit firstrun: error: failed at line $LINENO (exit $?)" >&2' ERR

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --boot) BOOT=${2:?--boot needs a directory}; shift 2 ;;
    --stage) STAGE=${2:?--stage needs bookworm or cloud-init}; shift 2 ;;
    -h | --help) sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$STAGE" in bookworm | cloud-init) ;; *) die "--stage must be bookworm or cloud-init, not '$STAGE'" ;; esac
ROOT=${ROOT%/}
if [ -z "$BOOT" ]; then
  for candidate in "$ROOT/boot/firmware" "$ROOT/boot"; do
    if [ -f "$candidate/edgekit/firstrun/settings.env" ]; then BOOT=$candidate; break; fi
  done
fi
[ -f "$BOOT/edgekit/firstrun/settings.env" ] ||
  die "no edgekit/firstrun/settings.env under $ROOT/boot/firmware or $ROOT/boot: was this image written by edgekit flash rpi?"
SETTINGS=$BOOT/edgekit/firstrun
# shellcheck source=/dev/null
. "$SETTINGS/settings.env"
: "${FIRSTRUN_HOSTNAME:?settings.env has no FIRSTRUN_HOSTNAME}" "${FIRSTRUN_USER:?settings.env has no FIRSTRUN_USER}"

install -d -m 0755 "$ROOT/var/log"
LOG=$ROOT/var/log/edgekit-firstrun.log
touch "$LOG" && chmod 0600 "$LOG"
exec > >(tee -a "$LOG") 2>&1
say "stage $STAGE, boot partition $BOOT, root ${ROOT:-/}"

live() { [ -z "$ROOT" ]; }
keyfile_escape() { local s=${1//\\/\\\\}; printf '%s' "$s"; }

set_hostname() {
  printf '%s\n' "$FIRSTRUN_HOSTNAME" >"$ROOT/etc/hostname"
  touch "$ROOT/etc/hosts"
  if grep -q '^127\.0\.1\.1' "$ROOT/etc/hosts"; then
    sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$FIRSTRUN_HOSTNAME/" "$ROOT/etc/hosts"
  else
    printf '127.0.1.1\t%s\n' "$FIRSTRUN_HOSTNAME" >>"$ROOT/etc/hosts"
  fi
  say "hostname $FIRSTRUN_HOSTNAME"
}

set_user() {
  local user=$FIRSTRUN_USER first groups="" g hash="" home uid gid created=0 official=0 f
  local -a prefix=()
  live || prefix=(--prefix "$ROOT")
  if [ -s "$SETTINGS/password-hash" ]; then hash=$(head -n 1 "$SETTINGS/password-hash"); fi
  first=$(awk -F: '$3 == 1000 { print $1; exit }' "$ROOT/etc/passwd")
  if grep -q "^$user:" "$ROOT/etc/passwd"; then
    say "user $user exists"
  elif live && [ -x /usr/lib/userconf-pi/userconf ]; then
    # Raspberry Pi OS's own tool, used the way Raspberry Pi Imager does: it renames the image's first user, sets
    # the hash, and cancels the interactive first-boot user wizard.
    /usr/lib/userconf-pi/userconf "$user" ${hash:+"$hash"}
    created=1
    official=1
    say "user $user configured with userconf-pi"
  elif [ -n "$first" ]; then
    # Raspberry Pi OS images carry a placeholder first user (uid 1000); rename it, as userconf-pi does.
    usermod "${prefix[@]}" --login "$user" --home "/home/$user" --move-home "$first"
    if grep -q "^$first:" "$ROOT/etc/group"; then groupmod "${prefix[@]}" --new-name "$user" "$first"; fi
    for f in "$ROOT/etc/sudoers.d/010_pi-nopasswd" "$ROOT/etc/lightdm/lightdm.conf" \
      "$ROOT/etc/systemd/system/getty@tty1.service.d/autologin.conf"; do
      if [ -f "$f" ]; then sed -i -e "s/^$first /$user /" -e "s/^autologin-user=$first\$/autologin-user=$user/" \
        -e "s/--autologin $first /--autologin $user /" "$f"; fi
    done
    created=1
    say "user $first renamed to $user"
  else
    for g in adm dialout cdrom audio video plugdev games users input render netdev spi i2c gpio sudo; do
      if grep -q "^$g:" "$ROOT/etc/group"; then groups+=${groups:+,}$g; fi
    done
    useradd "${prefix[@]}" --create-home --shell /bin/bash ${groups:+--groups "$groups"} "$user"
    created=1
    say "user $user created"
  fi
  if [ -n "$hash" ] && [ "$official" = 0 ] && live; then
    printf '%s:%s\n' "$user" "$hash" | chpasswd --encrypted # on stdin: the hash never shows in ps
  elif [ -n "$hash" ] && [ "$official" = 0 ]; then
    usermod "${prefix[@]}" --password "$hash" "$user"
  elif [ -z "$hash" ] && [ "$created" = 1 ]; then
    usermod "${prefix[@]}" --password '*' "$user" # no password can match, yet sshd still accepts the user's key
  fi
  if [ -s "$SETTINGS/authorized_keys" ]; then
    home=$(awk -F: -v u="$user" '$1 == u { print $6 }' "$ROOT/etc/passwd")
    uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$ROOT/etc/passwd")
    gid=$(awk -F: -v u="$user" '$1 == u { print $4 }' "$ROOT/etc/passwd")
    install -d -m 0700 -o "$uid" -g "$gid" "$ROOT$home/.ssh"
    install -m 0600 -o "$uid" -g "$gid" "$SETTINGS/authorized_keys" "$ROOT$home/.ssh/authorized_keys"
    say "ssh key installed for $user"
  fi
}

set_sshd_policy() {
  install -d -m 0755 "$ROOT/etc/ssh/sshd_config.d"
  {
    echo "# Written by edgekit firstrun: root never logs in over SSH; passwords only when a hash was given."
    echo "PermitRootLogin no"
    if [ "${FIRSTRUN_SSH_PASSWORDS:-no}" = yes ]; then echo "PasswordAuthentication yes"; else
      echo "PasswordAuthentication no"
      echo "KbdInteractiveAuthentication no"
    fi
  } >"$ROOT/etc/ssh/sshd_config.d/50-edgekit.conf"
}

enable_ssh() {
  if live; then
    systemctl enable --quiet ssh
  elif [ -f "$ROOT/lib/systemd/system/ssh.service" ] || [ -f "$ROOT/usr/lib/systemd/system/ssh.service" ]; then
    systemctl --root="$ROOT" enable --quiet ssh.service
  else
    say "warning: no ssh.service under $ROOT; SSH not enabled"
    return 0
  fi
  say "ssh enabled"
}

set_wifi() {
  [ -n "${FIRSTRUN_WIFI_SSID:-}" ] || return 0
  local dir=$ROOT/etc/NetworkManager/system-connections psk f
  [ -s "$SETTINGS/wifi-psk" ] || die "FIRSTRUN_WIFI_SSID is set but $SETTINGS/wifi-psk is missing"
  psk=$(head -n 1 "$SETTINGS/wifi-psk")
  install -d -m 0700 "$dir"
  (
    umask 077 # NetworkManager ignores keyfiles other users can read; the PSK stays root-only
    cat >"$dir/edgekit-wifi.nmconnection" <<EOF
[connection]
id=edgekit-wifi
uuid=$(cat /proc/sys/kernel/random/uuid)
type=wifi
autoconnect=true

[wifi]
mode=infrastructure
ssid=$(keyfile_escape "$FIRSTRUN_WIFI_SSID")

[wifi-security]
key-mgmt=wpa-psk
psk=$(keyfile_escape "$psk")

[ipv4]
method=auto

[ipv6]
method=auto
EOF
  )
  # Raspberry Pi OS soft-blocks Wi-Fi until a country is set; the regulatory domain itself is on cmdline.txt.
  for f in "$ROOT"/var/lib/systemd/rfkill/*:wlan; do
    if [ -e "$f" ]; then echo 0 >"$f"; fi
  done
  say "wifi $FIRSTRUN_WIFI_SSID (${FIRSTRUN_WIFI_COUNTRY:-no country})"
}

set_timezone() {
  [ -n "${FIRSTRUN_TIMEZONE:-}" ] || return 0
  ln -sfn "/usr/share/zoneinfo/$FIRSTRUN_TIMEZONE" "$ROOT/etc/localtime"
  printf '%s\n' "$FIRSTRUN_TIMEZONE" >"$ROOT/etc/timezone"
  say "timezone $FIRSTRUN_TIMEZONE"
}

handoff() {
  local dest=$ROOT/var/lib/edgekit-firstboot unit=edgekit-firstboot.service
  [ -f "$BOOT/edgekit/payload/payload.env" ] || die "$BOOT/edgekit/payload/payload.env is missing"
  rm -rf "$dest"
  install -d -m 0700 "$dest"
  cp -R "$BOOT/edgekit/payload/." "$dest/"
  chmod -R go-rwx "$dest"
  install -D -m 0644 "$dest/$unit" "$ROOT/etc/systemd/system/$unit"
  install -d -m 0755 "$ROOT/etc/systemd/system/multi-user.target.wants"
  ln -sfn "/etc/systemd/system/$unit" "$ROOT/etc/systemd/system/multi-user.target.wants/$unit"
  rm -rf "$BOOT/edgekit" # the FAT copy of the secrets goes now; the root-only copy is in $dest
  say "agent payload moved to /var/lib/edgekit-firstboot; $unit enabled"
}

clean_cmdline() {
  local file=$BOOT/cmdline.txt line
  line=$(head -n 1 "$file" | tr -d '\r\n')
  line=$(printf '%s' "$line" | sed -E \
    -e 's/ systemd\.run=[^ ]*//g' -e 's/ systemd\.run_success_action=[^ ]*//g' \
    -e 's/ systemd\.unit=kernel-command-line\.target//g' -e 's/ ds=nocloud[^ ]*//g')
  printf '%s\n' "$line" >"$file.edgekit-new"
  mv -f "$file.edgekit-new" "$file"
}

scrub_cloud_init() {
  # network-config holds the Wi-Fi key and user-data the password hash, on a partition every user can read.
  # cloud-init has applied them; it is switched off so a later boot never re-runs it against a missing seed.
  rm -f "$BOOT/user-data" "$BOOT/network-config"
  install -d -m 0755 "$ROOT/etc/cloud"
  touch "$ROOT/etc/cloud/cloud-init.disabled"
  say "cloud-init seed removed from the boot partition and cloud-init disabled"
}

case "$STAGE" in
  bookworm)
    set_hostname
    set_user
    set_sshd_policy
    enable_ssh
    set_wifi
    set_timezone
    handoff
    clean_cmdline
    ;;
  cloud-init)
    enable_ssh
    handoff
    scrub_cloud_init
    clean_cmdline
    ;;
esac
rm -f "$BOOT/firstrun.sh"
if [ "$STAGE" = cloud-init ] && live; then
  systemctl start --no-block edgekit-firstboot.service
fi
say "done"
exit 0
