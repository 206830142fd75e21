import { Dealer } from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { AuthenticationError, CallMessage, InvalidArgumentError, Node, NodeDownError, type HandshakeFailedEvent } from '../../lib/index.js';
import { deriveCurveKeys, deriveCurveKeysAsync, z85Encode } from '../../lib/transport/curve.js';
import { eventually } from '../support/eventually.js';

describe('deriveCurveKeys', () => {
  it('encodes Z85 as ZeroMQ RFC 32 specifies', () => {
    expect(z85Encode(Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]))).toBe('HelloWorld');
  });

  it('derives the same 40-character key pair from the same secret, and another from another', () => {
    const keys = deriveCurveKeys('correct horse');
    expect(deriveCurveKeys('correct horse')).toEqual(keys);
    expect(keys.publicKey).toHaveLength(40);
    expect(keys.secretKey).toHaveLength(40);
    expect(deriveCurveKeys('correct horse!').publicKey).not.toBe(keys.publicKey);
    expect(() => deriveCurveKeys('')).toThrow(InvalidArgumentError);
  });

  it('makes every guess expensive: scrypt salted with the cluster name, cached per process', async () => {
    // One unsalted SHA-256 took under a microsecond a guess; scrypt (N=2^14, r=8) takes tens
    // of milliseconds on an idle core. The bound is loose so a fast machine passes too.
    const guess = `guess-${process.pid}-${Date.now()}`;
    const started = performance.now();
    const keys = deriveCurveKeys(guess);
    expect(performance.now() - started).toBeGreaterThan(20);
    // The async form agrees, and a second derivation comes from the cache.
    expect(await deriveCurveKeysAsync(guess)).toEqual(keys);
    const again = performance.now();
    expect(deriveCurveKeys(guess)).toEqual(keys);
    expect(performance.now() - again).toBeLessThan(20);
    // Another cluster name salts it differently: one precomputed dictionary does not fit all.
    expect((await deriveCurveKeysAsync(guess, 'other-cluster')).publicKey).not.toBe(keys.publicKey);
  });
});

describe('nodes with a secret', () => {
  const nodes: Node[] = [];
  const start = async (name: string, secret?: string) => {
    const node = await Node.start({ name, connectTimeoutMs: 1500, ...(secret !== undefined ? { secret } : {}) });
    nodes.push(node);
    return node;
  };
  const echoOn = (node: Node) =>
    node.spawn(async (self) => {
      for await (const m of self) if (m instanceof CallMessage) m.reply(m.request);
    });
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((node) => node.stop()));
  });

  it('talk to each other when they share it', async () => {
    const a = await start('a', 'shared');
    const b = await start('b', 'shared');
    expect(await b.call(echoOn(a), 'over curve')).toBe('over curve');
  });

  it('refuse a node with another secret, or none, before any of its frames reaches the kernel', async () => {
    const a = await start('a', 'shared');
    const echo = echoOn(a);
    const failures: HandshakeFailedEvent[] = [];
    a.on('handshakeFailed', (event) => failures.push(event));
    const wrong = await start('wrong', 'not the secret');
    const plain = await start('plain');
    // The connecting side learns why: another secret, not a lost node (so nothing retries).
    const refused = await wrong.call(echo, 'let me in').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect(refused).toMatchObject({ code: 'EAUTH', retryable: false });
    // The refusing side counts and reports it, with the address the attempt came from.
    await eventually(() => expect(failures.length).toBeGreaterThan(0));
    expect(failures[0]!.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(a.stats().handshakesFailed).toBeGreaterThan(0);
    await expect(plain.call(echo, 'let me in')).rejects.toBeInstanceOf(NodeDownError);
    // A raw ZeroMQ peer without the keys cannot inject anything either.
    const raw = new Dealer({ linger: 0 });
    try {
      raw.connect(a.endpoint);
      raw.sendTimeout = 200;
      await raw.send([Buffer.from([0x5a, 0x43, 2, 1]), Buffer.from([0x90])]).catch(() => undefined);
      // Still zero: every frame a counted, valid or not, would show here.
      await eventually(() => expect(a.stats()).toMatchObject({ framesReceived: 0, framesDropped: 0 }));
    } finally {
      raw.close();
    }
  });

  it('reports a flood of refused handshakes at most once a second, with the count', async () => {
    const a = await start('a', 'shared');
    const failures: HandshakeFailedEvent[] = [];
    a.on('handshakeFailed', (event) => failures.push(event));
    const guessed = deriveCurveKeys('a wrong guess');
    // A guesser reconnecting every 10 ms with keys from a wrong secret.
    const raw = new Dealer({ linger: 0, reconnectInterval: 10, curveServerKey: guessed.publicKey, curvePublicKey: guessed.publicKey, curveSecretKey: guessed.secretKey });
    try {
      raw.connect(a.endpoint);
      await eventually(() => expect(a.stats().handshakesFailed).toBeGreaterThanOrEqual(20), { timeoutMs: 10_000 });
    } finally {
      raw.close();
    }
    // Every failure is in some event's count; the trailing one comes within a second.
    await eventually(() => expect(failures.reduce((sum, event) => sum + event.count, 0)).toBe(a.stats().handshakesFailed), { timeoutMs: 3000 });
    const refused = a.stats().handshakesFailed;
    expect(failures.length).toBeLessThan(refused / 2);
    expect(failures.every((event) => /^tcp:\/\/127\.0\.0\.1:\d+$/.test(event.address))).toBe(true);
  });
});
