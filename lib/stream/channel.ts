import { InvalidArgumentError } from '../common/errors.js';
import { CallMessage, DownMessage } from '../node/messages.js';
import type { Node } from '../node/node.js';
import type { ProcessContext } from '../node/process-context.js';
import type { NodeId, Pid, RemoteName } from '../wire/address.js';
import { SUBSCRIBERS_REQUEST, formatPublish, formatSubscribe, formatUnsubscribe, parseChannelRequest, parsePublish } from './stream-protocol.js';
import { CHANNEL_PREFIX } from '../common/service-names.js';

/** Anything that can send and call: a process (sends as itself) or a node (sends as the node). */
type Sender = Pick<ProcessContext, 'send' | 'call'> | Pick<Node, 'send' | 'call'>;

/**
 * A named publish/subscribe channel (pycos's Channel): a hub process on one node that forwards
 * every published message, as it is, to every subscribed process, on any node. Each
 * subscriber gets one publisher's messages in the order they were published; subscribers that
 * end are dropped (the hub monitors them).
 *
 * @example
 * const sensors = Channel.host(nodeA, 'sensors');       // {name: 'zerocos.channel:sensors', node}
 * await Channel.subscribe(self, sensors);                // in a process on any node
 * Channel.publish(nodeB, sensors, { t: 21.5 });          // every subscriber receives { t: 21.5 }
 */
export class Channel {
  /** Starts the channel `name` on `node` and returns its address. @throws NameTakenError if it is already hosted there */
  static host(node: Node, name: string): RemoteName {
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('a channel name is a non-empty string');
    node.spawn(
      async (self) => {
        const subscribers = new Map<string, { pid: Pid; monitor: number }>();
        for await (const message of self) {
          if (message instanceof DownMessage) {
            for (const [key, subscriber] of subscribers) if (subscriber.monitor === message.ref) subscribers.delete(key);
          } else if (message instanceof CallMessage) {
            const request = parseChannelRequest(message.request);
            if (!request) {
              message.fail(new InvalidArgumentError(`channel ${name} does not understand ${JSON.stringify(message.request)}`));
            } else {
              if (request[0] !== 'subscribers') {
                const [op, pid] = request;
                const key = `${pid.node}/${pid.id}`;
                const known = subscribers.get(key);
                if (op === 'subscribe' && !known) subscribers.set(key, { pid, monitor: self.monitor(pid) });
                if (op === 'unsubscribe' && known) {
                  self.demonitor(known.monitor, { flush: true });
                  subscribers.delete(key);
                }
              }
              message.reply(subscribers.size);
            }
          } else {
            const publish = parsePublish(message);
            if (publish) for (const { pid } of subscribers.values()) self.send(pid, publish[1]);
          }
        }
      },
      { name: CHANNEL_PREFIX + name },
    );
    return Channel.at(name, node.id);
  }

  /** The address of the channel `name` hosted on `node`. */
  static at(name: string, node: NodeId): RemoteName {
    return { name: CHANNEL_PREFIX + name, node };
  }

  /** Subscribes `subscriber` (by default the calling process); resolves once the hub has it, with the subscriber count. */
  static subscribe(from: ProcessContext, channel: RemoteName, subscriber: Pid = from.pid): Promise<number> {
    return from.call<number>(channel, formatSubscribe(subscriber));
  }

  static unsubscribe(from: ProcessContext, channel: RemoteName, subscriber: Pid = from.pid): Promise<number> {
    return from.call<number>(channel, formatUnsubscribe(subscriber));
  }

  /** Publishes `message` to every subscriber (asynchronously, like any send). */
  static publish(from: Sender, channel: RemoteName, message: unknown): void {
    from.send(channel, formatPublish(message));
  }

  /** The number of subscribers now. */
  static subscribers(from: Sender, channel: RemoteName): Promise<number> {
    return from.call<number>(channel, SUBSCRIBERS_REQUEST);
  }
}
