#!/usr/bin/env bash
# Installs the Debian packages a make target needs, and only those missing, so running it again is
# quick and changes nothing. Usage: install-packages.sh test|bench|demo
set -euo pipefail

profile="${1:?usage: install-packages.sh test|bench|demo}"

# openssl: the end-to-end tests check signatures with it, as an auditor would.
# pkg-config, gcc: crates that build C (ring) and find system libraries.
# pcscd, libpcsclite-dev: the hardware crate links libpcsclite and its tests talk to a real pcscd.
# vsmartcard-vpcd: pcscd's driver for virtual readers, into which the tests plug virtual cards.
# iproute2: start-pcscd.sh waits with `ss` until pcscd listens.
# fonts-dejavu-core: the kiosk UI's font, so its screens render the same everywhere.
# libxkbcommon-x11-0, libx11-xcb1, libxcursor1: what the kiosk window loads at run time on X11.
# xvfb, x11-apps: the window test runs `kiosk run` on a virtual X display and takes a screenshot
# with xwd.
# libudev-dev, libinput-dev, libxkbcommon-dev: `make check` builds the kiosk's `kms` option (no X
# server: KMS/DRM screen, libinput touch).
# systemd: the package tests check the units with `systemd-analyze verify` and the maintainer
# scripts create users with `systemd-sysusers` (the package installs files only; nothing starts).
# faketime: every test binary runs with the machine's clock moved (deploy/dev/test-clock.sh).
# dpkg-dev is not needed: dpkg-deb (in dpkg) builds the packages.
# chromium, chromium-driver: the back-office's browser tests drive headless Chromium through
# chromedriver (WebDriver).
# python3, python3-venv: the API document's test validates it with openapi-spec-validator, from
# PyPI into target/py (below).
packages_test=(openssl pkg-config gcc libc6-dev pcscd libpcsclite-dev vsmartcard-vpcd iproute2
    fonts-dejavu-core libxkbcommon-x11-0 libx11-xcb1 libxcursor1 xvfb x11-apps systemd
    libudev-dev libinput-dev libxkbcommon-dev chromium chromium-driver faketime python3
    python3-venv)
packages_bench=("${packages_test[@]}")
# The demo builds both programs and runs them: no pcscd (its card reader is simulated), the
# window's libraries and font, and aplay for the sound cues.
packages_demo=(pkg-config gcc libc6-dev libpcsclite-dev fonts-dejavu-core libxkbcommon-x11-0
    libx11-xcb1 libxcursor1 alsa-utils)

# The PyPI packages of the tests, pinned, in a virtual environment of the repository's target/
# (backoffice/tests/kiosk_api.rs runs target/py/bin/openapi-spec-validator, and
# backoffice/tests/schemathesis.rs target/py/bin/schemathesis).
python_test=(openapi-spec-validator==0.9.0 schemathesis==4.32.5)
python_dir="$(cd "$(dirname "$0")/../.." && pwd)/target/py"

case "$profile" in
    test) wanted=("${packages_test[@]}") ;;
    bench) wanted=("${packages_bench[@]}") ;;
    demo) wanted=("${packages_demo[@]}") ;;
    *) echo "install-packages.sh: unknown profile '$profile' (test, bench, demo)" >&2; exit 2 ;;
esac

missing=()
for package in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -ne 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    echo "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$profile" = test ] || [ "$profile" = bench ]; then
    if [ ! -x "$python_dir/bin/pip" ]; then
        python3 -m venv "$python_dir"
    fi
    # Only what is missing or at another version: a second run asks PyPI nothing.
    installed=$("$python_dir/bin/pip" freeze --disable-pip-version-check)
    missing_python=()
    for package in "${python_test[@]}"; do
        if ! grep -qxF "$package" <<<"$installed"; then
            missing_python+=("$package")
        fi
    done
    if [ "${#missing_python[@]}" -ne 0 ]; then
        echo "installing PyPI packages into $python_dir: ${missing_python[*]}"
        "$python_dir/bin/pip" install --quiet --disable-pip-version-check "${missing_python[@]}"
    fi
fi
