#!/usr/bin/env bash
# vendor_nanoarrow: reproduce third_party/nanoarrow/ from the nanoarrow PyPI
# source package, the one place Apache Arrow's C library (nanoarrow, with its
# IPC reader and the flatcc runtime it needs) reaches these machines.
# rys reads the MMLU Arrow files with it (src/tasks/mmlu.c).
#
# pip learns an sdist's metadata by building it: nanoarrow builds with
# meson-python, which (and cython, which its meson.build probes for) must be
# in the venv first, and the build takes a few minutes on 2 cores. Nothing it
# builds is kept: only the sdist, checked against the pinned sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.9.0
SHA256=1ce15bbed8532839347faa78824c5dbd3769bff60661003e34c6fba5dd881bd3
VENV=${RYS_VENV:-$HOME/.cache/rys/venv}
DEST=third_party/nanoarrow

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" -m pip install -q --disable-pip-version-check meson-python cython </dev/null
PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-build-isolation \
    --no-binary :all: --no-deps -d "$work" "nanoarrow==$VERSION" </dev/null
sdist="$work/nanoarrow-$VERSION.tar.gz"
echo "$SHA256  $sdist" | sha256sum -c --quiet
tar -xzf "$sdist" -C "$work"
src="$work/nanoarrow-$VERSION/subprojects/arrow-nanoarrow/src/nanoarrow"
flatcc=$(echo "$work/nanoarrow-$VERSION"/subprojects/flatcc-*)

rm -rf "$DEST/src" "$DEST/flatcc"
mkdir -p "$DEST/src/nanoarrow/common" "$DEST/src/nanoarrow/ipc" "$DEST/flatcc/src/runtime"
cp "$src"/nanoarrow.h "$src"/nanoarrow_ipc.h "$DEST/src/nanoarrow/"
cp "$src"/common/{array,schema,array_stream,utils}.c "$src"/common/inline_{array,buffer,types}.h \
    "$DEST/src/nanoarrow/common/"
# The IPC library as meson builds it, less the stream writer: the decoder and
# stream reader, codecs.c (the decompressor table they consult; built without
# ZSTD/LZ4, MMLU's files are uncompressed) and encoder.c (the decoder uses its
# footer helpers).
cp "$src"/ipc/{decoder,reader,codecs,encoder}.c "$src"/ipc/flatcc_generated.h "$DEST/src/nanoarrow/ipc/"
# The config header meson/cmake would generate: the version, no namespace.
major=${VERSION%%.*}; rest=${VERSION#*.}; minor=${rest%%.*}; patch=${rest#*.}
sed -e "s/@NANOARROW_VERSION_MAJOR@/$major/" -e "s/@NANOARROW_VERSION_MINOR@/$minor/" \
    -e "s/@NANOARROW_VERSION_PATCH@/$patch/" -e "s/@NANOARROW_VERSION@/$VERSION/" \
    -e "s|@NANOARROW_NAMESPACE_DEFINE@|// #define NANOARROW_NAMESPACE YourNamespaceHere|" \
    "$src/nanoarrow_config.h.in" > "$DEST/src/nanoarrow/nanoarrow_config.h"
cp -r "$flatcc/include" "$DEST/flatcc/"
cp "$flatcc"/src/runtime/{builder,emitter,verifier,refmap}.c "$DEST/flatcc/src/runtime/"
cp "$flatcc/LICENSE" "$flatcc/NOTICE" "$DEST/flatcc/"
echo "vendored nanoarrow $VERSION into $DEST ($(find "$DEST" -type f | wc -l) files)"
