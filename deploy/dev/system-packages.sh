#!/usr/bin/env bash
# Installs the Debian packages the stack and tests need, only if something is missing,
# so a second `make setup` costs nothing. Needs root (or sudo) only when it installs.
set -euo pipefail

missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
command -v dbus-daemon >/dev/null || missing+=(dbus-daemon)
command -v dbus-send >/dev/null || missing+=(dbus-bin)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v runuser >/dev/null || missing+=(util-linux)
# The publishers' security tests load every page in a real headless browser.
command -v chromium >/dev/null || missing+=(chromium)
# npm fetches axe-core, the accessibility checker those tests inject (Makefile, axe-core).
command -v npm >/dev/null || missing+=(npm)
# The nginx template (deploy/nginx) is tested for real: auth_request in front of `serve`.
command -v nginx >/dev/null || missing+=(nginx-light)
# An emoji font, so the screenshots the browser tests write show emoji as people see them.
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian's postgresql package starts a system cluster on 5432; the stack runs its own.
