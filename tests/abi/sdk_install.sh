#!/bin/sh
# Installs the SDK into a temporary prefix and builds plugins out of tree the
# way a third party would: one cc command with pkg-config, and a CMake project
# using find_package(llmux-plugin) + llmux_add_plugin. Checks that only the
# entry symbol is exported.
#   sdk_install.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -eu
build=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/llmux/llmux_plugin.h"
test -f "$prefix/include/llmux/llmux_plugin_util.h"
export PKG_CONFIG_PATH="$prefix/share/pkgconfig"
cflags=$(pkg-config --cflags llmux-plugin)
echo "pkg-config --cflags llmux-plugin: $cflags"
incdir=$(echo "$cflags" | sed 's/^ *-I//; s/ *$//')
test -f "$incdir/llmux_plugin.h" || { echo "cflags do not point at the installed header"; exit 1; }
test -z "$(pkg-config --libs llmux-plugin | tr -d ' ')" || { echo "plugins must need no libs"; exit 1; }

# 1. The documented one-liner, outside the tree (copy the source first).
cp "$src/examples/plugins/shout/shout.c" "$work/"
(cd "$work" && cc -shared -fPIC -o shout.so shout.c $(pkg-config --cflags llmux-plugin))
(cd "$work" && cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -o shout-hidden.so shout.c \
    $(pkg-config --cflags llmux-plugin))
exported=$(nm -D --defined-only "$work/shout-hidden.so" | awk '{print $3}' | grep -v '^_' | tr '\n' ' ')
echo "exported by shout-hidden.so: $exported"
test "$exported" = "llmux_plugin_v1 " || { echo "expected only llmux_plugin_v1 to be exported"; exit 1; }

# 2. The CMake package.
mkdir -p "$work/cm"
cp "$src/sdk/template/plugin_template.c" "$work/cm/"
cat > "$work/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(myplugin C)
find_package(llmux-plugin 1.0 REQUIRED)
llmux_add_plugin(template plugin_template.c)
CM
cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cm/build" >/dev/null
test -f "$work/cm/build/template.so"
exported=$(nm -D --defined-only "$work/cm/build/template.so" | awk '{print $3}' | grep -v '^_' | tr '\n' ' ')
echo "exported by template.so (llmux_add_plugin): $exported"
test "$exported" = "llmux_plugin_v1 " || { echo "expected only llmux_plugin_v1 to be exported"; exit 1; }
echo "SDK install OK"
