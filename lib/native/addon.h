/*
 * The addon's groups of exports, each added to `exports` by its file
 * (addon.c calls them all); false when a Node-API call failed.
 */
#ifndef TCPPROXY_ADDON_H
#define TCPPROXY_ADDON_H

#include <node_api.h>
#include <stdbool.h>

/* originalDst, transparentSocket, setTransparent, probeTransparent,
 * keepCapabilities, limitCapabilities (transparent.c). */
bool transparent_init(napi_env env, napi_value exports);

/* dupFd (descriptors.c). */
bool descriptors_init(napi_env env, napi_value exports);

/* notifySend (notify.c). */
bool notify_init(napi_env env, napi_value exports);

/* relayInit, relayAdd, relayAbort, closeReasons and the test hooks (relay_thread.c). */
bool relay_thread_init(napi_env env, napi_value exports);

/* relayFront, relayListen, relayUnlisten, relayConnect (front.c). */
bool front_init(napi_env env, napi_value exports);

#endif
