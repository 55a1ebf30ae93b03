import t from 'tap'
import { connectionFacts } from '../../lib/session/log-fields.js'

t.test("a connection's facts: its service (as the counters name it), or where it arrived when no service takes it", async t => {
  t.same(connectionFacts({ iface: null, port: 8080 }, 7, '192.0.2.1', 5000), { client: '192.0.2.1', clientPort: 5000, service: '*:8080', pid: 7 })
  t.same(connectionFacts({ iface: 'localhost', port: 25 }, 7, '::1', 1), { client: '::1', clientPort: 1, service: 'localhost:25', pid: 7 })
  t.same(connectionFacts({ iface: '::1', port: 25 }, 7, '::1', 1), { client: '::1', clientPort: 1, service: '[::1]:25', pid: 7 })
  t.same(connectionFacts('10.0.0.1:25', 7, '192.0.2.1', 2), { client: '192.0.2.1', clientPort: 2, service: '10.0.0.1:25', pid: 7 })
})
