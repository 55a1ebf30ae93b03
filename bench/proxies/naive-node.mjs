#!/usr/bin/env node
// Reference peer "naive-node": the obvious 20-line Node forwarder.
//   node bench/proxies/naive-node.mjs LISTEN_PORT TARGET_PORT [HOST]
// net + pipe both ways, allowHalfOpen on both sockets so that a FIN is
// forwarded as a FIN (pipe() ends the other side on 'end'), no logging.
import net from 'node:net';

const [listenPort, targetPort, host = '127.0.0.1'] = process.argv.slice(2);
if (!listenPort || !targetPort) {
  console.error('usage: naive-node.mjs LISTEN_PORT TARGET_PORT [HOST]');
  process.exit(2);
}
const server = net.createServer({ allowHalfOpen: true }, (client) => {
  const upstream = net.connect({ host, port: Number(targetPort), allowHalfOpen: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
server.listen(Number(listenPort), host, () => console.error(`naive-node listening on ${host}:${listenPort} -> ${targetPort}`));
