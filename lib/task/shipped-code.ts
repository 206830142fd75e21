import type { ShippedModule } from './module-shipping.js';
import type { ShippedFunction } from './remote-function.js';

/** Code as it travels to a worker: a self-contained function's source, or a module export. */
export type ShippedCode = ShippedFunction | ShippedModule;
