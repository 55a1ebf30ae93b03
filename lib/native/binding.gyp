{
  # tcpproxy's own Node-API addon: the few Linux socket options that Node's
  # `net` cannot reach (SO_ORIGINAL_DST, IP_TRANSPARENT). Plain C against
  # node_api.h, no dependencies. Built by the package's `install` script:
  #   node-gyp rebuild -C lib/native
  # and loaded lazily by lib/transparent.ts, so a machine without a compiler
  # still runs every other feature.
  "targets": [
    {
      "target_name": "tcpproxy_native",
      "sources": ["tcpproxy_native.c", "relay_thread.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
    }
  ]
}
