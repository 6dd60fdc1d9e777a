#!/bin/bash
# install-agent.sh: install or upgrade the edgekit agent on this device from a payload directory.
#
# Idempotent: a second run with the same payload changes nothing and does not restart the agent; a new bundle
# is unpacked beside the old one and swapped in with one atomic rename, then the agent is restarted.
# Called by edgekit-firstboot.service on images written by `edgekit flash rpi|jetson`, and by
# `edgekit provision` (over ssh, or --local). Every system path is under --root (default /): with another root
# it enables the unit with `systemctl --root` and starts nothing, so tests run it in a throwaway directory.
#
# Usage: install-agent.sh [--root DIR] [--payload DIR] [--python PY] [--finish-firstboot] all|venv|apply
#   --python PY  the interpreter the venv is built from (default: DEVICE_PYTHON from payload.env, or python3)
#   venv   create /opt/edgekit/venv and pip-install requirements.txt (offline from wheels/ when OFFLINE=1)
#   apply  memory cgroup check, bundle, /etc/edgekit config and secrets, the unit, enable and (re)start
#   all    venv, then apply
#   --finish-firstboot  on success, disable edgekit-firstboot.service and delete the payload (first boot only)
# Payload (written by edgekit, see edgekit/firmware/payload.py): payload.env, requirements.txt, bundle.tar.gz,
#   agent.toml, edgekit-agent.service, tls/*, secrets/* (0600), wheels/*.whl (optional).
# Output: "edgekit: STEP: changed|unchanged|skipped|warning DETAIL" lines, then one final line
#   "edgekit: result: changed=N restart=yes|no|skipped reboot=yes|no clock=EPOCH".
# Secret values (MQTT password, client key) are only ever copied as files, never printed.
set -Eeuo pipefail
umask 022

ROOT=/
PAYLOAD=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=""
FINISH_FIRSTBOOT=0
STEP=""

die() { echo "edgekit: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
trap 'echo "edgekit: error: install-agent.sh failed at line $LINENO (exit $?)" >&2' ERR

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --payload) PAYLOAD=${2:?--payload needs a directory}; shift 2 ;;
    --python) PYTHON=${2:?--python needs an interpreter}; shift 2 ;;
    --finish-firstboot) FINISH_FIRSTBOOT=1; shift ;;
    -h | --help) usage; exit 0 ;;
    all | venv | apply) STEP=$1; shift ;;
    *) die "unknown argument '$1'; usage: install-agent.sh [--root DIR] [--payload DIR] [--python PY] all|venv|apply" ;;
  esac
done
[ -n "$STEP" ] || die "name a step: all, venv or apply (see --help)"
[ -f "$PAYLOAD/payload.env" ] || die "$PAYLOAD/payload.env is missing: --payload must be a directory prepared by edgekit"
[ "$(id -u)" = 0 ] || die "run as root: the agent is installed under /opt/edgekit and /etc/edgekit"
[ -d "$ROOT" ] || die "--root $ROOT is not a directory"
ROOT=${ROOT%/} # "/" becomes "", so "$ROOT/etc" is "/etc"

# shellcheck source=/dev/null
. "$PAYLOAD/payload.env"
# --python, else $EDGEKIT_PYTHON, else the interpreter edgekit chose for this device (DEVICE_PYTHON), else python3.
PYTHON=${PYTHON:-${EDGEKIT_PYTHON:-${DEVICE_PYTHON:-python3}}}
: "${DEVICE_ID:?payload.env has no DEVICE_ID}" "${BUNDLE_ID:?payload.env has no BUNDLE_ID}"
: "${REQUIREMENTS_STAMP:?payload.env has no REQUIREMENTS_STAMP}"

PREFIX=/opt/edgekit
VENV=$PREFIX/venv
UNIT=${UNIT_NAME:-edgekit-agent.service}
CHANGED=0
RESTART=no
RELOAD=no
REBOOT=no
CLOCK=$(date +%s)
UPDATED=0

say() { echo "edgekit: $*"; }
changed() { CHANGED=$((CHANGED + 1)); say "$1: changed${2:+ $2}"; }
unchanged() { say "$1: unchanged${2:+ $2}"; }
live() { [ -z "$ROOT" ]; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3; exit }' "$ROOT/etc/group"; }

# install_file SRC DEST MODE GID: replace DEST atomically when its content, mode or group differ.
# Sets UPDATED=1 when it wrote (a global, not a return code, so `set -e` still stops on a failed write).
install_file() {
  local src=$1 dest=$2 mode=$3 gid=$4 tmp
  UPDATED=0
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ] &&
    [ "$(stat -c %g "$dest")" = "$gid" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp "$(dirname "$dest")/.edgekit.XXXXXX") # mktemp makes it 0600: a secret is never readable, not even briefly
  cat "$src" >"$tmp"
  chgrp "$gid" "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
  UPDATED=1
}

check_python() {
  command -v "$PYTHON" >/dev/null 2>&1 ||
    die "$PYTHON not found: install Python >= 3.10 (apt-get install python3 python3-venv) or pass --python"
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'); the agent needs >= 3.10"
}

step_venv() {
  check_python
  local venv=$ROOT$VENV pip
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    unchanged venv "$VENV"
  else
    rm -rf "$venv"
    if "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
      "$PYTHON" -m venv "$venv"
    elif "$PYTHON" -m pip --version >/dev/null 2>&1; then
      "$PYTHON" -m venv --without-pip "$venv" # Debian without python3-venv: the system pip installs into it
    else
      die "$PYTHON can neither create a venv with pip (ensurepip) nor run pip: apt-get install python3-venv"
    fi
    changed venv "$VENV (Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'))"
    RESTART=yes
  fi
  if [ -f "$venv/.edgekit-requirements" ] && [ "$(cat "$venv/.edgekit-requirements")" = "$REQUIREMENTS_STAMP" ]; then
    unchanged packages "edgekit ${EDGEKIT_VERSION:-} and its pinned dependencies"
    return 0
  fi
  if [ -x "$venv/bin/pip" ]; then pip=("$venv/bin/python" -m pip); else pip=("$PYTHON" -m pip --python "$venv/bin/python"); fi
  local args=(install --disable-pip-version-check --no-input --quiet -r "$PAYLOAD/requirements.txt")
  if [ "${OFFLINE:-0}" = 1 ]; then
    # Everything comes from the wheels carried with the payload: no network, no pip.conf surprises.
    args=(--isolated "${args[@]}" --no-index --find-links "$PAYLOAD/wheels")
  else
    [ -d "$PAYLOAD/wheels" ] && args+=(--find-links "$PAYLOAD/wheels")
    [ -n "${PIP_EXTRA_INDEX:-}" ] && args+=(--extra-index-url "$PIP_EXTRA_INDEX")
  fi
  "${pip[@]}" "${args[@]}" || die "pip could not install $(tr '\n' ' ' <"$PAYLOAD/requirements.txt")$([ "${OFFLINE:-0}" = 1 ] && echo "from the carried wheels (is one missing?)" || echo "(is the network up?)")"
  printf '%s\n' "$REQUIREMENTS_STAMP" >"$venv/.edgekit-requirements"
  changed packages "edgekit ${EDGEKIT_VERSION:-} and its pinned dependencies$([ "${OFFLINE:-0}" = 1 ] && echo ' (offline wheels)')"
  RESTART=yes
}

step_cgroup() {
  local controllers=$ROOT/sys/fs/cgroup/cgroup.controllers cmdline line
  if [ -r "$controllers" ] && grep -qw memory "$controllers"; then
    unchanged memory-cgroup "memory controller active: MemoryMax= is enforced"
    return 0
  fi
  if [ ! -r "$controllers" ] && [ -d "$ROOT/sys/fs/cgroup/memory" ]; then
    unchanged memory-cgroup "cgroup v1 memory controller active"
    return 0
  fi
  # Raspberry Pi OS kernels ship with the memory cgroup off: without it MemoryMax= is silently not enforced.
  for cmdline in "$ROOT/boot/firmware/cmdline.txt" "$ROOT/boot/cmdline.txt"; do
    # Bookworm's /boot/cmdline.txt is a "DO NOT EDIT" pointer to /boot/firmware/cmdline.txt.
    if [ ! -f "$cmdline" ] || grep -q 'DO NOT EDIT' "$cmdline"; then continue; fi
    REBOOT=yes
    if grep -qw 'cgroup_enable=memory' "$cmdline"; then
      say "memory-cgroup: warning cgroup_enable=memory is on $cmdline but not active yet: reboot to enforce MemoryMax="
    else
      line=$(head -n 1 "$cmdline" | tr -d '\r\n')
      printf '%s cgroup_enable=memory\n' "$line" >"$cmdline.edgekit-new"
      mv -f "$cmdline.edgekit-new" "$cmdline"
      changed memory-cgroup "added cgroup_enable=memory to ${cmdline#"$ROOT"}: reboot to enforce MemoryMax="
    fi
    return 0
  done
  say "memory-cgroup: warning no memory controller in /sys/fs/cgroup/cgroup.controllers: MemoryMax= is not enforced"
}

step_bundle() {
  local dir=$ROOT$PREFIX/bundles current tmp old name
  current=$(readlink "$dir/current" 2>/dev/null || true)
  if [ "$current" = "$BUNDLE_ID" ] && [ -d "$dir/$BUNDLE_ID" ]; then
    unchanged bundle "$BUNDLE_ID"
    return 0
  fi
  [ -f "$PAYLOAD/bundle.tar.gz" ] || die "$PAYLOAD/bundle.tar.gz is missing and bundle $BUNDLE_ID is not installed"
  if [ -n "${BUNDLE_SHA256:-}" ]; then
    echo "$BUNDLE_SHA256  $PAYLOAD/bundle.tar.gz" | sha256sum --check --status ||
      die "bundle.tar.gz does not match its sha256 $BUNDLE_SHA256: the copy was damaged; run edgekit again"
  fi
  install -d -m 0755 "$dir"
  rm -rf "$dir"/.incoming.*
  if [ ! -d "$dir/$BUNDLE_ID" ]; then
    tmp=$(mktemp -d "$dir/.incoming.XXXXXX")
    tar -xzf "$PAYLOAD/bundle.tar.gz" -C "$tmp" --no-same-owner --no-same-permissions
    chmod -R u=rwX,go=rX "$tmp" # DynamicUser= runs the agent as a transient uid: it reads the model as "other"
    mv -T "$tmp" "$dir/$BUNDLE_ID"
  fi
  ln -sfn "$BUNDLE_ID" "$dir/.current.new"
  mv -T "$dir/.current.new" "$dir/current" # rename(2): the agent sees the old bundle or the new one, never half
  changed bundle "$BUNDLE_ID${current:+ (was $current)}"
  RESTART=yes
  for old in "$dir"/*/; do # keep the new and the previous bundle (manual rollback), drop older ones
    old=${old%/}
    name=$(basename "$old")
    [ -L "$old" ] || [ "$name" = "$BUNDLE_ID" ] || [ "$name" = "$current" ] || rm -rf "$old"
  done
}

ensure_service_user() {
  grep -q "^$SERVICE_USER:" "$ROOT/etc/passwd" && return 0
  local prefix=()
  live || prefix=(--prefix "$ROOT")
  useradd "${prefix[@]}" --system --user-group --no-create-home --home-dir /var/lib/edgekit \
    --shell /usr/sbin/nologin "$SERVICE_USER"
  changed service-user "$SERVICE_USER (this systemd has no DynamicUser= credentials)"
}

step_config() {
  local etc=$ROOT/etc/edgekit gid=0 private=0600 private_dir=0700 f dest
  if [ -n "${SERVICE_USER:-}" ]; then
    ensure_service_user
    gid=$(gid_of "$SERVICE_USER")
    private=0640
    private_dir=0750
  fi
  install -d -m 0755 "$etc"
  install -d -m "$private_dir" -g "$gid" "$etc/secrets"
  install_file "$PAYLOAD/agent.toml" "$etc/agent.toml" "$private" "$gid"
  if [ "$UPDATED" = 1 ]; then changed config /etc/edgekit/agent.toml; RESTART=yes; else unchanged config /etc/edgekit/agent.toml; fi
  for sub in tls secrets; do
    for f in "$PAYLOAD/$sub"/*; do
      [ -f "$f" ] || continue
      dest=$etc/$sub/$(basename "$f")
      if [ "$sub" = secrets ]; then install_file "$f" "$dest" "$private" "$gid"; else install_file "$f" "$dest" 0644 0; fi
      if [ "$UPDATED" = 1 ]; then changed "$sub" "/etc/edgekit/$sub/$(basename "$f")"; RESTART=yes; fi
    done
    for f in "$etc/$sub"/*; do # a credential the new config no longer uses must not linger
      if [ ! -f "$f" ] || [ -f "$PAYLOAD/$sub/$(basename "$f")" ]; then continue; fi
      rm -f "$f"
      changed "$sub" "removed /etc/edgekit/$sub/$(basename "$f")"
      RESTART=yes
    done
  done
}

step_unit() {
  install_file "$PAYLOAD/edgekit-agent.service" "$ROOT/etc/systemd/system/$UNIT" 0644 0
  if [ "$UPDATED" = 1 ]; then
    changed unit "/etc/systemd/system/$UNIT"
    RESTART=yes
    RELOAD=yes
  else
    unchanged unit "/etc/systemd/system/$UNIT"
  fi
}

step_service() {
  if ! live; then
    if [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/$UNIT" ]; then
      unchanged service "$UNIT enabled"
    else
      systemctl --root="$ROOT" enable --quiet "$UNIT"
      changed service "enabled $UNIT"
    fi
    say "service: skipped start and restart (--root $ROOT is not the running system)"
    RESTART=skipped
    return 0
  fi
  [ "$RELOAD" = yes ] && systemctl daemon-reload
  if systemctl is-enabled --quiet "$UNIT"; then unchanged service "$UNIT enabled"; else
    systemctl enable --quiet "$UNIT"
    changed service "enabled $UNIT"
  fi
  if [ "$RESTART" = no ] && systemctl is-active --quiet "$UNIT"; then
    unchanged service "$UNIT active"
    return 0
  fi
  CLOCK=$(date +%s)
  # Type=notify: restart returns once the agent sent READY=1 (model loaded), or fails if it died first.
  if ! systemctl restart "$UNIT"; then
    journalctl --unit "$UNIT" --lines 30 --no-pager >&2 || true
    die "$UNIT did not start; its last log lines are above (systemctl status $UNIT)"
  fi
  RESTART=yes
  say "service: changed restarted $UNIT"
}

finish_firstboot() {
  local unit=edgekit-firstboot.service
  if live; then systemctl disable --quiet "$unit" 2>/dev/null || true; fi
  rm -f "$ROOT/etc/systemd/system/multi-user.target.wants/$unit" "$ROOT/etc/systemd/system/$unit"
  # The payload held the only other copy of the secrets; /etc/edgekit/secrets now has them (root only).
  if [ "$PAYLOAD" = "$ROOT/var/lib/edgekit-firstboot" ]; then rm -rf "$PAYLOAD"; fi
  say "firstboot: changed disabled $unit and removed its payload"
}

case "$STEP" in
  venv) step_venv ;;
  apply) step_cgroup; step_bundle; step_config; step_unit; step_service ;;
  all) step_venv; step_cgroup; step_bundle; step_config; step_unit; step_service ;;
esac
[ "$FINISH_FIRSTBOOT" = 1 ] && finish_firstboot
say "result: changed=$CHANGED restart=$RESTART reboot=$REBOOT clock=$CLOCK"
