#!/bin/sh
# npm run test:asan: build the addon once more under AddressSanitizer and
# UndefinedBehaviorSanitizer, in its own directory (the normal build in
# build/ is left alone), and run the relay tests against it.
#
# Node itself is not built with ASan, so the ASan runtime is preloaded into
# every process the tests start (tap, the daemons under test); leak checks
# are off, as Node's own allocations would be reported. Any other finding,
# and any undefined behaviour, aborts the process and so fails its test.
# TCPPROXY_NATIVE (lib/native/addon.ts) points every process at this build.
set -eu
cd "$(dirname "$0")"
out=build-asan
rm -rf "$out"
mkdir -p "$out"
cp binding.gyp ./*.h ./*.c "$out/"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
(cd "$out" && CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" node-gyp rebuild --loglevel=warn)
addon=$(pwd)/$out/build/Release/tcpproxy_native.node
asan=$(${CC:-cc} -print-file-name=libasan.so)
cd ../..
TCPPROXY_NATIVE=$addon \
LD_PRELOAD=$asan \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allow_user_segv_handler=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  npx tap --disable-coverage --timeout=300 test/relay/thread.test.ts test/relay/front.test.ts test/relay/front-fuzz.test.ts test/e2e/relay.test.ts test/native/addon.test.ts test/relay/close-reasons.test.ts test/systemd/notifier.test.ts
