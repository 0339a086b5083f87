#!/usr/bin/env bash
# Debian packages the tests use (RTSP camera farm, headless Chromium, fonts). Installs only
# what is missing; needs root (CI and the dev machines run as root) or sudo.
set -euo pipefail
pkgs=(fonts-dejavu-core openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing Debian packages: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
