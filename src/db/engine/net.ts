import { spawnSync } from 'node:child_process';
import net from 'node:net';

export function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return answers({ host: '127.0.0.1', port });
}

/** Whether something accepts connections on this unix socket. */
export function canConnectToSocket(socketPath: string): Promise<boolean> {
  return answers({ path: socketPath });
}

function answers(to: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(to);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
