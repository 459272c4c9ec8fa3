#!/usr/bin/env bash
# Installs the Debian packages the project builds and runs with. Idempotent: packages that
# are already installed are skipped, and apt is not touched at all when nothing is missing.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libzmq3-dev cppzmq-dev nlohmann-json3-dev libspdlog-dev doctest-dev
    libcpp-httplib-dev libcli11-dev libsqlite3-dev
    curl
)
# `make fuzz` also needs clang and its libFuzzer runtime; `make bench` runs the original Flask
# system (../shared/seed_flask) beside ours, which needs Python's Flask and requests.
for flag in "$@"; do
    case $flag in
        --fuzz) packages+=(clang libclang-rt-14-dev) ;;
        --bench) packages+=(python3 python3-flask python3-requests) ;;
        *) echo "install-deps: unknown flag '$flag' (known: --fuzz, --bench)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
