#!/usr/bin/env bash
# Download, on this project's Debian 12 machine, the packages that bench/gpu/device_check.sh
# unpacks on a GPU machine whose image lacks a library the build needs (OpenBLAS, LAPACKE, FFTW,
# CMocka, zlib, pkg-config): that machine reaches no package registry, so they travel with the
# working tree. About 18 MB. docs/gpu.md.
#
#   bash bench/gpu/stage_debs.sh [DIR]     (default .gpu-debs, which .gitignore ignores)
#
# Then name DIR in the device call's `carry` (with FNET_DEBS=DIR if it is not .gpu-debs). The
# check unpacks only the packages of what the machine lacks, into <build dir>-deps.
set -euo pipefail

DIR=${1:-.gpu-debs}
PACKAGES=(libopenblas-dev libopenblas0 libopenblas-pthread-dev libopenblas0-pthread libgfortran5
    libquadmath0 liblapacke-dev liblapacke libtmglib3 libfftw3-dev libfftw3-single3 libgomp1
    libcmocka-dev libcmocka0 zlib1g-dev zlib1g pkgconf pkgconf-bin libpkgconf3)

if ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    echo "stage_debs.sh: warning: not Debian 12 (bookworm): the packages may not fit the GPU image" >&2
fi
mkdir -p "$DIR"
rm -f "$DIR"/*.deb
# apt-get download writes into the current directory, as the _apt user where it can
chmod 777 "$DIR" 2>/dev/null || true
(cd "$DIR" && apt-get download "${PACKAGES[@]}")
echo "$(find "$DIR" -name '*.deb' | wc -l) packages, $(du -sh "$DIR" | cut -f1), in $DIR"
