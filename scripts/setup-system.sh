#!/usr/bin/env bash
# Installs the Debian packages some tests need (Debian 12, Raspberry Pi OS bookworm):
# `npm run setup:system`. Each package is checked with dpkg first, so a rerun on a prepared
# machine installs nothing and needs no network. Without them `npm test` still passes: the
# tests that need a missing tool are skipped and the run ends with one line per tool.
#
#   socat                      pty pairs for the serial tests
#   mosquitto, -clients        a second MQTT broker (sync interop, chaos) and its clients
#   make gcc libc6-dev libsodium-dev clang libclang-rt-14-dev
#                              the C firmware companion (hardware/firmware): -Werror build,
#                              ASan/UBSan, libFuzzer (the rt runtimes are only a clang recommendation)
#   gcc-arm-none-eabi libnewlib-arm-none-eabi
#                              `make size` for Cortex-M4
#   chromium                   the dashboard test (playwright-core, headless)
#   systemd                    `systemd-analyze verify` of the Pi unit
#   postgresql tcpdump         the export and capture tests
# Keep this list and test/helpers/system-tools.ts in step (test/unit/system-tools.test.ts checks).
set -euo pipefail

debs=(socat mosquitto mosquitto-clients make gcc libc6-dev libsodium-dev clang libclang-rt-14-dev
  gcc-arm-none-eabi libnewlib-arm-none-eabi chromium systemd postgresql tcpdump)

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${debs[@]}"
  exit 0
fi
if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
  echo "setup-system: needs dpkg and apt-get (Debian, Raspberry Pi OS); install these by other means: ${debs[*]}" >&2
  exit 1
fi

missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-system: all ${#debs[@]} packages installed"
  exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "setup-system: installing ${missing[*]}"
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
