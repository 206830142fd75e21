import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NameTakenError } from '../../lib/common/errors.js';
import { Registry } from '../../lib/node/registry.js';

describe('Registry', () => {
  it('registers, looks up and unregisters a name', () => {
    const registry = new Registry();
    expect(registry.whereis('srv')).toBeUndefined();
    registry.register('srv', 7);
    expect(registry.whereis('srv')).toBe(7);
    expect(registry.nameOf(7)).toBe('srv');
    expect(registry.names()).toEqual(['srv']);

    expect(registry.unregister('srv')).toBe(true);
    expect(registry.whereis('srv')).toBeUndefined();
    expect(registry.nameOf(7)).toBeUndefined();
    expect(registry.names()).toEqual([]);
    expect(registry.unregister('srv')).toBe(false);
  });

  it('keeps several names for several processes apart', () => {
    const registry = new Registry();
    registry.register('a', 1);
    registry.register('b', 2);
    registry.register('c', 3);
    expect(registry.whereis('a')).toBe(1);
    expect(registry.whereis('b')).toBe(2);
    expect(registry.whereis('c')).toBe(3);
    expect(registry.names().sort()).toEqual(['a', 'b', 'c']);
    registry.unregister('b');
    expect(registry.whereis('a')).toBe(1);
    expect(registry.whereis('c')).toBe(3);
    expect(registry.nameOf(2)).toBeUndefined();
  });

  it('throws NameTakenError when another process holds the name, leaving the holder in place', () => {
    const registry = new Registry();
    registry.register('srv', 1);
    expect(() => registry.register('srv', 2)).toThrow(NameTakenError);
    try {
      registry.register('srv', 2);
    } catch (error) {
      expect((error as NameTakenError).code).toBe('ENAMETAKEN');
      expect((error as Error).message).toContain('"srv"');
    }
    expect(registry.whereis('srv')).toBe(1);
    expect(registry.nameOf(2)).toBeUndefined();
  });

  it('re-registering the same name for the same process is a no-op', () => {
    const registry = new Registry();
    registry.register('srv', 1);
    expect(() => registry.register('srv', 1)).not.toThrow();
    expect(registry.whereis('srv')).toBe(1);
    expect(registry.names()).toEqual(['srv']);
  });

  it('rejects an empty or over-long name with InvalidArgumentError', () => {
    const registry = new Registry();
    expect(() => registry.register('', 1)).toThrow(InvalidArgumentError);
    expect(() => registry.register('n'.repeat(256), 1)).toThrow(InvalidArgumentError);
    expect(() => registry.register(42 as unknown as string, 1)).toThrow(InvalidArgumentError);
    expect(registry.names()).toEqual([]);
    registry.register('n'.repeat(255), 1);
    expect(registry.whereis('n'.repeat(255))).toBe(1);
  });

  it('rejects a second name for the same process with InvalidArgumentError', () => {
    const registry = new Registry();
    registry.register('first', 1);
    expect(() => registry.register('second', 1)).toThrow(InvalidArgumentError);
    expect(registry.whereis('second')).toBeUndefined();
    expect(registry.nameOf(1)).toBe('first');
    // Once the first name is gone, the process may take another.
    registry.unregister('first');
    registry.register('second', 1);
    expect(registry.whereis('second')).toBe(1);
  });

  it('removeId drops whatever name the process holds, and ignores unnamed ids', () => {
    const registry = new Registry();
    registry.register('a', 1);
    registry.register('b', 2);
    registry.removeId(1);
    expect(registry.whereis('a')).toBeUndefined();
    expect(registry.nameOf(1)).toBeUndefined();
    expect(registry.whereis('b')).toBe(2);
    expect(() => registry.removeId(99)).not.toThrow();
    expect(registry.names()).toEqual(['b']);
    // The freed name can be taken by another process.
    registry.register('a', 3);
    expect(registry.whereis('a')).toBe(3);
  });
});
