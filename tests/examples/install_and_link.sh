#!/usr/bin/env bash
# Install the build into a temporary prefix and link a program outside the tree against it, the
# two ways the README gives: CMake's find_package(factornet) with factornet::factornet, and
# `cc main.c $(pkg-config --cflags --libs factornet)`. Each program must build and run against the
# installed library (not the build tree's). With SANITIZE=ON the installed library is built with
# ASan/UBSan, so the programs are too.
# Usage: install_and_link.sh BUILD_DIR CONSUMER_DIR CMAKE CC PKG_CONFIG SANITIZE
set -u
build=$1
consumer=$2
cmake=$3
cc=$4
pkgconfig=$5
sanitize=$6

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fnet-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_and_link: FAIL: $*" >&2; exit 1; }
# run LOG CMD...: run quietly, show the log when it fails.
run() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
}
prefix=$tmp/prefix
san=()
if [ "$sanitize" = ON ] || [ "$sanitize" = 1 ] || [ "$sanitize" = TRUE ]; then
    san=("-fsanitize=address,undefined" -fno-omit-frame-pointer)
fi

# 1. Install.
unset DESTDIR
run "$tmp/install.log" "$cmake" --install "$build" --prefix "$prefix" ||
    fail "cmake --install $build --prefix $prefix failed"
lib=$(find "$prefix" -name 'libfactornet.so' | head -n 1)
[ -n "$lib" ] || fail "no libfactornet.so under $prefix"
libdir=$(dirname "$lib")
pkg=$libdir/cmake/factornet
for f in "$prefix/include/factornet.h" "$prefix/include/factornet/model.h" \
    "$libdir/libfactornet.a" "$libdir/pkgconfig/factornet.pc" "$pkg/factornetConfig.cmake" \
    "$pkg/factornetConfigVersion.cmake" "$pkg/factornetTargets.cmake"; do
    [ -f "$f" ] || fail "$f was not installed"
done
echo "installed into $prefix (libdir $libdir)"

# 2. CMake: find_package(factornet) + factornet::factornet, from the temporary prefix only.
run "$tmp/configure.log" "$cmake" -S "$consumer" -B "$tmp/cmake-build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="${san[*]}" -DCMAKE_EXE_LINKER_FLAGS="${san[*]}" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF ||
    fail "configuring the consumer project with find_package(factornet) failed"
grep -qF "factornet_DIR: $pkg" "$tmp/configure.log" ||
    fail "find_package found another factornet: $(grep factornet_DIR "$tmp/configure.log")"
run "$tmp/build.log" "$cmake" --build "$tmp/cmake-build" ||
    fail "building the consumer against factornet::factornet failed"
"$tmp/cmake-build/consumer" || fail "the find_package consumer failed"

# 3. pkg-config: flags must point into the prefix the files were installed to.
flags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" "$pkgconfig" --cflags --libs factornet) ||
    fail "pkg-config --cflags --libs factornet failed"
echo "pkg-config --cflags --libs factornet: $flags"
# The -I and -L directories may be spelt through the .pc file's own location (${pcfiledir}/../..):
# compare them resolved.
has_dir() { # has_dir OPT DIR: some OPT<path> in $flags resolves to DIR
    local w want
    want=$(realpath -m "$2")
    for w in $flags; do
        case $w in "$1"*) [ "$(realpath -m "${w#"$1"}")" = "$want" ] && return 0 ;; esac
    done
    return 1
}
has_dir -I "$prefix/include" ||
    fail "no -I for $prefix/include: the .pc file's prefix is not where it was installed"
has_dir -L "$libdir" ||
    fail "no -L for $libdir: the .pc file's prefix is not where it was installed"
# shellcheck disable=SC2086 # $flags is a list of words
run "$tmp/cc.log" "$cc" -std=c11 "${san[@]}" -o "$tmp/consumer-pc" "$consumer/main.c" $flags ||
    fail "cc main.c \$(pkg-config --cflags --libs factornet) failed"
LD_LIBRARY_PATH="$libdir" ldd "$tmp/consumer-pc" | grep -qF "libfactornet.so.0 => $libdir/" ||
    fail "the pkg-config consumer does not load $libdir/libfactornet.so.0"
LD_LIBRARY_PATH="$libdir" "$tmp/consumer-pc" || fail "the pkg-config consumer failed"

# 4. The installed binaries run from the prefix without LD_LIBRARY_PATH, on its library.
for p in fnet-train fnet-compare fnet-compress fnet-prune fnet-optim; do
    [ -x "$prefix/bin/$p" ] || fail "$prefix/bin/$p was not installed"
    (unset LD_LIBRARY_PATH; "$prefix/bin/$p" --version) >"$tmp/version.log" 2>&1 ||
        fail "$prefix/bin/$p --version: $(cat "$tmp/version.log")"
    so=$( (unset LD_LIBRARY_PATH; ldd "$prefix/bin/$p") | sed -n 's/.*libfactornet.so.0 => \([^ ]*\).*/\1/p')
    [ -n "$so" ] && [ "$(realpath -m "$so")" = "$(realpath -m "$libdir/libfactornet.so.0")" ] ||
        fail "$prefix/bin/$p does not load $libdir/libfactornet.so.0 (loads '$so')"
done
echo "install_and_link: ok"
