{
  # tcpproxy's own Node-API addon: the Linux socket options that Node's `net`
  # cannot reach (SO_ORIGINAL_DST, IP_TRANSPARENT, for transparent proxying),
  # the supervisor's dupFd and the relay thread (addon.c lists the files).
  # Plain C against node_api.h, no dependencies. The package ships it
  # prebuilt for Linux (scripts/prebuild.mjs, at `npm pack`, compiles these
  # sources with these defines and cflags for each target); elsewhere, in a checkout and with
  # `npm rebuild tcpproxy --build-from-source`, scripts/install.mjs runs
  #   node-gyp rebuild -C lib/native
  # lib/native/addon.ts loads it lazily, so a machine without it still runs every
  # other feature. Keep this file JSON apart from its "#" comment lines.
  "targets": [
    {
      "target_name": "tcpproxy_native",
      "sources": ["addon.c", "napi_util.c", "transparent.c", "descriptors.c", "notify.c", "relay_thread.c", "front.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
    }
  ]
}
