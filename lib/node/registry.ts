import { InvalidArgumentError, NameTakenError } from '../common/errors.js';

/**
 * Names of local processes (Erlang's `register`): one name per process, one process per name.
 * Names are local to a node; other nodes address them as `{name, node}`.
 */
export class Registry {
  private readonly byName = new Map<string, number>();
  private readonly byId = new Map<number, string>();

  /** @throws NameTakenError when the name is held by another process, InvalidArgumentError on a bad name or a process that already has one */
  register(name: string, id: number): void {
    if (typeof name !== 'string' || name.length === 0 || name.length > 255) {
      throw new InvalidArgumentError('a registered name must be a string of 1-255 characters');
    }
    const holder = this.byName.get(name);
    if (holder !== undefined && holder !== id) throw new NameTakenError(`name ${JSON.stringify(name)} is already registered`);
    const current = this.byId.get(id);
    if (current !== undefined && current !== name) {
      throw new InvalidArgumentError(`process is already registered as ${JSON.stringify(current)}`);
    }
    this.byName.set(name, id);
    this.byId.set(id, name);
  }

  /** Removes a name; returns whether it was registered. */
  unregister(name: string): boolean {
    const id = this.byName.get(name);
    if (id === undefined) return false;
    this.byName.delete(name);
    this.byId.delete(id);
    return true;
  }

  /** Removes whatever name `id` holds (called when the process exits). */
  removeId(id: number): void {
    const name = this.byId.get(id);
    if (name === undefined) return;
    this.byId.delete(id);
    this.byName.delete(name);
  }

  whereis(name: string): number | undefined {
    return this.byName.get(name);
  }

  nameOf(id: number): string | undefined {
    return this.byId.get(id);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}
