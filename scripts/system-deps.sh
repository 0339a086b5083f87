#!/usr/bin/env bash
# Debian packages the tests use (RTSP camera farm, headless Chromium, fonts). Installs only
# what is missing; needs root (CI and the dev machines run as root) or sudo.
set -euo pipefail
# fonts for tile labels; the RTSP camera farm (GStreamer RTSP server on the system python);
# Debian's Chromium for the page tests (Playwright drives it; no browser download);
# systemd-analyze checks the shipped unit (verify, security); the page in two more engines:
# Firefox ESR (WebDriver BiDi; H.264 through libavcodec) and WebKitGTK (WebKitWebDriver under
# Xvfb; H.264 and HLS through GStreamer's libav and bad plugins); libGL and GLib for OpenCV,
# which the ONVIF simulator (ipycam) imports.
pkgs=(fonts-dejavu-core openssl python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good chromium systemd
      firefox-esr libavcodec59 webkit2gtk-driver xvfb gstreamer1.0-libav gstreamer1.0-plugins-bad
      libgl1 libglib2.0-0)
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
