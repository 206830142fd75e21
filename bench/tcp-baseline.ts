/**
 * The plain-TCP request/response baseline of the messaging bench: what a user could write in an
 * afternoon with Node's `net` and msgpack. Frames are a 4-byte big-endian length, then a msgpack
 * `[id, value]`; the server answers each request with the same frame. One connection, requests
 * pipelined on it, replies matched by id.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { pack, unpack } from 'msgpackr';

/** Splits a byte stream into length-prefixed frames. */
function onFrames(socket: Socket, handle: (frame: Buffer) => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    let offset = 0;
    while (buffered.length - offset >= 4) {
      const length = buffered.readUInt32BE(offset);
      if (buffered.length - offset - 4 < length) break;
      handle(buffered.subarray(offset + 4, offset + 4 + length));
      offset += 4 + length;
    }
    buffered = buffered.subarray(offset);
  });
}

function frame(value: unknown): Buffer {
  const body = pack(value);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** An echo server on 127.0.0.1: each request frame is decoded, then answered with its own `[id, value]`. */
export async function startTcpEchoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    onFrames(socket, (body) => {
      const [id, value] = unpack(body) as [number, unknown];
      socket.write(frame([id, value]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** A client of that server: `call(value)` resolves with the echoed value. */
export async function connectTcpClient(port: number): Promise<{ call(value: unknown): Promise<unknown>; close(): void }> {
  const socket = createConnection({ port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const pending = new Map<number, (value: unknown) => void>();
  let nextId = 0;
  onFrames(socket, (body) => {
    const [id, value] = unpack(body) as [number, unknown];
    pending.get(id)?.(value);
    pending.delete(id);
  });
  return {
    call: (value) =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        socket.write(frame([id, value]));
      }),
    close: () => socket.destroy(),
  };
}
