/** A bare line echo server on a unix socket: the baseline QMP round trips are held against. */
import net from 'node:net';

const path = process.argv[2];
net
  .createServer((sock) => {
    sock.setNoDelay(true);
    sock.pipe(sock);
  })
  .listen(path, () => process.stdout.write('ready\n'));
