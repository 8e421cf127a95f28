#!/usr/bin/env bash
# Copies an exported bundle (manifest.json and its .tflite files) into the app's assets, replacing
# any bundle installed before. Rebuild the app afterwards.
#
#   android_demo/install_bundle.sh BUNDLE_DIR
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BUNDLE_DIR   (a directory written by the kerasrnn exporter)" >&2
    exit 2
fi
BUNDLE="$1"
ASSETS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/app/src/main/assets/bundle"

if [[ ! -f "$BUNDLE/manifest.json" ]]; then
    echo "$BUNDLE/manifest.json not found: give the directory of an exported bundle" >&2
    exit 2
fi
# Every .tflite file the manifest names must be there (the ONNX file is not needed on Android).
mapfile -t MODELS < <(grep -o '"[^"]*\.tflite"' "$BUNDLE/manifest.json" | tr -d '"' | sort -u)
if [[ ${#MODELS[@]} -eq 0 ]]; then
    echo "$BUNDLE/manifest.json names no .tflite file: export the bundle with the tflite format" >&2
    exit 2
fi
BUNDLE_REAL="$(realpath "$BUNDLE")"
for model in "${MODELS[@]}"; do
    # Every file must stay inside the bundle: no absolute path, no "..", no symbolic link leading out.
    if [[ "$model" == /* || "/$model/" == */../* || "$(realpath -m "$BUNDLE/$model")" != "$BUNDLE_REAL"/* ]]; then
        echo "$BUNDLE/manifest.json names $model, which is outside the bundle folder: refusing to install it" >&2
        exit 2
    fi
    if [[ ! -f "$BUNDLE/$model" ]]; then
        echo "$BUNDLE/$model is missing: the manifest names it" >&2
        exit 2
    fi
done

mkdir -p "$ASSETS"
find "$ASSETS" -maxdepth 1 -type f ! -name .gitignore -delete
cp "$BUNDLE/manifest.json" "$ASSETS/"
for model in "${MODELS[@]}"; do
    cp "$BUNDLE/$model" "$ASSETS/"
    echo "installed $model ($(wc -c < "$BUNDLE/$model") bytes)"
done
echo "installed manifest.json into $ASSETS; now rebuild the app"
