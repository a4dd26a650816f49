#!/usr/bin/env bash
# Builds llama.cpp's own llama-server from the source node-llama-cpp ships
# (node_modules/node-llama-cpp/llama/gitRelease.bundle, the commit its binaries are built from),
# with the local compiler, into bench/.engines/llama.cpp/build/bin/llama-server. Shared by the
# upstream bench (bench/upstream/proxy.mjs) and the model-layer comparisons. Takes minutes on 2
# cores; run it once, outside `npm test`. No network: the bundle is a local git bundle.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
bundle="$here/node_modules/node-llama-cpp/llama/gitRelease.bundle"
target="$here/bench/.engines/llama.cpp"
if [ ! -f "$bundle" ]; then echo "missing $bundle: run npm ci first" >&2; exit 1; fi
if [ ! -d "$target/.git" ]; then
  mkdir -p "$(dirname "$target")"
  git clone --quiet "$bundle" "$target"
fi
cmake -S "$target" -B "$target/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=ON > "$target/build.log"
cmake --build "$target/build" --target llama-server -j "${JOBS:-2}" >> "$target/build.log"
"$target/build/bin/llama-server" --version 2>&1 | head -2
echo "$target/build/bin/llama-server"
